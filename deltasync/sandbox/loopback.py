"""Loopback HTTP(S) servers that put an in-process handler on a real socket.

The simulators answer ``httpx.Request`` objects in-process. Some clients cannot be pointed at
an in-process transport (azure-identity's credentials talk aiohttp to an https authority,
``deltasync demo`` runs the real CLI), so :class:`LoopbackServer` serves any such handler on
127.0.0.1, over TLS when given an SSL context.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import ssl
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Final

import httpx

__all__ = ["Handler", "LoopbackServer", "RequestHook"]

Handler = Callable[[httpx.Request], httpx.Response]
# (phase, request, response) -> a response to send instead, or None; see LoopbackServer.hook
RequestHook = Callable[[str, httpx.Request, httpx.Response | None], httpx.Response | None]

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
        self.hook: RequestHook | None = None
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
    # headers and body go out in two writes: with Nagle's algorithm the body waits for the
    # client's delayed ACK (~40 ms on Linux), longer than the latency the sandbox simulates
    disable_nagle_algorithm = True
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
        hook = self.server.hook
        instead = hook("received", request, None) if hook is not None else None
        if instead is not None:
            self._write(instead)
            return
        try:
            response = self.server.app(request)
            response.read()
        except Exception:
            log.exception("sandbox handler failed on %s %s", self.command, url.path)
            response = httpx.Response(500, json={"error": "sandbox handler failed"})
        if hook is not None:
            response = hook("answered", request, response) or response
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

    :attr:`hook` is a test seam (the crash tests count requests with it and kill the client
    at the Nth): when set, it is called with ``("received", request, None)`` before the
    handler sees the request, and with ``("answered", request, response)`` after the
    handler applied it and before the response is sent. A response it returns is sent
    instead (on "received", the handler is then not called at all). It runs in the
    connection's thread, so requests may reach it concurrently.
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

    @property
    def hook(self) -> RequestHook | None:
        """The request hook (see the class docstring); None = none."""
        return self._server.hook

    @hook.setter
    def hook(self, value: RequestHook | None) -> None:
        self._server.hook = value

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
