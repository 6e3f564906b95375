"""The state database: delta cursors, the Entra mirror, links to ELIZA, failures, runs, lease.

Only this package (and ``migrations/``) talks SQL; everything else goes through
:class:`StateStore`, opened and migrated by :func:`open_store`.
"""

from __future__ import annotations

from deltasync.state.database import upgrade
from deltasync.state.store import PageStats, StateStore, open_store

__all__ = ["PageStats", "StateStore", "open_store", "upgrade"]
