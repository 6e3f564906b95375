"""What lands on which stream, for cron, pipes and people: the report on stdout, timestamped
log lines on stderr, ``-q``, ``--json`` on failure, ``--metrics-file``, the exports, ``state -c``
before the subcommand and ``--help`` without type metavars."""

from __future__ import annotations

import csv
import json
import re
import sqlite3
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from e2e_helpers import in_scope
from openpyxl import load_workbook

from deltasync import service
from deltasync.cli import run_cli
from deltasync.config import load_config
from deltasync.sandbox.server import CLIENT_SECRET_VAR, Sandbox, start_sandbox

STAMPED = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ run \d+ \S")
STAMPED_ANY = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ (run \d+|deltasync) \S")


@dataclass
class Result:
    code: int
    out: str
    err: str


@pytest.fixture
def sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Sandbox]:
    monkeypatch.delenv("DELTASYNC_CONFIG", raising=False)
    sb = start_sandbox(tmp_path / "sandbox", users=12, seed=3, page_size=15)
    for name, value in sb.env.items():
        monkeypatch.setenv(name, value)
    with sb:
        yield sb


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Any:
    def call(*args: str | Path) -> Result:
        capsys.readouterr()
        code = run_cli([str(a) for a in args])
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return call


def test_idle_run_report_on_stdout_and_every_stderr_line_stamped_with_the_run_id(
    cli: Any, sandbox: Sandbox
) -> None:
    cfg = sandbox.config_path
    first = cli("sync", "-c", cfg)
    assert first.code == 0, first.err
    assert "applied " in first.out and "full round" in first.out
    idle = cli("sync", "-c", cfg)
    assert idle.code == 0, idle.err
    assert "nothing to do" in idle.out
    lines = idle.err.splitlines()
    assert lines, "a plain run logs its phases"
    assert all(STAMPED.match(line) for line in lines), lines
    run_id = service.state_runs(load_config(cfg), 1)[0]["id"]
    assert all(f" run {run_id} " in line for line in lines)
    assert any(" pull: " in line for line in lines)


def test_quiet_prints_nothing_for_an_idle_run_and_the_report_when_something_changed(
    cli: Any, sandbox: Sandbox
) -> None:
    cfg = sandbox.config_path
    assert cli("sync", "-c", cfg).code == 0
    idle = cli("sync", "-c", cfg, "-q")
    assert (idle.code, idle.out, idle.err) == (0, "", "")
    idle_json = cli("sync", "-c", cfg, "--quiet", "--json")  # --json wins over -q on stdout
    assert (idle_json.code, idle_json.err) == (0, "")
    report = json.loads(idle_json.out)
    assert (report["status"], report["exit_code"], report["actions"]) == ("ok", 0, [])
    assert report["requests"]["eliza_writes"] == 0
    user = in_scope(sandbox)[0]
    sandbox.graph.update_user(user["id"], jobTitle="Koch")
    changed = cli("sync", "-c", cfg, "-q")
    assert changed.code == 0
    assert "'Koch'" in changed.out
    assert all(STAMPED.match(line) for line in changed.err.splitlines())
    assert cli("sync", "-c", cfg, "-q", "-v").code == 2


