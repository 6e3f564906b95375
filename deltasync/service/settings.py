"""What a run applies, derived from the config and the command line.

The only module of ``service`` that imports the planner: everything else asks here. The
engine is imported only by :func:`engine_settings`, so the ``state`` commands skip it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from deltasync.config import Config
from deltasync.models import MirrorObject
from deltasync.plan import PlanContext, Scope, scope_status, selected_properties
from deltasync.plan.groups import (
    GroupSettings,
    GroupView,
    build_view,
    group_label,
    group_status,
)

if TYPE_CHECKING:
    from deltasync.engine import EngineSettings

__all__ = [
    "GROUPS",
    "USERS",
    "GroupSettings",
    "GroupView",
    "SyncFlags",
    "build_view",
    "configured_groups",
    "engine_settings",
    "group_label",
    "group_status",
    "plan_context",
    "plan_fingerprint",
    "scope_label",
]

USERS = "users"
"""The Graph resource (and state cursor) of the users."""
GROUPS = "groups"
"""The Graph resource (and state cursor) of the groups."""
GROUP_SELECT = (
    "id",
    "description",
    "displayName",
    "groupTypes",
    "mail",
    "securityEnabled",
    "members",
)
"""What the groups round reads: ``members`` makes Graph track memberships (members@delta)."""


@dataclass(frozen=True)
class SyncFlags:
    """The sync/resync flags that change what is planned (beyond RunOptions)."""

    skip_users: bool = False
    skip_persons: bool = False
    skip_groups: bool = False
    orgunit_sync: bool = False
    assign_to_group: int | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


def plan_context(config: Config, flags: SyncFlags) -> PlanContext:
    """The planner's settings from the config and the command line."""
    today = datetime.now(config.timezone).date()
    adv = config.advanced
    so = config.sync_options
    return PlanContext(
        user_mapping=dict(config.field_mapping.user),
        person_mapping=dict(config.field_mapping.person),
        tz=config.timezone,
        today=today,
        scope=Scope(adv.user_filter, tuple(adv.excluded_domains), tuple(adv.excluded_users)),
        create_users=so.create_users,
        update_users=so.update_users,
        create_persons=so.create_persons,
        update_persons=so.update_persons,
        skip_users=flags.skip_users,
        skip_persons=flags.skip_persons,
        on_disable=config.deprovisioning.on_disable,
        on_delete=config.deprovisioning.on_delete,
        orgunit_sync=flags.orgunit_sync,
        orgunit_mapping=dict(config.orgunit_mapping),
        assign_to_group=flags.assign_to_group
        if flags.assign_to_group is not None
        else config.groups.assign_to_group,
        groups=group_settings(config, flags),
    )


def group_settings(config: Config, flags: SyncFlags) -> GroupSettings | None:
    """The groups the sync manages; None (groups not read at all) without sync_groups."""
    if not config.sync_options.sync_groups or flags.skip_groups:
        return None
    return configured_groups(config)


def configured_groups(config: Config) -> GroupSettings:
    """``groups.*`` as the planner reads them (also for ``state`` while sync_groups is off)."""
    g = config.groups
    return GroupSettings(tuple(g.include), g.nested, g.delete_removed)


def plan_fingerprint(ctx: PlanContext) -> str:
    """A hash of every setting that changes the desired ELIZA values: a change re-plans all."""
    parts: dict[str, Any] = {
        "user": sorted((k, v.source) for k, v in ctx.user_mapping.items()),
        "person": sorted((k, v.source) for k, v in ctx.person_mapping.items()),
        "filter": ctx.scope.user_filter.source if ctx.scope.user_filter else None,
        "excluded": [sorted(ctx.scope.excluded_domains), sorted(ctx.scope.excluded_users)],
        "options": [
            ctx.create_users,
            ctx.update_users,
            ctx.create_persons,
            ctx.update_persons,
            ctx.on_disable,
            ctx.on_delete,
            ctx.assign_to_group,
            ctx.orgunit_sync,
            ctx.skip_users,  # a skipping run settles objects it only half planned
            ctx.skip_persons,
        ],
        "orgunits": sorted(ctx.orgunit_mapping.items()),
    }
    if ctx.groups is not None:  # absent without groups: fingerprints of earlier versions hold
        g = ctx.groups
        parts["groups"] = [sorted(g.include), g.nested, g.delete_removed]
    return hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()[:16]


def engine_settings(config: Config, flags: SyncFlags) -> EngineSettings:
    """Everything the engine applies, derived from config and flags."""
    from deltasync.engine import EngineSettings, ResourceSpec
    from deltasync.matching import MatchSettings

    ctx = plan_context(config, flags)
    select = tuple(selected_properties(ctx))
    resources = [ResourceSpec(USERS, select)]
    if ctx.groups is not None:
        resources.append(ResourceSpec(GROUPS, GROUP_SELECT))
    return EngineSettings(
        ctx=ctx,
        select=select,
        resources=tuple(resources),
        plan_fingerprint=plan_fingerprint(ctx),
        matching=MatchSettings(
            hard_match=config.matching.hard_match,
            soft_match=config.matching.soft_match,
            protected_groups=frozenset(config.matching.protected_groups),
        ),
        max_deactivations=config.deprovisioning.max_deactivations,
        max_deactivation_percent=float(config.deprovisioning.max_deactivation_percent),
        concurrency=config.eliza.max_concurrency,
    )


def scope_label(obj: MirrorObject, ctx: PlanContext) -> str:
    """The scope status of ``obj`` under ``ctx`` ("active", "disabled", "deleted in Entra …", …)."""
    status, _ = scope_status(obj, ctx.scope)
    return status
