"""The state database is a cache of facts ELIZA and Graph also hold: losing it, damaging it,
locking it or leaving a dead lease in it loses nothing, duplicates nothing, and says so."""

from __future__ import annotations

import dataclasses
import logging
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from e2e_helpers import eliza_person_of, eliza_user_of, in_scope, pick, sync, writes
from sqlalchemy import create_engine, text

from deltasync import service
from deltasync.config import Config
from deltasync.errors import StateLockedError, exit_code_for
from deltasync.sandbox.server import Sandbox
from deltasync.state import database as state_database
from deltasync.state import open_store
from deltasync.state.database import mask_url

pytestmark = pytest.mark.sandbox(users=40, seed=3, page_size=15)


def state_file(config: Config) -> Path:
    url = config.state.url
    assert url.startswith("sqlite:///"), url
    return Path(url.removeprefix("sqlite:///"))


def test_a_failed_object_is_retried_by_the_very_next_run_and_state_says_so(
    sandbox: Sandbox, config: Config
) -> None:
    sandbox.eliza.fail_next(method="POST", path_contains="/api/user", status=400, n=1)
    first = sync(config)
    assert first.exit_code == 3, first.as_dict()
    (failed,) = service.state_failures(config)
    assert failed["next_try"] == "the next run"

    second = sync(config)  # seconds later, far within any backoff

    assert second.exit_code == 0, second.as_dict()
    assert len(eliza_user_of(sandbox, failed["entra_id"])) == 1
    assert service.state_failures(config) == []


def test_an_object_failing_again_is_tried_later_and_state_says_when(
    sandbox: Sandbox, config: Config
) -> None:
    for _ in range(2):  # the retry is the second run's only POST
        sandbox.eliza.fail_next(method="POST", path_contains="/api/user", status=400, n=1)
        assert sync(config).exit_code == 3
    (failed,) = service.state_failures(config)
    assert failed["attempts"] == 2
    assert failed["next_try"].startswith("the first run after ")
    sandbox.eliza.reset_log()
    assert sync(config).counts() == {}
    assert eliza_user_of(sandbox, failed["entra_id"]) == []


@pytest.mark.parametrize("orgunits", [False, True], ids=["users+persons", "with-orgunits"])
def test_a_deleted_state_database_loses_nothing_and_duplicates_nothing(
    sandbox: Sandbox, config: Config, orgunits: bool
) -> None:
    assert sync(config, orgunit_sync=orgunits).exit_code == 0
    changed, leaving = pick(sandbox, 2)
    sandbox.graph.update_user(leaving["id"], accountEnabled=False)
    assert sync(config, orgunit_sync=orgunits).exit_code == 0
    sandbox.graph.update_user(changed["id"], jobTitle="Leitung Hauswirtschaft")
    users, persons = dict(sandbox.eliza.users), dict(sandbox.eliza.persons)
    for path in state_file(config).parent.glob(state_file(config).name + "*"):
        path.unlink()  # the file and its -wal/-shm
    sandbox.eliza.reset_log()

    report = sync(config, orgunit_sync=orgunits)

    assert report.exit_code == 0, report.as_dict()
    assert report.round_kind == "full"
    sent = writes(sandbox)
    assert [w.method for w in sent if w.method == "POST"] == []
    assert [(w.method, w.json) for w in sent] == [("PATCH", {"position": "Leitung Hauswirtschaft"})]
    assert sorted(sandbox.eliza.users) == sorted(users)
    assert sorted(sandbox.eliza.persons) == sorted(persons)
    assert sandbox.eliza.users == {**users, **{k: sandbox.eliza.users[k] for k in users}}
    for entra in in_scope(sandbox):
        assert len(eliza_user_of(sandbox, entra["id"])) == 1
        assert len(eliza_person_of(sandbox, entra["id"])) == 1
    (gone,) = eliza_user_of(sandbox, leaving["id"])
    assert gone["is_active"] is False  # still archived, not touched again
    summary = service.state_summary(config)
    assert summary["links"]["user"]["active"] == len(in_scope(sandbox))
    sandbox.eliza.reset_log()
    assert sync(config, orgunit_sync=orgunits).counts() == {}
    assert sandbox.eliza.write_count == 0


DAMAGE = {
    "drop table link": lambda path: _sql(path, "DROP TABLE link"),
    "not a database": lambda path: path.write_bytes(b"\0garbage" * 512),
}


def _sql(path: Path, statement: str) -> None:
    conn = sqlite3.connect(path)
    try:
        conn.execute(statement)
        conn.commit()
    finally:
        conn.close()


