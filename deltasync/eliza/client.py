"""The ELIZA REST client: the one place that speaks ELIZA's HTTP dialect.

ELIZA is a Django REST Framework application with quirks a sync must survive (see
shared/eliza-api.md): unknown filter parameters are silently ignored, so every lookup result is
verified here against every filter; lists come paged or bare; a create whose response was lost
may still have been applied, so POSTs are retried only when ELIZA cannot have processed them.
Everything the rest of deltasync sees is plain dicts and the exceptions of deltasync.errors.
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
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Protocol

import certifi
import httpx

from deltasync import __version__
from deltasync.errors import (
    AuthError,
    ObjectRejectedError,
    PermissionDeniedError,
    RunFailedError,
    ServiceUnavailableError,
)

__all__ = [
    "PATH_KEYS",
    "BlockedWrite",
    "DryRunEliza",
    "ElizaClient",
    "Resource",
    "parse_retry_after",
    "schema_fields",
]

logger = logging.getLogger("deltasync.eliza")

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
# A POST answered with one of these was never processed: repeating it cannot duplicate.
POST_SAFE_STATUSES = frozenset({429, 503})
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
MAX_WAIT_S = 120.0
DEFAULT_PAGE_SIZE = 1000
SCHEMA_PATH = "/api/schema/"


class Resource(enum.StrEnum):
    """ELIZA resources deltasync uses; values are the default paths below ``<base>/api/``."""

    USER = "user"
    PERSON = "organisation/mitarbeitende"
    ORGUNIT = "organisation/orgunit"
    MEMBERSHIP = "organisation/membership"
    CUSTOMGROUP = "customgroup"


# Keys of the config's ``eliza.paths`` mapping.
PATH_KEYS: dict[str, Resource] = {
    "user": Resource.USER,
    "mitarbeitende": Resource.PERSON,
    "orgunit": Resource.ORGUNIT,
    "membership": Resource.MEMBERSHIP,
    "customgroup": Resource.CUSTOMGROUP,
}

# Filters ELIZA compares case-insensitively; every other filter is exact.
CASE_INSENSITIVE: dict[Resource, frozenset[str]] = {
    Resource.USER: frozenset({"username", "email"}),
}


class _Revealable(Protocol):
    def reveal(self) -> str: ...


class ElizaConfigLike(Protocol):
    """The fields of ``deltasync.config.ElizaConfig`` the client reads."""

    @property
    def base_url(self) -> str: ...
    @property
    def api_token(self) -> _Revealable: ...
    @property
    def trailing_slash(self) -> bool: ...
    @property
    def timeout_s(self) -> float: ...
    @property
    def max_concurrency(self) -> int: ...
    @property
    def ca_bundle(self) -> Path | None: ...
    @property
    def paths(self) -> Mapping[str, str]: ...


SleepFn = Callable[[float], Awaitable[None]]


class ElizaClient:
    """Async client of one ELIZA instance.

    Args:
        base_url: the instance root (``https://firma.myeliza.ch``), without ``/api``.
        api_token: the API token (a string, or a secret with ``reveal()``).
        trailing_slash: use ``/api/user/`` instead of ``/api/user``.
        timeout_s: timeout of each HTTP attempt.
        max_concurrency: requests in flight at most.
        ca_bundle: extra trusted CA certificates (PEM), e.g. for a TLS-inspecting proxy.
        paths: overrides of resource paths, keyed like ``eliza.paths`` (see :data:`PATH_KEYS`).
        transport: an httpx transport (tests: ``httpx.MockTransport(sim.handle)``).
        retry_base_delay_s: first backoff delay; doubled per retry, with jitter.
        max_retries: retries after the first attempt before giving up.
        sleep: how to wait between attempts (tests record the delays instead).
        page_size: the ``limit`` sent with list reads.
    """

    def __init__(
        self,
        base_url: str,
        api_token: str | _Revealable,
        *,
        trailing_slash: bool = False,
        timeout_s: float = 30,
        max_concurrency: int = 8,
        ca_bundle: Path | str | None = None,
        paths: Mapping[str, str] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        retry_base_delay_s: float = 0.5,
        max_retries: int = 5,
        sleep: SleepFn = asyncio.sleep,
        page_size: int = DEFAULT_PAGE_SIZE,
    ) -> None:
        token = api_token if isinstance(api_token, str) else api_token.reveal()
        if not token:
            raise ValueError("the ELIZA API token is empty")
        self._token = token
        self.base_url = base_url.rstrip("/")
        self._origin = httpx.URL(self.base_url)
        self.trailing_slash = trailing_slash
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.retry_base_delay_s = retry_base_delay_s
        self.page_size = page_size
        self._sleep = sleep
        self._sem = asyncio.Semaphore(max(1, max_concurrency))
        self._paths = _resolve_paths(paths or {})
        self.requests = 0
        self.writes = 0
        self._http = httpx.AsyncClient(
            transport=transport,
            verify=_ssl_context(ca_bundle) if ca_bundle else True,
            timeout=httpx.Timeout(timeout_s),
            follow_redirects=False,
            headers={
                "Authorization": f"Token {token}",
                "Accept": "application/json",
                "User-Agent": f"deltasync/{__version__}",
            },
        )

    @classmethod
    def from_config(
        cls,
        cfg: ElizaConfigLike,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        **kwargs: Any,
    ) -> ElizaClient:
        """Build a client from the ``eliza`` section of the configuration."""
        return cls(
            cfg.base_url,
            cfg.api_token,
            trailing_slash=cfg.trailing_slash,
            timeout_s=cfg.timeout_s,
            max_concurrency=cfg.max_concurrency,
            ca_bundle=cfg.ca_bundle,
            paths=cfg.paths,
            transport=transport,
            **kwargs,
        )

    def __repr__(self) -> str:
        return f"ElizaClient(base_url={self.base_url!r}, api_token='***')"

    async def __aenter__(self) -> ElizaClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    # ------------------------------------------------------------------ paths
    def path(self, resource: Resource | str, id: int | None = None) -> str:
        """The URL path of a resource list, or of one object when ``id`` is given."""
        path = f"/api/{self._paths[Resource(resource)]}"
        if id is not None:
            path += f"/{int(id)}"
        return path + "/" if self.trailing_slash else path

    def _url(self, path: str) -> str:
        return self.base_url + path

    # ------------------------------------------------------------------ reads
    async def find(self, resource: Resource | str, **filters: Any) -> list[dict[str, Any]]:
        """Objects matching every filter exactly, verified here.

        ELIZA ignores filters it does not know and returns the whole list, so each returned
        object is checked against every filter (user ``username``/``email``
        case-insensitively). A filter of ``None`` matches objects whose field is null.
        """
        res = Resource(resource)
        rows = await self._read_list(res, filters)
        found = [row for row in rows if _matches(res, row, filters)]
        if len(found) != len(rows):
            logger.debug(
                "ELIZA returned %d %s objects for %s; %d really match (a filter was ignored)",
                len(rows),
                res.value,
                sorted(filters),
                len(found),
            )
        return found

    async def list_all(self, resource: Resource | str, **filters: Any) -> list[dict[str, Any]]:
        """Every object of a resource (following every page), filtered like :meth:`find`."""
        return await self.find(resource, **filters)

    async def get(self, resource: Resource | str, id: int) -> dict[str, Any] | None:
        """One object, or None when ELIZA does not have it (404)."""
        res = Resource(resource)
        path = self.path(res, id)
        response = await self._send("GET", path)
        if response.status_code == 404 and _is_json(response):
            return None
        self._check(response, "GET", res, id)
        return _object(self._body(response, "GET", path), "GET", path)

    async def probe(self, resource: Resource | str) -> int | None:
        """Read one row of a resource (``?limit=1``): proves the token may read it, cheaply.

        Returns ELIZA's ``count`` when it pages, else None.
        """
        res = Resource(resource)
        path = self.path(res)
        url = self._url(httpx.URL(path, params={"limit": "1"}).raw_path.decode("ascii"))
        body = await self._get_page(url, res, path)
        count = body.get("count") if isinstance(body, dict) else None
        return count if isinstance(count, int) else None

    async def schema(self) -> dict[str, Any] | None:
        """The instance's OpenAPI schema (``GET /api/schema/``), or None if it is not served."""
        response = await self._send("GET", SCHEMA_PATH)
        if response.status_code == 404:
            return None
        self._check(response, "GET", None, None)
        try:
            body = response.json()
        except ValueError:
            return None  # served, but not as JSON (e.g. YAML): the caller cannot use it
        return body if isinstance(body, dict) else None

    async def _read_list(self, res: Resource, filters: Mapping[str, Any]) -> list[dict[str, Any]]:
        path = self.path(res)
        params: dict[str, str] = {
            name: _query_value(value) for name, value in filters.items() if value is not None
        }
        params["limit"] = str(self.page_size)
        url: str | None = self._url(httpx.URL(path, params=params).raw_path.decode("ascii"))
        rows: list[dict[str, Any]] = []
        seen: set[str] = set()
        while url is not None:
            if url in seen:
                raise RunFailedError(f"ELIZA's paging of GET {path} loops back to {url}")
            seen.add(url)
            body = await self._get_page(url, res, path)
            if isinstance(body, list):
                page, url = body, None
            elif isinstance(body, dict) and isinstance(body.get("results"), list):
                page = body["results"]
                url = self._rebase(body.get("next"))
            else:
                raise RunFailedError(
                    f"ELIZA answered GET {path} with neither a list nor a page of results"
                )
            rows.extend(_object(row, "GET", path) for row in page)
        return rows

    async def _get_page(self, url: str, res: Resource, path: str) -> Any:
        """One GET of a list URL; a 404 there means a wrong base URL or path, not no data."""
        response = await self._send("GET", url)
        if response.status_code == 404:
            raise RunFailedError(
                f"ELIZA has no GET {path} (404): check eliza.base_url, eliza.trailing_slash "
                "and eliza.paths"
            )
        self._check(response, "GET", res, None)
        return self._body(response, "GET", path)

    def _rebase(self, next_url: Any) -> str | None:
        """Follow ``next`` on our own origin: the token never goes to another host.

        Behind a reverse proxy Django may build ``http://`` links for an ``https://``
        instance; only the path and query of ``next`` are used.
        """
        if not next_url:
            return None
        nxt = httpx.URL(str(next_url))
        return str(self._origin.copy_with(path=nxt.path, query=nxt.query or None, fragment=None))

    # ------------------------------------------------------------------ writes
    async def create(self, resource: Resource | str, fields: Mapping[str, Any]) -> dict[str, Any]:
        """POST a new object; returns it as ELIZA stored it."""
        res = Resource(resource)
        path = self.path(res)
        response = await self._send("POST", path, json_body=dict(fields))
        self._check(response, "POST", res, None)
        return _object(self._body(response, "POST", path), "POST", path)

    async def update(
        self, resource: Resource | str, id: int, fields: Mapping[str, Any]
    ) -> dict[str, Any]:
        """PATCH the given fields of one object; returns it as ELIZA stored it."""
        res = Resource(resource)
        path = self.path(res, id)
        response = await self._send("PATCH", path, json_body=dict(fields))
        self._check(response, "PATCH", res, id)
        return _object(self._body(response, "PATCH", path), "PATCH", path)

    async def delete(self, resource: Resource | str, id: int) -> None:
        """DELETE one object (404 raises ObjectRejectedError with status 404)."""
        res = Resource(resource)
        response = await self._send("DELETE", self.path(res, id))
        self._check(response, "DELETE", res, id)

    # ------------------------------------------------------------------ transport
    async def _send(self, method: str, url: str, *, json_body: Any = None) -> httpx.Response:
        """One logical request: attempts, backoff and Retry-After; non-retryable answers returned.

        Raises ServiceUnavailableError when every attempt failed, and at once for a POST
        that ELIZA may have applied (5xx other than 503, timeouts, broken connections).
        """
        if url.startswith("/"):
            url = self._url(url)
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
                    response = await self._http.request(
                        method, url, content=_encode(json_body), headers=_content_type(json_body)
                    )
                except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
                    # The request never reached ELIZA: safe to repeat, POST included.
                    problem, safe, error = f"cannot connect ({type(exc).__name__})", True, exc
                except httpx.TimeoutException as exc:
                    problem, error = f"no answer within {self.timeout_s:g} s", exc
                    safe = method != "POST"
                except httpx.TransportError as exc:
                    problem, error = f"network error ({type(exc).__name__})", exc
                    safe = method != "POST"
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
                ) from error
            delay = self._backoff(attempt) if retry_after is None else retry_after
            delay = min(delay, MAX_WAIT_S)
            logger.info("%s: %s; retrying in %.1f s", what, problem, delay)
            await self._sleep(delay)
            attempt += 1

    def _backoff(self, attempt: int) -> float:
        """Exponential backoff with jitter: base * 2**attempt, scaled by a factor in [0.5, 1]."""
        return self.retry_base_delay_s * 2.0**attempt * random.uniform(0.5, 1.0)

    def _check(
        self, response: httpx.Response, method: str, res: Resource | None, id: int | None
    ) -> None:
        """Turn a non-2xx answer into the exception the caller can act on."""
        status = response.status_code
        if 200 <= status < 300:
            return
        name = res.value if res is not None else "schema"
        if status == 404 and not _is_json(response):
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
        summary = self._redact(summarize_errors(body))
        raise ObjectRejectedError(
            f"ELIZA rejected {method} {target}: HTTP {status}"
            + (f" ({summary})" if summary else ""),
            status=status,
            body=body,
        )

    def _body(self, response: httpx.Response, method: str, path: str) -> Any:
        try:
            return response.json()
        except ValueError:
            kind = response.headers.get("Content-Type", "no content type")
            raise RunFailedError(
                f"ELIZA answered {method} {path} with a body that is not JSON ({kind}); "
                "check eliza.base_url"
            ) from None

    def _redact(self, text: str) -> str:
        return text.replace(self._token, "***")


