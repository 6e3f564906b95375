"""undo RUN_ID, sync --user and watch, end to end against the sandbox on loopback."""

from __future__ import annotations

import copy
import dataclasses
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from e2e_helpers import eliza_person_of, eliza_user_of, in_scope, pick, sync, writes

from deltasync import service
from deltasync.config import Config
from deltasync.engine import RunOptions
from deltasync.errors import UsageError
from deltasync.models import Kind
from deltasync.sandbox.server import Sandbox

pytestmark = pytest.mark.sandbox(users=40, seed=3, page_size=15)
WATCH = [sys.executable, "-m", "deltasync", "watch"]
TODAY = datetime.now(ZoneInfo("Europe/Zurich")).date().isoformat()


def _eliza(sandbox: Sandbox) -> dict[str, dict[int, dict[str, Any]]]:
    """Every ELIZA object, without the server's own ``modified`` stamp."""
    return {
        "users": {k: _plain(v) for k, v in sandbox.eliza.users.items()},
        "persons": {k: _plain(v) for k, v in sandbox.eliza.persons.items()},
        "memberships": {k: _plain(v) for k, v in sandbox.eliza.memberships.items()},
    }


def _plain(obj: dict[str, Any]) -> dict[str, Any]:
    return {k: copy.deepcopy(v) for k, v in obj.items() if k != "modified"}


def _edit_by_hand(config: Config, resource: str, oid: int, **fields: Any) -> None:
    """A change made in ELIZA's own UI: a PATCH through its API, not by the sync."""
    path = config.eliza.path_for(resource).strip("/")
    answer = httpx.patch(
        f"{config.eliza.base_url.rstrip('/')}/api/{path}/{oid}",
        json=fields,
        headers={"Authorization": f"Token {config.eliza.api_token.reveal()}"},
    )
    assert answer.status_code == 200, answer.text


def test_undo_restores_eliza_field_by_field_and_refuses_an_object_edited_since(
    sandbox: Sandbox, config: Config
) -> None:
    mapping = sandbox.orgunit_mapping
    sync(config, orgunit_sync=True)
    changed, disabled, edited, mover = [
        u for u in pick(sandbox, 12) if u.get("companyName") in mapping
    ][:4]
    new_id = sandbox.graph.add_user(
        userPrincipalName="neu.person@firma.ch",
        mail="neu.person@firma.ch",
        givenName="Neu",
        surname="Person",
        displayName="Neu Person",
        accountEnabled=True,
        jobTitle="Praktikant",
    )
    sandbox.graph.update_user(changed["id"], jobTitle="Leiterin", surname="Neuname")
    sandbox.graph.disable_user(disabled["id"])
    sandbox.graph.update_user(edited["id"], jobTitle="Koch")
    other = next(k for k in mapping if k != mover["companyName"])
    sandbox.graph.update_user(mover["id"], companyName=other)
    before = _eliza(sandbox)

    bad = sync(config, orgunit_sync=True)
    assert bad.exit_code == 0, bad.as_dict()
    counts = bad.counts()
    assert counts["user"]["create"] == 1 and counts["user"]["deactivate"] == 1
    assert counts["person"]["update"] == 2 and counts["person"]["deactivate"] == 1
    assert counts["membership"]["end"] == 2 and counts["membership"]["create"] == 1
    (person,) = eliza_person_of(sandbox, edited["id"])
    _edit_by_hand(config, "mitarbeitende", person["id"], position="von Hand")

    sandbox.eliza.reset_log()
    dry = service.run_undo(config, bad.run_id or 0, dry_run=True)
    assert writes(sandbox) == [] and dry.actions and dry.exit_code == 0
    report = service.run_undo(config, bad.run_id or 0)
    assert report.exit_code == 3, report.as_dict()
    assert [(c["label"], c["kind"]) for c in report.conflicts] == [
        (edited["userPrincipalName"], "person")
    ]
    assert "position is 'von Hand'" in report.conflicts[0]["message"]

    after = _eliza(sandbox)
    for family, objects in before.items():
        for oid, old in objects.items():
            if family == "persons" and oid == person["id"]:
                assert after[family][oid]["position"] == "von Hand"  # refused: left alone
                continue
            assert after[family][oid] == old, (family, oid)
    (created,) = eliza_user_of(sandbox, new_id)
    assert created["is_active"] is False  # created by the run: deactivated, never deleted
    (created_person,) = eliza_person_of(sandbox, new_id)
    assert created_person["anstellungsart"] == "ehemalig"
    new_memberships = set(after["memberships"]) - set(before["memberships"])
    assert new_memberships and all(after["memberships"][m]["bis"] == TODAY for m in new_memberships)

    runs = {r["id"]: r for r in service.state_runs(config)}
    assert runs[bad.run_id]["undone_by"] == report.run_id
    assert runs[report.run_id]["undo_of"] == bad.run_id
    with pytest.raises(UsageError, match="already undone"):
        service.run_undo(config, bad.run_id or 0)
    # the undo is itself a journaled run: undoing it puts the bad run's values back
    redo = service.run_undo(config, report.run_id or 0)
    assert redo.exit_code == 0, redo.as_dict()
    (user,) = eliza_user_of(sandbox, disabled["id"])
    assert user["is_active"] is False


