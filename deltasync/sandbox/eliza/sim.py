"""An in-process ELIZA (Django REST Framework) that follows shared/eliza-api.md, quirks included.

Tests and the sandbox need an ELIZA that behaves like the real one where it hurts: unknown
filter parameters are ignored (the whole list comes back), usernames clash case-insensitively,
lists come paged or bare, paths have exactly one slash style, messages are German, and the
network loses responses. :class:`ElizaSim` answers ``httpx.Request`` objects, so it runs
in-process behind ``httpx.MockTransport(sim.handle)`` or on loopback behind a small server.
"""

from __future__ import annotations

import copy
import json
import time
from collections import deque
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

import httpx

from deltasync.sandbox.eliza.faults import FaultQueue, fault_response
from deltasync.sandbox.eliza.listing import list_response
from deltasync.sandbox.eliza.resources import (
    CUSTOMGROUP,
    MAX_LIMIT,
    READ_ONLY_RESOURCES,
    RESOURCES,
    SCHEMA_PATH,
    WRITE_METHODS,
    defaults,
)
from deltasync.sandbox.eliza.schema import openapi, options_metadata
from deltasync.sandbox.eliza.store import ElizaStore
from deltasync.sandbox.eliza.validation import NOT_DICT, type_name
from deltasync.sandbox.eliza.wire import SimRequest, html, json_response


