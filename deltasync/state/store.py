"""The state store: delta cursors, the mirror of Entra objects, links, failures, runs, lease.

It is the only place that writes SQL. Each method is one short transaction, so whatever is
committed is consistent on its own: :meth:`StateStore.apply_page` stores a page's objects and
its progress marker together, a link is saved right after ELIZA accepted a write. A crash at
any instant loses at most the work in flight, and re-running converges.

:class:`StateStore` is assembled from one class per table family (``cursors``, ``mirror``,
``links``, ``failures``, ``runs``, ``lease``, ``meta``); each owns its queries.
"""

from __future__ import annotations

from deltasync.state.cursors import CursorStore
from deltasync.state.database import create_state_engine
from deltasync.state.failures import RETRY_BASE, RETRY_MAX, FailureStore, retry_delay
from deltasync.state.lease import LeaseStore
from deltasync.state.links import LinkStore
from deltasync.state.meta import MetaStore
from deltasync.state.mirror import MirrorStore, PageStats
from deltasync.state.revision import HEAD_REVISION, ensure_current, stored_revision
from deltasync.state.runs import RunStore

__all__ = [
    "RETRY_BASE",
    "RETRY_MAX",
    "PageStats",
    "StateStore",
    "open_current_store",
    "open_store",
    "retry_delay",
]


def open_store(url: str) -> StateStore:
    """Open the state database at ``url``, migrated to the newest schema.

    SQLite: the folder of a file database is created, WAL journal mode, foreign keys on,
    busy timeout. Every backend: Alembic migrations are applied to head (one query tells
    whether there are any; Alembic is imported only then).

    Raises:
        StateStoreError: unreachable database (URL shown with its password masked), a
            database newer than this code, or a failed migration.
    """
    engine = create_state_engine(url)
    try:
        ensure_current(engine)
    except BaseException:
        engine.dispose()
        raise
    return StateStore(engine)


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
    CursorStore, MirrorStore, LinkStore, FailureStore, RunStore, LeaseStore, MetaStore
):
    """Typed access to the state database; see the module docstring for its guarantees."""
