"""The planner's settings: everything it needs besides the object and its links, plain data."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from deltasync.models import MirrorObject, Removed
from deltasync.plan.actions import Op
from deltasync.plan.groups import GroupSettings
from deltasync.plan.scope import Scope


class Evaluable(Protocol):
    """A compiled mapping expression (see deltasync.mapping.Expr)."""

    @property
    def source(self) -> str: ...

    @property
    def properties(self) -> frozenset[str]: ...

    def evaluate(self, data: Mapping[str, Any], tz: ZoneInfo) -> Any: ...


@dataclass(frozen=True)
class PlanContext:
    """Everything the planner needs besides the object and its links; plain data."""

    user_mapping: Mapping[str, Evaluable]
    person_mapping: Mapping[str, Evaluable]
    tz: ZoneInfo
    today: date
    scope: Scope = field(default_factory=Scope)
    create_users: bool = True
    update_users: bool = True
    create_persons: bool = True
    update_persons: bool = True
    skip_users: bool = False
    skip_persons: bool = False
    on_disable: str = "deactivate"  # deactivate | ignore
    on_delete: str = "deactivate"  # deactivate | delete | ignore
    orgunit_sync: bool = False
    orgunit_mapping: Mapping[str, int] = field(default_factory=dict)
    assign_to_group: int | None = None
    person_ids: Mapping[str, int] = field(default_factory=dict)  # entra id -> linked person id
    groups: GroupSettings | None = None  # None: group sync is off (groups are not read)


def deprovision_op(obj: MirrorObject, policy: str, ctx: PlanContext) -> Op | None:
    """What the deprovisioning settings do to an object that left the scope (None: nothing)."""
    setting = ctx.on_delete if policy == "delete" else ctx.on_disable
    if setting == "ignore":
        return None
    if setting == "delete" and obj.removed == Removed.DELETED:
        return Op.DELETE
    return Op.DEACTIVATE
