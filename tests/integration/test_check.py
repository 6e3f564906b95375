"""``deltasync check`` end to end against the loopback sandbox: each line ✓/✗ with its fix,
an unreachable or silent ELIZA failing fast and named, the token's permissions per resource,
the schema, org unit and group ids, the state database, and the ASCII fallback."""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from deltasync.cli import run_cli
from deltasync.sandbox.server import Sandbox
from deltasync.state.revision import HEAD_REVISION

pytestmark = pytest.mark.sandbox(users=12, seed=3, page_size=15)


@dataclass
class Result:
    code: int
    out: str
    err: str
    seconds: float

    def line(self, name: str) -> str:
        """The line of check ``name`` (its mark, name and detail)."""
        found = [ln for ln in self.out.splitlines() if ln[2:].startswith(name + " ")]
        assert found, f"no line {name!r} in:\n{self.out}"
        return found[0]

    def fix_of(self, name: str) -> str:
        lines = self.out.splitlines()
        index = lines.index(self.line(name))
        assert lines[index + 1].startswith("  fix: "), lines[index : index + 2]
        return lines[index + 1]


@pytest.fixture
def check(
    sandbox: Sandbox, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> Callable[..., Result]:
    for name, value in sandbox.env.items():
        monkeypatch.setenv(name, value)

    def run(*args: str | Path, config: Path | None = None) -> Result:
        capsys.readouterr()
        started = time.monotonic()
        code = run_cli(["check", "-c", str(config or sandbox.config_path), *map(str, args)])
        took = time.monotonic() - started
        captured = capsys.readouterr()
        for secret in sandbox.env.values():
            assert secret not in captured.out + captured.err
        return Result(code, captured.out, captured.err, took)

    return run


def variant(sandbox: Sandbox, edit: Callable[[dict[str, Any]], None]) -> Path:
    data = yaml.safe_load(sandbox.config_path.read_text(encoding="utf-8"))
    edit(data)
    path = sandbox.config_path.with_name("variant.yaml")
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def state_db(sandbox: Sandbox) -> Path:
    return sandbox.workdir / "state" / "deltasync.db"


def test_every_line_passes_against_the_sandbox_and_json_gives_the_same_rows(
    check: Callable[..., Result], sandbox: Sandbox
) -> None:
    result = check()

    assert result.code == 0, result.out + result.err
    assert "✗" not in result.out
    for name in ("config", "graph credential", "graph users", "eliza host", "eliza token"):
        assert result.line(name).startswith("✓ ")
    assert sandbox.eliza_url.split("//")[1] in result.line("eliza host")
    assert "create and update" in result.line("eliza users")
    # no person exists yet: ELIZA cannot be asked whether the token may update one
    persons = result.line("eliza persons")
    assert persons.startswith("! ") and "not verified: update" in persons
    assert "does not exist yet" in result.line("state database")
    assert not state_db(sandbox).exists()  # check creates no database

    rows = json.loads(check("--json").out)
    names = [ln[2:].split("  ")[0] for ln in result.out.splitlines() if not ln.startswith(" ")]
    assert [r["check"] for r in rows] == names
    assert {r["status"] for r in rows} <= {"ok", "warn"}


def test_a_closed_eliza_port_fails_fast_naming_the_host(
    check: Callable[..., Result], sandbox: Sandbox
) -> None:
    host = f"127.0.0.1:{free_port()}"
    cfg = variant(sandbox, lambda d: d["eliza"].update(base_url=f"http://{host}"))

    result = check(config=cfg)

    assert result.code == 1
    assert result.seconds < 7
    assert result.line("eliza host").startswith("✗ ") and host in result.line("eliza host")
    assert "eliza.base_url" in result.fix_of("eliza host")
    assert "eliza users" not in result.out  # nothing else is tried on a dead host
    assert result.line("graph users").startswith("✓ ")


def test_a_host_that_accepts_tcp_but_never_answers_fails_within_seconds(
    check: Callable[..., Result], sandbox: Sandbox
) -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)  # the kernel completes the handshake; nobody ever answers
        host = f"127.0.0.1:{silent.getsockname()[1]}"
        cfg = variant(sandbox, lambda d: d["eliza"].update(base_url=f"http://{host}"))

        result = check(config=cfg)

    assert result.code == 1
    assert result.seconds < 7 + 1  # 5 s for ELIZA's answer; Graph is checked meanwhile
    line = result.line("eliza host")
    assert line.startswith("✗ ") and host in line and "no answer within 5 s" in line


def test_an_unreachable_token_endpoint_shows_no_python_objects_and_no_library_warning(
    check: Callable[..., Result], sandbox: Sandbox
) -> None:
    cfg = variant(
        sandbox, lambda d: d["entra"].update(authority_host=f"https://127.0.0.1:{free_port()}")
    )

    result = check(config=cfg)

    assert result.code == 1
    assert result.line("graph credential").startswith("✗ ")
    assert "object at 0x" not in result.out + result.err
    assert "get_token" not in result.err  # azure-identity's own WARNING line is silenced


def test_a_permission_taken_away_is_named_per_resource_with_its_fix(
    check: Callable[..., Result], sandbox: Sandbox
) -> None:
    sandbox.eliza.denied.add("POST user")
    sandbox.eliza.denied.add("organisation/orgunit")

    result = check()

    assert result.code == 1
    users = result.line("eliza users")
    assert users.startswith("✗ ") and "not create" in users
    assert "permission to create user" in result.fix_of("eliza users")
    orgunits = result.line("eliza org units")
    assert orgunits.startswith("✗ ") and "may not read" in orgunits and "403" in orgunits


