"""Plan: pure functions from (mirror object, its links, settings) to the ELIZA actions it needs.

Nothing here does I/O. The engine reads what only ELIZA can tell (matching on first sight,
a person's current ``austrittsdatum``) and hands it to :mod:`deltasync.plan.resolve`; the
planner decides everything else, so a dry run and a real run show the very same actions.
"""

from __future__ import annotations

from deltasync.plan.actions import (
    DEPROVISIONING_OPS,
    Action,
    AddToGroups,
    ObjectPlan,
    Op,
    Plan,
    Ref,
    diff,
)
from deltasync.plan.context import Evaluable, PlanContext
from deltasync.plan.objects import plan_all, plan_object
from deltasync.plan.persons import desired_person
from deltasync.plan.scope import Predicate, Scope, scope_status
from deltasync.plan.select import selected_properties
from deltasync.plan.threshold import apply_threshold
from deltasync.plan.users import desired_user

__all__ = [
    "DEPROVISIONING_OPS",
    "Action",
    "AddToGroups",
    "Evaluable",
    "ObjectPlan",
    "Op",
    "Plan",
    "PlanContext",
    "Predicate",
    "Ref",
    "Scope",
    "apply_threshold",
    "desired_person",
    "desired_user",
    "diff",
    "plan_all",
    "plan_object",
    "scope_status",
    "selected_properties",
]