def test_undo_refuses_an_object_a_later_run_changed(sandbox: Sandbox, config: Config) -> None:
    sync(config)
    (entra,) = pick(sandbox)
    sandbox.graph.update_user(entra["id"], jobTitle="Erste")
    first = sync(config)
    sandbox.graph.update_user(entra["id"], jobTitle="Zweite")
    sync(config)
    report = service.run_undo(config, first.run_id or 0)
    assert report.conflicts[0]["message"].startswith("changed again since, by run")
    assert eliza_person_of(sandbox, entra["id"])[0]["position"] == "Zweite"
    forced = service.run_undo(config, first.run_id or 0, force=True)
    assert forced.exit_code == 0
    assert eliza_person_of(sandbox, entra["id"])[0]["position"] == entra["jobTitle"]


def _group_id(sandbox: Sandbox, name: str) -> str:
    (found,) = [g["id"] for g in sandbox.graph.groups() if g["displayName"] == name]
    return str(found)


def _custom(sandbox: Sandbox, entra_id: str) -> dict[str, Any]:
    (found,) = [g for g in sandbox.eliza.customgroups.values() if g["remote_key"] == entra_id]
    return found


def _members(sandbox: Sandbox, group: str, *, inside: bool) -> list[dict[str, Any]]:
    """In-scope users that are (or are not) direct members of the Entra group."""
    members = set(sandbox.graph.group(group)["members"])
    return [u for u in in_scope(sandbox) if (u["id"] in members) == inside]


def _with_groups(config: Config, **changes: Any) -> Config:
    return dataclasses.replace(config, groups=dataclasses.replace(config.groups, **changes))


