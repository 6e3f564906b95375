"""Pure: what undoing a run needs to know of groups (see :mod:`deltasync.plan.undo`).

A user's journaled ``groups`` change is the whole list before and after; the undo takes
back exactly what it added and gives back what it removed. Group names come from the links
and, for a deleted group, from the journal.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from deltasync import fields as f
from deltasync.models import JournalEntry, Kind
from deltasync.plan.actions import Op
from deltasync.plan.groups import DESCRIPTION, NAME

GROUP_FIELDS = (NAME, DESCRIPTION, f.REMOTE_KEY)  # what a deleted group is created again with


@dataclass(frozen=True)
class GroupSwap:
    """A user's ``groups`` put back: ``remove`` (what the run added) taken out, ``add`` (what
    it removed) given back, every other group the user holds at write time kept."""

    add: tuple[int, ...]
    remove: tuple[int, ...]

    def resolve(self, current: Sequence[int], renumbered: Mapping[int, int]) -> list[int]:
        """The list to send; ``renumbered``: a deleted group's old id -> its re-created id."""
        kept = {g for g in current if g not in self.remove}
        return sorted(kept | {renumbered.get(g, g) for g in self.add})


def journaled_names(entries: Sequence[JournalEntry]) -> dict[int, str]:
    """Group names the run's journal knows (a deleted group's, a renamed group's old one)."""
    names: dict[int, str] = {}
    for e in entries:
        if e.kind == Kind.GROUP and e.eliza_id is not None and NAME in e.changes:
            old, new = [*list(e.changes[NAME]), None, None][:2]
            if old or new:
                names.setdefault(int(e.eliza_id), str(old or new))
    return names


def swap(old: Any, new: Any) -> tuple[set[int], set[int]]:
    """A journaled ``groups`` change: (the groups it added, the groups it removed)."""
    before, after = set(old or ()), set(new or ())
    return after - before, before - after


def groups_since(old: Any, new: Any, now: Any, names: Mapping[int, str]) -> str | None:
    """What changed in a user's groups since the run, as far as the run's change goes."""
    added, removed = swap(old, new)
    held = set(now or ())
    lost = sorted(added - held)
    back = sorted(removed & held)
    if not lost and not back:
        return None
    parts = [f"{names.get(g, f'#{g}')} (added by the run) is gone" for g in lost]
    parts += [f"{names.get(g, f'#{g}')} (removed by the run) is back" for g in back]
    return "changed in ELIZA since: groups: " + ", ".join(parts)


#: A group emptied is linked active again, and the other way round.
GROUP_REVERSE = {Op.EMPTY.value: Op.REACTIVATE, Op.REACTIVATE.value: Op.EMPTY}


def shown_names(add: set[int], remove: set[int], names: Mapping[int, str]) -> tuple[str, ...]:
    """Each group given back as "+name", each taken as "−name": how reports show groups."""
    return tuple(
        [f"+{names.get(g, f'#{g}')}" for g in sorted(add)]
        + [f"−{names.get(g, f'#{g}')}" for g in sorted(remove)]
    )
