"""Pure: the journal of one run, and what ELIZA holds now, into the writes that undo it.

Every journal entry holds each field's old and new value. Undoing puts the old values back
(fields of an update, a deactivation, a reactivation, an ended or reopened membership), and
deactivates what the run created (never deletes it). An object changed again since - by a
later run (a later journal entry) or by hand in ELIZA (a field no longer holding the value
the run wrote) - is refused and listed, unless forced, so an undo never overwrites newer
work. What a run deleted in ELIZA cannot be brought back; it is listed as such.

Groups (``sync_groups``) are undone like the other kinds, from what the journal holds:

- a user's ``groups`` write is journaled as the whole list before and after; the undo takes
  back exactly the groups it added and gives back the ones it removed (:class:`GroupSwap`,
  resolved against the user as read at write time), so every group the user holds now and
  the run did not touch - unmanaged or hand-made - stays;
- a renamed custom group gets its old name back;
- a created custom group is unlinked and keeps existing (never deleted, as created users
  are deactivated): the run's own users lose it through their reversals, so it is empty
  again; an undo's re-creation (below) also takes it from the members it gave it;
- an emptied group is linked active again; its members get it back through their reversals;
- a deleted group (``groups.delete_removed``) is re-created under its old name, description
  and remote_key, given back to the users that held it when it was deleted (journaled with
  the deletion), and relinked; ELIZA gives it a new id, which the engine puts in place of
  the old one in the users' reversals that follow.

A group renamed by hand since, or a user whose groups were changed since (a group the run
added is gone, or one it removed is back), is refused like any other object.

The reversals come in the reverse order of the run, each with the link the object has
afterwards (None: no link), so the engine writes and records them like any other action.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from deltasync import fields as f
from deltasync.models import JournalEntry, Kind, Link, LinkStatus, MatchedBy, RunRecord
from deltasync.plan import memory as m
from deltasync.plan.actions import Action, ObjectPlan, Op
from deltasync.plan.groups import NAME
from deltasync.plan.undo_groups import (
    GROUP_FIELDS,
    GROUP_REVERSE,
    GroupSwap,
    groups_since,
    journaled_names,
    shown_names,
    swap,
)

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
    # a group's users: given the group (re-created, op CREATE) or losing it (op EMPTY)
    members: tuple[int, ...] = ()


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
    group_names: Mapping[int, str] = field(default_factory=dict)  # ELIZA group id -> name


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
    world = replace(world, group_names={**journaled_names(entries), **world.group_names})
    refused: list[Refusal] = []
    blocked: set[tuple[str, Kind]] = set()
    reversals: list[tuple[int, Reversal]] = []
    unchanged = 0
    for key, group in objects.items():
        entra_id, kind, eliza_id = key
        name = world.labels.get(entra_id, entra_id)
        if kind == Kind.GROUP:  # its name in ELIZA now; a deleted group's from the journal
            now = (world.current.get((kind, eliza_id)) or {}).get(NAME)
            name = str(now or world.group_names.get(eliza_id, name))
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


def _refusal(key: Key, group: Sequence[JournalEntry], world: UndoInput) -> str | None:
    entra_id, kind, eliza_id = key
    ops = {e.action for e in group}
    current = world.current.get((kind, eliza_id))
    if Op.DELETE.value in ops:
        if kind != Kind.GROUP:
            return (
                f"the run deleted ELIZA {kind.value} #{eliza_id}; a deleted object cannot be undone"
            )
        if current is not None:
            return f"ELIZA group #{eliza_id} exists again"
    elif current is None:
        return f"ELIZA {kind.value} #{eliza_id} no longer exists"
    if world.force:
        return None
    later = world.later.get((entra_id, kind))
    if later is not None:
        return f"changed again since, by run {later}"
    if current is None:
        return None
    for name, (old, new) in _combined(group).items():
        if name == f.GROUPS:
            why = groups_since(old, new, current.get(f.GROUPS), world.group_names)
            if why is not None:
                return why
        elif name in current and new != current[name]:
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
    if kind == Kind.GROUP and Op.DELETE.value in ops:
        return _recreate(key, group, world, name, why)
    if kind == Kind.GROUP and Op.CREATE.value in ops:
        action = _action(key, Op.EMPTY, {}, {}, f"{why}: created by it, unlinked", name)
        members = [*list(changes.get(m.GROUP_MEMBERS, ((), ()))[1] or ())]
        return Reversal(action, None, tuple(int(u) for u in members))
    if Op.CREATE.value in ops:
        return _deactivate_created(key, current, own or link, world, name, why)
    body: dict[str, Any] = {}
    shown_groups: tuple[str, ...] = ()
    for field_name, (old, new) in changes.items():
        if old == new or field_name not in current:
            continue
        if field_name == f.GROUPS:
            added, removed = swap(old, new)
            body[f.GROUPS] = GroupSwap(tuple(sorted(removed)), tuple(sorted(added)))
            shown_groups = shown_names(removed, added, world.group_names)
            continue
        body[field_name] = old
    group_ops = GROUP_REVERSE if kind == Kind.GROUP else {}
    if not body and Op.MATCH.value not in ops and not set(ops) & set(group_ops):
        return None
    shown = {k: (current.get(k), v) for k, v in body.items() if k != f.GROUPS}
    if Op.MATCH.value in ops:
        action = _action(key, Op.UPDATE, body, shown, f"{why}: unlink the matched object", name)
        action = replace(action, shown_groups=shown_groups)
        return Reversal(action, None if own is not None else link)
    reverse = {**_REVERSE, **group_ops}
    last = next((e.action for e in reversed(group) if e.action in reverse), Op.UPDATE.value)
    op = reverse[last]
    action = _action(key, op, body, shown, f"{why}: {last} reversed", name)
    action = replace(action, shown_groups=shown_groups)
    base = (own or _membership_link(key, current, world)) if kind == Kind.MEMBERSHIP else own
    if base is None:
        return Reversal(action, link)  # no link of this object (dropped since): none written
    return Reversal(action, _relinked(base, op, body, changes, current))


def _recreate(
    key: Key, group: Sequence[JournalEntry], world: UndoInput, name: str, why: str
) -> Reversal:
    """A deleted custom group: POSTed again as it was, given back to its holders, relinked."""
    entra_id, kind, eliza_id = key
    changes = _combined(group)
    body = {k: changes[k][0] for k in GROUP_FIELDS if k in changes and changes[k][0]}
    body.setdefault(NAME, name)
    shown = {k: (None, v) for k, v in body.items()}
    action = _action(key, Op.CREATE, body, shown, f"{why}: deleted by it, created again", name)
    members = tuple(int(u) for u in changes.get(m.GROUP_MEMBERS, ((), ()))[0] or ())
    link = Link(
        entra_id=entra_id,
        kind=kind,
        eliza_id=eliza_id,  # the engine puts the new id here
        matched_by=MatchedBy.CREATED,
        matched_at=world.now,
        pushed=dict(body),
        pushed_version=0,
    )
    return Reversal(action, link, members)


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
    swap = body.get(f.GROUPS)
    if isinstance(swap, GroupSwap):
        if m.GROUPS_ADDED in link.pushed:
            pushed[m.GROUPS_ADDED] = [
                g for g in link.pushed[m.GROUPS_ADDED] if g not in swap.remove
            ]
        if m.MANAGED_GROUPS in link.pushed:
            managed = set(link.pushed[m.MANAGED_GROUPS]) - set(swap.remove)
            pushed[m.MANAGED_GROUPS] = sorted(managed | set(swap.add))
    status, saved = link.status, dict(link.saved)
    if link.kind == Kind.GROUP:
        status = LinkStatus.DEACTIVATED if op == Op.EMPTY else LinkStatus.ACTIVE
    elif op in (Op.REACTIVATE, Op.REOPEN):
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
