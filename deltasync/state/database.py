"""Engines for the state database.

Everything that depends on the backend lives here: SQLite pragmas and write locking, the
PostgreSQL connect and lock timeouts, and masking the URL in messages. Migrations are in
:mod:`deltasync.state.revision` (cheap check) and :mod:`deltasync.state.migrate` (Alembic).
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, RootTransaction, create_engine, event, make_url
from sqlalchemy.engine import URL
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.pool import ConnectionPoolEntry, StaticPool

from deltasync.errors import StateLockedError, StateStoreError
from deltasync.state import failpoint

BUSY_TIMEOUT_MS = 30_000
# How long opening the database, or taking the lease, waits for another process's lock
# (after saying so) before the run gives up with exit 75; the next run tries again.
LOCK_WAIT_S = 10
PG_CONNECT_TIMEOUT_S = 10
# PostgreSQL: how long a first try waits for another session's lock before saying it waits.
PG_FIRST_TRY_MS = 200
# PostgreSQL's SQLSTATE for "lock_timeout expired" (lock_not_available).
PG_LOCK_NOT_AVAILABLE = "55P03"
# Execution option marking a connection that will write: SQLite then takes the write lock
# at BEGIN, so two processes never both read first and then fail to upgrade their lock.
WRITE = "deltasync_write"


_log = logging.getLogger("deltasync.state")
_LOCKED = ("database is locked", "database table is locked")
_DAMAGED = ("file is not a database", "database disk image is malformed", "malformed database")
T = TypeVar("T")


def notice(message: str) -> None:
    """Tell the person at the terminal (or the cron log) something about the state database."""
    _log.warning(message)


def is_locked(exc: BaseException) -> bool:
    """Whether a database error means another process holds a lock (SQLite), or another
    session held one longer than ``lock_timeout`` (PostgreSQL)."""
    if getattr(getattr(exc, "orig", exc), "sqlstate", None) == PG_LOCK_NOT_AVAILABLE:
        return True
    return any(m in describe(exc).lower() for m in _LOCKED)


def is_damaged(exc: BaseException) -> bool:
    """Whether a database error means the file is not a (sound) SQLite database."""
    return any(m in describe(exc).lower() for m in _DAMAGED)


def locked_error(url: str | URL) -> StateLockedError:
    holder = (
        "a process keeping it open (an sqlite3 shell, a backup tool)"
        if make_url(url).get_backend_name() == "sqlite"
        else "a session holding a lock on one of its tables (pg_locks, pg_stat_activity)"
    )
    return StateLockedError(
        f"the state database {mask_url(url)} is locked by another process (waited "
        f"{LOCK_WAIT_S} s); nothing was done, the next run tries again. If this persists, "
        f"look for {holder}"
    )


def sqlite_file(url: str | URL) -> Path | None:
    """The file of a SQLite database URL; None for other backends and in-memory ones."""
    parsed = make_url(url)
    database = parsed.database or ""
    if parsed.get_backend_name() != "sqlite" or database in ("", ":memory:"):
        return None
    if database.startswith("file:") or "mode=memory" in database:
        return None
    return Path(database)


def mask_url(url: str | URL) -> str:
    """The URL as it may be shown: the password replaced by ``***``."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparseable database URL>"


def json_dumps(value: Any) -> str:
    """Serialise a JSON column value; strict, so a date or NaN fails here, not on read."""
    return json.dumps(value, ensure_ascii=False, allow_nan=False)


def describe(exc: BaseException) -> str:
    """The driver's own words for a database error, without the SQL and its parameters."""
    orig = getattr(exc, "orig", None)
    text_ = str(orig if orig is not None else exc).strip()
    return text_.splitlines()[0] if text_ else type(exc).__name__


def create_state_engine(url: str) -> Engine:
    """An engine for ``url``, with the per-backend settings the store relies on.

    Raises:
        StateStoreError: the URL is malformed or names a folder that cannot be created.
    """
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise StateStoreError(f"state database URL is not valid: {exc}") from exc
    options: dict[str, Any] = {"json_serializer": json_dumps, "json_deserializer": json.loads}
    if parsed.get_backend_name() == "sqlite":
        engine = _sqlite_engine(parsed, options)
    else:
        if parsed.get_backend_name() == "postgresql":
            options["connect_args"] = _pg_connect_args(parsed)
        engine = create_engine(parsed, pool_pre_ping=True, **options)
    failpoint.install(engine)  # a test seam; nothing happens unless DELTASYNC_FAILPOINT is set
    return engine


