"""Opening a damaged, foreign, locked or abandoned state database, on SQLite and PostgreSQL.

A damaged SQLite file is moved aside (never overwritten) and a fresh database started, saying
where; a damaged server database is never touched, the error says what to do; ``check`` says a
damaged database is damaged and what to do, changing nothing; a revision the
code does not know is called newer only when it is; a locked database is a short, stated wait
and exit 75; a lease whose process is gone is taken over at once.
"""

from __future__ import annotations

import logging
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from deltasync.errors import StateDamagedError, StateLockedError, StateStoreError, exit_code_for
from deltasync.models import Kind, Link
from deltasync.state import database as state_database
from deltasync.state import open_store, upgrade
from deltasync.state.database import sqlite_file
from deltasync.state.lease import holder_is_gone
from deltasync.state.probe import probe_state
from deltasync.state.revision import HEAD_REVISION


def execute(url: str, *statements: str) -> None:
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            for statement in statements:
                conn.execute(text(statement))
    finally:
        engine.dispose()


def seeded(url: str) -> None:
    with open_store(url) as store:
        store.save_link(Link("a", Kind.USER, 7, "created", store_now(), {"username": "a"}, 1))


def store_now() -> Any:
    from datetime import UTC, datetime

    return datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


def corrupt_copies(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if ".corrupt-" in p.name)


def assert_fresh(url: str) -> None:
    with open_store(url) as store:
        assert store.all_links(Kind.USER) == []
        assert store.notices == []
        created = store.created()
        assert created is not None


DAMAGE = {
    "dropped link table": ["DROP TABLE link"],
    "altered link table": ["ALTER TABLE link RENAME COLUMN pushed TO pushed_old"],
    "no revision (half-migrated)": ["DROP TABLE alembic_version"],
}


