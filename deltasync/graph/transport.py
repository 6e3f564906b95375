"""How deltasync talks HTTP to Graph and Entra: the credential, the retrying middleware stack.

The SDK's own RetryHandler retries 429, 503 and 504 only; :class:`GraphRetryHandler` adds the
500/502 a Graph front end returns when one backend fails, and broken connections.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import ssl
import urllib.request
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

import httpx
from azure.core.credentials_async import AsyncTokenCredential
from azure.identity.aio import (
    CertificateCredential,
    ClientSecretCredential,
    ManagedIdentityCredential,
)
from kiota_http.kiota_client_factory import KiotaClientFactory
from kiota_http.middleware import BaseMiddleware, RetryHandler
from kiota_http.middleware.options import RetryHandlerOption
from kiota_http.middleware.retry_handler import RETRY_ATTEMPT
from msgraph.graph_request_adapter import options as sdk_middleware_options
from msgraph_core import GraphClientFactory
from msgraph_core.middleware import GraphTelemetryHandler

from deltasync.errors import (
    ConfigError,
)

_TELEMETRY_KEY = "GraphTelemetryHandlerOption"

# Answers worth another try: throttling, and the 5xx that Graph's front end returns when one
# backend fails a request (the SDK's RetryHandler alone retries only 429, 503 and 504).
RETRY_STATUS_CODES: frozenset[int] = frozenset({429, 500, 502, 503, 504})
# A connection that failed to open, or broke while the request or its answer was on the way.
# A read is idempotent, so sending it again is safe. Timeouts are not retried: each one has
# already waited the full timeout.
RETRY_TRANSPORT_ERRORS: tuple[type[httpx.TransportError], ...] = (
    httpx.ConnectError,
    httpx.ReadError,
    httpx.WriteError,
    httpx.RemoteProtocolError,
)


class SecretValue(Protocol):
    """A secret that only shows its value when asked (``deltasync.config.Secret``)."""

    def reveal(self) -> str: ...


class EntraSettings(Protocol):
    """What GraphSource reads of the ``entra:`` section (``deltasync.config.EntraConfig``)."""

    @property
    def tenant_id(self) -> str: ...
    @property
    def client_id(self) -> str: ...
    @property
    def client_secret(self) -> SecretValue | None: ...
    @property
    def certificate_path(self) -> Path | None: ...
    @property
    def certificate_password(self) -> SecretValue | None: ...
    @property
    def managed_identity(self) -> bool: ...
    @property
    def managed_identity_client_id(self) -> str | None: ...
    @property
    def authority_host(self) -> str: ...
    @property
    def graph_url(self) -> str: ...
    @property
    def ca_bundle(self) -> Path | None: ...
    @property
    def token_scope(self) -> str: ...


class GraphRetryHandler(RetryHandler):
    """The SDK's RetryHandler, also retrying 500, 502 and broken connections.

    The delays, ``Retry-After`` handling, the ``Retry-Attempt`` header and the bound on the
    number of tries are the SDK's own (:class:`RetryHandler`). When the last try still fails,
    its answer is returned (or its transport error raised) for the caller to report.
    """

    def __init__(self, options: RetryHandlerOption) -> None:
        super().__init__(options)
        self.retry_on_status_codes = set(RETRY_STATUS_CODES)

    async def send(
        self, request: httpx.Request, transport: httpx.AsyncBaseTransport
    ) -> httpx.Response:
        options = self._get_current_options(request)  # read once: the last middleware drops it
        retry_count = 0
        while True:
            try:
                response = await BaseMiddleware.send(self, request, transport)
            except RETRY_TRANSPORT_ERRORS:
                if not self._may_retry(request, options, retry_count):
                    raise
                delay = self.get_delay_time(retry_count, None, options.max_delay)
            else:
                delay = self.get_delay_time(retry_count, response, options.max_delay)
                if (
                    not self._may_retry(request, options, retry_count)
                    or not self.should_retry(request, options, response)
                    or delay >= RetryHandlerOption.MAX_DELAY  # a Retry-After beyond reason
                ):
                    return response
                await response.aclose()  # release the discarded answer's connection
            await asyncio.sleep(delay)
            retry_count += 1
            request.headers[RETRY_ATTEMPT] = str(retry_count)

    def _may_retry(
        self, request: httpx.Request, options: RetryHandlerOption, retry_count: int
    ) -> bool:
        return (
            options.should_retry
            and self.check_retry_valid(retry_count, options)
            and self._is_method_retryable(request)
            and self._is_request_payload_buffered(request)
        )


def graph_http_client(
    transport: httpx.AsyncBaseTransport, retry: RetryHandlerOption, timeout: httpx.Timeout
) -> httpx.AsyncClient:
    """An httpx client with the SDK's default middleware, its RetryHandler replaced by
    :class:`GraphRetryHandler`."""
    options = {**sdk_middleware_options, RetryHandlerOption.get_key(): retry}
    middleware = [
        GraphRetryHandler(retry) if isinstance(handler, RetryHandler) else handler
        for handler in KiotaClientFactory.get_default_middleware(options)
    ]
    middleware.append(GraphTelemetryHandler(options=sdk_middleware_options[_TELEMETRY_KEY]))
    client: httpx.AsyncClient = GraphClientFactory.create_with_custom_middleware(
        middleware, client=httpx.AsyncClient(transport=transport, timeout=timeout)
    )
    return client


class CountingTransport(httpx.AsyncBaseTransport):
    """Counts the HTTP attempts that reach the wire (under the SDK's retry middleware)."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self._inner = inner
        self.count = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.count += 1
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


def make_credential(cfg: EntraSettings, *, connect_timeout_s: float) -> AsyncTokenCredential:
    """The azure-identity credential the ``entra:`` section asks for.

    Its token requests go through azure-core's requests-based transport: the default one
    imports aiohttp, 0.35 s of every start (a quarter of an idle run), for one POST.
    """
    from azure.core.pipeline.transport import AsyncioRequestsTransport

    tls: dict[str, Any] = {"connection_timeout": connect_timeout_s}
    if cfg.ca_bundle:
        tls["connection_verify"] = str(cfg.ca_bundle)
    tls["transport"] = AsyncioRequestsTransport(**tls)
    try:
        if cfg.certificate_path is not None:
            password = cfg.certificate_password
            return CertificateCredential(
                cfg.tenant_id,
                cfg.client_id,
                str(cfg.certificate_path),
                password=password.reveal() if password is not None else None,
                authority=cfg.authority_host,
                **tls,
            )
        if cfg.managed_identity:
            # a user-assigned identity by its client id; else the host's system-assigned one
            return ManagedIdentityCredential(client_id=cfg.managed_identity_client_id, **tls)
        if cfg.client_secret is not None:
            return ClientSecretCredential(
                cfg.tenant_id,
                cfg.client_id,
                cfg.client_secret.reveal(),
                authority=cfg.authority_host,
                **tls,
            )
    except (OSError, ValueError) as error:
        # e.g. an http:// authority, an unreadable certificate or a wrong certificate password
        raise ConfigError(f"entra: cannot build the Entra credential: {error}") from None
    raise ConfigError(
        "entra: one of client_secret, certificate_path or managed_identity is required"
    )


def roles_of(access_token: str) -> tuple[str, ...]:
    """The ``roles`` claim of a JWT access token, decoded without verification (empty when
    the token is not a JWT or carries no roles)."""
    parts = access_token.split(".")
    if len(parts) != 3:
        return ()
    try:
        payload = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, binascii.Error):
        return ()
    roles = payload.get("roles") if isinstance(payload, dict) else None
    if not isinstance(roles, list):
        return ()
    return tuple(sorted(str(role) for role in roles))


def real_transport(cfg: EntraSettings) -> httpx.AsyncBaseTransport:
    """An HTTP/2 transport trusting the system CAs plus ``ca_bundle``, through any env proxy."""
    context = ssl.create_default_context()
    if cfg.ca_bundle is not None:
        try:
            context.load_verify_locations(cafile=str(cfg.ca_bundle))
        except (OSError, ssl.SSLError) as error:
            raise ConfigError(f"entra.ca_bundle: cannot load {cfg.ca_bundle}: {error}") from None
    return httpx.AsyncHTTPTransport(verify=context, http2=True, proxy=_env_proxy(cfg.graph_url))


def _env_proxy(url: str) -> str | None:
    """The HTTPS_PROXY / HTTP_PROXY for ``url`` unless NO_PROXY exempts its host.

    httpx only reads these when it builds the transport itself, and here it does not.
    """
    parts = urlsplit(url)
    proxy = urllib.request.getproxies_environment().get(parts.scheme)
    if not proxy or urllib.request.proxy_bypass(parts.hostname or ""):
        return None
    return proxy
