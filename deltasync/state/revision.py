"""Is the schema current? One query answers, so Alembic is imported only to migrate.

:data:`HEAD_REVISION` is the newest migration in ``migrations/versions``; a test reads the
head with Alembic and fails when the two drift apart.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError

from deltasync.errors import StateStoreError
from deltasync.state.database import (
    describe,
    is_damaged,
    is_locked,
    locked_error,
    mask_url,
)
from deltasync.state.integrity import damaged, own_tables, verify_schema

HEAD_REVISION = "0005"

_PACKAGE_DIR = Path(__file__).resolve().parent.parent
# A built wheel carries the migrations inside the package (see pyproject.toml); a source
# checkout has them at the top of the repository.
_SCRIPT_LOCATIONS = (_PACKAGE_DIR / "_migrations", _PACKAGE_DIR.parent / "migrations")


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


def stored_revision(engine: Engine) -> str | None:
    """The revision the database says it is at; ``None`` when it has no schema yet.

    Connecting is the reachability check, so an unreachable database fails here.

    Raises:
        StateStoreError: naming the URL (password masked) and the driver's reason.
        StateDamagedError: the file is not a SQLite database, or holds several revisions.
        StateLockedError: another process keeps the database locked.
    """
    try:
        with engine.connect() as conn:
            try:
                rows = conn.execute(text("SELECT version_num FROM alembic_version")).all()
            except SQLAlchemyError as exc:
                if is_locked(exc) or is_damaged(exc) or not no_such_table(exc):
                    raise
                return None  # no schema yet: the table does not exist
    except SQLAlchemyError as exc:
        if is_locked(exc):
            raise locked_error(engine.url) from exc
        if is_damaged(exc):
            raise damaged(str(engine.url), f"not a SQLite database ({describe(exc)})") from exc
        raise StateStoreError(
            f"cannot reach the state database {mask_url(engine.url)}: {describe(exc)}"
        ) from exc
    if len(rows) > 1:
        revisions = ", ".join(sorted(str(r[0]) for r in rows))
        raise damaged(str(engine.url), f"it holds several schema revisions ({revisions})")
    return str(rows[0][0]) if rows else None


def no_such_table(exc: SQLAlchemyError) -> bool:
    """Whether a query failed only because its table does not exist (no schema yet)."""
    orig = getattr(exc, "orig", None)
    if getattr(orig, "sqlstate", None) == "42P01":  # PostgreSQL: undefined_table
        return True
    return "no such table" in describe(exc).lower()


def ensure_current(engine: Engine) -> tuple[str | None, str | None]:
    """Migrate to :data:`HEAD_REVISION` unless the database is there already; then verify
    that every table and column of the schema is there (one query).

    Returns (revision before, revision after).

    Raises:
        StateStoreError: unreachable database, unknown revision, or a failed migration.
        StateDamagedError: not a database, a schema without a revision, a missing or altered
            table.
        StateLockedError: another process keeps the database locked.
    """
    before = stored_revision(engine)
    if before == HEAD_REVISION:
        verify_schema(engine)
        return HEAD_REVISION, HEAD_REVISION
    if before is None:
        found = own_tables(engine)
        if found:
            raise damaged(
                str(engine.url),
                "it has deltasync tables (" + ", ".join(found) + ") but no schema revision: "
                "a migration was interrupted or the revision table was dropped",
            )
    from deltasync.state.migrate import migrate  # Alembic: only when there is work

    result = migrate(engine)
    verify_schema(engine)
    return result
