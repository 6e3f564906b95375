"""The HTTP transport to ELIZA: attempts, backoff, Retry-After, concurrency, error mapping.

A create whose response was lost may still have been applied, so POSTs are retried only when
ELIZA cannot have processed them. Every non-2xx answer becomes one of the exceptions of
:mod:`deltasync.errors`, with the API token never in a message.
"""

from __future__ import annotations

import asyncio
import email.utils
import enum
import json
import logging
import math
import random
import ssl
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import certifi
import httpx

from deltasync import __version__
from deltasync.errors import (
    AuthError,
    ObjectRejectedError,
    PermissionDeniedError,
    RunFailedError,
    ServiceUnavailableError,
    without_reprs,
)

logger = logging.getLogger("deltasync.eliza")

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
# A POST answered with one of these was never processed: repeating it cannot duplicate.
POST_SAFE_STATUSES = frozenset({429, 503})
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
MAX_WAIT_S = 120.0

SleepFn = Callable[[float], Awaitable[None]]


class ElizaHttp:
    """The connection pool to one ELIZA instance, and the rules for talking to it.

    Counts every request sent (``requests``) and every write among them (``writes``).
    """

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        timeout_s: float,
        max_concurrency: int,
        ca_bundle: Path | str | None,
        transport: httpx.AsyncBaseTransport | None,
        retry_base_delay_s: float,
        max_retries: int,
        sleep: SleepFn,
        connect_timeout_s: float | None = None,
    ) -> None:
        self._token = token
        self.base_url = base_url
        self._origin = httpx.URL(base_url)
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.retry_base_delay_s = retry_base_delay_s
        self._sleep = sleep
        self._sem = asyncio.Semaphore(max(1, max_concurrency))
        self.requests = 0
        self.writes = 0
        self._client = httpx.AsyncClient(
            transport=transport,
            verify=_ssl_context(ca_bundle) if ca_bundle else True,
            timeout=httpx.Timeout(timeout_s, connect=connect_timeout_s or timeout_s),
            follow_redirects=False,
            headers={
                "Authorization": f"Token {token}",
                "Accept": "application/json",
                "User-Agent": f"deltasync/{__version__}",
            },
        )

    def __repr__(self) -> str:
        return f"ElizaHttp(base_url={self.base_url!r}, api_token='***')"

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._client.aclose()

    def url(self, path: str) -> str:
        """The absolute URL of a path on this instance."""
        return self.base_url + path

    def rebase(self, next_url: Any) -> str | None:
        """Follow ``next`` on our own origin: the token never goes to another host.

        Behind a reverse proxy Django may build ``http://`` links for an ``https://``
        instance; only the path and query of ``next`` are used.
        """
        if not next_url:
            return None
        nxt = httpx.URL(str(next_url))
        return str(self._origin.copy_with(path=nxt.path, query=nxt.query or None, fragment=None))

    async def send(
        self, method: str, url: str, *, json_body: Any = None, timeout_s: float | None = None
    ) -> httpx.Response:
        """One logical request: attempts, backoff and Retry-After; non-retryable answers returned.

        ``timeout_s`` replaces the client's timeouts (connect and read) for this request.
        Raises ServiceUnavailableError when every attempt failed, and at once for a POST
        that ELIZA may have applied (5xx other than 503, timeouts, broken connections).
        """
        timeout: Any = httpx.USE_CLIENT_DEFAULT if timeout_s is None else httpx.Timeout(timeout_s)
        if url.startswith("/"):
            url = self.url(url)
        path = httpx.URL(url).path
        what = f"{method} {path}"
        attempt = 0
        while True:
            problem = ""
            retry_after: float | None = None
            error: Exception | None = None
            async with self._sem:
                self.requests += 1
                if method in WRITE_METHODS:
                    self.writes += 1
                try:
                    response = await self._client.request(
                        method,
                        url,
                        content=_encode(json_body),
                        headers=_content_type(json_body),
                        timeout=timeout,
                    )
                except httpx.ConnectTimeout as exc:
                    # The request never reached ELIZA: safe to repeat, POST included.
                    waited = self._waited(timeout_s, "connect")
                    problem = f"cannot connect to {self._host()} within {waited}"
                    safe, error = True, exc
                except (httpx.ConnectError, httpx.PoolTimeout) as exc:
                    problem = f"cannot connect to {self._host()} ({transport_words(exc)})"
                    safe, error = True, exc
                except httpx.TimeoutException as exc:
                    waited = self._waited(timeout_s, "read")
                    problem = f"no answer within {waited} from {self._host()}"
                    error, safe = exc, method != "POST"
                except httpx.TransportError as exc:
                    problem = f"network error talking to {self._host()} ({transport_words(exc)})"
                    error, safe = exc, method != "POST"
                else:
                    status = response.status_code
                    logger.debug("%s -> HTTP %d", what, status)
                    if status not in RETRY_STATUSES:
                        return response
                    problem = f"HTTP {status}"
                    safe = method != "POST" or status in POST_SAFE_STATUSES
                    retry_after = parse_retry_after(response.headers.get("Retry-After"))
            if not safe:
                raise ServiceUnavailableError(
                    f"ELIZA answered {what} with {problem}; the create may have been applied, so "
                    "it is not repeated now: the next run looks the object up (remote_key) first"
                ) from error
            if attempt >= self.max_retries:
                raise ServiceUnavailableError(
                    f"ELIZA kept failing on {what} ({problem}) after {attempt + 1} attempts"
                    if attempt
                    else f"ELIZA failed on {what}: {problem}"
                ) from error
            delay = self.backoff(attempt) if retry_after is None else retry_after
            delay = min(delay, MAX_WAIT_S)
            logger.info("%s: %s; retrying in %.1f s", what, problem, delay)
            await self._sleep(delay)
            attempt += 1

    def _waited(self, override: float | None, kind: str) -> str:
        if override is not None:
            return f"{override:g} s"
        configured = getattr(self._client.timeout, kind, None)
        return f"{configured if configured is not None else self.timeout_s:g} s"

    def _host(self) -> str:
        """``host:port`` of the ELIZA instance, as the error messages name it."""
        port = self._origin.port or (443 if self._origin.scheme == "https" else 80)
        return f"{self._origin.host}:{port}"

    @property
    def host(self) -> str:
        """``host:port`` of the ELIZA instance, for messages."""
        return self._host()

    def backoff(self, attempt: int) -> float:
        """Exponential backoff with jitter: base * 2**attempt, scaled by a factor in [0.5, 1]."""
        return self.retry_base_delay_s * 2.0**attempt * random.uniform(0.5, 1.0)

    def check(self, response: httpx.Response, method: str, name: str, id: int | None) -> None:
        """Turn a non-2xx answer into the exception the caller can act on."""
        status = response.status_code
        if 200 <= status < 300:
            return
        if status == 404 and not is_json(response):
            # Django's own 404 page: the URL does not exist, the object is not "deleted".
            raise RunFailedError(
                f"ELIZA has no {method} {response.request.url.path} (404): check "
                "eliza.base_url, eliza.trailing_slash and eliza.paths"
            )
        if status == 401:
            raise AuthError(
                "ELIZA rejected the API token (401): it is wrong, expired or revoked; "
                "create a new one in ELIZA and set eliza.api_token"
            )
        if status == 403:
            raise PermissionDeniedError(
                f"the API token lacks permission to {method} {name} (403): grant it in ELIZA's "
                "API token settings"
            )
        if status == 405:
            raise RunFailedError(f"ELIZA does not allow {method} on {name} (405)")
        if 300 <= status < 400:
            raise RunFailedError(
                f"ELIZA redirected {method} {name} (HTTP {status}); check eliza.base_url and "
                "eliza.trailing_slash"
            )
        if status >= 500:
            raise ServiceUnavailableError(f"ELIZA answered {method} {name} with HTTP {status}")
        body = _safe_body(response)
        target = f"{name} #{id}" if id is not None else name
        summary = self.redact(summarize_errors(body))
        raise ObjectRejectedError(
            f"ELIZA rejected {method} {target}: HTTP {status}"
            + (f" ({summary})" if summary else ""),
            status=status,
            body=body,
        )

    def body(self, response: httpx.Response, method: str, path: str) -> Any:
        """The JSON body; anything else means the URL does not lead to ELIZA's API."""
        try:
            return response.json()
        except ValueError:
            kind = response.headers.get("Content-Type", "no content type")
            raise RunFailedError(
                f"ELIZA answered {method} {path} with a body that is not JSON ({kind}); "
                "check eliza.base_url"
            ) from None

    def redact(self, text: str) -> str:
        """``text`` with the API token replaced by ``***``."""
        return text.replace(self._token, "***")