def test_failed_json_report_has_the_keys_of_a_good_one(
    cli: Any, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    good = json.loads(cli("sync", "-c", sandbox.config_path, "--json").out)
    monkeypatch.setenv(CLIENT_SECRET_VAR, "falsch-" + sandbox.env[CLIENT_SECRET_VAR][:3])
    bad = cli("sync", "-c", sandbox.config_path, "--json")
    assert bad.code == 1
    failed = json.loads(bad.out)  # stdout holds the JSON report and nothing else
    assert set(failed) == set(good)
    assert failed["status"] == "failed" and failed["exit_code"] == 1
    assert failed["error"]
    assert "internal error" not in bad.err
    assert all(STAMPED_ANY.match(line) for line in bad.err.splitlines()), bad.err


def test_lease_held_json_and_message_in_words(cli: Any, sandbox: Sandbox) -> None:
    with service.store_for(load_config(sandbox.config_path)) as store:
        assert store.acquire_lease("ops-host:4711:abcd")
        try:
            human = cli("sync", "-c", sandbox.config_path)
            as_json = cli("sync", "-c", sandbox.config_path, "--json")
        finally:
            store.release_lease("ops-host:4711:abcd")
    assert human.code == 75
    assert "process 4711 on ops-host" in human.err and "UTC" in human.err
    assert "{" not in human.err and "'holder'" not in human.err
    data = json.loads(as_json.out)
    assert data["exit_code"] == 75 and data["status"] == "failed"
    assert "process 4711 on ops-host" in data["error"]


def test_metrics_file_after_a_good_and_a_failed_run(
    cli: Any, sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    prom = tmp_path / "deltasync.prom"
    ok = cli("sync", "-c", sandbox.config_path, "--metrics-file", prom)
    assert ok.code == 0, ok.err
    text = prom.read_text()
    assert "deltasync_last_run_exit_code 0.0" in text
    n = len(in_scope(sandbox))
    assert re.search(rf'deltasync_objects_changed\{{[^}}]*kind="user"[^}}]*\}} {n}\.0', text), text
    monkeypatch.setenv(CLIENT_SECRET_VAR, "falsch")
    failed = cli("sync", "-c", sandbox.config_path, "--metrics-file", prom)
    assert failed.code == 1
    assert "deltasync_last_run_exit_code 1.0" in prom.read_text()


def test_bad_output_paths_are_usage_errors_before_any_request(
    cli: Any, sandbox: Sandbox, tmp_path: Path
) -> None:
    sandbox.eliza.reset_log()
    (tmp_path / "ordner.xlsx").mkdir()
    for args in (
        ("--export-excel", tmp_path / "plan.txt"),
        ("--export-excel", tmp_path / "nirgends" / "plan.xlsx"),
        ("--export-excel", tmp_path),  # a folder
        ("--export-excel", tmp_path / "ordner.xlsx"),  # a folder named like the file
        ("--export-excel", Path("/proc/plan.xlsx")),  # a folder no one may write to, root neither
        ("--metrics-file", tmp_path / "nirgends" / "x.prom"),
        ("--metrics-file", tmp_path),
        ("--metrics-file", Path("/proc/x.prom")),
    ):
        result = cli("sync", "-c", sandbox.config_path, *args)
        assert result.code == 2, (args, result.err)
        assert str(args[1]) in result.err
    assert sandbox.graph.request_count == 0 and sandbox.eliza.request_count == 0


def test_an_export_failing_after_the_run_still_prints_the_report(
    cli: Any, sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_a: Any, **_k: Any) -> list[Path]:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("deltasync.service.export_excel", broken)
    result = cli("sync", "-c", sandbox.config_path, "--export-excel", tmp_path / "plan.xlsx")
    assert result.code == 1
    assert "applied " in result.out
    assert "could not write" in result.out and "No space left" in result.out
    assert "internal error" not in result.err


def test_dry_run_plan_to_xlsx_and_export_excel_to_csv(
    cli: Any, sandbox: Sandbox, tmp_path: Path
) -> None:
    plan = tmp_path / "plan.xlsx"
    dry = cli("sync", "-c", sandbox.config_path, "--dry-run", "--export-excel", plan)
    assert dry.code == 0, dry.err
    assert "nothing was written" in dry.out
    book = load_workbook(plan)
    users = book["Entra users"]
    assert users.auto_filter.ref and users.freeze_panes == "A2"
    assert users["A1"].font.bold
    header = [c.value for c in users[1]]
    upns = [
        r[header.index("userPrincipalName")] for r in users.iter_rows(min_row=2, values_only=True)
    ]
    assert upns == sorted(upns, key=lambda u: str(u).lower())
    assert book["Plan"].max_row > 1

    assert cli("sync", "-c", sandbox.config_path).code == 0
    out = tmp_path / "users.csv"
    result = cli("export-excel", out, "-c", sandbox.config_path)
    assert result.code == 0, result.err
    assert not out.read_bytes().startswith(b"PK")  # not a zip (xlsx) under a .csv name
    rows = list(csv.DictReader(out.read_text(encoding="utf-8-sig").splitlines()))
    found = [r["userPrincipalName"] for r in rows]
    assert found == sorted(found, key=str.lower)
    assert set(found) == {u["userPrincipalName"] for u in sandbox.graph.users()}


def test_state_subcommands_take_config_before_or_after_their_name(
    cli: Any, sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no config/entra_sync.yaml here
    cfg = sandbox.config_path
    assert cli("sync", "-c", cfg).code == 0
    upn = in_scope(sandbox)[0]["userPrincipalName"]
    for args in (("user", upn), ("runs",), ("failures",)):
        before = cli("state", "-c", cfg, *args)
        after = cli("state", *args, "-c", cfg)
        assert before.code == 0, (args, before.err)
        assert before.out == after.out
    assert upn in cli("state", "-c", cfg, "user", upn).out


def test_help_shows_no_type_after_flags(cli: Any) -> None:
    commands = [
        (),
        ("sync",),
        ("resync",),
        ("state",),
        ("state", "user"),
        ("state", "runs"),
        ("state", "failures"),
        ("state", "reset"),
        ("export-excel",),
        ("check",),
        ("demo",),
        ("sandbox", "serve"),
        ("db", "upgrade"),
    ]
    for command in commands:
        result = cli(*command, "--help")
        assert result.code == 0, command
        assert "<bool>" not in result.out, command
        flag_rows = [line for line in result.out.splitlines() if "--help" in line]
        assert flag_rows and all("<" not in line for line in flag_rows), command
    sync_help = cli("sync", "--help").out
    assert "--quiet" in sync_help and "--metrics-file" in sync_help


HELP_PYTHON_TYPE = re.compile(
    r"<[^>\s]+>|class '|Optional\[|Union\[|NoneType|\blist\[|\bPath\b|\bpathlib\b"
)


def command_paths() -> list[tuple[str, ...]]:
    """Every command and group of the tree, so a new subcommand is checked without listing it."""
    import typer

    from deltasync.cli.app import app

    paths: list[tuple[str, ...]] = []

    def walk(command: Any, path: tuple[str, ...]) -> None:
        paths.append(path)
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, (*path, name))

    walk(typer.main.get_command(app), ())
    return paths


def test_no_help_page_shows_a_python_type_name(cli: Any) -> None:
    paths = command_paths()
    assert ("sandbox", "edit") in paths and ("undo",) in paths and ("state", "groups") in paths
    for command in paths:
        result = cli(*command, "--help")
        assert result.code == 0, command
        shown = HELP_PYTHON_TYPE.findall(result.out)
        assert not shown, (command, shown)
    edit = cli("sandbox", "edit", "--help").out
    assert "TEXT" in edit and "PATH" in edit


def test_every_hint_names_the_program_as_it_was_typed(
    cli: Any, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "argv", ["/opt/tools/deltasync-qa"])
    monkeypatch.delenv("UV_RUN_RECURSION_DEPTH", raising=False)
    cfg = sandbox.config_path
    undo = cli("undo", "999", "-c", cfg)
    assert undo.code == 2
    assert "`deltasync-qa state runs` lists the runs" in " ".join(undo.err.split())

    upn = in_scope(sandbox)[0]["userPrincipalName"]
    edit = cli("sandbox", "edit", "--dir", sandbox.workdir, "rename", upn)
    assert edit.code == 2
    assert "`deltasync-qa sandbox edit --dir D rename USER NEW_UPN`" in " ".join(edit.err.split())
    nowhere = cli("sandbox", "edit", "--dir", sandbox.workdir / "none", "disable", upn)
    assert "`deltasync-qa sandbox serve --dir" in " ".join(nowhere.err.split())

    url = load_config(cfg, env=sandbox.env).state.url
    service.db_upgrade(load_config(cfg, env=sandbox.env))
    with sqlite3.connect(url.removeprefix("sqlite:///")) as db:
        db.execute("UPDATE alembic_version SET version_num = '0002'")
    check = " ".join(cli("check", "-c", cfg).out.split())
    assert "will be migrated" in check and "(or `deltasync-qa db upgrade`)" in check
    for result in (undo, edit, nowhere):
        assert "deltasync " not in result.err.replace("deltasync-qa", "")


def test_json_actions_writes_every_action_as_json_lines_beside_the_json_report(
    cli: Any, sandbox: Sandbox, tmp_path: Path
) -> None:
    path = tmp_path / "actions.jsonl"
    result = cli("sync", "-c", sandbox.config_path, "--json", "--json-actions", path)
    assert result.code == 0
    report = json.loads(result.out)
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert report["actions_total"] == len(lines) == len(report["actions"]) > 0
    assert report["actions_truncated"] == 0
    key = ("entra_id", "kind", "op", "result")
    assert sorted(tuple(a[k] for k in key) for a in lines) == sorted(
        tuple(a[k] for k in key) for a in report["actions"]
    )
    assert {a["entra_id"] for a in lines if a["kind"] == "user"} == {
        u["id"] for u in in_scope(sandbox)
    }