@pytest.mark.parametrize("damage", DAMAGE.values(), ids=DAMAGE.keys())
def test_a_damaged_state_database_is_moved_aside_and_the_next_run_relinks_everything(
    sandbox: Sandbox, config: Config, damage: Callable[[Path], object]
) -> None:
    assert sync(config).exit_code == 0
    path = state_file(config)
    for suffix in ("-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    damage(path)
    sandbox.eliza.reset_log()

    report = sync(config)

    assert report.exit_code == 0, report.as_dict()
    assert report.round_kind == "full"
    n = len(in_scope(sandbox))  # not "nothing to do" on a silent empty state: all re-linked
    assert report.counts() == {"user": {"match": n}, "person": {"match": n}}
    assert sandbox.eliza.write_count == 0
    (moved,) = [p for p in path.parent.iterdir() if p.name.startswith(path.name + ".corrupt-")]
    assert any(f"moved to {moved}" in w for w in report.warnings), report.warnings
    history = service.state_summary(config)["history"]
    assert history["created_after"] == f"the damaged one was moved to {moved}"
    assert history["first_run_id"] == report.run_id == 1
    assert service.state_summary(config)["links"]["user"]["active"] == len(in_scope(sandbox))


def test_state_says_the_history_was_lost_with_a_deleted_database(
    sandbox: Sandbox, config: Config
) -> None:
    sync(config)
    sync(config)
    for path in state_file(config).parent.glob(state_file(config).name + "*"):
        path.unlink()
    sync(config)

    history = service.state_summary(config)["history"]

    assert history["created_after"] == "no database was found"
    assert history["first_run_id"] == 1
    assert "lost with the old file" in history["note"]
    assert [r["id"] for r in service.state_runs(config)] == [1]


def test_a_locked_state_database_stops_the_sync_with_exit_75_before_anything(
    sandbox: Sandbox, config: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    sync(config)
    monkeypatch.setattr(state_database, "LOCK_WAIT_S", 1)
    other = sqlite3.connect(state_file(config), isolation_level=None)
    other.execute("PRAGMA locking_mode = EXCLUSIVE")
    other.execute("BEGIN EXCLUSIVE")
    other.execute("UPDATE meta SET value = value")
    sandbox.graph.reset_log()
    try:
        with pytest.raises(StateLockedError) as caught:
            sync(config)
    finally:
        other.close()
    assert exit_code_for(caught.value) == 75
    assert "locked by another process" in str(caught.value)
    assert "cannot migrate" not in str(caught.value)
    assert sandbox.graph.request_count == 0


def test_a_lease_left_by_a_dead_process_is_taken_over_at_once(
    sandbox: Sandbox, config: Config
) -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    dead = f"{socket.gethostname()}:{child.pid}:0badc0de"
    sync(config)
    with open_store(config.state.url) as store:
        assert store.acquire_lease(dead, ttl_s=120)

    report = sync(config)

    assert report.exit_code == 0, report.as_dict()
    assert f"took over the lease of {dead}: that process is gone" in report.warnings


PG_LOCKS = {
    "a table lock on lease": "LOCK TABLE lease IN ACCESS EXCLUSIVE MODE",
    "a row lock on the lease row": "SELECT * FROM lease FOR UPDATE",
}


@pytest.mark.postgres
@pytest.mark.parametrize("statement", PG_LOCKS.values(), ids=PG_LOCKS.keys())
def test_a_locked_postgresql_state_database_is_a_short_stated_wait_then_exit_75_doing_nothing(
    sandbox: Sandbox,
    config: Config,
    pg_server: Any,
    statement: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    url = pg_server.create_database()
    on_pg = dataclasses.replace(config, state=dataclasses.replace(config.state, url=url))
    assert sync(on_pg).exit_code == 0
    monkeypatch.setattr(state_database, "LOCK_WAIT_S", 1)
    with open_store(url) as store:
        runs_before = store.runs(10)
        assert store.lease_info() is None
        store.acquire_lease("another-host:1:admin")  # a row to lock
    other = create_engine(url)
    with other.begin() as conn:  # expired: the next run takes it unless the row is locked
        conn.execute(text("UPDATE lease SET expires_at = now() - interval '1 minute'"))
    sandbox.graph.reset_log()
    sandbox.eliza.reset_log()
    try:
        with other.connect() as conn, conn.begin():
            conn.execute(text(statement))  # another session keeps it until its transaction ends
            started = time.monotonic()
            with caplog.at_level(logging.WARNING), pytest.raises(StateLockedError) as caught:
                sync(on_pg)
            waited = time.monotonic() - started
    finally:
        other.dispose()

    message = str(caught.value)
    assert exit_code_for(caught.value) == 75
    assert "locked by another process (waited 1 s); nothing was done" in message
    assert "pg_locks" in message and "migrat" not in message
    assert 1 <= waited < 1 + 5
    said = [r.getMessage() for r in caplog.records if "waiting up to" in r.getMessage()]
    assert said == [
        f"the state database {mask_url(url)} is locked by another session; waiting up to 1 s"
    ]
    assert sandbox.graph.request_count == 0
    assert sandbox.eliza.request_count == 0
    with open_store(url) as store:
        assert store.runs(10) == runs_before
        lease = store.lease_info()
        assert lease is not None and lease["holder"] == "another-host:1:admin"
    assert sync(on_pg).exit_code == 0  # released: the next run goes on
