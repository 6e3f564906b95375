"""The groups of a run: custom groups first, then the users' memberships, retired groups last.

1. :func:`plan_groups` plans the dirty Entra groups (pure :func:`deltasync.plan.groups.plan_group`);
2. :func:`push_groups` creates (after matching), renames and links the custom groups, so the
   users' plans see every ELIZA id;
3. the users' plan (:mod:`deltasync.engine.plan`) asks :func:`users_to_plan` for the members of
   groups linked just now, and :func:`with_groups` decides each user's ``groups``;
4. :func:`retire_groups` empties (reports) or deletes the groups that left, after their members
   lost them, and only when the deletion threshold held nothing back.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from deltasync import fields as f
from deltasync.engine.context import Run
from deltasync.engine.ledger import PLAN_FINGERPRINT
from deltasync.engine.push import _Push
from deltasync.engine.report import action_json
from deltasync.errors import ConflictError, ObjectRejectedError
from deltasync.models import Kind, Link, LinkStatus, MirrorObject
from deltasync.plan import memory as m
from deltasync.plan.actions import Action, ObjectPlan, Op, Plan
from deltasync.plan.groups import (
    DESCRIPTION,
    FLATTEN,
    NAME,
    GroupView,
    build_view,
    plan_group,
    plan_user_groups,
)

GROUPS = "groups"  # the Graph resource (and state cursor) of the groups


@dataclass
class GroupRound:
    """What the run does to the groups; ``links`` are every group link once read."""

    plans: list[ObjectPlan] = field(default_factory=list)  # create, match, rename
    retiring: list[ObjectPlan] = field(default_factory=list)  # empty or delete, pushed last
    links: dict[str, Link] | None = None
    newly_linked: set[str] = field(default_factory=set)  # their members are planned too
    view: GroupView | None = None  # built once the custom groups are pushed, for every batch


def _due(run: Run) -> datetime:
    return datetime.max.replace(tzinfo=UTC) if run.opts.retry_failed else run.now()


def plan_groups(run: Run) -> GroupRound | None:
    """The dirty groups' plans; None when group sync is off. No reads when nothing is dirty."""
    settings = run.settings.ctx.groups
    if settings is None:
        return None
    current = run.store.get_meta(PLAN_FINGERPRINT) == run.settings.plan_fingerprint
    everything = run.opts.verify_target or not current
    dirty = run.store.dirty_objects(GROUPS, _due(run), everything=everything)
    rnd = GroupRound()
    if not dirty:
        return rnd
    rnd.links = {lk.entra_id: lk for lk in run.store.all_links(Kind.GROUP)}
    for obj in dirty:
        p = plan_group(obj, rnd.links.get(obj.id), settings)
        retiring = any(a.op in (Op.EMPTY, Op.DELETE) for a in p.actions)
        (rnd.retiring if retiring else rnd.plans).append(p)
    return rnd


class _GroupPush(_Push):
    """The push of custom groups: matching by remote_key, then by name; a taken name conflicts."""

    def __init__(self, run: Run, plan: Plan, rnd: GroupRound) -> None:
        super().__init__(run, plan)
        self.rnd = rnd
        self.listing = asyncio.Lock()  # the concurrent creates list ELIZA's groups once

    async def create(self, a: Action, version: int) -> None:
        if a.kind == Kind.GROUP and self.run.group_rows is None:
            async with self.listing:
                if self.run.group_rows is None:
                    rows = await self.run.target.list_all(self.run.names.CUSTOMGROUP)
                    self.run.group_rows = rows
        await super().create(a, version)
        self.rnd.newly_linked.add(a.entra_id)

    def fail(self, action: Action, version: int, exc: Exception) -> None:
        if (
            isinstance(exc, ObjectRejectedError)
            and not isinstance(exc, ConflictError)
            and exc.status == 409
            and action.kind == Kind.GROUP
        ):
            exc = ConflictError(
                f"ELIZA refused the name {action.label!r}: a system, automatic (orgunit_<id>) "
                "or custom group holds it already",
                status=409,
                body=exc.body,
            )
        super().fail(action, version, exc)


async def push_groups(run: Run, rnd: GroupRound | None) -> None:
    """Create, match and rename the custom groups; their links are known to the run after."""
    if rnd is None or rnd.links is None:
        return
    for gid, lk in rnd.links.items():
        run.linked(gid, Kind.GROUP, lk)
    pusher = _GroupPush(run, Plan(tuple(rnd.plans)), rnd)
    sem = asyncio.Semaphore(run.settings.concurrency)

    async def one(p: ObjectPlan) -> None:
        async with sem:
            ok = await pusher.object(p)
        if ok:
            run.ledger.settle(p.entra_id, p.version)

    await asyncio.gather(*(one(p) for p in rnd.plans))
    rnd.links = {gid: kinds[Kind.GROUP] for gid, kinds in run.links.items() if Kind.GROUP in kinds}


def _view(run: Run, rnd: GroupRound) -> GroupView:
    if rnd.view is not None:
        return rnd.view
    settings = run.settings.ctx.groups
    assert settings is not None
    if rnd.links is None:
        rnd.links = {lk.entra_id: lk for lk in run.store.all_links(Kind.GROUP)}
    groups = run.store.all_objects(GROUPS)
    edges = run.store.group_edges()
    rnd.view = build_view(settings.nested, groups, rnd.links, edges, settings)
    return rnd.view


