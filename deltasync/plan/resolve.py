"""Pure: a planned action against what ELIZA holds now, into the exact write and its record.

The push phase reads (the matched or current ELIZA object, ids of objects linked earlier in
the run), hands them here, sends the request this returns and records the result. Every
decision - the body, the changes people see, the link's pushed values, status and
deprovisioning memory - is made here, so the push only executes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from deltasync import fields as f
from deltasync.models import Kind, Link, LinkStatus, MatchedBy
from deltasync.plan import memory as m
from deltasync.plan.actions import Action, AddToGroups, GroupSet, Op, Ref, diff, empty, same
from deltasync.plan.persons import memory_after_filling
from deltasync.plan.reasons import matched_words

Ids = Mapping[tuple[str, Kind], int]  # (entra id, kind) -> ELIZA id of objects linked so far


@dataclass(frozen=True)
class Write:
    """One action resolved: what to send, what to report, what the link holds afterwards."""

    action: Action  # as reported: a CREATE that found its object becomes a MATCH
    body: dict[str, Any]  # the request body; an empty body of a MATCH means no request
    pushed: dict[str, Any]
    status: LinkStatus = LinkStatus.ACTIVE
    saved: Mapping[str, Any] | None = None  # None: a new link's (empty) memory
    matched_by: MatchedBy = MatchedBy.CREATED

    def linked(self, eliza_id: int, version: int, now: datetime) -> Link:
        """The new link of a created or matched object."""
        return Link(
            entra_id=self.action.entra_id,
            kind=self.action.kind,
            eliza_id=eliza_id,
            matched_by=self.matched_by,
            matched_at=now,
            pushed=self.pushed,
            pushed_version=version,
            kept=dict(self.action.kept or {}),
        )

    def relinked(self, link: Link, version: int) -> Link:
        """The existing link after an update, deprovisioning or its reversal."""
        saved = link.saved if self.saved is None else self.saved
        kept = link.kept if self.action.kept is None else self.action.kept
        return replace(
            link,
            pushed=self.pushed,
            pushed_version=version,
            status=self.status,
            saved=saved,
            kept={k: v for k, v in kept.items() if k not in self.body},
        )


def resolve_fields(
    fields: Mapping[str, Any], current: Mapping[str, Any] | None, ids: Ids
) -> dict[str, Any]:
    """Field values as ELIZA takes them: references become ids, added groups a whole list."""
    out: dict[str, Any] = {}
    for name, value in fields.items():
        if isinstance(value, Ref):
            value = ids.get((value.entra_id, value.kind))
        elif isinstance(value, AddToGroups):
            have = list((current or {}).get(f.GROUPS) or [])
            value = have + [g for g in value.ids if g not in have]
        elif isinstance(value, GroupSet):
            value = value.resolve(list((current or {}).get(f.GROUPS) or []))
        out[name] = value
    return out


def needs_current(a: Action) -> bool:
    """The write depends on what the ELIZA object holds now, so the push reads it first."""
    return bool(a.if_empty) or any(isinstance(v, AddToGroups | GroupSet) for v in a.fields.values())


def _pushed(a: Action, ids: Ids) -> dict[str, Any]:
    return {k: v for k, v in resolve_fields(a.desired, None, ids).items() if k != f.GROUPS}


def created(a: Action, ids: Ids) -> Write:
    """A CREATE that matched nothing: POST every field."""
    body = resolve_fields(a.fields, None, ids)
    shown = {k: (None, v) for k, v in body.items() if k != f.GROUPS and not empty(v)}
    if f.GROUPS in body and not isinstance(a.fields.get(f.GROUPS), GroupSet):
        shown[f.GROUPS] = (None, body[f.GROUPS])
    done = replace(a, changes=shown, groups_written=_groups_written(a, [], body))
    return Write(done, body, _pushed(a, ids))


def _groups_written(
    a: Action, current: list[int] | None, body: Mapping[str, Any]
) -> tuple[tuple[int, ...], tuple[int, ...]] | None:
    """A managed ``groups`` write as (the user's list before, after), for the journal."""
    if current is None or not isinstance(a.fields.get(f.GROUPS), GroupSet) or f.GROUPS not in body:
        return None
    return tuple(sorted(current)), tuple(sorted(body[f.GROUPS]))


def adopted(desired: Mapping[str, Any], current: Mapping[str, Any]) -> dict[str, Any]:
    """What adoption keeps: each field Entra has no value for while ELIZA has one.

    Entra Connect's rule for a match: every attribute *with a value in the source* overwrites
    the target; the others keep the target's value (field -> ELIZA's value).
    """
    return {
        k: current[k]
        for k, v in desired.items()
        if k != m.GROUPS_ADDED and empty(v) and not empty(current.get(k))
    }


def matched(a: Action, target: Mapping[str, Any], matched_by: MatchedBy, ids: Ids) -> Write:
    """A CREATE that found its ELIZA object: PATCH only what Entra has and ELIZA differs in,
    keep what Entra has no value for, then link it (remembering what was kept)."""
    current = dict(target)
    desired = resolve_fields(a.desired, current, ids)
    kept = adopted(desired, current)
    desired.update(kept)
    changes = diff({k: v for k, v in desired.items() if k not in m.MEMORY_KEYS}, current)
    body = {k: new for k, (_, new) in changes.items()}
    if f.GROUPS in a.fields:
        groups = resolve_fields({f.GROUPS: a.fields[f.GROUPS]}, current, ids)[f.GROUPS]
        if groups != current.get(f.GROUPS):
            body[f.GROUPS] = groups
            if not isinstance(a.fields[f.GROUPS], GroupSet):  # shown by name instead
                changes[f.GROUPS] = (current.get(f.GROUPS), groups)
    reason = matched_words(matched_by) + ("" if body else ", nothing to change")
    written = _groups_written(a, list(current.get(f.GROUPS) or []), body)
    done = replace(
        a, op=Op.MATCH, changes=changes, reason=reason, kept=kept, groups_written=written
    )
    return Write(done, body, {**_pushed(a, ids), **kept}, matched_by=matched_by)


def _status(a: Action) -> LinkStatus:
    if a.kind == Kind.MEMBERSHIP and a.op == Op.END:
        return LinkStatus.DEACTIVATED if a.saved else LinkStatus.ENDED
    return {Op.DEACTIVATE: LinkStatus.DEACTIVATED, Op.DELETE: LinkStatus.DELETED}.get(
        a.op, LinkStatus.ACTIVE
    )


def _own_write_seen(a: Action, link: Link, current: Mapping[str, Any]) -> bool:
    """An earlier try of this deprovisioning recorded its memory (:func:`remember_first`) and
    ELIZA already holds its values: the try was applied, and the run died before its link."""
    return (
        link.status == LinkStatus.ACTIVE
        and m.SAVED_EMPLOYMENT in link.saved
        and all(current.get(k) == v for k, v in a.fields.items())
    )


def remember_first(write: Write, link: Link) -> Link | None:
    """The link to record *before* a write that fills empty fields: its memory of what the
    object held, so that a run killed after the write, before its link, still knows what to
    undo (the rerun reads its own write back). None when there is nothing new to remember."""
    if not write.action.if_empty or write.saved is None or write.saved == link.saved:
        return None
    return replace(link, saved=write.saved)


def changed(a: Action, link: Link, current: Mapping[str, Any] | None, ids: Ids) -> Write:
    """Any other action on a linked object, against the object as read (None: not read)."""
    fields = dict(a.fields)
    saved: Mapping[str, Any] = link.saved if a.saved is None else a.saved
    if a.if_empty and current is not None:
        filled = {k: v for k, v in a.if_empty.items() if not current.get(k)}
        fields.update(filled)
        saved = memory_after_filling(current, filled)
        if _own_write_seen(a, link, current):
            saved = link.saved  # ELIZA holds this write already; `current` is not "before"
    body = resolve_fields(fields, current, ids)
    by_name = isinstance(fields.get(f.GROUPS), GroupSet)  # shown as +group/−group instead
    if by_name and current is not None and set(body[f.GROUPS]) == set(current.get(f.GROUPS) or []):
        del body[f.GROUPS]  # ELIZA holds that set already: nothing to send for it
    changes = dict(a.changes)
    if current is not None:  # a field set only if empty, and ELIZA has a value: unchanged
        for k in a.if_empty:
            if k not in body:
                changes.pop(k, None)
    for k, v in body.items():
        if by_name and k == f.GROUPS:
            continue
        if current is not None:
            changes[k] = (current.get(k), v)
        elif k not in changes:
            changes[k] = (None, v)
    changes = {k: (old, new) for k, (old, new) in changes.items() if not same(old, new)}
    pushed = {**a.desired, **{k: v for k, v in body.items() if k != f.GROUPS}}
    now = None if current is None else list(current.get(f.GROUPS) or [])
    done = replace(a, changes=changes, groups_written=_groups_written(a, now, body))
    return Write(done, body, pushed, _status(a), saved)


def held_back(write: Write, names: Iterable[str], link: Link) -> Write:
    """The write without fields another ELIZA account holds (a username or e-mail taken).

    The other fields still go out; the held-back ones keep the link's old pushed value, so
    the next runs see them as changes again and retry them.
    """
    names = set(names)
    body = {k: v for k, v in write.body.items() if k not in names}
    changes = {k: v for k, v in write.action.changes.items() if k not in names}
    pushed = {
        **{k: v for k, v in write.pushed.items() if k not in names},
        **{k: link.pushed[k] for k in names if k in link.pushed},
    }
    return replace(write, action=replace(write.action, changes=changes), body=body, pushed=pushed)
