"""Plan and push: the dirty objects of every resource, a batch at a time, through the pure
planner, under the deletion threshold counted over the whole run."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from deltasync.engine.context import Run
from deltasync.engine.groups import GROUPS, GroupRound, users_to_plan, with_groups
from deltasync.engine.ledger import PLAN_FINGERPRINT
from deltasync.engine.push import Pusher
from deltasync.engine.report import action_json
from deltasync.engine.settings import USERS
from deltasync.mapping import ExpressionError
from deltasync.matching import protection
from deltasync.models import Kind, LinkStatus, MirrorObject
from deltasync.plan.actions import ObjectPlan, Plan
from deltasync.plan.groups import removals
from deltasync.plan.objects import plan_object
from deltasync.plan.reasons import relabel
from deltasync.plan.scope import label
from deltasync.plan.threshold import apply_threshold


@dataclass
class _Across:
    """What the planning carries from batch to batch."""

    linked_users: int = 0
    prepared: bool = False
    aside: list[ObjectPlan] = field(default_factory=list)  # deprovisionings: the threshold's
    limited: int = 0  # objects with actions let through under --limit-users
    deferred: int = 0  # and those it leaves for later runs
    out_of_scope: Counter[str] = field(default_factory=Counter)
    notes: Counter[str] = field(default_factory=Counter)


async def plan_and_push(
    run: Run,
    groups: GroupRound | None = None,
    trace: Callable[[Run, Plan], None] | None = None,
) -> None:
    """Plan the dirty objects and push them, a batch at a time (``batch_size``).

    With group sync (``groups``), the users' ``groups`` are decided too, and the members of
    the groups linked just now are planned after the dirty objects. The plans holding a
    deprovisioning wait until every batch is planned: the deletion threshold counts them
    all before any goes out. ``trace`` (sync --user, one batch) sees the plan before its push.
    """
    settings = run.settings
    run.fingerprint_current = run.store.get_meta(PLAN_FINGERPRINT) == settings.plan_fingerprint
    across = _Across()
    pusher = Pusher(run)
    try:
        for objects, last in _peek(_batches(run, groups)):
            mark = time.monotonic()
            plans = await _plan_batch(run, objects, groups, across) if objects else []
            if last:
                result = _threshold(run, across, [*across.aside, *plans])
                across.aside = []
            else:
                now = [p for p in plans if not _deprovisions(p)]
                across.aside.extend(p for p in plans if _deprovisions(p))
                result = Plan(tuple(now))
            result = _limit(run, across, result)
            run.report.timings["plan"] = run.report.timings.get("plan", 0.0) + (
                time.monotonic() - mark
            )
            across.out_of_scope.update(filter(None, map(_left_out, result.objects)))
            across.notes.update(n for p in result.objects for n in p.notes)
            if trace is not None:
                trace(run, result)
            await pusher.batch(result, last=last)
            _forget(run, objects, {p.entra_id for p in [*pusher.waiting, *across.aside]})
        if across.deferred:
            run.log(f"--limit-users: {across.deferred} objects wait for later runs")
        if across.prepared:
            run.report.out_of_scope = dict(across.out_of_scope)
            for note, count in sorted(across.notes.items()):
                run.report.warnings.append(f"{note} ({count} user{'s' if count != 1 else ''})")
        await pusher.finish()
    finally:
        pusher.close()


def _deprovisions(p: ObjectPlan) -> bool:
    """Whether the threshold counts this plan (a deactivation or a group removal)."""
    return any(a.deprovisions or removals(a) for a in p.actions)


def _peek(batches: Iterator[list[MirrorObject]]) -> Iterator[tuple[list[MirrorObject], bool]]:
    """Each batch with whether it is the last; always at least one (maybe empty)."""
    current = next(batches, [])
    for following in batches:
        yield current, False
        current = following
    yield current, True


def _batches(run: Run, groups: GroupRound | None) -> Iterator[list[MirrorObject]]:
    """The objects to plan: the dirty ones by id, then the users a group change touches."""
    opts, settings = run.opts, run.settings
    if opts.users:  # sync --user: just those, dirty or not; the others wait for the next run
        run.fingerprint_current = True
        yield run.store.objects_by_id(USERS, opts.users)
        return
    everything = opts.verify_target or not run.fingerprint_current
    due = datetime.max.replace(tzinfo=UTC) if opts.retry_failed else run.now()
    size = None if opts.verify_target else settings.batch_size  # verify: links read at once
    extra = set(users_to_plan(run, groups, ()))  # members of groups linked just now
    for spec in settings.resources:
        if spec.name == GROUPS:
            continue  # planned by deltasync.engine.groups
        after: str | None = None
        while True:
            batch = run.store.dirty_objects(
                spec.name, due, everything=everything, after=after, limit=size
            )
            if batch:
                extra.difference_update(o.id for o in batch)
                yield batch
            if size is None or len(batch) < size:
                break
            after = batch[-1].id
    if extra:
        users = settings.resources[0].name
        ids = sorted(extra)
        step = size or len(ids)
        for start in range(0, len(ids), step):
            yield run.store.objects_by_id(users, ids[start : start + step])


def _prepare(run: Run, across: _Across) -> None:
    """Before the first batch with objects: failures known, person ids, linked users."""
    across.prepared = True
    run.ledger.known_failures(f.entra_id for f in run.store.failures())
    run.links = {}
    persons = run.store.eliza_ids(Kind.PERSON)
    run.ids = {(entra_id, Kind.PERSON): i for entra_id, i in persons.items()}
    del persons
    across.linked_users = run.store.count_links(Kind.USER, status=LinkStatus.ACTIVE)


async def _plan_batch(
    run: Run, objects: list[MirrorObject], groups: GroupRound | None, across: _Across
) -> list[ObjectPlan]:
    """One batch's plans: its links read, each object planned, the users' groups decided."""
    if not across.prepared:
        _prepare(run, across)
    links = run.store.links_for([o.id for o in objects])
    for entra_id, kinds in links.items():
        run.links[entra_id] = dict(kinds)
        for kind, lk in kinds.items():
            run.ids[(entra_id, kind)] = lk.eliza_id
    if run.opts.verify_target:
        await _verify_target(run)
    ctx = run.plan_context()
    plans: list[ObjectPlan] = []
    for o in objects:
        run.objects[o.id] = o
        if o.id in run.protected:
            _refuse_protected(run, o)
            continue
        try:
            plans.append(_why(run, o, plan_object(o, run.links.get(o.id, {}), ctx)))
        except ExpressionError as exc:
            _fail_planning(run, o, exc)
    return with_groups(run, groups, plans)


def _forget(run: Run, objects: list[MirrorObject], keep: set[str]) -> None:
    """A pushed batch leaves the run's memory, but for what later batches still need."""
    for o in objects:
        if o.id in keep:
            continue
        run.objects.pop(o.id, None)
        for kind in run.links.pop(o.id, {}):
            if kind != Kind.PERSON:  # person ids resolve managers in later batches
                run.ids.pop((o.id, kind), None)


