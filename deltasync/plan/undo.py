"""Pure: the journal of one run, and what ELIZA holds now, into the writes that undo it.

Every journal entry holds each field's old and new value. Undoing puts the old values back
(fields of an update, a deactivation, a reactivation, an ended or reopened membership), and
deactivates what the run created (never deletes it). An object changed again since - by a
later run (a later journal entry) or by hand in ELIZA (a field no longer holding the value
the run wrote) - is refused and listed, unless forced, so an undo never overwrites newer
work. What a run deleted in ELIZA cannot be brought back; it is listed as such.

The reversals come in the reverse order of the run, each with the link the object has
afterwards (None: no link), so the engine writes and records them like any other action.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from deltasync import fields as f
from deltasync.models import JournalEntry, Kind, Link, LinkStatus, MatchedBy, RunRecord
from deltasync.plan import memory as m
from deltasync.plan.actions import Action, ObjectPlan, Op

UNDO = "undo"  # the command of an undo run
CREATING = "creating"  # the journal marker of a create under way: nothing to undo by itself
_REVERSE = {
    Op.UPDATE.value: Op.UPDATE,
    Op.DEACTIVATE.value: Op.REACTIVATE,
    Op.REACTIVATE.value: Op.DEACTIVATE,
    Op.END.value: Op.REOPEN,
    Op.REOPEN.value: Op.END,
}
_MEMBERSHIP_FIELDS = (f.MEMBER, f.ORGUNIT, f.VON, f.BIS)

Key = tuple[str, Kind, int]  # (Entra id, kind, ELIZA id): one ELIZA object the run wrote


@dataclass(frozen=True)
class Reversal:
    """One write that undoes what the run did to one ELIZA object, and the link afterwards."""

    action: Action
    link: Link | None  # the object's link once written; None drops it


@dataclass(frozen=True)
class Refusal:
    """An ELIZA object the undo leaves alone, and why."""

    entra_id: str
    kind: Kind
    eliza_id: int
    label: str
    reason: str


@dataclass(frozen=True)
class UndoPlan:
    """What undoing one run does: reversals in order, and the objects it refuses."""

    run_id: int
    reversals: tuple[Reversal, ...]
    refused: tuple[Refusal, ...]
    unchanged: int  # objects the run wrote that need nothing (e.g. a match without changes)

    def object_plans(self) -> tuple[ObjectPlan, ...]:
        """The reversals per Entra object, for the deletion threshold."""
        by_id: dict[str, list[Action]] = {}
        for r in self.reversals:
            by_id.setdefault(r.action.entra_id, []).append(r.action)
        return tuple(
            ObjectPlan(eid, 0, actions[0].label, "undo", tuple(actions))
            for eid, actions in by_id.items()
        )


@dataclass(frozen=True)
class UndoInput:
    """What the planner needs besides the journal: the world as it is now."""

    current: Mapping[tuple[Kind, int], Mapping[str, Any] | None]  # ELIZA objects read now
    links: Mapping[str, Mapping[Kind, Link]]
    later: Mapping[tuple[str, Kind], int]  # the first later run that wrote the object again
    labels: Mapping[str, str]
    today: str  # ISO date for an exit date or a membership's end
    now: datetime
    force: bool = False


def undone_by(runs: Iterable[RunRecord]) -> dict[int, int]:
    """Run id -> the id of the (real, not failed) undo run that put it back."""
    found: dict[int, int] = {}
    for r in runs:
        target = r.report.get("undo_of") if r.command == UNDO else None
        if isinstance(target, int) and not r.dry_run and r.status in ("ok", "partial", "held"):
            found.setdefault(target, r.id)
    return found


def written_objects(entries: Sequence[JournalEntry]) -> dict[Key, list[JournalEntry]]:
    """The run's journal entries per ELIZA object, in the order they were written."""
    objects: dict[Key, list[JournalEntry]] = {}
    for e in entries:
        if e.action == CREATING or e.eliza_id is None:
            continue
        objects.setdefault((e.entra_id, e.kind, int(e.eliza_id)), []).append(e)
    return objects


