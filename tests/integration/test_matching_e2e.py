"""Matching, ownership and safe deprovisioning against an ELIZA that already holds people."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from e2e_helpers import eliza_person_of, eliza_user_of, in_scope, pick, sync, writes

from deltasync import service
from deltasync.config import Config
from deltasync.errors import ConfigError
from deltasync.mapping import compile_expr
from deltasync.sandbox.server import Sandbox

TODAY = datetime.now(ZoneInfo("Europe/Zurich")).date().isoformat()


pytestmark = pytest.mark.sandbox(users=30, seed=5, page_size=12)


def tweak(config: Config, section: str, **changes: Any) -> Config:
    return dataclasses.replace(
        config, **{section: dataclasses.replace(getattr(config, section), **changes)}
    )


def hand_made(sandbox: Sandbox, **fields: Any) -> dict[str, Any]:
    base = {
        "username": "hand.made",
        "first_name": "Hand",
        "last_name": "Made",
        "email": None,
        "is_active": True,
        "groups": [1],
    }
    return sandbox.eliza.add_user(**{**base, **fields})


def link_of(config: Config, entra_id: str) -> dict[str, Any]:
    (found,) = service.state_user(config, entra_id)
    links: dict[str, Any] = found["links"]
    return links


# ------------------------------------------------------------------ matching
def test_soft_match_on_username_adopts_the_account_and_writes_remote_key(
    sandbox: Sandbox, config: Config
) -> None:
    (entra,) = pick(sandbox)
    existing = hand_made(
        sandbox, username=entra["userPrincipalName"].upper(), email=None, groups=[1, 7]
    )
    report = sync(config)
    assert report.exit_code == 0, report.as_dict()
    (user,) = eliza_user_of(sandbox, entra["id"])
    assert user["id"] == existing["id"]
    assert user["username"] == entra["userPrincipalName"]  # Entra's exact spelling
    assert user["groups"] == [1, 7]
    assert link_of(config, entra["id"])["user"]["matched_by"] == "soft:username"
    assert not [
        w
        for w in writes(sandbox)
        if w.method == "POST" and w.path == "/api/user" and w.json.get("remote_key") == entra["id"]
    ]
    (found,) = service.state_user(config, entra["id"])
    user_history = [h["action"] for h in found["history"] if h["kind"] == "user"]
    assert user_history == ["match"]


def test_soft_match_on_mail_and_on_primary_smtp_address(sandbox: Sandbox, config: Config) -> None:
    by_mail, by_proxy = [
        u
        for u in pick(sandbox, 10)
        if any(p.startswith("SMTP:") for p in u.get("proxyAddresses") or ())
    ][:2]
    hand_made(sandbox, username="legacy1", email=by_mail["mail"].upper())
    primary = next(p[5:] for p in by_proxy["proxyAddresses"] if p.startswith("SMTP:"))
    sandbox.graph.update_user(by_proxy["id"], mail=None)
    hand_made(sandbox, username="legacy2", email=primary)
    assert sync(config).exit_code == 0
    assert link_of(config, by_mail["id"])["user"]["matched_by"].startswith("soft:email")
    assert link_of(config, by_proxy["id"])["user"]["matched_by"] == "soft:proxy"


def test_after_a_soft_match_the_next_match_is_hard(sandbox: Sandbox, config: Config) -> None:
    (entra,) = pick(sandbox)
    hand_made(sandbox, username=entra["userPrincipalName"])
    sync(config)
    for name in ("deltasync.db", "deltasync.db-wal", "deltasync.db-shm"):  # the state is lost
        (sandbox.workdir / "state" / name).unlink(missing_ok=True)
    users, persons = len(sandbox.eliza.users), len(sandbox.eliza.persons)
    assert sync(config).exit_code == 0
    assert link_of(config, entra["id"])["user"]["matched_by"] == "hard"
    assert (len(sandbox.eliza.users), len(sandbox.eliza.persons)) == (users, persons)


def test_soft_match_off_never_adopts_and_reports_the_clash(
    sandbox: Sandbox, config: Config
) -> None:
    (entra,) = pick(sandbox)
    before = hand_made(sandbox, username=entra["userPrincipalName"])
    report = sync(tweak(config, "matching", soft_match=False))
    assert report.exit_code == 3
    assert sandbox.eliza.users[before["id"]] == before  # untouched
    (failure,) = [f for f in service.state_failures(config) if f["entra_id"] == entra["id"]]
    assert failure["detail"]["status"] == 409


def test_hard_match_off_refuses_an_account_holding_the_remote_key(
    sandbox: Sandbox, config: Config
) -> None:
    (entra,) = pick(sandbox)
    hand_made(sandbox, username="someone", remote_key=entra["id"])
    report = sync(tweak(config, "matching", hard_match=False))
    assert report.exit_code == 3
    assert [c["entra_id"] for c in report.conflicts] == [entra["id"]]
    assert eliza_person_of(sandbox, entra["id"]) == []


@pytest.mark.parametrize(
    "case", ["superuser", "protected_group", "two_candidates", "foreign_remote_key"]
)
def test_conflicts_give_the_entra_user_nothing_and_are_listed(
    sandbox: Sandbox, config: Config, case: str
) -> None:
    (entra,) = pick(sandbox)
    upn, mail = entra["userPrincipalName"], entra["mail"]
    if case == "superuser":
        hand_made(sandbox, username="admin2", email=mail, is_superuser=True)
    elif case == "protected_group":
        group = sandbox.eliza.add_customgroup("Geschäftsleitung")
        hand_made(sandbox, username=upn, groups=[1, group["id"]])
        config = tweak(config, "matching", protected_groups=(group["id"],))
    elif case == "two_candidates":
        hand_made(sandbox, username=upn)
        hand_made(sandbox, username="other", email=mail)
    else:
        hand_made(sandbox, username=upn, remote_key="another-entra-object")
    users_before = {k: dict(v) for k, v in sandbox.eliza.users.items()}
    report = sync(config)
    assert report.exit_code == 3
    assert [c["entra_id"] for c in report.conflicts] == [entra["id"]]
    assert eliza_person_of(sandbox, entra["id"]) == []
    assert [u for u in sandbox.eliza.users.values() if u.get("remote_key") == entra["id"]] == []
    for uid, before in users_before.items():
        assert sandbox.eliza.users[uid] == before
    (failure,) = service.state_failures(config)
    assert failure["category"] == "conflict"
    assert failure["detail"]["candidates"]  # both sides are shown
    others = [u for u in in_scope(sandbox) if u["id"] != entra["id"]]
    assert all(eliza_user_of(sandbox, u["id"]) for u in others)  # nothing else is blocked


def test_person_matching_by_remote_key_then_user_then_email(
    sandbox: Sandbox, config: Config
) -> None:
    a, b, c = pick(sandbox, 3)
    p_key = sandbox.eliza.add_person(vorname="A", nachname="A", remote_key=a["id"])
    user_b = hand_made(sandbox, username=b["userPrincipalName"])
    p_user = sandbox.eliza.add_person(vorname="B", nachname="B", user=user_b["id"])
    p_mail = sandbox.eliza.add_person(vorname="C", nachname="C", email=c["mail"])
    assert sync(config).exit_code == 0
    assert eliza_person_of(sandbox, a["id"])[0]["id"] == p_key["id"]
    assert eliza_person_of(sandbox, b["id"])[0]["id"] == p_user["id"]
    assert eliza_person_of(sandbox, c["id"])[0]["id"] == p_mail["id"]
    assert link_of(config, a["id"])["person"]["matched_by"] == "hard"
    assert link_of(config, b["id"])["person"]["matched_by"] == "user"
    assert link_of(config, c["id"])["person"]["matched_by"] == "soft:email"
    assert eliza_person_of(sandbox, c["id"])[0]["nachname"] == c["surname"]


# ------------------------------------------------------------------ ownership
def test_unlinked_accounts_sharing_names_are_never_changed_or_deactivated(
    sandbox: Sandbox, config: Config
) -> None:
    (entra,) = pick(sandbox)
    twin = hand_made(
        sandbox,
        username="namensvetter",
        first_name=entra["givenName"],
        last_name=entra["surname"],
        email="privat@example.ch",
    )
    sync(config)
    sandbox.graph.disable_user(entra["id"])
    sync(config)
    assert sandbox.eliza.users[twin["id"]] == twin
    assert eliza_user_of(sandbox, entra["id"])[0]["is_active"] is False


# ------------------------------------------------------------------ deprovisioning
def test_soft_delete_deactivates_and_restore_reactivates(sandbox: Sandbox, config: Config) -> None:
    (entra,) = pick(sandbox)
    sync(config)
    sandbox.graph.soft_delete(entra["id"])
    sync(config)
    assert eliza_user_of(sandbox, entra["id"])[0]["is_active"] is False
    sandbox.graph.restore(entra["id"])
    sync(config)
    assert eliza_user_of(sandbox, entra["id"])[0]["is_active"] is True
    assert eliza_person_of(sandbox, entra["id"])[0]["anstellungsart"] == "intern"


def test_on_delete_delete_deletes_only_on_permanent_removal(
    sandbox: Sandbox, config: Config
) -> None:
    soft, hard = pick(sandbox, 2)
    deleting = tweak(config, "deprovisioning", on_delete="delete")
    sync(deleting)
    sandbox.graph.soft_delete(soft["id"])
    sandbox.graph.hard_delete(hard["id"])
    sync(deleting)
    assert eliza_user_of(sandbox, soft["id"])[0]["is_active"] is False  # kept, archived
    assert eliza_user_of(sandbox, hard["id"]) == []
    assert eliza_person_of(sandbox, hard["id"]) == []


def test_previous_anstellungsart_comes_back_and_a_hand_set_leaving_date_stays(
    sandbox: Sandbox, config: Config
) -> None:
    a, b = pick(sandbox, 2)
    sync(config)
    pa, pb = eliza_person_of(sandbox, a["id"])[0], eliza_person_of(sandbox, b["id"])[0]
    # an HR admin marked A as external and set B's leaving date by hand
    _patch(sandbox, "organisation/mitarbeitende", pa["id"], {"anstellungsart": "extern"})
    _patch(sandbox, "organisation/mitarbeitende", pb["id"], {"austrittsdatum": "2026-12-31"})
    for u in (a, b):
        sandbox.graph.disable_user(u["id"])
    sync(config)
    pa, pb = eliza_person_of(sandbox, a["id"])[0], eliza_person_of(sandbox, b["id"])[0]
    assert (pa["anstellungsart"], pa["austrittsdatum"]) == ("ehemalig", TODAY)
    assert (pb["anstellungsart"], pb["austrittsdatum"]) == ("ehemalig", "2026-12-31")
    for u in (a, b):
        sandbox.graph.enable_user(u["id"])
    sync(config)
    pa, pb = eliza_person_of(sandbox, a["id"])[0], eliza_person_of(sandbox, b["id"])[0]
    assert (pa["anstellungsart"], pa["austrittsdatum"]) == ("extern", None)
    assert (pb["anstellungsart"], pb["austrittsdatum"]) == ("intern", "2026-12-31")


def _patch(sandbox: Sandbox, path: str, oid: int, body: dict[str, Any]) -> None:
    """A change made by hand in ELIZA, through its API."""
    import httpx

    token = sandbox.env["DELTASYNC_SANDBOX_API_TOKEN"]
    with httpx.Client(transport=httpx.MockTransport(sandbox.eliza.handle)) as client:
        r = client.patch(
            f"http://eliza.invalid/api/{path}/{oid}",
            json=body,
            headers={"Authorization": f"Token {token}"},
        )
        assert r.status_code == 200, r.text


def test_dry_run_shows_held_deactivations_without_writing(sandbox: Sandbox, config: Config) -> None:
    sync(config)
    strict = tweak(config, "deprovisioning", max_deactivations=1)
    for u in pick(sandbox, 3):
        sandbox.graph.disable_user(u["id"])
    sandbox.eliza.reset_log()
    report = sync(strict, dry_run=True)
    assert report.exit_code == 0
    assert len(report.held) == 3
    assert {a["result"] for a in report.actions} == {"held"}
    assert sandbox.eliza.write_count == 0


def test_verify_target_repairs_drift_made_by_hand(sandbox: Sandbox, config: Config) -> None:
    (entra,) = pick(sandbox)
    sync(config)
    (person,) = eliza_person_of(sandbox, entra["id"])
    _patch(sandbox, "organisation/mitarbeitende", person["id"], {"position": "von Hand"})
    assert sync(config).counts() == {}  # a normal run trusts what ELIZA accepted
    report = sync(config, command="resync", full=True, verify_target=True)
    assert report.counts() == {"person": {"update": 1}}
    assert eliza_person_of(sandbox, entra["id"])[0]["position"] == entra["jobTitle"]


# ------------------------------------------------------------------ org units
def test_orgunit_memberships_open_move_and_leave_hand_made_ones_alone(
    sandbox: Sandbox, config: Config
) -> None:
    mapping = sandbox.orgunit_mapping
    (entra,) = [u for u in pick(sandbox, 10) if u.get("companyName") in mapping][:1]
    sync(config, orgunit_sync=True)
    (person,) = eliza_person_of(sandbox, entra["id"])
    mine = [m for m in sandbox.eliza.memberships.values() if m["mitarbeiter"] == person["id"]]
    assert [(m["orgunit"], m["von"], m["bis"]) for m in mine] == [
        (mapping[entra["companyName"]], TODAY, None)
    ]
    other_unit = next(
        int(o["id"])
        for o in sandbox.eliza.orgunits.values()
        if int(o["id"]) not in mapping.values()
    )
    manual = sandbox.eliza.add_membership(
        mitarbeiter=person["id"], orgunit=other_unit, von="2020-01-01"
    )
    new_company = next(k for k in mapping if k != entra["companyName"])
    sandbox.graph.update_user(entra["id"], companyName=new_company)
    sync(config, orgunit_sync=True)
    rows = sorted(sandbox.eliza.memberships.values(), key=lambda m: m["id"])
    rows = [m for m in rows if m["mitarbeiter"] == person["id"]]
    assert [(m["orgunit"], m["bis"]) for m in rows] == [
        (mapping[entra["companyName"]], TODAY),
        (other_unit, None),
        (mapping[new_company], None),
    ]
    assert sandbox.eliza.memberships[manual["id"]] == manual
    sandbox.graph.disable_user(entra["id"])
    sync(config, orgunit_sync=True)
    assert sandbox.eliza.memberships[manual["id"]] == manual
    ours = [
        m
        for m in sandbox.eliza.memberships.values()
        if m["mitarbeiter"] == person["id"] and m["orgunit"] == mapping[new_company]
    ]
    assert [m["bis"] for m in ours] == [TODAY]


def test_unmapped_company_is_reported_once_per_value(sandbox: Sandbox, config: Config) -> None:
    for u in pick(sandbox, 3):
        sandbox.graph.update_user(u["id"], companyName="Neue Tochter AG")
    report = sync(config, orgunit_sync=True)
    notes = [w for w in report.warnings if "Neue Tochter AG" in w]
    assert notes == ["unmapped company 'Neue Tochter AG' (3 users)"]


def test_unknown_orgunit_id_is_a_configuration_error_before_any_write(
    sandbox: Sandbox, config: Config
) -> None:
    company = next(iter(sandbox.orgunit_mapping))
    broken = dataclasses.replace(config, orgunit_mapping={**config.orgunit_mapping, company: 999})
    with pytest.raises(ConfigError, match="999"):
        sync(broken, orgunit_sync=True)
    assert sandbox.eliza.write_count == 0


# ------------------------------------------------------------------ manager
def test_manager_is_set_in_the_same_run_even_when_linked_later(
    sandbox: Sandbox, config: Config
) -> None:
    mapping = {**config.field_mapping.person, "vorgesetzter": compile_expr("manager")}
    managed = dataclasses.replace(
        config, field_mapping=dataclasses.replace(config.field_mapping, person=mapping)
    )
    report = sync(managed)
    assert report.exit_code == 0
    ids = {u["id"] for u in in_scope(sandbox)}
    with_manager = [u for u in in_scope(sandbox) if u.get("manager") in ids]
    assert with_manager, "the sandbox tenant should have a hierarchy"
    for u in with_manager:
        (person,) = eliza_person_of(sandbox, u["id"])
        (boss,) = eliza_person_of(sandbox, u["manager"])
        assert person["vorgesetzter"] == boss["id"]
    assert sync(managed).counts() == {}


def test_verify_target_leaves_a_linked_account_alone_once_it_is_protected(
    sandbox: Sandbox, config: Config
) -> None:
    (entra,) = pick(sandbox)
    sync(config)
    (user,) = eliza_user_of(sandbox, entra["id"])
    group = sandbox.eliza.add_customgroup("Verwaltungsrat")
    _patch(sandbox, "user", user["id"], {"groups": [1, group["id"]], "last_name": "von Hand"})
    guarded = tweak(config, "matching", protected_groups=(group["id"],))
    report = sync(guarded, command="resync", full=True, verify_target=True)
    assert report.exit_code == 3
    assert [c["entra_id"] for c in report.conflicts] == [entra["id"]]
    assert eliza_user_of(sandbox, entra["id"])[0]["last_name"] == "von Hand"  # not repaired
    (failure,) = service.state_failures(guarded)
    assert "protected group" in failure["message"]
    assert link_of(guarded, entra["id"])["user"]["status"] == "protected"
    sandbox.graph.update_user(entra["id"], surname="Neu", jobTitle="Neu")
    later = sync(guarded, retry_failed=True)
    assert later.counts() == {}  # left alone from then on, person included
    assert [f["category"] for f in service.state_failures(guarded)] == ["conflict"]
    assert eliza_user_of(sandbox, entra["id"])[0]["last_name"] == "von Hand"
    _patch(sandbox, "user", user["id"], {"groups": [1]})  # no longer protected
    freed = sync(guarded, command="resync", full=True, verify_target=True)
    assert freed.exit_code == 0
    assert eliza_user_of(sandbox, entra["id"])[0]["last_name"] == "Neu"
    assert service.state_failures(guarded) == []
