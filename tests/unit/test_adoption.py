"""Adoption without loss: on first match only the values Entra has overwrite ELIZA."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from deltasync.engine.report import RunReport, action_json, changes_json
from deltasync.models import Kind, Link, MatchedBy, MirrorObject
from deltasync.plan import plan_object
from deltasync.plan.actions import Action, Op, diff, empty, keep_adopted
from deltasync.plan.resolve import changed, created, held_back, matched

from .test_planner import ctx, user

NOW = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)
ABSENT = object()  # the key is missing altogether
EMPTY_FORMS = [ABSENT, None, "", []]
ELIZA_PERSON = {
    "id": 40,
    "vorname": "Anna",
    "nachname": "Muster",
    "email": "anna.muster@firma.ch",
    "telefon": "+41 31 555 00 00",
    "abteilung": "Pflege",
    "position": "Praktikantin",
    "remote_key": None,
}


def person_create(**desired: Any) -> Action:
    values = {"vorname": "Anna", "nachname": "Muster", "remote_key": "u1", **desired}
    values = {k: v for k, v in values.items() if v is not ABSENT}
    return Action("u1", Kind.PERSON, Op.CREATE, None, values, {}, "new", "anna", values)


@pytest.mark.parametrize("value", [None, "", [], ()], ids=["null", "blank", "list", "tuple"])
def test_empty_is_absent_null_blank_or_an_empty_list(value: Any) -> None:
    assert empty(value)
    assert empty({}.get("missing"))  # absent


@pytest.mark.parametrize("value", ["0", 0, False, ["x"], " "])
def test_a_value_is_not_empty(value: Any) -> None:
    assert not empty(value)


@pytest.mark.parametrize("form", EMPTY_FORMS, ids=["absent", "null", "blank", "list"])
def test_first_match_keeps_what_entra_has_no_value_for(form: Any) -> None:
    a = person_create(telefon=form, abteilung=form, position="Pflegefachfrau", email=None)
    w = matched(a, ELIZA_PERSON, MatchedBy.SOFT_EMAIL, {})
    assert w.body == {"position": "Pflegefachfrau", "remote_key": "u1"}
    assert w.action.op == Op.MATCH
    assert w.action.changes["position"] == ("Praktikantin", "Pflegefachfrau")
    expected_kept = {"email": "anna.muster@firma.ch"}
    if form is not ABSENT:
        expected_kept |= {"telefon": "+41 31 555 00 00", "abteilung": "Pflege"}
    assert w.action.kept == expected_kept
    linked = w.linked(40, 3, NOW)
    assert linked.kept == expected_kept
    assert linked.pushed["email"] == "anna.muster@firma.ch"  # what ELIZA holds
    marks = action_json(w.action, "ok", 40)["adoption"]
    assert marks["position"] == "overwritten"
    assert marks["email"] == "kept"


def test_first_match_writes_what_entra_has_and_an_empty_eliza_value_is_nothing_kept() -> None:
    target = {**ELIZA_PERSON, "telefon": "", "abteilung": None}
    a = person_create(telefon=None, abteilung="Pflege", position="Praktikantin")
    w = matched(a, target, MatchedBy.HARD, {})
    assert w.body == {"remote_key": "u1", "abteilung": "Pflege"}
    assert w.action.kept == {}
    assert "abteilung" not in action_json(w.action, "ok", 40)["adoption"]  # ELIZA had none
    assert "telefon" not in w.action.changes  # "" -> null is no change


def kept_link(**pushed: Any) -> Link:
    base = {
        "vorname": "Anna",
        "nachname": "Muster",
        "email": "anna.muster@firma.ch",
        "telefon": "+41 31 555 00 00",
        "position": "Pflegefachfrau",
        "abteilung": "Pflege",
        "eintrittsdatum": "2024-04-01",
        "remote_key": "u1",
    }
    kept = {"telefon": "+41 31 555 00 00", "abteilung": "Pflege"}
    return Link("u1", Kind.PERSON, 40, MatchedBy.SOFT_EMAIL, NOW, {**base, **pushed}, 2, kept=kept)


def person_action(links: dict[Kind, Link], **data: Any) -> Action | None:
    values = {k: v for k, v in user(**data).items() if v is not ABSENT}
    o = MirrorObject("u1", values, None, 3, 0)
    actions = [
        a for a in plan_object(o, links, ctx(skip_users=True)).actions if a.kind == Kind.PERSON
    ]
    return actions[0] if actions else None


@pytest.mark.parametrize("form", [ABSENT, None, ""], ids=["absent", "null", "blank"])
def test_a_kept_field_stays_while_entra_has_none(form: Any) -> None:
    links = {Kind.PERSON: kept_link()}
    assert (
        person_action(links, jobTitle="Pflegefachfrau", mobilePhone=form, department=form) is None
    )


def test_a_kept_field_is_written_once_entra_has_a_value_then_clears_like_any_other() -> None:
    lk = kept_link()
    a = person_action({Kind.PERSON: lk}, mobilePhone="+41 79 000 00 00", department=None)
    assert a is not None and a.fields == {"telefon": "+41 79 000 00 00"}
    assert a.changes["telefon"] == ("+41 31 555 00 00", "+41 79 000 00 00")
    after = changed(a, lk, None, {}).relinked(lk, 3)
    assert after.kept == {"abteilung": "Pflege"}  # telefon is Entra's now
    cleared = person_action({Kind.PERSON: after}, mobilePhone=None, department=None)
    assert cleared is not None and cleared.fields == {"telefon": None}  # a change, not adoption


def test_verify_target_keeps_a_kept_field_at_elizas_current_value() -> None:
    seen = kept_link(telefon="+41 31 555 99 99")  # changed in ELIZA by hand
    assert person_action({Kind.PERSON: seen}, mobilePhone=None, department=None) is None
    assert keep_adopted({"telefon": None, "x": None}, seen.kept, seen.pushed) == {
        "telefon": "+41 31 555 99 99",
        "x": None,
    }


@pytest.mark.parametrize(("old", "new"), [(None, None), (None, ""), ("", []), ("a", "a")])
def test_equal_or_both_empty_is_no_change(old: Any, new: Any) -> None:
    assert diff({"telefon": new}, {"telefon": old}) == {}
    assert diff({"telefon": new}, {}) == ({} if empty(new) else {"telefon": (None, new)})


def test_a_create_shows_no_empty_values() -> None:
    w = created(person_create(telefon=None, abteilung="", position="P"), {})
    assert set(w.action.changes) == {"vorname", "nachname", "remote_key", "position"}


def test_a_dry_runs_stand_in_ids_read_as_the_new_object() -> None:
    shown = changes_json({"user": (None, -133), "mitarbeiter": (None, -7), "vorgesetzter": (4, 5)})
    assert shown == {
        "user": [None, "(new user)"],
        "mitarbeiter": [None, "(the new person)"],
        "vorgesetzter": [4, 5],
    }


def test_a_colliding_field_is_held_back_and_keeps_its_old_pushed_value() -> None:
    lk = Link("u1", Kind.USER, 7, MatchedBy.CREATED, NOW, {"username": "a@x", "first_name": "A"}, 1)
    a = Action(
        "u1",
        Kind.USER,
        Op.UPDATE,
        7,
        {"username": "b@x", "first_name": "B"},
        {"username": ("a@x", "b@x"), "first_name": ("A", "B")},
        "changed in Entra",
        "b@x",
        {"username": "b@x", "first_name": "B"},
    )
    w = held_back(changed(a, lk, None, {}), ["username"], lk)
    assert w.body == {"first_name": "B"}
    assert set(w.action.changes) == {"first_name"}
    assert w.pushed == {"username": "a@x", "first_name": "B"}


def test_the_report_counts_adoption_and_the_users_left_out_of_scope() -> None:
    w = matched(
        person_create(telefon=None, abteilung=None, position="P"), ELIZA_PERSON, MatchedBy.HARD, {}
    )
    report = RunReport("sync", dry_run=True, out_of_scope={"disabled": 3, "user_filter": 7})
    report.actions.append(action_json(w.action, "planned", 40))
    assert report.adoption() == {"objects": 1, "overwritten": 1, "kept": 2}
    assert report.summary_lines() == [
        "would adopt 1 existing ELIZA object: 1 value overwritten, 2 kept because Entra has none",
        "10 Entra users out of scope, left alone (disabled: 3, user_filter: 7)",
    ]
    assert report.as_dict()["out_of_scope"] == {"disabled": 3, "user_filter": 7}


def test_the_human_report_marks_overwritten_and_kept_values_and_prints_the_summary() -> None:
    from rich.console import Console

    from deltasync.cli.render import render_report

    w = matched(
        person_create(telefon=None, abteilung=None, position="P"), ELIZA_PERSON, MatchedBy.HARD, {}
    )
    report = RunReport("sync", dry_run=True, out_of_scope={"disabled": 1})
    report.actions.append(action_json(w.action, "planned", 40))
    console = Console(record=True, width=200)
    render_report(report, console=console)
    text = console.export_text()
    assert "position: 'Praktikantin' → 'P'  (overwritten)" in text
    assert "telefon: '+41 31 555 00 00' kept (Entra has none)" in text
    assert "would adopt 1 existing ELIZA object: 1 value overwritten, 2 kept" in text
    assert "1 Entra user out of scope, left alone (disabled: 1)" in text