def plan_undo(run_id: int, entries: Sequence[JournalEntry], world: UndoInput) -> UndoPlan:
    """The reversals of run ``run_id`` (newest change first) and the refusals."""
    objects = written_objects(entries)
    refused: list[Refusal] = []
    blocked: set[tuple[str, Kind]] = set()
    reversals: list[tuple[int, Reversal]] = []
    unchanged = 0
    for key, group in objects.items():
        entra_id, kind, eliza_id = key
        name = world.labels.get(entra_id, entra_id)
        why = _refusal(key, group, world)
        if why is not None:
            refused.append(Refusal(entra_id, kind, eliza_id, name, why))
            blocked.add((entra_id, kind))
            continue
        reversal = _reverse(key, group, world, name, run_id)
        if reversal is None:
            unchanged += 1
        else:
            reversals.append((group[-1].id, reversal))
    # one refused object of a kind (one half of a membership move) refuses the whole kind
    for _, r in reversals:
        a = r.action
        if (a.entra_id, a.kind) in blocked:
            refused.append(
                Refusal(
                    a.entra_id,
                    a.kind,
                    a.eliza_id or 0,
                    a.label,
                    f"another {a.kind.value} of this user was refused",
                )
            )
    kept = [r for _, r in sorted(reversals, key=lambda x: -x[0])]
    kept = [r for r in kept if (r.action.entra_id, r.action.kind) not in blocked]
    return UndoPlan(run_id, tuple(kept), tuple(refused), unchanged)


def _combined(group: Sequence[JournalEntry]) -> dict[str, tuple[Any, Any]]:
    """field -> (value before the run, value the run left), over the object's entries."""
    out: dict[str, tuple[Any, Any]] = {}
    for e in group:
        for name, pair in e.changes.items():
            old, new = [*list(pair), None, None][:2]
            out[name] = (out[name][0] if name in out else old, new)
    return out


def _same(name: str, wrote: Any, now: Any) -> bool:
    if name == f.GROUPS and isinstance(wrote, list) and isinstance(now, list):
        return set(wrote) <= set(now)  # groups added to by hand since still hold the run's
    return bool(wrote == now)


def _refusal(key: Key, group: Sequence[JournalEntry], world: UndoInput) -> str | None:
    entra_id, kind, eliza_id = key
    ops = {e.action for e in group}
    if Op.DELETE.value in ops:
        return f"the run deleted ELIZA {kind.value} #{eliza_id}; a deleted object cannot be undone"
    current = world.current.get((kind, eliza_id))
    if current is None:
        return f"ELIZA {kind.value} #{eliza_id} no longer exists"
    if world.force:
        return None
    later = world.later.get((entra_id, kind))
    if later is not None:
        return f"changed again since, by run {later}"
    for name, (_, new) in _combined(group).items():
        if name in current and not _same(name, new, current[name]):
            return f"changed in ELIZA since: {name} is {current[name]!r}, the run wrote {new!r}"
    return None


def _reverse(
    key: Key, group: Sequence[JournalEntry], world: UndoInput, name: str, run_id: int
) -> Reversal | None:
    entra_id, kind, eliza_id = key
    current = dict(world.current.get((kind, eliza_id)) or {})
    link = world.links.get(entra_id, {}).get(kind)
    own = link if link is not None and link.eliza_id == eliza_id else None
    ops = [e.action for e in group]
    changes = _combined(group)
    why = f"undo of run {run_id}"
    if Op.CREATE.value in ops:
        return _deactivate_created(key, current, own or link, world, name, why)
    body: dict[str, Any] = {}
    for field_name, (old, new) in changes.items():
        if old == new or field_name not in current:
            continue
        if field_name == f.GROUPS:
            added = set(new or ()) - set(old or ())
            old = [g for g in current.get(f.GROUPS) or [] if g not in added]
        body[field_name] = old
    if not body and Op.MATCH.value not in ops:
        return None
    shown = {k: (current.get(k), v) for k, v in body.items()}
    if Op.MATCH.value in ops:
        action = _action(key, Op.UPDATE, body, shown, f"{why}: unlink the matched object", name)
        return Reversal(action, None if own is not None else link)
    last = next((e.action for e in reversed(group) if e.action in _REVERSE), Op.UPDATE.value)
    op = _REVERSE[last]
    action = _action(key, op, body, shown, f"{why}: {last} reversed", name)
    base = (own or _membership_link(key, current, world)) if kind == Kind.MEMBERSHIP else own
    if base is None:
        return Reversal(action, link)  # no link of this object (dropped since): none written
    return Reversal(action, _relinked(base, op, body, changes, current))


