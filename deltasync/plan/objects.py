"""One Entra object's plan: users first, then persons, then memberships."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from deltasync.models import Kind, Link, LinkStatus, MirrorObject
from deltasync.plan.actions import Action, ObjectPlan
from deltasync.plan.context import PlanContext
from deltasync.plan.memberships import plan_memberships
from deltasync.plan.persons import plan_person
from deltasync.plan.scope import label, scope_status
from deltasync.plan.users import plan_user


def plan_object(obj: MirrorObject, links: Mapping[Kind, Link], ctx: PlanContext) -> ObjectPlan:
    """Every action one Entra object needs, users first, then persons, then memberships."""
    status, policy = scope_status(obj, ctx.scope)
    user_link = links.get(Kind.USER)
    if user_link is not None and user_link.status == LinkStatus.PROTECTED:
        return ObjectPlan(obj.id, obj.version, label(obj), "protected in ELIZA", ())
    actions: list[Action] = []
    user_action = None
    if not ctx.skip_users:
        user_action = plan_user(obj, links.get(Kind.USER), status, policy, ctx)
        if user_action is not None:
            actions.append(user_action)
    unresolved: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    if not ctx.skip_persons:
        person_action, unresolved = plan_person(obj, links, status, policy, ctx, user_action)
        if person_action is not None:
            actions.append(person_action)
        if ctx.orgunit_sync:
            memberships, notes = plan_memberships(obj, links, status, policy, ctx, person_action)
            actions.extend(memberships)
    return ObjectPlan(obj.id, obj.version, label(obj), status, tuple(actions), notes, unresolved)


def plan_all(
    objects: Iterable[MirrorObject], links: Mapping[str, Mapping[Kind, Link]], ctx: PlanContext
) -> list[ObjectPlan]:
    """Plan every object; links maps Entra id -> kind -> link."""
    return [plan_object(o, links.get(o.id, {}), ctx) for o in objects]
