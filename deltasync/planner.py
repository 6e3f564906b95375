"""Plan: a pure function from (mirror object, its links, settings) to the ELIZA actions it needs.

Nothing here does I/O. The engine resolves what only ELIZA can tell (matching on first sight,
a person's current ``austrittsdatum``), the planner decides everything else, so a dry run and a
real run show the very same actions.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from deltasync.models import Kind, Link, MirrorObject, Removed


class Evaluable(Protocol):
    """A compiled mapping expression (see deltasync.mapping.Expr)."""

    @property
    def source(self) -> str: ...

    @property
    def properties(self) -> frozenset[str]: ...

    def evaluate(self, data: Mapping[str, Any], tz: ZoneInfo) -> Any: ...


class Predicate(Protocol):
    """A compiled scope filter (see deltasync.filter.Filter)."""

    @property
    def source(self) -> str: ...

    @property
    def properties(self) -> frozenset[str]: ...

    def matches(self, data: Mapping[str, Any]) -> bool: ...


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
class Scope:
    """Which Entra users the sync manages."""

    user_filter: Predicate | None = None
    excluded_domains: tuple[str, ...] = ()
    excluded_users: tuple[str, ...] = ()


@dataclass(frozen=True)
class PlanContext:
    """Everything the planner needs besides the object and its links; plain data."""

    user_mapping: Mapping[str, Evaluable]
    person_mapping: Mapping[str, Evaluable]
    tz: ZoneInfo
    today: date
    scope: Scope = Scope()
    create_users: bool = True
    update_users: bool = True
    create_persons: bool = True
    update_persons: bool = True
    skip_users: bool = False
    skip_persons: bool = False
    on_disable: str = "deactivate"  # deactivate | ignore
    on_delete: str = "deactivate"  # deactivate | delete | ignore
    orgunit_sync: bool = False
    orgunit_mapping: Mapping[str, int] = field(default_factory=dict)
    assign_to_group: int | None = None
    person_ids: Mapping[str, int] = field(default_factory=dict)  # entra id -> linked person id


USER_ID_FIELDS = ("remote_key",)
PROTECTED = "protected"  # link status: the account became a superuser or protected; hands off
NOT_NULLABLE_USER_FIELDS = ("first_name", "last_name")
MANAGER_FIELD = "vorgesetzter"
FORMER = "ehemalig"


def _label(obj: MirrorObject) -> str:
    upn = obj.data.get("userPrincipalName")
    return upn if isinstance(upn, str) and upn else obj.id


def scope_status(obj: MirrorObject, scope: Scope) -> tuple[str, str | None]:
    """Classify an object: ("active", None) or (status, policy) with policy "disable"/"delete".

    Removal wins over disabling, disabling over the other scope rules, so the administrator
    sees the strongest reason and the matching deprovisioning policy applies.
    """
    if obj.removed is not None:
        return f"removed:{obj.removed.value}", "delete"
    data = obj.data
    if data.get("accountEnabled") is False:
        return "disabled", "disable"
    upn = str(data.get("userPrincipalName") or "").lower()
    mail = str(data.get("mail") or "").lower()
    excluded = {u.lower() for u in scope.excluded_users}
    if upn in excluded or (mail and mail in excluded):
        return "out of scope: excluded_users", "disable"
    domains = {d.lower().lstrip("@") for d in scope.excluded_domains}
    for address in (upn, mail):
        if "@" in address and address.rsplit("@", 1)[1] in domains:
            return "out of scope: excluded_domains", "disable"
    if scope.user_filter is not None and not scope.user_filter.matches(data):
        return "out of scope: user_filter", "disable"
    return "active", None


def desired_user(obj: MirrorObject, ctx: PlanContext) -> dict[str, Any]:
    """The user fields ELIZA should hold for this Entra user (without groups)."""
    values = {name: expr.evaluate(obj.data, ctx.tz) for name, expr in ctx.user_mapping.items()}
    for name in NOT_NULLABLE_USER_FIELDS:
        if name in values and values[name] is None:
            values[name] = ""
    values["remote_key"] = obj.id
    values["is_active"] = True
    return values


def desired_person(
    obj: MirrorObject, ctx: PlanContext, user_ref: Any
) -> tuple[dict[str, Any], tuple[str, ...]]:
    """The person fields ELIZA should hold, and the fields still waiting for a link."""
    values: dict[str, Any] = {}
    unresolved: list[str] = []
    for name, expr in ctx.person_mapping.items():
        value = expr.evaluate(obj.data, ctx.tz)
        if name == MANAGER_FIELD and value is not None:
            manager = ctx.person_ids.get(str(value))
            if manager is None:
                unresolved.append(name)
                continue
            value = manager
        values[name] = value
    values["remote_key"] = obj.id
    if user_ref is not None:  # without a linked user, leave ELIZA's value alone
        values["user"] = user_ref
    return values, tuple(unresolved)


def diff(desired: Mapping[str, Any], current: Mapping[str, Any]) -> dict[str, tuple[Any, Any]]:
    """Fields whose desired value differs from the current one: field -> (old, new)."""
    return {
        name: (current.get(name), value)
        for name, value in desired.items()
        if name not in current or current[name] != value
    }


def _user_ref(links: Mapping[Kind, Link], user_action: Action | None) -> Any:
    link = links.get(Kind.USER)
    if link is not None and link.status != "deleted":
        return link.eliza_id
    if user_action is not None and user_action.op == Op.CREATE:
        return Ref(Kind.USER, user_action.entra_id)
    return None


def _assign_group(
    fields: dict[str, Any],
    changes: dict[str, tuple[Any, Any]],
    desired: dict[str, Any],
    link: Link | None,
    ctx: PlanContext,
) -> None:
    """Add ``--assign-to-group`` to a user once; the sync never removes a group it did not add."""
    group = ctx.assign_to_group
    added = list(link.pushed.get("groups_added", ())) if link is not None else []
    if group is None or group in added:
        if added:
            desired["groups_added"] = added
        return
    fields["groups"] = AddToGroups((group,))
    changes["groups"] = (None, f"+{group}")
    desired["groups_added"] = sorted({*added, group})


def _plan_user(
    obj: MirrorObject, link: Link | None, status: str, policy: str | None, ctx: PlanContext
) -> Action | None:
    label = _label(obj)
    desired = desired_user(obj, ctx)
    if policy is None:
        if link is None or link.status == "deleted":
            if not ctx.create_users:
                return None
            fields = dict(desired)
            changes = {k: (None, v) for k, v in desired.items()}
            after = dict(desired)
            _assign_group(fields, changes, after, None, ctx)
            return Action(
                obj.id, Kind.USER, Op.CREATE, None, fields, changes, "new in scope", label, after
            )
        changes = diff(desired, link.pushed) if ctx.update_users else {}
        reactivate = link.status == "deactivated"
        if reactivate:
            changes["is_active"] = (link.pushed.get("is_active"), True)
        fields = {k: new for k, (_, new) in changes.items()}
        after = {**link.pushed, **desired, "is_active": True}
        _assign_group(fields, changes, after, link, ctx)
        if not changes:
            return None
        if reactivate:
            return Action(
                obj.id,
                Kind.USER,
                Op.REACTIVATE,
                link.eliza_id,
                fields,
                changes,
                "back in scope",
                label,
                after,
                saved={},
            )
        return Action(
            obj.id,
            Kind.USER,
            Op.UPDATE,
            link.eliza_id,
            fields,
            changes,
            "changed in Entra",
            label,
            after,
        )
    if link is None or link.status != "active":
        return None
    op = _deprovision_op(obj, policy, ctx)
    if op is None:
        return None
    if op == Op.DELETE:
        return Action(obj.id, Kind.USER, Op.DELETE, link.eliza_id, {}, {}, status, label)
    return Action(
        obj.id,
        Kind.USER,
        Op.DEACTIVATE,
        link.eliza_id,
        {"is_active": False},
        {"is_active": (link.pushed.get("is_active", True), False)},
        f"deprovision: {status}",
        label,
        {**link.pushed, "is_active": False},
        saved={},
    )


def _deprovision_op(obj: MirrorObject, policy: str, ctx: PlanContext) -> Op | None:
    setting = ctx.on_delete if policy == "delete" else ctx.on_disable
    if setting == "ignore":
        return None
    if setting == "delete" and obj.removed == Removed.DELETED:
        return Op.DELETE
    return Op.DEACTIVATE


def _plan_person(
    obj: MirrorObject,
    links: Mapping[Kind, Link],
    status: str,
    policy: str | None,
    ctx: PlanContext,
    user_action: Action | None,
) -> tuple[Action | None, tuple[str, ...]]:
    link = links.get(Kind.PERSON)
    label = _label(obj)
    if policy is None:
        desired, unresolved = desired_person(obj, ctx, _user_ref(links, user_action))
        if link is None or link.status == "deleted":
            if not ctx.create_persons:
                return None, unresolved
            return Action(
                obj.id,
                Kind.PERSON,
                Op.CREATE,
                None,
                dict(desired),
                {k: (None, v) for k, v in desired.items()},
                "new in scope",
                label,
                desired,
            ), unresolved
        changes = diff(desired, link.pushed) if ctx.update_persons else {}
        if link.status == "deactivated":
            saved = link.saved
            previous = saved.get("anstellungsart") or "intern"
            changes["anstellungsart"] = (FORMER, previous)
            if saved.get("austrittsdatum_set"):
                changes["austrittsdatum"] = (saved.get("austrittsdatum"), None)
            return Action(
                obj.id,
                Kind.PERSON,
                Op.REACTIVATE,
                link.eliza_id,
                {k: new for k, (_, new) in changes.items()},
                changes,
                "back in scope",
                label,
                {**link.pushed, **desired},
                saved={},
            ), unresolved
        if not changes:
            return None, unresolved
        return Action(
            obj.id,
            Kind.PERSON,
            Op.UPDATE,
            link.eliza_id,
            {k: new for k, (_, new) in changes.items()},
            changes,
            "changed in Entra",
            label,
            {**link.pushed, **desired},
        ), unresolved
    if link is None or link.status != "active":
        return None, ()
    op = _deprovision_op(obj, policy, ctx)
    if op is None:
        return None, ()
    if op == Op.DELETE:
        return Action(obj.id, Kind.PERSON, Op.DELETE, link.eliza_id, {}, {}, status, label), ()
    return Action(
        obj.id,
        Kind.PERSON,
        Op.DEACTIVATE,
        link.eliza_id,
        {"anstellungsart": FORMER},
        {"anstellungsart": (link.pushed.get("anstellungsart"), FORMER)},
        f"deprovision: {status}",
        label,
        {**link.pushed, "anstellungsart": FORMER},
        if_empty={"austrittsdatum": ctx.today.isoformat()},
    ), ()


def _plan_membership(
    obj: MirrorObject,
    links: Mapping[Kind, Link],
    status: str,
    policy: str | None,
    ctx: PlanContext,
    person_action: Action | None,
) -> tuple[list[Action], tuple[str, ...]]:
    """Open, move, end or reopen the one org-unit membership the sync manages for a person."""
    link = links.get(Kind.MEMBERSHIP)
    label = _label(obj)
    today = ctx.today.isoformat()
    open_link = link is not None and link.status == "active"
    actions: list[Action] = []
    if policy is not None:
        if open_link and link is not None:
            actions.append(_end(obj.id, link, today, f"deprovision: {status}", label, True))
        return actions, ()
    company = obj.data.get("companyName")
    target = ctx.orgunit_mapping.get(company) if isinstance(company, str) else None
    notes = (f"unmapped company {company!r}",) if company and target is None else ()
    person = links.get(Kind.PERSON)
    person_ref: Any
    if person is not None and person.status != "deleted":
        person_ref = person.eliza_id
    elif person_action is not None and person_action.op == Op.CREATE:
        person_ref = Ref(Kind.PERSON, obj.id)
    else:
        return actions, notes
    current = link.pushed.get("orgunit") if link is not None else None
    reopen = link is not None and link.status == "deactivated" and link.saved.get("ended_by_sync")
    if reopen and link is not None and target == current:
        actions.append(
            Action(
                obj.id,
                Kind.MEMBERSHIP,
                Op.REOPEN,
                link.eliza_id,
                {"bis": None},
                {"bis": (link.pushed.get("bis"), None)},
                "back in scope",
                label,
                {**link.pushed, "bis": None},
                saved={},
            )
        )
        return actions, notes
    if open_link and link is not None:
        if target == current:
            return actions, notes
        actions.append(_end(obj.id, link, today, "company changed", label, False))
    if target is not None:
        fields = {"mitarbeiter": person_ref, "orgunit": target, "von": today, "bis": None}
        actions.append(
            Action(
                obj.id,
                Kind.MEMBERSHIP,
                Op.CREATE,
                None,
                fields,
                {"orgunit": (current, target)},
                f"company {company!r}",
                label,
                fields,
            )
        )
    return actions, notes


def _end(
    entra_id: str, link: Link, today: str, reason: str, label: str, by_deprovision: bool
) -> Action:
    return Action(
        entra_id,
        Kind.MEMBERSHIP,
        Op.END,
        link.eliza_id,
        {"bis": today},
        {"bis": (None, today)},
        reason,
        label,
        {**link.pushed, "bis": today},
        saved={"ended_by_sync": True} if by_deprovision else {},
    )


def plan_object(obj: MirrorObject, links: Mapping[Kind, Link], ctx: PlanContext) -> ObjectPlan:
    """Every action one Entra object needs, users first, then persons, then memberships."""
    status, policy = scope_status(obj, ctx.scope)
    user_link = links.get(Kind.USER)
    if user_link is not None and user_link.status == PROTECTED:
        return ObjectPlan(obj.id, obj.version, _label(obj), "protected in ELIZA", ())
    actions: list[Action] = []
    user_action = None
    if not ctx.skip_users:
        user_action = _plan_user(obj, links.get(Kind.USER), status, policy, ctx)
        if user_action is not None:
            actions.append(user_action)
    unresolved: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    if not ctx.skip_persons:
        person_action, unresolved = _plan_person(obj, links, status, policy, ctx, user_action)
        if person_action is not None:
            actions.append(person_action)
        if ctx.orgunit_sync:
            memberships, notes = _plan_membership(obj, links, status, policy, ctx, person_action)
            actions.extend(memberships)
    return ObjectPlan(obj.id, obj.version, _label(obj), status, tuple(actions), notes, unresolved)


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


def plan_all(
    objects: Iterable[MirrorObject], links: Mapping[str, Mapping[Kind, Link]], ctx: PlanContext
) -> list[ObjectPlan]:
    """Plan every object; links maps Entra id -> kind -> link."""
    return [plan_object(o, links.get(o.id, {}), ctx) for o in objects]


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
    run from acting on any part of a bad read. Everything else proceeds.
    """
    deprovisioned = [p for p in plans if any(a.deprovisions for a in p.actions)]
    count = len(deprovisioned)
    reasons = []
    if max_count > 0 and count > max_count:
        reasons.append(f"{count} deactivations exceed max_deactivations={max_count}")
    if max_percent > 0 and linked_users > 0 and count * 100 > max_percent * linked_users:
        share = count * 100 / linked_users
        reasons.append(
            f"{count} deactivations are {share:.0f}% of {linked_users} linked users, "
            f"over max_deactivation_percent={max_percent:g}"
        )
    if not reasons or allow:
        return Plan(tuple(plans))
    kept = []
    held = []
    for p in plans:
        if any(a.deprovisions for a in p.actions):
            held.append(p)
            kept.append(replace(p, actions=tuple(a for a in p.actions if not a.deprovisions)))
        else:
            kept.append(p)
    return Plan(tuple(kept), tuple(held), "; ".join(reasons))


def selected_properties(ctx: PlanContext, *, extra: Iterable[str] = ()) -> list[str]:
    """The Graph $select set: what mapping, scope and matching read, plus the always-needed ones."""
    props = {"id", "userPrincipalName", "mail", "proxyAddresses", "accountEnabled", "displayName"}
    for expr in (*ctx.user_mapping.values(), *ctx.person_mapping.values()):
        props |= expr.properties
    if ctx.scope.user_filter is not None:
        props |= ctx.scope.user_filter.properties
    props.add("companyName")  # always: toggling --enable-orgunit-sync must not force a full round
    props.update(extra)
    return ["id", *sorted(props - {"id"})]