def _resolve_paths(overrides: Mapping[str, str]) -> dict[Resource, str]:
    paths = {res: res.value for res in Resource}
    for key, value in overrides.items():
        if key not in PATH_KEYS:
            known = ", ".join(PATH_KEYS)
            raise ValueError(f"unknown ELIZA resource {key!r} in eliza.paths (known: {known})")
        cleaned = str(value).strip().strip("/")
        if cleaned.startswith("api/"):
            cleaned = cleaned[len("api/") :]
        if not cleaned:
            raise ValueError(f"eliza.paths.{key} is empty")
        paths[PATH_KEYS[key]] = cleaned
    return paths


def _ssl_context(ca_bundle: Path | str) -> ssl.SSLContext:
    """The usual trust store plus the given CA certificates."""
    context = ssl.create_default_context(cafile=certifi.where())
    context.load_verify_locations(cafile=str(ca_bundle))
    return context


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


def _query_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, enum.Enum):
        return str(value.value)
    return str(value)


def _norm(value: Any) -> Any:
    """Filter values and object values compared on the wire form: bools as "true"/"false"."""
    if value is None:
        return None
    return _query_value(value)


def _matches(res: Resource, obj: Mapping[str, Any], filters: Mapping[str, Any]) -> bool:
    """Whether one returned object really satisfies every filter."""
    insensitive = CASE_INSENSITIVE.get(res, frozenset())
    for name, wanted in filters.items():
        if name not in obj:
            return False
        have = obj[name]
        if wanted is None or have is None:
            if wanted is not have:
                return False
            continue
        if isinstance(have, (dict, list)):
            return False
        a, b = _norm(have), _norm(wanted)
        if name in insensitive:
            a, b = a.lower(), b.lower()
        if a != b:
            return False
    return True


