"""The one org-unit membership the sync manages for a person: open, move, end or reopen it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from deltasync import fields as f
from deltasync.models import Kind, Link, LinkStatus, MirrorObject
from deltasync.plan import memory as m
from deltasync.plan.actions import Action, Op, Ref
from deltasync.plan.context import PlanContext
from deltasync.plan.scope import label


def plan_memberships(
    obj: MirrorObject,
    links: Mapping[Kind, Link],
    status: str,
    policy: str | None,
    ctx: PlanContext,
    person_action: Action | None,
) -> tuple[list[Action], tuple[str, ...]]:
    """The membership actions (end before open), and notes such as an unmapped company."""
    link = links.get(Kind.MEMBERSHIP)
    name = label(obj)
    today = ctx.today.isoformat()
    open_link = link is not None and link.status == LinkStatus.ACTIVE
    actions: list[Action] = []
    if policy is not None:
        if open_link and link is not None:
            actions.append(_end(obj.id, link, today, f"deprovision: {status}", name, True))
        return actions, ()
    company = obj.data.get(f.ORGUNIT_PROPERTY)
    target = ctx.orgunit_mapping.get(company) if isinstance(company, str) else None
    notes = (f"unmapped company {company!r}",) if company and target is None else ()
    person = links.get(Kind.PERSON)
    person_ref: Any
    if person is not None and person.status != LinkStatus.DELETED:
        person_ref = person.eliza_id
    elif person_action is not None and person_action.op == Op.CREATE:
        person_ref = Ref(Kind.PERSON, obj.id)
    else:
        return actions, notes
    current = link.pushed.get(f.ORGUNIT) if link is not None else None
    reopen = (
        link is not None
        and link.status == LinkStatus.DEACTIVATED
        and link.saved.get(m.ENDED_BY_SYNC)
    )
    if reopen and link is not None and target == current:
        actions.append(
            Action(
                obj.id,
                Kind.MEMBERSHIP,
                Op.REOPEN,
                link.eliza_id,
                {f.BIS: None},
                {f.BIS: (link.pushed.get(f.BIS), None)},
                "back in scope",
                name,
                {**link.pushed, f.BIS: None},
                saved={},
            )
        )
        return actions, notes
    if open_link and link is not None:
        if target == current:
            return actions, notes
        actions.append(_end(obj.id, link, today, "company changed", name, False))
    if target is not None:
        fields = {f.MEMBER: person_ref, f.ORGUNIT: target, f.VON: today, f.BIS: None}
        actions.append(
            Action(
                obj.id,
                Kind.MEMBERSHIP,
                Op.CREATE,
                None,
                fields,
                {f.ORGUNIT: (current, target)},
                f"company {company!r}",
                name,
                fields,
            )
        )
    return actions, notes


def _end(
    entra_id: str, link: Link, today: str, reason: str, name: str, by_deprovision: bool
) -> Action:
    return Action(
        entra_id,
        Kind.MEMBERSHIP,
        Op.END,
        link.eliza_id,
        {f.BIS: today},
        {f.BIS: (None, today)},
        reason,
        name,
        {**link.pushed, f.BIS: today},
        saved={m.ENDED_BY_SYNC: True} if by_deprovision else {},
    )
