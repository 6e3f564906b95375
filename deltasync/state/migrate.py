"""Alembic, configured in code so that neither an ``alembic.ini`` nor a working directory
matters. Imported only when the schema has to change (see :mod:`deltasync.state.revision`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import SQLAlchemyError

from deltasync.errors import StateStoreError
from deltasync.state.database import WRITE, describe, mask_url
from deltasync.state.revision import script_location

# Key of the PostgreSQL advisory lock that serialises concurrent migrations.
_MIGRATION_LOCK = 0x64656C7461  # "delta"


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