@pytest.mark.sandbox(users=40, seed=3, page_size=15, sync_groups=True)
def test_undo_of_group_changes_restores_memberships_names_and_a_deleted_group_exactly(
    sandbox: Sandbox, config: Config
) -> None:
    deleting = _with_groups(config, delete_removed=True)
    sync(deleting)
    kader, pflege = _group_id(sandbox, "Kader"), _group_id(sandbox, "Abteilung Pflege")
    leads, verkauf = _group_id(sandbox, "Teamleitungen"), _group_id(sandbox, "Abteilung Verkauf")
    joiner = _members(sandbox, kader, inside=False)[0]
    leaver = _members(sandbox, pflege, inside=True)[0]
    springers = [u["id"] for u in _members(sandbox, kader, inside=False)[1:3]]
    hand_made = sandbox.eliza.add_customgroup("Betriebsfeuerwehr")["id"]
    (joiner_user,) = eliza_user_of(sandbox, joiner["id"])
    sandbox.eliza._data["user"][joiner_user["id"]]["groups"].append(hand_made)
    verkauf_id = _custom(sandbox, verkauf)["id"]
    outside = sandbox.eliza.add_user(username="aushilfe.verkauf", groups=[1, verkauf_id])["id"]
    sandbox.graph.add_member(kader, joiner["id"])
    sandbox.graph.remove_member(pflege, leaver["id"])
    sandbox.graph.update_group(leads, displayName="Teamleads")
    springer = sandbox.graph.add_group(displayName="Springer", members=springers)
    sandbox.graph.hard_delete(verkauf)
    before = {**_eliza(sandbox), "groups": sandbox.eliza.customgroups}

    bad = sync(deleting)
    assert bad.exit_code == 0, bad.as_dict()
    ops = sorted((a["kind"], a["op"]) for a in bad.actions if a["kind"] == "group")
    assert ops == [("group", "create"), ("group", "delete"), ("group", "update")]
    assert verkauf_id not in sandbox.eliza.customgroups
    assert verkauf_id not in sandbox.eliza.users[outside]["groups"]

    sandbox.eliza.reset_log()
    dry = service.run_undo(config, bad.run_id or 0, dry_run=True)
    assert writes(sandbox) == [] and dry.exit_code == 0, dry.as_dict()
    shown = {(a["label"], a["kind"]): a for a in dry.actions}
    assert shown[(joiner["userPrincipalName"], "user")]["groups"] == ["−Kader"]
    assert shown[(leaver["userPrincipalName"], "user")]["groups"] == ["+Abteilung Pflege"]
    assert shown[("Teamleads", "group")]["changes"]["name"] == ["Teamleads", "Teamleitungen"]
    assert shown[("Abteilung Verkauf", "group")]["op"] == "create"
    assert shown[("Springer", "group")]["op"] == "empty"

    report = service.run_undo(config, bad.run_id or 0)
    assert report.exit_code == 0, report.as_dict()
    groups = sandbox.eliza.customgroups
    (again,) = [g for g in groups.values() if g["remote_key"] == verkauf]
    renumber = {verkauf_id: again["id"]}
    assert _plain(again) | {"id": verkauf_id, "uuid": None, "created": None} == _plain(
        before["groups"][verkauf_id]
    ) | {"uuid": None, "created": None}
    springer_id = _custom(sandbox, springer)["id"]
    assert groups[springer_id]["name"] == "Springer"  # created by the run: kept, unlinked
    after = _eliza(sandbox)
    for oid, old in before["users"].items():
        restored = {**old, "groups": sorted(renumber.get(g, g) for g in old["groups"])}
        assert after["users"][oid] == restored, oid
    assert not any(springer_id in u["groups"] for u in after["users"].values())
    assert hand_made in after["users"][joiner_user["id"]]["groups"]
    assert after["persons"] == before["persons"]
    for gid, old in before["groups"].items():
        if gid != verkauf_id:
            assert _plain(groups[gid]) == _plain(old), gid
    with service.store_for(config) as store:
        links = {lk.entra_id: lk for lk in store.all_links(Kind.GROUP)}
    assert springer not in links  # unlinked
    assert links[verkauf].eliza_id == again["id"] and links[verkauf].status.value == "active"
    assert links[leads].pushed["name"] == "Teamleitungen"


@pytest.mark.sandbox(users=40, seed=3, page_size=15, sync_groups=True)
def test_undo_refuses_a_group_renamed_by_hand_and_a_user_whose_groups_changed_since(
    sandbox: Sandbox, config: Config
) -> None:
    sync(config)
    kader, leads = _group_id(sandbox, "Kader"), _group_id(sandbox, "Teamleitungen")
    joiner, other, later = _members(sandbox, kader, inside=False)[:3]
    for user in (joiner, other, later):
        sandbox.graph.add_member(kader, user["id"])
    sandbox.graph.update_group(leads, displayName="Teamleads")
    bad = sync(config)
    assert bad.exit_code == 0, bad.as_dict()
    sandbox.graph.add_member(_group_id(sandbox, "Abteilung Pflege"), later["id"])
    next_run = sync(config)
    assert next_run.counts() == {"user": {"update": 1}}, next_run.as_dict()
    group = _custom(sandbox, leads)
    _edit_by_hand(config, "customgroup", group["id"], name="Teamleitung (von Hand)")
    kader_id = _custom(sandbox, kader)["id"]
    (user,) = eliza_user_of(sandbox, joiner["id"])
    _edit_by_hand(config, "user", user["id"], groups=[g for g in user["groups"] if g != kader_id])
    report = service.run_undo(config, bad.run_id or 0)
    assert report.exit_code == 3, report.as_dict()
    refused = {c["label"]: c["message"] for c in report.conflicts}
    hand = "Teamleitung (von Hand)"  # a group is listed under its name in ELIZA now
    assert set(refused) == {hand, joiner["userPrincipalName"], later["userPrincipalName"]}
    assert refused[later["userPrincipalName"]] == (
        f"changed again since, by run {next_run.run_id}; --force undoes it anyway"
    )
    assert "name is 'Teamleitung (von Hand)', the run wrote 'Teamleads'" in refused[hand]
    assert "Kader (added by the run) is gone" in refused[joiner["userPrincipalName"]]
    assert _custom(sandbox, leads)["name"] == "Teamleitung (von Hand)"
    assert kader_id not in eliza_user_of(sandbox, other["id"])[0]["groups"]  # undone
    forced = service.run_undo(config, bad.run_id or 0, force=True)
    assert forced.exit_code == 0, forced.as_dict()
    assert _custom(sandbox, leads)["name"] == "Teamleitungen"


