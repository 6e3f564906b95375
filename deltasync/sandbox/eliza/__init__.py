"""Simulated ELIZA: ``store`` holds the data and its rules, ``sim`` answers HTTP like DRF.

``resources`` is the field table per resource, ``validation`` DRF's per-field checks,
``listing`` filters and pagination, ``faults`` injected errors, ``schema`` the OpenAPI document.
"""

from deltasync.sandbox.eliza.resources import SYSTEM_GROUPS
from deltasync.sandbox.eliza.sim import ElizaSim
from deltasync.sandbox.eliza.wire import SimRequest

__all__ = ["SYSTEM_GROUPS", "ElizaSim", "SimRequest"]
