"""``deltasync sandbox edit``: change a running sandbox by hand, then watch the next ``sync``.

The sandbox runs on loopback as ``sandbox serve`` leaves it (config, CA and ``sandbox.env`` in
its folder); every command goes through ``run_cli`` in-process, as an administrator types it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from e2e_helpers import in_scope

from deltasync.cli import run_cli
from deltasync.sandbox.graph import GraphSim, make_tenant
from deltasync.sandbox.server import Sandbox, start_sandbox


@dataclass
class Result:
    code: int
    out: str
    err: str


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str]) -> Any:
    def call(*args: str | Path) -> Result:
        capsys.readouterr()
        code = run_cli([str(a) for a in args])
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return call


@pytest.fixture
def sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Sandbox]:
    """A running sandbox with the files ``sandbox serve`` writes; its secrets in the env."""
    sb = start_sandbox(tmp_path / "sb", users=25, seed=3, page_size=15)
    sb.write_env_file()
    monkeypatch.delenv("DELTASYNC_CONFIG", raising=False)
    for name, value in sb.env.items():
        monkeypatch.setenv(name, value)
    with sb:
        yield sb


def linked(sandbox: Sandbox) -> dict[str, dict[str, Any]]:
    """The sandbox's ELIZA users by the Entra id they are linked to."""
    return {u["remote_key"]: u for u in sandbox.eliza.users.values() if u.get("remote_key")}


def eliza_writes(sandbox: Sandbox) -> list[Any]:
    return [r for r in sandbox.eliza.requests if r.method != "GET"]


def test_disable_by_hand_then_sync_deactivates_exactly_that_user(
    run: Any, sandbox: Sandbox
) -> None:
    cfg = sandbox.config_path
    assert run("sync", "-c", cfg).code == 0
    leaver = in_scope(sandbox)[3]
    assert linked(sandbox)[leaver["id"]]["is_active"] is True

    result = run(
        "sandbox", "edit", "--dir", sandbox.workdir, "disable", leaver["userPrincipalName"]
    )
    assert result.code == 0, result.err
    assert result.out.strip() == (
        f"disabled {leaver['userPrincipalName']} (accountEnabled → false)"
    )
    assert sandbox.graph.user(leaver["id"])["accountEnabled"] is False

    synced = run("sync", "-c", cfg)
    assert synced.code == 0, synced.err
    inactive = [entra_id for entra_id, u in linked(sandbox).items() if not u["is_active"]]
    assert inactive == [leaver["id"]]

    shown = run("state", "user", leaver["userPrincipalName"], "-c", cfg)
    assert shown.code == 0, shown.err
    assert "deactivat" in shown.out


def test_set_a_property_then_sync_sends_one_patch(run: Any, sandbox: Sandbox) -> None:
    cfg = sandbox.config_path
    assert run("sync", "-c", cfg).code == 0
    person = next(u for u in in_scope(sandbox) if u.get("jobTitle") != "Leiterin Pflege")
    upn = person["userPrincipalName"]
    before = len(eliza_writes(sandbox))

    result = run(
        "sandbox", "edit", "--dir", sandbox.workdir, "set", upn, "jobtitle", "Leiterin Pflege"
    )
    assert result.code == 0, result.err
    assert result.out.strip() == f"{upn}: jobTitle {person['jobTitle']!r} → 'Leiterin Pflege'"

    assert run("sync", "-c", cfg).code == 0
    new = eliza_writes(sandbox)[before:]
    assert [r.method for r in new] == ["PATCH"]
    assert "mitarbeitende" in new[0].path or "person" in new[0].path


def test_set_null_clears_and_an_id_works_as_well_as_a_upn(run: Any, sandbox: Sandbox) -> None:
    person = next(u for u in sandbox.graph.users() if u.get("mobilePhone"))
    result = run(
        "sandbox", "edit", "--dir", sandbox.workdir, "set", person["id"], "mobilePhone", "null"
    )
    assert result.code == 0, result.err
    assert "→ null" in result.out
    assert sandbox.graph.user(person["id"])["mobilePhone"] is None


def test_a_value_starting_with_a_dash_needs_no_double_dash(run: Any, sandbox: Sandbox) -> None:
    person = in_scope(sandbox)[0]
    result = run(
        "sandbox", "edit", "--dir", sandbox.workdir, "set", person["id"], "jobTitle", "-Chef"
    )
    assert result.code == 0, result.err
    assert sandbox.graph.user(person["id"])["jobTitle"] == "-Chef"
    again = run(
        "sandbox", "edit", "set", person["id"], "jobTitle", "--x-", "--dir", sandbox.workdir
    )
    assert again.code == 0, again.err
    assert sandbox.graph.user(person["id"])["jobTitle"] == "--x-"


