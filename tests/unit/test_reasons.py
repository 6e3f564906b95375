"""plan.reasons: each update says why it is planned."""

from __future__ import annotations

from deltasync.plan.reasons import update_reason


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
