"""Simulated Microsoft Graph v1.0: the tenant's users and groups behind real delta semantics.

deltasync is tested, and demonstrated, against this simulator instead of a live tenant, so it
has to behave like real Graph in every way a delta client can get wrong (see
shared/reference/graph-delta.md §1, §2, §4.7, §4.8). The layers: :class:`Tenant` holds the
directory and its change log, :class:`DeltaFeed` turns the log into delta rounds, and
:class:`GraphSim` here routes HTTP requests, checks bearer tokens against :class:`TokenSim`
and permissions, injects queued faults and serves plain reads; :mod:`.writes` serves the
Graph writes (create, update, soft delete, restore, member ``$ref``). ``handle(request) ->
response`` serves both ``httpx.MockTransport(sim.handle)`` in-process and the loopback server.
"""

from __future__ import annotations

import copy
import random
import re
import secrets
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

import httpx

from deltasync.sandbox.graph import tenant_data as td
from deltasync.sandbox.graph.delta import DeltaFeed
from deltasync.sandbox.graph.faults import FaultQueue
from deltasync.sandbox.graph.query import list_filter, parse_select
from deltasync.sandbox.graph.query import options as query_options
from deltasync.sandbox.graph.schema import SCHEMAS, USERS, Schema
from deltasync.sandbox.graph.tenant import Obj
from deltasync.sandbox.graph.token import TokenSim
from deltasync.sandbox.graph.wire import GraphError, SimRequest, json_response, log_request, origin
from deltasync.sandbox.graph.writes import (
    deleted_items,
    find_user,
    handle_write,
    matches,
    not_found,
)


