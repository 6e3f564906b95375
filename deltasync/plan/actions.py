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
    shown_groups: tuple[str, ...] = ()  # "+name" / "−name": the managed groups it changes

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
    status: str  # "active", "disabled", "removed:<reason>", "out of scope: <why>"
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


def diff(desired: Mapping[str, Any], current: Mapping[str, Any]) -> dict[str, tuple[Any, Any]]:
    """Fields whose desired value differs from the current one: field -> (old, new)."""
    return {
        name: (current.get(name), value)
        for name, value in desired.items()
        if name not in current or current[name] != value
    }
