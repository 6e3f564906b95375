"""What a plan is made of: actions on ELIZA objects, per Entra object and for the whole run."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from deltasync.models import Kind


class Op(enum.StrEnum):
    """What an action does to one ELIZA object."""

    CREATE = "create"  # the engine matches first (hard, then soft), creates only without a match
    MATCH = "match"  # reported when a CREATE found an existing ELIZA object and linked it
    UPDATE = "update"
    DEACTIVATE = "deactivate"
    REACTIVATE = "reactivate"
    DELETE = "delete"
    END = "end"  # a membership gets ``bis``
    REOPEN = "reopen"  # a membership the sync ended is opened again
    EMPTY = "empty"  # a custom group whose Entra group left: its members lose it, it stays


DEPROVISIONING_OPS = frozenset({Op.DEACTIVATE, Op.DELETE})


@dataclass(frozen=True)
class Ref:
    """A field value that is the ELIZA id of another linked object, resolved at push time."""

    kind: Kind
    entra_id: str


@dataclass(frozen=True)
class AddToGroups:
    """A ``groups`` value meaning "these ids in addition to what the user has": ELIZA's PATCH
    replaces the whole list, so the engine reads the user first and keeps unmanaged groups."""

    ids: tuple[int, ...]


@dataclass(frozen=True)
class GroupSet:
    """A user's whole ``groups`` list, decided against what the user holds at push time:
    (current − ``managed``) ∪ ``members``. ``managed`` are the ELIZA ids of every group the
    sync manages; ``dropped`` the managed groups this removes (for the deletion threshold)."""

    members: tuple[int, ...]
    managed: frozenset[int]
    dropped: tuple[int, ...] = ()

    def resolve(self, current: list[int]) -> list[int]:
        """The list to send: every unmanaged group kept, the managed ones as decided."""
        kept = {g for g in current if g not in self.managed}
        return sorted(kept | set(self.members))


@dataclass(frozen=True)
class Action:
    """One write against ELIZA, with what it changes and why."""

    entra_id: str
    kind: Kind
    op: Op
    eliza_id: int | None
    fields: Mapping[str, Any]  # the request body (only changed fields for an update)
    changes: Mapping[str, tuple[Any, Any]]  # field -> (old, new), for people to read
    reason: str
    label: str  # the UPN, for people to read
    desired: Mapping[str, Any] = field(default_factory=dict)  # every mapped value afterwards
    if_empty: Mapping[str, Any] = field(default_factory=dict)  # set only where ELIZA has no value
    saved: Mapping[str, Any] | None = None  # the link's deprovisioning memory afterwards
    kept: Mapping[str, Any] | None = None  # the link's kept values afterwards (None: as they are)
    shown_groups: tuple[str, ...] = ()  # "+name" / "−name": the managed groups it changes
    # a user's whole ``groups`` before and after the write (set by plan.resolve): journaled
    # under ``groups`` so that undo can take back exactly the groups the write changed
    groups_written: tuple[tuple[int, ...], tuple[int, ...]] | None = None

    @property
    def deprovisions(self) -> bool:
        """True when the action takes access away (counts toward the deletion threshold)."""
        return self.op in DEPROVISIONING_OPS or (
            self.op == Op.END and self.reason.startswith("deprovision")
        )


@dataclass(frozen=True)
class ObjectPlan:
    """Every action one Entra object needs this run, in the order they must run."""

    entra_id: str
    version: int
    label: str
    status: str  # "active", "disabled", why it left Entra in words, "out of scope: <why>"
    actions: tuple[Action, ...]
    notes: tuple[str, ...] = ()  # e.g. "unmapped company 'X'"; the engine reports each once
    unresolved: tuple[str, ...] = ()  # fields waiting for another object's link (manager)


@dataclass(frozen=True)
class Plan:
    """The whole run's plan, with deprovisioning held back by the threshold."""

    objects: tuple[ObjectPlan, ...]
    held: tuple[ObjectPlan, ...] = ()  # objects whose deprovisioning actions are held
    threshold_reason: str | None = None

    @property
    def actions(self) -> list[Action]:
        """Every action that will run, in order."""
        return [a for p in self.objects for a in p.actions]


def empty(value: Any) -> bool:
    """No value: absent (None), null, ``""`` or ``[]``. The one definition of "empty"."""
    return value is None or (isinstance(value, str | list | tuple) and len(value) == 0)


def same(old: Any, new: Any) -> bool:
    """Not a change: equal values, or both empty (``null → ""`` is nothing to show or send)."""
    return old == new or (empty(old) and empty(new))


def diff(desired: Mapping[str, Any], current: Mapping[str, Any]) -> dict[str, tuple[Any, Any]]:
    """Fields whose desired value differs from the current one: field -> (old, new)."""
    return {
        name: (current.get(name), value)
        for name, value in desired.items()
        if not same(current.get(name), value)
    }


def keep_adopted(
    desired: Mapping[str, Any], kept: Mapping[str, Any], known: Mapping[str, Any]
) -> dict[str, Any]:
    """The desired values of a linked object with its kept fields left alone.

    A field adoption kept (ELIZA had a value, Entra none) stays ELIZA's while Entra's value
    is still empty: its desired value becomes what ELIZA is known to hold (``known``: the
    link's pushed values, or ELIZA's current ones under ``--verify-target``), so it is no
    change. Once Entra has a value, that value is desired as usual (and no longer kept).
    """
    out = dict(desired)
    for name, value in kept.items():
        if name in out and empty(out[name]):
            out[name] = known.get(name, value)
    return out


def still_kept(desired: Mapping[str, Any], kept: Mapping[str, Any]) -> dict[str, Any]:
    """The kept fields whose Entra value is still empty."""
    return {k: v for k, v in kept.items() if k in desired and empty(desired[k])}
