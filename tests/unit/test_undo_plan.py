"""The pure undo planner: journal entries and ELIZA now -> reversals and refusals."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from deltasync.models import JournalEntry, Kind, Link, LinkStatus, MatchedBy
from deltasync.plan.actions import Op
from deltasync.plan.undo import UndoInput, plan_undo

NOW = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)
E = "entra-1"


def entry(i: int, kind: Kind, action: str, eliza_id: int, **changes: Any) -> JournalEntry:
    return JournalEntry(i, 7, NOW, E, kind, action, eliza_id, changes)


def link(kind: Kind, eliza_id: int, status: LinkStatus = LinkStatus.ACTIVE, **pushed: Any) -> Link:
    return Link(E, kind, eliza_id, MatchedBy.CREATED, NOW, pushed, 3, status)


def world(current: dict[tuple[Kind, int], Any], links: dict[Kind, Link], **kw: Any) -> UndoInput:
    return UndoInput(
        current=current,
        links={E: links},
        later=kw.pop("later", {}),
        labels={E: "anna@firma.ch"},
        today="2026-11-22",
        now=NOW,
        **kw,
    )


def test_an_update_is_put_back_to_the_old_values() -> None:
    entries = [entry(1, Kind.PERSON, "update", 5, position=["Koch", "Chef"])]
    plan = plan_undo(
        7,
        entries,
        world(
            {(Kind.PERSON, 5): {"id": 5, "position": "Chef"}},
            {Kind.PERSON: link(Kind.PERSON, 5, position="Chef")},
        ),
    )
    (r,) = plan.reversals
    assert (r.action.op, dict(r.action.fields)) == (Op.UPDATE, {"position": "Koch"})
    assert r.link is not None and r.link.pushed["position"] == "Koch"
    assert plan.refused == ()


def test_a_field_edited_in_eliza_since_is_refused_unless_forced() -> None:
    entries = [entry(1, Kind.PERSON, "update", 5, position=["Koch", "Chef"])]
    current = {(Kind.PERSON, 5): {"id": 5, "position": "von Hand"}}
    links = {Kind.PERSON: link(Kind.PERSON, 5, position="Chef")}
    plan = plan_undo(7, entries, world(current, links))
    assert plan.reversals == ()
    (refusal,) = plan.refused
    assert "position is 'von Hand'" in refusal.reason
    forced = plan_undo(7, entries, world(current, links, force=True))
    assert [dict(r.action.fields) for r in forced.reversals] == [{"position": "Koch"}]


def test_a_later_run_refuses_the_object() -> None:
    entries = [entry(1, Kind.USER, "update", 2, first_name=["A", "B"])]
    plan = plan_undo(
        7,
        entries,
        world(
            {(Kind.USER, 2): {"id": 2, "first_name": "B"}},
            {Kind.USER: link(Kind.USER, 2)},
            later={(E, Kind.USER): 9},
        ),
    )
    assert [r.reason for r in plan.refused] == ["changed again since, by run 9"]


def test_a_deactivation_is_reactivated_and_a_created_user_deactivated() -> None:
    entries = [
        entry(1, Kind.USER, "deactivate", 2, is_active=[True, False]),
        entry(2, Kind.PERSON, "deactivate", 3, anstellungsart=["intern", "ehemalig"]),
    ]
    deact = plan_undo(
        7,
        entries,
        world(
            {
                (Kind.USER, 2): {"id": 2, "is_active": False},
                (Kind.PERSON, 3): {"id": 3, "anstellungsart": "ehemalig"},
            },
            {
                Kind.USER: link(Kind.USER, 2, LinkStatus.DEACTIVATED),
                Kind.PERSON: link(Kind.PERSON, 3, LinkStatus.DEACTIVATED),
            },
        ),
    )
    assert [(r.action.op, dict(r.action.fields)) for r in deact.reversals] == [
        (Op.REACTIVATE, {"anstellungsart": "intern"}),
        (Op.REACTIVATE, {"is_active": True}),
    ]
    assert all(r.link is not None and r.link.status == LinkStatus.ACTIVE for r in deact.reversals)
    created = plan_undo(
        7,
        [entry(1, Kind.USER, "create", 2, username=[None, "anna"], is_active=[None, True])],
        world(
            {(Kind.USER, 2): {"id": 2, "username": "anna", "is_active": True}},
            {Kind.USER: link(Kind.USER, 2)},
        ),
    )
    (r,) = created.reversals
    assert (r.action.op, dict(r.action.fields), r.action.deprovisions) == (
        Op.DEACTIVATE,
        {"is_active": False},
        True,
    )


def test_a_membership_move_reopens_the_old_one_and_ends_the_new_one() -> None:
    entries = [
        entry(1, Kind.MEMBERSHIP, "end", 10, bis=[None, "2026-11-22"]),
        entry(2, Kind.MEMBERSHIP, "create", 11, orgunit=[1, 2]),
    ]
    old = {"id": 10, "mitarbeiter": 3, "orgunit": 1, "von": "2020-01-01", "bis": "2026-11-22"}
    new = {"id": 11, "mitarbeiter": 3, "orgunit": 2, "von": "2026-11-22", "bis": None}
    plan = plan_undo(
        7,
        entries,
        world(
            {(Kind.MEMBERSHIP, 10): old, (Kind.MEMBERSHIP, 11): new},
            {Kind.MEMBERSHIP: link(Kind.MEMBERSHIP, 11, orgunit=2)},
        ),
    )
    first, second = plan.reversals
    assert (first.action.eliza_id, dict(first.action.fields), first.link) == (
        11,
        {"bis": "2026-11-22"},
        None,
    )
    assert (second.action.op, dict(second.action.fields)) == (Op.REOPEN, {"bis": None})
    assert second.link is not None and second.link.eliza_id == 10
    assert second.link.pushed["orgunit"] == 1 and second.link.pushed["bis"] is None


def test_a_deleted_object_cannot_be_undone() -> None:
    plan = plan_undo(7, [entry(1, Kind.USER, "delete", 2)], world({(Kind.USER, 2): None}, {}))
    assert plan.reversals == () and "cannot be undone" in plan.refused[0].reason
