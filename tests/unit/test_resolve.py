"""plan.resolve: the decisions the push used to make, now pure."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from deltasync.models import Kind, Link, LinkStatus, MatchedBy
from deltasync.plan.actions import Action, AddToGroups, Op, Ref
from deltasync.plan.resolve import changed, created, matched, needs_current, remember_first

NOW = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)


def link(kind: Kind = Kind.PERSON, **pushed: object) -> Link:
    return Link("e1", kind, 7, MatchedBy.CREATED, NOW, pushed, 1)


def test_deprovisioning_a_person_remembers_what_it_replaced_and_fills_only_an_empty_exit_date() -> (
    None
):
    a = Action(
        "e1",
        Kind.PERSON,
        Op.DEACTIVATE,
        7,
        {"anstellungsart": "ehemalig"},
        {"anstellungsart": ("fest", "ehemalig")},
        "deprovision: disabled",
        "anna",
        {"anstellungsart": "ehemalig"},
        if_empty={"austrittsdatum": "2026-11-22"},
    )
    assert needs_current(a)
    empty = changed(a, link(), {"id": 7, "anstellungsart": "fest", "austrittsdatum": None}, {})
    assert empty.body == {"anstellungsart": "ehemalig", "austrittsdatum": "2026-11-22"}
    assert empty.status == LinkStatus.DEACTIVATED
    assert empty.saved == {
        "anstellungsart": "fest",
        "austrittsdatum_set": True,
        "austrittsdatum": "2026-11-22",
    }
    assert empty.action.changes["austrittsdatum"] == (None, "2026-11-22")
    kept = changed(
        a, link(), {"id": 7, "anstellungsart": "fest", "austrittsdatum": "2026-06-30"}, {}
    )
    assert "austrittsdatum" not in kept.body
    assert kept.saved == {
        "anstellungsart": "fest",
        "austrittsdatum_set": False,
        "austrittsdatum": None,
    }


def test_a_deprovisioning_records_its_memory_first_and_a_retry_reading_its_own_write_keeps_it() -> (
    None
):
    a = Action(
        "e1",
        Kind.PERSON,
        Op.DEACTIVATE,
        7,
        {"anstellungsart": "ehemalig"},
        {},
        "deprovision: disabled",
        "anna",
        {"anstellungsart": "ehemalig"},
        if_empty={"austrittsdatum": "2026-11-22"},
    )
    first = changed(a, link(), {"id": 7, "anstellungsart": "fest", "austrittsdatum": None}, {})
    marked = remember_first(first, link())
    assert marked is not None and marked.status == LinkStatus.ACTIVE
    assert marked.saved == first.saved and marked.pushed == link().pushed
    # killed after ELIZA applied it, before the link: the rerun reads the write back
    applied = {"id": 7, "anstellungsart": "ehemalig", "austrittsdatum": "2026-11-22"}
    retry = changed(a, marked, applied, {})
    assert retry.saved == first.saved
    assert remember_first(retry, marked) is None
    # killed before the write: ELIZA unchanged (here by hand since), memory from what it holds
    untouched = {"id": 7, "anstellungsart": "extern", "austrittsdatum": None}
    assert changed(a, marked, untouched, {}).saved["anstellungsart"] == "extern"
    # a deactivated link's memory is not an interrupted try's
    off = replace(marked, status=LinkStatus.DEACTIVATED)
    assert changed(a, off, applied, {}).saved["anstellungsart"] == "ehemalig"


def test_added_groups_keep_the_users_other_groups() -> None:
    a = Action("e1", Kind.USER, Op.UPDATE, 7, {"groups": AddToGroups((5,))}, {}, "r", "anna", {})
    w = changed(a, link(Kind.USER), {"id": 7, "groups": [1, 2]}, {})
    assert w.body == {"groups": [1, 2, 5]}
    assert "groups" not in w.pushed
    assert w.action.changes == {"groups": ([1, 2], [1, 2, 5])}


def test_ending_a_membership_drops_the_link_unless_deprovisioning_ended_it() -> None:
    end = Action("e1", Kind.MEMBERSHIP, Op.END, 7, {"bis": "2026-11-22"}, {}, "r", "a", saved={})
    assert changed(end, link(Kind.MEMBERSHIP), None, {}).status == LinkStatus.ENDED
    by_sync = Action(
        "e1", Kind.MEMBERSHIP, Op.END, 7, {"bis": "x"}, {}, "r", "a", saved={"ended_by_sync": True}
    )
    assert changed(by_sync, link(Kind.MEMBERSHIP), None, {}).status == LinkStatus.DEACTIVATED


def test_a_matched_create_patches_only_what_differs_and_resolves_references() -> None:
    desired = {"vorname": "Anna", "user": Ref(Kind.USER, "e1"), "remote_key": "e1"}
    a = Action("e1", Kind.PERSON, Op.CREATE, None, desired, {}, "new in scope", "anna", desired)
    ids = {("e1", Kind.USER): 3}
    w = matched(a, {"id": 9, "vorname": "Anna", "user": None}, MatchedBy.USER, ids)
    assert w.body == {"user": 3, "remote_key": "e1"}
    assert (w.action.op, w.action.reason) == (Op.MATCH, "matched as the person of the linked user")
    new = w.linked(9, 4, NOW)
    assert (new.eliza_id, new.matched_by, new.pushed_version) == (9, MatchedBy.USER, 4)
    assert new.pushed == {"vorname": "Anna", "user": 3, "remote_key": "e1"}
    nothing = matched(
        a, {"id": 9, "vorname": "Anna", "user": 3, "remote_key": "e1"}, MatchedBy.HARD, ids
    )
    assert nothing.body == {}
    assert nothing.action.reason == "hard match on remote_key, nothing to change"


def test_a_create_posts_every_field_and_shows_groups_last() -> None:
    fields = {"groups": AddToGroups((5,)), "username": "anna", "remote_key": "e1"}
    a = Action(
        "e1", Kind.USER, Op.CREATE, None, fields, {}, "new in scope", "anna", {"username": "anna"}
    )
    w = created(a, {})
    assert w.body == {"groups": [5], "username": "anna", "remote_key": "e1"}
    assert list(w.action.changes) == ["username", "remote_key", "groups"]
    assert w.matched_by == MatchedBy.CREATED