def _threshold(run: Run, across: _Across, plans: list[ObjectPlan]) -> Plan:
    """The deletion threshold over every deprovisioning of the run; what it holds reported."""
    result = apply_threshold(
        plans,
        linked_users=across.linked_users,
        max_count=run.settings.max_deactivations,
        max_percent=run.settings.max_deactivation_percent,
        allow=run.opts.allow_deletes,
    )
    report = run.report
    if result.held:
        report.threshold = result.threshold_reason
        for held in result.held:
            entry: dict[str, Any] = {
                "entra_id": held.entra_id,
                "label": held.label,
                "status": held.status,
            }
            dropped = sum(removals(a) for a in held.actions)
            if dropped:
                entry["group_removals"] = dropped
            report.held.append(entry)
            report.actions.extend(
                action_json(a, "held") for a in held.actions if a.deprovisions or removals(a)
            )
        run.log(f"deactivations held: {result.threshold_reason}")
    return result


def _left_out(p: ObjectPlan) -> str | None:
    """Why an object the run leaves alone is not synced (None: in scope, or acted on)."""
    if p.actions or p.status == "active":
        return None
    if p.status == "disabled":
        return "disabled"
    prefix = "out of scope: "
    return p.status[len(prefix) :] if p.status.startswith(prefix) else None


