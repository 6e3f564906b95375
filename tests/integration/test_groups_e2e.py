"""Group sync end to end: the real msgraph-sdk, azure-identity and httpx against the sandbox on
loopback, with a real SQLite state database (issue 7's "Done when" list)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
from e2e_helpers import eliza_user_of, in_scope, sync, writes

from deltasync import service
from deltasync.config import Config
from deltasync.sandbox.server import Sandbox

pytestmark = pytest.mark.sandbox(users=40, seed=3, page_size=15, sync_groups=True)


def with_groups(config: Config, **changes: Any) -> Config:
    return dataclasses.replace(config, groups=dataclasses.replace(config.groups, **changes))


def group_id(sandbox: Sandbox, name: str) -> str:
    (found,) = [g["id"] for g in sandbox.graph.groups() if g["displayName"] == name]
    return str(found)


def custom_group(sandbox: Sandbox, entra_id: str) -> dict[str, Any]:
    (found,) = [g for g in sandbox.eliza.customgroups.values() if g["remote_key"] == entra_id]
    return found


def eliza_groups(sandbox: Sandbox, entra_user: str) -> set[int]:
    (user,) = eliza_user_of(sandbox, entra_user)
    return set(user["groups"])


def outsider(sandbox: Sandbox, group: str) -> dict[str, Any]:
    """An in-scope user who is not a direct member of ``group``."""
    members = set(sandbox.graph.group(group)["members"])
    return next(u for u in in_scope(sandbox) if u["id"] not in members)


def in_scope_member(sandbox: Sandbox, group: str) -> dict[str, Any]:
    members = set(sandbox.graph.group(group)["members"])
    return next(u for u in in_scope(sandbox) if u["id"] in members)


@pytest.mark.sandbox(users=40, seed=3, page_size=25, sync_groups=True, members_per_entry=100)
def test_a_group_of_1200_members_split_over_pages_arrives_complete(
    sandbox: Sandbox, config: Config
) -> None:
    extra = [
        sandbox.graph.add_user(userPrincipalName=f"aushilfe{i}@firma.ch", accountEnabled=False)
        for i in range(1200)
    ]
    big = sandbox.graph.add_group(displayName="Aushilfen", members=extra)
    report = sync(config)
    assert report.exit_code == 0, report.as_dict()
    with service.store_for(config) as store:
        members = store.group_members([big])[big]
        cursor = store.get_cursor("groups")
    assert len(members) == 1200  # 12 slices of 100, spread over the groups round's pages
    assert {m for m, _ in members} == set(extra)
    assert cursor is not None and cursor.delta_link is not None
    assert custom_group(sandbox, big)["name"] == "Aushilfen"


def test_adding_and_removing_one_member_patches_exactly_those_two_users_with_only_groups(
    sandbox: Sandbox, config: Config
) -> None:
    sync(config, assign_to_group=1)
    kader = group_id(sandbox, "Kader")
    pflege = group_id(sandbox, "Abteilung Pflege")
    joiner = outsider(sandbox, kader)
    leaver = in_scope_member(sandbox, pflege)
    hand_made = sandbox.eliza.add_customgroup("Betriebsfeuerwehr")["id"]
    orgunit_group = sandbox.eliza.orgunit_group(next(iter(sandbox.orgunit_mapping.values())))
    for entra in (joiner, leaver):
        (user,) = eliza_user_of(sandbox, entra["id"])
        user_groups = sorted({*user["groups"], hand_made, orgunit_group})
        sandbox.eliza._data["user"][user["id"]]["groups"] = user_groups
    sandbox.graph.add_member(kader, joiner["id"])
    sandbox.graph.remove_member(pflege, leaver["id"])
    sandbox.eliza.reset_log()
    report = sync(config, assign_to_group=1)
    assert report.exit_code == 0, report.as_dict()
    sent = writes(sandbox)
    (joiner_user,) = eliza_user_of(sandbox, joiner["id"])
    (leaver_user,) = eliza_user_of(sandbox, leaver["id"])
    assert sorted(r.path for r in sent) == sorted(
        [f"/api/user/{joiner_user['id']}", f"/api/user/{leaver_user['id']}"]
    )
    assert all(r.method == "PATCH" and set(r.json) == {"groups"} for r in sent)
    kader_id = custom_group(sandbox, kader)["id"]
    pflege_id = custom_group(sandbox, pflege)["id"]
    assert kader_id in joiner_user["groups"]
    assert pflege_id not in leaver_user["groups"]
    for user in (joiner_user, leaver_user):  # eliza_users, orgunit_<id> and hand-made groups
        assert {1, hand_made, orgunit_group} <= set(user["groups"])
    shown = {a["label"]: a.get("groups") for a in report.as_dict()["actions"]}
    assert shown[joiner["userPrincipalName"]] == ["+Kader"]
    assert shown[leaver["userPrincipalName"]] == ["−Abteilung Pflege"]


def test_a_run_with_no_group_change_makes_one_groups_delta_request_and_no_eliza_write(
    sandbox: Sandbox, config: Config
) -> None:
    sync(config)
    sandbox.graph.reset_log()
    sandbox.eliza.reset_log()
    report = sync(config)
    assert report.exit_code == 0
    paths = [r.path for r in sandbox.graph.requests]
    assert len(paths) == 2  # one users-delta and one groups-delta request
    assert sum("/groups/" in p for p in paths) == 1
    assert sandbox.eliza.request_count == 0


def test_groups_are_not_read_at_all_while_sync_groups_is_false(
    sandbox: Sandbox, config: Config
) -> None:
    off = dataclasses.replace(
        config, sync_options=dataclasses.replace(config.sync_options, sync_groups=False)
    )
    sync(off)
    assert not any("/groups" in r.path for r in sandbox.graph.requests)
    assert sandbox.eliza.customgroups == {}


def test_renaming_a_group_is_one_patch_of_that_custom_group(
    sandbox: Sandbox, config: Config
) -> None:
    sync(config)
    gid = group_id(sandbox, "Abteilung Pflege")
    sandbox.graph.update_group(gid, displayName="Abteilung Pflege und Betreuung")
    sandbox.eliza.reset_log()
    report = sync(config)
    assert report.exit_code == 0
    group = custom_group(sandbox, gid)
    assert [(r.method, r.path, r.json) for r in writes(sandbox)] == [
        ("PATCH", f"/api/customgroup/{group['id']}", {"name": "Abteilung Pflege und Betreuung"})
    ]


def test_a_name_held_by_a_system_group_or_another_key_is_a_conflict_and_a_free_name_is_adopted(
    sandbox: Sandbox, config: Config
) -> None:
    sandbox.graph.add_group(displayName="eliza_users")
    sandbox.eliza.add_customgroup("Kader")  # hand-made, no remote_key: adopted
    sandbox.eliza.add_customgroup("Teamleitungen", remote_key="someone-else")
    report = sync(config)
    assert report.exit_code == 3
    conflicts = {c["label"]: c["message"] for c in report.conflicts}
    assert "system" in conflicts["eliza_users"]
    assert "someone-else" in conflicts["Teamleitungen"]
    kader = custom_group(sandbox, group_id(sandbox, "Kader"))
    assert kader["name"] == "Kader"
    assert len([g for g in sandbox.eliza.customgroups.values() if g["name"] == "Kader"]) == 1


def test_a_removed_group_empties_without_deleting_and_deletes_with_the_switch(
    sandbox: Sandbox, config: Config
) -> None:
    sync(config)
    for name, delete in (("Abteilung Pflege", False), ("Abteilung Verkauf", True)):
        cfg = with_groups(config, delete_removed=delete)
        gid = group_id(sandbox, name)
        members = [
            u["id"] for u in in_scope(sandbox) if u["id"] in sandbox.graph.group(gid)["members"]
        ]
        eliza_id = custom_group(sandbox, gid)["id"]
        sandbox.graph.hard_delete(gid)
        sandbox.eliza.reset_log()
        report = sync(cfg)
        assert report.exit_code == 0, report.as_dict()
        for member in members:
            assert eliza_id not in eliza_groups(sandbox, member)
        ops = [(a["kind"], a["op"]) for a in report.actions if a["kind"] == "group"]
        if delete:
            assert eliza_id not in sandbox.eliza.customgroups
            assert ("group", "delete") in ops  # the group emptied before goes too now
            assert ("DELETE", f"/api/customgroup/{eliza_id}") in [
                (r.method, r.path) for r in writes(sandbox)
            ]
        else:
            assert eliza_id in sandbox.eliza.customgroups
            assert ops == [("group", "empty")]
            assert not any("customgroup" in r.path for r in writes(sandbox))


def test_a_cycle_in_nested_groups_terminates_and_flattens_correctly(
    sandbox: Sandbox, config: Config
) -> None:
    flat = with_groups(config, nested="flatten")
    report = sync(flat)
    assert report.exit_code == 0, report.as_dict()
    north, south = group_id(sandbox, "Projekt Nord"), group_id(sandbox, "Projekt Süd")
    both = {custom_group(sandbox, north)["id"], custom_group(sandbox, south)["id"]}
    for gid in (north, south):
        for member in sandbox.graph.group(gid)["members"]:
            if member in {north, south} or not eliza_user_of(sandbox, member):
                continue
            assert both <= eliza_groups(sandbox, member)
    chain = {
        custom_group(sandbox, group_id(sandbox, n))["id"] for n in ("Abteilungsleitungen", "Kader")
    }
    head = in_scope_member(sandbox, group_id(sandbox, "Abteilungsleitungen"))
    assert chain <= eliza_groups(sandbox, head["id"])  # Kader holds Abteilungsleitungen


def test_a_change_deep_in_a_nesting_chain_replans_exactly_the_users_whose_set_changed(
    sandbox: Sandbox, config: Config
) -> None:
    flat = with_groups(config, nested="flatten")
    sync(flat)
    leads = group_id(sandbox, "Teamleitungen")
    kader = group_id(sandbox, "Kader")
    newcomers = [
        u for u in in_scope(sandbox) if u["id"] not in sandbox.graph.group(kader)["members"]
    ]
    newcomers = [u for u in newcomers if u["id"] not in sandbox.graph.group(leads)["members"]][:2]
    springer = sandbox.graph.add_group(displayName="Springer", members=[u["id"] for u in newcomers])
    sandbox.graph.add_member(leads, springer)
    sandbox.eliza.reset_log()
    report = sync(flat)
    assert report.exit_code == 0, report.as_dict()
    user_writes = [r for r in writes(sandbox) if r.path.startswith("/api/user/")]
    ids = {eliza_user_of(sandbox, u["id"])[0]["id"] for u in newcomers}
    assert {int(r.path.rsplit("/", 1)[1]) for r in user_writes} == ids
    assert len(user_writes) == 2
    names = {"Springer", "Teamleitungen", "Abteilungsleitungen", "Kader"}
    expected = {custom_group(sandbox, group_id(sandbox, n))["id"] for n in names}
    for u in newcomers:
        assert expected <= eliza_groups(sandbox, u["id"])


def test_a_scope_typo_that_would_remove_500_memberships_is_held(
    sandbox: Sandbox, config: Config
) -> None:
    everyone = [u["id"] for u in in_scope(sandbox)]
    for i in range(14):
        sandbox.graph.add_group(displayName=f"Team {i:02d}", members=everyone)
    sync(config)
    before = {u: eliza_groups(sandbox, u) for u in everyone}
    typo = with_groups(config, include=("Taem *",))
    sandbox.eliza.reset_log()
    held = sync(typo)
    assert held.exit_code == 4
    assert held.threshold is not None and "group membership removals" in held.threshold
    assert not [r for r in writes(sandbox) if r.path.startswith("/api/user/")]
    assert {u: eliza_groups(sandbox, u) for u in everyone} == before
    released = sync(typo, allow_deletes=True)
    assert released.exit_code == 0, released.as_dict()
    managed = {g["id"] for g in sandbox.eliza.customgroups.values()}
    for u in everyone:
        assert not (eliza_groups(sandbox, u) & managed)


def test_dry_run_shows_group_changes_by_name_and_state_explains_each_group(
    sandbox: Sandbox, config: Config, tmp_path: Path
) -> None:
    from openpyxl import load_workbook
    from rich.console import Console

    from deltasync.cli.render import render_report

    flat = with_groups(config, nested="flatten")
    sync(flat)
    kader = group_id(sandbox, "Kader")
    joiner = outsider(sandbox, kader)
    sandbox.graph.add_member(kader, joiner["id"])
    sandbox.eliza.reset_log()
    dry = sync(flat, dry_run=True)
    assert writes(sandbox) == []
    (planned,) = [a for a in dry.as_dict()["actions"] if a["label"] == joiner["userPrincipalName"]]
    assert planned["groups"] == ["+Kader"]
    console = Console(record=True, width=200)
    render_report(dry, console=console)
    assert "+group Kader" in console.export_text()
    (book,) = service.export_excel(flat, tmp_path / "plan.xlsx", dry)
    rows = [list(r) for r in load_workbook(book)["Plan"].iter_rows(values_only=True)]
    assert [
        joiner["userPrincipalName"],
        joiner["id"],
        "user",
        "update",
        "+group",
        None,
        "Kader",
    ] in [r[:7] for r in rows]
    sync(flat)
    (shown,) = service.state_user(flat, joiner["userPrincipalName"])
    assert {"name": "Kader", "via": None} in [
        {"name": g["name"], "via": g["via"]} for g in shown["groups"]
    ]
    head = in_scope_member(sandbox, group_id(sandbox, "Abteilungsleitungen"))
    (shown,) = service.state_user(flat, head["id"])
    via = {g["name"]: g["via"] for g in shown["groups"]}
    assert via["Abteilungsleitungen"] is None
    assert via["Kader"] == "Abteilungsleitungen"  # Kader holds Abteilungsleitungen
    groups = {g["name"]: g for g in service.state_groups(flat)}
    assert groups["Kader"]["scope"] == "active"
    assert groups["Kader"]["link"]["status"] == "active"
    assert groups["Kader"]["members"]["group"] == 1
    summary = service.state_summary(flat)
    assert summary["groups"]["linked"] == summary["groups"]["in_scope"] > 0
    assert [c["resource"] for c in summary["cursors"]] == ["users", "groups"]


def test_a_field_change_and_a_membership_change_of_one_user_are_one_patch(
    sandbox: Sandbox, config: Config
) -> None:
    sync(config)
    kader = group_id(sandbox, "Kader")
    joiner = outsider(sandbox, kader)
    sandbox.graph.update_user(joiner["id"], givenName="Zoë-Neu")
    sandbox.graph.add_member(kader, joiner["id"])
    sandbox.eliza.reset_log()
    assert sync(config).exit_code == 0
    (user,) = eliza_user_of(sandbox, joiner["id"])
    (patch,) = [r for r in writes(sandbox) if r.path == f"/api/user/{user['id']}"]
    assert set(patch.json) == {"first_name", "groups"}
    assert user["first_name"] == "Zoë-Neu"
    assert custom_group(sandbox, kader)["id"] in user["groups"]
