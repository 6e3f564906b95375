"""The ELIZA person of an Entra user: create, update, reactivate or deprovision it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from deltasync import fields as f
from deltasync.models import Kind, Link, LinkStatus, MirrorObject
from deltasync.plan import memory as m
from deltasync.plan.actions import Action, Op, Ref, diff, keep_adopted, still_kept
from deltasync.plan.context import PlanContext, deprovision_op
from deltasync.plan.scope import label


def desired_person(
    obj: MirrorObject, ctx: PlanContext, user_ref: Any
) -> tuple[dict[str, Any], tuple[str, ...]]:
    """The person fields ELIZA should hold, and the fields still waiting for a link."""
    values: dict[str, Any] = {}
    unresolved: list[str] = []
    for name, expr in ctx.person_mapping.items():
        value = expr.evaluate(obj.data, ctx.tz)
        if name == f.MANAGER and value is not None:
            manager = ctx.person_ids.get(str(value))
            if manager is None:
                unresolved.append(name)
                continue
            value = manager
        values[name] = value
    values[f.REMOTE_KEY] = obj.id
    if user_ref is not None:  # without a linked user, leave ELIZA's value alone
        values[f.PERSON_USER] = user_ref
    return values, tuple(unresolved)


def _user_ref(links: Mapping[Kind, Link], user_action: Action | None) -> Any:
    link = links.get(Kind.USER)
    if link is not None and link.status != LinkStatus.DELETED:
        return link.eliza_id
    if user_action is not None and user_action.op == Op.CREATE:
        return Ref(Kind.USER, user_action.entra_id)
    return None


def plan_person(
    obj: MirrorObject,
    links: Mapping[Kind, Link],
    status: str,
    policy: str | None,
    ctx: PlanContext,
    user_action: Action | None,
) -> tuple[Action | None, tuple[str, ...]]:
    """The one action the Entra user's ELIZA person needs (or None), and unresolved fields."""
    link = links.get(Kind.PERSON)
    if policy is None:
        desired, unresolved = desired_person(obj, ctx, _user_ref(links, user_action))
        return _in_scope(obj, desired, link, ctx), unresolved
    if link is None or link.status != LinkStatus.ACTIVE:
        return None, ()
    op = deprovision_op(obj, policy, ctx)
    if op is None:
        return None, ()
    if op == Op.DELETE:
        return Action(obj.id, Kind.PERSON, Op.DELETE, link.eliza_id, {}, {}, status, label(obj)), ()
    return Action(
        obj.id,
        Kind.PERSON,
        Op.DEACTIVATE,
        link.eliza_id,
        {f.ANSTELLUNGSART: f.EMPLOYMENT_FORMER},
        {  # as far as the link knows; the push shows ELIZA's values as it reads them
            f.ANSTELLUNGSART: (
                link.pushed.get(f.ANSTELLUNGSART) or f.EMPLOYMENT_DEFAULT,
                f.EMPLOYMENT_FORMER,
            ),
            f.AUSTRITTSDATUM: (link.pushed.get(f.AUSTRITTSDATUM), ctx.today.isoformat()),
        },
        f"deprovision: {status}",
        label(obj),
        {**link.pushed, f.ANSTELLUNGSART: f.EMPLOYMENT_FORMER},
        if_empty={f.AUSTRITTSDATUM: ctx.today.isoformat()},
    ), ()


def _in_scope(
    obj: MirrorObject, desired: dict[str, Any], link: Link | None, ctx: PlanContext
) -> Action | None:
    name = label(obj)
    if link is None or link.status == LinkStatus.DELETED:
        if not ctx.create_persons:
            return None
        return Action(
            obj.id,
            Kind.PERSON,
            Op.CREATE,
            None,
            dict(desired),
            {k: (None, v) for k, v in desired.items()},
            "new in scope",
            name,
            desired,
        )
    kept = still_kept(desired, link.kept) if link.kept else None
    desired = keep_adopted(desired, link.kept, link.pushed)
    changes = diff(desired, link.pushed) if ctx.update_persons else {}
    if link.status == LinkStatus.DEACTIVATED:
        saved = link.saved
        changes[f.ANSTELLUNGSART] = (
            f.EMPLOYMENT_FORMER,
            saved.get(m.SAVED_EMPLOYMENT) or f.EMPLOYMENT_DEFAULT,
        )
        if saved.get(m.SAVED_EXIT_DATE_SET):
            changes[f.AUSTRITTSDATUM] = (saved.get(m.SAVED_EXIT_DATE), None)
        return Action(
            obj.id,
            Kind.PERSON,
            Op.REACTIVATE,
            link.eliza_id,
            {k: new for k, (_, new) in changes.items()},
            changes,
            "back in scope",
            name,
            {**link.pushed, **desired},
            saved={},
            kept=kept,
        )
    if not changes:
        return None
    return Action(
        obj.id,
        Kind.PERSON,
        Op.UPDATE,
        link.eliza_id,
        {k: new for k, (_, new) in changes.items()},
        changes,
        "changed in Entra",
        name,
        {**link.pushed, **desired},
        kept=kept,
    )


def memory_after_filling(current: Mapping[str, Any], filled: Mapping[str, Any]) -> dict[str, Any]:
    """What a person's deprovisioning must remember to undo: the employment type it replaced
    and whether it set the exit date (only where ELIZA had none)."""
    return {
        m.SAVED_EMPLOYMENT: current.get(f.ANSTELLUNGSART),
        m.SAVED_EXIT_DATE_SET: f.AUSTRITTSDATUM in filled,
        m.SAVED_EXIT_DATE: filled.get(f.AUSTRITTSDATUM),
    }
