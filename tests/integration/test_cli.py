"""The command line as an administrator uses it: every command through ``run_cli`` in-process
against the loopback sandbox, its exit codes, what goes to stdout and stderr, and that no
secret ever shows up in any output."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from e2e_helpers import in_scope
from openpyxl import load_workbook

from deltasync import __version__, service
from deltasync.cli import run_cli
from deltasync.config import load_config
from deltasync.sandbox.server import CLIENT_SECRET_VAR, ELIZA_TOKEN_VAR, Sandbox, start_sandbox


@dataclass
class Result:
    code: int
    out: str
    err: str


@dataclass
class Cli:
    """Runs ``deltasync ARGS`` in-process and checks every capture for secrets."""

    capsys: pytest.CaptureFixture[str]
    secret_sources: list[Callable[[], set[str]]] = field(default_factory=list)
    calls: int = 0

    def secrets(self) -> set[str]:
        return {s for source in self.secret_sources for s in source() if s}

    def assert_no_secret(self, text: str) -> None:
        leaked = sum(secret in text for secret in self.secrets())  # never echo the secret itself
        assert leaked == 0, f"{leaked} secret(s) appeared in the output"

    def __call__(self, *args: str | Path) -> Result:
        self.assert_no_secret("".join(self.capsys.readouterr()))  # anything printed before
        code = run_cli([str(a) for a in args])
        captured = self.capsys.readouterr()
        self.assert_no_secret(captured.out + captured.err)
        self.calls += 1
        return Result(code, captured.out, captured.err)


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Iterator[Cli]:
    monkeypatch.delenv("DELTASYNC_CONFIG", raising=False)
    runner = Cli(capsys)
    yield runner
    runner.assert_no_secret("".join(capsys.readouterr()))
    assert runner.calls > 0


@pytest.fixture
def sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli: Cli) -> Iterator[Sandbox]:
    sb = start_sandbox(tmp_path / "sandbox", users=25, seed=3, page_size=15)
    for name, value in sb.env.items():
        monkeypatch.setenv(name, value)
    cli.secret_sources.append(lambda: set(sb.env.values()))
    cli.secret_sources.append(lambda: set(sb.tokens.issued))  # access tokens handed out
    with sb:
        yield sb


@pytest.fixture
def cfg(sandbox: Sandbox) -> str:
    return str(sandbox.config_path)


def linked_users(sandbox: Sandbox) -> dict[str, dict[str, Any]]:
    return {u["remote_key"]: u for u in sandbox.eliza.users.values() if u.get("remote_key")}


def linked_persons(sandbox: Sandbox) -> dict[str, dict[str, Any]]:
    return {p["remote_key"]: p for p in sandbox.eliza.persons.values() if p.get("remote_key")}


def write_variant(sandbox: Sandbox, name: str, edit: Callable[[dict[str, Any]], None]) -> Path:
    """A copy of the sandbox config next to it (same state database), edited."""
    data = yaml.safe_load(sandbox.config_path.read_text(encoding="utf-8"))
    edit(data)
    path = sandbox.config_path.with_name(name)
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


def report_of(result: Result) -> dict[str, Any]:
    data = json.loads(result.out)  # the whole of stdout is one JSON object
    assert isinstance(data, dict)
    return data


# ------------------------------------------------------------------ sync
def test_sync_exits_0_and_reports_on_stdout(cli: Cli, sandbox: Sandbox, cfg: str) -> None:
    scope = in_scope(sandbox)
    first = cli("sync", "-c", cfg)
    assert first.code == 0, first.err
    assert "actions:" not in first.err and "applied" not in first.err  # the report: stdout
    assert f"user: create {len(scope)}" in first.out
    assert f"person: create {len(scope)}" in first.out
    assert "full round" in first.out
    assert set(linked_users(sandbox)) == {u["id"] for u in scope}

    changed = scope[0]
    old_title = changed.get("jobTitle")
    sandbox.graph.update_user(changed["id"], jobTitle="Leiterin Pflege")
    second = cli("sync", "-c", cfg)
    assert second.code == 0, second.err
    assert "Leiterin Pflege" not in second.err
    assert "incremental round" in second.out
    action = next(line for line in second.out.splitlines() if "person" in line and "update" in line)
    assert changed["userPrincipalName"] in action
    assert f"position: {old_title!r} → 'Leiterin Pflege'" in second.out


def test_sync_json_prints_one_report_on_stdout(cli: Cli, sandbox: Sandbox, cfg: str) -> None:
    result = cli("sync", "-c", cfg, "--json")
    assert result.code == 0, result.err
    report = report_of(result)
    n = len(in_scope(sandbox))
    assert report["exit_code"] == 0
    assert report["counts"] == {"user": {"create": n}, "person": {"create": n}}
    assert report["requests"]["graph"] >= 1
    assert report["requests"]["eliza_writes"] == sandbox.eliza.write_count
    assert report["failures"] == [] and report["held"] == [] and report["conflicts"] == []
    assert report["round"]["kind"] == "full"
    assert "actions:" not in result.err  # the human report is not printed besides the JSON
    assert "applied" not in result.err


def test_dry_run_lists_every_action_with_old_and_new_and_writes_nothing(
    cli: Cli, sandbox: Sandbox, cfg: str
) -> None:
    scope = in_scope(sandbox)
    dry = cli("sync", "-c", cfg, "--dry-run")
    assert dry.code == 0, dry.err
    assert sandbox.eliza.write_count == 0
    assert "nothing was written" in dry.out
    for u in scope:
        lines = [line for line in dry.out.splitlines() if u["userPrincipalName"] + " " in line]
        assert any("user" in line and "create" in line for line in lines), u["userPrincipalName"]
        assert any("person" in line and "create" in line for line in lines)
        assert f"username: null → {u['userPrincipalName']!r}" in dry.out
    actions = [line for line in dry.out.splitlines() if line.startswith("  + ")]
    assert len(actions) == 2 * len(scope)
    assert service.state_summary(load_config(sandbox.config_path))["links"]["user"]["active"] == 0

    assert cli("sync", "-c", cfg).code == 0
    (changed,) = scope[:1]
    sandbox.graph.update_user(changed["id"], department="Hauswirtschaft")
    sandbox.eliza.reset_log()
    update = cli("sync", "-c", cfg, "--dry-run")
    assert update.code == 0
    assert f"abteilung: {changed.get('department')!r} → 'Hauswirtschaft'" in update.out
    assert sandbox.eliza.write_count == 0
    assert linked_persons(sandbox)[changed["id"]]["abteilung"] == changed.get("department")


def test_dry_run_exports_users_and_the_plan_field_by_field(
    cli: Cli, sandbox: Sandbox, cfg: str, tmp_path: Path
) -> None:
    plan_file = tmp_path / "out" / "plan.xlsx"
    plan_file.parent.mkdir()  # a missing folder is a usage error now (a typo fails at once)
    result = cli("sync", "-c", cfg, "--dry-run", "--export-excel", plan_file, "--json")
    assert result.code == 0, result.err
    assert sandbox.eliza.write_count == 0
    report = report_of(result)
    book = load_workbook(plan_file, read_only=True)
    assert book.sheetnames == ["Entra users", "Plan"]
    users = [list(r) for r in book["Entra users"].iter_rows(values_only=True)]
    assert "userPrincipalName" in users[0]
    assert len(users) - 1 == len(sandbox.graph.users())
    plan = [list(r) for r in book["Plan"].iter_rows(values_only=True)]
    header = plan[0]
    assert header[:7] == ["user", "entra_id", "kind", "action", "field", "old", "new"]
    rows = [dict(zip(header, r, strict=True)) for r in plan[1:]]
    assert len(rows) == sum(len(a["changes"]) for a in report["actions"])
    for u in in_scope(sandbox):
        (username,) = [
            r
            for r in rows
            if r["entra_id"] == u["id"] and r["kind"] == "user" and r["field"] == "username"
        ]
        assert (username["action"], username["old"], username["new"]) == (
            "create",
            None,
            u["userPrincipalName"],
        )
    cli.assert_no_secret(json.dumps(users + plan, default=str))


def test_limit_users_applies_that_many_and_the_next_run_the_rest(
    cli: Cli, sandbox: Sandbox, cfg: str
) -> None:
    first = cli("sync", "-c", cfg, "--limit-users", "3")
    assert first.code == 0, first.err
    assert len(linked_users(sandbox)) == 3
    assert len(linked_persons(sandbox)) == 3
    assert "wait for later runs" in first.out
    second = cli("sync", "-c", cfg, "--json")
    assert second.code == 0
    rest = len(in_scope(sandbox)) - 3
    assert report_of(second)["counts"] == {"user": {"create": rest}, "person": {"create": rest}}
    assert set(linked_users(sandbox)) == {u["id"] for u in in_scope(sandbox)}
    assert cli("sync", "-c", cfg, "--limit-users", "0").code == 2


def test_limit_users_with_changed_settings_leaves_the_rest_for_the_next_runs(
    cli: Cli, sandbox: Sandbox, cfg: str
) -> None:
    assert cli("sync", "-c", cfg).code == 0
    limited = cli("sync", "-c", cfg, "--assign-to-group", "1", "--limit-users", "3")
    assert limited.code == 0, limited.err
    assert sum(1 in u["groups"] for u in linked_users(sandbox).values()) == 3
    assert cli("sync", "-c", cfg, "--assign-to-group", "1").code == 0
    assert all(1 in u["groups"] for u in linked_users(sandbox).values())


def test_skip_users_and_skip_mitarbeitende_leave_their_kind_to_the_next_run(
    cli: Cli, sandbox: Sandbox, cfg: str
) -> None:
    result = cli("sync", "-c", cfg, "--skip-users", "--json")
    assert result.code == 0, result.err
    assert set(report_of(result)["counts"]) == {"person"}
    assert linked_users(sandbox) == {}
    assert set(linked_persons(sandbox)) == {u["id"] for u in in_scope(sandbox)}

    result = cli("sync", "-c", cfg, "--json")  # the users the skipping run left out
    assert result.code == 0, result.err
    n = len(in_scope(sandbox))
    assert report_of(result)["counts"] == {"user": {"create": n}, "person": {"update": n}}
    users = linked_users(sandbox)
    assert set(users) == {u["id"] for u in in_scope(sandbox)}
    assert all(p["user"] == users[k]["id"] for k, p in linked_persons(sandbox).items())

    newcomer = in_scope(sandbox)[0]
    sandbox.graph.update_user(newcomer["id"], jobTitle="Koch")
    result = cli("sync", "-c", cfg, "--skip-mitarbeitende", "--json")
    assert result.code == 0, result.err
    assert report_of(result)["counts"] == {}  # the change is to a person field only
    assert linked_persons(sandbox)[newcomer["id"]]["position"] != "Koch"

    result = cli("sync", "-c", cfg, "--json")
    assert result.code == 0, result.err
    assert report_of(result)["counts"] == {"person": {"update": 1}}
    assert linked_persons(sandbox)[newcomer["id"]]["position"] == "Koch"

    both = cli("sync", "-c", cfg, "--skip-users", "--skip-mitarbeitende")
    assert both.code == 2
    assert "--skip-users" in both.err


def test_assign_to_group_adds_the_group_and_keeps_the_others(
    cli: Cli, sandbox: Sandbox, cfg: str
) -> None:
    existing = in_scope(sandbox)[0]
    team = sandbox.eliza.add_customgroup("Pflege-Team")
    sandbox.eliza.add_user(
        username=existing["userPrincipalName"],
        email=existing["mail"],
        first_name=existing["givenName"],
        last_name=existing["surname"],
        is_active=True,
        groups=[team["id"]],
    )
    result = cli("sync", "-c", cfg, "--assign-to-group", "1")
    assert result.code == 0, result.err
    users = linked_users(sandbox)
    assert set(users) == {u["id"] for u in in_scope(sandbox)}
    assert sorted(users[existing["id"]]["groups"]) == sorted([1, team["id"]])
    for entra_id, user in users.items():
        assert 1 in user["groups"], entra_id


def test_orgunit_sync_creates_memberships_for_mapped_companies(
    cli: Cli, sandbox: Sandbox, cfg: str
) -> None:
    result = cli("sync", "-c", cfg, "--enable-orgunit-sync")
    assert result.code == 0, result.err
    persons = linked_persons(sandbox)
    memberships = {(m["mitarbeiter"], m["orgunit"]) for m in sandbox.eliza.memberships.values()}
    expected = {
        (persons[u["id"]]["id"], sandbox.orgunit_mapping[u["companyName"]])
        for u in in_scope(sandbox)
        if u.get("companyName") in sandbox.orgunit_mapping
    }
    assert expected
    assert memberships == expected


def test_resync_reads_everything_and_verify_target_repairs_drift(
    cli: Cli, sandbox: Sandbox, cfg: str
) -> None:
    assert cli("sync", "-c", cfg).code == 0
    result = cli("resync", "-c", cfg, "--json")
    assert result.code == 0, result.err
    report = report_of(result)
    assert report["round"]["kind"] == "full"
    assert report["round"]["objects_seen"] >= len(in_scope(sandbox))
    assert report["counts"] == {}

    target = in_scope(sandbox)[0]
    person = linked_persons(sandbox)[target["id"]]
    token = sandbox.env[ELIZA_TOKEN_VAR]
    response = httpx.patch(
        f"{sandbox.eliza_url}/api/organisation/mitarbeitende/{person['id']}",
        json={"position": "von Hand geändert"},
        headers={"Authorization": f"Token {token}"},
    )
    assert response.status_code == 200
    verify = cli("resync", "-c", cfg, "--verify-target")
    assert verify.code == 0, verify.err
    assert linked_persons(sandbox)[target["id"]]["position"] == target.get("jobTitle")


# ------------------------------------------------------------------ state
def test_state_summary_human_and_json(cli: Cli, sandbox: Sandbox, cfg: str) -> None:
    assert cli("sync", "-c", cfg).code == 0
    n = len(in_scope(sandbox))
    human = cli("state", "-c", cfg)
    assert human.code == 0, human.err
    assert "delta token yes" in human.out
    assert f"mirror: {len(sandbox.graph.users())} Entra users" in human.out
    assert f"linked users: {n} active" in human.out
    assert "pending: 0 failed, 0 in conflict" in human.out
    as_json = cli("state", "-c", cfg, "--json")
    assert as_json.code == 0
    data = json.loads(as_json.out)
    assert data["links"]["user"]["active"] == n
    assert data["cursors"][0]["has_delta_token"] is True
    assert data["last_runs"][0]["exit_code"] == 0


def test_state_user_by_upn_and_by_eliza_id_and_unknown(
    cli: Cli, sandbox: Sandbox, cfg: str
) -> None:
    assert cli("sync", "-c", cfg).code == 0
    entra = in_scope(sandbox)[0]
    eliza_id = linked_users(sandbox)[entra["id"]]["id"]
    by_upn = cli("state", "user", entra["userPrincipalName"].upper(), "-c", cfg)
    assert by_upn.code == 0, by_upn.err
    assert entra["userPrincipalName"] in by_upn.out
    assert f"ELIZA #{eliza_id}" in by_upn.out
    assert "created by the sync" in by_upn.out
    by_id = cli("state", "user", str(eliza_id), "-c", cfg, "--json")
    assert by_id.code == 0
    # user and person ids are separate id spaces in ELIZA: the id may name two people
    found = [f for f in json.loads(by_id.out) if f["links"]["user"]["eliza_id"] == eliza_id]
    assert [f["entra_id"] for f in found] == [entra["id"]]
    unknown = cli("state", "user", "niemand@firma.ch", "-c", cfg)
    assert unknown.code == 1
    assert "niemand@firma.ch" in unknown.out + unknown.err


def test_state_runs_limit_shows_the_newest_runs(cli: Cli, sandbox: Sandbox, cfg: str) -> None:
    for _ in range(3):
        assert cli("sync", "-c", cfg).code == 0
    result = cli("state", "runs", "-c", cfg, "--limit", "2")
    assert result.code == 0, result.err
    lines = [line for line in result.out.splitlines() if line.strip()]
    assert len(lines) == 2
    assert lines[0].strip().startswith("#3") and lines[1].strip().startswith("#2")
    runs = json.loads(cli("state", "runs", "-c", cfg, "--limit", "2", "--json").out)
    assert [r["id"] for r in runs] == [3, 2]


def test_state_failures_lists_a_rejected_push_and_when_it_is_retried(
    cli: Cli, sandbox: Sandbox, cfg: str
) -> None:
    sandbox.eliza.fail_next(
        method="POST",
        path_contains="/api/organisation/mitarbeitende",
        status=400,
        body={"position": ["Ungültiger Wert."]},
    )
    run = cli("sync", "-c", cfg)
    assert run.code == 3, run.err
    assert "failures:" in run.out
    result = cli("state", "failures", "-c", cfg)
    assert result.code == 0
    assert "ERROR" in result.out and "next try" in result.out
    (row,) = json.loads(cli("state", "failures", "-c", cfg, "--json").out)
    assert row["kind"] == "person" and row["category"] == "error"
    assert row["label"] in {u["userPrincipalName"] for u in in_scope(sandbox)}
    summary = cli("state", "-c", cfg)
    assert "pending: 1 failed" in summary.out


def test_state_reset_makes_the_next_sync_a_full_round(cli: Cli, sandbox: Sandbox, cfg: str) -> None:
    assert cli("sync", "-c", cfg).code == 0
    refused = cli("state", "reset", "-c", cfg)  # stdin is not a terminal under pytest
    assert refused.code == 2
    assert "--yes" in refused.err
    assert report_of(cli("sync", "-c", cfg, "--json"))["round"]["kind"] == "incremental"
    reset = cli("state", "reset", "-c", cfg, "--yes")
    assert reset.code == 0, reset.err
    assert "next run reads everything" in reset.out
    after = report_of(cli("sync", "-c", cfg, "--json"))
    assert after["round"]["kind"] == "full"
    assert after["counts"] == {}  # mirror and links were kept: nothing is created twice


# ------------------------------------------------------------------ other commands
def test_export_excel_writes_the_mirrored_users(
    cli: Cli, sandbox: Sandbox, cfg: str, tmp_path: Path
) -> None:
    assert cli("sync", "-c", cfg).code == 0
    path = tmp_path / "users.xlsx"
    result = cli("export-excel", path, "-c", cfg)
    assert result.code == 0, result.err
    book = load_workbook(path, read_only=True)
    assert book.sheetnames == ["Entra users"]
    rows = [list(r) for r in book["Entra users"].iter_rows(values_only=True)]
    header = rows[0]
    by_upn = {r[header.index("userPrincipalName")]: r for r in rows[1:]}
    assert set(by_upn) == {u["userPrincipalName"] for u in sandbox.graph.users()}
    linked = linked_users(sandbox)
    for u in in_scope(sandbox):
        assert by_upn[u["userPrincipalName"]][header.index("eliza_user")] == linked[u["id"]]["id"]


def test_check_passes_against_the_sandbox_and_names_what_fails(
    cli: Cli, sandbox: Sandbox, cfg: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    ok = cli("check", "-c", cfg)
    assert ok.code == 0, ok.out + ok.err
    assert "✗" not in ok.out
    assert ok.out.startswith("✓ config ")  # the status is a column of its own
    rows = json.loads(cli("check", "-c", cfg, "--json").out)
    assert {r["check"] for r in rows} >= {
        "config",
        "graph credential",
        "graph token permissions",
        "graph users",
        "eliza host",
        "eliza token",
        "eliza users",
        "orgunit_mapping",
        "state database",
    }
    assert all(r["status"] in ("ok", "warn") for r in rows), rows

    bad_mapping = write_variant(
        sandbox, "unknown-orgunit.yaml", lambda d: d["orgunit_mapping"].update({"Gibt's AG": 9999})
    )
    result = cli("check", "-c", bad_mapping, "--json")
    assert result.code == 1
    (row,) = [r for r in json.loads(result.out) if r["check"] == "orgunit_mapping"]
    assert row["status"] == "fail" and "9999" in row["detail"]

    wrong = "0" * 40
    cli.secret_sources.append(lambda: {wrong})
    monkeypatch.setenv(ELIZA_TOKEN_VAR, wrong)
    denied = cli("check", "-c", cfg)
    assert denied.code == 1
    assert any(line.startswith("✗") and "eliza token" in line for line in denied.out.splitlines())
    assert any(line.startswith("✓") and "graph" in line for line in denied.out.splitlines())


@pytest.mark.parametrize(
    ("edit", "named"),
    [
        (
            lambda d: (
                d.setdefault("field_mapping", {})
                .setdefault("mitarbeitende", {})
                .update(position="jobTitel")
            ),
            "jobTitel",
        ),
        (
            lambda d: d.setdefault("advanced", {}).update(user_filter="accountEnabld eq true"),
            "accountEnabld",
        ),
        (
            lambda d: (
                d.setdefault("field_mapping", {})
                .setdefault("mitarbeitende", {})
                .update(position="{givenNam} x")
            ),
            "givenNam",
        ),
    ],
)
def test_check_fails_naming_a_misspelt_property(
    cli: Cli, sandbox: Sandbox, edit: Callable[[dict[str, Any]], None], named: str
) -> None:
    variant = write_variant(sandbox, "misspelt.yaml", edit)

    result = cli("check", "-c", variant)

    assert result.code in (1, 2)  # caught at config load (2) or by Graph's 400 (1)
    assert named in result.out + result.err
    assert "Traceback" not in result.err


def test_check_names_a_missing_groups_permission_with_its_fix(cli: Cli, sandbox: Sandbox) -> None:
    sandbox.tokens.roles.discard("GroupMember.Read.All")
    variant = write_variant(
        sandbox, "groups.yaml", lambda d: d["sync_options"].update(sync_groups=True)
    )

    result = cli("check", "-c", variant)

    assert result.code == 1
    failing = [line for line in result.out.splitlines() if line.startswith("✗")]
    assert any("graph token permissions" in line for line in failing)
    assert any("graph groups" in line for line in failing)
    assert "GroupMember.Read.All" in result.out
    assert "Grant admin consent" in result.out


def test_db_upgrade_migrates_then_reports_current(cli: Cli, sandbox: Sandbox, cfg: str) -> None:
    first = cli("db", "upgrade", "-c", cfg)
    assert first.code == 0, first.err
    assert "state database at revision" in first.out
    assert (sandbox.workdir / "state" / "deltasync.db").exists()
    again = cli("db", "upgrade", "-c", cfg)
    assert again.code == 0
    assert "already current" in again.out


def test_version(cli: Cli) -> None:
    result = cli("--version")
    assert result.code == 0
    assert result.out.strip() == f"deltasync {__version__}"


def test_python_dash_m_prints_the_version() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "deltasync", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"deltasync {__version__}"


def test_demo_runs_the_initial_and_the_incremental_sync(cli: Cli, tmp_path: Path) -> None:
    result = cli("demo", "--users", "30", "--dir", tmp_path / "demo")
    assert result.code == 0, result.err
    assert "initial sync" in result.out  # the story and its reports on stdout
    assert "incremental sync" in result.out
    assert "full round" in result.err  # the log line of the first run
    assert "incremental round" in result.out  # the second run's report
    assert (tmp_path / "demo" / "state" / "deltasync.db").exists()
    assert "state -c" in result.out  # the hint names the program as it was started


# ------------------------------------------------------------------ exit codes
def test_configuration_errors_exit_2_naming_every_key_and_the_file(
    cli: Cli, sandbox: Sandbox, tmp_path: Path
) -> None:
    def break_it(data: dict[str, Any]) -> None:
        del data["eliza"]["base_url"]
        data["eliza"]["max_concurrency"] = "viele"

    broken = write_variant(sandbox, "broken.yaml", break_it)
    sandbox.eliza.reset_log()
    result = cli("sync", "-c", broken)
    assert result.code == 2
    assert "eliza.base_url" in result.err
    assert "eliza.max_concurrency" in result.err
    assert str(broken) in result.err
    assert sandbox.eliza.request_count == 0 and sandbox.graph.request_count == 0

    missing = cli("state", "-c", tmp_path / "nirgends.yaml")
    assert missing.code == 2
    assert "nirgends.yaml" in missing.err


def test_unset_secret_variable_is_a_configuration_error(
    cli: Cli, sandbox: Sandbox, cfg: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(ELIZA_TOKEN_VAR)
    result = cli("sync", "-c", cfg)
    assert result.code == 2
    assert "eliza.api_token" in result.err and ELIZA_TOKEN_VAR in result.err
    assert cfg in result.err


def test_wrong_client_secret_exits_1_without_showing_it(
    cli: Cli, sandbox: Sandbox, cfg: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    wrong = "falsches-geheimnis-" + sandbox.env[CLIENT_SECRET_VAR][:4]
    cli.secret_sources.append(lambda: {wrong})
    monkeypatch.setenv(CLIENT_SECRET_VAR, wrong)
    result = cli("sync", "-c", cfg)
    assert result.code == 1
    assert "error" in result.err.lower()
    assert sandbox.eliza.write_count == 0
    as_json = cli("sync", "-c", cfg, "--json")
    assert as_json.code == 1


def test_lease_held_by_another_run_exits_75_and_does_nothing(
    cli: Cli, sandbox: Sandbox, cfg: str
) -> None:
    config = load_config(sandbox.config_path)
    with service.store_for(config) as store:
        assert store.acquire_lease("other:1:x")
        try:
            result = cli("sync", "-c", cfg)
        finally:
            store.release_lease("other:1:x")
    assert result.code == 75
    assert "lease" in result.err
    assert sandbox.eliza.request_count == 0 and sandbox.graph.request_count == 0
    assert cli("sync", "-c", cfg).code == 0


def test_conflict_exits_3_is_listed_and_a_dry_run_still_exits_0(
    cli: Cli, sandbox: Sandbox, cfg: str
) -> None:
    victim = in_scope(sandbox)[0]
    sandbox.eliza.add_user(
        username="chef",
        email=victim["mail"],
        first_name="Chef",
        last_name="Admin",
        is_active=True,
        is_superuser=True,
    )
    dry = cli("sync", "-c", cfg, "--dry-run")
    assert dry.code == 0, dry.err
    run = cli("sync", "-c", cfg)
    assert run.code == 3, run.err
    assert "conflicts:" in run.out
    assert victim["userPrincipalName"] in run.out
    failures = json.loads(cli("state", "failures", "-c", cfg, "--json").out)
    assert {(f["entra_id"], f["category"]) for f in failures} == {(victim["id"], "conflict")}
    assert "CONFLICT" in cli("state", "failures", "-c", cfg).out
    others = {u["id"] for u in in_scope(sandbox)} - {victim["id"]}
    assert set(linked_users(sandbox)) == others  # the rest proceeded


def test_held_deactivations_exit_4_until_allow_deletes(
    cli: Cli, sandbox: Sandbox, cfg: str
) -> None:
    strict = write_variant(
        sandbox, "strict.yaml", lambda d: d.update({"deprovisioning": {"max_deactivations": 2}})
    )
    assert cli("sync", "-c", strict).code == 0
    leavers = in_scope(sandbox)[:3]
    for u in leavers:
        sandbox.graph.disable_user(u["id"])
    dry = cli("sync", "-c", strict, "--dry-run")
    assert dry.code == 0
    assert "held:" in dry.out
    held = cli("sync", "-c", strict)
    assert held.code == 4, held.err
    assert "held:" in held.out and "--allow-deletes" in held.out
    for u in leavers:
        assert u["userPrincipalName"] in held.out
        assert linked_users(sandbox)[u["id"]]["is_active"] is True
    assert "held deactivations: 3" in cli("state", "-c", strict).out
    released = cli("sync", "-c", strict, "--allow-deletes")
    assert released.code == 0, released.err
    assert not any(linked_users(sandbox)[u["id"]]["is_active"] for u in leavers)


def test_config_from_option_and_from_environment_variable(
    cli: Cli, sandbox: Sandbox, cfg: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    nowhere = cli("state")
    assert nowhere.code == 2
    assert "entra_sync.yaml" in nowhere.err
    by_option = cli("state", "-c", cfg, "--json")
    assert by_option.code == 0
    monkeypatch.setenv("DELTASYNC_CONFIG", cfg)
    by_env = cli("state", "--json")
    assert by_env.code == 0
    assert json.loads(by_env.out)["state_url"] == json.loads(by_option.out)["state_url"]
    synced = cli("sync", "--json")
    assert synced.code == 0
    assert len(linked_users(sandbox)) == len(in_scope(sandbox))
