"""Reads Microsoft Graph delta pages through msgraph-sdk, as raw JSON, with typed errors.

The SDK provides what a long-running directory read needs from Microsoft (token handling
through azure-identity, the retry middleware that honours ``Retry-After``), but its typed
models cannot tell an absent property from an explicit ``null``. So each page is fetched as
bytes and parsed by :mod:`deltasync.graph.delta`. Every failure leaves as one of
deltasync's own errors, and no message ever carries a secret or an access token.
"""

from __future__ import annotations

import itertools
import json
import re
import warnings
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
from azure.core.credentials_async import AsyncTokenCredential
from azure.core.exceptions import ClientAuthenticationError, ServiceRequestError
from kiota_abstractions.api_error import APIError
from kiota_abstractions.base_request_configuration import RequestConfiguration
from kiota_authentication_azure.azure_identity_authentication_provider import (
    AzureIdentityAuthenticationProvider,
)
from kiota_http.middleware.options import RetryHandlerOption
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.graph_request_adapter import GraphRequestAdapter
from msgraph.graph_service_client import GraphServiceClient

with warnings.catch_warnings():
    # The SDK's generated modules warn from class bodies (kiota's GetQueryParameters, each
    # builder's ...GetRequestConfiguration), so merely importing the request builders warns.
    # Import them here, quietly; deltasync itself uses the generic RequestConfiguration.
    warnings.filterwarnings(
        "ignore", category=DeprecationWarning, module=r"(msgraph|kiota_abstractions)\."
    )
    import msgraph.generated.users.delta.delta_request_builder
    import msgraph.generated.users.users_request_builder  # noqa: F401

from deltasync.errors import (
    AuthError,
    BadPayloadError,
    DeltaTokenExpiredError,
    PermissionDeniedError,
    RunFailedError,
    ServiceUnavailableError,
    without_reprs,
)
from deltasync.graph.aadsts import fix_for
from deltasync.graph.delta import parse_page, short_url
from deltasync.graph.transport import (
    RETRY_STATUS_CODES,
    RETRY_TRANSPORT_ERRORS,
    CountingTransport,
    EntraSettings,
    graph_http_client,
    make_credential,
    real_transport,
    roles_of,
)
from deltasync.models import DeltaPage

# Codes Graph uses when a delta or skip token can no longer be followed (compared casefolded).
_TOKEN_EXPIRED_CODES = {"syncstatenotfound", "resyncrequired"}
# The least-privileged application permission for reading each resource's delta.
_PERMISSION_FOR = {"users": "User.Read.All", "groups": "GroupMember.Read.All"}
# Every 4xx/5xx body is read as Graph's {"error": {"code", "message"}}.
_ERROR_MAP: dict[str, Any] = {"4XX": ODataError, "5XX": ODataError}
_DETAIL_MAX = 300
# "AADSTS7000215: Invalid client secret provided. …" up to Entra's trace ids (or the line end)
_AADSTS = re.compile(r"AADSTS\d+:.*?(?= Trace ID:|'?$)", re.MULTILINE)