def test_sync_user_makes_one_graph_request_and_only_that_users_writes_then_sync_writes_nothing(
    sandbox: Sandbox, config: Config
) -> None:
    sync(config)
    (entra,) = pick(sandbox)
    sandbox.graph.update_user(entra["id"], jobTitle="Sofort", surname="Jetzt")
    # Graph answers a one-id delta in one page; the sandbox by default also inserts one empty
    # page (with a nextLink) into every round, a quirk that would cost a second request here
    sandbox.graph.empty_pages = False
    sandbox.graph.reset_log()
    sandbox.eliza.reset_log()
    report = sync(config, users=(entra["id"],))
    assert report.exit_code == 0, report.as_dict()
    assert sandbox.graph.request_count == 1, report.trace
    (user,) = eliza_user_of(sandbox, entra["id"])
    (person,) = eliza_person_of(sandbox, entra["id"])
    assert [(r.method, r.path, r.json) for r in writes(sandbox)] == [
        ("PATCH", f"/api/user/{user['id']}", {"last_name": "Jetzt"}),
        (
            "PATCH",
            f"/api/organisation/mitarbeitende/{person['id']}",
            {"nachname": "Jetzt", "position": "Sofort"},
        ),
    ]
    assert person["position"] == "Sofort" and user["last_name"] == "Jetzt"
    text = "\n".join(report.trace)
    assert "scope: in scope" in text and "matched by" in text
    assert "'Sofort'" in text and "Graph GET" in text and "ELIZA PATCH" in text
    sandbox.graph.reset_log()
    sandbox.eliza.reset_log()
    following = sync(config)
    assert following.exit_code == 0
    assert writes(sandbox) == [] and following.eliza_writes == 0
    assert following.objects_seen >= 1  # the delta brought the change again, and it was known


def test_sync_user_by_upn_loses_nothing_for_the_next_delta_run(
    sandbox: Sandbox, config: Config
) -> None:
    sync(config)
    now, later = pick(sandbox, 2)
    sandbox.graph.update_user(now["id"], jobTitle="Jetzt")
    sandbox.graph.update_user(later["id"], jobTitle="Später")
    sandbox.graph.empty_pages = False
    sandbox.graph.reset_log()
    sync(config, users=(now["userPrincipalName"],))
    assert sandbox.graph.request_count == 1  # the UPN came from the state database
    assert eliza_person_of(sandbox, later["id"])[0]["position"] == later["jobTitle"]
    sandbox.eliza.reset_log()
    following = sync(config)
    assert following.counts() == {"person": {"update": 1}}
    assert eliza_person_of(sandbox, later["id"])[0]["position"] == "Später"


def _watch_in_thread(config: Config, interval: float) -> tuple[service.Stop, threading.Thread, Any]:
    stop = service.Stop()
    box: dict[str, Any] = {}

    def go() -> None:
        box["result"] = service.run_watch(config, interval_s=interval, stop=stop)

    thread = threading.Thread(target=go, daemon=True)
    thread.start()
    return stop, thread, box


def test_watch_deactivates_a_disabled_account_within_two_intervals_and_idles_at_one_request(
    sandbox: Sandbox, config: Config
) -> None:
    sync(config)
    (entra,) = pick(sandbox)
    interval = 0.5
    sandbox.graph.reset_log()
    sandbox.eliza.reset_log()
    stop, thread, box = _watch_in_thread(config, interval)
    time.sleep(interval * 4)
    idle_graph = sandbox.graph.request_count
    assert sandbox.eliza.request_count == 0 and idle_graph >= 2
    sandbox.graph.disable_user(entra["id"])
    started = time.monotonic()
    while eliza_user_of(sandbox, entra["id"])[0]["is_active"] and time.monotonic() - started < 10:
        time.sleep(0.02)
    latency = time.monotonic() - started
    stop.set("test")
    thread.join(10)
    assert not thread.is_alive()
    assert eliza_user_of(sandbox, entra["id"])[0]["is_active"] is False
    assert latency < 2 * interval + 1.0, latency
    result = box["result"]
    # one delta request a cycle (the token is reused); the round with the change has the
    # sandbox's extra empty page
    assert result.graph_requests == result.cycles + 1, result
    assert service.run_sync(config, RunOptions()).exit_code == 0  # the lease was released