def test_rename_enable_delete_restore_and_membership_go_through_graph(
    run: Any, sandbox: Sandbox
) -> None:
    d = sandbox.workdir
    user = in_scope(sandbox)[0]
    upn, uid = user["userPrincipalName"], user["id"]
    new_upn = "umbenannt." + upn
    assert run("sandbox", "edit", "--dir", d, "rename", upn, new_upn).code == 0
    assert sandbox.graph.user(uid)["userPrincipalName"] == new_upn

    assert run("sandbox", "edit", "--dir", d, "disable", new_upn).code == 0
    enabled = run("sandbox", "edit", "--dir", d, "enable", new_upn)
    assert enabled.code == 0 and enabled.out.startswith(f"enabled {new_upn}")
    assert sandbox.graph.user(uid)["accountEnabled"] is True

    deleted = run("sandbox", "edit", "--dir", d, "delete", new_upn)
    assert deleted.code == 0 and deleted.out.startswith(f"deleted {new_upn}")
    assert [u["id"] for u in sandbox.graph.deleted_users()] == [uid]
    gone = run("sandbox", "edit", "--dir", d, "disable", new_upn)
    assert gone.code == 2 and "is deleted" in gone.err and "restore" in gone.err
    restored = run("sandbox", "edit", "--dir", d, "restore", new_upn)
    assert restored.code == 0, restored.err
    assert sandbox.graph.deleted_users() == []

    group = sandbox.graph.groups()[0]
    outsider = next(u for u in sandbox.graph.users() if u["id"] not in group["members"])
    added = run("sandbox", "edit", "--dir", d, "add-member", group["displayName"], outsider["id"])
    assert added.code == 0, added.err
    assert outsider["id"] in sandbox.graph.group(group["id"])["members"]
    removed = run("sandbox", "edit", "--dir", d, "remove-member", group["id"], outsider["id"])
    assert removed.code == 0, removed.err
    assert outsider["id"] not in sandbox.graph.group(group["id"])["members"]
    again = run("sandbox", "edit", "--dir", d, "remove-member", group["id"], outsider["id"])
    assert again.code == 2 and "not a member" in again.err

    changes = [c.op for c in sandbox.graph.changes[-7:]]
    assert changes == ["update", "update", "update", "soft_delete", "restore", "update", "update"]


@pytest.mark.parametrize(
    ("args", "code", "says"),
    [
        (("disable", "niemand@firma.ch"), 2, "no user 'niemand@firma.ch'"),
        (("set", "{upn}", "jobTitel", "x"), 2, "did you mean jobTitle"),
        (("set", "{upn}", "createdDateTime", "x"), 2, "read-only"),
        (("set", "{upn}", "accountEnabled", "vielleicht"), 2, "true or false"),
        (("rename", "{upn}"), 2, "deltasync sandbox edit --dir D rename USER NEW_UPN`"),
        (("explode", "{upn}"), 2, "unknown action 'explode'"),
        (("restore", "{upn}"), 2, "it is not deleted"),
        (("add-member", "Keine Gruppe", "{upn}"), 2, "no group 'Keine Gruppe'"),
        (("rename", "{upn}", "{other}"), 1, "already exists"),
    ],
)
def test_mistakes_are_named_with_exit_2_and_failed_requests_exit_1(
    run: Any, sandbox: Sandbox, args: tuple[str, ...], code: int, says: str
) -> None:
    first, second = in_scope(sandbox)[:2]
    names = {"upn": first["userPrincipalName"], "other": second["userPrincipalName"]}
    before = len(sandbox.graph.changes)
    result = run("sandbox", "edit", "--dir", sandbox.workdir, *(a.format(**names) for a in args))
    assert result.code == code, result.err
    assert says in " ".join(result.err.split())
    assert len(sandbox.graph.changes) == before


def test_no_sandbox_in_the_folder_is_a_usage_error(run: Any, tmp_path: Path) -> None:
    result = run("sandbox", "edit", "--dir", tmp_path / "nothing", "disable", "a@firma.ch")
    assert result.code == 2
    text = " ".join(result.err.split())
    assert "no sandbox in" in text and "entra_sync.yaml is missing" in text
    assert "deltasync sandbox serve --dir" in text


def test_a_stopped_sandbox_is_named_and_exits_1(run: Any, sandbox: Sandbox) -> None:
    sandbox.stop()
    result = run("sandbox", "edit", "--dir", sandbox.workdir, "disable", "a@firma.ch")
    assert result.code == 1
    text = " ".join(result.err.split())
    assert "no sandbox runs in" in text and sandbox.authority in text
    assert "deltasync sandbox serve --dir" in text


def test_the_secret_comes_from_the_env_file_and_never_shows(
    run: Any, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in sandbox.env:
        monkeypatch.delenv(name)
    user = in_scope(sandbox)[0]
    result = run("sandbox", "edit", "--dir", sandbox.workdir, "disable", user["id"])
    assert result.code == 0, result.err
    for secret in [*sandbox.env.values(), *sandbox.tokens.issued]:
        assert secret not in result.out + result.err


def test_edit_talks_to_a_real_sandbox_serve_process(tmp_path: Path) -> None:
    """``sandbox serve`` in its own process, ``sandbox edit`` in another, as in the README."""
    folder = tmp_path / "sandbox-run"
    twin = GraphSim(seed=7)  # serve's tenant: make_tenant is deterministic for a seed
    make_tenant(twin, 20, seed=7)
    upn = sorted(str(u["userPrincipalName"]) for u in twin.users() if u["accountEnabled"])[0]
    env = {k: v for k, v in os.environ.items() if not k.startswith("DELTASYNC_")}
    deltasync = [sys.executable, "-m", "deltasync"]
    serve = subprocess.Popen(
        [*deltasync, "sandbox", "serve", "--users", "20", "--dir", str(folder)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        assert serve.stdout is not None
        printed = "".join(iter(serve.stdout.readline, "Ctrl-C stops it.\n"))
        assert printed.startswith("sandbox running"), printed
        assert f"source {folder / 'sandbox.env'}" in printed
        assert f"sandbox edit --dir {folder}" in printed
        edit = [*deltasync, "sandbox", "edit", "--dir", str(folder)]
        done = subprocess.run(
            [*edit, "disable", upn], capture_output=True, text=True, env=env, timeout=60
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout == f"disabled {upn} (accountEnabled → false)\n"
        unknown = subprocess.run(
            [*edit, "enable", "niemand@firma.ch"], capture_output=True, text=True, env=env
        )
        assert unknown.returncode == 2 and "no user 'niemand@firma.ch'" in unknown.stderr
    finally:
        serve.send_signal(signal.SIGTERM)
        serve.wait(timeout=30)
    assert serve.returncode == 0
