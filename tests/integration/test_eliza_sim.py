"""The sandbox ELIZA answers as eliza-api.md says, quirks included."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from deltasync.sandbox.eliza import ElizaSim

TOKEN = "sim-token-4f1c"
BASE = "http://eliza.test"


@pytest.fixture
def sim() -> ElizaSim:
    return ElizaSim(TOKEN)


def client_for(sim: ElizaSim, token: str | None = TOKEN, keyword: str = "Token") -> httpx.Client:
    headers = {} if token is None else {"Authorization": f"{keyword} {token}"}
    return httpx.Client(transport=httpx.MockTransport(sim.handle), base_url=BASE, headers=headers)


@pytest.fixture
def http(sim: ElizaSim) -> Iterator[httpx.Client]:
    with client_for(sim) as client:
        yield client


def ids(rows: list[dict[str, Any]]) -> list[int]:
    return [row["id"] for row in rows]


# ---------------------------------------------------------------- filters
def test_unknown_filter_parameter_is_ignored_and_the_whole_list_comes_back(
    sim: ElizaSim, http: httpx.Client
) -> None:
    a = sim.add_user(username="anna", first_name="Anna")
    b = sim.add_user(username="bert", first_name="Bert")
    response = http.get("/api/user", params={"first_name": "Anna"})
    assert response.status_code == 200
    assert ids(response.json()) == [a["id"], b["id"]]
    groups = http.get("/api/customgroup", params={"name": "nope"}).json()
    assert groups == []  # no custom groups yet: the ignored filter does not invent any
    sim.add_customgroup("Team A")
    sim.add_customgroup("Team B")
    assert len(http.get("/api/customgroup", params={"name": "Team A"}).json()) == 2


def test_user_username_and_email_filters_are_case_insensitive(
    sim: ElizaSim, http: httpx.Client
) -> None:
    anna = sim.add_user(username="Anna.Muster@firma.ch", email="Anna.Muster@firma.ch")
    sim.add_user(username="bert@firma.ch", email="bert@firma.ch")
    by_name = http.get("/api/user", params={"username": "anna.muster@FIRMA.ch"}).json()
    by_mail = http.get("/api/user", params={"email": "ANNA.MUSTER@firma.ch"}).json()
    assert ids(by_name) == ids(by_mail) == [anna["id"]]


def test_person_email_filter_is_case_sensitive_and_user_filter_exact(
    sim: ElizaSim, http: httpx.Client
) -> None:
    user = sim.add_user(username="anna")
    anna = sim.add_person(vorname="Anna", nachname="M", email="Anna@firma.ch", user=user["id"])
    sim.add_person(vorname="Bert", nachname="B", email="bert@firma.ch")
    assert (
        http.get("/api/organisation/mitarbeitende", params={"email": "anna@firma.ch"}).json() == []
    )
    exact = http.get("/api/organisation/mitarbeitende", params={"email": "Anna@firma.ch"}).json()
    assert ids(exact) == [anna["id"]]
    linked = http.get("/api/organisation/mitarbeitende", params={"user": str(user["id"])}).json()
    assert ids(linked) == [anna["id"]]


def test_boolean_filters_take_true_and_false_and_filters_are_anded(
    sim: ElizaSim, http: httpx.Client
) -> None:
    active = sim.add_person(vorname="A", nachname="A", remote_key="k1")
    archived = sim.add_person(vorname="B", nachname="B", remote_key="k2", archived=True)
    path = "/api/organisation/mitarbeitende"
    assert ids(http.get(path, params={"archived": "false"}).json()) == [active["id"]]
    assert ids(http.get(path, params={"archived": "true"}).json()) == [archived["id"]]
    both = http.get(path, params={"archived": "true", "remote_key": "k1"}).json()
    assert both == []
    users = http.get("/api/user", params={"is_active": "false"}).json()
    assert users == []


def test_membership_and_orgunit_filters(sim: ElizaSim, http: httpx.Client) -> None:
    p1 = sim.add_person(vorname="A", nachname="A")
    p2 = sim.add_person(vorname="B", nachname="B")
    ou = sim.add_orgunit("Einkauf")
    draft = sim.add_orgunit("Neu", status="entwurf")
    m1 = sim.add_membership(p1["id"], ou["id"], von="2024-01-01")
    sim.add_membership(p2["id"], ou["id"])
    found = http.get(
        "/api/organisation/membership", params={"mitarbeiter": p1["id"], "orgunit": ou["id"]}
    ).json()
    assert ids(found) == [m1["id"]]
    drafts = http.get("/api/organisation/orgunit", params={"status": "entwurf"}).json()
    assert ids(drafts) == [draft["id"]]


def test_integer_filter_with_a_non_number_is_a_400(http: httpx.Client) -> None:
    response = http.get("/api/organisation/membership", params={"mitarbeiter": "abc"})
    assert response.status_code == 400
    assert list(response.json()) == ["mitarbeiter"]


# ---------------------------------------------------------------- paging
def test_without_limit_the_list_is_a_bare_array(sim: ElizaSim, http: httpx.Client) -> None:
    for i in range(3):
        sim.add_user(username=f"u{i}")
    body = http.get("/api/user").json()
    assert isinstance(body, list)
    assert len(body) == 3


def test_with_limit_the_list_is_a_page_with_absolute_next_and_previous(
    sim: ElizaSim, http: httpx.Client
) -> None:
    for i in range(5):
        sim.add_user(username=f"u{i}", remote_key=f"k{i}")
    first = http.get("/api/user", params={"limit": 2, "first_name": "ignored"}).json()
    assert first["count"] == 5
    assert first["previous"] is None
    assert ids(first["results"]) == [1, 2]
    next_url = httpx.URL(first["next"])
    assert next_url.host == "eliza.test"
    assert next_url.params["offset"] == "2"
    assert next_url.params["first_name"] == "ignored"  # the other parameters are kept
    second = http.get(first["next"]).json()
    assert ids(second["results"]) == [3, 4]
    assert second["previous"] is not None
    assert "offset" not in httpx.URL(second["previous"]).params
    third = http.get(second["next"]).json()
    assert ids(third["results"]) == [5]
    assert third["next"] is None


def test_limit_is_capped_by_the_server() -> None:
    sim = ElizaSim(TOKEN, max_limit=2)
    for i in range(3):
        sim.add_user(username=f"u{i}")
    with client_for(sim) as http:
        page = http.get("/api/user", params={"limit": 1000}).json()
    assert len(page["results"]) == 2
    assert page["next"] is not None


def test_default_cap_is_1000(sim: ElizaSim, http: httpx.Client) -> None:
    for i in range(1001):
        sim.add_user(username=f"u{i}")
    page = http.get("/api/user", params={"limit": 5000}).json()
    assert len(page["results"]) == 1000


# ---------------------------------------------------------------- paths, auth, methods
def test_paths_have_no_trailing_slash_and_the_other_style_is_a_django_404(
    http: httpx.Client,
) -> None:
    assert http.get("/api/user").status_code == 200
    wrong = http.get("/api/user/")
    assert wrong.status_code == 404
    assert wrong.headers["Content-Type"].startswith("text/html")
    assert http.get("/api/users").status_code == 404


def test_trailing_slash_instance_serves_only_slash_paths() -> None:
    sim = ElizaSim(TOKEN, trailing_slash=True)
    user = sim.add_user(username="anna")
    with client_for(sim) as http:
        assert http.get("/api/user").status_code == 404
        assert http.get("/api/user/").status_code == 200
        assert http.get(f"/api/user/{user['id']}/").json()["username"] == "anna"
        assert http.get(f"/api/user/{user['id']}").status_code == 404


def test_missing_object_is_a_json_404(http: httpx.Client) -> None:
    response = http.get("/api/user/999")
    assert response.status_code == 404
    assert response.json() == {"detail": "Not found."}


@pytest.mark.parametrize(
    ("token", "keyword", "detail"),
    [
        (None, "Token", "Authentication credentials were not provided."),
        (TOKEN, "Bearer", "Authentication credentials were not provided."),
        ("wrong", "Token", "Invalid token."),
    ],
)
def test_authentication_failures_are_drf_401s(
    sim: ElizaSim, token: str | None, keyword: str, detail: str
) -> None:
    with client_for(sim, token, keyword) as http:
        response = http.get("/api/user")
    assert response.status_code == 401
    assert response.json() == {"detail": detail}
    assert response.headers["WWW-Authenticate"] == "Token"


def test_denied_resources_and_methods_are_403() -> None:
    sim = ElizaSim(TOKEN, denied={"customgroup", "PATCH organisation/mitarbeitende"})
    person = sim.add_person(vorname="A", nachname="B")
    with client_for(sim) as http:
        assert http.get("/api/customgroup").status_code == 403
        path = f"/api/organisation/mitarbeitende/{person['id']}"
        assert http.get(path).status_code == 200
        response = http.patch(path, json={"vorname": "C"})
    assert response.status_code == 403
    assert response.json() == {"detail": "You do not have permission to perform this action."}


def test_orgunits_are_read_only(sim: ElizaSim, http: httpx.Client) -> None:
    ou = sim.add_orgunit("Einkauf")
    created = http.post("/api/organisation/orgunit", json={"titel": "X"})
    assert created.status_code == 405
    assert "GET" in created.headers["Allow"]
    assert (
        http.patch(f"/api/organisation/orgunit/{ou['id']}", json={"titel": "Y"}).status_code == 405
    )
    assert http.delete(f"/api/organisation/orgunit/{ou['id']}").status_code == 405
    assert http.patch("/api/user", json={}).status_code == 405  # no PATCH on a list


# ---------------------------------------------------------------- writes
def test_create_user_fills_defaults_ignores_read_only_and_unknown_fields(
    sim: ElizaSim, http: httpx.Client
) -> None:
    response = http.post(
        "/api/user",
        json={
            "username": "anna@firma.ch",
            "is_superuser": True,
            "id": 99,
            "uuid": "x",
            "created": "2000-01-01T00:00:00Z",
            "favourite_colour": "blue",
        },
    )
    assert response.status_code == 201
    user = response.json()
    assert user["id"] == 1
    assert user["uuid"] != "x"
    assert user["is_superuser"] is False
    assert user["first_name"] == user["last_name"] == ""
    assert user["is_active"] is True
    assert user["groups"] == []
    assert user["email"] is None
    assert user["created"].endswith("Z")
    assert user["created"] != "2000-01-01T00:00:00Z"
    assert "favourite_colour" not in user
    assert sim.users[1]["username"] == "anna@firma.ch"


def test_user_validation_errors_are_field_lists(http: httpx.Client) -> None:
    missing = http.post("/api/user", json={"first_name": None, "groups": [1, 999]})
    assert missing.status_code == 400
    errors = missing.json()
    assert set(errors) == {"username", "first_name", "groups"}
    assert all(isinstance(v, list) and v for v in errors.values())
    too_long = http.post("/api/user", json={"username": "x" * 151})
    assert too_long.status_code == 400
    assert list(too_long.json()) == ["username"]
    assert http.post("/api/user", json={"username": "x" * 150}).status_code == 201
    bad_mail = http.post("/api/user", json={"username": "y", "email": "not-an-address"})
    assert list(bad_mail.json()) == ["email"]
    not_dict = http.post("/api/user", json=["username"])
    assert not_dict.status_code == 400
    assert list(not_dict.json()) == ["non_field_errors"]


def test_username_uniqueness_is_case_insensitive_409(sim: ElizaSim, http: httpx.Client) -> None:
    sim.add_user(username="Anna.Muster")
    response = http.post("/api/user", json={"username": "anna.muster"})
    assert response.status_code == 409
    assert set(response.json()) == {"detail"}
    assert len(sim.users) == 1


def test_email_and_remote_key_uniqueness_409_only_when_set(
    sim: ElizaSim, http: httpx.Client
) -> None:
    sim.add_user(username="a", email="a@firma.ch", remote_key="k-a")
    assert http.post("/api/user", json={"username": "b", "email": "A@firma.ch"}).status_code == 409
    assert http.post("/api/user", json={"username": "b", "remote_key": "k-a"}).status_code == 409
    assert http.post("/api/user", json={"username": "b", "email": None}).status_code == 201
    assert http.post("/api/user", json={"username": "c", "email": None}).status_code == 201
    # users and persons keep remote_key apart
    person = {"vorname": "A", "nachname": "B", "remote_key": "k-a"}
    assert http.post("/api/organisation/mitarbeitende", json=person).status_code == 201
    assert http.post("/api/organisation/mitarbeitende", json=person).status_code == 409


def test_patch_is_partial_and_checks_uniqueness_against_others(
    sim: ElizaSim, http: httpx.Client
) -> None:
    anna = sim.add_user(username="anna", first_name="Anna", email="anna@firma.ch")
    sim.add_user(username="bert")
    response = http.patch(f"/api/user/{anna['id']}", json={"last_name": "Muster"})
    assert response.status_code == 200
    assert response.json()["first_name"] == "Anna"
    assert response.json()["last_name"] == "Muster"
    same = http.patch(f"/api/user/{anna['id']}", json={"username": "ANNA"})
    assert same.status_code == 200  # its own name in another case is no clash
    assert http.patch(f"/api/user/{anna['id']}", json={"username": "Bert"}).status_code == 409
    assert http.patch("/api/user/999", json={"username": "x"}).status_code == 404


def test_put_requires_the_required_fields(sim: ElizaSim, http: httpx.Client) -> None:
    anna = sim.add_user(username="anna")
    assert http.put(f"/api/user/{anna['id']}", json={"first_name": "A"}).status_code == 400
    response = http.put(f"/api/user/{anna['id']}", json={"username": "anna2"})
    assert response.status_code == 200
    assert response.json()["username"] == "anna2"


def test_groups_share_one_id_space_and_patch_replaces_the_list(
    sim: ElizaSim, http: httpx.Client
) -> None:
    ou = sim.add_orgunit("Einkauf")
    ou_group = sim.orgunit_group(ou["id"])
    custom = http.post("/api/customgroup", json={"name": "QM-Team"}).json()
    assert len({1, 2, ou_group, custom["id"]}) == 4
    assert sim.groups[custom["id"]]["name"] == "QM-Team"
    user = sim.add_user(username="anna", groups=[1, ou_group])
    response = http.patch(f"/api/user/{user['id']}", json={"groups": [custom["id"], 1]})
    assert response.json()["groups"] == sorted([1, custom["id"]])
    assert http.post("/api/customgroup", json={"name": "QM-Team"}).status_code == 409
    assert http.post("/api/customgroup", json={"name": "eliza_users"}).status_code == 409
    assert http.delete(f"/api/customgroup/{custom['id']}").status_code == 204
    assert sim.users[user["id"]]["groups"] == [1]


def test_person_validation(sim: ElizaSim, http: httpx.Client) -> None:
    path = "/api/organisation/mitarbeitende"
    missing = http.post(path, json={"vorname": ""})
    assert missing.status_code == 400
    assert set(missing.json()) == {"vorname", "nachname"}
    bad = http.post(
        path,
        json={
            "vorname": "A",
            "nachname": "n" * 101,
            "anstellungsart": "praktikum",
            "eintrittsdatum": "01.04.2024",
            "vorgesetzter": 42,
            "user": 42,
        },
    )
    assert set(bad.json()) == {
        "nachname",
        "anstellungsart",
        "eintrittsdatum",
        "vorgesetzter",
        "user",
    }
    ok = http.post(path, json={"vorname": "A", "nachname": "B", "eintrittsdatum": "2024-04-01"})
    assert ok.status_code == 201
    assert ok.json()["anstellungsart"] == "intern"
    assert ok.json()["archived"] is False


def test_a_user_links_to_at_most_one_person(sim: ElizaSim, http: httpx.Client) -> None:
    user = sim.add_user(username="anna")
    first = sim.add_person(vorname="A", nachname="B", user=user["id"])
    path = "/api/organisation/mitarbeitende"
    second = http.post(path, json={"vorname": "C", "nachname": "D", "user": user["id"]})
    assert second.status_code == 400
    assert list(second.json()) == ["user"]
    again = http.patch(f"{path}/{first['id']}", json={"user": user["id"]})
    assert again.status_code == 200  # re-linking the same person is fine


def test_membership_validation_and_counted_delete(sim: ElizaSim, http: httpx.Client) -> None:
    person = sim.add_person(vorname="A", nachname="B")
    ou = sim.add_orgunit("Einkauf")
    path = "/api/organisation/membership"
    bad = http.post(path, json={"mitarbeiter": 99, "von": "2024-13-01"})
    assert set(bad.json()) == {"mitarbeiter", "orgunit", "von"}
    created = http.post(path, json={"mitarbeiter": person["id"], "orgunit": ou["id"]})
    assert created.status_code == 201
    assert created.json()["bis"] is None
    ended = http.patch(f"{path}/{created.json()['id']}", json={"bis": "2024-06-30"})
    assert ended.json()["bis"] == "2024-06-30"
    assert http.delete(f"{path}/{created.json()['id']}").status_code == 204
    assert sim.membership_deletes == 1
    assert sim.memberships == {}


def test_wrong_content_type_and_broken_json(http: httpx.Client) -> None:
    form = http.post("/api/user", content=b"username=a", headers={"Content-Type": "text/plain"})
    assert form.status_code == 415
    broken = http.post("/api/user", content=b"{", headers={"Content-Type": "application/json"})
    assert broken.status_code == 400


# ---------------------------------------------------------------- schema, log, faults
def test_schema_lists_every_resource_and_its_fields(http: httpx.Client) -> None:
    schema = http.get("/api/schema/").json()
    assert schema["openapi"].startswith("3.")
    user = schema["components"]["schemas"]["User"]["properties"]
    assert {"username", "email", "groups", "remote_key", "is_superuser"} <= set(user)
    assert user["is_superuser"]["readOnly"] is True
    assert "/api/organisation/mitarbeitende" in schema["paths"]
    assert "post" not in schema["paths"]["/api/organisation/orgunit"]


def test_schema_can_be_absent() -> None:
    sim = ElizaSim(TOKEN, serve_schema=False)
    with client_for(sim) as http:
        assert http.get("/api/schema/").status_code == 404


def test_request_log_and_write_count(sim: ElizaSim, http: httpx.Client) -> None:
    http.get("/api/user", params={"username": "a", "limit": 5})
    http.post("/api/user", json={"username": "a"})
    http.patch("/api/user/1", json={"first_name": "A"})
    assert sim.request_count == 3
    assert sim.write_count == 2
    first = sim.requests[0]
    assert (first.method, first.path, first.query) == (
        "GET",
        "/api/user",
        {"username": "a", "limit": "5"},
    )
    assert sim.requests[1].json == {"username": "a"}
    sim.reset_log()
    assert (sim.request_count, sim.write_count, sim.requests) == (0, 0, [])
    assert len(sim.users) == 1


def test_fail_next_answers_without_processing_then_recovers(
    sim: ElizaSim, http: httpx.Client
) -> None:
    sim.fail_next(method="POST", path_contains="/api/user", status=429, retry_after=7, n=2)
    for _ in range(2):
        response = http.post("/api/user", json={"username": "a"})
        assert response.status_code == 429
        assert response.headers["Retry-After"] == "7"
    assert sim.users == {}
    assert http.get("/api/user").status_code == 200  # other methods unaffected
    assert http.post("/api/user", json={"username": "a"}).status_code == 201
    sim.fail_next(status=500, body={"detail": "boom"})
    broken = http.get("/api/user")
    assert (broken.status_code, broken.json()) == (500, {"detail": "boom"})
    assert sim.request_count == 5


def test_lost_response_applies_the_write_but_answers_502(sim: ElizaSim, http: httpx.Client) -> None:
    sim.lose_response_next(path_contains="mitarbeitende")
    user = http.post("/api/user", json={"username": "a"})
    assert user.status_code == 201  # the rule only matches persons
    lost = http.post(
        "/api/organisation/mitarbeitende", json={"vorname": "A", "nachname": "B", "remote_key": "k"}
    )
    assert lost.status_code == 502
    assert [p["remote_key"] for p in sim.persons.values()] == ["k"]


def test_handle_is_thread_safe(sim: ElizaSim) -> None:
    errors: list[int] = []

    def worker(n: int) -> None:
        with client_for(sim) as http:
            for i in range(10):
                response = http.post("/api/user", json={"username": f"w{n}-{i}"})
                if response.status_code != 201:
                    errors.append(response.status_code)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(sim.users) == list(range(1, 81))
    assert sim.write_count == 80


def test_delay_holds_answers_back_after_applying_while_requests_overlap(sim: ElizaSim) -> None:
    sim.delay_s = 0.1
    seen: list[int] = []

    def worker(n: int) -> None:
        with client_for(sim) as http:
            http.post("/api/user", json={"username": f"u{n}"})
            seen.append(len(sim.users))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    assert 0.1 <= elapsed < 0.35  # four 0.1 s delays overlapped
    assert seen == [4, 4, 4, 4]  # every write had landed before the first answer came back


def test_repr_hides_the_token(sim: ElizaSim) -> None:
    assert TOKEN not in repr(sim)


# ---------------------------------------------------------------- the index
def test_filters_and_uniqueness_follow_patches_and_deletes(
    sim: ElizaSim, http: httpx.Client
) -> None:
    anna = sim.add_user(username="anna", email="anna@firma.ch", remote_key="rk-a")
    person = sim.add_person(vorname="Anna", nachname="Muster", user=anna["id"], remote_key="p-a")
    sim.add_membership(person["id"], sim.add_orgunit("AG")["id"])
    http.patch(f"/api/user/{anna['id']}", json={"username": "anna2", "remote_key": "rk-b"})
    assert http.get("/api/user", params={"username": "ANNA"}).json() == []
    assert ids(http.get("/api/user", params={"username": "Anna2"}).json()) == [anna["id"]]
    assert http.get("/api/user", params={"remote_key": "rk-a"}).json() == []
    # the old name is free again, the new one is taken
    assert http.post("/api/user", json={"username": "Anna"}).status_code == 201
    assert http.post("/api/user", json={"username": "ANNA2"}).status_code == 409
    http.delete(f"/api/user/{anna['id']}")
    assert http.get("/api/organisation/mitarbeitende", params={"user": anna["id"]}).json() == []
    http.delete(f"/api/organisation/mitarbeitende/{person['id']}")
    members = http.get("/api/organisation/membership", params={"mitarbeiter": person["id"]})
    assert members.json() == []


def test_a_filtered_lookup_does_not_grow_slower_with_the_number_of_objects(
    sim: ElizaSim, http: httpx.Client
) -> None:
    def lookups() -> float:
        start = time.perf_counter()
        for _ in range(50):
            http.get("/api/user", params={"remote_key": "rk-1"})
        return time.perf_counter() - start

    sim.add_user(username="u1", remote_key="rk-1")
    small = lookups()
    for i in range(20000):
        sim.add_user(username=f"x{i}", remote_key=f"x{i}")
    assert lookups() < 5 * small + 0.05  # a scan of 20,000 rows per request would be ~50x
