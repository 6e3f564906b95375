"""The engine: one run of pull → plan → push over the configured resources.

``ports`` says what it needs from Graph, ELIZA and the state store; ``pull``, ``plan`` and
``push`` are the phases; ``ledger`` is the only writer of what a run did; ``report`` is the
run report.
"""

from __future__ import annotations

from deltasync.engine.progress import NO_PROGRESS, NoProgress, Progress
from deltasync.engine.report import RunReport
from deltasync.engine.run import Engine
from deltasync.engine.settings import EngineSettings, ResourceSpec, RunOptions

__all__ = [
    "NO_PROGRESS",
    "Engine",
    "EngineSettings",
    "NoProgress",
    "Progress",
    "ResourceSpec",
    "RunOptions",
    "RunReport",
]
