"""The deletion threshold: a run that would deprovision too many holds all of it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from deltasync.plan.actions import Action, ObjectPlan, Plan
from deltasync.plan.groups import removals, without_removals


def _held(a: Action) -> Action | None:
    """The action as it may run while the threshold holds (None: all of it waits)."""
    if a.deprovisions:
        return None
    return without_removals(a) if removals(a) else a


def apply_threshold(
    plans: Sequence[ObjectPlan],
    *,
    linked_users: int,
    max_count: int,
    max_percent: float,
    allow: bool,
) -> Plan:
    """Hold every deprovisioning action of the run when there are more than the limits allow.

    A bad read (an empty page taken for a deleted tenant, a filter typo) shows up as an
    unusually large number of deprovisionings; holding all of them, not the excess, keeps the
    run from acting on any part of a bad read. Everything else proceeds. A removed group
    membership counts like a deactivation (a ``groups.include`` typo must not empty every
    group in one run): while held, the users keep those groups and get their other changes.
    """
    deprovisioned = [p for p in plans if any(a.deprovisions for a in p.actions)]
    dropped = sum(removals(a) for p in plans for a in p.actions)
    count = len(deprovisioned) + dropped
    what = f"{len(deprovisioned)} deactivations"
    if dropped:
        what += f" and {dropped} group membership removals"
    reasons = []
    if max_count > 0 and count > max_count:
        reasons.append(f"{what} exceed max_deactivations={max_count}")
    if max_percent > 0 and linked_users > 0 and count * 100 > max_percent * linked_users:
        share = count * 100 / linked_users
        reasons.append(
            f"{what} are {share:.0f}% of {linked_users} linked users, "
            f"over max_deactivation_percent={max_percent:g}"
        )
    if not reasons or allow:
        return Plan(tuple(plans))
    kept = []
    held = []
    for p in plans:
        if any(a.deprovisions or removals(a) for a in p.actions):
            held.append(p)
            actions = (_held(a) for a in p.actions)
            kept.append(replace(p, actions=tuple(a for a in actions if a is not None)))
        else:
            kept.append(p)
    return Plan(tuple(kept), tuple(held), "; ".join(reasons))