class ElizaSim(ElizaStore):
    """A thread-safe ELIZA instance answering ``httpx.Request`` objects.

    Args:
        api_token: the one token accepted in ``Authorization: Token <token>``.
        trailing_slash: serve ``/api/user/`` instead of ``/api/user`` (the other style is a 404).
        denied: resource paths answered 403; an entry may be prefixed by a method
            (``"PATCH organisation/mitarbeitende"``) to deny only that method.
        max_limit: the server's cap on ``limit`` (1000 as on eliza-api.md).
        serve_schema: whether ``/api/schema/`` exists.
        serve_options: whether ``OPTIONS`` answers with DRF's metadata (the ``actions`` a
            token may use: ``POST`` on a list, ``PUT`` on an object, as DRF's
            ``SimpleMetadata`` does); when False it is a 405.
        delay_s: how long each answer is held back after the request was applied (outside
            the lock, so requests overlap as on a real server: ``sandbox serve
            --eliza-latency-ms``); tests slow ELIZA down to land a kill or a timeout
            mid-push. May be changed at any time.
        log_limit: keep only the last ``log_limit`` requests in :attr:`requests` (the
            counters stay exact), so a long-running sandbox does not grow with every write.
        clock: where ``created``/``modified`` come from (UTC).
    """

    def __init__(
        self,
        api_token: str,
        *,
        trailing_slash: bool = False,
        denied: Iterable[str] = (),
        max_limit: int = MAX_LIMIT,
        serve_schema: bool = True,
        serve_options: bool = True,
        delay_s: float = 0.0,
        log_limit: int | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        super().__init__(clock=clock)
        self._token = api_token
        self.trailing_slash = trailing_slash
        self.denied: set[str] = set(denied)
        self.max_limit = max_limit
        self.serve_schema = serve_schema
        self.serve_options = serve_options
        self.delay_s = delay_s
        self._faults = FaultQueue()
        self._requests: deque[SimRequest] = deque(maxlen=log_limit)
        self._request_count = 0
        self._write_count = 0

    def __repr__(self) -> str:
        return f"ElizaSim(token=***, trailing_slash={self.trailing_slash})"

    # ------------------------------------------------------------------ request log
    @property
    def requests(self) -> list[SimRequest]:
        """Every request received since the last :meth:`reset_log`, in order."""
        with self._lock:
            return list(self._requests)

    @property
    def request_count(self) -> int:
        """How many requests were received since the last :meth:`reset_log`."""
        with self._lock:
            return self._request_count

    @property
    def write_count(self) -> int:
        """How many POST/PUT/PATCH/DELETE requests were received (answered or not)."""
        with self._lock:
            return self._write_count

    def reset_log(self) -> None:
        """Forget the request log and counters (the data stays)."""
        with self._lock:
            self._requests.clear()
            self._request_count = 0
            self._write_count = 0
            self.membership_deletes = 0

    # ------------------------------------------------------------------ fault injection
    def fail_next(
        self,
        *,
        method: str | None = None,
        path_contains: str | None = None,
        status: int = 503,
        n: int = 1,
        retry_after: int | float | str | None = None,
        body: Any = None,
    ) -> None:
        """Answer the next ``n`` matching requests with ``status`` without processing them."""
        ra = None if retry_after is None else str(retry_after)
        with self._lock:
            self._faults.add(
                method=method,
                path_contains=path_contains,
                status=status,
                n=n,
                retry_after=ra,
                body=body,
                lose=False,
            )

    def lose_response_next(
        self, *, method: str = "POST", path_contains: str | None = None, n: int = 1
    ) -> None:
        """Process the next ``n`` matching requests, then answer 502 (the response got lost)."""
        with self._lock:
            self._faults.add(
                method=method,
                path_contains=path_contains,
                status=502,
                n=n,
                retry_after=None,
                body=None,
                lose=True,
            )

    def slow_next(
        self,
        *,
        seconds: float,
        method: str | None = None,
        path_contains: str | None = None,
        n: int = 1,
    ) -> None:
        """Process the next ``n`` matching requests, then hold the answer back ``seconds``
        (longer than the client's timeout: the write was applied, the answer never came)."""
        with self._lock:
            self._faults.add(
                method=method,
                path_contains=path_contains,
                status=0,
                n=n,
                retry_after=None,
                body=None,
                lose=False,
                delay_s=seconds,
            )

    # ------------------------------------------------------------------ HTTP
    def handle(self, request: httpx.Request) -> httpx.Response:
        """Answer one request as ELIZA would (thread-safe)."""
        method = request.method.upper()
        path = request.url.path
        query = dict(request.url.params.multi_items())  # the last value wins
        raw = request.read()
        body: Any = None
        parse_error = False
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                parse_error = True
        with self._lock:
            self._requests.append(SimRequest(method, path, query, copy.deepcopy(body)))
            self._request_count += 1
            if method in WRITE_METHODS:
                self._write_count += 1
            fault = self._faults.take(method, path)
            slow = fault.delay_s if fault is not None and fault.delay_s > 0 else 0.0
            if fault is not None and not fault.lose and not slow:
                response = fault_response(fault)
            else:
                response = self._dispatch(request, method, path, query, raw, body, parse_error)
                if fault is not None and not slow:
                    response = fault_response(fault)
        if self.delay_s > 0 or slow:
            # applied, answer not yet sent: where a kill or a client timeout hurts most
            time.sleep(max(self.delay_s, slow))
        return response

    def _dispatch(
        self,
        request: httpx.Request,
        method: str,
        path: str,
        query: dict[str, str],
        raw: bytes,
        body: Any,
        parse_error: bool,
    ) -> httpx.Response:
        if path == SCHEMA_PATH and self.serve_schema:
            denied = self._authenticate(request)
            if denied is not None:
                return denied
            if method != "GET":
                return self._not_allowed(method, ("GET",))
            return json_response(200, self.openapi())
        route = self._route(path)
        if route is None:
            return html(404, "Not Found")
        resource, oid = route
        denied = self._authenticate(request)
        if denied is not None:
            return denied
        if resource in self.denied or f"{method} {resource}" in self.denied:
            detail = "You do not have permission to perform this action."
            return json_response(403, {"detail": detail})
        allowed = self._allowed(resource, oid is None)
        if method == "OPTIONS" and self.serve_options:
            return self._options(resource, oid, allowed)
        if method not in allowed:
            return self._not_allowed(method, allowed)
        if method in ("POST", "PUT", "PATCH"):
            content_type = request.headers.get("Content-Type", "")
            if raw and not content_type.startswith("application/json"):
                detail = f'Nicht unterstützter Medientyp "{content_type}" in der Anfrage.'
                return json_response(415, {"detail": detail})
            if parse_error:
                return json_response(400, {"detail": "JSON parse error - ungültiges JSON."})
        if oid is None:
            if method == "GET":
                return list_response(
                    request, self._data[resource], self._index, resource, query, self.max_limit
                )
            return self._create(resource, body)
        obj = self._data[resource].get(oid)
        if obj is None:
            return json_response(404, {"detail": "Not found."})
        if method == "GET":
            return json_response(200, copy.deepcopy(obj))
        if method == "DELETE":
            self._delete(resource, oid)
            return httpx.Response(204)
        return self._update(resource, oid, body, partial=method == "PATCH")

    def _route(self, path: str) -> tuple[str, int | None] | None:
        """Resolve a path like a Django URLconf: exactly one slash style, integer ids."""
        if not path.startswith("/api/"):
            return None
        rest = path[len("/api/") :]
        if self.trailing_slash:
            if not rest.endswith("/"):
                return None
            rest = rest[:-1]
        elif rest.endswith("/"):
            return None
        for resource in RESOURCES:
            if rest == resource:
                return resource, None
            if rest.startswith(resource + "/"):
                tail = rest[len(resource) + 1 :]
                if tail.isdigit() and tail.isascii():
                    return resource, int(tail)
        return None

    def _authenticate(self, request: httpx.Request) -> httpx.Response | None:
        """DRF TokenAuthentication with IsAuthenticated: 401 bodies and WWW-Authenticate."""
        headers = {"WWW-Authenticate": "Token"}
        parts = request.headers.get("Authorization", "").split()
        if not parts or parts[0].lower() != "token":
            detail = "Authentication credentials were not provided."
            return json_response(401, {"detail": detail}, headers)
        if len(parts) == 1:
            detail = "Invalid token header. No credentials provided."
            return json_response(401, {"detail": detail}, headers)
        if len(parts) > 2:
            detail = "Invalid token header. Token string should not contain spaces."
            return json_response(401, {"detail": detail}, headers)
        if parts[1] != self._token:
            return json_response(401, {"detail": "Invalid token."}, headers)
        return None

    def _options(self, resource: str, oid: int | None, allowed: tuple[str, ...]) -> httpx.Response:
        """DRF's SimpleMetadata: ``actions`` holds the writes whose permission check passes
        (PUT stands for PATCH too: one "change" permission), and is left out when none does."""
        if oid is not None and oid not in self._data[resource]:
            return json_response(404, {"detail": "Not found."})
        methods = [m for m in ("POST", "PUT") if m in allowed]
        if "PUT" in methods and f"PATCH {resource}" in self.denied:
            methods.remove("PUT")
        body = options_metadata(
            resource, [m for m in methods if f"{m} {resource}" not in self.denied]
        )
        return json_response(200, body, {"Allow": ", ".join((*allowed, "HEAD", "OPTIONS"))})

    @staticmethod
    def _allowed(resource: str, is_list: bool) -> tuple[str, ...]:
        if resource in READ_ONLY_RESOURCES:
            return ("GET",)
        return ("GET", "POST") if is_list else ("GET", "PUT", "PATCH", "DELETE")

    @staticmethod
    def _not_allowed(method: str, allowed: tuple[str, ...]) -> httpx.Response:
        body = {"detail": f'Methode "{method}" nicht erlaubt.'}
        return json_response(405, body, {"Allow": ", ".join((*allowed, "HEAD", "OPTIONS"))})

    # ------------------------------------------------------------------ writes
    def _create(self, resource: str, body: Any) -> httpx.Response:
        if not isinstance(body, dict):
            return json_response(400, {"non_field_errors": [NOT_DICT.format(type=type_name(body))]})
        data, errors = self._validate(resource, body, None, partial=False)
        if errors:
            return json_response(400, errors)
        obj = {**defaults(resource), **data}
        conflict = self._conflict(resource, obj, None)
        if conflict is not None:
            return json_response(409, {"detail": conflict})
        created = self._insert(resource, obj)
        return json_response(201, created)

    def _update(self, resource: str, oid: int, body: Any, *, partial: bool) -> httpx.Response:
        if not isinstance(body, dict):
            return json_response(400, {"non_field_errors": [NOT_DICT.format(type=type_name(body))]})
        data, errors = self._validate(resource, body, oid, partial=partial)
        if errors:
            return json_response(400, errors)
        current = self._data[resource][oid]
        merged = {**current, **data}
        conflict = self._conflict(resource, merged, oid)
        if conflict is not None:
            return json_response(409, {"detail": conflict})
        merged["modified"] = self._now()
        self._replace(resource, oid, merged)
        if resource == CUSTOMGROUP:
            self._groups[oid]["name"] = merged["name"]
        return json_response(200, copy.deepcopy(merged))

    def openapi(self) -> dict[str, Any]:
        """A minimal OpenAPI 3 document (drf-spectacular shape) listing each resource's fields."""
        return openapi(self.trailing_slash)
