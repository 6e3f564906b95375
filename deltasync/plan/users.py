"""The ELIZA user of an Entra user: create, update, reactivate or deprovision it."""

from __future__ import annotations

from typing import Any

from deltasync import fields as f
from deltasync.models import Kind, Link, LinkStatus, MirrorObject
from deltasync.plan import memory as m
from deltasync.plan.actions import Action, AddToGroups, Op, diff, keep_adopted, still_kept
from deltasync.plan.context import PlanContext, deprovision_op
from deltasync.plan.scope import label


def desired_user(obj: MirrorObject, ctx: PlanContext) -> dict[str, Any]:
    """The user fields ELIZA should hold for this Entra user (without groups)."""
    values = {name: expr.evaluate(obj.data, ctx.tz) for name, expr in ctx.user_mapping.items()}
    for name in f.blank_when_null(Kind.USER):
        if name in values and values[name] is None:
            values[name] = ""
    values[f.REMOTE_KEY] = obj.id
    values[f.IS_ACTIVE] = True
    return values


def _assign_group(
    fields: dict[str, Any],
    changes: dict[str, tuple[Any, Any]],
    desired: dict[str, Any],
    link: Link | None,
    ctx: PlanContext,
) -> None:
    """Add ``--assign-to-group`` to a user once; the sync never removes a group it did not add."""
    group = ctx.assign_to_group
    added = list(link.pushed.get(m.GROUPS_ADDED, ())) if link is not None else []
    if group is None or group in added:
        if added:
            desired[m.GROUPS_ADDED] = added
        return
    fields[f.GROUPS] = AddToGroups((group,))
    changes[f.GROUPS] = (None, f"+{group}")
    desired[m.GROUPS_ADDED] = sorted({*added, group})


def plan_user(
    obj: MirrorObject, link: Link | None, status: str, policy: str | None, ctx: PlanContext
) -> Action | None:
    """The one action the Entra user's ELIZA user needs, or None."""
    desired = desired_user(obj, ctx)  # evaluated first: a failing expression fails the object
    if policy is None:
        if link is None or link.status == LinkStatus.DELETED:
            return _create(obj, desired, ctx)
        return _update(obj, desired, link, ctx)
    if link is None or link.status != LinkStatus.ACTIVE:
        return None
    op = deprovision_op(obj, policy, ctx)
    if op is None:
        return None
    name = label(obj)
    if op == Op.DELETE:
        return Action(obj.id, Kind.USER, Op.DELETE, link.eliza_id, {}, {}, status, name)
    return Action(
        obj.id,
        Kind.USER,
        Op.DEACTIVATE,
        link.eliza_id,
        {f.IS_ACTIVE: False},
        {f.IS_ACTIVE: (link.pushed.get(f.IS_ACTIVE, True), False)},
        f"deprovision: {status}",
        name,
        {**link.pushed, f.IS_ACTIVE: False},
        saved={},
    )


def _create(obj: MirrorObject, desired: dict[str, Any], ctx: PlanContext) -> Action | None:
    if not ctx.create_users:
        return None
    fields = dict(desired)
    changes = {k: (None, v) for k, v in desired.items()}
    after = dict(desired)
    _assign_group(fields, changes, after, None, ctx)
    return Action(
        obj.id, Kind.USER, Op.CREATE, None, fields, changes, "new in scope", label(obj), after
    )


def _update(
    obj: MirrorObject, desired: dict[str, Any], link: Link, ctx: PlanContext
) -> Action | None:
    kept = still_kept(desired, link.kept) if link.kept else None
    desired = keep_adopted(desired, link.kept, link.pushed)
    changes = diff(desired, link.pushed) if ctx.update_users else {}
    reactivate = link.status == LinkStatus.DEACTIVATED
    if reactivate:
        changes[f.IS_ACTIVE] = (link.pushed.get(f.IS_ACTIVE), True)
    fields = {k: new for k, (_, new) in changes.items()}
    after = {**link.pushed, **desired, f.IS_ACTIVE: True}
    _assign_group(fields, changes, after, link, ctx)
    if not changes:
        return None
    if reactivate:
        return Action(
            obj.id,
            Kind.USER,
            Op.REACTIVATE,
            link.eliza_id,
            fields,
            changes,
            "back in scope",
            label(obj),
            after,
            saved={},
            kept=kept,
        )
    return Action(
        obj.id,
        Kind.USER,
        Op.UPDATE,
        link.eliza_id,
        fields,
        changes,
        "changed in Entra",
        label(obj),
        after,
        kept=kept,
    )
