"""The planner: scope, minimal diffs, deprovisioning and its reversal, memberships, threshold."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from deltasync.filter import parse_filter
from deltasync.mapping import DEFAULT_PERSON_MAPPING, DEFAULT_USER_MAPPING, merge_mapping
from deltasync.models import Kind, Link, MirrorObject, Removed
from deltasync.plan import (
    AddToGroups,
    Op,
    PlanContext,
    Ref,
    Scope,
    apply_threshold,
    plan_object,
    scope_status,
    selected_properties,
)

TODAY = date(2026, 11, 22)
NOW = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)


def ctx(**overrides: Any) -> PlanContext:
    base: dict[str, Any] = {
        "user_mapping": merge_mapping(DEFAULT_USER_MAPPING, {}),
        "person_mapping": merge_mapping(DEFAULT_PERSON_MAPPING, {}),
        "tz": ZoneInfo("Europe/Zurich"),
        "today": TODAY,
        "scope": Scope(
            parse_filter("accountEnabled eq true"), ("external.firma.ch",), ("admin@firma.ch",)
        ),
    }
    base.update(overrides)
    return PlanContext(**base)


def user(**data: Any) -> dict[str, Any]:
    base = {
        "id": "u1",
        "userPrincipalName": "anna.muster@firma.ch",
        "mail": "anna.muster@firma.ch",
        "givenName": "Anna",
        "surname": "Muster",
        "jobTitle": "Pflegefachfrau",
        "department": "Pflege",
        "mobilePhone": "+41 79 123 45 67",
        "accountEnabled": True,
        "employeeHireDate": "2024-03-31T22:00:00Z",
        "companyName": "Firma AG",
    }
    base.update(data)
    return base


def obj(removed: Removed | None = None, version: int = 2, **data: Any) -> MirrorObject:
    d = user(**data)
    return MirrorObject(str(d["id"]), d, removed, version, 0)


def link(
    kind: Kind,
    eliza_id: int,
    pushed: dict[str, Any],
    status: str = "active",
    saved: dict[str, Any] | None = None,
) -> Link:
    return Link("u1", kind, eliza_id, "created", NOW, pushed, 1, status, saved or {})


def pushed_user() -> dict[str, Any]:
    return {
        "username": "anna.muster@firma.ch",
        "email": "anna.muster@firma.ch",
        "first_name": "Anna",
        "last_name": "Muster",
        "remote_key": "u1",
        "is_active": True,
    }


def pushed_person() -> dict[str, Any]:
    return {
        "vorname": "Anna",
        "nachname": "Muster",
        "email": "anna.muster@firma.ch",
        "telefon": "+41 79 123 45 67",
        "position": "Pflegefachfrau",
        "abteilung": "Pflege",
        "eintrittsdatum": "2024-04-01",
        "remote_key": "u1",
        "user": 10,
    }


def linked() -> dict[Kind, Link]:
    return {
        Kind.USER: link(Kind.USER, 10, pushed_user()),
        Kind.PERSON: link(Kind.PERSON, 20, pushed_person()),
    }


def test_new_user_in_scope_creates_user_then_person_linked_to_it() -> None:
    plan = plan_object(obj(), {}, ctx())
    assert [(a.kind, a.op) for a in plan.actions] == [
        (Kind.USER, Op.CREATE),
        (Kind.PERSON, Op.CREATE),
    ]
    user_action, person_action = plan.actions
    assert user_action.fields["remote_key"] == "u1"
    assert user_action.fields["username"] == "anna.muster@firma.ch"
    assert person_action.fields["user"] == Ref(Kind.USER, "u1")
    assert person_action.fields["eintrittsdatum"] == "2024-04-01"  # Zurich calendar date


def test_unchanged_linked_object_plans_nothing() -> None:
    assert plan_object(obj(), linked(), ctx()).actions == ()


def test_one_changed_attribute_gives_one_update_with_only_that_field() -> None:
    plan = plan_object(obj(jobTitle="Stationsleiterin"), linked(), ctx())
    assert len(plan.actions) == 1
    (action,) = plan.actions
    assert (action.kind, action.op, action.eliza_id) == (Kind.PERSON, Op.UPDATE, 20)
    assert action.fields == {"position": "Stationsleiterin"}
    assert action.changes == {"position": ("Pflegefachfrau", "Stationsleiterin")}


def test_rename_is_an_update_of_the_same_linked_objects() -> None:
    plan = plan_object(
        obj(
            userPrincipalName="anna.keller@firma.ch", mail="anna.keller@firma.ch", surname="Keller"
        ),
        linked(),
        ctx(),
    )
    ops = {(a.kind, a.op, a.eliza_id) for a in plan.actions}
    assert ops == {(Kind.USER, Op.UPDATE, 10), (Kind.PERSON, Op.UPDATE, 20)}
    user_action = plan.actions[0]
    assert user_action.fields == {
        "username": "anna.keller@firma.ch",
        "email": "anna.keller@firma.ch",
        "last_name": "Keller",
    }


def test_cleared_attribute_is_sent_as_null_and_names_as_empty_string() -> None:
    plan = plan_object(obj(jobTitle=None, givenName=None), linked(), ctx())
    fields = {a.kind: a.fields for a in plan.actions}
    assert fields[Kind.PERSON]["position"] is None
    assert fields[Kind.USER] == {"first_name": ""}


@pytest.mark.parametrize(
    ("data", "removed", "expected"),
    [
        ({}, None, "active"),
        ({"accountEnabled": False}, None, "disabled"),
        ({}, Removed.CHANGED, "deleted in Entra (restorable for 30 days)"),
        ({"userPrincipalName": "x@external.firma.ch"}, None, "out of scope: excluded_domains"),
        ({"userPrincipalName": "ADMIN@firma.ch"}, None, "out of scope: excluded_users"),
    ],
)
def test_scope_status(data: dict[str, Any], removed: Removed | None, expected: str) -> None:
    assert scope_status(obj(removed, **data), ctx().scope)[0] == expected


def test_unlinked_out_of_scope_user_gets_nothing() -> None:
    assert plan_object(obj(accountEnabled=False), {}, ctx()).actions == ()
    assert plan_object(obj(Removed.DELETED), {}, ctx()).actions == ()


def test_disabled_linked_user_is_archived_not_deleted() -> None:
    plan = plan_object(obj(accountEnabled=False), linked(), ctx())
    user_action, person_action = plan.actions
    assert (user_action.op, user_action.fields) == (Op.DEACTIVATE, {"is_active": False})
    assert person_action.op == Op.DEACTIVATE
    assert person_action.fields == {"anstellungsart": "ehemalig"}
    assert person_action.if_empty == {"austrittsdatum": "2026-11-22"}
    assert all(a.deprovisions for a in plan.actions)


def test_on_disable_ignore_leaves_disabled_users_alone() -> None:
    assert plan_object(obj(accountEnabled=False), linked(), ctx(on_disable="ignore")).actions == ()


def test_delete_only_on_permanent_removal_when_configured() -> None:
    soft = plan_object(obj(Removed.CHANGED), linked(), ctx(on_delete="delete"))
    assert {a.op for a in soft.actions} == {Op.DEACTIVATE}
    hard = plan_object(obj(Removed.DELETED), linked(), ctx(on_delete="delete"))
    assert {a.op for a in hard.actions} == {Op.DELETE}
    absent = plan_object(obj(Removed.ABSENT), linked(), ctx(on_delete="delete"))
    assert {a.op for a in absent.actions} == {Op.DEACTIVATE}


def test_reenabling_reverses_exactly_what_the_sync_did() -> None:
    links = {
        Kind.USER: link(Kind.USER, 10, {**pushed_user(), "is_active": False}, "deactivated"),
        Kind.PERSON: link(
            Kind.PERSON,
            20,
            {**pushed_person(), "anstellungsart": "ehemalig", "austrittsdatum": "2026-11-01"},
            "deactivated",
            {"anstellungsart": "extern", "austrittsdatum_set": True},
        ),
    }
    plan = plan_object(obj(), links, ctx())
    user_action, person_action = plan.actions
    assert (user_action.op, user_action.fields) == (Op.REACTIVATE, {"is_active": True})
    assert person_action.op == Op.REACTIVATE
    assert person_action.fields == {"anstellungsart": "extern", "austrittsdatum": None}


def test_reenabling_keeps_an_austrittsdatum_set_by_hand() -> None:
    links = {
        Kind.PERSON: link(
            Kind.PERSON,
            20,
            {**pushed_person(), "anstellungsart": "ehemalig"},
            "deactivated",
            {"anstellungsart": None, "austrittsdatum_set": False},
        ),
    }
    plan = plan_object(obj(), links, ctx(skip_users=True))
    (person_action,) = plan.actions
    assert person_action.fields == {"anstellungsart": "intern"}


def test_sync_options_switch_creates_and_updates_off() -> None:
    assert plan_object(obj(), {}, ctx(create_users=False, create_persons=False)).actions == ()
    assert plan_object(obj(jobTitle="X"), linked(), ctx(update_persons=False)).actions == ()


def test_skip_users_still_links_the_person_to_the_existing_user() -> None:
    plan = plan_object(obj(), {Kind.USER: link(Kind.USER, 10, pushed_user())}, ctx(skip_users=True))
    (person_action,) = plan.actions
    assert person_action.fields["user"] == 10


def test_assign_to_group_adds_once_and_keeps_other_groups() -> None:
    plan = plan_object(obj(), linked(), ctx(assign_to_group=1))
    (action,) = plan.actions
    assert action.fields == {"groups": AddToGroups((1,))}
    assert action.desired["groups_added"] == [1]
    again = {
        Kind.USER: link(Kind.USER, 10, {**pushed_user(), "groups_added": [1]}),
        Kind.PERSON: linked()[Kind.PERSON],
    }
    assert plan_object(obj(), again, ctx(assign_to_group=1)).actions == ()


def test_manager_resolves_to_the_linked_person_or_waits() -> None:
    mapping = merge_mapping(DEFAULT_PERSON_MAPPING, {"vorgesetzter": "manager"})
    waiting = plan_object(obj(manager="boss"), linked(), ctx(person_mapping=mapping))
    assert waiting.unresolved == ("vorgesetzter",)
    assert waiting.actions == ()
    ready = plan_object(
        obj(manager="boss"), linked(), ctx(person_mapping=mapping, person_ids={"boss": 77})
    )
    (action,) = ready.actions
    assert action.fields == {"vorgesetzter": 77}


def test_membership_opens_moves_and_ends() -> None:
    c = ctx(orgunit_sync=True, orgunit_mapping={"Firma AG": 1, "Firma GmbH": 2})
    first = plan_object(obj(), linked(), c)
    (create,) = first.actions
    assert (create.kind, create.op, create.fields["orgunit"], create.fields["mitarbeiter"]) == (
        Kind.MEMBERSHIP,
        Op.CREATE,
        1,
        20,
    )
    with_membership = {
        **linked(),
        Kind.MEMBERSHIP: link(
            Kind.MEMBERSHIP, 30, {"orgunit": 1, "mitarbeiter": 20, "von": "2026-01-01", "bis": None}
        ),
    }
    assert plan_object(obj(), with_membership, c).actions == ()
    moved = plan_object(obj(companyName="Firma GmbH"), with_membership, c)
    assert [(a.op, a.eliza_id, a.fields.get("orgunit")) for a in moved.actions] == [
        (Op.END, 30, None),
        (Op.CREATE, None, 2),
    ]
    assert moved.actions[0].fields == {"bis": "2026-11-22"}
    left = plan_object(obj(accountEnabled=False), with_membership, c)
    assert [(a.kind, a.op) for a in left.actions][-1] == (Kind.MEMBERSHIP, Op.END)


def test_unmapped_company_is_a_note() -> None:
    plan = plan_object(
        obj(companyName="Unbekannt AG"),
        linked(),
        ctx(orgunit_sync=True, orgunit_mapping={"Firma AG": 1}),
    )
    assert plan.notes == ("unmapped company 'Unbekannt AG'",)


def _deactivations(n: int) -> list[Any]:
    return [plan_object(obj(accountEnabled=False, id=f"u{i}"), linked(), ctx()) for i in range(n)]


def test_threshold_holds_every_deactivation_and_lets_the_rest_through() -> None:
    plans = [*_deactivations(3), plan_object(obj(jobTitle="X", id="other"), linked(), ctx())]
    result = apply_threshold(plans, linked_users=100, max_count=2, max_percent=0, allow=False)
    assert len(result.held) == 3
    assert result.threshold_reason and "max_deactivations=2" in result.threshold_reason
    assert result.actions and all(a.op == Op.UPDATE for a in result.actions)


def test_threshold_by_percentage_and_release() -> None:
    plans = _deactivations(3)
    held = apply_threshold(plans, linked_users=20, max_count=0, max_percent=10, allow=False)
    assert len(held.held) == 3  # 15% > 10%
    released = apply_threshold(plans, linked_users=20, max_count=0, max_percent=10, allow=True)
    assert released.held == () and len(released.actions) == 6
    within = apply_threshold(plans, linked_users=100, max_count=25, max_percent=10, allow=False)
    assert within.held == ()


def test_selected_properties_cover_mapping_filter_and_matching() -> None:
    mapping = merge_mapping(
        DEFAULT_PERSON_MAPPING, {"kurzzeichen": "{givenName} {surname} | initials"}
    )
    c = ctx(person_mapping=mapping, scope=Scope(parse_filter("department eq 'Pflege'")))
    select = selected_properties(c)
    assert select[0] == "id"
    for prop in (
        "userPrincipalName",
        "mail",
        "proxyAddresses",
        "accountEnabled",
        "department",
        "employeeHireDate",
        "givenName",
        "surname",
        "mobilePhone",
        "jobTitle",
    ):
        assert prop in select


def test_object_whose_account_became_protected_gets_no_action() -> None:
    links = {**linked(), Kind.USER: link(Kind.USER, 10, pushed_user(), "protected")}
    plan = plan_object(obj(surname="Neu", accountEnabled=False), links, ctx())
    assert plan.actions == ()
    assert plan.status == "protected in ELIZA"