def _object(value: Any, method: str, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise RunFailedError(f"ELIZA answered {method} {path} with something other than an object")
    return value


def _is_json(response: httpx.Response) -> bool:
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


# ---------------------------------------------------------------------- dry run
@dataclass(frozen=True)
class BlockedWrite:
    """A write a dry run would have sent."""

    method: str
    resource: Resource
    id: int | None
    fields: Mapping[str, Any] = field(default_factory=dict)


class DryRunEliza:
    """The client's interface for ``--dry-run``: reads go to ELIZA, writes are only recorded.

    Creates answer with the fields and a negative id; updates answer with the fields merged
    over the object as last read (when it was read), so the run can go on exactly as a real one.
    """

    def __init__(self, inner: ElizaClient) -> None:
        self.inner = inner
        self.blocked: list[BlockedWrite] = []
        self._next_id = -1
        self._known: dict[tuple[Resource, int], dict[str, Any]] = {}

    def __repr__(self) -> str:
        return f"DryRunEliza({self.inner!r})"

    @property
    def requests(self) -> int:
        """HTTP requests sent (reads only)."""
        return self.inner.requests

    @property
    def writes(self) -> int:
        """Write requests sent: none, unless the inner client was used directly."""
        return self.inner.writes

    def _remember(self, res: Resource, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        for row in rows:
            if isinstance(row.get("id"), int):
                self._known[(res, row["id"])] = dict(row)
        return rows

    async def find(self, resource: Resource | str, **filters: Any) -> list[dict[str, Any]]:
        """As :meth:`ElizaClient.find`."""
        res = Resource(resource)
        return self._remember(res, await self.inner.find(res, **filters))

    async def list_all(self, resource: Resource | str, **filters: Any) -> list[dict[str, Any]]:
        """As :meth:`ElizaClient.list_all`."""
        res = Resource(resource)
        return self._remember(res, await self.inner.list_all(res, **filters))

    async def get(self, resource: Resource | str, id: int) -> dict[str, Any] | None:
        """As :meth:`ElizaClient.get`; objects this dry run "created" come from memory."""
        res = Resource(resource)
        if id < 0:
            known = self._known.get((res, id))
            return dict(known) if known is not None else None
        obj = await self.inner.get(res, id)
        if obj is not None:
            self._remember(res, [obj])
        return obj

    async def schema(self) -> dict[str, Any] | None:
        """As :meth:`ElizaClient.schema`."""
        return await self.inner.schema()

    async def create(self, resource: Resource | str, fields: Mapping[str, Any]) -> dict[str, Any]:
        """Record the POST; answer with the fields and a new negative id."""
        res = Resource(resource)
        self.blocked.append(BlockedWrite("POST", res, None, dict(fields)))
        obj = {**fields, "id": self._next_id}
        self._next_id -= 1
        self._known[(res, obj["id"])] = dict(obj)
        return obj

    async def update(
        self, resource: Resource | str, id: int, fields: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Record the PATCH; answer with the fields merged over the object as last read."""
        res = Resource(resource)
        self.blocked.append(BlockedWrite("PATCH", res, id, dict(fields)))
        obj = {**self._known.get((res, id), {}), **fields, "id": id}
        self._known[(res, id)] = dict(obj)
        return obj

    async def delete(self, resource: Resource | str, id: int) -> None:
        """Record the DELETE."""
        res = Resource(resource)
        self.blocked.append(BlockedWrite("DELETE", res, id, {}))
        self._known.pop((res, id), None)

    async def aclose(self) -> None:
        """Close the inner client."""
        await self.inner.aclose()


def schema_fields(schema: Mapping[str, Any], path: str) -> frozenset[str] | None:
    """The field names an OpenAPI document gives for a resource path (``/api/user`` or ``user``).

    Looks at the list path (with or without trailing slash): the POST request body, else the
    GET response items; follows ``$ref`` into ``components.schemas``. None if not described.
    """
    paths = schema.get("paths")
    if not isinstance(paths, Mapping):
        return None
    base = "/" + path.strip("/")
    if not base.startswith("/api/"):
        base = "/api" + base  # a resource path relative to /api/, as in eliza.paths
    entry = paths.get(base) or paths.get(base + "/")
    if not isinstance(entry, Mapping):
        return None
    candidates: list[Any] = []
    post = entry.get("post")
    if isinstance(post, Mapping):
        candidates.append(_dig(post, "requestBody", "content", "application/json", "schema"))
    get = entry.get("get")
    if isinstance(get, Mapping):
        listed = _dig(get, "responses", "200", "content", "application/json", "schema")
        candidates.append(_dig(listed, "items"))
        results = _dig(_resolve_ref(schema, listed), "properties", "results", "items")
        candidates.append(results)
    for candidate in candidates:
        resolved = _resolve_ref(schema, candidate)
        props = _dig(resolved, "properties")
        if isinstance(props, Mapping):
            return frozenset(str(k) for k in props)
    return None


def _dig(value: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def _resolve_ref(schema: Mapping[str, Any], value: Any) -> Any:
    for _ in range(10):  # refs may chain; a cycle is not followed forever
        ref = _dig(value, "$ref")
        if not isinstance(ref, str) or not ref.startswith("#/"):
            return value
        value = _dig(schema, *ref[2:].split("/"))
    return value