def test_without_options_writes_are_reported_as_not_verified(
    check: Callable[..., Result], sandbox: Sandbox
) -> None:
    sandbox.eliza.serve_options = False

    result = check()

    assert result.code == 0
    users = result.line("eliza users")
    assert users.startswith("! ") and "not verified: create" in users
    assert "without writing" in users


def test_mapped_fields_org_units_and_group_ids_are_checked_against_eliza(
    check: Callable[..., Result], sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    schema = sandbox.eliza.openapi()
    del schema["components"]["schemas"]["Mitarbeitende"]["properties"]["position"]
    monkeypatch.setattr(sandbox.eliza, "openapi", lambda: schema)

    def edit(d: dict[str, Any]) -> None:
        d["orgunit_mapping"]["Gibt's AG"] = 9999
        d.setdefault("groups", {})["assign_to_group"] = 4242
        d.setdefault("matching", {})["protected_groups"] = [1, 777]

    result = check(config=variant(sandbox, edit))

    assert result.code == 1
    assert "position" in result.line("eliza schema mitarbeitende")
    assert "field_mapping" in result.fix_of("eliza schema mitarbeitende")
    assert result.line("eliza schema user").startswith("✓ ")
    assert "9999" in result.line("orgunit_mapping")
    groups = result.line("eliza group ids")
    assert "4242 (groups.assign_to_group)" in groups and "777" in groups
    assert "1 (" not in groups.split("no group", 1)[1]  # eliza_users exists

    flagged = check("--assign-to-group", "1", "--enable-orgunit-sync")
    assert "1 (--assign-to-group)" in flagged.line("eliza group ids")
    assert flagged.line("eliza memberships")


def test_state_database_current_newer_and_read_only(
    check: Callable[..., Result], sandbox: Sandbox
) -> None:
    assert run_cli(["db", "upgrade", "-c", str(sandbox.config_path)]) == 0
    current = check()
    assert current.line("state revision").startswith("✓ ")
    assert HEAD_REVISION in current.line("state revision")
    assert current.line("state writable").startswith("✓ ")

    db = state_db(sandbox)
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '9999'")
    newer = check()
    assert newer.code == 1
    assert "newer than this code" in newer.line("state revision")
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE alembic_version SET version_num = 'a1b2c3d4e5f6'")
    foreign = check()
    assert foreign.code == 1
    assert "newer" not in foreign.line("state revision")
    assert "not one of deltasync's migrations" in foreign.line("state revision")
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '9999'")
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchall() == [("9999",)]
        conn.execute("UPDATE alembic_version SET version_num = ?", (HEAD_REVISION,))

    read_only = variant(
        sandbox, lambda d: d["state"].update(url=f"sqlite:///file:{db}?mode=ro&uri=true")
    )
    locked = check(config=read_only)
    assert locked.code == 1
    assert locked.line("state writable").startswith("✗ ")
    assert "readonly" in locked.line("state writable")


def test_a_damaged_state_database_is_a_cross_saying_what_to_do_and_stays_as_it_was(
    check: Callable[..., Result], sandbox: Sandbox
) -> None:
    assert run_cli(["db", "upgrade", "-c", str(sandbox.config_path)]) == 0
    db = state_db(sandbox)
    with sqlite3.connect(db) as conn:
        conn.execute("DROP TABLE link")
    conn.close()
    before = sorted((p.name, p.read_bytes()) for p in db.parent.iterdir())

    result = check()

    assert result.code == 1
    assert result.line("state schema").startswith("✗ ")
    assert "is damaged" in result.line("state schema")
    assert "table link" in result.line("state schema")
    assert "moves it aside as deltasync.db.corrupt-" in result.fix_of("state schema")
    assert sorted((p.name, p.read_bytes()) for p in db.parent.iterdir()) == before


def test_a_configuration_error_exits_2(check: Callable[..., Result], sandbox: Sandbox) -> None:
    result = check(config=variant(sandbox, lambda d: d["eliza"].update(timeout_s="soon")))
    assert result.code == 2


def test_ascii_stdout_gets_ok_and_fail_instead_of_marks(sandbox: Sandbox) -> None:
    host = f"127.0.0.1:{free_port()}"
    cfg = variant(sandbox, lambda d: d["eliza"].update(base_url=f"http://{host}"))
    env = {**os.environ, **sandbox.env, "PYTHONIOENCODING": "ascii"}

    done = subprocess.run(
        [sys.executable, "-m", "deltasync", "check", "-c", str(cfg)],
        capture_output=True,
        env=env,
        timeout=60,
        check=False,
    )

    out = done.stdout.decode("ascii")  # nothing but ASCII on stdout
    assert done.returncode == 1, done.stderr
    assert out.startswith("ok   config ")
    assert any(ln.startswith("FAIL eliza host") and host in ln for ln in out.splitlines())


def test_every_unknown_graph_property_is_named_not_only_the_first(
    check: Callable[..., Result], sandbox: Sandbox
) -> None:
    def edit(d: dict[str, Any]) -> None:
        persons = d.setdefault("field_mapping", {}).setdefault("mitarbeitende", {})
        persons.update(position="jobTitel", telefon="mobilPhone")

    result = check(config=variant(sandbox, edit))

    assert result.code == 1
    catalogue = result.line("graph properties")
    assert catalogue.startswith("! ") and "jobTitel, mobilPhone" in catalogue
    assert "jobTitel, mobilPhone" in result.fix_of("graph users")
    assert check().line("graph properties").startswith("✓ ")
