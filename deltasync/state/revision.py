"""Is the schema current? One query answers, so Alembic is imported only to migrate.

:data:`HEAD_REVISION` is the newest migration in ``migrations/versions``; a test reads the
head with Alembic and fails when the two drift apart.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError

from deltasync.errors import StateStoreError
from deltasync.state.database import create_state_engine, describe, mask_url

HEAD_REVISION = "0002"

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
    """The revision the database says it is at; ``None`` when it has none (or several).

    Connecting is the reachability check, so an unreachable database fails here.

    Raises:
        StateStoreError: naming the URL (password masked) and the driver's reason.
    """
    try:
        with engine.connect() as conn:
            try:
                rows = conn.execute(text("SELECT version_num FROM alembic_version")).all()
            except SQLAlchemyError:
                return None  # no schema yet: the table does not exist
    except SQLAlchemyError as exc:
        raise StateStoreError(
            f"cannot reach the state database {mask_url(engine.url)}: {describe(exc)}"
        ) from exc
    return str(rows[0][0]) if len(rows) == 1 else None


def ensure_current(engine: Engine) -> tuple[str | None, str | None]:
    """Migrate to :data:`HEAD_REVISION` unless the database is there already.

    Returns (revision before, revision after).

    Raises:
        StateStoreError: unreachable database, unknown revision, or a failed migration.
    """
    if stored_revision(engine) == HEAD_REVISION:
        return HEAD_REVISION, HEAD_REVISION
    from deltasync.state.migrate import migrate  # Alembic: only when there is work

    return migrate(engine)


def upgrade(url: str) -> tuple[str | None, str | None]:
    """``deltasync db upgrade``: apply pending migrations; (revision before, revision after).

    Raises:
        StateStoreError: unreachable database, unknown revision, or a failed migration.
    """
    engine = create_state_engine(url)
    try:
        return ensure_current(engine)
    finally:
        engine.dispose()