def _pg_connect_args(url: URL) -> dict[str, Any]:
    """Connect timeout, and ``lock_timeout`` as SQLite's busy timeout: a statement waits at
    most :data:`LOCK_WAIT_S` for another session's lock, then fails (exit 75, not a hang).
    ``options`` given in the URL are kept.

    Every statement is planned for its own values (``plan_cache_mode``): psycopg prepares a
    statement from its fifth run, and PostgreSQL's generic plan for ``group_id = $1 AND
    member_id IN (...)`` scanned the whole group, taken as an average one; a full groups
    round at 100,000 users spent 350 s of its 390 s there (40 such updates of the
    98,000-member group: 59 s generic, 0.4 s planned each time).
    """
    given = url.query.get("options", "")
    ours = [_pg_lock_option(), PG_PLAN_OPTION]
    options = " ".join([*([given] if isinstance(given, str) else given), *ours])
    return {"connect_timeout": PG_CONNECT_TIMEOUT_S, "options": options.strip()}


PG_PLAN_OPTION = "-c plan_cache_mode=force_custom_plan"


def _pg_lock_option() -> str:
    return f"-c lock_timeout={LOCK_WAIT_S * 1000}"


def _sqlite_engine(url: URL, options: dict[str, Any]) -> Engine:
    database = url.database or ""
    in_memory = database in ("", ":memory:") or "mode=memory" in database
    if in_memory:
        # One shared connection, or every checkout would see a new empty database.
        options.update(poolclass=StaticPool, connect_args={"check_same_thread": False})
    elif not database.startswith("file:"):
        try:
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StateStoreError(
                f"cannot create the folder of the state database {mask_url(url)}: {exc}"
            ) from exc
    engine = create_engine(url, **options)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        # Let SQLAlchemy, not the sqlite3 module, emit BEGIN (see _on_begin).
        dbapi_connection.isolation_level = None
        cur = dbapi_connection.cursor()
        try:
            _wal_or_wait(cur, url)
            cur.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            cur.execute("PRAGMA synchronous = NORMAL")
            cur.execute("PRAGMA foreign_keys = ON")
        finally:
            cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        write = conn.get_execution_options().get(WRITE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


def _wal_or_wait(cur: Any, url: URL) -> None:
    """Switch to WAL; when another process holds the file locked, say so and wait a little."""
    cur.execute("PRAGMA busy_timeout = 0")
    try:
        cur.execute("PRAGMA journal_mode = WAL")
    except sqlite3.OperationalError as exc:
        if not is_locked(exc):
            raise
        notice(
            f"the state database {mask_url(url)} is locked by another process; "
            f"waiting up to {LOCK_WAIT_S} s"
        )
        cur.execute(f"PRAGMA busy_timeout = {LOCK_WAIT_S * 1000}")
        cur.execute("PRAGMA journal_mode = WAL")


def begin_waiting(conn: Connection, url: str | URL) -> RootTransaction:
    """``conn.begin()``; on SQLite a lock another process holds is waited for briefly, saying so.

    Raises:
        StateLockedError: still locked after :data:`LOCK_WAIT_S` (exit 75).
    """
    if conn.dialect.name != "sqlite":
        return conn.begin()
    raw = conn.connection.dbapi_connection
    assert raw is not None
    raw.execute("PRAGMA busy_timeout = 0")
    try:
        try:
            return conn.begin()
        except OperationalError as exc:
            if not is_locked(exc):
                raise
        notice(
            f"the state database {mask_url(url)} is locked by another process; "
            f"waiting up to {LOCK_WAIT_S} s"
        )
        raw.execute(f"PRAGMA busy_timeout = {LOCK_WAIT_S * 1000}")
        try:
            return conn.begin()
        except OperationalError as exc:
            if is_locked(exc):
                raise locked_error(url) from exc
            raise
    finally:
        raw.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")


def waiting_for_locks(conn: Connection, url: str | URL, work: Callable[[Connection], T]) -> T:
    """``work(conn)`` in one transaction; a lock another process or session holds is waited
    for briefly, saying so (SQLite: :func:`begin_waiting`).

    PostgreSQL: the first try waits :data:`PG_FIRST_TRY_MS`; when another session's lock
    stops it, the transaction is rolled back, the wait is announced and ``work`` runs again
    with ``lock_timeout`` at :data:`LOCK_WAIT_S`. ``work`` must be safe to repeat.

    Raises:
        StateLockedError: still locked after :data:`LOCK_WAIT_S` (exit 75); nothing was done.
    """
    if conn.dialect.name != "postgresql":
        with begin_waiting(conn, url):
            return work(conn)
    try:
        return _pg_try(conn, work, PG_FIRST_TRY_MS)
    except OperationalError as exc:
        if not is_locked(exc):
            raise
    notice(
        f"the state database {mask_url(url)} is locked by another session; "
        f"waiting up to {LOCK_WAIT_S} s"
    )
    try:
        return _pg_try(conn, work, LOCK_WAIT_S * 1000)
    except OperationalError as exc:
        if is_locked(exc):
            raise locked_error(url) from exc
        raise


def _pg_try(conn: Connection, work: Callable[[Connection], T], wait_ms: int) -> T:
    with conn.begin():
        conn.exec_driver_sql(f"SET LOCAL lock_timeout = {wait_ms}")
        return work(conn)
