"""The state database: delta cursors, the Entra mirror, links to ELIZA, failures, runs, lease.

Only this package (and ``migrations/``) talks SQL; everything else goes through
:class:`StateStore`, opened and migrated by :func:`open_store`. Importing it does not import
Alembic: that happens only when the database's schema is behind the code's.
"""

from __future__ import annotations

from deltasync.state.mirror import PageStats
from deltasync.state.probe import probe_state
from deltasync.state.revision import upgrade
from deltasync.state.store import StateStore, open_current_store, open_store

__all__ = [
    "PageStats",
    "StateStore",
    "open_current_store",
    "open_store",
    "probe_state",
    "upgrade",
]
