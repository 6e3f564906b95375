"""Engines and migrations for the state database.

Everything that depends on the backend lives here: SQLite pragmas and write locking, the
PostgreSQL connect timeout, masking the URL in messages, and Alembic, configured in code so
that neither an ``alembic.ini`` nor a working directory matters.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Connection, Engine, create_engine, event, make_url, text
from sqlalchemy.engine import URL
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.pool import ConnectionPoolEntry, StaticPool

from deltasync.errors import StateStoreError

BUSY_TIMEOUT_MS = 30_000
PG_CONNECT_TIMEOUT_S = 10
# Execution option marking a connection that will write: SQLite then takes the write lock
# at BEGIN, so two processes never both read first and then fail to upgrade their lock.
WRITE = "deltasync_write"
# Key of the PostgreSQL advisory lock that serialises concurrent migrations.
_MIGRATION_LOCK = 0x64656C7461  # "delta"

_PACKAGE_DIR = Path(__file__).resolve().parent.parent
# A built wheel carries the migrations inside the package (see pyproject.toml); a source
# checkout has them at the top of the repository.
_SCRIPT_LOCATIONS = (_PACKAGE_DIR / "_migrations", _PACKAGE_DIR.parent / "migrations")


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
        return _sqlite_engine(parsed, options)
    if parsed.get_backend_name() == "postgresql":
        options["connect_args"] = {"connect_timeout": PG_CONNECT_TIMEOUT_S}
    return create_engine(parsed, pool_pre_ping=True, **options)


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


def ping(engine: Engine) -> None:
    """Connect once, so an unreachable database fails early with a clear message.

    Raises:
        StateStoreError: naming the URL (password masked) and the driver's reason.
    """
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        raise StateStoreError(
            f"cannot reach the state database {mask_url(engine.url)}: {describe(exc)}"
        ) from exc


def script_location() -> Path:
    """The folder holding ``env.py`` and ``versions/``."""
    for path in _SCRIPT_LOCATIONS:
        if (path / "env.py").is_file():
            return path
    raise StateStoreError(
        "the database migrations are missing (looked in "
        + ", ".join(str(p) for p in _SCRIPT_LOCATIONS)
        + ")"
    )


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic configuration built in code; ``env.py`` runs on ``connection`` when given."""
    cfg = Config()
    cfg.set_main_option("script_location", str(script_location()))
    cfg.set_main_option("path_separator", "os")
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str | None:
    """The newest migration this code knows."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(conn: Connection) -> str | None:
    """The revision the database is at, ``None`` when it has no schema yet."""
    return MigrationContext.configure(conn).get_current_revision()


@contextmanager
def _migration_transaction(engine: Engine) -> Iterator[Connection]:
    with engine.connect() as conn:
        conn.execution_options(**{WRITE: True})
        with conn.begin():
            if conn.dialect.name == "postgresql":
                # Two hosts starting on an empty database must not both create the tables.
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
            yield conn


def migrate(engine: Engine) -> tuple[str | None, str | None]:
    """Bring the schema to the newest revision; returns (revision before, revision after).

    Raises:
        StateStoreError: the database is newer than this code, or a migration failed.
    """
    cfg = alembic_config()
    script = ScriptDirectory.from_config(cfg)
    head = script.get_current_head()
    try:
        with _migration_transaction(engine) as conn:
            before = current_revision(conn)
            if before is not None:
                try:
                    script.get_revision(before)
                except CommandError as exc:
                    raise StateStoreError(
                        f"the state database {mask_url(engine.url)} is at revision {before!r}, "
                        f"which this version of deltasync does not know (it knows up to "
                        f"{head!r}): it was upgraded by a newer deltasync; run that version, "
                        "or restore a backup made before the upgrade"
                    ) from exc
            if before == head:
                return before, head
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
            return before, current_revision(conn)
    except (SQLAlchemyError, CommandError) as exc:
        raise StateStoreError(
            f"cannot migrate the state database {mask_url(engine.url)}: {describe(exc)}"
        ) from exc


def upgrade(url: str) -> tuple[str | None, str | None]:
    """``deltasync db upgrade``: apply pending migrations; (revision before, revision after).

    Raises:
        StateStoreError: unreachable database, unknown revision, or a failed migration.
    """
    engine = create_state_engine(url)
    try:
        ping(engine)
        return migrate(engine)
    finally:
        engine.dispose()