class GraphSource:
    """One Graph reader: builds the delta start URL and fetches one page at a time.

    Args:
        cfg: the ``entra:`` settings.
        transport: an httpx transport to send Graph requests through (tests: the sandbox);
            by default a real one trusting the system CAs plus ``cfg.ca_bundle``.
        credential: an azure-identity async credential; by default one is built from ``cfg``
            (certificate, managed identity or client secret) and closed by :meth:`aclose`.
        max_retries: retries of a 429/500/502/503/504 answer or of a broken connection
            (0 to 10), with the SDK's backoff (``Retry-After`` when Graph sends one).
        retry_delay: seconds the RetryHandler adds to its backoff when Graph sends no
            ``Retry-After`` (0 to 180).
        timeout_s: read/write timeout of one HTTP request.
        connect_timeout_s: how long opening a connection (to Graph or to the token endpoint)
            may take.
        low_priority: send ``x-ms-throttle-priority: low`` (a background sync yields first).
    """

    def __init__(
        self,
        cfg: EntraSettings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        credential: AsyncTokenCredential | None = None,
        max_retries: int = RetryHandlerOption.DEFAULT_MAX_RETRIES,
        retry_delay: float = RetryHandlerOption.DEFAULT_DELAY,
        timeout_s: float = 100.0,
        connect_timeout_s: float = 30.0,
        low_priority: bool = True,
    ) -> None:
        self._graph_url = cfg.graph_url.rstrip("/")
        self._who = f"tenant {cfg.tenant_id} / client {cfg.client_id}"
        self._scope = cfg.token_scope
        self._authority = urlsplit(cfg.authority_host).netloc or cfg.authority_host
        self._secrets = [
            s.reveal() for s in (cfg.client_secret, cfg.certificate_password) if s is not None
        ]
        self._max_retries = max_retries
        self._low_priority = low_priority
        self._owns_credential = credential is None
        self._credential = (
            credential
            if credential is not None
            else make_credential(cfg, connect_timeout_s=connect_timeout_s)
        )
        self._transport = CountingTransport(transport or real_transport(cfg))
        self._http = graph_http_client(
            self._transport,
            RetryHandlerOption(delay=retry_delay, max_retries=max_retries),
            httpx.Timeout(timeout_s, connect=connect_timeout_s),
        )
        auth = AzureIdentityAuthenticationProvider(
            self._credential,
            scopes=[cfg.token_scope],
            # the bearer token goes to the configured Graph host and nowhere else
            allowed_hosts=[urlsplit(self._graph_url).hostname or ""],
        )
        self._adapter = GraphRequestAdapter(auth, client=self._http)
        # Without this, URLs the SDK builds (not with_url) would take httpx's normalised
        # base URL and go to "…/v1.0//users".
        self._adapter.base_url = self._graph_url
        self._client = GraphServiceClient(request_adapter=self._adapter)

    @classmethod
    def from_config(cls, cfg: EntraSettings, **options: Any) -> GraphSource:
        """The source for a loaded ``entra:`` config section (same as the constructor)."""
        return cls(cfg, **options)

    @property
    def requests(self) -> int:
        """HTTP requests sent to Graph so far, retries included (token requests excluded)."""
        return self._transport.count

    def initial_url(self, resource: str, select: Sequence[str]) -> str:
        """The URL that starts a full round of ``resource`` (``users`` or ``groups``)."""
        return f"{self._graph_url}/{resource}/delta?$select={','.join(select)}"

    async def fetch_page(self, url: str, *, minimal: bool) -> DeltaPage:
        """GET one delta page (a start URL, ``nextLink`` or ``deltaLink``) and parse it.

        Args:
            url: the page's URL, followed exactly as given.
            minimal: ask for ``Prefer: return=minimal`` (only changed properties).

        Raises:
            DeltaTokenExpiredError: Graph no longer accepts this link; start a full round.
            AuthError: the credential or the access token was rejected.
            PermissionDeniedError: the app lacks the read permission (named in the message).
            ServiceUnavailableError: network failure, or 429/5xx after the retries.
            BadPayloadError: the answer is not a delta page.
            RunFailedError: Graph rejected the request in another way (e.g. an unknown property).
        """
        config: RequestConfiguration[Any] = RequestConfiguration()
        if minimal:
            config.headers.add("Prefer", "return=minimal")
        body = await self._get(url, config)
        if not body:
            raise BadPayloadError(f"Graph delta page {short_url(url)}: the answer has no body")
        try:
            raw = json.loads(body)
        except ValueError:
            raise BadPayloadError(
                f"Graph delta page {short_url(url)}: the body is not JSON "
                f"({len(body)} bytes, starting {body[:40]!r})"
            ) from None
        return parse_page(raw, url)

    async def read_sample(self, resource: str, select: Sequence[str]) -> int:
        """``GET /{resource}?$select=…&$top=1``: proves that Graph knows every selected
        property and that the app may read ``resource``; returns the objects served (0 or 1).

        Raises:
            RunFailedError: Graph rejected the request (an unknown property is named in the
                message, as Graph words it).
            and the other errors of :meth:`fetch_page`.
        """
        url = f"{self._graph_url}/{resource}?$select={','.join(select)}&$top=1"
        body = await self._get(url, RequestConfiguration())
        try:
            value = json.loads(body or b"{}").get("value")
        except (ValueError, AttributeError):
            value = None
        if not isinstance(value, list):
            raise BadPayloadError(f"Graph {short_url(url)}: the answer holds no 'value' list")
        return len(value)

    async def user_id(self, upn: str) -> str | None:
        """The Entra id of the user with this userPrincipalName (or id), None if unknown."""
        url = f"{self._graph_url}/users/{quote(upn, safe='@')}?$select=id"
        try:
            body = await self._get(url, RequestConfiguration())
        except RunFailedError:
            return None
        try:
            found = json.loads(body or b"{}").get("id")
        except (ValueError, AttributeError):
            found = None
        return found if isinstance(found, str) else None

    async def token_roles(self) -> tuple[str, ...]:
        """The application permissions (the ``roles`` claim) of a fresh Graph access token.

        The token is decoded without verifying its signature (Graph verifies it); it never
        leaves this method.

        Raises:
            AuthError: Entra refused the credential (the AADSTS code and its fix named).
            ServiceUnavailableError: the token endpoint is unreachable (its host named).
        """
        try:
            token = await self._credential.get_token(self._scope)
        except ClientAuthenticationError as error:
            raise self._auth_error(error) from None
        except ServiceRequestError as error:
            raise self._token_unreachable(error) from None
        return roles_of(token.token)

    async def aclose(self) -> None:
        """Close the HTTP connections, and the credential if this source built it."""
        await self._http.aclose()
        # The SDK's middleware transport does not pass aclose on; close the pool ourselves.
        await self._transport.aclose()
        if self._owns_credential:
            await self._credential.close()

    async def _get(self, url: str, config: RequestConfiguration[Any]) -> bytes | None:
        """GET ``url`` verbatim through the SDK (auth, retries); every failure as our error."""
        if self._low_priority:
            config.headers.add("x-ms-throttle-priority", "low")
        # with_url sends the URL verbatim; the request builder only supplies method and Accept.
        request = self._client.users.delta.with_url(url).to_get_request_information(config)
        try:
            body: bytes | None = await self._adapter.send_primitive_async(
                request, "bytes", _ERROR_MAP
            )
        except APIError as error:
            raise self._graph_error(error, url) from None
        except ClientAuthenticationError as error:
            raise self._auth_error(error) from None
        except ServiceRequestError as error:
            raise self._token_unreachable(error) from None
        except httpx.TransportError as error:
            retried = isinstance(error, RETRY_TRANSPORT_ERRORS) and self._max_retries > 0
            after = f" after {self._max_retries} retries" if retried else ""
            raise ServiceUnavailableError(
                f"Graph unreachable at {short_url(url)}{after}: {type(error).__name__}: "
                f"{self._detail(error)}"
            ) from None
        return body

    def _auth_error(self, error: ClientAuthenticationError) -> AuthError:
        text = self._aadsts(error)
        fix = fix_for(text)
        return AuthError(
            f"Entra rejected the app credentials for {self._who}: {text}"
            + (f"; fix: {fix}" if fix else "")
        )

    def _token_unreachable(self, error: ServiceRequestError) -> ServiceUnavailableError:
        return ServiceUnavailableError(
            f"Entra token endpoint {self._authority} unreachable for {self._who}: "
            f"{self._detail(error)}"
        )

    def _graph_error(self, error: APIError, url: str) -> Exception:
        status = error.response_status_code or 0
        code, message = "", str(error.message or "")
        if isinstance(error, ODataError) and error.error is not None:
            code = error.error.code or ""
            message = error.error.message or message
        what = f"{status} {code}".strip() + (f": {self._scrub(message)}" if message else "")
        page = short_url(url)
        if status == 410 or (status == 400 and code.casefold() in _TOKEN_EXPIRED_CODES):
            return DeltaTokenExpiredError(f"Graph no longer accepts the link {page} ({what})")
        if status == 401:
            return AuthError(f"Graph rejected the access token for {self._who} ({what})")
        if status == 403:
            permission = _PERMISSION_FOR.get(_resource_of(url), "User.Read.All")
            return PermissionDeniedError(
                f"Graph refused {page} for {self._who} ({what}); the app registration needs "
                f"the application permission {permission}, with admin consent"
            )
        if status == 429 or status >= 500:
            retried = status in RETRY_STATUS_CODES and self._max_retries > 0
            after = f" after {self._max_retries} retries" if retried else ""
            return ServiceUnavailableError(f"Graph failed for {page}{after} ({what})")
        return RunFailedError(f"Graph rejected {page} ({what})")

    def _aadsts(self, error: ClientAuthenticationError) -> str:
        """Entra's AADSTS code and description (Entra never echoes the credential)."""
        found = _AADSTS.search(str(error.message or error))
        return self._scrub(found.group(0)) if found else self._detail(error)

    def _detail(self, error: BaseException) -> str:
        text = str(getattr(error, "message", None) or error) or type(error).__name__
        line = without_reprs(text.strip().splitlines()[0]) if text.strip() else text
        return self._scrub(line or type(error).__name__)

    def _scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text[:_DETAIL_MAX] + ("…" if len(text) > _DETAIL_MAX else "")


def _resource_of(url: str) -> str:
    """``users`` or ``groups``: the path segment before ``/delta``, or the last one."""
    segments = [s for s in urlsplit(url).path.split("/") if s]
    for before, segment in itertools.pairwise(segments):
        if segment.startswith("delta"):
            return before
    return segments[-1] if segments else ""