@pytest.mark.parametrize("statements", DAMAGE.values(), ids=DAMAGE.keys())
def test_a_damaged_sqlite_database_is_moved_aside_and_a_fresh_one_started(
    tmp_path: Path, statements: list[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    seeded(url)
    execute(url, *statements)

    with open_store(url) as store:
        (message,) = store.notices
        assert store.all_links(Kind.USER) == []  # a fresh database, not a silent empty one
        created = store.created()

    (moved,) = corrupt_copies(tmp_path)
    assert moved.name.startswith("state.db.corrupt-") and moved.name.endswith("Z")
    assert f"moved to {moved}" in message
    assert "re-links every ELIZA object by remote_key" in message
    assert created is not None and created[1] == f"the damaged one was moved to {moved}"
    kept = sqlite3.connect(moved)  # the damaged file is kept as it was
    try:
        assert kept.execute("SELECT count(*) FROM meta").fetchone() is not None
    finally:
        kept.close()
    assert_fresh(url)


def test_a_file_that_is_not_a_database_is_moved_aside_and_kept_byte_for_byte(
    tmp_path: Path,
) -> None:
    path = tmp_path / "state.db"
    path.write_bytes(b"this is not a SQLite file\n" * 100)
    url = f"sqlite:///{path}"

    with open_store(url) as store:
        (message,) = store.notices

    (moved,) = corrupt_copies(tmp_path)
    assert moved.read_bytes() == b"this is not a SQLite file\n" * 100
    assert "not a SQLite database" in message
    assert_fresh(url)


def test_a_second_damage_in_the_same_second_never_overwrites_the_first(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    url = f"sqlite:///{path}"
    for n in range(2):
        path.write_bytes(f"garbage {n}".encode())
        open_store(url).close()
    assert sorted(p.read_bytes() for p in corrupt_copies(tmp_path)) == [b"garbage 0", b"garbage 1"]


@pytest.mark.postgres
@pytest.mark.parametrize("statements", DAMAGE.values(), ids=DAMAGE.keys())
def test_a_damaged_postgresql_database_is_never_touched_and_the_error_says_what_to_do(
    pg_server: Any, statements: list[str]
) -> None:
    url = pg_server.create_database()
    seeded(url)
    execute(url, *statements)

    with pytest.raises(StateDamagedError) as caught:
        open_store(url).close()

    message = str(caught.value)
    assert "is damaged" in message
    assert "never moves or drops a server database" in message
    assert "re-links every ELIZA object by remote_key" in message
    assert exit_code_for(caught.value) == 1
    with pytest.raises(StateDamagedError):  # still there, still refused: nothing was changed
        open_store(url).close()


def test_the_message_names_the_broken_table(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    seeded(url)
    execute(url, "DROP TABLE link")
    with open_store(url) as store:
        (message,) = store.notices
    assert "table link" in message
    assert "does not match its revision" in message


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def fresh_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'state.db'}"
    else:
        yield request.getfixturevalue("pg_server").create_database()


# ---------------------------------------------------------------- check: read, never touched
CHECK_DAMAGE = {
    **DAMAGE,
    "several revisions": ["INSERT INTO alembic_version (version_num) VALUES ('0002')"],
}
CHECK_FOUND = {  # (line, what it says it found)
    "dropped link table": ("state schema", "table link"),
    "altered link table": ("state schema", "table link"),
    "no revision (half-migrated)": ("state schema", "a migration was interrupted"),
    "several revisions": ("state database", f"several schema revisions (0002, {HEAD_REVISION})"),
}


def snapshot(url: str) -> object:
    """What the database holds, to show that check changed nothing."""
    path = sqlite_file(url)
    if path is not None:
        return sorted((p.name, p.read_bytes()) for p in path.parent.iterdir())
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            tables = conn.execute(
                text(
                    "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
                )
            ).scalars()
            return {t: conn.execute(text(f'SELECT * FROM "{t}"')).all() for t in sorted(tables)}
    finally:
        engine.dispose()


@pytest.mark.parametrize("damage", CHECK_DAMAGE.keys())
def test_check_says_a_damaged_database_is_damaged_and_what_to_do_without_touching_it(
    fresh_url: str, damage: str
) -> None:
    seeded(fresh_url)
    execute(fresh_url, *CHECK_DAMAGE[damage])
    before = snapshot(fresh_url)

    lines = {p.name: p for p in probe_state(fresh_url)}

    name, found = CHECK_FOUND[damage]
    line = lines[name]
    assert line.ok is False, lines
    assert "is damaged" in line.detail and found in line.detail
    assert [p.name for p in lines.values() if p.ok is False] == [name]
    assert "state writable" not in lines  # no write test on a damaged database
    if sqlite_file(fresh_url) is not None:
        assert "the next sync moves it aside as state.db.corrupt-<UTC time>" in line.fix
    else:
        assert "never moves or drops a server database" in line.fix
    assert "re-links every ELIZA object by remote_key" in line.fix
    assert snapshot(fresh_url) == before  # check never writes, never moves


def test_check_says_a_file_that_is_not_a_database_is_damaged_and_leaves_it(
    tmp_path: Path,
) -> None:
    path = tmp_path / "state.db"
    path.write_bytes(b"this is not a SQLite file\n" * 100)

    (line,) = probe_state(f"sqlite:///{path}")

    assert line.name == "state database" and line.ok is False
    assert "is damaged: not a SQLite database (file is not a database)" in line.detail
    assert "moves it aside as state.db.corrupt-<UTC time>" in line.fix
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.db"]
    assert path.read_bytes() == b"this is not a SQLite file\n" * 100


def test_check_finds_a_sound_database_sound(fresh_url: str) -> None:
    seeded(fresh_url)
    lines = {p.name: p for p in probe_state(fresh_url)}
    assert [(n, p.ok) for n, p in lines.items()] == [
        ("state database", True),
        ("state revision", True),
        ("state schema", True),
        ("state writable", True),
    ]


# ------------------------------------------------------------------- unknown revisions
@pytest.mark.parametrize("revision", ["a1b2c3d4e5f6", "0000_prerelease", "base_of_other_app"])
def test_a_revision_that_is_not_deltasyncs_is_not_called_newer(
    fresh_url: str, revision: str
) -> None:
    upgrade(fresh_url)
    execute(fresh_url, f"UPDATE alembic_version SET version_num = '{revision}'")

    with pytest.raises(StateStoreError) as caught:
        open_store(fresh_url).close()

    message = str(caught.value)
    assert "newer" not in message
    assert f"{revision!r}" in message
    assert "not one of deltasync's migrations" in message
    assert "another application or an old pre-release" in message
    path = sqlite_file(fresh_url)
    assert path is None or corrupt_copies(path.parent) == []  # not ours to move


def test_a_higher_numbered_revision_is_a_newer_deltasync(fresh_url: str) -> None:
    upgrade(fresh_url)
    execute(fresh_url, "UPDATE alembic_version SET version_num = '0042_future'")
    with pytest.raises(StateStoreError, match=r"'0042_future'.*upgraded by a newer deltasync"):
        open_store(fresh_url).close()


# ----------------------------------------------------------------------------- locks
@pytest.fixture
def short_lock_wait(monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr(state_database, "LOCK_WAIT_S", 1)
    return 1


def hold_exclusive(path: Path) -> sqlite3.Connection:
    """Another process's view: an sqlite3 shell that keeps the file exclusively locked."""
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("PRAGMA locking_mode = EXCLUSIVE")
    other.execute("BEGIN EXCLUSIVE")
    other.execute("UPDATE meta SET value = value")
    return other


def test_a_locked_database_is_a_short_stated_wait_then_exit_75_without_migrating(
    tmp_path: Path, short_lock_wait: int, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "state.db"
    url = f"sqlite:///{path}"
    upgrade(url)
    other = hold_exclusive(path)
    try:
        started = time.monotonic()
        with caplog.at_level(logging.WARNING), pytest.raises(StateLockedError) as caught:
            open_store(url).close()
        waited = time.monotonic() - started
    finally:
        other.close()

    message = str(caught.value)
    assert exit_code_for(caught.value) == 75
    assert "locked by another process" in message
    assert f"waited {short_lock_wait} s" in message
    assert "migrat" not in message
    assert waited < short_lock_wait + 5
    assert [r.getMessage() for r in caplog.records] == [
        f"the state database {url} is locked by another process; waiting up to 1 s"
    ]
    assert corrupt_copies(tmp_path) == []  # locked is not damaged
    open_store(url).close()  # released: opens as before


def test_a_lock_taken_by_a_writer_makes_the_lease_a_short_wait_and_exit_75(
    tmp_path: Path, short_lock_wait: int
) -> None:
    path = tmp_path / "state.db"
    url = f"sqlite:///{path}"
    with open_store(url) as store:
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # WAL: readers go on, writers wait
        try:
            started = time.monotonic()
            with pytest.raises(StateLockedError, match="locked by another process"):
                store.acquire_lease("host:1:x")
            assert time.monotonic() - started < short_lock_wait + 5
        finally:
            other.close()
        assert store.acquire_lease("host:1:x")


# ----------------------------------------------------------------------------- lease
def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()  # reaped: the pid names no process now
    return child.pid


def test_a_lease_whose_process_on_this_host_is_gone_is_taken_over_at_once(
    tmp_path: Path,
) -> None:
    gone = f"{socket.gethostname()}:{dead_pid()}:deadbeef"
    with open_store(f"sqlite:///{tmp_path / 'state.db'}") as store:
        assert store.acquire_lease(gone, ttl_s=120)

        assert store.acquire_lease("me:1:new")

        assert store.taken_over == gone
        info = store.lease_info()
        assert info is not None and info["holder"] == "me:1:new"


def test_a_lease_of_a_live_process_or_another_host_is_respected(db_url: str) -> None:
    alive = f"{socket.gethostname()}:{_parent_pid()}:cafe"
    elsewhere = f"another-host:{dead_pid()}:cafe"
    with open_store(db_url) as store:
        for holder in (alive, elsewhere):
            assert store.acquire_lease(holder, ttl_s=120)
            assert not store.acquire_lease("me:1:new")
            assert store.taken_over is None
            store.release_lease(holder)


def _parent_pid() -> int:
    import os

    return os.getppid()


def test_holder_is_gone_only_when_certain() -> None:
    host = socket.gethostname()
    assert holder_is_gone(f"{host}:{dead_pid()}:x")
    assert not holder_is_gone(f"{host}:{_parent_pid()}:x")
    assert not holder_is_gone(f"{host}:1:x")  # init: exists (maybe not ours to signal)
    assert not holder_is_gone("other-host:99999999:x")
    assert not holder_is_gone("garbage")
    assert not holder_is_gone(f"{host}:notapid:x")