def _action(
    key: Key,
    op: Op,
    body: Mapping[str, Any],
    shown: Mapping[str, tuple[Any, Any]],
    reason: str,
    name: str,
) -> Action:
    entra_id, kind, eliza_id = key
    return Action(entra_id, kind, op, eliza_id, dict(body), dict(shown), reason, name)


def _deactivate_created(
    key: Key,
    current: Mapping[str, Any],
    link: Link | None,
    world: UndoInput,
    name: str,
    why: str,
) -> Reversal | None:
    """A created object is deactivated, never deleted (a membership gets its end date)."""
    _, kind, eliza_id = key
    saved: dict[str, Any] = {}
    if kind == Kind.USER:
        body: dict[str, Any] = {f.IS_ACTIVE: False}
    elif kind == Kind.PERSON:
        body = {f.ANSTELLUNGSART: f.EMPLOYMENT_FORMER}
        filled = not current.get(f.AUSTRITTSDATUM)
        if filled:
            body[f.AUSTRITTSDATUM] = world.today
        saved = {
            m.SAVED_EMPLOYMENT: current.get(f.ANSTELLUNGSART),
            m.SAVED_EXIT_DATE_SET: filled,
            m.SAVED_EXIT_DATE: world.today if filled else None,
        }
    else:
        body = {f.BIS: world.today}
    body = {k: v for k, v in body.items() if current.get(k) != v}
    if not body:
        return None
    shown = {k: (current.get(k), v) for k, v in body.items()}
    op = Op.END if kind == Kind.MEMBERSHIP else Op.DEACTIVATE
    action = _action(key, op, body, shown, f"{why}: created by it, deactivated", name)
    if link is None or link.eliza_id != eliza_id:
        return Reversal(action, link)  # keep whatever link the object's kind has now
    if kind == Kind.MEMBERSHIP:
        return Reversal(action, None)
    pushed = {**link.pushed, **body}
    after = replace(link, pushed=pushed, status=LinkStatus.DEACTIVATED, saved=saved)
    return Reversal(action, after)


def _membership_link(key: Key, current: Mapping[str, Any], world: UndoInput) -> Link:
    """The link of a membership the run ended (and dropped): it is the person's again."""
    entra_id, kind, eliza_id = key
    return Link(
        entra_id=entra_id,
        kind=kind,
        eliza_id=eliza_id,
        matched_by=MatchedBy.CREATED,
        matched_at=world.now,
        pushed={k: current.get(k) for k in _MEMBERSHIP_FIELDS if k in current},
        pushed_version=0,
    )


def _relinked(
    link: Link,
    op: Op,
    body: Mapping[str, Any],
    changes: Mapping[str, tuple[Any, Any]],
    current: Mapping[str, Any],
) -> Link:
    """The link after a reversal: the values ELIZA now holds, and the status they mean."""
    pushed = {**link.pushed, **{k: v for k, v in body.items() if k != f.GROUPS}}
    if f.GROUPS in body:
        removed = set(current.get(f.GROUPS) or ()) - set(body[f.GROUPS])
        pushed[m.GROUPS_ADDED] = [
            g for g in link.pushed.get(m.GROUPS_ADDED, ()) if g not in removed
        ]
    status, saved = link.status, dict(link.saved)
    if op in (Op.REACTIVATE, Op.REOPEN):
        status, saved = LinkStatus.ACTIVE, {}
    elif op == Op.DEACTIVATE:
        status = LinkStatus.DEACTIVATED
        saved = {}
        if link.kind == Kind.PERSON:
            exit_old = changes.get(f.AUSTRITTSDATUM, (None, None))[0]
            saved = {
                m.SAVED_EMPLOYMENT: changes.get(f.ANSTELLUNGSART, (None, None))[1],
                m.SAVED_EXIT_DATE_SET: f.AUSTRITTSDATUM in changes,
                m.SAVED_EXIT_DATE: exit_old,
            }
    elif op == Op.END:
        status, saved = LinkStatus.DEACTIVATED, {m.ENDED_BY_SYNC: True}
    return replace(link, pushed=pushed, status=status, saved=saved)
