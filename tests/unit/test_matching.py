"""Matching on first sight: hard, soft, the switches, and every conflict case."""

from __future__ import annotations

from typing import Any

from deltasync.matching import MatchSettings, decide_person, decide_user, soft_keys

ON = MatchSettings()


def eliza_user(uid: int, **fields: Any) -> dict[str, Any]:
    return {
        "id": uid,
        "username": f"user{uid}",
        "email": None,
        "remote_key": None,
        "is_superuser": False,
        "groups": [1],
        **fields,
    }


def test_hard_match_on_remote_key() -> None:
    m = decide_user("e1", [eliza_user(5, remote_key="e1")], {}, ON, {})
    assert (m.outcome, m.matched_by) == ("match", "hard")


def test_hard_match_switched_off_is_a_conflict_unless_the_create_was_ours() -> None:
    off = MatchSettings(hard_match=False)
    assert decide_user("e1", [eliza_user(5, remote_key="e1")], {}, off, {}).outcome == "conflict"
    own = decide_user("e1", [eliza_user(5, remote_key="e1")], {}, off, {}, own_create_pending=True)
    assert (own.outcome, own.matched_by) == ("match", "created")


def test_soft_match_by_username_email_or_proxy() -> None:
    u = eliza_user(7)
    for attribute in ("username", "email", "proxy"):
        m = decide_user("e1", [], {attribute: [u]}, ON, {})
        assert (m.outcome, m.matched_by) == ("match", f"soft:{attribute}")
    both = decide_user("e1", [], {"username": [u], "email": [u]}, ON, {})
    assert both.matched_by == "soft:username+email"


def test_soft_match_switched_off_creates() -> None:
    m = decide_user("e1", [], {"username": [eliza_user(7)]}, MatchSettings(soft_match=False), {})
    assert m.outcome == "create"


def test_two_candidates_are_a_conflict_never_the_first() -> None:
    m = decide_user("e1", [], {"username": [eliza_user(7)], "email": [eliza_user(8)]}, ON, {})
    assert m.outcome == "conflict"
    assert "#7" in (m.reason or "") and "#8" in (m.reason or "")
    assert {c["id"] for c in m.candidates} == {7, 8}
    assert (
        decide_user(
            "e1", [eliza_user(1, remote_key="e1"), eliza_user(2, remote_key="e1")], {}, ON, {}
        ).outcome
        == "conflict"
    )


def test_superuser_and_protected_group_are_never_matched() -> None:
    admin = eliza_user(3, is_superuser=True)
    assert decide_user("e1", [], {"email": [admin]}, ON, {}).outcome == "conflict"
    assert decide_user("e1", [dict(admin, remote_key="e1")], {}, ON, {}).outcome == "conflict"
    guarded = eliza_user(4, groups=[1, 42])
    settings = MatchSettings(protected_groups=frozenset({42}))
    m = decide_user("e1", [], {"username": [guarded]}, settings, {})
    assert m.outcome == "conflict" and "protected group 42" in (m.reason or "")


def test_candidate_holding_another_key_or_link_is_a_conflict() -> None:
    taken = eliza_user(9, remote_key="someone-else")
    assert decide_user("e1", [], {"username": [taken]}, ON, {}).outcome == "conflict"
    assert decide_user("e1", [], {"username": [eliza_user(9)]}, ON, {9: "e2"}).outcome == "conflict"


def test_no_candidate_creates() -> None:
    assert decide_user("e1", [], {}, ON, {}).outcome == "create"


def test_soft_keys_use_primary_smtp_case_insensitively() -> None:
    keys = soft_keys(
        {
            "userPrincipalName": "Anna.Muster@Firma.ch",
            "mail": None,
            "proxyAddresses": ["smtp:alias@firma.ch", "SMTP:Anna@Firma.ch"],
        }
    )
    assert keys == {"username": "anna.muster@firma.ch", "proxy": "anna@firma.ch"}


def test_person_matched_by_key_then_user_then_email() -> None:
    p = {"id": 20, "remote_key": None}
    assert decide_person("e1", [dict(p, remote_key="e1")], [], [], ON, {}).matched_by == "hard"
    assert decide_person("e1", [], [p], [], ON, {}).matched_by == "user"
    assert decide_person("e1", [], [], [p], ON, {}).matched_by == "soft:email"
    assert decide_person("e1", [], [], [p, dict(p, id=21)], ON, {}).outcome == "conflict"
    assert decide_person("e1", [], [], [dict(p, remote_key="x")], ON, {}).outcome == "conflict"
    assert decide_person("e1", [], [], [p], MatchSettings(soft_match=False), {}).outcome == "create"


def test_person_found_by_email_but_tied_to_another_account_is_a_conflict() -> None:
    p = {"id": 20, "remote_key": None, "user": 99}
    m = decide_person("e1", [], [], [p], ON, {}, user_id=5)
    assert m.outcome == "conflict"
    assert "#99" in (m.reason or "")
    assert decide_person("e1", [], [], [p], ON, {}, user_id=99).outcome == "match"
