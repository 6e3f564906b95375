"""Alembic, configured in code so that neither an ``alembic.ini`` nor a working directory
matters. Imported only when the schema has to change (see :mod:`deltasync.state.revision`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from deltasync.errors import StateDamagedError, StateLockedError, StateStoreError
from deltasync.state.database import WRITE, describe, is_locked, locked_error, mask_url
from deltasync.state.integrity import CACHE_NOTE, damaged
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


def unknown_revision(url: str, revision: str, head: str | None) -> StateStoreError:
    """The error for a revision this code has no migration for: newer, or not deltasync's.

    deltasync's revisions are numbered (``0001``, ``0002_…``): a higher number than the
    code's head was written by a newer deltasync; anything else (an older pre-release's hash,
    another application's revision) is not a schema this or any newer deltasync can migrate.
    """
    where = f"the state database {mask_url(url)} is at revision {revision!r}"
    if is_newer(revision, head):
        return StateStoreError(
            f"{where}, newer than this deltasync knows (up to {head!r}): it was upgraded by "
            "a newer deltasync; run that version, or restore a backup made before the upgrade"
        )
    return StateStoreError(
        f"{where}, which is not one of deltasync's migrations (they are 0001 to {head}): the "
        "database was written by another application or an old pre-release of deltasync. "
        "Point state.url at a database of its own, or move this one aside; " + CACHE_NOTE
    )


def is_newer(revision: str, head: str | None) -> bool:
    """Whether an unknown ``revision`` is numbered above ``head`` (a newer deltasync's)."""
    number, known = _number(revision), _number(head or "")
    return number is not None and known is not None and number > known


def _number(revision: str) -> int | None:
    """The sequence number of a deltasync revision id (``0002`` or ``0002_groups``)."""
    found = re.match(r"(\d{4})(?:_|$)", revision)
    return int(found.group(1)) if found else None


def migrate(engine: Engine) -> tuple[str | None, str | None]:
    """Bring the schema to the newest revision; returns (revision before, revision after).

    Raises:
        StateStoreError: the database is at a revision this code does not know.
        StateDamagedError: a migration failed on the schema it found.
        StateLockedError: another process keeps the database locked.
    """
    cfg = alembic_config()
    script = ScriptDirectory.from_config(cfg)
    head = script.get_current_head()
    url = str(engine.url)
    try:
        with _migration_transaction(engine) as conn:
            before = current_revision(conn)
            if before is not None:
                try:
                    script.get_revision(before)
                except CommandError as exc:
                    raise unknown_revision(url, before, head) from exc
            if before == head:
                return before, head
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
            return before, current_revision(conn)
    except (StateLockedError, StateStoreError):
        raise
    except (SQLAlchemyError, CommandError) as exc:
        if is_locked(exc):
            raise locked_error(engine.url) from exc
        if isinstance(exc, DBAPIError) and exc.connection_invalidated:
            raise StateStoreError(
                f"cannot migrate the state database {mask_url(url)}: {describe(exc)}"
            ) from exc
        err: StateDamagedError = damaged(
            url, f"migrating it to revision {head} failed ({describe(exc)})"
        )
        raise err from exc
