"""GraphSource through the real msgraph-sdk and azure-identity, against the sandbox on loopback.

Graph (GraphSim) is served over plain HTTP on 127.0.0.1; the Entra token endpoint (TokenSim)
over HTTPS with a throwaway CA, so the real ``azure.identity.aio`` credential fetches real
tokens and Graph checks them. The vcrpy tests record one full round and replay it with the
servers stopped.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlencode

import httpx
import pytest
import vcr
from e2e_helpers import GraphWorld, GraphWorldFactory

from deltasync.config import EntraConfig, Secret
from deltasync.errors import (
    AuthError,
    DeltaTokenExpiredError,
    PermissionDeniedError,
    RunFailedError,
    ServiceUnavailableError,
)
from deltasync.graph.check import Probe, check_graph
from deltasync.graph.client import GraphSource
from deltasync.graph.delta import select_for
from deltasync.models import DeltaPage, ObjectChange, Removed
from deltasync.sandbox.loopback import LoopbackServer
from deltasync.sandbox.tls import make_client_certificate

TENANT = "5f3c2a1e-8d4b-4c6f-9a7e-1b2c3d4e5f60"
CLIENT = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
SECRET = "Sbx8Q~cassette.secret-value-7f3KpL2"
SELECT = select_for(
    ["userPrincipalName", "mail", "givenName", "surname", "jobTitle", "mobilePhone", "manager"]
)
CASSETTES = Path(__file__).parent.parent / "fixtures" / "cassettes"
COMMITTED_CASSETTE = "graph_users_full_round.yaml"
SCRUBBED_TOKEN = "scrubbed-access-token"
JWT = re.compile(r"eyJ[\w-]+\.[\w-]+\.[\w-]+")

T = TypeVar("T")


@pytest.fixture
def world(make_graph_world: GraphWorldFactory) -> GraphWorld:
    return make_graph_world(TENANT, CLIENT, SECRET, users=120, page_size=50, seed=3)


def run(
    cfg: EntraConfig, scenario: Callable[[GraphSource], Awaitable[T]], **options: Any
) -> tuple[T, int]:
    """Run ``scenario`` with a fresh GraphSource; returns its result and the request count."""

    async def main() -> tuple[T, int]:
        source = GraphSource(cfg, **{"max_retries": 2, "retry_delay": 0.0, **options})
        try:
            return await scenario(source), source.requests
        finally:
            await source.aclose()

    return asyncio.run(main())


async def read_round(
    source: GraphSource, url: str, *, minimal: bool = False
) -> tuple[list[DeltaPage], str]:
    """Follow nextLinks from ``url`` until a page carries the deltaLink."""
    pages = [await source.fetch_page(url, minimal=minimal)]
    while pages[-1].next_link is not None:
        pages.append(await source.fetch_page(pages[-1].next_link, minimal=minimal))
    delta_link = pages[-1].delta_link
    assert delta_link is not None
    return pages, delta_link


def full_round(world: GraphWorld) -> tuple[list[DeltaPage], str]:
    (pages, delta_link), _ = run(
        world.cfg, lambda source: read_round(source, source.initial_url("users", SELECT))
    )
    return pages, delta_link


def changes_of(pages: list[DeltaPage]) -> list[ObjectChange]:
    return [change for page in pages for change in page.changes]


def only_change(pages: list[DeltaPage], object_id: str) -> ObjectChange:
    (change,) = {c.id: c for c in changes_of(pages) if c.id == object_id}.values()
    return change


def test_full_round_reads_every_user_page_by_page_until_the_delta_link(world: GraphWorld) -> None:
    async def scenario(source: GraphSource) -> tuple[list[DeltaPage], str]:
        return await read_round(source, source.initial_url("users", SELECT))

    (pages, delta_link), requests = run(world.cfg, scenario)

    assert len(pages) >= 4  # 120 users, 50 a page, plus the sandbox's empty page
    assert all(p.next_link and not p.delta_link for p in pages[:-1])
    assert any(not p.changes and p.next_link for p in pages)  # an empty page goes on
    assert "$deltatoken=" in delta_link
    assert requests == len(pages) == world.graph.request_count
    users = {u["id"]: u for u in world.graph.users()}
    seen = {c.id: c for c in changes_of(pages)}
    assert seen.keys() == users.keys()
    for user_id, change in seen.items():
        assert change.removed is None
        assert set(change.props) <= set(SELECT)
        assert change.props["userPrincipalName"] == users[user_id]["userPrincipalName"]
    managed = [c for c in seen.values() if c.props.get("manager")]
    assert managed  # manager@delta became the manager's id
    assert all(m.props["manager"] in users for m in managed)


@pytest.mark.parametrize("trailing", ["", "/"])
def test_requests_go_to_clean_urls_with_a_bearer_token(world: GraphWorld, trailing: str) -> None:
    world.cfg = replace(world.cfg, graph_url=world.cfg.graph_url + trailing)

    full_round(world)

    paths = [r.path for r in world.graph.requests]
    assert paths
    assert all("//" not in path for path in paths)
    assert all(path == "/v1.0/users/delta" for path in paths)
    first = world.graph.requests[0]
    assert first.query == {"$select": ",".join(SELECT)}
    assert first.headers["authorization"] == "Bearer ***"
    assert first.headers["x-ms-throttle-priority"] == "low"
    assert all(r.status == 200 for r in world.graph.requests)


def test_incremental_round_with_prefer_minimal_returns_only_changed_properties(
    world: GraphWorld,
) -> None:
    _, delta_link = full_round(world)
    user_id = world.user_ids[5]
    world.graph.update_user(user_id, jobTitle="Leiterin Pflege")
    world.graph.reset_log()

    (pages, _), _ = run(world.cfg, lambda source: read_round(source, delta_link, minimal=True))

    assert only_change(pages, user_id).props == {"id": user_id, "jobTitle": "Leiterin Pflege"}
    assert {r.headers.get("prefer") for r in world.graph.requests} == {"return=minimal"}


def test_incremental_round_without_minimal_repeats_unchanged_properties(world: GraphWorld) -> None:
    _, delta_link = full_round(world)
    user_id = world.user_ids[5]
    world.graph.update_user(user_id, jobTitle="Leiterin Pflege")
    world.graph.reset_log()

    (pages, _), _ = run(world.cfg, lambda source: read_round(source, delta_link))

    props = only_change(pages, user_id).props
    assert props["jobTitle"] == "Leiterin Pflege"
    assert props["userPrincipalName"] == world.graph.user(user_id)["userPrincipalName"]
    assert all("prefer" not in r.headers for r in world.graph.requests)


def test_explicit_null_survives_as_none_in_props(world: GraphWorld) -> None:
    _, delta_link = full_round(world)
    user_id = next(u["id"] for u in world.graph.users() if u.get("mobilePhone"))
    world.graph.update_user(user_id, mobilePhone=None)

    (pages, _), _ = run(world.cfg, lambda source: read_round(source, delta_link, minimal=True))

    props = only_change(pages, user_id).props
    assert "mobilePhone" in props
    assert props["mobilePhone"] is None
    assert "jobTitle" not in props  # unchanged, so absent


def test_soft_and_hard_deletes_arrive_as_removed_changes(world: GraphWorld) -> None:
    _, delta_link = full_round(world)
    soft, hard = world.user_ids[-1], world.user_ids[-2]
    world.graph.soft_delete(soft)
    world.graph.hard_delete(hard)

    (pages, _), _ = run(world.cfg, lambda source: read_round(source, delta_link, minimal=True))

    assert only_change(pages, soft).removed is Removed.CHANGED
    assert only_change(pages, hard).removed is Removed.DELETED


def test_expired_delta_token_raises_delta_token_expired(world: GraphWorld) -> None:
    _, delta_link = full_round(world)
    world.graph.expire_tokens()

    with pytest.raises(DeltaTokenExpiredError) as caught:
        run(world.cfg, lambda source: source.fetch_page(delta_link, minimal=True))

    assert "syncStateNotFound" in str(caught.value)
    token = delta_link.split("$deltatoken=")[1]
    assert token not in str(caught.value)  # the opaque token is shortened


def test_gone_410_raises_delta_token_expired(world: GraphWorld) -> None:
    _, delta_link = full_round(world)
    world.graph.fail_next(410)

    with pytest.raises(DeltaTokenExpiredError, match="410"):
        run(world.cfg, lambda source: source.fetch_page(delta_link, minimal=True))


def test_429_with_retry_after_is_retried_and_succeeds(world: GraphWorld) -> None:
    world.graph.throttle(1, retry_after=1)
    started = time.monotonic()

    page, requests = run(
        world.cfg,
        lambda source: source.fetch_page(source.initial_url("users", SELECT), minimal=False),
    )

    assert time.monotonic() - started >= 1.0  # Retry-After was honoured
    assert requests == 2
    assert [r.status for r in world.graph.requests] == [429, 200]
    assert world.graph.requests[1].headers["retry-attempt"] == "1"
    assert page.changes


def test_503_that_persists_raises_service_unavailable_after_the_retries(world: GraphWorld) -> None:
    world.graph.fail_next(503, n=10)

    async def scenario(source: GraphSource) -> int:
        with pytest.raises(ServiceUnavailableError) as caught:
            await source.fetch_page(source.initial_url("users", SELECT), minimal=False)
        assert "503" in str(caught.value)
        assert "after 2 retries" in str(caught.value)
        return source.requests

    requests, _ = run(world.cfg, scenario, max_retries=2)

    assert requests == 3  # the first attempt and two retries
    assert [r.status for r in world.graph.requests] == [503, 503, 503]


@pytest.mark.parametrize("statuses", [[500], [502], [500, 502]])
def test_500_and_502_are_retried_with_backoff_and_succeed(
    world: GraphWorld, statuses: list[int]
) -> None:
    for status in statuses:
        world.graph.fail_next(status)

    page, requests = run(
        world.cfg,
        lambda source: source.fetch_page(source.initial_url("users", SELECT), minimal=False),
    )

    assert page.changes
    assert [r.status for r in world.graph.requests] == [*statuses, 200]
    assert requests == len(statuses) + 1
    assert world.graph.requests[-1].headers["retry-attempt"] == str(len(statuses))


@pytest.mark.parametrize("status", [500, 502])
def test_500_or_502_that_persists_raises_service_unavailable_after_the_retries(
    world: GraphWorld, status: int
) -> None:
    world.graph.fail_next(status, n=10)

    async def scenario(source: GraphSource) -> int:
        with pytest.raises(ServiceUnavailableError) as caught:
            await source.fetch_page(source.initial_url("users", SELECT), minimal=False)
        assert str(status) in str(caught.value)
        assert "after 2 retries" in str(caught.value)
        return source.requests

    requests, _ = run(world.cfg, scenario, max_retries=2)

    assert requests == 3
    assert [r.status for r in world.graph.requests] == [status] * 3


class FlakyTransport(httpx.AsyncBaseTransport):
    """A real loopback transport whose first ``len(errors)`` attempts fail.

    A ``ConnectError`` fails before the request leaves; any other error is raised after the
    server has answered (the connection dropped while the response was on its way).
    """

    def __init__(self, errors: list[httpx.TransportError]) -> None:
        self._inner = httpx.AsyncHTTPTransport()
        self._errors = list(errors)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self._errors:
            error = self._errors.pop(0)
            if not isinstance(error, httpx.ConnectError):
                response = await self._inner.handle_async_request(request)
                await response.aread()
                await response.aclose()
            raise error
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


def reset(kind: type[httpx.TransportError]) -> httpx.TransportError:
    return kind("[Errno 104] Connection reset by peer")


@pytest.mark.parametrize(
    "kinds",
    [
        [httpx.RemoteProtocolError],
        [httpx.ReadError],
        [httpx.ConnectError],
        [httpx.ConnectError, httpx.RemoteProtocolError],
    ],
)
def test_connection_resets_are_retried_and_succeed(
    world: GraphWorld, kinds: list[type[httpx.TransportError]]
) -> None:
    transport = FlakyTransport([reset(kind) for kind in kinds])

    page, requests = run(
        world.cfg,
        lambda source: source.fetch_page(source.initial_url("users", SELECT), minimal=False),
        transport=transport,
    )

    assert page.changes
    assert requests == len(kinds) + 1
    reached = sum(kind is not httpx.ConnectError for kind in kinds) + 1
    assert world.graph.request_count == reached
    assert world.graph.requests[-1].headers["retry-attempt"] == str(len(kinds))


def test_connection_resets_that_persist_raise_service_unavailable_after_the_retries(
    world: GraphWorld,
) -> None:
    transport = FlakyTransport([reset(httpx.RemoteProtocolError) for _ in range(10)])

    async def scenario(source: GraphSource) -> int:
        with pytest.raises(ServiceUnavailableError) as caught:
            await source.fetch_page(source.initial_url("users", SELECT), minimal=False)
        message = str(caught.value)
        assert "Graph unreachable" in message
        assert "RemoteProtocolError" in message
        assert "after 2 retries" in message
        return source.requests

    requests, _ = run(world.cfg, scenario, max_retries=2, transport=transport)

    assert requests == 3


def test_a_400_is_not_retried(world: GraphWorld) -> None:
    world.graph.fail_next(400, code="Request_BadRequest", n=5)

    with pytest.raises(RunFailedError, match="400"):
        run(
            world.cfg,
            lambda source: source.fetch_page(source.initial_url("users", SELECT), minimal=False),
        )

    assert [r.status for r in world.graph.requests] == [400]


def test_wrong_client_secret_raises_auth_error_without_the_secret(world: GraphWorld) -> None:
    wrong = "Wr0ng~secret-value-that-must-not-leak"
    cfg = replace(world.cfg, client_secret=Secret(wrong))

    with pytest.raises(AuthError) as caught:
        run(
            cfg,
            lambda source: source.fetch_page(source.initial_url("users", SELECT), minimal=False),
        )

    error = caught.value
    assert "AADSTS7000215" in str(error)
    assert f"tenant {TENANT} / client {CLIENT}" in str(error)
    for text in (str(error), repr(error), str(error.args)):
        assert wrong not in text
        assert SECRET not in text
    assert error.__cause__ is None
    assert world.graph.request_count == 0  # Graph was never asked


def test_missing_permission_raises_permission_denied_naming_user_read_all(
    world: GraphWorld,
) -> None:
    world.graph.granted.clear()

    with pytest.raises(PermissionDeniedError) as caught:
        run(
            world.cfg,
            lambda source: source.fetch_page(source.initial_url("users", SELECT), minimal=False),
        )

    assert "User.Read.All" in str(caught.value)
    assert "403" in str(caught.value)


def test_revoked_access_token_raises_auth_error(world: GraphWorld) -> None:
    async def scenario(source: GraphSource) -> None:
        await source.fetch_page(source.initial_url("users", SELECT), minimal=False)
        world.tokens.revoke_all()
        await source.fetch_page(source.initial_url("users", SELECT), minimal=False)

    with pytest.raises(AuthError, match="401"):
        run(world.cfg, scenario)


def test_unreachable_graph_raises_service_unavailable(world: GraphWorld) -> None:
    with socket.socket() as probe:  # a port nobody listens on once the probe is closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    cfg = replace(world.cfg, graph_url=f"http://127.0.0.1:{port}/v1.0")

    with pytest.raises(ServiceUnavailableError, match="Graph unreachable"):
        run(
            cfg,
            lambda source: source.fetch_page(source.initial_url("users", SELECT), minimal=False),
        )


def test_certificate_credential_gets_a_token_and_reads_a_page(world: GraphWorld) -> None:
    certificate = make_client_certificate(world.tls_dir)
    world.tokens.add_certificate(certificate.certificate)
    cfg = replace(world.cfg, client_secret=None, certificate_path=certificate.pem)

    page, _ = run(
        cfg, lambda source: source.fetch_page(source.initial_url("users", SELECT), minimal=False)
    )

    assert page.changes
    assert world.graph.requests[0].status == 200


IDENTITY_CLIENT = "6f1c2b3a-4d5e-4f60-8a7b-9c0d1e2f3a4b"


@pytest.mark.parametrize("identity_client_id", [IDENTITY_CLIENT, None])
def test_managed_identity_asks_for_the_configured_user_assigned_identity(
    world: GraphWorld, monkeypatch: pytest.MonkeyPatch, identity_client_id: str | None
) -> None:
    """An App Service identity endpoint on loopback hands out tokens minted by TokenSim."""
    asked: list[dict[str, str]] = []

    def identity_endpoint(request: httpx.Request) -> httpx.Response:
        params = dict(request.url.params)
        asked.append({**params, "header": request.headers.get("x-identity-header", "")})
        form = urlencode(
            {
                "grant_type": "client_credentials",
                "client_id": CLIENT,
                "client_secret": SECRET,
                "scope": params["resource"].rstrip("/") + "/.default",
            }
        )
        minted = world.tokens.handle(
            httpx.Request(
                "POST",
                f"{world.tokens.authority}/{TENANT}/oauth2/v2.0/token",
                content=form.encode(),
                headers={"content-type": "application/x-www-form-urlencoded"},
            )
        )
        token = minted.json()["access_token"]
        body = {
            "access_token": token,
            "expires_on": str(int(time.time()) + 3600),
            "resource": params["resource"],
            "token_type": "Bearer",
        }
        return httpx.Response(200, json=body)

    with LoopbackServer(identity_endpoint) as identity:
        monkeypatch.setenv("IDENTITY_ENDPOINT", f"{identity.url}/msi/token")
        monkeypatch.setenv("IDENTITY_HEADER", "sandbox-identity-header")
        cfg = replace(
            world.cfg,
            client_secret=None,
            managed_identity=True,
            managed_identity_client_id=identity_client_id,
        )

        page, _ = run(
            cfg,
            lambda source: source.fetch_page(source.initial_url("users", SELECT), minimal=False),
        )

    assert page.changes
    assert asked
    assert asked[0]["header"] == "sandbox-identity-header"
    assert asked[0].get("client_id") == identity_client_id
    assert CLIENT not in asked[0].values()  # the app registration's id is not the identity's


# ------------------------------------------------------------------ vcrpy cassettes


def scrub_access_token(response: dict[str, Any]) -> dict[str, Any]:
    """vcrpy hook: replace the access token in a recorded token-endpoint answer."""
    body = response["body"]["string"]
    if b"access_token" in body:
        data = json.loads(body)
        data["access_token"] = SCRUBBED_TOKEN
        response["body"]["string"] = json.dumps(data).encode()
        headers = response["headers"]
        for name in [h for h in headers if h.lower() == "content-length"]:
            headers[name] = [str(len(response["body"]["string"]))]
    return response


def cassette_vcr(folder: Path) -> vcr.VCR:
    return vcr.VCR(
        cassette_library_dir=str(folder),
        filter_headers=["authorization"],
        filter_post_data_parameters=["client_secret", "client_assertion"],
        before_record_response=scrub_access_token,
        match_on=["method", "scheme", "host", "path", "query"],  # not the port
        decode_compressed_response=True,
    )


def read_users_round(cfg: EntraConfig) -> list[DeltaPage]:
    (pages, _), _ = run(cfg, lambda source: read_round(source, source.initial_url("users", SELECT)))
    return pages


def assert_no_secrets(cassette: Path, *access_tokens: str) -> None:
    text = cassette.read_text(encoding="utf-8")
    assert SECRET not in text
    assert "client_secret" not in text  # the form parameter was filtered out
    for token in access_tokens:
        assert token not in text
    assert not JWT.search(text)  # no access token of any kind
    assert SCRUBBED_TOKEN in text  # the token answer was recorded, then scrubbed


def test_recorded_round_replays_with_the_servers_stopped(
    tmp_path: Path, make_graph_world: GraphWorldFactory
) -> None:
    rerecord = os.environ.get("DELTASYNC_RERECORD") == "1"
    folder = CASSETTES if rerecord else tmp_path / "cassettes"
    name = COMMITTED_CASSETTE if rerecord else "round.yaml"
    (folder / name).unlink(missing_ok=True)  # "all" would add to an existing cassette
    world = make_graph_world(TENANT, CLIENT, SECRET, users=12, page_size=5, seed=3)
    try:
        with cassette_vcr(folder).use_cassette(name, record_mode="all"):
            recorded = read_users_round(world.cfg)
        issued = list(world.tokens.issued)
    finally:
        world.stop()
    assert issued  # a real token was fetched while recording

    with cassette_vcr(folder).use_cassette(name, record_mode="none") as cassette:
        replayed = read_users_round(world.cfg)
        assert cassette.all_played

    assert replayed == recorded
    assert len({c.id for c in changes_of(replayed)}) == 12
    assert_no_secrets(folder / name, *issued)


def test_committed_cassette_replays_offline_and_holds_no_secret() -> None:
    cassette_path = CASSETTES / COMMITTED_CASSETTE
    cfg = EntraConfig(
        tenant_id=TENANT,
        client_id=CLIENT,
        client_secret=Secret(SECRET),
        authority_host="https://127.0.0.1:9",  # nothing listens there: replay only
        graph_url="http://127.0.0.1:9/v1.0",
    )

    with cassette_vcr(CASSETTES).use_cassette(COMMITTED_CASSETTE, record_mode="none") as cassette:
        pages = read_users_round(cfg)
        assert cassette.all_played

    assert pages[-1].delta_link is not None
    users = {c.id: c for c in changes_of(pages)}
    assert len(users) == 12
    assert all(c.props["userPrincipalName"].endswith("firma.ch") for c in users.values())
    assert_no_secrets(cassette_path)


# ------------------------------------------------------------------ check (graph side)


def graph_check(world: GraphWorld, *, select: list[str], sync_groups: bool = False) -> list[Probe]:
    return asyncio.run(check_graph(world.cfg, select=select, sync_groups=sync_groups))


def test_check_passes_credential_permissions_and_the_full_select(world: GraphWorld) -> None:
    probes = graph_check(world, select=SELECT, sync_groups=True)

    assert [(p.name, p.ok) for p in probes] == [
        ("credential", True),
        ("token permissions", True),
        ("graph users", True),
        ("graph groups", True),
    ]
    users = next(r for r in world.graph.requests if r.path == "/v1.0/users")
    assert users.query == {"$select": ",".join(SELECT), "$top": "1"}
    groups = next(r for r in world.graph.requests if r.path == "/v1.0/groups")
    assert groups.query == {"$select": "id,displayName", "$top": "1"}


def test_check_names_a_misspelt_property_from_graphs_400(world: GraphWorld) -> None:
    probes = graph_check(world, select=[*SELECT, "jobTitel"])

    users = next(p for p in probes if p.name == "graph users")
    assert not users.ok
    assert "Could not find a property named 'jobTitel' on type 'microsoft.graph.user'" in (
        users.detail
    )
    assert "field_mapping" in users.fix


def test_check_names_a_missing_groups_permission(world: GraphWorld) -> None:
    world.tokens.roles.discard("GroupMember.Read.All")

    probes = {p.name: p for p in graph_check(world, select=SELECT, sync_groups=True)}

    assert probes["credential"].ok
    assert probes["graph users"].ok
    assert not probes["token permissions"].ok
    assert "GroupMember.Read.All" in probes["token permissions"].detail
    assert "Grant admin consent" in probes["token permissions"].fix
    assert not probes["graph groups"].ok
    assert "403" in probes["graph groups"].detail
    assert "GroupMember.Read.All" in probes["graph groups"].fix


def test_check_accepts_directory_read_all_for_users_and_groups(world: GraphWorld) -> None:
    world.tokens.roles.clear()
    world.tokens.roles.add("Directory.Read.All")
    world.graph.granted.add("Directory.Read.All")  # the same set: Graph agrees

    probes = graph_check(world, select=SELECT, sync_groups=False)

    assert all(p.ok for p in probes[:2])
    assert "Directory.Read.All" in probes[1].detail


def test_check_translates_a_wrong_secret_without_showing_it(world: GraphWorld) -> None:
    wrong = "Wr0ng~secret-value-that-must-not-leak"
    world.cfg = replace(world.cfg, client_secret=Secret(wrong))

    probes = graph_check(world, select=SELECT)

    assert len(probes) == 1
    (credential,) = probes
    assert not credential.ok
    assert "AADSTS7000215" in credential.detail
    assert "Value (not its Secret ID)" in credential.fix
    assert wrong not in credential.detail + credential.fix
    assert world.graph.request_count == 0


def test_check_translates_an_unknown_client_id(world: GraphWorld) -> None:
    world.cfg = replace(world.cfg, client_id="99999999-9999-4999-8999-999999999999")

    (credential,) = graph_check(world, select=SELECT)

    assert "AADSTS700016" in credential.detail
    assert "Application (client) ID" in credential.fix


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_check_names_an_unreachable_graph_host_quickly(world: GraphWorld) -> None:
    port = closed_port()
    world.cfg = replace(world.cfg, graph_url=f"http://127.0.0.1:{port}/v1.0")
    started = time.monotonic()

    probes = {p.name: p for p in graph_check(world, select=SELECT)}

    assert time.monotonic() - started < 5
    assert not probes["graph users"].ok
    assert f"127.0.0.1:{port}" in probes["graph users"].detail
    assert "object at 0x" not in probes["graph users"].detail
    assert "HTTPS_PROXY" in probes["graph users"].fix


def test_check_names_an_unreachable_token_endpoint(world: GraphWorld) -> None:
    port = closed_port()
    world.cfg = replace(world.cfg, authority_host=f"https://127.0.0.1:{port}")

    (credential,) = graph_check(world, select=SELECT)

    assert not credential.ok
    assert f"127.0.0.1:{port}" in credential.detail
    assert "object at 0x" not in credential.detail
