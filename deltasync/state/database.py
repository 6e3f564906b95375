"""Engines for the state database.

Everything that depends on the backend lives here: SQLite pragmas and write locking, the
PostgreSQL connect timeout, and masking the URL in messages. Migrations are in
:mod:`deltasync.state.revision` (cheap check) and :mod:`deltasync.state.migrate` (Alembic).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, make_url
from sqlalchemy.engine import URL
from sqlalchemy.exc import ArgumentError
from sqlalchemy.pool import ConnectionPoolEntry, StaticPool

from deltasync.errors import StateStoreError
from deltasync.state import failpoint

BUSY_TIMEOUT_MS = 30_000
PG_CONNECT_TIMEOUT_S = 10
# Execution option marking a connection that will write: SQLite then takes the write lock
# at BEGIN, so two processes never both read first and then fail to upgrade their lock.
WRITE = "deltasync_write"


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
            options["connect_args"] = {"connect_timeout": PG_CONNECT_TIMEOUT_S}
        engine = create_engine(parsed, pool_pre_ping=True, **options)
    failpoint.install(engine)  # a test seam; nothing happens unless DELTASYNC_FAILPOINT is set
    return engine


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
            cur.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            cur.execute("PRAGMA journal_mode = WAL")
            cur.execute("PRAGMA synchronous = NORMAL")
            cur.execute("PRAGMA foreign_keys = ON")
        finally:
            cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        write = conn.get_execution_options().get(WRITE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine
