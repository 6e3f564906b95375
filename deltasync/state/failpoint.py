"""Test seam: kill this process at the Nth state-database commit (crash-consistency tests).

``DELTASYNC_FAILPOINT`` is read once, when this module is imported. Unset (always, outside
the crash tests) it costs nothing: :func:`install` returns at once and no commit is wrapped.
Set, it names one point::

    DELTASYNC_FAILPOINT=before-commit:N   # SIGKILL when the Nth transaction is about to commit
    DELTASYNC_FAILPOINT=after-commit:N    # SIGKILL right after the Nth transaction committed

Commits are counted over every state engine of the process, migrations included, in the
order SQLAlchemy issues them (the same order in which SQLAlchemy's ``commit`` event fires,
which is how a test counts the commits of a clean run). ``before-commit`` lands inside the
transaction (a page of the mirror with its ``nextLink``, a link with its journal row): the
database must roll it back. ``after-commit`` lands between two transactions. The process
dies by SIGKILL, as with ``kill -9``: no ``finally``, no lease release, no flush.
"""

from __future__ import annotations

import os
import signal
import threading
from typing import Any, Final

from sqlalchemy import Engine

ENV: Final = "DELTASYNC_FAILPOINT"
PHASES: Final = ("before-commit", "after-commit")


def _parse(value: str | None) -> tuple[str, int] | None:
    if not value:
        return None
    phase, _, count = value.partition(":")
    if phase not in PHASES or not count.isdigit() or int(count) < 1:
        raise ValueError(f"{ENV}={value!r}: expected before-commit:N or after-commit:N, N ≥ 1")
    return phase, int(count)


_POINT: Final = _parse(os.environ.get(ENV))
_lock = threading.Lock()
_commits = 0


def install(engine: Engine) -> None:
    """Wrap ``engine``'s commits so the process kills itself at the configured point."""
    if _POINT is None:
        return
    phase, at = _POINT
    dialect = engine.dialect
    do_commit = dialect.do_commit

    def commit(dbapi_connection: Any) -> None:
        global _commits
        with _lock:
            _commits += 1
            n = _commits
        if n == at and phase == "before-commit":
            os.kill(os.getpid(), signal.SIGKILL)
        do_commit(dbapi_connection)
        if n == at and phase == "after-commit":
            os.kill(os.getpid(), signal.SIGKILL)

    dialect.do_commit = commit  # type: ignore[method-assign]
