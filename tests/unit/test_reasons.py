"""plan.reasons: each update says why it is planned; no internal code reaches people."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from deltasync.models import Kind, Link, MatchedBy, MirrorObject, Removed
from deltasync.plan.groups import GroupSettings, group_status, plan_group
from deltasync.plan.reasons import matched_words, removed_words, update_reason
from deltasync.plan.scope import Scope, scope_status


def test_a_newer_mirror_is_an_entra_change() -> None:
    assert (
        update_reason({"position"}, entra_changed=True, mapping_changed=True, drifted=set())
        == "changed in Entra"
    )


def test_an_unchanged_mirror_under_a_new_mapping_is_a_mapping_change() -> None:
    assert (
        update_reason({"position"}, entra_changed=False, mapping_changed=True, drifted=set())
        == "mapping changed"
    )


def test_a_field_changed_in_eliza_by_hand_is_a_drift_repair() -> None:
    assert (
        update_reason({"telefon"}, entra_changed=False, mapping_changed=False, drifted={"telefon"})
        == "drift repair"
    )
    both = update_reason(
        {"telefon", "position"}, entra_changed=True, mapping_changed=False, drifted={"telefon"}
    )
    assert both == "changed in Entra; drift repair"


CODE = re.compile(r"\b[a-z_]+:[a-z_+]+\b")  # removed:changed, soft:email+proxy


@pytest.mark.parametrize("removed", list(Removed))
def test_a_removed_object_is_said_in_words(removed: Removed) -> None:
    user = MirrorObject("u1", {"id": "u1", "userPrincipalName": "a@firma.ch"}, removed, 2, 1)
    status, _ = scope_status(user, Scope())
    group = MirrorObject("g1", {"id": "g1", "displayName": "Kader"}, removed, 2, 1)
    retiring = plan_group(group, glink(), GroupSettings()).actions
    texts = [status, group_status(group, GroupSettings()), *(a.reason for a in retiring)]
    assert all("Entra" in t and not CODE.search(t) for t in texts), texts
    assert len({removed_words(r) for r in Removed}) == len(Removed)


@pytest.mark.parametrize("matched_by", [*list(MatchedBy), "name"])
def test_how_a_link_was_matched_is_said_in_words(matched_by: str) -> None:
    words = matched_words(matched_by)
    assert not CODE.search(words) and "(" not in words, words


def glink() -> Link:
    pushed = {"name": "Kader", "description": "", "remote_key": "g1"}
    return Link("g1", Kind.GROUP, 7, MatchedBy.CREATED, datetime(2026, 1, 1, tzinfo=UTC), pushed, 1)
