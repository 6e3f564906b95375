"""The ready-made sandbox: the simulated world deltasync needs, running on loopback.

:func:`start_sandbox` starts Graph, the Entra token endpoint (over TLS, with a throwaway CA)
and ELIZA on loopback servers and writes a config file pointing at them; the secrets it
invents are passed through environment variables, as a real installation should do.
"""

from __future__ import annotations

import os
import secrets
import shlex
from pathlib import Path
from types import TracebackType

from deltasync.sandbox.eliza import ElizaSim
from deltasync.sandbox.graph import GraphSim, TokenSim, add_project_groups, make_tenant
from deltasync.sandbox.loopback import LoopbackServer
from deltasync.sandbox.provision import (
    CLIENT_SECRET_VAR,
    ELIZA_TOKEN_VAR,
    SANDBOX_CLIENT,
    SANDBOX_TENANT,
    config_text,
    seed_eliza,
)
from deltasync.sandbox.tls import TlsFiles, server_context, write_tls_files

__all__ = ["CLIENT_SECRET_VAR", "ELIZA_TOKEN_VAR", "Sandbox", "start_sandbox"]


class Sandbox:
    """A running sandbox: simulators, their servers and the config file pointing at them."""

    def __init__(
        self,
        *,
        workdir: Path,
        graph: GraphSim,
        tokens: TokenSim,
        eliza: ElizaSim,
        config_path: Path,
        env: dict[str, str],
        tls: TlsFiles,
        graph_server: LoopbackServer,
        token_server: LoopbackServer,
        eliza_server: LoopbackServer,
        orgunit_mapping: dict[str, int],
    ) -> None:
        self.workdir = workdir
        self.graph = graph
        self.tokens = tokens
        self.eliza = eliza
        self.config_path = config_path
        self.env = env
        self.tls = tls
        self.graph_server = graph_server
        self.token_server = token_server
        self.eliza_server = eliza_server
        self.orgunit_mapping = orgunit_mapping

    @property
    def graph_url(self) -> str:
        """The Graph root, ``http://127.0.0.1:<port>/v1.0``."""
        return self.graph.base_url

    @property
    def authority(self) -> str:
        """The token endpoint's authority host, ``https://127.0.0.1:<port>``."""
        return self.token_server.url

    @property
    def eliza_url(self) -> str:
        """ELIZA's instance root (the API is below ``/api``)."""
        return self.eliza_server.url

    @property
    def ca_path(self) -> Path:
        """The CA certificate that signed the token endpoint's certificate."""
        return self.tls.ca

    def write_env_file(self) -> Path:
        """Write ``sandbox.env`` (mode 0600) with ``export VAR=value`` lines for the secrets."""
        path = self.workdir / "sandbox.env"
        text = "".join(f"export {k}={shlex.quote(v)}\n" for k, v in sorted(self.env.items()))
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.fchmod(fd, 0o600)
            os.write(fd, text.encode("utf-8"))
        finally:
            os.close(fd)
        return path

    def stop(self) -> None:
        """Stop the three servers (idempotent)."""
        for server in (self.graph_server, self.eliza_server, self.token_server):
            server.stop()

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return (
            f"Sandbox(graph={self.graph_url}, authority={self.authority}, "
            f"eliza={self.eliza_url}, config={self.config_path})"
        )


def start_sandbox(
    workdir: Path,
    *,
    users: int = 200,
    seed: int = 7,
    page_size: int = 100,
    port: int = 0,
    sync_groups: bool = False,
    members_per_entry: int = 500,
    eliza_latency_ms: float = 0.0,
    eliza_log_limit: int | None = None,
    groups: int = 0,
) -> Sandbox:
    """Start simulated Graph, token endpoint (HTTPS) and ELIZA on loopback; write the config.

    ``workdir`` receives ``entra_sync.yaml`` (secrets referenced as ``${VAR}``, values in
    :attr:`Sandbox.env`), the TLS files (``ca.pem``, ``server.pem``, ``server.key``) and,
    once deltasync runs, its ``state/`` folder. With ``port`` 0 every server gets a free
    port; otherwise Graph listens on ``port``, the token endpoint on ``port + 1`` and ELIZA
    on ``port + 2`` (``deltasync sandbox serve --port``), so a restarted sandbox keeps its
    addresses. ``sync_groups`` switches group sync on in the config; ``members_per_entry``
    is how many members one delta entry of a group carries (a bigger group spans pages).
    addresses. ``eliza_latency_ms`` holds back each ELIZA answer that long (requests overlap,
    as on a real server); ``eliza_log_limit`` bounds ELIZA's request log; ``groups`` adds that
    many project groups to the department groups.
    """
    if port and not 0 < port < 65534:
        raise ValueError("port must be between 1 and 65533 (three consecutive ports are used)")
    workdir = Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    client_secret = secrets.token_urlsafe(32)
    api_token = secrets.token_hex(20)

    tokens = TokenSim(SANDBOX_TENANT, SANDBOX_CLIENT, client_secret)
    graph = GraphSim(
        page_size=page_size, seed=seed, tokens=tokens, members_per_entry=members_per_entry
    )
    user_ids = make_tenant(graph, users, seed=seed)
    if groups:
        add_project_groups(graph, user_ids, groups, seed=seed)
    eliza = ElizaSim(api_token, delay_s=eliza_latency_ms / 1000, log_limit=eliza_log_limit)
    orgunit_mapping = seed_eliza(eliza, graph)

    tls = write_tls_files(workdir)
    servers: list[LoopbackServer] = []
    try:
        graph_server = LoopbackServer(graph.handle, port=port)
        servers.append(graph_server.start())
        token_server = LoopbackServer(
            tokens.handle, port=port + 1 if port else 0, ssl_context=server_context(tls)
        )
        servers.append(token_server.start())
        eliza_server = LoopbackServer(eliza.handle, port=port + 2 if port else 0)
        servers.append(eliza_server.start())
        tokens.authority = token_server.url
        graph.base_url = f"{graph_server.url}/v1.0"
        config_path = workdir / "entra_sync.yaml"
        config_path.write_text(
            config_text(
                authority=token_server.url,
                graph_url=graph.base_url,
                ca_bundle=tls.ca,
                eliza_url=eliza_server.url,
                orgunit_mapping=orgunit_mapping,
                sync_groups=sync_groups,
            ),
            encoding="utf-8",
        )
    except BaseException:
        for server in servers:
            server.stop()
        raise
    return Sandbox(
        workdir=workdir,
        graph=graph,
        tokens=tokens,
        eliza=eliza,
        config_path=config_path,
        env={CLIENT_SECRET_VAR: client_secret, ELIZA_TOKEN_VAR: api_token},
        tls=tls,
        graph_server=graph_server,
        token_server=token_server,
        eliza_server=eliza_server,
        orgunit_mapping=orgunit_mapping,
    )
