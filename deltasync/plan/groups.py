"""Groups, pure: which Entra groups are in scope, their custom groups, each user's groups.

An Entra group in scope (``groups.include``: display-name globs or object ids; empty = all)
becomes an ELIZA custom group (``name`` = displayName, ``remote_key`` = Entra id). A user's
ELIZA ``groups`` become (what it holds − the groups the sync manages) ∪ the managed groups it
belongs to ∪ ``assign_to_group``: :class:`GroupSet`, resolved against the user as read at
push time. Removing a membership counts toward the deletion threshold (:func:`removals`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from fnmatch import fnmatchcase
from typing import Any

from deltasync import fields as f
from deltasync.models import Kind, Link, LinkStatus, MatchedBy, MirrorObject
from deltasync.plan import memory as m
from deltasync.plan.actions import Action, GroupSet, ObjectPlan, Op, diff
from deltasync.plan.reasons import removed_words

NAME = "name"
DESCRIPTION = "description"
DIRECT = "direct"
FLATTEN = "flatten"


@dataclass(frozen=True)
class GroupSettings:
    """``groups.*``: which Entra groups become custom groups, and how nesting counts."""

    include: tuple[str, ...] = ()
    nested: str = DIRECT  # direct | flatten
    delete_removed: bool = False

    def in_scope(self, group_id: str, name: str) -> bool:
        """Empty ``include`` = every group; else a glob on the name (any case) or the id."""
        if not self.include:
            return True
        lowered = name.casefold()
        return any(
            pattern.lower() == group_id.lower() or fnmatchcase(lowered, pattern.casefold())
            for pattern in self.include
        )


def group_label(obj: MirrorObject) -> str:
    """The display name, or the id: how people recognise a group."""
    name = obj.data.get("displayName")
    return name if isinstance(name, str) and name else obj.id


def group_status(obj: MirrorObject, settings: GroupSettings) -> str:
    """ "active", why it left Entra in words, or "out of scope: groups.include"."""
    if obj.removed is not None:
        return removed_words(obj.removed)
    if not settings.in_scope(obj.id, group_label(obj)):
        return "out of scope: groups.include"
    return "active"


def desired_group(obj: MirrorObject) -> dict[str, Any]:
    """The custom group's fields ELIZA should hold."""
    return {
        NAME: group_label(obj),
        DESCRIPTION: obj.data.get("description") or "",
        f.REMOTE_KEY: obj.id,
    }


def plan_group(obj: MirrorObject, link: Link | None, settings: GroupSettings) -> ObjectPlan:
    """The custom group's action: create (the engine matches first), rename, or retire.

    A retiring group (removed in Entra, or out of ``groups.include``) gets ``Op.DELETE`` with
    ``delete_removed`` and ``Op.EMPTY`` (no request: its members lose it through their own
    plans; the link becomes deactivated) otherwise; the engine runs both only after the
    users' memberships were pushed. An emptied group back in scope is linked active again.
    """
    status = group_status(obj, settings)
    name = group_label(obj)
    linked = link is not None and link.status != LinkStatus.DELETED
    actions: list[Action] = []
    if status == "active":
        want = desired_group(obj)
        if not linked:
            changes = {k: (None, v) for k, v in want.items()}
            actions.append(
                Action(
                    obj.id, Kind.GROUP, Op.CREATE, None, want, changes, "new in scope", name, want
                )
            )
        elif link is not None:
            changes = diff(want, link.pushed)
            back = link.status == LinkStatus.DEACTIVATED  # emptied before, in scope again
            if changes or back:
                body = {k: new for k, (_, new) in changes.items()}
                after = {**link.pushed, **want}
                reason = "renamed in Entra" if NAME in changes else "changed in Entra"
                reason = "back in scope" if back else reason
                actions.append(
                    Action(
                        obj.id,
                        Kind.GROUP,
                        Op.UPDATE,
                        link.eliza_id,
                        body,
                        changes,
                        reason,
                        name,
                        after,
                    )
                )
    elif linked and link is not None and link.status != LinkStatus.PROTECTED:
        if settings.delete_removed:
            op, reason = Op.DELETE, f"{status}; groups.delete_removed: true"
        elif link.status == LinkStatus.ACTIVE:
            op, reason = Op.EMPTY, f"{status}; its members lose it, the group is kept"
        else:
            return ObjectPlan(obj.id, obj.version, name, status, ())  # emptied already
        actions.append(
            Action(obj.id, Kind.GROUP, op, link.eliza_id, {}, {}, reason, name, dict(link.pushed))
        )
    return ObjectPlan(obj.id, obj.version, name, status, tuple(actions))


@dataclass(frozen=True)
class GroupView:
    """What the users' plans need to know of the groups, after the groups were pushed."""

    nested: str = DIRECT
    eliza: Mapping[str, int] = field(default_factory=dict)  # in-scope linked group -> ELIZA id
    names: Mapping[str, str] = field(default_factory=dict)  # Entra group id -> display name
    labels: Mapping[int, str] = field(default_factory=dict)  # ELIZA id -> name (every link)
    managed: frozenset[int] = frozenset()  # ELIZA ids of every group the sync manages
    parents: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # group -> its groups

    def memberships(self, direct: Iterable[str]) -> dict[str, str | None]:
        """The in-scope linked groups of a member of ``direct``, each with why.

        Direct groups map to None; with ``nested: flatten`` a group reached through nesting
        maps to the direct group it came through (cycle-safe: each group is visited once).
        """
        why: dict[str, str | None] = dict.fromkeys(direct)
        if self.nested == FLATTEN:
            frontier = [(g, g) for g in why]
            while frontier:
                nxt: list[tuple[str, str]] = []
                for group, origin in frontier:
                    for parent in self.parents.get(group, ()):
                        if parent not in why:
                            why[parent] = origin
                            nxt.append((parent, origin))
                frontier = nxt
        return {g: via for g, via in why.items() if g in self.eliza}

    def eliza_ids(self, direct: Iterable[str]) -> list[int]:
        return sorted({self.eliza[g] for g in self.memberships(direct)})


