"""Undo: put back what one run changed, as a run of its own.

The engine reads the run's journal, what ELIZA holds now for every object the run wrote,
the links, and the later journal entries of those objects; the pure
:func:`deltasync.plan.undo.plan_undo` turns them into reversals and refusals. The deletion
threshold holds the deactivations of an undo like any other run's. Each reversal is one
PATCH, recorded through the ledger (link and journal entry in one transaction), so the
undo is itself journaled and can be undone; a dry run's ledger and target write nothing.
The mirror is left alone: undone objects are planned again when they next change in Entra
(or on a resync or a mapping change), and then brought in line with Entra.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any, Protocol, cast

from deltasync import fields as f
from deltasync.engine.context import Run
from deltasync.engine.ports import Store, collection
from deltasync.engine.report import action_json
from deltasync.errors import ObjectRejectedError, ServiceUnavailableError, UsageError
from deltasync.models import JournalEntry, Kind, Link, LinkStatus, RunRecord
from deltasync.plan import memory as m
from deltasync.plan.actions import Action, Op
from deltasync.plan.groups import NAME
from deltasync.plan.scope import label
from deltasync.plan.threshold import apply_threshold
from deltasync.plan.undo import (
    CREATING,
    UNDO,
    Reversal,
    UndoInput,
    UndoPlan,
    plan_undo,
    undone_by,
    written_objects,
)
from deltasync.plan.undo_groups import GroupSwap


class UndoStore(Store, Protocol):
    """What undo reads beyond a run's needs (``deltasync.state.StateStore`` has it all)."""

    def get_run(self, run_id: int) -> RunRecord | None: ...

    def run_journal(self, run_id: int) -> list[JournalEntry]: ...

    def runs(self, limit: int = 20) -> list[RunRecord]: ...


async def undo(run: Run, run_id: int, *, force: bool) -> UndoPlan:
    """Undo run ``run_id``: plan, hold what the threshold holds, write, record, report."""
    store = cast(UndoStore, run.store)
    report = run.report
    report.undo_of = run_id
    record = store.get_run(run_id)
    if record is None:
        raise UsageError(f"there is no run {run_id}; `state runs` lists the runs")
    if record.dry_run:
        raise UsageError(
            f"run {run_id} was a dry run: it changed nothing, there is nothing to undo"
        )
    before = undone_by(r for r in store.runs(limit=10_000) if r.id > run_id)
    if run_id in before and not force:
        raise UsageError(
            f"run {run_id} was already undone by run {before[run_id]} "
            "(undo that run to redo it, or pass --force)"
        )
    entries = store.run_journal(run_id)
    plan = await _plan(run, store, run_id, entries, force=force)
    for refusal in plan.refused:
        report.conflicts.append(
            {
                "entra_id": refusal.entra_id,
                "label": refusal.label,
                "kind": refusal.kind.value,
                "op": UNDO,
                "eliza_id": refusal.eliza_id,
                "message": refusal.reason + ("" if force else "; --force undoes it anyway"),
            }
        )
        run.log(
            f"refused: {refusal.label} {refusal.kind.value} #{refusal.eliza_id}: {refusal.reason}"
        )
    result = apply_threshold(
        plan.object_plans(),
        linked_users=run.store.count_links(Kind.USER, status=LinkStatus.ACTIVE),
        max_count=run.settings.max_deactivations,
        max_percent=run.settings.max_deactivation_percent,
        allow=run.opts.allow_deletes,
    )
    held = {p.entra_id for p in result.held}
    if result.held:
        report.threshold = result.threshold_reason
        for p in result.held:
            report.held.append({"entra_id": p.entra_id, "label": p.label, "status": p.status})
            report.actions.extend(action_json(a, "held") for a in p.actions if a.deprovisions)
    report.planned_objects = len(result.objects)
    run.progress.phase("push", len(plan.reversals))
    renumbered: dict[int, int] = {}  # a re-created group's old ELIZA id -> its new one
    try:
        for reversal in plan.reversals:
            a = reversal.action
            if a.entra_id in held and a.deprovisions:
                continue
            run.lease.renew()
            await _write(run, reversal, renumbered)
            run.progress.advance(1)
    finally:
        run.progress.done()
    return plan


async def _plan(
    run: Run, store: UndoStore, run_id: int, entries: list[JournalEntry], *, force: bool
) -> UndoPlan:
    objects = written_objects(entries)
    entra_ids = sorted({eid for eid, _, _ in objects})
    later: dict[tuple[str, Kind], int] = {}
    for entra_id in entra_ids:
        for e in store.journal_for(entra_id, 200):
            if e.run_id > run_id and e.run_id != run.report.run_id and e.action != CREATING:
                key = (entra_id, e.kind)
                later[key] = min(later.get(key, e.run_id), e.run_id)
    current: dict[tuple[Kind, int], Any] = {}
    for _, kind, eliza_id in objects:
        if (kind, eliza_id) not in current:
            current[(kind, eliza_id)] = await run.target.get(collection(run.names, kind), eliza_id)
    labels = {
        o.id: label(o)
        for spec in run.settings.resources
        for o in run.store.objects_by_id(spec.name, entra_ids)
    }
    group_names = {
        lk.eliza_id: str(lk.pushed[NAME])
        for lk in run.store.all_links(Kind.GROUP)
        if lk.pushed.get(NAME)
    }
    world = UndoInput(
        current=current,
        links=run.store.links_for(entra_ids),
        later=later,
        labels=labels,
        today=run.settings.ctx.today.isoformat(),
        now=run.now(),
        force=force,
        group_names=group_names,
    )
    return plan_undo(run_id, entries, world)


