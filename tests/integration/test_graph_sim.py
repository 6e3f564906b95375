"""The Graph simulator behaves like Microsoft Graph's users/groups delta (graph-delta.md §1, §2).

Every test talks HTTP to the simulator through ``httpx.MockTransport(sim.handle)``, the way
deltasync's Graph client will, so what passes here is what a client can rely on.
"""

from __future__ import annotations

import collections
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from deltasync.sandbox.graph import GraphSim, TokenSim, make_tenant

BASE = "http://graph.sandbox.invalid/v1.0"
SELECT = (
    "id,userPrincipalName,mail,givenName,surname,displayName,mobilePhone,businessPhones,"
    "jobTitle,department,companyName,employeeId,employeeHireDate,accountEnabled,"
    "proxyAddresses,onPremisesImmutableId,officeLocation,manager"
)
MINIMAL = {"Prefer": "return=minimal"}


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


def http(sim: GraphSim | TokenSim) -> httpx.Client:
    return httpx.Client(transport=httpx.MockTransport(sim.handle))


def pages(
    client: httpx.Client, url: str, headers: dict[str, str] | None = None
) -> Iterator[dict[str, Any]]:
    """Follow one round from ``url`` until its deltaLink, yielding every page body."""
    while True:
        response = client.get(url, headers=headers)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        yield body
        if "@odata.nextLink" not in body:
            return
        url = body["@odata.nextLink"]


def round_trip(
    client: httpx.Client, url: str, headers: dict[str, str] | None = None
) -> tuple[list[dict[str, Any]], str]:
    """Every entry of one round, in order, and the round's deltaLink."""
    entries: list[dict[str, Any]] = []
    last: dict[str, Any] = {}
    for body in pages(client, url, headers):
        entries.extend(body["value"])
        last = body
    return entries, last["@odata.deltaLink"]


