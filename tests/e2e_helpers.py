"""Helpers for tests that drive whole runs against the loopback sandbox or Graph alone."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deltasync import service
from deltasync.config import Config, EntraConfig, Secret
from deltasync.engine import RunOptions, RunReport
from deltasync.sandbox.graph import GraphSim, TokenSim, make_tenant
from deltasync.sandbox.loopback import LoopbackServer
from deltasync.sandbox.server import Sandbox
from deltasync.sandbox.tls import server_context, write_tls_files

EXTERNAL = "external.firma.ch"


NO_SEAMS = service.Seams()


def sync(config: Config, seams: service.Seams = NO_SEAMS, **kw: Any) -> RunReport:
    flag_names = {f.name for f in dataclasses.fields(service.SyncFlags)}
    flags = service.SyncFlags(**{k: kw.pop(k) for k in list(kw) if k in flag_names})
    return service.run_sync(config, RunOptions(**kw), flags, seams=seams)


def in_scope(sandbox: Sandbox) -> list[dict[str, Any]]:
    """The Entra users the sandbox config syncs, by UPN."""
    users = [
        u
        for u in sandbox.graph.users()
        if u.get("accountEnabled") and not str(u["userPrincipalName"]).endswith(EXTERNAL)
    ]
    return sorted(users, key=lambda u: str(u["userPrincipalName"]))


def writes(sandbox: Sandbox) -> list[Any]:
    return [r for r in sandbox.eliza.requests if r.method != "GET"]


def eliza_user_of(sandbox: Sandbox, entra_id: str) -> list[dict[str, Any]]:
    return [u for u in sandbox.eliza.users.values() if u.get("remote_key") == entra_id]


def eliza_person_of(sandbox: Sandbox, entra_id: str) -> list[dict[str, Any]]:
    return [p for p in sandbox.eliza.persons.values() if p.get("remote_key") == entra_id]


def pick(sandbox: Sandbox, n: int = 1) -> list[dict[str, Any]]:
    users = sorted(in_scope(sandbox), key=lambda u: str(u["userPrincipalName"]))
    return [u for u in users if u.get("jobTitle")][:n]


@dataclass
class GraphWorld:
    """Graph and the TLS token endpoint on loopback, without ELIZA, for one app identity."""

    graph: GraphSim
    tokens: TokenSim
    graph_server: LoopbackServer
    token_server: LoopbackServer
    cfg: EntraConfig
    user_ids: list[str]
    tls_dir: Path

    def stop(self) -> None:
        """Stop both servers (idempotent)."""
        self.graph_server.stop()
        self.token_server.stop()


def start_graph_world(
    tmp_path: Path,
    tenant_id: str,
    client_id: str,
    secret: str,
    *,
    users: int,
    page_size: int,
    seed: int,
) -> GraphWorld:
    """Start a :class:`GraphWorld` with a demo tenant of ``users``; its TLS files go to tls/."""
    tokens = TokenSim(tenant_id, client_id, secret)
    graph = GraphSim(tokens=tokens, page_size=page_size, seed=seed)
    tls = write_tls_files(tmp_path / "tls")
    token_server = LoopbackServer(tokens.handle, ssl_context=server_context(tls)).start()
    graph_server = LoopbackServer(graph.handle).start()
    graph.base_url = f"{graph_server.url}/v1.0"
    tokens.authority = token_server.url
    user_ids = make_tenant(graph, users)
    cfg = EntraConfig(
        tenant_id=tenant_id,
        client_id=client_id,
        client_secret=Secret(secret),
        authority_host=token_server.url,
        graph_url=graph.base_url,
        ca_bundle=tls.ca,
    )
    return GraphWorld(graph, tokens, graph_server, token_server, cfg, user_ids, tmp_path / "tls")


SandboxFactory = Callable[..., Sandbox]
GraphWorldFactory = Callable[..., GraphWorld]


def hand_patch(sandbox: Sandbox, path: str, oid: int, body: dict[str, Any]) -> None:
    """A change made by hand in ELIZA, through its API (``path``: ``user``, ``organisation/…``)."""
    import httpx

    token = sandbox.env["DELTASYNC_SANDBOX_API_TOKEN"]
    with httpx.Client(transport=httpx.MockTransport(sandbox.eliza.handle)) as client:
        r = client.patch(
            f"http://eliza.invalid/api/{path}/{oid}",
            json=body,
            headers={"Authorization": f"Token {token}"},
        )
        assert r.status_code == 200, r.text


def hand_delete(sandbox: Sandbox, path: str, oid: int) -> None:
    """An object deleted by hand in ELIZA, through its API."""
    import httpx

    token = sandbox.env["DELTASYNC_SANDBOX_API_TOKEN"]
    with httpx.Client(transport=httpx.MockTransport(sandbox.eliza.handle)) as client:
        r = client.delete(
            f"http://eliza.invalid/api/{path}/{oid}", headers={"Authorization": f"Token {token}"}
        )
        assert r.status_code == 204, r.text
