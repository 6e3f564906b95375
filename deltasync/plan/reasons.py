"""Reasons in words, as the report says them: why an update is planned (Entra, the mapping,
or drift in ELIZA), why an object left, how a link was matched. No internal code
(``removed:changed``, ``soft:email``) reaches people.

The planner diffs what ELIZA should hold against what it last accepted, so one update can
have three causes: the Entra object changed (the mirror is newer than the push), the mapping
changed (every object is planned again under a new plan fingerprint), or someone changed the
ELIZA object by hand and ``--verify-target`` repairs it. Each changed field is put down to one
of them; the action's reason names every cause it has.
"""

from __future__ import annotations

from collections.abc import Mapping, Set
from dataclasses import replace

from deltasync.models import Kind, Removed
from deltasync.plan.actions import Action, ObjectPlan, Op

CHANGED_IN_ENTRA = "changed in Entra"
MAPPING_CHANGED = "mapping changed"
DRIFT_REPAIR = "drift repair"
_ORDER = (CHANGED_IN_ENTRA, MAPPING_CHANGED, DRIFT_REPAIR)

_REMOVED = {
    Removed.CHANGED: "deleted in Entra (restorable for 30 days)",
    Removed.DELETED: "deleted in Entra permanently",
    Removed.ABSENT: "missing from Entra's last full read",
}


def removed_words(removed: Removed) -> str:
    """Why an object is gone from Entra, as the scope status and the deprovisioning say it."""
    return _REMOVED[Removed(removed)]


def matched_words(matched_by: str) -> str:
    """How a link was made (``MatchedBy``, or "name" for a group)."""
    if matched_by == "created":
        return "created by the sync"
    if matched_by == "hard":
        return "hard match on remote_key"
    if matched_by == "user":
        return "matched as the person of the linked user"
    if matched_by == "name":
        return "matched on its name"
    if matched_by.startswith("soft:"):
        return "soft match on " + matched_by[5:].replace("+", " and ")
    return f"matched ({matched_by})"


def update_reason(
    fields: Set[str], *, entra_changed: bool, mapping_changed: bool, drifted: Set[str]
) -> str:
    """The reason of an update of ``fields``: a drifted field is a repair, the others changed
    in Entra when the mirror is newer than the push, else through the mapping."""
    causes = set()
    for name in fields:
        if name in drifted:
            causes.add(DRIFT_REPAIR)
        elif entra_changed or not mapping_changed:
            causes.add(CHANGED_IN_ENTRA)
        else:
            causes.add(MAPPING_CHANGED)
    return "; ".join(c for c in _ORDER if c in causes) or CHANGED_IN_ENTRA


def relabel(
    plan: ObjectPlan,
    *,
    entra_changed: Mapping[Kind, bool],
    mapping_changed: bool,
    drifted: Mapping[Kind, Set[str]],
) -> ObjectPlan:
    """The object's plan with each update's reason saying why it is planned."""

    def one(a: Action) -> Action:
        if a.op != Op.UPDATE or a.reason != CHANGED_IN_ENTRA:
            return a
        reason = update_reason(
            set(a.changes),
            entra_changed=entra_changed.get(a.kind, True),
            mapping_changed=mapping_changed,
            drifted=drifted.get(a.kind, frozenset()),
        )
        return a if reason == a.reason else replace(a, reason=reason)

    actions = tuple(one(a) for a in plan.actions)
    return plan if actions == plan.actions else replace(plan, actions=actions)
