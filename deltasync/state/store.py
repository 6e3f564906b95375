"""The state store: delta cursors, the mirror of Entra objects, links, failures, runs, lease.

It is the only place that writes SQL. Each method is one short transaction, so whatever is
committed is consistent on its own: :meth:`StateStore.apply_page` stores a page's objects and
its progress marker together, a link is saved right after ELIZA accepted a write. A crash at
any instant loses at most the work in flight, and re-running converges.

:class:`StateStore` is assembled from one class per table family (``cursors``, ``mirror``,
``groups``, ``links``, ``failures``, ``runs``, ``lease``, ``meta``); each owns its queries.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine

from deltasync.errors import StateDamagedError
from deltasync.state.base import utcnow
from deltasync.state.cursors import CursorStore
from deltasync.state.database import create_state_engine, notice, sqlite_file
from deltasync.state.failures import RETRY_BASE, RETRY_MAX, FailureStore, retry_delay
from deltasync.state.groups import GroupMemberStore
from deltasync.state.integrity import CACHE_NOTE, move_aside
from deltasync.state.lease import LeaseStore
from deltasync.state.links import LinkStore
from deltasync.state.meta import CREATED_AFTER, CREATED_AT, MetaStore
from deltasync.state.mirror import MirrorStore, PageStats
from deltasync.state.revision import HEAD_REVISION, ensure_current, stored_revision
from deltasync.state.runs import RunStore
from deltasync.state.scratch import ScratchRows

__all__ = [
    "RETRY_BASE",
    "RETRY_MAX",
    "PageStats",
    "StateStore",
    "open_current_store",
    "open_store",
    "retry_delay",
    "upgrade",
]

NOT_FOUND = "no database was found"


def open_store(url: str) -> StateStore:
    """Open the state database at ``url``, migrated to the newest schema and verified.

    SQLite: the folder of a file database is created, WAL journal mode, foreign keys on,
    busy timeout. Every backend: Alembic migrations are applied to head (one query tells
    whether there are any; Alembic is imported only then), and one query checks that every
    table and column is there.

    A damaged SQLite file (not a database, or its schema broken) is moved aside as
    ``<name>.corrupt-<UTC time>`` and a fresh database is started; :attr:`StateStore.notices`
    (and the log) say where it went. A new database records when and why it was created
    (``state`` shows it: the history before it was lost with the old file).

    Raises:
        StateStoreError: unreachable database (URL shown with its password masked), a
            database newer than this code or not deltasync's, a failed migration, or a
            damaged server database (never moved: the message says what to do).
        StateLockedError: another process keeps the database locked (exit 75).
    """
    engine, (before, after), moved_to, notices = _open_engine(url)
    store = StateStore(engine)
    store.notices = notices
    store.revisions = (before, after)
    try:
        if before is None:
            store.set_meta(CREATED_AT, utcnow().isoformat())
            reason = NOT_FOUND if moved_to is None else f"the damaged one was moved to {moved_to}"
            store.set_meta(CREATED_AFTER, reason)
    except BaseException:
        store.close()
        raise
    return store


def upgrade(url: str) -> tuple[str | None, str | None]:
    """``deltasync db upgrade``: apply pending migrations; (revision before, revision after).

    A damaged SQLite file is moved aside, as by :func:`open_store`.
    """
    store = open_store(url)
    store.close()
    return store.revisions


Revisions = tuple[str | None, str | None]


def _open_engine(url: str) -> tuple[Engine, Revisions, Path | None, list[str]]:
    """The migrated engine, its revisions, where a damaged file went, what to tell the user."""
    engine = create_state_engine(url)
    try:
        return engine, ensure_current(engine), None, []
    except StateDamagedError as exc:
        engine.dispose()
        path = sqlite_file(url)
        if path is None or not path.exists():
            raise
        moved = move_aside(path)
        message = (
            f"the damaged state database was moved to {moved}; {exc}. A fresh one was "
            f"started at {path}: {CACHE_NOTE}"
        )
        notice(message)
    except BaseException:
        engine.dispose()
        raise
    engine = create_state_engine(url)
    try:
        revisions = ensure_current(engine)
    except BaseException:
        engine.dispose()
        raise
    return engine, (None, revisions[1]), moved, [message]


def open_current_store(url: str) -> StateStore | None:
    """The state database at ``url`` if it exists at this code's revision, else None.

    For callers that only look (``check``): it creates, migrates and changes nothing.
    """
    from sqlalchemy.engine import make_url

    from deltasync.state.probe import missing_sqlite_file

    if missing_sqlite_file(make_url(url)) is not None:
        return None
    engine = create_state_engine(url)
    try:
        if stored_revision(engine) == HEAD_REVISION:
            return StateStore(engine)
    except BaseException:
        engine.dispose()
        raise
    engine.dispose()
    return None


class StateStore(
    CursorStore,
    MirrorStore,
    GroupMemberStore,
    LinkStore,
    FailureStore,
    RunStore,
    LeaseStore,
    MetaStore,
):
    """Typed access to the state database; see the module docstring for its guarantees."""

    def __init__(self, engine: Engine) -> None:
        super().__init__(engine)
        self.notices: list[str] = []  # what opening it had to tell (a damaged file moved)
        self.revisions: Revisions = (None, None)  # the schema revision before and after open

    def lookup_rows(self) -> ScratchRows:
        """A run's private, temporary rows for its ELIZA lookups (never this database)."""
        return ScratchRows()