@pytest.mark.sandbox(users=80, seed=3, page_size=50)
def test_sigterm_stops_a_watch_process_between_objects_releases_the_lease_and_loses_nothing(
    sandbox: Sandbox, config: Config, tmp_path: Path
) -> None:
    sync(config)
    users = in_scope(sandbox)
    for u in users:
        sandbox.graph.update_user(u["id"], surname=f"{u.get('surname') or ''}-Neu")
    sandbox.eliza.delay_s = 0.15  # a slow ELIZA: the signal lands in the middle of the push
    sandbox.eliza.reset_log()
    env = {**os.environ, **sandbox.env}
    log = tmp_path / "watch.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*WATCH, "-c", str(sandbox.config_path), "--interval", "1"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 60
            while sandbox.eliza.write_count < 10 and time.monotonic() < deadline:
                time.sleep(0.01)
            proc.send_signal(signal.SIGTERM)
            rc = proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    text = log.read_text()
    assert rc == 0, text
    assert "watch: stopped (SIGTERM)" in text, text
    stopped_at = len(writes(sandbox))
    assert 10 <= stopped_at < 2 * len(users), text  # it stopped before the cycle's end
    sandbox.eliza.delay_s = 0
    with service.store_for(config) as store:
        assert store.lease_info() is None  # released, not left for a takeover
    following = sync(config)
    assert following.exit_code == 0, following.as_dict()
    assert not [w for w in following.warnings if "lease" in w]
    assert set(following.counts()) <= {"user", "person"}
    assert all(set(ops) == {"update"} for ops in following.counts().values())
    per_path = Counter(w.path for w in writes(sandbox))
    assert per_path and max(per_path.values()) == 1  # no object written twice
    assert len(per_path) == 2 * len(users)  # every user and person exactly once, in all
    for u in users:
        (user,) = eliza_user_of(sandbox, u["id"])
        (person,) = eliza_person_of(sandbox, u["id"])
        assert user["last_name"] == person["nachname"] == f"{u.get('surname') or ''}-Neu"
    assert sync(config).counts() == {}


def test_a_config_file_changed_while_watching_is_not_reloaded_and_the_loop_says_so(
    sandbox: Sandbox, config: Config
) -> None:
    sync(config)
    logged: list[str] = []
    stop = service.Stop()
    box: dict[str, Any] = {}
    thread = threading.Thread(
        target=lambda: box.update(
            result=service.run_watch(
                config,
                interval_s=0.3,
                config_path=sandbox.config_path,
                log=logged.append,
                stop=stop,
            )
        ),
        daemon=True,
    )
    thread.start()
    time.sleep(0.5)
    original = sandbox.config_path.read_text()
    sandbox.config_path.write_text(original + "\nthis is: [not valid yaml\n")
    (entra,) = pick(sandbox)
    sandbox.graph.update_user(entra["id"], jobTitle="Trotzdem")
    deadline = time.monotonic() + 10
    while eliza_person_of(sandbox, entra["id"])[0]["position"] != "Trotzdem":
        assert time.monotonic() < deadline, logged
        time.sleep(0.05)
    time.sleep(0.7)  # more cycles after the change: the warning is given once
    stop.set("test")
    thread.join(10)
    sandbox.config_path.write_text(original)
    warnings = [line for line in logged if "changed; watch keeps running" in line]
    assert len(warnings) == 1 and "restart it to apply the change" in warnings[0], logged
    assert box["result"].failed_cycles == 0 and box["result"].cycles >= 4


def test_the_commands_sync_user_undo_and_state_runs_print_the_trace_and_the_marks(
    sandbox: Sandbox,
    config: Config,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from deltasync.cli.app import run_cli

    for name, value in sandbox.env.items():
        monkeypatch.setenv(name, value)

    cfg = ["-c", str(sandbox.config_path)]
    sync(config)
    (entra,) = pick(sandbox)
    sandbox.graph.update_user(entra["id"], jobTitle="Per Befehl")
    assert run_cli(["sync", *cfg, "--user", entra["userPrincipalName"]]) == 0
    printed = capsys.readouterr().out
    assert "scope: in scope" in printed and "position: " in printed and "'Per Befehl'" in printed
    last = service.state_runs(config)[0]["id"]
    assert run_cli(["undo", str(last), *cfg, "--dry-run"]) == 0
    assert run_cli(["undo", str(last), *cfg]) == 0
    assert eliza_person_of(sandbox, entra["id"])[0]["position"] == entra["jobTitle"]
    capsys.readouterr()
    assert run_cli(["state", "runs", *cfg]) == 0
    assert f"UNDONE by run {last + 2}" in capsys.readouterr().out
    assert run_cli(["undo", str(last), *cfg]) == 2  # already undone: a usage error