def users_to_plan(run: Run, rnd: GroupRound | None, dirty: Sequence[MirrorObject]) -> list[str]:
    """Users not dirty but members of a group linked just now: they must be planned too."""
    if rnd is None or not rnd.newly_linked:
        return []
    settings = run.settings.ctx.groups
    nested = settings is not None and settings.nested == FLATTEN
    known = {o.id for o in dirty}
    users: set[str] = set()
    frontier, seen = set(rnd.newly_linked), set(rnd.newly_linked)
    edges = run.store.group_edges() if nested else []
    children: dict[str, list[str]] = {}
    for group, member in edges:
        children.setdefault(group, []).append(member)
    while frontier:
        members = run.store.group_members(frontier)
        nxt: set[str] = set()
        for gid in frontier:
            for mid, kind in members.get(gid, []):
                if kind == "user":
                    users.add(mid)
            for child in children.get(gid, []):
                if child not in seen:
                    seen.add(child)
                    nxt.add(child)
        frontier = nxt
    return sorted(users - known)


def with_groups(run: Run, rnd: GroupRound | None, plans: Iterable[ObjectPlan]) -> list[ObjectPlan]:
    """Each in-scope user's ``groups`` decided, merged into its user action (one PATCH)."""
    result = list(plans)
    ctx = run.settings.ctx
    if rnd is None or ctx.skip_users or not result:
        return result
    view = _view(run, rnd)
    direct = run.store.direct_groups(p.entra_id for p in result)
    out: list[ObjectPlan] = []
    for p in result:
        if p.status != "active":
            out.append(p)  # deprovisioned or protected: it keeps its groups
            continue
        link = run.links.get(p.entra_id, {}).get(Kind.USER)
        users = [a for a in p.actions if a.kind == Kind.USER]
        before = users[0] if users else None
        after = plan_user_groups(
            before, link, direct.get(p.entra_id, ()), view, ctx.assign_to_group, p.label
        )
        if after is before or after is None:
            out.append(p)
        elif before is None:
            out.append(replace(p, actions=(after, *p.actions)))
        else:
            out.append(replace(p, actions=tuple(after if a is before else a for a in p.actions)))
    return out


async def retire_groups(run: Run, rnd: GroupRound | None) -> None:
    """Empty (report) or delete the groups that left; held back while the threshold holds."""
    if rnd is None or not rnd.retiring:
        return
    if run.report.held:
        run.log(f"{len(rnd.retiring)} retiring group(s) wait: the deletion threshold held")
        return
    for gid, lk in (rnd.links or {}).items():
        run.linked(gid, Kind.GROUP, lk)
    pusher = _GroupPush(run, Plan(tuple(rnd.retiring)), rnd)
    holders: dict[int, list[int]] | None = None
    for p in rnd.retiring:
        ok = True
        for a in p.actions:
            if a.op == Op.EMPTY:
                link = run.link(a.entra_id, Kind.GROUP)
                if link is not None:
                    emptied = replace(link, status=LinkStatus.DEACTIVATED, pushed_version=p.version)
                    run.ledger.pushed(a, emptied, link.eliza_id)  # journaled: undo refills it
                    run.linked(a.entra_id, Kind.GROUP, emptied)
                run.report.actions.append(action_json(a, run.ledger.applied))
                run.log(f"group {a.label}: {a.reason}")
            else:
                if holders is None:
                    holders = await _holders(run)
                a = await _with_what_is_deleted(run, a, holders)
                ok = await pusher.object(replace(p, actions=(a,)))
        if ok:
            run.ledger.settle(p.entra_id, p.version)


async def _holders(run: Run) -> dict[int, list[int]]:
    """ELIZA group id -> the ELIZA users holding it now (one list read, before deleting)."""
    found: dict[int, list[int]] = {}
    for user in await run.target.list_all(run.names.USER):
        for gid in user.get(f.GROUPS) or []:
            found.setdefault(int(gid), []).append(int(user["id"]))
    return found


async def _with_what_is_deleted(run: Run, a: Action, holders: Mapping[int, list[int]]) -> Action:
    """The deletion with what it destroys as its changes (name, description, remote_key, the
    users holding it), so the journal holds what an undo needs to re-create it."""
    assert a.eliza_id is not None
    group = await run.target.get(run.names.CUSTOMGROUP, a.eliza_id) or dict(a.desired)
    changes: dict[str, tuple[object, object]] = {
        k: (group.get(k), None) for k in (NAME, DESCRIPTION, f.REMOTE_KEY) if group.get(k)
    }
    members = sorted(holders.get(a.eliza_id, ()))
    if members:
        changes[m.GROUP_MEMBERS] = (members, [])
    return replace(a, changes=changes)


def group_links(run: Run) -> Mapping[str, Link]:
    """The group links as the run knows them (active, deactivated and deleted)."""
    return {
        gid: kinds[Kind.GROUP]
        for gid, kinds in run.links.items()
        if Kind.GROUP in kinds and kinds[Kind.GROUP].status != LinkStatus.DELETED
    }
