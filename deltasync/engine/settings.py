"""What a run is asked to do (:class:`RunOptions`) and the settings it applies."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from deltasync.matching import MatchSettings
from deltasync.plan.context import PlanContext

if TYPE_CHECKING:
    from deltasync.engine.report import ActionSink

USERS = "users"  # the Graph resource read when the settings name no other


@dataclass(frozen=True)
class RunOptions:
    """What the command line asked of this run."""

    command: str = "sync"
    dry_run: bool = False
    full: bool = False  # resync: ignore the stored delta link
    verify_target: bool = False
    limit_users: int | None = None
    allow_deletes: bool = False
    retry_failed: bool = False  # retry failed objects now instead of at their backoff time
    users: tuple[str, ...] = ()  # sync --user: just these Entra ids, read by id, cursors untouched
    actions_sink: ActionSink | None = None  # receives every action as it comes (JSON lines)


@dataclass(frozen=True)
class ResourceSpec:
    """One Graph resource the run reads: its own cursor (by name), ``$select`` and round."""

    name: str
    select: tuple[str, ...]


@dataclass(frozen=True)
class EngineSettings:
    """Settings the engine applies, built from the config by the service layer.

    ``resources`` lists what the pull phase reads, in order; left empty it is the users
    resource with ``select``.
    """

    ctx: PlanContext
    select: tuple[str, ...]
    plan_fingerprint: str
    matching: MatchSettings = field(default_factory=MatchSettings)
    max_deactivations: int = 25
    max_deactivation_percent: float = 10.0
    concurrency: int = 8
    resources: tuple[ResourceSpec, ...] = ()
    batch_size: int = 2000  # dirty objects planned and pushed at a time (bounded memory)

    def __post_init__(self) -> None:
        if not self.resources:
            object.__setattr__(self, "resources", (ResourceSpec(USERS, self.select),))
