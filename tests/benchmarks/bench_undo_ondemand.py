"""Undo and ``sync --user``, measured against the loopback sandbox (issue 11's closing note).

1. A run with a create, updates, a deactivation, an org-unit membership move, a group
   membership added and removed and a group renamed; one person is edited by hand after it;
   then ``undo``. Every ELIZA object (users, persons, memberships, custom groups) is compared
   field by field with what it held before the run.
2. ``sync --user`` of one changed user: its Graph requests and ELIZA writes, and the writes of
   the ``sync`` after it.

Not part of the test suite. Run it as::

    uv run python tests/benchmarks/bench_undo_ondemand.py [--users 200]
"""

from __future__ import annotations

import argparse
import copy
import tempfile
from pathlib import Path
from typing import Any

import httpx

from deltasync import service
from deltasync.config import Config, load_config
from deltasync.engine import RunOptions
from deltasync.sandbox.server import Sandbox, start_sandbox

FLAGS = service.SyncFlags(orgunit_sync=True)
FAMILIES = ("users", "persons", "memberships", "customgroups")


def _snapshot(sb: Sandbox) -> dict[str, dict[int, dict[str, Any]]]:
    return {
        family: {
            k: {n: copy.deepcopy(v) for n, v in obj.items() if n != "modified"}
            for k, obj in getattr(sb.eliza, family).items()
        }
        for family in FAMILIES
    }


def _of(sb: Sandbox, family: str, entra_id: str) -> dict[str, Any]:
    objects: dict[int, dict[str, Any]] = getattr(sb.eliza, family)
    (found,) = [o for o in objects.values() if o.get("remote_key") == entra_id]
    return found


def _group(sb: Sandbox, name: str) -> str:
    (found,) = [g["id"] for g in sb.graph.groups() if g["displayName"] == name]
    return str(found)


def _writes(sb: Sandbox) -> list[Any]:
    return [r for r in sb.eliza.requests if r.method != "GET"]


def undo_figures(sb: Sandbox, config: Config) -> None:
    service.run_sync(config, RunOptions(), FLAGS)
    mapping = sb.orgunit_mapping
    users = [
        u
        for u in sb.graph.users()
        if u.get("accountEnabled")
        and u.get("companyName") in mapping
        and not str(u["userPrincipalName"]).endswith("external.firma.ch")
    ]
    kader, pflege = _group(sb, "Kader"), _group(sb, "Abteilung Pflege")
    in_kader, in_pflege = (
        set(sb.graph.group(kader)["members"]),
        set(sb.graph.group(pflege)["members"]),
    )
    changed, disabled, edited, mover = users[:4]
    joiner = next(u for u in users[4:] if u["id"] not in in_kader)
    leaver = next(u for u in users[4:] if u["id"] in in_pflege and u["id"] != joiner["id"])
    sb.graph.add_user(
        userPrincipalName="neu.person@firma.ch",
        mail="neu.person@firma.ch",
        givenName="Neu",
        surname="Person",
        displayName="Neu Person",
        accountEnabled=True,
    )
    sb.graph.update_user(changed["id"], jobTitle="Leiterin", surname="Neuname")
    sb.graph.disable_user(disabled["id"])
    sb.graph.update_user(edited["id"], jobTitle="Koch")
    sb.graph.update_user(
        mover["id"], companyName=next(k for k in mapping if k != mover["companyName"])
    )
    sb.graph.add_member(kader, joiner["id"])
    sb.graph.remove_member(pflege, leaver["id"])
    sb.graph.update_group(_group(sb, "Teamleitungen"), displayName="Teamleads")
    before = _snapshot(sb)
    bad = service.run_sync(config, RunOptions(), FLAGS)
    person = _of(sb, "persons", edited["id"])
    answer = httpx.patch(
        f"{config.eliza.base_url.rstrip('/')}/api/organisation/mitarbeitende/{person['id']}",
        json={"position": "von Hand"},
        headers={"Authorization": f"Token {config.eliza.api_token.reveal()}"},
    )
    answer.raise_for_status()
    sb.eliza.reset_log()
    report = service.run_undo(config, bad.run_id or 0)
    after = _snapshot(sb)
    created = {f: set(after[f]) - set(before[f]) for f in FAMILIES}
    compared = differing = 0
    for family in FAMILIES:
        for oid, old in before[family].items():
            if family == "persons" and oid == person["id"]:
                continue  # refused: edited by hand since
            for name, value in old.items():
                compared += 1
                differing += after[family][oid].get(name) != value
    print(f"run {bad.run_id}: {bad.counts()}")
    print(f"undo run {report.run_id} (exit {report.exit_code}): {report.counts()}")
    for c in report.conflicts:
        print(f"  refused: {c['label']} {c['kind']} #{c['eliza_id']}: {c['message']}")
    print(
        f"fields compared with before the run: {compared}, differing: {differing}; "
        f"created by the run and kept deactivated/ended: "
        + ", ".join(f"{f} {len(ids)}" for f, ids in created.items() if ids)
    )
    new_user = _of(sb, "users", _entra_of(sb, "neu.person@firma.ch"))
    print(
        f"created user is_active={new_user['is_active']}; "
        f"ELIZA writes of the undo: {len(_writes(sb))}"
    )


def _entra_of(sb: Sandbox, upn: str) -> str:
    return str(next(u["id"] for u in sb.graph.users() if u["userPrincipalName"] == upn))


def ondemand_figures(sb: Sandbox, config: Config) -> None:
    service.run_sync(config, RunOptions(), FLAGS)
    entra = next(
        u
        for u in sb.graph.users()
        if u.get("accountEnabled")
        and u.get("jobTitle")
        and u["id"] != _entra_of(sb, "neu.person@firma.ch")
        and not str(u["userPrincipalName"]).endswith("external.firma.ch")
    )
    sb.graph.update_user(entra["id"], jobTitle="Sofort", surname="Jetzt")
    sb.graph.empty_pages = False  # Graph answers a one-id delta in one page
    sb.graph.reset_log()
    sb.eliza.reset_log()
    now = service.run_sync(config, RunOptions(users=(entra["id"],)), FLAGS)
    print(
        f"sync --user {entra['userPrincipalName']}: exit {now.exit_code}, "
        f"{sb.graph.request_count} Graph request(s), ELIZA writes: "
        + ", ".join(f"{r.method} {r.path} {r.json}" for r in _writes(sb))
    )
    sb.graph.reset_log()
    sb.eliza.reset_log()
    following = service.run_sync(config, RunOptions(), FLAGS)
    print(
        f"following sync: exit {following.exit_code}, {sb.graph.request_count} Graph request(s), "
        f"{len(_writes(sb))} ELIZA writes, counts {following.counts()}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        sb = start_sandbox(Path(tmp), users=args.users, seed=7, page_size=100, sync_groups=True)
        try:
            config = load_config(sb.config_path, env=sb.env)
            undo_figures(sb, config)
            ondemand_figures(sb, config)
        finally:
            sb.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
