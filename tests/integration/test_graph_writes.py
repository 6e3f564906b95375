"""The simulated Graph accepts the real Graph writes, and every write shows up in the next delta.

Writes go through HTTP with a token from the simulated token endpoint, the way any Graph client
(or ``deltasync sandbox edit``) sends them; each test then follows the next delta round to see
that the change surfaces exactly as a scripted tenant mutation would.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from deltasync.sandbox.graph import GraphSim, TokenSim, make_tenant

BASE = "http://graph.sandbox.invalid/v1.0"
SELECT = "id,userPrincipalName,displayName,jobTitle,mobilePhone,accountEnabled,mail"
NEW_USER: dict[str, Any] = {
    "accountEnabled": True,
    "displayName": "Anna Neu",
    "mailNickname": "anna.neu",
    "userPrincipalName": "anna.neu@firma.ch",
    "passwordProfile": {"forceChangePasswordNextSignIn": True, "password": "x-Secret-42"},
}


class World:
    def __init__(self) -> None:
        self.tokens = TokenSim("t", "c", "s")
        self.sim = GraphSim(page_size=50, seed=2, tokens=self.tokens, empty_pages=False)
        make_tenant(self.sim, 12, seed=2)
        token_client = httpx.Client(transport=httpx.MockTransport(self.tokens.handle))
        form = {
            "grant_type": "client_credentials",
            "client_id": "c",
            "client_secret": "s",
            "scope": "http://graph.sandbox.invalid/.default",
        }
        token = token_client.post("https://login.sandbox.invalid/t/oauth2/v2.0/token", data=form)
        self.http = httpx.Client(
            transport=httpx.MockTransport(self.sim.handle),
            base_url=BASE,
            headers={"Authorization": f"Bearer {token.json()['access_token']}"},
        )
        self.links: dict[str, str] = {}

    def delta(self, resource: str = "users", select: str = SELECT) -> list[dict[str, Any]]:
        """The entries of the next delta round (the first call starts with a full round)."""
        url = self.links.get(resource, f"{BASE}/{resource}/delta?$select={select}")
        entries: list[dict[str, Any]] = []
        while True:
            body = self.http.get(url).json()
            entries.extend(body["value"])
            if "@odata.deltaLink" in body:
                self.links[resource] = body["@odata.deltaLink"]
                return entries
            url = body["@odata.nextLink"]

    def a_user(self, n: int = 0) -> dict[str, Any]:
        return sorted(self.sim.users(), key=lambda u: str(u["userPrincipalName"]))[n]


@pytest.fixture
def world() -> World:
    w = World()
    w.delta()
    w.delta("groups", "displayName,members")
    return w


def test_create_user_answers_201_with_the_user_and_the_next_delta_has_it(world: World) -> None:
    response = world.http.post("/users", json=NEW_USER)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["userPrincipalName"] == "anna.neu@firma.ch"
    assert body["@odata.context"].endswith("$metadata#users/$entity")
    assert "passwordProfile" not in body
    created = world.sim.user(body["id"])
    assert created["accountEnabled"] is True and created["mailNickname"] == "anna.neu"
    (entry,) = world.delta()
    assert entry["id"] == body["id"] and entry["displayName"] == "Anna Neu"
    assert "@removed" not in entry


@pytest.mark.parametrize("missing", sorted(NEW_USER))
def test_create_user_without_a_required_property_is_a_400(world: World, missing: str) -> None:
    body = {k: v for k, v in NEW_USER.items() if k != missing}
    response = world.http.post("/users", json=body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "Request_BadRequest"
    assert missing in error["message"] and "request-id" in error["innerError"]
    assert world.delta() == []


def test_create_user_with_a_taken_upn_is_a_400(world: World) -> None:
    body = {**NEW_USER, "userPrincipalName": world.a_user()["userPrincipalName"].upper()}
    response = world.http.post("/users", json=body)
    assert response.status_code == 400
    assert "already exists" in response.json()["error"]["message"]


def test_patch_user_answers_204_and_the_next_delta_has_the_change(world: World) -> None:
    user = world.a_user()
    response = world.http.patch(f"/users/{user['id']}", json={"jobTitle": "Leiterin Pflege"})
    assert response.status_code == 204 and response.content == b""
    assert world.sim.user(user["id"])["jobTitle"] == "Leiterin Pflege"
    (entry,) = world.delta()
    assert entry["id"] == user["id"] and entry["jobTitle"] == "Leiterin Pflege"


def test_patch_accepts_a_upn_as_key_and_null_clears(world: World) -> None:
    user = next(u for u in world.sim.users() if u.get("mobilePhone"))
    response = world.http.patch(f"/users/{user['userPrincipalName']}", json={"mobilePhone": None})
    assert response.status_code == 204
    (entry,) = world.delta()
    assert entry["id"] == user["id"] and entry["mobilePhone"] is None


def test_patch_account_enabled_false_is_a_change_not_a_removal(world: World) -> None:
    user = world.a_user(1)
    assert (
        world.http.patch(f"/users/{user['id']}", json={"accountEnabled": False}).status_code == 204
    )
    (entry,) = world.delta()
    assert entry["accountEnabled"] is False and "@removed" not in entry


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"jobTitel": "x"}, "jobTitel"),
        ({"id": "00000000-0000-0000-0000-000000000000"}, "id"),
        ({"accountEnabled": "no"}, "accountEnabled"),
        ({"businessPhones": "+41 1"}, "businessPhones"),
    ],
)
def test_patch_with_an_unknown_or_bad_property_is_a_400_and_changes_nothing(
    world: World, body: dict[str, Any], named: str
) -> None:
    user = world.a_user()
    response = world.http.patch(f"/users/{user['id']}", json={"displayName": "X", **body})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "Request_BadRequest" and named in error["message"]
    assert world.sim.user(user["id"])["displayName"] == user["displayName"]
    assert world.delta() == []


def test_patch_body_that_is_not_a_json_object_is_a_400(world: World) -> None:
    user = world.a_user()
    response = world.http.patch(f"/users/{user['id']}", content=b"[1,")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "BadRequest"


def test_delete_is_a_soft_delete_and_restore_brings_the_user_back(world: World) -> None:
    user = world.a_user(2)
    assert world.http.delete(f"/users/{user['id']}").status_code == 204
    assert world.http.get(f"/users/{user['id']}").status_code == 404
    (entry,) = world.delta()
    assert entry == {"id": user["id"], "@removed": {"reason": "changed"}}
    deleted = world.http.get(
        "/directory/deletedItems/microsoft.graph.user",
        params={"$filter": f"userPrincipalName eq '{user['userPrincipalName']}'"},
    ).json()["value"]
    assert [d["id"] for d in deleted] == [user["id"]]
    assert deleted[0]["deletedDateTime"]

    restored = world.http.post(f"/directory/deletedItems/{user['id']}/restore")
    assert restored.status_code == 200, restored.text
    assert restored.json()["id"] == user["id"]
    assert restored.json()["@odata.type"] == "#microsoft.graph.user"
    assert world.http.get(f"/users/{user['id']}").status_code == 200
    (entry,) = world.delta()
    assert entry["id"] == user["id"] and entry["userPrincipalName"] == user["userPrincipalName"]
    assert "@removed" not in entry


def test_group_member_ref_add_and_remove_show_up_in_members_delta(world: World) -> None:
    group = world.sim.groups()[0]
    user = next(u for u in world.sim.users() if u["id"] not in group["members"])
    ref = {"@odata.id": f"https://graph.microsoft.com/v1.0/directoryObjects/{user['id']}"}
    assert world.http.post(f"/groups/{group['id']}/members/$ref", json=ref).status_code == 204
    assert user["id"] in world.sim.group(group["id"])["members"]
    (entry,) = world.delta("groups")
    assert entry["members@delta"] == [{"@odata.type": "#microsoft.graph.user", "id": user["id"]}]

    again = world.http.post(f"/groups/{group['id']}/members/$ref", json=ref)
    assert again.status_code == 400 and "already exist" in again.json()["error"]["message"]

    path = f"/groups/{group['id']}/members/{user['id']}/$ref"
    assert world.http.delete(path).status_code == 204
    (entry,) = world.delta("groups")
    assert entry["members@delta"] == [
        {
            "@odata.type": "#microsoft.graph.user",
            "id": user["id"],
            "@removed": {"reason": "deleted"},
        }
    ]
    assert world.http.delete(path).status_code == 404


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("PATCH", "/users/{unknown}", {"jobTitle": "x"}),
        ("DELETE", "/users/{unknown}", None),
        ("POST", "/directory/deletedItems/{unknown}/restore", None),
        ("POST", "/groups/{unknown}/members/$ref", {"@odata.id": "{ref}"}),
        ("POST", "/groups/{group}/members/$ref", {"@odata.id": "{unknown_ref}"}),
        ("DELETE", "/groups/{unknown}/members/{user}/$ref", None),
    ],
)
def test_unknown_ids_are_404_in_graph_error_shape(
    world: World, method: str, path: str, body: dict[str, str] | None
) -> None:
    unknown = "6b1c2a4e-0000-4000-8000-000000000000"
    user = world.a_user()["id"]
    names = {
        "unknown": unknown,
        "group": world.sim.groups()[0]["id"],
        "user": user,
        "ref": f"{BASE}/directoryObjects/{user}",
        "unknown_ref": f"{BASE}/directoryObjects/{unknown}",
    }
    json_body = {k: v.format(**names) for k, v in body.items()} if body else None
    response = world.http.request(method, path.format(**names), json=json_body)
    assert response.status_code == 404, response.text
    error = response.json()["error"]
    assert error["code"] == "Request_ResourceNotFound" and unknown in error["message"]


def test_writes_need_a_valid_token(world: World) -> None:
    user = world.a_user()
    anonymous = httpx.Client(transport=httpx.MockTransport(world.sim.handle), base_url=BASE)
    response = anonymous.patch(f"/users/{user['id']}", json={"jobTitle": "x"})
    assert response.status_code == 401
    forged = anonymous.delete(f"/users/{user['id']}", headers={"Authorization": "Bearer forged"})
    assert forged.status_code == 401
    assert world.sim.user(user["id"])["jobTitle"] == user["jobTitle"]


def test_unsupported_methods_and_paths_are_rejected(world: World) -> None:
    assert world.http.put("/users", json={}).status_code == 405
    assert world.http.post("/organization", json={}).status_code == 405
    assert world.http.post("/nothing/here", json={}).status_code == 404


def test_list_users_filters_on_user_principal_name_and_get_takes_a_upn(world: World) -> None:
    user = world.a_user(3)
    upn = user["userPrincipalName"]
    found = world.http.get("/users", params={"$filter": f"userPrincipalName eq '{upn.upper()}'"})
    assert found.status_code == 200
    assert [u["id"] for u in found.json()["value"]] == [user["id"]]
    by_upn = world.http.get(f"/users/{upn}", params={"$select": "id,jobTitle"})
    assert by_upn.json()["id"] == user["id"]
    none = world.http.get("/users", params={"$filter": "userPrincipalName eq 'nobody@firma.ch'"})
    assert none.json()["value"] == []
    bad = world.http.get("/users", params={"$filter": "startswith(displayName,'A')"})
    assert bad.status_code == 400