def _why(run: Run, obj: MirrorObject, planned: ObjectPlan) -> ObjectPlan:
    """Each update's reason: changed in Entra, mapping changed, or drift repair."""
    links = run.links.get(obj.id, {})
    return relabel(
        planned,
        entra_changed={kind: obj.version > lk.pushed_version for kind, lk in links.items()},
        mapping_changed=not run.fingerprint_current,
        drifted={kind: run.drift.get((obj.id, kind), frozenset()) for kind in links},
    )


def _limit(run: Run, across: _Across, result: Plan) -> Plan:
    """--limit-users: only the first objects with actions run (counted over the batches);
    the others wait, still dirty."""
    with_actions = [p for p in result.objects if p.actions]
    run.report.planned_objects += len(with_actions)
    limit = run.opts.limit_users
    if limit is None:
        return result
    room = max(limit - across.limited, 0)
    across.limited += min(room, len(with_actions))
    if len(with_actions) <= room:
        return result
    keep = {p.entra_id for p in with_actions[:room]}
    across.deferred += len(with_actions) - room
    run.report.deferred_objects += len(with_actions) - room
    return replace(
        result, objects=tuple(p for p in result.objects if p.entra_id in keep or not p.actions)
    )


async def _verify_target(run: Run) -> None:
    """Compare every link with what ELIZA holds now, so drift made by hand gets repaired.

    The planner diffs against ``pushed``; replacing it with ELIZA's current values turns
    every hand-made change of a mapped field into an update. A linked object that is gone
    from ELIZA loses its link and is created again.
    """
    run.log("--verify-target: reading ELIZA's users and persons")
    current = {
        Kind.USER: {int(u["id"]): u for u in await run.target.list_all(run.names.USER)},
        Kind.PERSON: {int(p["id"]): p for p in await run.target.list_all(run.names.PERSON)},
    }
    for entra_id, kinds in run.links.items():
        for kind, link in list(kinds.items()):
            if kind not in current or link.status == LinkStatus.DELETED:
                continue
            actual = current[kind].get(link.eliza_id)
            if actual is None:
                run.report.warnings.append(
                    f"linked ELIZA {kind.value} #{link.eliza_id} of {entra_id} was deleted "
                    "in ELIZA; it is created again"
                )
                run.ledger.forget(entra_id, kind, link.eliza_id)
                del kinds[kind]
                continue
            seen = {k: actual[k] for k in link.pushed if k in actual}
            run.drift[(entra_id, kind)] = {k for k, v in seen.items() if link.pushed[k] != v}
            link = kinds[kind] = replace(link, pushed={**link.pushed, **seen})
            if kind != Kind.USER:
                continue
            why = protection(actual, run.settings.matching.protected_groups)
            if why and link.status != LinkStatus.PROTECTED:
                run.protected[entra_id] = f"the linked ELIZA user #{link.eliza_id} {why}"
            elif not why and link.status == LinkStatus.PROTECTED:
                kinds[kind] = replace(link, status=LinkStatus.ACTIVE)
                run.report.warnings.append(
                    f"ELIZA user #{link.eliza_id} is no longer protected; the sync manages it again"
                )
                run.ledger.relink(kinds[kind])


def _refuse_protected(run: Run, obj: MirrorObject) -> None:
    """A linked account became a superuser or joined a protected group: hands off."""
    reason = run.protected[obj.id] + "; the sync leaves this account alone"
    name = label(obj)
    run.report.conflicts.append(
        {"entra_id": obj.id, "label": name, "kind": "user", "op": "update", "message": reason}
    )
    run.log(f"conflict: {name}: {reason}")
    run.ledger.relink(replace(run.links[obj.id][Kind.USER], status=LinkStatus.PROTECTED))
    run.ledger.failed(obj.id, Kind.USER, "update", "conflict", reason, {}, obj.version)


def _fail_planning(run: Run, obj: MirrorObject, exc: Exception) -> None:
    """A mapping expression failed on this user's data: report it, plan the others."""
    name = label(obj)
    message = f"field mapping failed: {exc}"
    run.report.failures.append(
        {"entra_id": obj.id, "label": name, "kind": "user", "op": "plan", "message": message}
    )
    run.log(f"error: {name}: {message}")
    run.ledger.failed(obj.id, Kind.USER, "plan", "error", message, {}, obj.version)
