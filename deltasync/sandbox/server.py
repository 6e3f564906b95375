"""Loopback HTTP(S) servers for the simulators, and the ready-made sandbox bundle.

The simulators answer ``httpx.Request`` objects in-process. Some clients cannot be pointed at
an in-process transport (azure-identity's credentials talk aiohttp to an https authority,
``deltasync demo`` runs the real CLI), so :class:`LoopbackServer` puts any such handler on a
real socket. :func:`start_sandbox` starts the whole simulated world deltasync needs, Graph,
the Entra token endpoint (over TLS, with a throwaway CA) and ELIZA, and writes a config
file pointing at it; the secrets it invents are passed through environment variables, as a
real installation should do.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import shlex
import socket
import ssl
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, Final

import httpx
import yaml

from deltasync.sandbox.eliza import ElizaSim
from deltasync.sandbox.graph import GraphSim, TokenSim, make_tenant
from deltasync.sandbox.graph import tenant_data as td
from deltasync.sandbox.tls import TlsFiles, server_context, write_tls_files

__all__ = [
    "CLIENT_SECRET_VAR",
    "ELIZA_TOKEN_VAR",
    "LoopbackServer",
    "Sandbox",
    "start_sandbox",
]

Handler = Callable[[httpx.Request], httpx.Response]

CLIENT_SECRET_VAR: Final = "DELTASYNC_SANDBOX_CLIENT_SECRET"
ELIZA_TOKEN_VAR: Final = "DELTASYNC_SANDBOX_API_TOKEN"
SANDBOX_TENANT: Final = "sandbox-tenant"
SANDBOX_CLIENT: Final = "sandbox-client"
_HOP_BY_HOP: Final = frozenset(
    {"connection", "keep-alive", "transfer-encoding", "content-length", "upgrade", "te"}
)

log = logging.getLogger(__name__)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self,
        address: tuple[str, int],
        app: Handler,
        ssl_context: ssl.SSLContext | None,
    ) -> None:
        self.app = app
        self.ssl_context = ssl_context
        self.open_sockets: set[socket.socket] = set()
        self.sockets_lock = threading.Lock()
        super().__init__(address, _RequestHandler)

    def finish_request(self, request: Any, client_address: Any) -> None:
        # The TLS handshake runs here, in the connection's own thread, so a slow or broken
        # client cannot block the accept loop.
        conn: socket.socket = request
        if self.ssl_context is not None:
            try:
                conn = self.ssl_context.wrap_socket(request, server_side=True)
            except (ssl.SSLError, OSError):
                return
        with self.sockets_lock:
            self.open_sockets.add(conn)
        try:
            super().finish_request(conn, client_address)
        except (ConnectionError, ssl.SSLError, TimeoutError):
            pass
        finally:
            with self.sockets_lock:
                self.open_sockets.discard(conn)
            if conn is not request:
                conn.close()

    def close_open_connections(self) -> None:
        with self.sockets_lock:
            sockets = list(self.open_sockets)
        for conn in sockets:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


class _Server6(_Server):
    address_family = socket.AF_INET6


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "deltasync-sandbox"
    sys_version = ""
    timeout = 60
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the default stderr access log."""

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _serve(self) -> None:
        body = self._read_body()
        scheme = "https" if self.server.ssl_context is not None else "http"
        host = self.headers.get("Host") or "{}:{}".format(*self.server.server_address[:2])
        try:
            url = httpx.URL(f"{scheme}://{host}{self.path}")
        except httpx.InvalidURL:
            self._write(httpx.Response(400, text="Bad request line"))
            return
        headers = [(k, v) for k, v in self.headers.items() if k.lower() != "transfer-encoding"]
        request = httpx.Request(self.command, url, headers=headers, content=body)
        try:
            response = self.server.app(request)
            response.read()
        except Exception:
            log.exception("sandbox handler failed on %s %s", self.command, url.path)
            response = httpx.Response(500, json={"error": "sandbox handler failed"})
        self._write(response)

    def _write(self, response: httpx.Response) -> None:
        content = response.content
        self.send_response(response.status_code, response.reason_phrase)
        for name, value in response.headers.multi_items():
            if name.lower() not in _HOP_BY_HOP:
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(content)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(content)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _serve


