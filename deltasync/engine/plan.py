"""Plan: the dirty objects of every resource, through the pure planner, under the threshold."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from deltasync.engine.context import Run
from deltasync.engine.groups import GROUPS, GroupRound, users_to_plan, with_groups
from deltasync.engine.ledger import PLAN_FINGERPRINT
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


async def plan(run: Run, groups: GroupRound | None = None) -> Plan:
    """What this run will do; reads links and failures, and ELIZA only for --verify-target.

    With group sync (``groups``), the users' ``groups`` are decided too, and the members of
    the groups linked just now are planned along with the dirty objects.
    """
    opts, report, settings = run.opts, run.report, run.settings
    run.fingerprint_current = run.store.get_meta(PLAN_FINGERPRINT) == settings.plan_fingerprint
    everything = opts.verify_target or not run.fingerprint_current
    due = datetime.max.replace(tzinfo=UTC) if opts.retry_failed else run.now()
    if opts.users:  # sync --user: just those, dirty or not; the others wait for the next run
        run.fingerprint_current = True
        objects = run.store.objects_by_id(USERS, opts.users)
    else:
        objects = [
            o
            for spec in settings.resources
            if spec.name != GROUPS  # planned by deltasync.engine.groups
            for o in run.store.dirty_objects(spec.name, due, everything=everything)
        ]
        extra = users_to_plan(run, groups, objects)  # users a group change touches
        if extra:
            users = settings.resources[0].name
            objects = sorted([*objects, *run.store.objects_by_id(users, extra)], key=lambda o: o.id)
    if not objects:
        return Plan(())  # nothing dirty: no further reads (the idle hourly run)
    run.ledger.known_failures(f.entra_id for f in run.store.failures())
    run.links = {k: dict(v) for k, v in run.store.links_for([o.id for o in objects]).items()}
    persons = run.store.eliza_ids(Kind.PERSON)
    run.ids = {(entra_id, Kind.PERSON): i for entra_id, i in persons.items()}
    del persons
    for entra_id, kinds in run.links.items():
        for kind, lk in kinds.items():
            run.ids[(entra_id, kind)] = lk.eliza_id
    if opts.verify_target:
        await _verify_target(run)
    ctx = run.plan_context()
    plans: list[ObjectPlan] = []
    for o in objects:
        if o.id in run.protected:
            _refuse_protected(run, o)
            continue
        try:
            plans.append(_why(run, o, plan_object(o, run.links.get(o.id, {}), ctx)))
        except ExpressionError as exc:
            _fail_planning(run, o, exc)
    run.objects = {o.id: o for o in objects}
    plans = with_groups(run, groups, plans)
    result = apply_threshold(
        plans,
        linked_users=run.store.count_links(Kind.USER, status=LinkStatus.ACTIVE),
        max_count=settings.max_deactivations,
        max_percent=settings.max_deactivation_percent,
        allow=opts.allow_deletes,
    )
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
    report.out_of_scope = dict(Counter(filter(None, map(_left_out, result.objects))))
    notes = Counter(n for p in result.objects for n in p.notes)
    for note, count in sorted(notes.items()):
        report.warnings.append(f"{note} ({count} user{'s' if count != 1 else ''})")
    return _limit(run, result)


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


def _limit(run: Run, result: Plan) -> Plan:
    """--limit-users: only the first objects with actions run; the others wait, still dirty."""
    with_actions = [p for p in result.objects if p.actions]
    run.report.planned_objects = len(with_actions)
    limit = run.opts.limit_users
    if limit is None or len(with_actions) <= limit:
        return result
    keep = {p.entra_id for p in with_actions[:limit]}
    run.report.deferred_objects = len(with_actions) - limit
    run.log(f"--limit-users: {run.report.deferred_objects} objects wait for later runs")
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
