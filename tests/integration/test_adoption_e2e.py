"""Adoption without loss, end to end: only values Entra has overwrite an adopted ELIZA object."""

from __future__ import annotations

from typing import Any

import pytest
from e2e_helpers import eliza_person_of, eliza_user_of, pick, sync, writes

from deltasync import service
from deltasync.cli import run_cli
from deltasync.config import Config
from deltasync.matching import RECOMMENDATION
from deltasync.sandbox.server import Sandbox

pytestmark = pytest.mark.sandbox(users=20, seed=12, page_size=10)


def seed_existing(sandbox: Sandbox, entra: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """An ELIZA that already holds this person: a user with the UPN and a filled-in person."""
    user = sandbox.eliza.add_user(
        username=entra["userPrincipalName"],
        first_name="Alt",
        last_name="Name",
        email=None,
        is_active=True,
        groups=[1],
    )
    person = sandbox.eliza.add_person(
        vorname="Alt",
        nachname="Name",
        user=user["id"],
        telefon="+41 31 555 00 00",
        abteilung="Pflege",
        position="Praktikantin",
    )
    # Entra has only a job title of the three
    sandbox.graph.update_user(entra["id"], mobilePhone=None, department=None, jobTitle="Leitung")
    return user, person


def state_user_text(sandbox: Sandbox, query: str, capsys: pytest.CaptureFixture[str]) -> str:
    """What ``state user QUERY`` prints for people."""
    capsys.readouterr()
    assert run_cli(["state", "user", query, "-c", str(sandbox.config_path)]) == 0
    return capsys.readouterr().out


def test_adoption_keeps_what_entra_has_none_for_and_the_next_run_writes_nothing(
    sandbox: Sandbox, config: Config, capsys: pytest.CaptureFixture[str]
) -> None:
    (entra,) = pick(sandbox)
    _, seeded = seed_existing(sandbox, entra)
    report = sync(config)
    assert report.exit_code == 0, report.as_dict()
    (person,) = eliza_person_of(sandbox, entra["id"])
    assert person["id"] == seeded["id"]
    assert (person["telefon"], person["abteilung"]) == ("+41 31 555 00 00", "Pflege")
    assert person["position"] == "Leitung"
    assert person["vorname"] == entra["givenName"]
    (found,) = service.state_user(config, entra["id"])
    assert found["links"]["person"]["kept"] == {
        "telefon": "+41 31 555 00 00",
        "abteilung": "Pflege",
    }
    sandbox.eliza.reset_log()
    again = sync(config)
    assert again.exit_code == 0
    assert writes(sandbox) == []
    shown = state_user_text(sandbox, entra["id"], capsys)
    assert "telefon = '+41 31 555 00 00'  (kept from ELIZA: Entra has none;" in shown
    assert "abteilung = 'Pflege'  (kept from ELIZA: Entra has none;" in shown
    assert "position = 'Leitung'  (kept" not in shown
    assert shown.count("telefon = ") == 1
    # an unrelated change in Entra still leaves the kept values alone
    sandbox.graph.update_user(entra["id"], surname="Neu")
    sync(config)
    (person,) = eliza_person_of(sandbox, entra["id"])
    assert (person["nachname"], person["telefon"], person["abteilung"]) == (
        "Neu",
        "+41 31 555 00 00",
        "Pflege",
    )
    # once Entra has a value it is written; cleared afterwards, it clears (a change)
    sandbox.graph.update_user(entra["id"], mobilePhone="+41 79 000 00 00")
    sync(config)
    assert eliza_person_of(sandbox, entra["id"])[0]["telefon"] == "+41 79 000 00 00"
    sandbox.graph.update_user(entra["id"], mobilePhone=None)
    sync(config)
    (person,) = eliza_person_of(sandbox, entra["id"])
    assert (person["telefon"], person["abteilung"]) == (None, "Pflege")


def test_verify_target_respects_kept_values(sandbox: Sandbox, config: Config) -> None:
    (entra,) = pick(sandbox)
    seed_existing(sandbox, entra)
    assert sync(config).exit_code == 0
    report = sync(config, command="resync", full=True, verify_target=True)
    assert report.exit_code == 0, report.as_dict()
    (person,) = eliza_person_of(sandbox, entra["id"])
    assert (person["telefon"], person["abteilung"]) == ("+41 31 555 00 00", "Pflege")


def test_the_dry_run_shows_what_adoption_overwrites_and_keeps(
    sandbox: Sandbox, config: Config
) -> None:
    (entra,) = pick(sandbox)
    seed_existing(sandbox, entra)
    report = sync(config, dry_run=True)
    mine = [a for a in report.actions if a["entra_id"] == entra["id"]]
    (person,) = [a for a in mine if a["kind"] == "person"]
    assert person["op"] == "match"
    assert person["adoption"]["position"] == "overwritten"
    assert person["changes"]["position"] == ["Praktikantin", "Leitung"]
    assert person["adoption"]["telefon"] == person["adoption"]["abteilung"] == "kept"
    assert person["kept"] == {"telefon": "+41 31 555 00 00", "abteilung": "Pflege"}
    assert "telefon" not in person["changes"]
    adopted = report.adoption()
    assert adopted["objects"] == 2  # the user and the person
    assert adopted["kept"] >= 2
    (line,) = [s for s in report.summary_lines() if s.startswith("would adopt 2 existing")]
    assert "kept because Entra has none" in line
    for a in report.actions:  # no empty changes, no stand-in ids
        for old, new in a["changes"].values():
            assert not (old in (None, "", []) and new in (None, "", [])), a
            assert not (isinstance(new, int) and new < 0), a


def test_a_colliding_upn_change_is_a_conflict_naming_both_sides_and_the_rest_updates(
    sandbox: Sandbox, config: Config
) -> None:
    (entra,) = pick(sandbox)
    assert sync(config).exit_code == 0
    other = sandbox.eliza.add_user(
        username="taken@firma.ch", first_name="T", last_name="T", email=None, is_active=True
    )
    (mine,) = eliza_user_of(sandbox, entra["id"])
    sandbox.graph.update_user(entra["id"], userPrincipalName="taken@firma.ch", givenName="Neu")
    report = sync(config)
    assert report.exit_code == 3
    (conflict,) = report.conflicts
    assert conflict["entra_id"] == entra["id"]
    assert conflict["held_by"] == [
        {"field": "username", "eliza_id": other["id"], "username": "taken@firma.ch"}
    ]
    assert f"#{other['id']}" in conflict["message"] and entra["id"] in conflict["message"]
    (user,) = eliza_user_of(sandbox, entra["id"])
    assert user["id"] == mine["id"]
    assert user["username"] == mine["username"]  # not taken over
    assert user["first_name"] == "Neu"  # the other field went through
    assert sandbox.eliza.users[other["id"]]["remote_key"] is None
    # the next runs retry the colliding field (still a conflict, still not taken over) ...
    retry = sync(config, retry_failed=True)
    assert [c["entra_id"] for c in retry.conflicts] == [entra["id"]]
    assert eliza_user_of(sandbox, entra["id"])[0]["username"] == mine["username"]
    # ... and a free UPN goes through and clears the conflict
    sandbox.graph.update_user(entra["id"], userPrincipalName="free@firma.ch")
    assert sync(config, retry_failed=True).exit_code == 0
    assert eliza_user_of(sandbox, entra["id"])[0]["username"] == "free@firma.ch"
    assert not [f for f in service.state_failures(config) if f["entra_id"] == entra["id"]]


def test_the_soft_match_recommendation_appears_once(sandbox: Sandbox, config: Config) -> None:
    (entra,) = pick(sandbox)
    seed_existing(sandbox, entra)
    assert service.soft_match_advice(config) is None  # nothing synced yet
    first = sync(config)
    assert first.warnings.count(RECOMMENDATION) == 1
    assert service.soft_match_advice(config) == RECOMMENDATION  # what check says
    assert service.state_summary(config)["hints"] == [RECOMMENDATION]
    sandbox.graph.update_user(entra["id"], surname="Neu")
    second = sync(config)
    assert second.actions and RECOMMENDATION not in second.warnings