class GraphSim(DeltaFeed):
    """An in-memory Entra tenant served as Microsoft Graph v1.0 with real delta semantics.

    Args:
        base_url: the Graph root every link is built from; settable later (the loopback
            server sets it to its real address).
        page_size: objects per delta page (duplicates may make a page a little longer).
        seed: seeds object ids and page order, so a scenario replays identically.
        tokens: when given, every request needs a bearer token issued by it.
        now: the clock used for delta-token ages.
        token_ttl_s: delta and skip tokens older than this are expired (Graph: 7 days).
        duplicates: repeat a few objects on later pages of a round, as Graph does.
        empty_pages: insert one empty page (with a nextLink) into every non-empty round.
        members_per_entry: a group with more members spans several entries (and so pages),
            each repeating the group with the next slice of ``members@delta``, as Graph does.

    ``granted`` holds the app's application permissions (``User.Read.All`` and
    ``GroupMember.Read.All`` by default; with ``tokens``, the same set as ``tokens.roles``, so
    the access tokens' ``roles`` claim agrees); a resource none of whose read permissions is
    granted answers 403 ``Authorization_RequestDenied``. ``requests`` logs every request.
    """

    def __init__(
        self,
        *,
        base_url: str = "http://graph.sandbox.invalid/v1.0",
        page_size: int = 100,
        seed: int = 0,
        tokens: TokenSim | None = None,
        now: Callable[[], float] = time.time,
        token_ttl_s: float = 7 * 24 * 3600,
        duplicates: bool = True,
        empty_pages: bool = True,
        members_per_entry: int = 500,
    ) -> None:
        if page_size < 1:
            raise ValueError("page_size must be at least 1")
        super().__init__(
            seed=seed,
            now=now,
            base_url=base_url,
            page_size=page_size,
            token_ttl_s=token_ttl_s,
            duplicates=duplicates,
            empty_pages=empty_pages,
            members_per_entry=members_per_entry,
        )
        self.tokens = tokens
        # one set with the token endpoint's: the roles claim says what Graph enforces
        self.granted: set[str] = (
            tokens.roles if tokens is not None else {"User.Read.All", "GroupMember.Read.All"}
        )
        self.tenant_id = str(uuid.UUID(int=random.Random(f"tenant:{seed}").getrandbits(128)))
        self.requests: list[SimRequest] = []
        self._lists: dict[str, tuple[list[str], tuple[str, ...], float]] = {}
        self._faults = FaultQueue()

    # ------------------------------------------------------------------ configuration

    @property
    def base_url(self) -> str:
        """The Graph root (``…/v1.0``) that every nextLink and deltaLink starts with."""
        return self._base_url

    @base_url.setter
    def base_url(self, value: str) -> None:
        with self._lock:
            self._base_url = value.rstrip("/")

    @property
    def request_count(self) -> int:
        """Requests received since construction or the last :meth:`reset_log`."""
        return len(self.requests)

    def reset_log(self) -> None:
        """Forget the recorded requests."""
        with self._lock:
            self.requests.clear()

    def expire_tokens(self) -> None:
        """Invalidate every delta and skip token issued so far (the next use gets a 400)."""
        with self._lock:
            self._skips.clear()
            self._deltas.clear()
            self._lists.clear()

    def fail_next(
        self,
        status: int,
        *,
        code: str | None = None,
        n: int = 1,
        retry_after: float | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Answer the next ``n`` requests with an error of this status (queued after earlier ones).

        410 carries a ``Location`` with the request URL and an empty ``$deltatoken``; 429
        carries ``Retry-After`` (1 s unless given).
        """
        with self._lock:
            self._faults.add(status, code=code, n=n, retry_after=retry_after, headers=headers)

    def throttle(self, n: int = 1, retry_after: float = 1) -> None:
        """Answer the next ``n`` requests with 429 Too Many Requests and ``Retry-After``."""
        self.fail_next(429, n=n, retry_after=retry_after)

    # ------------------------------------------------------------------ HTTP

    def handle(self, request: httpx.Request) -> httpx.Response:
        """Answer one Graph request (thread-safe)."""
        with self._lock:
            request_id = str(uuid.uuid4())
            client_request_id = request.headers.get("client-request-id", request_id)
            headers = {
                "request-id": request_id,
                "client-request-id": client_request_id,
                "Cache-Control": "no-cache",
                "x-ms-resource-unit": "1",
            }
            try:
                response = self._respond(request, headers)
            except GraphError as e:
                body = {
                    "error": {
                        "code": e.code,
                        "message": e.message,
                        "innerError": {
                            "date": self._iso_now().rstrip("Z"),
                            "request-id": request_id,
                            "client-request-id": client_request_id,
                        },
                    }
                }
                response = json_response(e.status, body, {**headers, **e.headers})
            self.requests.append(log_request(request, response.status_code))
            return response

    def _respond(self, request: httpx.Request, headers: dict[str, str]) -> httpx.Response:
        self._faults.raise_next(request, self.tenant_id)
        self._check_auth(request)
        path = re.sub(r"/{2,}", "/", request.url.path)
        base_path = urlsplit(self._base_url).path.rstrip("/")
        if not path.startswith(base_path + "/"):
            raise GraphError(404, "UnknownResource", f"Resource not found for '{path}'.")
        segments = [s for s in path[len(base_path) + 1 :].split("/") if s]
        if request.method not in ("GET", "HEAD"):
            return handle_write(self, self._base_url, request, segments, headers)
        options = query_options(request)
        if segments[:2] == ["directory", "deletedItems"]:
            self._check_permission(USERS)
            body = deleted_items(self, self._base_url, request, segments)
            return json_response(200, body, headers)
        if len(segments) == 2 and segments[0] in SCHEMAS:
            schema = SCHEMAS[segments[0]]
            if re.fullmatch(r"(microsoft\.graph\.)?delta(\(\))?", segments[1]):
                self._check_permission(schema)
                return self._delta(request, schema, options, headers)
            self._check_permission(schema)
            return self._get_one(schema, segments[1], options, headers)
        if len(segments) == 1 and segments[0] in SCHEMAS:
            schema = SCHEMAS[segments[0]]
            self._check_permission(schema)
            return self._list(schema, options, headers)
        if segments == ["organization"]:
            body = {
                "@odata.context": f"{self._base_url}/$metadata#organization",
                "value": [{"id": self.tenant_id, "displayName": td.PARENT_COMPANY}],
            }
            return json_response(200, body, headers)
        shown = "/".join(segments) or "/"
        raise GraphError(404, "UnknownResource", f"Resource not found for the segment '{shown}'.")

    def _check_auth(self, request: httpx.Request) -> None:
        if self.tokens is None:
            return
        challenge = {
            "WWW-Authenticate": 'Bearer realm="", authorization_uri="'
            f'{self.tokens.authority}/common/oauth2/authorize", '
            'client_id="00000003-0000-0000-c000-000000000000"'
        }
        value = request.headers.get("authorization", "")
        scheme, _, token = value.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise GraphError(401, "InvalidAuthenticationToken", "Access token is empty.", challenge)
        problem = self.tokens.validate(token.strip(), audiences=(origin(self._base_url),))
        if problem is not None:
            raise GraphError(401, "InvalidAuthenticationToken", problem, challenge)

    def _check_permission(self, schema: Schema) -> None:
        if not (self.granted & schema.permissions):
            raise GraphError(403, "Authorization_RequestDenied")

    # ------------------------------------------------------------------ plain reads

    def _get_one(
        self, schema: Schema, object_id: str, options: dict[str, str], headers: dict[str, str]
    ) -> httpx.Response:
        obj = find_user(self, object_id) if schema is USERS else self._objs.get(object_id)
        if obj is None or not self._live(obj, schema):
            raise not_found(object_id)
        select = parse_select(schema, options.get("select"))
        body = self._render_plain(obj, select)
        body["@odata.context"] = f"{self._context(schema, select)}/$entity"
        return json_response(200, body, headers)

    def _render_plain(self, obj: Obj, select: tuple[str, ...]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in select:
            if name == "id":
                out["id"] = obj.id
            elif name != obj.schema.relation:
                out[name] = copy.deepcopy(obj.props.get(name))
        return out

    def _list(
        self, schema: Schema, options: dict[str, str], headers: dict[str, str]
    ) -> httpx.Response:
        """``GET /users`` and ``/groups`` with ``$select`` and ``$top`` (for ``check``)."""
        if "skiptoken" in options:
            saved = self._lists.pop(options["skiptoken"], None)
            if saved is None or self._expired(saved[2]):
                raise GraphError(400, "Request_BadRequest", "The skip token is invalid.")
            remaining, select, _ = saved
        else:
            select = parse_select(schema, options.get("select"))
            terms = list_filter(schema, options.get("filter"))
            remaining = [
                o.id for o in self._objs.values() if self._live(o, schema) and matches(o, terms)
            ]
        try:
            top = max(1, min(999, int(options.get("top", "100"))))
        except ValueError:
            raise GraphError(400, "Request_BadRequest", "Invalid $top value.") from None
        page, rest = remaining[:top], remaining[top:]
        body: dict[str, Any] = {"@odata.context": self._context(schema, select)}
        if rest:
            token = secrets.token_urlsafe(32)
            self._lists[token] = (rest, select, self._now())
            body["@odata.nextLink"] = f"{self._base_url}/{schema.resource}?$skiptoken={token}"
        body["value"] = [self._render_plain(self._objs[i], select) for i in page if i in self._objs]
        return json_response(200, body, headers)
