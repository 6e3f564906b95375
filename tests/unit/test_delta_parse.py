"""Parsing of Graph delta pages: fixtures shaped like the documented /users/delta examples."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from deltasync.errors import BadPayloadError
from deltasync.graph.delta import fingerprint, parse_page, select_for, short_url
from deltasync.models import ObjectChange, Removed

FIXTURES = Path(__file__).parent.parent / "fixtures" / "graph"
PAGE_URL = "https://graph.microsoft.com/v1.0/users/delta?$skiptoken=" + "s" * 8000
NEXT = "https://graph.microsoft.com/v1.0/users/delta?$skiptoken=abc"
DELTA = "https://graph.microsoft.com/v1.0/users/delta?$deltatoken=xyz"


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def by_id(changes: tuple[ObjectChange, ...]) -> dict[str, ObjectChange]:
    return {change.id: change for change in changes}


def test_initial_page_keeps_every_property_and_the_next_link() -> None:
    raw = load("users_delta_initial_page.json")

    page = parse_page(raw, PAGE_URL)

    assert page.next_link == raw["@odata.nextLink"]
    assert page.delta_link is None
    assert [c.id for c in page.changes] == [e["id"] for e in raw["value"]]
    adele = page.changes[0]
    assert adele.removed is None
    assert adele.props == raw["value"][0]  # no annotation on it: every key, id included
    alex = page.changes[1]
    assert alex.props["manager"] == "22e6b7b8-aa7e-4b68-8ef4-fbb1bf2fbc46"
    assert "manager@delta" not in alex.props
    assert alex.props["businessPhones"] == []


def test_removed_entry_in_initial_round_is_reported() -> None:
    page = parse_page(load("users_delta_initial_page.json"), PAGE_URL)

    gone = page.changes[2]
    assert gone.removed is Removed.DELETED
    assert gone.props == {"id": "8ffff70c-1c53-4e6b-8a0e-0e1d51d4e7a3"}


def test_last_page_carries_the_delta_link() -> None:
    raw = load("users_delta_last_page.json")

    page = parse_page(raw, PAGE_URL)

    assert page.delta_link == raw["@odata.deltaLink"]
    assert page.next_link is None
    assert page.changes[0].props["accountEnabled"] is False


def test_minimal_page_keeps_explicit_null_and_omits_absent_keys() -> None:
    page = parse_page(load("users_delta_minimal_incremental.json"), PAGE_URL)

    (change,) = page.changes
    assert change.props == {
        "id": "22e6b7b8-aa7e-4b68-8ef4-fbb1bf2fbc46",
        "jobTitle": None,
        "mobilePhone": "+41 79 555 01 01",
    }
    assert "jobTitle" in change.props  # cleared, not unchanged
    assert "department" not in change.props  # unchanged


def test_removed_reasons_map_to_soft_and_hard_delete() -> None:
    page = parse_page(load("users_delta_removed.json"), PAGE_URL)

    changes = by_id(page.changes)
    assert changes["a45e9d22-6f0e-4b8a-9d1e-2c3f4b5a6d7e"].removed is Removed.CHANGED
    assert changes["8ffff70c-1c53-4e6b-8a0e-0e1d51d4e7a3"].removed is Removed.DELETED
    for change in page.changes:
        assert change.props == {"id": change.id}  # @odata.type and @removed are annotations


def test_manager_delta_becomes_the_manager_id_or_none() -> None:
    page = parse_page(load("users_delta_manager.json"), PAGE_URL)

    managers = {c.id: c.props["manager"] for c in page.changes}
    assert managers == {
        "a45e9d22-6f0e-4b8a-9d1e-2c3f4b5a6d7e": "87d349ed-44d7-43e1-9a83-5f2406dee5bd",  # added
        "87d349ed-44d7-43e1-9a83-5f2406dee5bd": None,  # removed
        "22e6b7b8-aa7e-4b68-8ef4-fbb1bf2fbc46": None,  # empty list
        "c1f0e6a3-9b7d-4e2f-8a51-3d6c7b8e9f01": "87d349ed-44d7-43e1-9a83-5f2406dee5bd",  # replaced
    }
    assert all("manager@delta" not in c.props for c in page.changes)


def test_manager_is_the_last_entry_not_removed_whatever_the_order() -> None:
    raw = {
        "@odata.deltaLink": DELTA,
        "value": [
            {
                "id": "u1",
                "manager@delta": [{"id": "new"}, {"id": "old", "@removed": {"reason": "deleted"}}],
            }
        ],
    }

    assert parse_page(raw, PAGE_URL).changes[0].props["manager"] == "new"


def test_manager_not_selected_means_no_manager_key() -> None:
    page = parse_page(load("users_delta_last_page.json"), PAGE_URL)

    assert "manager" not in page.changes[0].props


def test_empty_page_with_next_link_means_the_round_goes_on() -> None:
    raw = load("users_delta_empty_next.json")

    page = parse_page(raw, PAGE_URL)

    assert page.changes == ()
    assert page.next_link == raw["@odata.nextLink"]
    assert page.delta_link is None


def test_every_annotation_is_dropped_from_props() -> None:
    raw = {
        "@odata.nextLink": NEXT,
        "value": [
            {
                "@odata.type": "#microsoft.graph.user",
                "@odata.etag": 'W/"1"',
                "id": "u1",
                "displayName": "A",
                "members@delta": [{"id": "x"}],
                "businessPhones@odata.type": "#Collection(String)",
            }
        ],
    }

    assert parse_page(raw, PAGE_URL).changes[0].props == {"id": "u1", "displayName": "A"}


def test_same_object_twice_on_a_page_is_kept_in_order() -> None:
    raw = {
        "@odata.nextLink": NEXT,
        "value": [{"id": "u1", "jobTitle": "a"}, {"id": "u1", "jobTitle": "b"}],
    }

    changes = parse_page(raw, PAGE_URL).changes

    assert [c.props["jobTitle"] for c in changes] == ["a", "b"]


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        pytest.param([], "expected a JSON object, found a list", id="not-an-object"),
        pytest.param("<html>", "expected a JSON object, found a string", id="a-string"),
        pytest.param(None, "expected a JSON object, found null", id="null"),
        pytest.param({"@odata.nextLink": NEXT}, "no 'value' key", id="value-missing"),
        pytest.param(
            {"@odata.nextLink": NEXT, "value": {"id": "u1"}},
            "'value' is an object",
            id="value-not-a-list",
        ),
        pytest.param({"@odata.nextLink": NEXT, "value": None}, "'value' is null", id="value-null"),
        pytest.param(
            {"@odata.nextLink": NEXT, "@odata.deltaLink": DELTA, "value": []},
            "carries both",
            id="both-links",
        ),
        pytest.param({"value": []}, "carries neither", id="no-link"),
        pytest.param(
            {"@odata.nextLink": None, "value": []},
            "'@odata.nextLink' must be a non-empty string, found null",
            id="null-link",
        ),
        pytest.param(
            {"@odata.deltaLink": "", "value": []},
            "'@odata.deltaLink' must be a non-empty string",
            id="empty-link",
        ),
        pytest.param(
            {"@odata.nextLink": NEXT, "value": [{"id": "u1"}, "u2"]},
            "value[1]: expected an object, found a string",
            id="entry-not-an-object",
        ),
        pytest.param(
            {"@odata.nextLink": NEXT, "value": [{"displayName": "A"}]},
            "value[0]: expected a string 'id', found null",
            id="entry-without-id",
        ),
        pytest.param(
            {"@odata.nextLink": NEXT, "value": [{"id": 42}]},
            "value[0]: expected a string 'id', found a number",
            id="entry-with-numeric-id",
        ),
        pytest.param(
            {"@odata.nextLink": NEXT, "value": [{"id": ""}]},
            "value[0]: expected a string 'id', found an empty string",
            id="entry-with-empty-id",
        ),
        pytest.param(
            {"@odata.nextLink": NEXT, "value": [{"id": "u1", "@removed": {"reason": "gone"}}]},
            "value[0] (id u1): '@removed' must be an object with reason 'changed' or 'deleted'",
            id="unknown-removed-reason",
        ),
        pytest.param(
            {"@odata.nextLink": NEXT, "value": [{"id": "u1", "@removed": "deleted"}]},
            "'@removed' must be an object",
            id="removed-not-an-object",
        ),
        pytest.param(
            {"@odata.nextLink": NEXT, "value": [{"id": "u1", "@removed": {}}]},
            "'@removed' must be an object with reason",
            id="removed-without-reason",
        ),
        pytest.param(
            {"@odata.nextLink": NEXT, "value": [{"id": "u1", "manager@delta": {"id": "m"}}]},
            "'manager@delta' must be a list, found an object",
            id="manager-delta-not-a-list",
        ),
        pytest.param(
            {"@odata.nextLink": NEXT, "value": [{"id": "u1", "manager@delta": [{"x": 1}]}]},
            "manager@delta[0]: expected a string 'id', found null",
            id="manager-entry-without-id",
        ),
        pytest.param(
            {"@odata.nextLink": NEXT, "value": [{"id": "u1", "manager@delta": ["m"]}]},
            "manager@delta[0]: expected an object, found a string",
            id="manager-entry-not-an-object",
        ),
    ],
)
def test_malformed_page_raises_bad_payload_naming_the_page(raw: Any, problem: str) -> None:
    with pytest.raises(BadPayloadError) as caught:
        parse_page(raw, PAGE_URL)

    message = str(caught.value)
    assert problem in message
    assert message.startswith("Graph delta page https://graph.microsoft.com/v1.0/users/delta?")
    assert "$skiptoken=ssssssss…(8000 chars)" in message
    assert len(message) < 500  # the 8,000-char token is not repeated


def test_short_url_cuts_skip_and_delta_tokens_only() -> None:
    url = (
        "https://graph.microsoft.com/v1.0/users/delta?$select=id,mail&$deltatoken="
        + "d" * 4000
        + "&%24skiptoken="
        + "k" * 100
    )

    short = short_url(url)

    assert short == (
        "https://graph.microsoft.com/v1.0/users/delta?$select=id,mail"
        "&$deltatoken=dddddddd…(4000 chars)&%24skiptoken=kkkkkkkk…(100 chars)"
    )


def test_short_url_keeps_short_tokens_and_caps_other_long_urls() -> None:
    assert short_url(DELTA) == DELTA
    long_select = "https://graph.microsoft.com/v1.0/users/delta?$select=" + "a," * 500
    assert len(short_url(long_select)) < 330


def test_select_for_puts_id_first_then_sorted_without_repeats() -> None:
    assert select_for(["mail", "surname", "id", "mail", "accountEnabled"]) == [
        "id",
        "accountEnabled",
        "mail",
        "surname",
    ]
    assert select_for([]) == ["id"]


def test_fingerprint_is_stable_and_ignores_order_and_repeats() -> None:
    one = fingerprint(["id", "mail", "surname"])

    assert one == fingerprint(["surname", "mail", "mail"])
    assert one == fingerprint(select_for(["surname", "mail"]))
    assert one != fingerprint(["id", "mail", "surname", "manager"])
    # stable across processes and releases: a stored fingerprint must keep matching
    assert one == "759f502dc37d4bd9"