class LoopbackServer:
    """A threaded HTTP/1.1 server on loopback that hands each request to ``handler``.

    The socket is bound at construction, so :attr:`url` is known before :meth:`start`.
    With ``ssl_context`` it speaks HTTPS.
    """

    def __init__(
        self,
        handler: Handler,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        server_class = _Server6 if ":" in host else _Server
        self._server = server_class((host, port), handler, ssl_context)
        self.host = host
        self.port: int = self._server.server_address[1]
        self._thread: threading.Thread | None = None
        self._closed = False

    @property
    def url(self) -> str:
        """``http(s)://host:port`` (no trailing slash)."""
        scheme = "https" if self._server.ssl_context is not None else "http"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}"

    def start(self) -> LoopbackServer:
        """Serve in a daemon thread; returns self."""
        if self._closed:
            raise RuntimeError("a stopped LoopbackServer cannot be restarted")
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name=f"sandbox-{self.port}",
                daemon=True,
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, drop open connections and release the port (idempotent)."""
        if self._closed:
            return
        self._closed = True
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=5)
        self._server.close_open_connections()
        self._server.server_close()

    def __enter__(self) -> LoopbackServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"LoopbackServer({self.url})"


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
    workdir: Path, *, users: int = 200, seed: int = 7, page_size: int = 100, port: int = 0
) -> Sandbox:
    """Start simulated Graph, token endpoint (HTTPS) and ELIZA on loopback; write the config.

    ``workdir`` receives ``entra_sync.yaml`` (secrets referenced as ``${VAR}``, values in
    :attr:`Sandbox.env`), the TLS files (``ca.pem``, ``server.pem``, ``server.key``) and,
    once deltasync runs, its ``state/`` folder. With ``port`` 0 every server gets a free
    port; otherwise Graph listens on ``port``, the token endpoint on ``port + 1`` and ELIZA
    on ``port + 2`` (``deltasync sandbox serve --port``), so a restarted sandbox keeps its
    addresses.
    """
    if port and not 0 < port < 65534:
        raise ValueError("port must be between 1 and 65533 (three consecutive ports are used)")
    workdir = Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    client_secret = secrets.token_urlsafe(32)
    api_token = secrets.token_hex(20)

    tokens = TokenSim(SANDBOX_TENANT, SANDBOX_CLIENT, client_secret)
    graph = GraphSim(page_size=page_size, seed=seed, tokens=tokens)
    make_tenant(graph, users, seed=seed)
    eliza = ElizaSim(api_token)
    orgunit_mapping = _seed_eliza(eliza, graph)

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
            _config_text(
                authority=token_server.url,
                graph_url=graph.base_url,
                ca_bundle=tls.ca,
                eliza_url=eliza_server.url,
                orgunit_mapping=orgunit_mapping,
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


def _seed_eliza(eliza: ElizaSim, graph: GraphSim) -> dict[str, int]:
    """Org units for the tenant's companies, plus two hand-made users the sync must not touch."""
    present = {u.get("companyName") for u in graph.users()}
    root = eliza.add_orgunit("Firma-Gruppe")
    mapping: dict[str, int] = {}
    for company in td.COMPANIES:
        if company in present:
            mapping[company] = int(eliza.add_orgunit(company, parent=int(root["id"]))["id"])
    entra_addresses = {
        str(u.get(key) or "").lower()
        for u in graph.users()
        for key in ("userPrincipalName", "mail")
    }
    admin_mail, reception_mail = "it-admin@firma.ch", "empfang@firma.ch"
    if {admin_mail, reception_mail} & entra_addresses:  # pragma: no cover - names are first.last
        raise RuntimeError("a hand-made ELIZA user collides with an Entra user")
    eliza.add_user(
        username="eliza-admin",
        email=admin_mail,
        first_name="ELIZA",
        last_name="Administrator",
        is_active=True,
        is_superuser=True,
        groups=[1, 2],
    )
    eliza.add_user(
        username="empfang",
        email=reception_mail,
        first_name="Empfang",
        last_name="Firma AG",
        is_active=True,
        groups=[1],
    )
    return mapping


def _config_text(
    *,
    authority: str,
    graph_url: str,
    ca_bundle: Path,
    eliza_url: str,
    orgunit_mapping: dict[str, int],
) -> str:
    config: dict[str, Any] = {
        "entra": {
            "tenant_id": SANDBOX_TENANT,
            "client_id": SANDBOX_CLIENT,
            "client_secret": f"${{{CLIENT_SECRET_VAR}}}",
            "authority_host": authority,
            "graph_url": graph_url,
            "ca_bundle": str(ca_bundle),
        },
        "eliza": {
            "base_url": eliza_url,
            "api_token": f"${{{ELIZA_TOKEN_VAR}}}",
        },
        "sync_options": {
            "create_users": True,
            "update_users": True,
            "create_mitarbeitende": True,
            "update_mitarbeitende": True,
            "sync_groups": False,
        },
        "orgunit_mapping": orgunit_mapping,
        "advanced": {
            "user_filter": "accountEnabled eq true",
            "excluded_domains": [f"{td.EXTERNAL_SUBDOMAIN}.firma.ch"],
        },
        "state": {"url": "sqlite:///state/deltasync.db"},
    }
    header = (
        "# deltasync sandbox: simulated Entra ID (Graph + token endpoint) and ELIZA on loopback.\n"
        f"# The secrets come from the environment ({CLIENT_SECRET_VAR}, {ELIZA_TOKEN_VAR});\n"
        "# `source sandbox.env` sets them when the sandbox wrote that file.\n"
    )
    return header + yaml.safe_dump(config, sort_keys=False, allow_unicode=True)