def _ssl_context(ca_bundle: Path | str) -> ssl.SSLContext:
    """The usual trust store plus the given CA certificates."""
    context = ssl.create_default_context(cafile=certifi.where())
    context.load_verify_locations(cafile=str(ca_bundle))
    return context


def transport_words(exc: BaseException) -> str:
    """A network error in words: its first line without Python object reprs, else the
    exception's class name."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return without_reprs(text) or type(exc).__name__


def _encode(body: Any) -> bytes | None:
    return None if body is None else json.dumps(body, default=_json_default).encode("utf-8")


def _json_default(value: Any) -> Any:
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    raise TypeError(f"cannot send a {type(value).__name__} to ELIZA as JSON")


def _content_type(body: Any) -> dict[str, str] | None:
    return None if body is None else {"Content-Type": "application/json"}


def is_json(response: httpx.Response) -> bool:
    return "json" in response.headers.get("Content-Type", "")


def _safe_body(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text[:2000]


def summarize_errors(body: Any, limit: int = 500) -> str:
    """A one-line summary of a DRF error body (``{"field": ["message"]}``), never parsed."""
    if isinstance(body, dict):
        parts = []
        for key, value in body.items():
            items = value if isinstance(value, list) else [value]
            text = " ".join(
                json.dumps(item, ensure_ascii=False)
                if isinstance(item, (dict, list))
                else str(item)
                for item in items
            )
            parts.append(text if key in ("detail", "non_field_errors") else f"{key}: {text}")
        summary = "; ".join(parts)
    elif isinstance(body, list):
        summary = "; ".join(str(item) for item in body)
    elif isinstance(body, str) and not body.lstrip().startswith("<"):
        summary = " ".join(body.split())  # an HTML error page says nothing useful
    else:
        summary = ""
    return summary if len(summary) <= limit else summary[: limit - 1] + "…"


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP date), capped."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if math.isnan(seconds):
        return None
    return min(max(seconds, 0.0), MAX_WAIT_S)
