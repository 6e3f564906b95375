"""One function per command: builds the clients from the config and runs the engine.

This is the composition root; the CLI only translates arguments and output (it reaches the
engine's ``RunOptions`` and ``RunReport`` through here), and tests call these same functions
with the sandbox's transports injected.

Importing this package is cheap: each name is imported from its module on first use, so
``deltasync --version`` loads neither SQLAlchemy nor msgraph.

- :mod:`.settings`: plan context, plan fingerprint, engine settings, ``SyncFlags``
- :mod:`.store`: the state store of a config
- :mod:`.sync`: ``sync``/``resync``/``sync --user``/``undo`` under the lease
- :mod:`.watch`: ``watch``, the delta loop
- :mod:`.inspect`: the ``state`` commands and ``db upgrade``
- :mod:`.export`: ``export-excel``, ``--export-excel``, ``--metrics-file``
- :mod:`.checks`: ``check``
- :mod:`.demo`: ``demo``, ``sandbox serve`` and ``sandbox edit`` (the only module that imports
  the sandbox)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # for type checkers; at run time each name comes through __getattr__
    from deltasync.engine import NO_PROGRESS, Progress, RunOptions, RunReport
    from deltasync.plan.reasons import matched_words
    from deltasync.service.checks import run_checks
    from deltasync.service.demo import apply_demo_changes, edit_sandbox, run_demo, serve_sandbox
    from deltasync.service.export import (
        check_output_paths,
        export_excel,
        mirrored_users,
        write_metrics,
    )
    from deltasync.service.inspect import (
        db_upgrade,
        soft_match_advice,
        state_failures,
        state_groups,
        state_reset,
        state_runs,
        state_summary,
        state_user,
    )
    from deltasync.service.settings import (
        SyncFlags,
        engine_settings,
        plan_context,
        plan_fingerprint,
    )
    from deltasync.service.store import store_for
    from deltasync.service.sync import Seams, lease_holder, lease_words, run_sync, run_undo
    from deltasync.service.watch import Stop, run_watch

_HOMES = {
    "NO_PROGRESS": "deltasync.engine",
    "Progress": "deltasync.engine",
    "RunOptions": "deltasync.engine",
    "RunReport": "deltasync.engine",
    "run_checks": "deltasync.service.checks",
    "apply_demo_changes": "deltasync.service.demo",
    "edit_sandbox": "deltasync.service.demo",
    "run_demo": "deltasync.service.demo",
    "serve_sandbox": "deltasync.service.demo",
    "check_output_paths": "deltasync.service.export",
    "export_excel": "deltasync.service.export",
    "write_metrics": "deltasync.service.export",
    "mirrored_users": "deltasync.service.export",
    "db_upgrade": "deltasync.service.inspect",
    "state_failures": "deltasync.service.inspect",
    "state_groups": "deltasync.service.inspect",
    "state_reset": "deltasync.service.inspect",
    "state_runs": "deltasync.service.inspect",
    "state_summary": "deltasync.service.inspect",
    "state_user": "deltasync.service.inspect",
    "soft_match_advice": "deltasync.service.inspect",
    "SyncFlags": "deltasync.service.settings",
    "engine_settings": "deltasync.service.settings",
    "matched_words": "deltasync.plan.reasons",
    "plan_context": "deltasync.service.settings",
    "plan_fingerprint": "deltasync.service.settings",
    "store_for": "deltasync.service.store",
    "Seams": "deltasync.service.sync",
    "lease_holder": "deltasync.service.sync",
    "lease_words": "deltasync.service.sync",
    "run_sync": "deltasync.service.sync",
    "run_undo": "deltasync.service.sync",
    "Stop": "deltasync.service.watch",
    "run_watch": "deltasync.service.watch",
}

__all__ = [
    "NO_PROGRESS",
    "Progress",
    "RunOptions",
    "RunReport",
    "Seams",
    "Stop",
    "SyncFlags",
    "apply_demo_changes",
    "check_output_paths",
    "db_upgrade",
    "edit_sandbox",
    "engine_settings",
    "export_excel",
    "lease_holder",
    "lease_words",
    "matched_words",
    "mirrored_users",
    "plan_context",
    "plan_fingerprint",
    "run_checks",
    "run_demo",
    "run_sync",
    "run_undo",
    "run_watch",
    "serve_sandbox",
    "soft_match_advice",
    "state_failures",
    "state_groups",
    "state_reset",
    "state_runs",
    "state_summary",
    "state_user",
    "store_for",
    "write_metrics",
]


def __getattr__(name: str) -> Any:
    """Import ``name`` from its module on first use (PEP 562)."""
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_HOMES])