async def _write(run: Run, reversal: Reversal, renumbered: dict[int, int]) -> None:
    """One reversal: its requests (none for an empty body), then link and journal together."""
    a, link = reversal.action, reversal.link
    resource = collection(run.names, a.kind)
    try:
        if a.kind == Kind.GROUP and a.op == Op.CREATE:
            a, link = await _recreate_group(run, reversal, renumbered)
        elif a.kind == Kind.GROUP and reversal.members:
            a = await _take_group(run, reversal)
        elif isinstance(a.fields.get(f.GROUPS), GroupSwap):
            a, link = await _swap_groups(run, a, link, renumbered)
        if a.fields and a.eliza_id is not None and not (a.kind == Kind.GROUP and a.op == Op.CREATE):
            await run.target.update(resource, a.eliza_id, a.fields)
    except (ObjectRejectedError, ServiceUnavailableError) as exc:
        run.report.failures.append(
            {
                "entra_id": a.entra_id,
                "label": a.label,
                "kind": a.kind.value,
                "op": a.op.value,
                "message": str(exc),
            }
        )
        run.report.actions.append(action_json(a, "error"))
        run.log(f"error: {a.label} {a.kind.value} {a.op.value}: {exc}")
        return
    run.report.actions.append(action_json(a, run.ledger.applied))
    run.ledger.pushed(a, link, a.eliza_id)
    if link is not None:
        run.linked(a.entra_id, a.kind, link)


async def _swap_groups(
    run: Run, a: Action, link: Link | None, renumbered: Mapping[int, int]
) -> tuple[Action, Link | None]:
    """A user's groups put back, against the user as it is now (a re-created group's
    members may have just been given it); the whole list before and after is journaled."""
    swap = a.fields[f.GROUPS]
    assert isinstance(swap, GroupSwap) and a.eliza_id is not None
    user = await run.target.get(run.names.USER, a.eliza_id) or {}
    before = [int(g) for g in user.get(f.GROUPS) or []]
    after = swap.resolve(before, renumbered)
    fields = {k: v for k, v in a.fields.items() if k != f.GROUPS}
    if set(after) != set(before):
        fields[f.GROUPS] = after
    if link is not None and renumbered and m.MANAGED_GROUPS in link.pushed:
        managed = [renumbered.get(int(g), int(g)) for g in link.pushed[m.MANAGED_GROUPS]]
        link = replace(link, pushed={**link.pushed, m.MANAGED_GROUPS: sorted(managed)})
    written = (tuple(sorted(before)), tuple(after)) if f.GROUPS in fields else None
    return replace(a, fields=fields, groups_written=written), link


async def _recreate_group(
    run: Run, reversal: Reversal, renumbered: dict[int, int]
) -> tuple[Action, Link | None]:
    """POST the deleted group again, give it back to the users that held it, relink it."""
    a, link = reversal.action, reversal.link
    answer = await run.target.create(run.names.CUSTOMGROUP, dict(a.fields))
    new_id = int(answer["id"])
    if a.eliza_id is not None:
        renumbered[a.eliza_id] = new_id
    given = [u for u in reversal.members if await _regroup(run, u, add=new_id)]
    changes = dict(a.changes)
    if given:
        changes[m.GROUP_MEMBERS] = ([], given)
    relinked = None if link is None else replace(link, eliza_id=new_id, matched_at=run.now())
    shown = tuple(f"+user #{u}" for u in given)
    return replace(a, eliza_id=new_id, changes=changes, shown_groups=shown), relinked


async def _take_group(run: Run, reversal: Reversal) -> Action:
    """An undone re-creation: the group taken from the users the re-creation gave it to."""
    a = reversal.action
    assert a.eliza_id is not None
    taken = [u for u in reversal.members if await _regroup(run, u, remove=a.eliza_id)]
    changes: dict[str, tuple[Any, Any]] = {m.GROUP_MEMBERS: (taken, [])} if taken else {}
    return replace(a, changes=changes, shown_groups=tuple(f"−user #{u}" for u in taken))


async def _regroup(run: Run, user_id: int, *, add: int = 0, remove: int = 0) -> bool:
    """Give a user one group or take it (every other group kept); False: nothing to do."""
    user = await run.target.get(run.names.USER, user_id)
    if user is None:
        return False
    have = [int(g) for g in user.get(f.GROUPS) or []]
    want = sorted({g for g in have if g != remove} | ({add} if add else set()))
    if set(want) == set(have):
        return False
    await run.target.update(run.names.USER, user_id, {f.GROUPS: want})
    return True