def by_id(entries: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The last entry per object id (what a client that merges pages ends up with)."""
    return {e["id"]: e for e in entries}


def small_sim(**kwargs: Any) -> GraphSim:
    kwargs.setdefault("duplicates", False)
    kwargs.setdefault("empty_pages", False)
    return GraphSim(**kwargs)


def start_url(select: str = SELECT) -> str:
    return f"{BASE}/users/delta?$select={select}"


@pytest.fixture
def tenant() -> GraphSim:
    sim = GraphSim(page_size=50, seed=3)
    make_tenant(sim, 180, seed=11)
    return sim


# ---------------------------------------------------------------------------- full rounds


def test_full_round_covers_every_user_exactly_once_apart_from_duplicates(
    tenant: GraphSim,
) -> None:
    with http(tenant) as client:
        entries, delta_link = round_trip(client, start_url())

    ids = [e["id"] for e in entries]
    assert set(ids) == {u["id"] for u in tenant.users()}
    repeated = {i: n for i, n in collections.Counter(ids).items() if n > 1}
    assert 1 <= len(repeated) <= 5, "Graph repeats a few objects across pages"
    for object_id in repeated:
        copies = [e for e in entries if e["id"] == object_id]
        assert all(c == copies[0] for c in copies)
    assert delta_link.startswith(f"{BASE}/users/delta?$deltatoken=")


def test_every_page_has_context_and_exactly_one_absolute_link_with_only_a_token(
    tenant: GraphSim,
) -> None:
    with http(tenant) as client:
        bodies = list(pages(client, start_url("displayName,accountEnabled")))

    assert len(bodies) >= 4
    for i, body in enumerate(bodies):
        assert body["@odata.context"] == f"{BASE}/$metadata#users(displayName,accountEnabled)"
        links = [k for k in body if k in ("@odata.nextLink", "@odata.deltaLink")]
        assert len(links) == 1
        last = i == len(bodies) - 1
        assert links == (["@odata.deltaLink"] if last else ["@odata.nextLink"])
        link = body[links[0]]
        assert link.startswith(f"{BASE}/users/delta?")
        query = parse_qs(urlsplit(link).query)
        assert list(query) == (["$deltatoken"] if last else ["$skiptoken"])
        assert all(len(v[0]) >= 40 for v in query.values())


def test_full_round_contains_an_empty_page_that_still_has_a_next_link(tenant: GraphSim) -> None:
    with http(tenant) as client:
        bodies = list(pages(client, start_url()))

    empty = [b for b in bodies if b["value"] == []]
    assert len(empty) == 1
    assert "@odata.nextLink" in empty[0]


def test_rounds_without_duplicates_or_empty_pages_are_plain_slices() -> None:
    sim = small_sim(page_size=40)
    make_tenant(sim, 100, seed=1)
    with http(sim) as client:
        bodies = list(pages(client, start_url("displayName")))

    assert [len(b["value"]) for b in bodies] == [40, 40, 20]
    ids = [e["id"] for b in bodies for e in b["value"]]
    assert len(ids) == len(set(ids)) == 100


def test_page_order_is_shuffled_but_reproducible_for_a_seed() -> None:
    def order(seed: int) -> list[str]:
        sim = small_sim(page_size=500, seed=seed)
        make_tenant(sim, 60, seed=2)
        with http(sim) as client:
            entries, _ = round_trip(client, start_url("displayName"))
        return [e["displayName"] for e in entries]

    creation = [u["displayName"] for u in _tenant_users(seed=2, sim_seed=5)]
    assert order(5) == order(5)
    assert order(5) != creation
    assert sorted(order(5)) == sorted(creation)


def _tenant_users(seed: int, sim_seed: int) -> list[dict[str, Any]]:
    sim = small_sim(seed=sim_seed)
    make_tenant(sim, 60, seed=seed)
    return sim.users()


def test_full_round_omits_null_properties_and_returns_only_selected_ones() -> None:
    sim = small_sim()
    user = sim.add_user(userPrincipalName="anna.meier@firma.ch", givenName="Anna", jobTitle=None)
    with http(sim) as client:
        entries, _ = round_trip(client, start_url("givenName,jobTitle,mobilePhone,businessPhones"))

    assert entries == [{"id": user, "givenName": "Anna", "businessPhones": []}]


def test_id_is_always_returned_and_select_is_case_insensitive() -> None:
    sim = small_sim()
    user = sim.add_user(userPrincipalName="a@firma.ch", surname="Müller")
    with http(sim) as client:
        entries, _ = round_trip(client, start_url("SURNAME"))

    assert entries == [{"id": user, "surname": "Müller"}]


def test_without_select_the_default_property_set_is_returned() -> None:
    sim = small_sim()
    sim.add_user(
        userPrincipalName="a@firma.ch",
        displayName="A",
        department="Informatik",
        mobilePhone="+41 79 000 00 00",
    )
    with http(sim) as client:
        entries, _ = round_trip(client, f"{BASE}/users/delta")

    assert "department" not in entries[0]
    assert entries[0]["mobilePhone"] == "+41 79 000 00 00"
    assert entries[0]["userPrincipalName"] == "a@firma.ch"


def test_unknown_select_property_is_a_bad_request() -> None:
    with http(small_sim()) as client:
        response = client.get(start_url("displayName,shoeSize"))

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "Request_BadRequest"
    assert "shoeSize" in response.json()["error"]["message"]


def test_selected_manager_comes_as_manager_delta() -> None:
    sim = small_sim()
    boss = sim.add_user(userPrincipalName="boss@firma.ch")
    worker = sim.add_user(userPrincipalName="worker@firma.ch", manager=boss)
    with http(sim) as client:
        entries = by_id(round_trip(client, start_url("displayName,manager"))[0])

    assert entries[worker]["manager@delta"] == [
        {"@odata.type": "#microsoft.graph.user", "id": boss}
    ]
    assert "manager@delta" not in entries[boss]


def test_changes_made_during_a_full_round_surface_in_the_next_round() -> None:
    sim = small_sim(page_size=2)
    first, second, third = (sim.add_user(userPrincipalName=f"u{i}@firma.ch") for i in range(3))
    with http(sim) as client:
        response = client.get(start_url("jobTitle"))
        sim.update_user(first, jobTitle="Chefin")
        sim.update_user(second, jobTitle="Chef")
        sim.update_user(third, jobTitle="Lernender")
        rest, delta_link = round_trip(client, response.json()["@odata.nextLink"])
        full_round = response.json()["value"] + rest
        assert all("jobTitle" not in e for e in full_round), "the round is a snapshot"
        changes, _ = round_trip(client, delta_link)

    assert {e["id"]: e["jobTitle"] for e in changes} == {
        first: "Chefin",
        second: "Chef",
        third: "Lernender",
    }


def test_full_round_after_soft_delete_lists_only_existing_users() -> None:
    sim = small_sim()
    kept = sim.add_user(userPrincipalName="kept@firma.ch")
    gone = sim.add_user(userPrincipalName="gone@firma.ch")
    sim.soft_delete(gone)
    with http(sim) as client:
        entries, _ = round_trip(client, start_url("displayName"))

    assert [e["id"] for e in entries] == [kept]


# ---------------------------------------------------------------------------- incremental


def _after_full_round(sim: GraphSim, client: httpx.Client, select: str = SELECT) -> str:
    return round_trip(client, start_url(select))[1]


def test_minimal_payload_has_only_changed_properties_and_null_for_cleared_ones() -> None:
    sim = small_sim()
    user = sim.add_user(
        userPrincipalName="lea.keller@firma.ch",
        jobTitle="Buchhalterin",
        mobilePhone="+41 79 111 22 33",
        department="Finanzen",
    )
    with http(sim) as client:
        delta_link = _after_full_round(sim, client)
        sim.update_user(user, jobTitle="Controllerin", mobilePhone=None)
        entries, _ = round_trip(client, delta_link, MINIMAL)

    assert entries == [{"id": user, "jobTitle": "Controllerin", "mobilePhone": None}]


def test_full_payload_repeats_unchanged_properties_and_omits_never_set_ones() -> None:
    sim = small_sim()
    user = sim.add_user(
        userPrincipalName="lea.keller@firma.ch",
        jobTitle="Buchhalterin",
        department="Finanzen",
        mobilePhone="+41 79 111 22 33",
    )
    with http(sim) as client:
        delta_link = _after_full_round(sim, client, "jobTitle,department,mobilePhone,employeeId")
        sim.update_user(user, jobTitle="Controllerin", mobilePhone=None)
        entries, _ = round_trip(client, delta_link)

    assert entries == [
        {"id": user, "jobTitle": "Controllerin", "department": "Finanzen", "mobilePhone": None}
    ]
    assert "employeeId" not in entries[0], "never set: absent, not null"


def test_prefer_minimal_can_be_switched_per_page_request() -> None:
    sim = small_sim(page_size=1)
    users = [
        sim.add_user(userPrincipalName=f"u{i}@firma.ch", department="Verkauf") for i in range(2)
    ]
    with http(sim) as client:
        delta_link = _after_full_round(sim, client, "department,jobTitle")
        for user in users:
            sim.update_user(user, jobTitle="Berater")
        first = client.get(delta_link, headers=MINIMAL)
        second = client.get(first.json()["@odata.nextLink"])

    assert first.headers["Preference-Applied"] == "return=minimal"
    assert first.json()["value"][0].keys() == {"id", "jobTitle"}
    assert second.json()["value"][0].keys() == {"id", "jobTitle", "department"}


def test_change_to_an_unselected_property_does_not_surface() -> None:
    sim = small_sim()
    user = sim.add_user(userPrincipalName="a@firma.ch", jobTitle="Polymechaniker")
    with http(sim) as client:
        delta_link = _after_full_round(sim, client, "displayName,jobTitle")
        sim.update_user(user, officeLocation="Winterthur", department="Produktion")
        entries, next_delta = round_trip(client, delta_link, MINIMAL)
        sim.update_user(user, jobTitle="Anlagenführer")
        later, _ = round_trip(client, next_delta, MINIMAL)

    assert entries == []
    assert later == [{"id": user, "jobTitle": "Anlagenführer"}]


def test_round_without_changes_is_one_empty_page_with_a_new_delta_link(tenant: GraphSim) -> None:
    with http(tenant) as client:
        delta_link = _after_full_round(tenant, client)
        bodies = list(pages(client, delta_link))

    assert len(bodies) == 1
    assert bodies[0]["value"] == []
    assert bodies[0]["@odata.deltaLink"] != delta_link
    assert "@odata.nextLink" not in bodies[0]


def test_incremental_round_is_paged_with_an_empty_page_too(tenant: GraphSim) -> None:
    with http(tenant) as client:
        delta_link = _after_full_round(tenant, client)
        for user in tenant.users()[:120]:
            tenant.update_user(user["id"], jobTitle="Neu")
        bodies = list(pages(client, delta_link, MINIMAL))

    assert len(bodies) == 4  # 120 objects in pages of 50, plus one empty page
    assert sum(b["value"] == [] for b in bodies) == 1
    ids = {e["id"] for b in bodies for e in b["value"]}
    assert len(ids) == 120


def test_soft_delete_is_removed_changed_and_restore_returns_a_new_looking_object() -> None:
    sim = small_sim()
    user = sim.add_user(userPrincipalName="a@firma.ch", jobTitle="Disponentin")
    with http(sim) as client:
        delta_link = _after_full_round(sim, client, "userPrincipalName,jobTitle")
        sim.soft_delete(user)
        removed, after_delete = round_trip(client, delta_link, MINIMAL)
        sim.restore(user)
        restored, _ = round_trip(client, after_delete, MINIMAL)

    assert removed == [{"id": user, "@removed": {"reason": "changed"}}]
    assert restored == [{"id": user, "userPrincipalName": "a@firma.ch", "jobTitle": "Disponentin"}]


def test_hard_delete_is_removed_deleted_even_after_a_soft_delete() -> None:
    sim = small_sim()
    direct = sim.add_user(userPrincipalName="a@firma.ch")
    purged = sim.add_user(userPrincipalName="b@firma.ch")
    with http(sim) as client:
        delta_link = _after_full_round(sim, client, "displayName")
        sim.hard_delete(direct)
        sim.soft_delete(purged)
        sim.hard_delete(purged)
        entries, _ = round_trip(client, delta_link)

    assert by_id(entries) == {
        direct: {"id": direct, "@removed": {"reason": "deleted"}},
        purged: {"id": purged, "@removed": {"reason": "deleted"}},
    }


def test_disabling_an_account_is_a_property_change_not_a_removal() -> None:
    sim = small_sim()
    user = sim.add_user(userPrincipalName="a@firma.ch")
    with http(sim) as client:
        delta_link = _after_full_round(sim, client, "accountEnabled")
        sim.disable_user(user)
        disabled, next_link = round_trip(client, delta_link, MINIMAL)
        sim.enable_user(user)
        enabled, _ = round_trip(client, next_link, MINIMAL)

    assert disabled == [{"id": user, "accountEnabled": False}]
    assert enabled == [{"id": user, "accountEnabled": True}]


def test_user_created_since_the_token_comes_with_all_selected_properties() -> None:
    sim = small_sim()
    with http(sim) as client:
        delta_link = _after_full_round(sim, client, "givenName,surname,mail,jobTitle")
        user = sim.add_user(
            userPrincipalName="noemie.favre@firma.ch",
            givenName="Noémie",
            surname="Favre",
            mail="noemie.favre@firma.ch",
        )
        sim.update_user(user, surname="Favre-Rochat")
        entries, _ = round_trip(client, delta_link, MINIMAL)

    assert entries == [
        {
            "id": user,
            "givenName": "Noémie",
            "surname": "Favre-Rochat",
            "mail": "noemie.favre@firma.ch",
        }
    ]


def test_manager_changes_and_removal_come_as_manager_delta() -> None:
    sim = small_sim()
    old_boss = sim.add_user(userPrincipalName="old@firma.ch")
    new_boss = sim.add_user(userPrincipalName="new@firma.ch")
    worker = sim.add_user(userPrincipalName="worker@firma.ch", manager=old_boss)
    with http(sim) as client:
        delta_link = _after_full_round(sim, client, "displayName,manager")
        sim.set_manager(worker, new_boss)
        changed, next_link = round_trip(client, delta_link, MINIMAL)
        sim.set_manager(worker, None)
        removed, _ = round_trip(client, next_link, MINIMAL)

    user_type = "#microsoft.graph.user"
    assert changed == [
        {"id": worker, "manager@delta": [{"@odata.type": user_type, "id": new_boss}]}
    ]
    assert removed == [
        {
            "id": worker,
            "manager@delta": [
                {"@odata.type": user_type, "id": new_boss, "@removed": {"reason": "deleted"}}
            ],
        }
    ]


def test_manager_change_does_not_surface_when_manager_is_not_selected() -> None:
    sim = small_sim()
    boss = sim.add_user(userPrincipalName="boss@firma.ch")
    worker = sim.add_user(userPrincipalName="worker@firma.ch")
    with http(sim) as client:
        delta_link = _after_full_round(sim, client, "displayName")
        sim.set_manager(worker, boss)
        entries, _ = round_trip(client, delta_link, MINIMAL)

    assert entries == []


def test_hard_deleting_a_manager_removes_it_from_the_reports() -> None:
    sim = small_sim()
    boss = sim.add_user(userPrincipalName="boss@firma.ch")
    worker = sim.add_user(userPrincipalName="worker@firma.ch", manager=boss)
    with http(sim) as client:
        delta_link = _after_full_round(sim, client, "manager")
        sim.hard_delete(boss)
        entries = by_id(round_trip(client, delta_link, MINIMAL)[0])

    assert entries[boss] == {"id": boss, "@removed": {"reason": "deleted"}}
    assert entries[worker]["manager@delta"][0]["@removed"] == {"reason": "deleted"}
    assert sim.user(worker)["manager"] is None


def test_several_changes_to_one_user_collapse_into_one_entry() -> None:
    sim = small_sim()
    user = sim.add_user(userPrincipalName="a@firma.ch", jobTitle="A", department="X")
    with http(sim) as client:
        delta_link = _after_full_round(sim, client, "jobTitle,department")
        sim.update_user(user, jobTitle="B")
        sim.update_user(user, department="Y")
        sim.update_user(user, jobTitle="C")
        entries, _ = round_trip(client, delta_link, MINIMAL)

    assert entries == [{"id": user, "jobTitle": "C", "department": "Y"}]


def test_an_older_delta_link_replays_the_same_changes() -> None:
    sim = small_sim()
    user = sim.add_user(userPrincipalName="a@firma.ch")
    with http(sim) as client:
        delta_link = _after_full_round(sim, client, "jobTitle")
        sim.update_user(user, jobTitle="Fachfrau Gesundheit EFZ")
        first, _ = round_trip(client, delta_link, MINIMAL)
        again, _ = round_trip(client, delta_link, MINIMAL)

    assert first == again == [{"id": user, "jobTitle": "Fachfrau Gesundheit EFZ"}]


def test_mail_change_rewrites_proxy_addresses_like_exchange() -> None:
    sim = small_sim()
    user = sim.add_user(userPrincipalName="a.meier@firma.ch", mail="a.meier@firma.ch")
    with http(sim) as client:
        delta_link = _after_full_round(sim, client, "mail,proxyAddresses")
        sim.update_user(user, mail="anna.meier@firma.ch")
        entries, _ = round_trip(client, delta_link, MINIMAL)

    assert entries == [
        {
            "id": user,
            "mail": "anna.meier@firma.ch",
            "proxyAddresses": ["SMTP:anna.meier@firma.ch", "smtp:a.meier@firma.ch"],
        }
    ]


def test_deltatoken_latest_gives_a_delta_link_and_no_data(tenant: GraphSim) -> None:
    user = tenant.users()[0]["id"]
    with http(tenant) as client:
        response = client.get(f"{BASE}/users/delta?$select=jobTitle&$deltatoken=latest")
        tenant.update_user(user, jobTitle="Leiterin Pflege")
        entries, _ = round_trip(client, response.json()["@odata.deltaLink"], MINIMAL)

    assert response.status_code == 200
    assert response.json()["value"] == []
    assert "@odata.nextLink" not in response.json()
    assert entries == [{"id": user, "jobTitle": "Leiterin Pflege"}]


# ---------------------------------------------------------------------------- query options


def test_filter_on_ids_limits_the_round_and_later_rounds() -> None:
    sim = small_sim()
    a, b, c = (sim.add_user(userPrincipalName=f"{n}@firma.ch") for n in "abc")
    with http(sim) as client:
        entries, delta_link = round_trip(
            client, f"{BASE}/users/delta?$select=jobTitle&$filter=id eq '{a}' or id eq '{c}'"
        )
        sim.update_user(b, jobTitle="X")
        sim.update_user(c, jobTitle="Y")
        later, _ = round_trip(client, delta_link, MINIMAL)

    assert sorted(e["id"] for e in entries) == sorted([a, c])
    assert later == [{"id": c, "jobTitle": "Y"}]


@pytest.mark.parametrize(
    "query",
    [
        "$filter=accountEnabled eq true",
        "$filter=" + " or ".join(f"id eq '{i}'" for i in range(51)),
        "$expand=manager",
        "$orderby=displayName",
        '$search="displayName:anna"',
    ],
)
def test_unsupported_query_options_are_rejected(query: str) -> None:
    with http(small_sim()) as client:
        response = client.get(f"{BASE}/users/delta?{query}")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "Request_UnsupportedQuery"


def test_top_is_ignored() -> None:
    sim = small_sim(page_size=10)
    for i in range(15):
        sim.add_user(userPrincipalName=f"u{i}@firma.ch")
    with http(sim) as client:
        response = client.get(f"{BASE}/users/delta?$select=displayName&$top=3")

    assert len(response.json()["value"]) == 10


def test_query_options_cannot_be_appended_to_a_next_link() -> None:
    sim = small_sim(page_size=1)
    for i in range(2):
        sim.add_user(userPrincipalName=f"u{i}@firma.ch")
    with http(sim) as client:
        next_link = client.get(start_url("displayName")).json()["@odata.nextLink"]
        response = client.get(f"{next_link}&$select=displayName")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "Request_UnsupportedQuery"


@pytest.mark.parametrize(
    "path",
    ["/users/delta()", "/users/microsoft.graph.delta()", "//users/delta()", "//users/delta"],
)
def test_sdk_path_spellings_are_accepted(path: str) -> None:
    sim = small_sim()
    sim.add_user(userPrincipalName="a@firma.ch")
    with http(sim) as client:
        response = client.get(f"{BASE}{path}?$select=displayName")

    assert response.status_code == 200
    assert len(response.json()["value"]) == 1


def test_links_follow_a_base_url_changed_after_construction() -> None:
    sim = small_sim(page_size=1)
    for i in range(2):
        sim.add_user(userPrincipalName=f"u{i}@firma.ch")
    sim.base_url = "http://127.0.0.1:8765/v1.0/"
    with http(sim) as client:
        body = client.get("http://127.0.0.1:8765/v1.0/users/delta").json()

    assert body["@odata.nextLink"].startswith("http://127.0.0.1:8765/v1.0/users/delta?$skiptoken=")


def test_unknown_paths_are_404_in_graph_error_shape() -> None:
    with http(small_sim()) as client:
        unknown = client.get(f"{BASE}/applications/delta")
        outside = client.get("http://graph.sandbox.invalid/beta/users/delta")

    for response in (unknown, outside):
        assert response.status_code == 404
        error = response.json()["error"]
        assert error.keys() == {"code", "message", "innerError"}
        assert error["innerError"].keys() >= {"request-id", "date", "client-request-id"}


# ---------------------------------------------------------------------------- expiry, faults


def test_expired_tokens_give_400_sync_state_not_found(tenant: GraphSim) -> None:
    with http(tenant) as client:
        delta_link = _after_full_round(tenant, client)
        next_link = client.get(start_url()).json()["@odata.nextLink"]
        tenant.expire_tokens()
        responses = [client.get(delta_link), client.get(next_link)]
        fresh = client.get(start_url())

    for response in responses:
        assert response.status_code == 400
        error = response.json()["error"]
        assert error["code"] == "syncStateNotFound"
        assert error["message"] == (
            "The sync state generation is not found. The delta token is expired and data "
            "must be synchronized again."
        )
        assert "innerError" in error
    assert fresh.status_code == 200


def test_delta_tokens_expire_after_their_lifetime() -> None:
    clock = Clock()
    sim = small_sim(now=clock, token_ttl_s=7 * 24 * 3600)
    sim.add_user(userPrincipalName="a@firma.ch")
    with http(sim) as client:
        delta_link = _after_full_round(sim, client)
        clock.now += 6 * 24 * 3600
        still_valid = client.get(delta_link)
        clock.now += 2 * 24 * 3600
        expired = client.get(delta_link)
        newer = client.get(still_valid.json()["@odata.deltaLink"])

    assert still_valid.status_code == 200
    assert expired.status_code == 400
    assert expired.json()["error"]["code"] == "syncStateNotFound"
    assert newer.status_code == 200


def test_unknown_delta_token_is_treated_as_expired() -> None:
    with http(small_sim()) as client:
        response = client.get(f"{BASE}/users/delta?$deltatoken=not-a-token")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "syncStateNotFound"


def test_410_carries_a_location_with_an_empty_delta_token() -> None:
    sim = small_sim()
    with http(sim) as client:
        delta_link = _after_full_round(sim, client)
        sim.fail_next(410)
        gone = client.get(delta_link)
        after = client.get(delta_link)

    assert gone.status_code == 410
    assert gone.headers["Location"] == f"{BASE}/users/delta?$deltatoken="
    assert gone.json()["error"]["code"] == "resyncRequired"
    assert after.status_code == 200


def test_throttling_answers_429_with_retry_after_then_recovers() -> None:
    sim = small_sim()
    sim.add_user(userPrincipalName="a@firma.ch")
    sim.throttle(n=2, retry_after=3)
    with http(sim) as client:
        responses = [client.get(start_url()) for _ in range(3)]

    assert [r.status_code for r in responses] == [429, 429, 200]
    assert responses[0].headers["Retry-After"] == "3"
    assert responses[0].json()["error"]["code"] == "TooManyRequests"
    assert sim.request_count == 3


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (500, "generalException"),
        (503, "serviceNotAvailable"),
        (504, "gatewayTimeout"),
        (400, "resyncRequired"),
        (401, "InvalidAuthenticationToken"),
        (403, "Authorization_RequestDenied"),
    ],
)
def test_injected_failures_have_graph_error_codes(status: int, code: str) -> None:
    sim = small_sim()
    sim.fail_next(status, retry_after=2 if status == 503 else None)
    with http(sim) as client:
        response = client.get(start_url())

    assert response.status_code == status
    assert response.json()["error"]["code"] == code
    assert ("Retry-After" in response.headers) == (status == 503)


def test_injected_failure_code_and_headers_can_be_chosen() -> None:
    sim = small_sim()
    sim.fail_next(400, code="syncStateNotFound", headers={"x-test": "1"})
    with http(sim) as client:
        response = client.get(start_url())

    assert response.json()["error"]["code"] == "syncStateNotFound"
    assert response.json()["error"]["message"].startswith("The sync state generation")
    assert response.headers["x-test"] == "1"


# ---------------------------------------------------------------------------- auth


@pytest.fixture
def authed() -> tuple[GraphSim, TokenSim, str]:
    tokens = TokenSim("t-1", "c-1", "s3cr3t-value")
    sim = small_sim(tokens=tokens)
    sim.add_user(userPrincipalName="a@firma.ch")
    with http(tokens) as client:
        response = client.post(
            "https://login.sandbox.invalid/t-1/oauth2/v2.0/token",
            data={
                "grant_type": "client_credentials",
                "client_id": "c-1",
                "client_secret": "s3cr3t-value",
                "scope": "http://graph.sandbox.invalid/.default",
            },
        )
    return sim, tokens, response.json()["access_token"]


def test_graph_accepts_a_token_issued_by_the_token_endpoint(
    authed: tuple[GraphSim, TokenSim, str],
) -> None:
    sim, _, token = authed
    with http(sim) as client:
        response = client.get(start_url(), headers={"Authorization": f"Bearer {token}"})

    assert response.status_code == 200
    assert sim.requests[-1].headers["authorization"] == "Bearer ***"


@pytest.mark.parametrize("authorization", [None, "Bearer not-issued", "Basic YTpi", "Bearer "])
def test_requests_without_a_valid_token_get_401(
    authed: tuple[GraphSim, TokenSim, str], authorization: str | None
) -> None:
    sim, _, _ = authed
    headers = {"Authorization": authorization} if authorization else {}
    with http(sim) as client:
        response = client.get(start_url(), headers=headers)

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "InvalidAuthenticationToken"
    assert "WWW-Authenticate" in response.headers


def test_expired_and_revoked_access_tokens_get_401() -> None:
    clock = Clock()
    tokens = TokenSim("t", "c", "s", ttl_s=3600, now=clock)
    sim = small_sim(tokens=tokens)
    form = {
        "grant_type": "client_credentials",
        "client_id": "c",
        "client_secret": "s",
        "scope": "https://graph.microsoft.com/.default",
    }
    with http(tokens) as token_client:
        token = token_client.post("https://login.x/t/oauth2/v2.0/token", data=form).json()
    headers = {"Authorization": f"Bearer {token['access_token']}"}
    with http(sim) as client:
        fresh = client.get(start_url(), headers=headers)
        clock.now += 3601
        expired = client.get(start_url(), headers=headers)
        clock.now -= 3601
        tokens.revoke_all()
        revoked = client.get(start_url(), headers=headers)

    assert token["expires_in"] == 3600
    assert fresh.status_code == 200
    assert expired.status_code == revoked.status_code == 401


def test_token_for_another_audience_gets_401() -> None:
    tokens = TokenSim("t", "c", "s")
    sim = small_sim(tokens=tokens)
    form = {
        "grant_type": "client_credentials",
        "client_id": "c",
        "client_secret": "s",
        "scope": "https://vault.azure.net/.default",
    }
    with http(tokens) as token_client:
        token = token_client.post("https://login.x/t/oauth2/v2.0/token", data=form).json()
    with http(sim) as client:
        response = client.get(
            start_url(), headers={"Authorization": f"Bearer {token['access_token']}"}
        )

    assert response.status_code == 401
    assert "audience" in response.json()["error"]["message"]


def test_app_without_user_read_all_gets_403(authed: tuple[GraphSim, TokenSim, str]) -> None:
    sim, _, token = authed
    sim.granted = {"Mail.Read"}
    with http(sim) as client:
        response = client.get(start_url(), headers={"Authorization": f"Bearer {token}"})

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "Authorization_RequestDenied"


# ---------------------------------------------------------------------------- token endpoint


TOKEN_URL = "https://login.sandbox.invalid/t-1/oauth2/v2.0/token"
GOOD_FORM = {
    "grant_type": "client_credentials",
    "client_id": "c-1",
    "client_secret": "s3cr3t-value",
    "scope": "https://graph.microsoft.com/.default",
}


def test_token_endpoint_issues_bearer_tokens() -> None:
    tokens = TokenSim("t-1", "c-1", "s3cr3t-value")
    with http(tokens) as client:
        body = client.post(TOKEN_URL, data=GOOD_FORM).json()

    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == body["ext_expires_in"] == 3600
    assert body["access_token"] in tokens.issued
    assert tokens.request_count == 1


def test_token_endpoint_accepts_client_secret_basic() -> None:
    tokens = TokenSim("t-1", "c-1", "s3cr3t-value")
    form = {k: v for k, v in GOOD_FORM.items() if k not in ("client_id", "client_secret")}
    with http(tokens) as client:
        response = client.post(TOKEN_URL, data=form, auth=("c-1", "s3cr3t-value"))

    assert response.status_code == 200


@pytest.mark.parametrize(
    ("url", "changes", "status", "error"),
    [
        ("https://login.sandbox.invalid/t-2/oauth2/v2.0/token", {}, 400, "invalid_request"),
        (TOKEN_URL, {"client_id": "c-2"}, 400, "unauthorized_client"),
        (TOKEN_URL, {"client_secret": "wrong-s3cr3t"}, 401, "invalid_client"),
        (TOKEN_URL, {"client_secret": None}, 401, "invalid_client"),
        (TOKEN_URL, {"grant_type": "password"}, 400, "unsupported_grant_type"),
        (TOKEN_URL, {"scope": "User.Read"}, 400, "invalid_scope"),
    ],
)
def test_token_endpoint_rejects_bad_requests_without_echoing_secrets(
    url: str, changes: dict[str, str | None], status: int, error: str
) -> None:
    tokens = TokenSim("t-1", "c-1", "s3cr3t-value")
    form = {k: v for k, v in {**GOOD_FORM, **changes}.items() if v is not None}
    with http(tokens) as client:
        response = client.post(url, data=form)

    assert response.status_code == status
    body = response.json()
    assert body["error"] == error
    assert re.match(r"AADSTS\d+: ", body["error_description"])
    assert "s3cr3t" not in response.text
    assert tokens.issued == {}


def test_openid_configuration_and_instance_discovery_for_msal() -> None:
    tokens = TokenSim("t-1", "c-1", "s")
    with http(tokens) as client:
        config = client.get("https://login.x:8443/t-1/v2.0/.well-known/openid-configuration")
        instance = client.get(
            "https://login.x:8443/common/discovery/instance",
            params={
                "api-version": "1.1",
                "authorization_endpoint": "https://login.x:8443/t-1/oauth2/v2.0/authorize",
            },
        )

    assert config.json()["token_endpoint"] == "https://login.x:8443/t-1/oauth2/v2.0/token"
    assert config.json()["issuer"] == "https://login.x:8443/t-1/v2.0"
    assert instance.json()["tenant_discovery_endpoint"] == (
        "https://login.x:8443/t-1/v2.0/.well-known/openid-configuration"
    )


# ---------------------------------------------------------------------------- request log


def test_request_log_keeps_prefer_and_query_but_never_the_token(
    authed: tuple[GraphSim, TokenSim, str],
) -> None:
    sim, tokens, token = authed
    with http(sim) as client:
        client.get(
            start_url("displayName"), headers={"Authorization": f"Bearer {token}", **MINIMAL}
        )

    logged = sim.requests[-1]
    assert logged.method == "GET"
    assert logged.path == "/v1.0/users/delta"
    assert logged.query == {"$select": "displayName"}
    assert logged.headers["prefer"] == "return=minimal"
    assert token not in repr(sim.requests) + repr(tokens.requests)
    assert "s3cr3t" not in repr(tokens.requests) + repr(tokens)
    sim.reset_log()
    assert sim.request_count == 0


# ---------------------------------------------------------------------------- groups


def test_groups_delta_tracks_membership_with_members_delta() -> None:
    sim = small_sim()
    anna, ben, cleo = (sim.add_user(userPrincipalName=f"{n}@firma.ch") for n in ("a", "b", "c"))
    group = sim.add_group(displayName="Abteilung Pflege", members=[anna, ben])
    user_type = "#microsoft.graph.user"
    url = f"{BASE}/groups/delta?$select=displayName,members"
    with http(sim) as client:
        initial, delta_link = round_trip(client, url)
        sim.add_member(group, cleo)
        sim.remove_member(group, anna)
        sim.soft_delete(ben)  # soft-deleted members stay members
        changes, next_link = round_trip(client, delta_link, MINIMAL)
        sim.hard_delete(ben)
        purged, _ = round_trip(client, next_link, MINIMAL)

    assert initial == [
        {
            "id": group,
            "displayName": "Abteilung Pflege",
            "members@delta": [
                {"@odata.type": user_type, "id": anna},
                {"@odata.type": user_type, "id": ben},
            ],
        }
    ]
    assert changes == [
        {
            "id": group,
            "members@delta": [
                {"@odata.type": user_type, "id": cleo},
                {"@odata.type": user_type, "id": anna, "@removed": {"reason": "deleted"}},
            ],
        }
    ]
    assert purged == [
        {
            "id": group,
            "members@delta": [
                {"@odata.type": user_type, "id": ben, "@removed": {"reason": "deleted"}}
            ],
        }
    ]


def test_security_groups_are_hard_deleted_and_m365_groups_soft_deleted() -> None:
    sim = small_sim()
    security = sim.add_group(displayName="Sec")
    unified = sim.add_group(displayName="M365", groupTypes=["Unified"])
    with http(sim) as client:
        delta_link = round_trip(client, f"{BASE}/groups/delta?$select=displayName")[1]
        with pytest.raises(ValueError, match="security groups"):
            sim.soft_delete(security)
        sim.hard_delete(security)
        sim.soft_delete(unified)
        entries = by_id(round_trip(client, delta_link)[0])

    assert entries[security]["@removed"] == {"reason": "deleted"}
    assert entries[unified]["@removed"] == {"reason": "changed"}


# ---------------------------------------------------------------------------- tenant


def test_make_tenant_is_deterministic_for_a_seed() -> None:
    def build() -> list[dict[str, Any]]:
        sim = GraphSim(seed=4)
        make_tenant(sim, 120, seed=9)
        return sim.users()

    assert build() == build()


def test_make_tenant_builds_a_realistic_swiss_tenant() -> None:
    sim = GraphSim(seed=1)
    created = make_tenant(sim, 300, seed=7)
    users = sim.users()
    by_user = {u["id"]: u for u in users}

    assert len(created) == len(users) == 300
    assert len({u["id"] for u in users}) == 300
    assert all(re.fullmatch(r"[0-9a-f-]{36}", u["id"]) for u in users)
    assert len({u["userPrincipalName"].lower() for u in users}) == 300
    companies = collections.Counter(u["companyName"] for u in users if u["companyName"])
    assert set(companies) == {"Firma AG", "Firma GmbH", "Tochtergesellschaft"}
    assert companies["Firma AG"] > companies["Firma GmbH"] > companies["Tochtergesellschaft"]
    names = " ".join(f"{u['givenName']} {u['surname']}" for u in users)
    assert re.search(r"[äöüÄÖÜ]", names) and re.search(r"[éèçëïô]", names)
    disabled = [u for u in users if u["accountEnabled"] is False]
    assert 0.02 <= len(disabled) / len(users) <= 0.04
    externals = [u for u in users if u["userPrincipalName"].endswith("@external.firma.ch")]
    assert 2 <= len(externals) <= 15
    assert all(u["userType"] == "Guest" and not u["employeeId"] for u in externals)
    mobiles = [u["mobilePhone"] for u in users if u["mobilePhone"]]
    assert len(mobiles) > 200
    assert all(re.fullmatch(r"\+41 7[5-9] \d{3} \d{2} \d{2}", m) for m in mobiles)
    hires = [u["employeeHireDate"] for u in users if u["employeeHireDate"]]
    assert all(re.fullmatch(r"\d{4}-\d{2}-\d{2}T(22|23|00):00:00Z", h) for h in hires)
    assert any(h.endswith("T22:00:00Z") for h in hires)
    assert any(h.endswith("T23:00:00Z") for h in hires)
    with_mail = [u for u in users if u["mail"]]
    assert all(f"SMTP:{u['mail']}" == u["proxyAddresses"][0] for u in with_mail)
    assert len({u["employeeId"] for u in users if u["employeeId"]}) == 300 - len(externals)
    # The manager relation is a tree with one root per tenant: no cycles, no dangling ids.
    roots = [u for u in users if u["manager"] is None and u not in externals]
    assert len(roots) == 1
    assert roots[0]["jobTitle"] in ("Geschäftsführer", "Geschäftsführerin")
    for user in users:
        seen: set[str] = set()
        current = user
        while current["manager"] is not None:
            assert current["id"] not in seen
            seen.add(current["id"])
            current = by_user[current["manager"]]
    assert {g["displayName"] for g in sim.groups()} >= {"Alle Mitarbeitenden", "Abteilung Pflege"}
