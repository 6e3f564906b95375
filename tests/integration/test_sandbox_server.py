"""The sandbox on real sockets: loopback servers, the TLS token endpoint, start_sandbox.

These tests use real clients (httpx, azure-identity, msgraph-sdk) against the simulators on
127.0.0.1, the way ``deltasync demo`` and ``deltasync sandbox serve`` run them.
"""

from __future__ import annotations

import asyncio
import os
import re
import socket
import ssl
import stat
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from e2e_helpers import SandboxFactory

from deltasync.sandbox.graph import GraphSim, TokenSim, make_tenant
from deltasync.sandbox.loopback import LoopbackServer
from deltasync.sandbox.server import Sandbox, start_sandbox
from deltasync.sandbox.tls import make_client_certificate, make_server_tls


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    with start_sandbox(tmp_path_factory.mktemp("sandbox"), users=60, page_size=25) as running:
        yield running


def graph_scope(sandbox: Sandbox) -> str:
    return sandbox.graph_url.removesuffix("/v1.0") + "/.default"


def secret(sandbox: Sandbox) -> str:
    return sandbox.env["DELTASYNC_SANDBOX_CLIENT_SECRET"]


def trust(ca: Path) -> ssl.SSLContext:
    """Trust exactly the sandbox CA (what ``entra.ca_bundle`` does)."""
    return ssl.create_default_context(cafile=str(ca))


def fetch_token(sandbox: Sandbox) -> str:
    with httpx.Client(verify=trust(sandbox.ca_path)) as client:
        response = client.post(
            f"{sandbox.authority}/sandbox-tenant/oauth2/v2.0/token",
            data={
                "grant_type": "client_credentials",
                "client_id": "sandbox-client",
                "client_secret": secret(sandbox),
                "scope": graph_scope(sandbox),
            },
        )
    response.raise_for_status()
    token: str = response.json()["access_token"]
    return token


# ---------------------------------------------------------------------------- LoopbackServer


def test_loopback_server_serves_a_full_delta_round_with_links_back_to_itself() -> None:
    sim = GraphSim(page_size=10)
    make_tenant(sim, 35, seed=3)
    with LoopbackServer(sim.handle) as server:
        sim.base_url = f"{server.url}/v1.0"
        seen: list[str] = []
        with httpx.Client() as client:
            url = f"{server.url}/v1.0/users/delta?$select=displayName,manager"
            while True:
                response = client.get(url, headers={"Prefer": "return=minimal"})
                assert response.status_code == 200
                assert response.headers["content-length"] == str(len(response.content))
                assert response.http_version == "HTTP/1.1"
                body = response.json()
                seen.extend(e["id"] for e in body["value"])
                url = body.get("@odata.nextLink")
                if url is None:
                    break
                assert url.startswith(f"{server.url}/v1.0/users/delta?$skiptoken=")

    assert body["@odata.deltaLink"].startswith(server.url)
    assert set(seen) == {u["id"] for u in sim.users()}
    assert sim.requests[0].headers["prefer"] == "return=minimal"


def test_concurrent_clients_each_get_a_complete_round_while_the_tenant_changes() -> None:
    sim = GraphSim(page_size=20, seed=2)
    make_tenant(sim, 120, seed=5)
    user_ids = {u["id"] for u in sim.users()}

    def full_round(_: int) -> list[str]:
        seen: list[str] = []
        with httpx.Client(timeout=30) as client:
            url: str | None = f"{sim.base_url}/users/delta?$select=jobTitle"
            while url is not None:
                body = client.get(url).json()
                seen.extend(e["id"] for e in body["value"])
                url = body.get("@odata.nextLink")
        return seen

    with LoopbackServer(sim.handle) as server:
        sim.base_url = f"{server.url}/v1.0"
        with ThreadPoolExecutor(max_workers=8) as pool:
            rounds = [pool.submit(full_round, i) for i in range(8)]
            for i, user_id in enumerate(sorted(user_ids)):
                sim.update_user(user_id, jobTitle=f"Titel {i}")
            results = [r.result() for r in rounds]

    assert all(set(seen) == user_ids for seen in results)
    assert sim.request_count == 8 * 7  # 120 users: 6 pages of 20 plus one empty page


