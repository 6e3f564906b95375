"""The pure undo planner: journal entries and ELIZA now -> reversals and refusals."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from deltasync.models import JournalEntry, Kind, Link, LinkStatus, MatchedBy
from deltasync.plan.actions import Op
from deltasync.plan.undo import UndoInput, plan_undo
from deltasync.plan.undo_groups import GroupSwap

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


NAMES = {5: "Kader", 7: "Pflege"}


def test_a_users_groups_get_back_exactly_what_the_run_changed_and_keep_the_rest() -> None:
    entries = [entry(1, Kind.USER, "update", 2, groups=[[1, 5, 30], [1, 7, 30]])]
    current = {(Kind.USER, 2): {"id": 2, "groups": [1, 7, 30, 44]}}  # 44 added by hand since
    links = {Kind.USER: link(Kind.USER, 2, managed_groups=[7])}
    plan = plan_undo(7, entries, world(current, links, group_names=NAMES))
    (r,) = plan.reversals
    swap = r.action.fields["groups"]
    assert isinstance(swap, GroupSwap) and (swap.add, swap.remove) == ((5,), (7,))
    assert swap.resolve([1, 7, 30, 44], {}) == [1, 5, 30, 44]
    assert swap.resolve([1, 7, 30, 44], {5: 61}) == [1, 30, 44, 61]  # 5 was re-created as 61
    assert r.action.shown_groups == ("+Kader", "−Pflege") and r.action.changes == {}
    assert r.link is not None and r.link.pushed["managed_groups"] == [5]


def test_a_users_groups_changed_since_are_refused_by_name() -> None:
    entries = [entry(1, Kind.USER, "update", 2, groups=[[1, 5], [1, 7]])]
    links = {Kind.USER: link(Kind.USER, 2, managed_groups=[7])}
    for now, why in (([1], "Pflege (added by the run) is gone"), ([1, 5, 7], "Kader (removed")):
        current = {(Kind.USER, 2): {"id": 2, "groups": now}}
        plan = plan_undo(7, entries, world(current, links, group_names=NAMES))
        assert plan.reversals == () and why in plan.refused[0].reason


def group_link(eliza_id: int, status: LinkStatus = LinkStatus.ACTIVE, **pushed: Any) -> Link:
    return link(Kind.GROUP, eliza_id, status, **pushed)


def test_a_renamed_group_gets_its_old_name_unless_renamed_by_hand_since() -> None:
    entries = [entry(1, Kind.GROUP, "update", 5, name=["Kader", "Führung"])]
    links = {Kind.GROUP: group_link(5, name="Führung")}
    plan = plan_undo(7, entries, world({(Kind.GROUP, 5): {"id": 5, "name": "Führung"}}, links))
    (r,) = plan.reversals
    assert (r.action.op, dict(r.action.fields), r.action.label) == (
        Op.UPDATE,
        {"name": "Kader"},
        "Führung",
    )
    assert r.link is not None and r.link.pushed["name"] == "Kader"
    by_hand = world({(Kind.GROUP, 5): {"id": 5, "name": "Chefs"}}, links)
    assert "name is 'Chefs'" in plan_undo(7, entries, by_hand).refused[0].reason


def test_a_created_group_is_unlinked_never_deleted_and_an_emptied_one_linked_again() -> None:
    created = plan_undo(
        7,
        [entry(1, Kind.GROUP, "create", 9, name=[None, "Springer"])],
        world({(Kind.GROUP, 9): {"id": 9, "name": "Springer"}}, {Kind.GROUP: group_link(9)}),
    )
    (r,) = created.reversals
    assert (r.action.op, dict(r.action.fields), r.link, r.members) == (Op.EMPTY, {}, None, ())
    recreated = plan_undo(  # an undo's re-creation, undone: taken from the users it gave it
        7,
        [entry(1, Kind.GROUP, "create", 9, name=[None, "Springer"], members=[[], [3, 4]])],
        world({(Kind.GROUP, 9): {"id": 9, "name": "Springer"}}, {Kind.GROUP: group_link(9)}),
    )
    assert [(r.action.op, r.members) for r in recreated.reversals] == [(Op.EMPTY, (3, 4))]
    emptied = plan_undo(
        7,
        [entry(1, Kind.GROUP, "empty", 9)],
        world(
            {(Kind.GROUP, 9): {"id": 9, "name": "Springer"}},
            {Kind.GROUP: group_link(9, LinkStatus.DEACTIVATED)},
        ),
    )
    (r,) = emptied.reversals
    assert r.action.op == Op.REACTIVATE and r.link is not None
    assert r.link.status == LinkStatus.ACTIVE


def test_a_deleted_group_is_created_again_with_its_old_name_and_holders() -> None:
    deleted = entry(
        1,
        Kind.GROUP,
        "delete",
        9,
        name=["Verkauf", None],
        remote_key=[E, None],
        members=[[3, 4], []],
    )
    plan = plan_undo(
        7,
        [deleted],
        world({(Kind.GROUP, 9): None}, {Kind.GROUP: group_link(9, LinkStatus.DELETED)}),
    )
    (r,) = plan.reversals
    assert (r.action.op, dict(r.action.fields), r.members) == (
        Op.CREATE,
        {"name": "Verkauf", "remote_key": E},
        (3, 4),
    )
    assert r.action.label == "Verkauf" and r.link is not None
    assert r.link.status == LinkStatus.ACTIVE and r.link.pushed["name"] == "Verkauf"
    later = world({(Kind.GROUP, 9): None}, {}, later={(E, Kind.GROUP): 8})
    assert plan_undo(7, [deleted], later).refused[0].reason == "changed again since, by run 8"
    back = world({(Kind.GROUP, 9): {"id": 9, "name": "Verkauf"}}, {})
    assert "exists again" in plan_undo(7, [deleted], back).refused[0].reason
