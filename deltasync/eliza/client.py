"""The ELIZA REST client: reads and writes of ELIZA resources, as plain dicts.

ELIZA is a Django REST Framework application with quirks a sync must survive (see
shared/eliza-api.md): unknown filter parameters are silently ignored, so every lookup result is
verified here against every filter; lists come paged or bare. The HTTP rules (retries, error
mapping) are in :mod:`deltasync.eliza.http`; everything the rest of deltasync sees is plain
dicts and the exceptions of deltasync.errors.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any, Protocol

import httpx

from deltasync.eliza.dryrun import BlockedWrite, DryRunEliza
from deltasync.eliza.http import ElizaHttp, SleepFn, is_json, parse_retry_after
from deltasync.eliza.resources import (
    PATH_KEYS,
    SCHEMA_PATH,
    Resource,
    matches,
    query_value,
    resolve_paths,
)
from deltasync.eliza.schema import schema_fields
from deltasync.errors import RunFailedError

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

DEFAULT_PAGE_SIZE = 1000


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
        connect_timeout_s: timeout of opening a connection (default: ``timeout_s``).
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
        connect_timeout_s: float | None = None,
    ) -> None:
        token = api_token if isinstance(api_token, str) else api_token.reveal()
        if not token:
            raise ValueError("the ELIZA API token is empty")
        self.base_url = base_url.rstrip("/")
        self.trailing_slash = trailing_slash
        self.page_size = page_size
        self._paths = resolve_paths(paths or {})
        self._schema: dict[str, Any] | None = None
        self._schema_read = False
        self._http = ElizaHttp(
            self.base_url,
            token,
            timeout_s=timeout_s,
            max_concurrency=max_concurrency,
            ca_bundle=ca_bundle,
            transport=transport,
            retry_base_delay_s=retry_base_delay_s,
            max_retries=max_retries,
            sleep=sleep,
            connect_timeout_s=connect_timeout_s,
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

    @property
    def requests(self) -> int:
        """HTTP requests sent, every attempt counted."""
        return self._http.requests

    @property
    def writes(self) -> int:
        """Write requests (POST, PUT, PATCH, DELETE) sent, every attempt counted."""
        return self._http.writes

    @property
    def host(self) -> str:
        """The instance's host (``host:port`` when a port is given), for messages."""
        return self._http.host

    @property
    def timeout_s(self) -> float:
        """Timeout of each HTTP attempt."""
        return self._http.timeout_s

    @property
    def max_retries(self) -> int:
        """Retries after the first attempt before giving up."""
        return self._http.max_retries

    @property
    def retry_base_delay_s(self) -> float:
        """First backoff delay."""
        return self._http.retry_base_delay_s

    def path(self, resource: Resource | str, id: int | None = None) -> str:
        """The URL path of a resource list, or of one object when ``id`` is given."""
        path = f"/api/{self._paths[Resource(resource)]}"
        if id is not None:
            path += f"/{int(id)}"
        return path + "/" if self.trailing_slash else path

    async def find(self, resource: Resource | str, **filters: Any) -> list[dict[str, Any]]:
        """Objects matching every filter exactly, verified here.

        ELIZA ignores filters it does not know and returns the whole list, so each returned
        object is checked against every filter (user ``username``/``email``
        case-insensitively). A filter of ``None`` matches objects whose field is null.
        """
        res = Resource(resource)
        rows = await self._read_list(res, filters)
        found = [row for row in rows if matches(res, row, filters)]
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

    async def list_pages(self, resource: Resource | str) -> AsyncIterator[list[dict[str, Any]]]:
        """Every object of a resource, a page at a time: a caller that keeps only part of
        each object never holds the whole list (100,000 ELIZA persons)."""
        async for page in self._pages(Resource(resource), {}):
            yield page

    async def get(self, resource: Resource | str, id: int) -> dict[str, Any] | None:
        """One object, or None when ELIZA does not have it (404)."""
        res = Resource(resource)
        path = self.path(res, id)
        response = await self._http.send("GET", path)
        if response.status_code == 404 and is_json(response):
            return None
        self._http.check(response, "GET", res.value, id)
        return _object(self._http.body(response, "GET", path), "GET", path)

    async def probe(self, resource: Resource | str) -> int | None:
        """Read one row of a resource (``?limit=1``): proves the token may read it, cheaply.

        Returns ELIZA's ``count`` when it pages, else None.
        """
        count, _ = await self.sample(resource)
        return count

    async def sample(
        self, resource: Resource | str, *, timeout_s: float | None = None
    ) -> tuple[int | None, int | None]:
        """``GET <list>?limit=1``: (ELIZA's ``count`` when it pages, the first object's id).

        ``timeout_s`` replaces the client's timeouts for this one request.
        """
        res = Resource(resource)
        path = self.path(res)
        url = self._http.url(httpx.URL(path, params={"limit": "1"}).raw_path.decode("ascii"))
        body = await self._get_page(url, res, path, timeout_s=timeout_s)
        count = body.get("count") if isinstance(body, dict) else None
        rows = body.get("results") if isinstance(body, dict) else body
        first = rows[0] if isinstance(rows, list) and rows else None
        oid = first.get("id") if isinstance(first, dict) else None
        return (
            count if isinstance(count, int) else None,
            oid if isinstance(oid, int) and not isinstance(oid, bool) else None,
        )

    async def write_actions(
        self, resource: Resource | str, id: int | None = None
    ) -> set[str] | None:
        """The write methods ELIZA says this token may use, asked without writing.

        ``OPTIONS`` on a Django REST Framework view lists under ``actions`` the methods
        (``POST`` on a list, ``PUT`` on an object) whose permission check the token passes.
        DRF leaves ``actions`` out when the token may use none of them. None when the answer
        is not DRF's metadata (OPTIONS not served): then nothing is known about writing.
        """
        res = Resource(resource)
        path = self.path(res, id)
        response = await self._http.send("OPTIONS", path)
        if response.status_code in (404, 405) or not is_json(response):
            return None
        self._http.check(response, "OPTIONS", res.value, id)
        body = response.json() if response.content else None
        if not isinstance(body, dict) or "name" not in body:
            return None  # not DRF's metadata
        actions = body.get("actions")
        return {str(m).upper() for m in actions} if isinstance(actions, dict) else set()

    async def schema(self) -> dict[str, Any] | None:
        """The instance's OpenAPI schema (``GET /api/schema/``), or None if it is not served."""
        response = await self._http.send("GET", SCHEMA_PATH)
        if response.status_code == 404:
            return None
        self._http.check(response, "GET", "schema", None)
        try:
            body = response.json()
        except ValueError:
            return None  # served, but not as JSON (e.g. YAML): the caller cannot use it
        return body if isinstance(body, dict) else None

    async def known_fields(self, resource: Resource | str) -> frozenset[str] | None:
        """The fields the instance's schema lists for a resource (the schema is read once per
        client); None when no schema is served or it does not describe the resource."""
        if not self._schema_read:
            self._schema = await self.schema()
            self._schema_read = True
        if self._schema is None:
            return None
        return schema_fields(self._schema, self.path(Resource(resource)))

    async def _read_list(self, res: Resource, filters: Mapping[str, Any]) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        async for page in self._pages(res, filters):
            rows.extend(page)
        return rows

    async def _pages(
        self, res: Resource, filters: Mapping[str, Any]
    ) -> AsyncIterator[list[dict[str, Any]]]:
        path = self.path(res)
        params: dict[str, str] = {
            name: query_value(value) for name, value in filters.items() if value is not None
        }
        params["limit"] = str(self.page_size)
        url: str | None = self._http.url(httpx.URL(path, params=params).raw_path.decode("ascii"))
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
                url = self._http.rebase(body.get("next"))
            else:
                raise RunFailedError(
                    f"ELIZA answered GET {path} with neither a list nor a page of results"
                )
            yield [_object(row, "GET", path) for row in page]

    async def _get_page(
        self, url: str, res: Resource, path: str, *, timeout_s: float | None = None
    ) -> Any:
        """One GET of a list URL; a 404 there means a wrong base URL or path, not no data."""
        response = await self._http.send("GET", url, timeout_s=timeout_s)
        if response.status_code == 404:
            raise RunFailedError(
                f"ELIZA has no GET {path} (404): check eliza.base_url, eliza.trailing_slash "
                "and eliza.paths"
            )
        self._http.check(response, "GET", res.value, None)
        return self._http.body(response, "GET", path)

    async def create(self, resource: Resource | str, fields: Mapping[str, Any]) -> dict[str, Any]:
        """POST a new object; returns it as ELIZA stored it."""
        res = Resource(resource)
        path = self.path(res)
        response = await self._http.send("POST", path, json_body=dict(fields))
        self._http.check(response, "POST", res.value, None)
        return _object(self._http.body(response, "POST", path), "POST", path)

    async def update(
        self, resource: Resource | str, id: int, fields: Mapping[str, Any]
    ) -> dict[str, Any]:
        """PATCH the given fields of one object; returns it as ELIZA stored it."""
        res = Resource(resource)
        path = self.path(res, id)
        response = await self._http.send("PATCH", path, json_body=dict(fields))
        self._http.check(response, "PATCH", res.value, id)
        return _object(self._http.body(response, "PATCH", path), "PATCH", path)

    async def delete(self, resource: Resource | str, id: int) -> None:
        """DELETE one object (404 raises ObjectRejectedError with status 404)."""
        res = Resource(resource)
        response = await self._http.send("DELETE", self.path(res, id))
        self._http.check(response, "DELETE", res.value, id)


def _object(value: Any, method: str, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise RunFailedError(f"ELIZA answered {method} {path} with something other than an object")
    return value