def test_loopback_server_passes_bodies_headers_and_status_through() -> None:
    received: list[httpx.Request] = []

    def echo(request: httpx.Request) -> httpx.Response:
        received.append(request)
        return httpx.Response(
            418,
            headers={"X-Echo": request.headers.get("x-test", "")},
            content=request.content[::-1],
        )

    with LoopbackServer(echo) as server, httpx.Client() as client:
        response = client.patch(
            f"{server.url}/a//b?x=1&x=2", content=b"hello", headers={"X-Test": "yes"}
        )
        chunked = client.post(f"{server.url}/c", content=iter([b"ab", b"cd"]))

    assert response.status_code == 418
    assert response.content == b"olleh"
    assert response.headers["x-echo"] == "yes"
    assert received[0].method == "PATCH"
    assert received[0].url.path == "/a//b"
    assert received[0].url.params.get_list("x") == ["1", "2"]
    assert chunked.content == b"dcba"


def test_a_handler_crash_becomes_a_500_and_the_server_keeps_serving() -> None:
    calls = 0

    def flaky(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("boom")
        return httpx.Response(200, text="ok")

    with LoopbackServer(flaky) as server, httpx.Client() as client:
        first = client.get(server.url)
        second = client.get(server.url)

    assert (first.status_code, second.status_code) == (500, 200)


def test_stopping_a_server_releases_its_port() -> None:
    server = LoopbackServer(lambda r: httpx.Response(204)).start()
    port = server.port
    with httpx.Client() as client:
        assert client.get(server.url).status_code == 204
    server.stop()
    server.stop()

    with pytest.raises(httpx.ConnectError), httpx.Client() as client:
        client.get(f"http://127.0.0.1:{port}/")


def test_loopback_server_on_ipv6() -> None:
    try:
        server = LoopbackServer(lambda r: httpx.Response(204), host="::1")
    except OSError:
        pytest.skip("no IPv6 loopback on this machine")
    with server, httpx.Client() as client:
        assert server.url.startswith("http://[::1]:")
        assert client.get(server.url).status_code == 204


# ---------------------------------------------------------------------------- TLS


def test_tls_files_are_written_and_the_key_is_private(tmp_path: Path) -> None:
    make_server_tls(tmp_path)

    assert {p.name for p in tmp_path.iterdir()} == {"ca.pem", "server.pem", "server.key"}
    assert stat.S_IMODE(os.stat(tmp_path / "server.key").st_mode) == 0o600
    assert (tmp_path / "ca.pem").read_text().startswith("-----BEGIN CERTIFICATE-----")


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_token_endpoint_over_tls_is_trusted_with_the_generated_ca(
    tmp_path: Path, host: str
) -> None:
    tokens = TokenSim("t", "c", "s3cr3t")
    with LoopbackServer(tokens.handle, ssl_context=make_server_tls(tmp_path)) as server:
        url = f"https://{host}:{server.port}/t/oauth2/v2.0/token"
        form = {
            "grant_type": "client_credentials",
            "client_id": "c",
            "client_secret": "s3cr3t",
            "scope": "https://graph.microsoft.com/.default",
        }
        with httpx.Client(verify=trust(tmp_path / "ca.pem")) as client:
            response = client.post(url, data=form)
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            httpx.post(url, data=form)  # the system trust store does not know the sandbox CA

    assert response.status_code == 200
    assert response.json()["access_token"] in tokens.issued


def test_a_client_that_fails_the_handshake_does_not_block_the_server(tmp_path: Path) -> None:
    with (
        LoopbackServer(
            lambda r: httpx.Response(204), ssl_context=make_server_tls(tmp_path)
        ) as server,
        socket.create_connection(("127.0.0.1", server.port)) as raw,
    ):
        raw.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")  # plain HTTP to a TLS port
        with httpx.Client(verify=trust(tmp_path / "ca.pem"), timeout=5) as client:
            assert client.get(server.url).status_code == 204


# ---------------------------------------------------------------------------- start_sandbox


def test_start_sandbox_writes_a_config_pointing_at_live_servers(sandbox: Sandbox) -> None:
    text = sandbox.config_path.read_text(encoding="utf-8")
    config: dict[str, Any] = yaml.safe_load(text)
    entra, eliza = config["entra"], config["eliza"]

    assert sandbox.config_path == sandbox.workdir / "entra_sync.yaml"
    assert entra["tenant_id"] == "sandbox-tenant"
    assert entra["client_id"] == "sandbox-client"
    assert entra["client_secret"] == "${DELTASYNC_SANDBOX_CLIENT_SECRET}"
    assert eliza["api_token"] == "${DELTASYNC_SANDBOX_API_TOKEN}"
    for value in sandbox.env.values():
        assert value not in text
    assert re.fullmatch(r"https://127\.0\.0\.1:\d+", entra["authority_host"])
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/v1\.0", entra["graph_url"])
    assert Path(entra["ca_bundle"]) == sandbox.workdir / "ca.pem"
    assert Path(entra["ca_bundle"]).is_file()
    assert config["advanced"] == {
        "user_filter": "accountEnabled eq true",
        "excluded_domains": ["external.firma.ch"],
    }
    assert config["state"] == {"url": "sqlite:///state/deltasync.db"}
    assert config["sync_options"]["create_users"] is True
    assert config["sync_options"]["sync_groups"] is False

    token = fetch_token(sandbox)
    with httpx.Client() as client:
        graph_ids: set[str] = set()
        url: str | None = f"{entra['graph_url']}/users/delta?$select=displayName,companyName"
        while url is not None:
            graph = client.get(url, headers={"Authorization": f"Bearer {token}"})
            assert graph.status_code == 200
            graph_ids |= {e["id"] for e in graph.json()["value"]}
            url = graph.json().get("@odata.nextLink")
        eliza_users = client.get(
            f"{eliza['base_url']}/api/user",
            headers={"Authorization": f"Token {sandbox.env['DELTASYNC_SANDBOX_API_TOKEN']}"},
        )
        eliza_units = client.get(
            f"{eliza['base_url']}/api/organisation/orgunit",
            headers={"Authorization": f"Token {sandbox.env['DELTASYNC_SANDBOX_API_TOKEN']}"},
        )
    assert len(graph_ids) == 60
    assert eliza_users.status_code == 200
    assert eliza_units.status_code == 200
    units = eliza_units.json()
    units = units["results"] if isinstance(units, dict) else units
    titles = {u["id"]: u["titel"] for u in units}
    assert config["orgunit_mapping"] == {
        "Firma AG": next(i for i, t in titles.items() if t == "Firma AG"),
        "Firma GmbH": next(i for i, t in titles.items() if t == "Firma GmbH"),
        "Tochtergesellschaft": next(i for i, t in titles.items() if t == "Tochtergesellschaft"),
    }
    assert all(u["status"] == "aktiv" for u in units)


def test_sandbox_eliza_has_two_hand_made_users_that_match_no_entra_user(
    sandbox: Sandbox,
) -> None:
    eliza_users = list(sandbox.eliza.users.values())
    entra = {
        str(u[k]).lower() for u in sandbox.graph.users() for k in ("userPrincipalName", "mail")
    }

    assert len(eliza_users) == 2
    admin = next(u for u in eliza_users if u["is_superuser"])
    other = next(u for u in eliza_users if not u["is_superuser"])
    assert admin["is_active"] and other["is_active"]
    for user in eliza_users:
        assert user["email"].lower() not in entra
        assert user["username"].lower() not in entra
        assert user["remote_key"] is None


def test_sandbox_tenant_has_the_requested_size_and_page_size(sandbox: Sandbox) -> None:
    token = fetch_token(sandbox)
    with httpx.Client(headers={"Authorization": f"Bearer {token}"}) as client:
        first = client.get(f"{sandbox.graph_url}/users/delta?$select=displayName").json()

    assert len(sandbox.graph.users()) == 60
    assert len(first["value"]) in (0, *range(25, 31))  # the empty page may come first
    assert sandbox.graph.page_size == 25


def test_sandbox_graph_requires_a_token_from_its_token_endpoint(sandbox: Sandbox) -> None:
    with httpx.Client() as client:
        response = client.get(f"{sandbox.graph_url}/users/delta")

    assert response.status_code == 401


def test_write_env_file_exports_the_secrets_readable_by_the_owner_only(
    sandbox: Sandbox,
) -> None:
    path = sandbox.write_env_file()

    assert path == sandbox.workdir / "sandbox.env"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    lines = path.read_text().splitlines()
    assert sorted(lines) == sorted(f"export {k}={v}" for k, v in sandbox.env.items())
    assert set(sandbox.env) == {"DELTASYNC_SANDBOX_CLIENT_SECRET", "DELTASYNC_SANDBOX_API_TOKEN"}


def test_sandbox_repr_shows_no_secret(sandbox: Sandbox) -> None:
    shown = repr(sandbox) + repr(sandbox.tokens) + repr(sandbox.eliza)

    for value in sandbox.env.values():
        assert value not in shown


def test_stopping_the_sandbox_stops_all_servers(tmp_path: Path) -> None:
    running = start_sandbox(tmp_path, users=5)
    urls = [running.graph_url, running.eliza_url]
    running.stop()
    running.stop()

    for url in urls:
        with pytest.raises(httpx.ConnectError):
            httpx.get(url)


def test_sandbox_on_a_fixed_port_uses_three_consecutive_ports(tmp_path: Path) -> None:
    for _ in range(5):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        if port > 65000:
            continue
        try:
            running = start_sandbox(tmp_path, users=3, port=port)
        except OSError:
            continue  # one of the three ports was taken meanwhile; try another base
        with running:
            assert running.graph_url == f"http://127.0.0.1:{port}/v1.0"
            assert running.authority == f"https://127.0.0.1:{port + 1}"
            assert running.eliza_url == f"http://127.0.0.1:{port + 2}"
        return
    pytest.skip("no three consecutive free ports found")


def test_sandbox_config_loads_with_deltasync_config(sandbox: Sandbox) -> None:
    config_module = pytest.importorskip("deltasync.config")
    config = config_module.load_config(sandbox.config_path, env=sandbox.env)

    assert config.entra.graph_url == sandbox.graph_url
    assert config.orgunit_mapping == sandbox.orgunit_mapping


# ---------------------------------------------------------------------------- real clients


def test_azure_identity_client_secret_credential_gets_a_token(sandbox: Sandbox) -> None:
    from azure.identity.aio import ClientSecretCredential

    async def get() -> Any:
        credential = ClientSecretCredential(
            "sandbox-tenant",
            "sandbox-client",
            secret(sandbox),
            authority=sandbox.authority,
            connection_verify=str(sandbox.ca_path),
        )
        async with credential:
            return await credential.get_token(graph_scope(sandbox))

    token = asyncio.run(get())

    assert token.token in sandbox.tokens.issued
    assert token.expires_on > time.time() + 3000


def test_wrong_secret_raises_client_authentication_error_without_the_secret(
    sandbox: Sandbox,
) -> None:
    from azure.core.exceptions import ClientAuthenticationError
    from azure.identity.aio import ClientSecretCredential

    wrong = "wrong-" + secret(sandbox)[:12]

    async def get() -> Any:
        credential = ClientSecretCredential(
            "sandbox-tenant",
            "sandbox-client",
            wrong,
            authority=sandbox.authority,
            connection_verify=str(sandbox.ca_path),
        )
        async with credential:
            return await credential.get_token(graph_scope(sandbox))

    with pytest.raises(ClientAuthenticationError) as caught:
        asyncio.run(get())

    message = str(caught.value)
    assert "AADSTS7000215" in message
    assert wrong not in message
    assert secret(sandbox) not in message


def test_msal_based_sync_credential_discovers_the_token_endpoint(sandbox: Sandbox) -> None:
    from azure.identity import ClientSecretCredential

    credential = ClientSecretCredential(
        "sandbox-tenant",
        "sandbox-client",
        secret(sandbox),
        authority=sandbox.authority,
        connection_verify=str(sandbox.ca_path),
        disable_instance_discovery=True,
    )
    token = credential.get_token(graph_scope(sandbox))

    assert token.token in sandbox.tokens.issued
    assert any(r.path.endswith("/openid-configuration") for r in sandbox.tokens.requests)


def test_certificate_credential_signs_a_client_assertion(tmp_path: Path) -> None:
    from azure.identity.aio import CertificateCredential

    tokens = TokenSim("t", "c", "unused-secret")
    certificate = make_client_certificate(tmp_path)
    tokens.add_certificate(certificate.certificate)
    other = make_client_certificate(tmp_path, name="not-registered")

    async def get(pem: Path, authority: str) -> Any:
        credential = CertificateCredential(
            "t", "c", str(pem), authority=authority, connection_verify=str(tmp_path / "ca.pem")
        )
        async with credential:
            return await credential.get_token("https://graph.microsoft.com/.default")

    with LoopbackServer(tokens.handle, ssl_context=make_server_tls(tmp_path)) as server:
        token = asyncio.run(get(certificate.pem, server.url))
        from azure.core.exceptions import ClientAuthenticationError

        with pytest.raises(ClientAuthenticationError, match="AADSTS700027"):
            asyncio.run(get(other.pem, server.url))

    assert token.token in tokens.issued


def test_msgraph_sdk_reads_delta_rounds_from_the_sandbox(make_sandbox: SandboxFactory) -> None:
    from azure.identity.aio import ClientSecretCredential
    from kiota_abstractions.base_request_configuration import RequestConfiguration
    from msgraph.generated.models.o_data_errors.o_data_error import ODataError
    from msgraph.generated.users.delta.delta_request_builder import DeltaRequestBuilder
    from msgraph.graph_service_client import GraphServiceClient

    running = make_sandbox(users=40, page_size=15)

    async def run() -> tuple[int, str, Any]:
        credential = ClientSecretCredential(
            "sandbox-tenant",
            "sandbox-client",
            secret(running),
            authority=running.authority,
            connection_verify=str(running.ca_path),
        )
        async with credential:
            client = GraphServiceClient(credentials=credential, scopes=[graph_scope(running)])
            client.request_adapter.base_url = running.graph_url
            query = DeltaRequestBuilder.DeltaRequestBuilderGetQueryParameters(
                select=["id", "displayName", "manager"]
            )
            config: RequestConfiguration[Any] = RequestConfiguration(query_parameters=query)
            config.headers.add("Prefer", "return=minimal")
            page: Any = await client.users.delta.get(request_configuration=config)
            ids = {u.id for u in page.value}
            while page.odata_next_link:
                page = await client.users.delta.with_url(page.odata_next_link).get()
                ids |= {u.id for u in page.value}
            running.graph.expire_tokens()
            try:
                await client.users.delta.with_url(page.odata_delta_link).get()
            except ODataError as error:
                return len(ids), page.odata_delta_link, error
            raise AssertionError("the expired token was accepted")

    count, delta_link, error = asyncio.run(run())

    assert count == 40
    assert delta_link.startswith(f"{running.graph_url}/users/delta?$deltatoken=")
    assert error.response_status_code == 400
    assert error.error.code == "syncStateNotFound"
    first = running.graph.requests[0]
    assert first.path == "/v1.0/users/delta()"
    assert first.headers["prefer"] == "return=minimal"
    assert first.headers["authorization"] == "Bearer ***"


def test_ssl_context_from_make_server_tls_is_a_server_context(tmp_path: Path) -> None:
    context = make_server_tls(tmp_path)

    assert isinstance(context, ssl.SSLContext)
    assert context.minimum_version >= ssl.TLSVersion.TLSv1_2