def build_view(
    nested: str,
    groups: Iterable[MirrorObject],
    links: Mapping[str, Link],
    edges: Iterable[tuple[str, str]],
    settings: GroupSettings,
) -> GroupView:
    """The view from the mirrored groups, their links and the nesting edges (group, member)."""
    objs = {o.id: o for o in groups}
    eliza: dict[str, int] = {}
    labels: dict[int, str] = {}
    for gid, link in links.items():
        if link.status == LinkStatus.DELETED:
            continue
        obj = objs.get(gid)
        labels[link.eliza_id] = group_label(obj) if obj else str(link.pushed.get(NAME, gid))
        if obj is not None and group_status(obj, settings) == "active":
            eliza[gid] = link.eliza_id
    parents: dict[str, list[str]] = {}
    for group, member in edges:
        parents.setdefault(member, []).append(group)
    return GroupView(
        nested=nested,
        eliza=eliza,
        names={gid: group_label(o) for gid, o in objs.items()},
        labels=labels,
        managed=frozenset(labels),
        parents={k: tuple(sorted(v)) for k, v in parents.items()},
    )


def plan_user_groups(
    action: Action | None,
    link: Link | None,
    direct: Iterable[str],
    view: GroupView,
    assign_to_group: int | None,
    label: str,
) -> Action | None:
    """The user's action with its ``groups`` decided: merged into a create or an update.

    Only when the managed set changes (or on a create); a deprovisioned user keeps its groups
    (the caller plans groups only for users in scope).
    """
    desired = view.eliza_ids(direct)
    extra = (assign_to_group,) if assign_to_group is not None else ()
    members = tuple(sorted({*desired, *extra}))
    if action is not None and action.op == Op.CREATE:
        added = [f"+{view.labels.get(g, str(g))}" for g in desired]
        value = GroupSet(members, view.managed)
        fields = {**action.fields, f.GROUPS: value}
        after = {**action.desired, m.MANAGED_GROUPS: desired}
        return replace(action, fields=fields, desired=after, shown_groups=tuple(added))
    if link is None:
        return action
    before = [int(g) for g in link.pushed.get(m.MANAGED_GROUPS) or []]
    if set(before) == set(desired):
        return action
    dropped = tuple(sorted(set(before) - set(desired)))
    shown = tuple(
        [f"+{view.labels.get(g, str(g))}" for g in desired if g not in before]
        + [f"−{view.labels.get(g, str(g))}" for g in dropped]
    )
    value = GroupSet(members, view.managed, dropped)
    if action is None:
        after = {**link.pushed, m.MANAGED_GROUPS: desired}
        return Action(
            link.entra_id,
            Kind.USER,
            Op.UPDATE,
            link.eliza_id,
            {f.GROUPS: value},
            {},
            "group membership changed in Entra",
            label,
            after,
            shown_groups=shown,
        )
    fields = {**action.fields, f.GROUPS: value}
    changes = {k: v for k, v in action.changes.items() if k != f.GROUPS}
    after = {**action.desired, m.MANAGED_GROUPS: desired}
    return replace(action, fields=fields, changes=changes, desired=after, shown_groups=shown)


def match_group(
    entra_id: str, name: str, rows: Iterable[Mapping[str, Any]]
) -> tuple[Mapping[str, Any] | None, MatchedBy | None, str | None]:
    """Matching on first sight: (custom group, how) or (None, None, conflict reason or None).

    ``remote_key`` = Entra id first; else a custom group of the same name that has no
    ``remote_key``. A name held by a group with another key is a conflict, never "the first".
    """
    listed = list(rows)
    by_key = [r for r in listed if r.get(f.REMOTE_KEY) == entra_id]
    if len(by_key) == 1:
        return by_key[0], MatchedBy.HARD, None
    if len(by_key) > 1:
        ids = ", ".join(f"#{r.get('id')}" for r in by_key)
        return None, None, f"several ELIZA custom groups carry remote_key {entra_id} ({ids})"
    same = [r for r in listed if str(r.get(NAME) or "") == name]
    if not same:
        return None, None, None
    if len(same) == 1 and not same[0].get(f.REMOTE_KEY):
        return same[0], MatchedBy.NAME, None
    held = ", ".join(f"#{r.get('id')} (remote_key {r.get(f.REMOTE_KEY)!r})" for r in same)
    return None, None, f"the name {name!r} is held by another ELIZA custom group: {held}"


def removals(action: Action) -> int:
    """How many group memberships the action removes (they count toward the threshold)."""
    value = action.fields.get(f.GROUPS)
    return len(value.dropped) if isinstance(value, GroupSet) else 0


def without_removals(action: Action) -> Action | None:
    """The action with its membership removals held back (None: nothing else left to do)."""
    value = action.fields.get(f.GROUPS)
    if not isinstance(value, GroupSet) or not value.dropped:
        return action
    kept = GroupSet(tuple(sorted({*value.members, *value.dropped})), value.managed)
    added = tuple(s for s in action.shown_groups if s.startswith("+"))
    fields = {**action.fields, f.GROUPS: kept}
    if not added and set(fields) == {f.GROUPS} and not action.changes:
        return None
    managed = sorted({*action.desired.get(m.MANAGED_GROUPS, ()), *value.dropped})
    after = {**action.desired, m.MANAGED_GROUPS: managed}
    return replace(action, fields=fields, desired=after, shown_groups=added)
