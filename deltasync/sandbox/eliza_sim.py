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
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, NamedTuple

import httpx

__all__ = ["SYSTEM_GROUPS", "ElizaSim", "SimRequest"]

USER = "user"
PERSON = "organisation/mitarbeitende"
ORGUNIT = "organisation/orgunit"
MEMBERSHIP = "organisation/membership"
CUSTOMGROUP = "customgroup"
RESOURCES = (USER, PERSON, ORGUNIT, MEMBERSHIP, CUSTOMGROUP)
READ_ONLY_RESOURCES = frozenset({ORGUNIT})
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
SYSTEM_GROUPS = {1: "eliza_users", 2: "eliza_admins"}
MAX_LIMIT = 1000
SCHEMA_PATH = "/api/schema/"

# German texts as a DRF instance with LANGUAGE_CODE="de" answers; the client must never parse them.
REQUIRED = "Dieses Feld ist zwingend erforderlich."
NOT_NULL = "Dieses Feld darf nicht null sein."
NOT_BLANK = "Dieses Feld darf nicht leer sein."
NOT_STRING = "Kein gültiger String."
NOT_BOOL = "Muss ein gültiger Wahrheitswert sein."
NOT_INT = "Eine gültige Ganzzahl ist erforderlich."
NOT_EMAIL = "Gib eine gültige E-Mail Adresse an."
NOT_DATE = "Datum hat das falsche Format. Benutze stattdessen eines dieser Formate: YYYY-MM-DD."
NOT_DICT = "Ungültige Daten. Dictionary erwartet, aber {type} erhalten."
TOO_LONG = "Stelle sicher, dass dieses Feld nicht mehr als {n} Zeichen lang ist."
BAD_CHOICE = '"{value}" ist keine gültige Option.'
BAD_PK = 'Ungültiger pk "{pk}" - das Objekt existiert nicht.'
BAD_PK_TYPE = "Falscher Typ. Erwarte pk-Wert, erhielt {type}."
NOT_LIST = 'Erwarte eine Liste von Elementen, erhielt aber den Typ "{type}".'
USER_TAKEN = "Dieser Benutzer ist bereits einer anderen Person zugeordnet."
FILTER_NOT_INT = "Gib eine ganze Zahl ein."


class SimRequest(NamedTuple):
    """One request the simulator received (before any fault injection)."""

    method: str
    path: str
    query: dict[str, str]
    json: Any


@dataclass(frozen=True)
class _Field:
    """A writable serializer field, enough to validate like DRF and to describe in the schema."""

    kind: str  # str | email | bool | int | date | choice | ref | groups
    required: bool = False
    nullable: bool = True
    blank: bool = True
    max_length: int | None = None
    default: Any = None
    choices: tuple[str, ...] = ()
    ref: str | None = None  # resource a "ref" points at


def _str(max_length: int | None = None, **kw: Any) -> _Field:
    return _Field("str", max_length=max_length, **kw)


FIELDS: dict[str, dict[str, _Field]] = {
    USER: {
        "username": _str(150, required=True, nullable=False, blank=False),
        "email": _Field("email", max_length=254),
        "first_name": _str(150, nullable=False, default=""),
        "last_name": _str(150, nullable=False, default=""),
        "is_active": _Field("bool", nullable=False, default=True),
        "groups": _Field("groups", nullable=False, default=()),
        "remote_key": _str(255),
    },
    PERSON: {
        "vorname": _str(100, required=True, nullable=False, blank=False),
        "nachname": _str(100, required=True, nullable=False, blank=False),
        "email": _Field("email", max_length=254),
        "anstellungsart": _Field(
            "choice", nullable=False, default="intern", choices=("intern", "extern", "ehemalig")
        ),
        "eintrittsdatum": _Field("date"),
        "austrittsdatum": _Field("date"),
        "telefon": _str(100),
        "position": _str(255),
        "abteilung": _str(255),
        "kurzzeichen": _str(20),
        "user": _Field("ref", ref=USER),
        "vorgesetzter": _Field("ref", ref=PERSON),
        "remote_key": _str(255),
        "archived": _Field("bool", nullable=False, default=False),
    },
    ORGUNIT: {
        "titel": _str(255, required=True, nullable=False, blank=False),
        "parent": _Field("ref", ref=ORGUNIT),
        "status": _Field(
            "choice", nullable=False, default="aktiv", choices=("aktiv", "entwurf", "archiviert")
        ),
    },
    MEMBERSHIP: {
        "mitarbeiter": _Field("ref", required=True, nullable=False, ref=PERSON),
        "orgunit": _Field("ref", required=True, nullable=False, ref=ORGUNIT),
        "funktion": _Field("int"),
        "von": _Field("date"),
        "bis": _Field("date"),
    },
    CUSTOMGROUP: {
        "name": _str(150, required=True, nullable=False, blank=False),
        "description": _str(None, default=""),
        "remote_key": _str(255),
    },
}

# Read-only fields every object carries, with their OpenAPI types.
READ_ONLY: dict[str, dict[str, str]] = {
    USER: {"is_superuser": "boolean", "last_login": "string"},
    PERSON: {},
    ORGUNIT: {},
    MEMBERSHIP: {},
    CUSTOMGROUP: {},
}
COMMON_READ_ONLY = {"id": "integer", "uuid": "string", "created": "string", "modified": "string"}

# Filters each list endpoint knows; anything else in the query string is ignored (DRF).
FILTERS: dict[str, dict[str, str]] = {
    USER: {"username": "iexact", "email": "iexact", "remote_key": "exact", "is_active": "bool"},
    PERSON: {"remote_key": "exact", "archived": "bool", "email": "exact", "user": "int"},
    ORGUNIT: {"status": "exact"},
    MEMBERSHIP: {"mitarbeiter": "int", "orgunit": "int"},
    CUSTOMGROUP: {},
}

SCHEMA_NAMES = {
    USER: "User",
    PERSON: "Mitarbeitende",
    ORGUNIT: "Orgunit",
    MEMBERSHIP: "Membership",
    CUSTOMGROUP: "CustomGroup",
}

_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_TRUE = frozenset({True, "true", "True", "TRUE", "1", "yes", "on"})
_FALSE = frozenset({False, "false", "False", "FALSE", "0", "no", "off"})


class _Invalid(Exception):
    """One field's validation failure (DRF raises per field, the serializer collects them)."""


@dataclass
class _Fault:
    method: str | None
    path_contains: str | None
    remaining: int
    status: int
    retry_after: str | None
    body: Any
    lose: bool  # apply the request, then answer ``status`` instead of the real response

    def matches(self, method: str, path: str) -> bool:
        if self.method is not None and self.method.upper() != method:
            return False
        return self.path_contains is None or self.path_contains in path


def _html(status: int, title: str) -> httpx.Response:
    page = (
        f"<!doctype html><html><head><title>{title}</title></head>"
        f"<body><h1>{title}</h1></body></html>"
    )
    return httpx.Response(status, text=page, headers={"Content-Type": "text/html; charset=utf-8"})


def _json(status: int, body: Any, headers: Mapping[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, json=body, headers=dict(headers or {}))


def _type_name(value: Any) -> str:
    return {dict: "dict", list: "list", bool: "bool", int: "int", float: "float", str: "str"}.get(
        type(value), type(value).__name__
    )


class ElizaSim:
    """A thread-safe ELIZA instance answering ``httpx.Request`` objects.

    Args:
        api_token: the one token accepted in ``Authorization: Token <token>``.
        trailing_slash: serve ``/api/user/`` instead of ``/api/user`` (the other style is a 404).
        denied: resource paths answered 403; an entry may be prefixed by a method
            (``"PATCH organisation/mitarbeitende"``) to deny only that method.
        max_limit: the server's cap on ``limit`` (1000 as on eliza-api.md).
        serve_schema: whether ``/api/schema/`` exists.
        delay_s: how long each answer is held back after the request was applied (outside
            the lock, so requests overlap); tests slow ELIZA down to land a kill or a timeout
            mid-push. May be changed at any time.
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
        delay_s: float = 0.0,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self._token = api_token
        self.trailing_slash = trailing_slash
        self.denied: set[str] = set(denied)
        self.max_limit = max_limit
        self.serve_schema = serve_schema
        self.delay_s = delay_s
        self._clock = clock or (lambda: datetime.now(UTC))
        self._lock = threading.RLock()
        self._data: dict[str, dict[int, dict[str, Any]]] = {r: {} for r in RESOURCES}
        self._next_id: dict[str, int] = dict.fromkeys(RESOURCES, 1)
        # System, custom and automatic org-unit groups share one id space.
        self._groups: dict[int, dict[str, Any]] = {
            gid: {"id": gid, "name": name, "kind": "system"} for gid, name in SYSTEM_GROUPS.items()
        }
        self._next_group_id = max(SYSTEM_GROUPS) + 1
        self._faults: list[_Fault] = []
        self._requests: list[SimRequest] = []
        self._request_count = 0
        self._write_count = 0
        self.membership_deletes = 0

    def __repr__(self) -> str:
        return f"ElizaSim(token=***, trailing_slash={self.trailing_slash})"

    # ------------------------------------------------------------------ inspection
    def _snapshot(self, resource: str) -> dict[int, dict[str, Any]]:
        with self._lock:
            return copy.deepcopy(self._data[resource])

    @property
    def users(self) -> dict[int, dict[str, Any]]:
        """Users by id (a copy)."""
        return self._snapshot(USER)

    @property
    def persons(self) -> dict[int, dict[str, Any]]:
        """Persons (Mitarbeitende) by id (a copy)."""
        return self._snapshot(PERSON)

    @property
    def memberships(self) -> dict[int, dict[str, Any]]:
        """Memberships by id (a copy)."""
        return self._snapshot(MEMBERSHIP)

    @property
    def orgunits(self) -> dict[int, dict[str, Any]]:
        """Org units by id (a copy)."""
        return self._snapshot(ORGUNIT)

    @property
    def customgroups(self) -> dict[int, dict[str, Any]]:
        """Custom groups by (group) id (a copy)."""
        return self._snapshot(CUSTOMGROUP)

    @property
    def groups(self) -> dict[int, dict[str, Any]]:
        """Every group (system, custom, automatic ``orgunit_<id>``) by id: id, name, kind."""
        with self._lock:
            return copy.deepcopy(self._groups)

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

    # ------------------------------------------------------------------ seeding
    def _insert(self, resource: str, fields: Mapping[str, Any]) -> dict[str, Any]:
        """Store an object as a migration or an admin would: defaults filled, no validation."""
        with self._lock:
            obj: dict[str, Any] = {
                name: list(spec.default) if isinstance(spec.default, tuple) else spec.default
                for name, spec in FIELDS[resource].items()
            }
            obj.update(dict.fromkeys(READ_ONLY[resource]))
            if resource == USER:
                obj["is_superuser"] = False
            obj.update(fields)
            if "id" in fields:
                oid = int(fields["id"])
            elif resource == CUSTOMGROUP:
                oid = self._next_group_id
            else:
                oid = self._next_id[resource]
            self._next_id[resource] = max(self._next_id[resource], oid + 1)
            if resource == CUSTOMGROUP:
                self._next_group_id = max(self._next_group_id, oid + 1)
                self._groups[oid] = {"id": oid, "name": obj["name"], "kind": "custom"}
            now = self._now()
            obj = {
                "id": oid,
                "uuid": str(fields.get("uuid") or uuid.uuid4()),
                **{k: v for k, v in obj.items() if k not in ("id", "uuid")},
                "created": fields.get("created") or now,
                "modified": fields.get("modified") or now,
            }
            if resource == USER:
                obj["groups"] = sorted(set(obj["groups"]))
            self._data[resource][oid] = obj
            if resource == ORGUNIT:
                gid = self._next_group_id
                self._next_group_id += 1
                self._groups[gid] = {"id": gid, "name": f"orgunit_{oid}", "kind": "orgunit"}
            return copy.deepcopy(obj)

    def add_user(self, **fields: Any) -> dict[str, Any]:
        """Seed a user (any field, read-only ones such as ``is_superuser`` included)."""
        return self._insert(USER, fields)

    def add_person(self, **fields: Any) -> dict[str, Any]:
        """Seed a person (Mitarbeitende)."""
        return self._insert(PERSON, fields)

    def add_orgunit(
        self, titel: str, parent: int | None = None, status: str = "aktiv"
    ) -> dict[str, Any]:
        """Seed an org unit; its automatic ``orgunit_<id>`` group is created with it."""
        return self._insert(ORGUNIT, {"titel": titel, "parent": parent, "status": status})

    def add_membership(
        self,
        mitarbeiter: int,
        orgunit: int,
        *,
        funktion: int | None = None,
        von: str | None = None,
        bis: str | None = None,
    ) -> dict[str, Any]:
        """Seed a membership of a person in an org unit."""
        fields = {"mitarbeiter": mitarbeiter, "orgunit": orgunit, "funktion": funktion}
        return self._insert(MEMBERSHIP, {**fields, "von": von, "bis": bis})

    def add_customgroup(self, name: str, **fields: Any) -> dict[str, Any]:
        """Seed a custom group; its id comes from the shared group id space."""
        return self._insert(CUSTOMGROUP, {"name": name, **fields})

    def orgunit_group(self, orgunit_id: int) -> int:
        """The id of the automatic group ``orgunit_<orgunit_id>``."""
        with self._lock:
            name = f"orgunit_{orgunit_id}"
            return next(gid for gid, g in self._groups.items() if g["name"] == name)

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
            self._faults.append(_Fault(method, path_contains, n, status, ra, body, lose=False))

    def lose_response_next(
        self, *, method: str = "POST", path_contains: str | None = None, n: int = 1
    ) -> None:
        """Process the next ``n`` matching requests, then answer 502 (the response got lost)."""
        with self._lock:
            self._faults.append(_Fault(method, path_contains, n, 502, None, None, lose=True))

    def _take_fault(self, method: str, path: str) -> _Fault | None:
        for fault in self._faults:
            if fault.remaining > 0 and fault.matches(method, path):
                fault.remaining -= 1
                self._faults = [f for f in self._faults if f.remaining > 0]
                return fault
        return None

    @staticmethod
    def _fault_response(fault: _Fault) -> httpx.Response:
        headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
        if fault.body is None:
            if fault.status == 429:
                detail = "Die Anfrage wurde gedrosselt."
                return _json(429, {"detail": detail}, headers)
            response = _html(fault.status, f"{fault.status} {_reason(fault.status)}")
        elif isinstance(fault.body, (bytes, str)):
            response = httpx.Response(fault.status, content=fault.body)
        else:
            response = _json(fault.status, fault.body)
        response.headers.update(headers)
        return response

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
            fault = self._take_fault(method, path)
            if fault is not None and not fault.lose:
                response = self._fault_response(fault)
            else:
                response = self._dispatch(request, method, path, query, raw, body, parse_error)
                if fault is not None:
                    response = self._fault_response(fault)
        if self.delay_s > 0:
            time.sleep(self.delay_s)  # applied, answer not yet sent: where a kill hurts most
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
            return _json(200, self.openapi())
        route = self._route(path)
        if route is None:
            return _html(404, "Not Found")
        resource, oid = route
        denied = self._authenticate(request)
        if denied is not None:
            return denied
        if resource in self.denied or f"{method} {resource}" in self.denied:
            detail = "You do not have permission to perform this action."
            return _json(403, {"detail": detail})
        allowed = self._allowed(resource, oid is None)
        if method not in allowed:
            return self._not_allowed(method, allowed)
        if method in ("POST", "PUT", "PATCH"):
            content_type = request.headers.get("Content-Type", "")
            if raw and not content_type.startswith("application/json"):
                detail = f'Nicht unterstützter Medientyp "{content_type}" in der Anfrage.'
                return _json(415, {"detail": detail})
            if parse_error:
                return _json(400, {"detail": "JSON parse error - ungültiges JSON."})
        if oid is None:
            if method == "GET":
                return self._list(request, resource, query)
            return self._create(resource, body)
        obj = self._data[resource].get(oid)
        if obj is None:
            return _json(404, {"detail": "Not found."})
        if method == "GET":
            return _json(200, copy.deepcopy(obj))
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
            return _json(401, {"detail": detail}, headers)
        if len(parts) == 1:
            detail = "Invalid token header. No credentials provided."
            return _json(401, {"detail": detail}, headers)
        if len(parts) > 2:
            detail = "Invalid token header. Token string should not contain spaces."
            return _json(401, {"detail": detail}, headers)
        if parts[1] != self._token:
            return _json(401, {"detail": "Invalid token."}, headers)
        return None

    @staticmethod
    def _allowed(resource: str, is_list: bool) -> tuple[str, ...]:
        if resource in READ_ONLY_RESOURCES:
            return ("GET",)
        return ("GET", "POST") if is_list else ("GET", "PUT", "PATCH", "DELETE")

    @staticmethod
    def _not_allowed(method: str, allowed: tuple[str, ...]) -> httpx.Response:
        body = {"detail": f'Methode "{method}" nicht erlaubt.'}
        return _json(405, body, {"Allow": ", ".join((*allowed, "HEAD", "OPTIONS"))})

    # ------------------------------------------------------------------ list
    def _list(self, request: httpx.Request, resource: str, query: dict[str, str]) -> httpx.Response:
        rows = sorted(self._data[resource].values(), key=lambda o: o["id"])
        errors: dict[str, list[str]] = {}
        for name, kind in FILTERS[resource].items():
            value = query.get(name, "")
            if value == "":
                continue  # django-filter skips empty values
            if kind == "iexact":
                low = value.lower()
                rows = [o for o in rows if str(o.get(name) or "").lower() == low]
            elif kind == "exact":
                rows = [o for o in rows if o.get(name) == value]
            elif kind == "bool":
                if value in _TRUE:
                    rows = [o for o in rows if o.get(name) is True]
                elif value in _FALSE:
                    rows = [o for o in rows if o.get(name) is False]
                # any other value: NullBooleanSelect makes it "unknown", the filter is skipped
            else:
                try:
                    wanted = int(value)
                except ValueError:
                    errors[name] = [FILTER_NOT_INT]
                    continue
                rows = [o for o in rows if o.get(name) == wanted]
        if errors:
            return _json(400, errors)
        limit = _positive_int(query.get("limit"), strict=True, cutoff=self.max_limit)
        if limit is None:
            return _json(200, copy.deepcopy(rows))
        offset = _positive_int(query.get("offset"), strict=False) or 0
        count = len(rows)
        url = request.url
        next_url = None
        if offset + limit < count:
            next_url = str(url.copy_set_param("offset", str(offset + limit)))
        previous = None
        if offset > 0:
            if offset - limit <= 0:
                previous = str(url.copy_remove_param("offset"))
            else:
                previous = str(url.copy_set_param("offset", str(offset - limit)))
        results = copy.deepcopy(rows[offset : offset + limit])
        page = {"count": count, "next": next_url, "previous": previous, "results": results}
        return _json(200, page)

    # ------------------------------------------------------------------ writes
    def _create(self, resource: str, body: Any) -> httpx.Response:
        if not isinstance(body, dict):
            return _json(400, {"non_field_errors": [NOT_DICT.format(type=_type_name(body))]})
        data, errors = self._validate(resource, body, None, partial=False)
        if errors:
            return _json(400, errors)
        obj = {**self._defaults(resource), **data}
        conflict = self._conflict(resource, obj, None)
        if conflict is not None:
            return _json(409, {"detail": conflict})
        created = self._insert(resource, obj)
        return _json(201, created)

    def _update(self, resource: str, oid: int, body: Any, *, partial: bool) -> httpx.Response:
        if not isinstance(body, dict):
            return _json(400, {"non_field_errors": [NOT_DICT.format(type=_type_name(body))]})
        data, errors = self._validate(resource, body, oid, partial=partial)
        if errors:
            return _json(400, errors)
        current = self._data[resource][oid]
        merged = {**current, **data}
        conflict = self._conflict(resource, merged, oid)
        if conflict is not None:
            return _json(409, {"detail": conflict})
        merged["modified"] = self._now()
        self._data[resource][oid] = merged
        if resource == CUSTOMGROUP:
            self._groups[oid]["name"] = merged["name"]
        return _json(200, copy.deepcopy(merged))

    def _delete(self, resource: str, oid: int) -> None:
        del self._data[resource][oid]
        if resource == USER:
            for person in self._data[PERSON].values():
                if person.get("user") == oid:
                    person["user"] = None
        elif resource == PERSON:
            for person in self._data[PERSON].values():
                if person.get("vorgesetzter") == oid:
                    person["vorgesetzter"] = None
            gone = [m for m, row in self._data[MEMBERSHIP].items() if row["mitarbeiter"] == oid]
            for mid in gone:
                del self._data[MEMBERSHIP][mid]
        elif resource == MEMBERSHIP:
            self.membership_deletes += 1
        elif resource == CUSTOMGROUP:
            del self._groups[oid]
            for user in self._data[USER].values():
                user["groups"] = [g for g in user["groups"] if g != oid]

    @staticmethod
    def _defaults(resource: str) -> dict[str, Any]:
        return {
            name: list(spec.default) if isinstance(spec.default, tuple) else spec.default
            for name, spec in FIELDS[resource].items()
        }

    def _validate(
        self, resource: str, body: Mapping[str, Any], oid: int | None, *, partial: bool
    ) -> tuple[dict[str, Any], dict[str, list[str]]]:
        """DRF serializer validation: unknown and read-only fields are ignored."""
        data: dict[str, Any] = {}
        errors: dict[str, list[str]] = {}
        for name, spec in FIELDS[resource].items():
            if name not in body:
                if spec.required and not partial:
                    errors[name] = [REQUIRED]
                continue
            try:
                data[name] = self._clean(spec, body[name])
            except _Invalid as exc:
                errors[name] = [str(exc)]
        if resource == PERSON and data.get("user") is not None and "user" not in errors:
            taken = any(
                p.get("user") == data["user"] and pid != oid
                for pid, p in self._data[PERSON].items()
            )
            if taken:
                errors["user"] = [USER_TAKEN]
        return data, errors

    def _clean(self, spec: _Field, value: Any) -> Any:
        if value is None:
            if not spec.nullable:
                raise _Invalid(NOT_NULL)
            return None
        kind = spec.kind
        if kind in ("str", "email"):
            if isinstance(value, bool) or not isinstance(value, (str, int, float)):
                raise _Invalid(NOT_STRING)
            text = str(value)
            if text.strip() == "" and not spec.blank:
                raise _Invalid(NOT_BLANK)
            if spec.max_length is not None and len(text) > spec.max_length:
                raise _Invalid(TOO_LONG.format(n=spec.max_length))
            if kind == "email" and text and not _EMAIL_RE.match(text):
                raise _Invalid(NOT_EMAIL)
            return text
        if kind == "bool":
            if isinstance(value, (bool, str, int)) and value in _TRUE:
                return True
            if isinstance(value, (bool, str, int)) and value in _FALSE:
                return False
            raise _Invalid(NOT_BOOL)
        if kind == "int":
            return _as_int(value, NOT_INT)
        if kind == "date":
            if not isinstance(value, str) or not _DATE_RE.match(value):
                raise _Invalid(NOT_DATE)
            try:
                return date.fromisoformat(value).isoformat()
            except ValueError:
                raise _Invalid(NOT_DATE) from None
        if kind == "choice":
            if not isinstance(value, str) or value not in spec.choices:
                raise _Invalid(BAD_CHOICE.format(value=value))
            return value
        if kind == "ref":
            assert spec.ref is not None
            pk = _as_int(value, BAD_PK_TYPE.format(type=_type_name(value)))
            if pk not in self._data[spec.ref]:
                raise _Invalid(BAD_PK.format(pk=pk))
            return pk
        if kind == "groups":
            if not isinstance(value, list):
                raise _Invalid(NOT_LIST.format(type=_type_name(value)))
            ids: set[int] = set()
            for item in value:
                pk = _as_int(item, BAD_PK_TYPE.format(type=_type_name(item)))
                if pk not in self._groups:
                    raise _Invalid(BAD_PK.format(pk=pk))
                ids.add(pk)
            return sorted(ids)
        raise AssertionError(kind)

    def _conflict(self, resource: str, obj: Mapping[str, Any], oid: int | None) -> str | None:
        """The uniqueness rules ELIZA answers with 409 (not DRF's usual 400)."""
        others = [o for i, o in self._data[resource].items() if i != oid]

        def clash(name: str, *, ci: bool = False) -> bool:
            value = obj.get(name)
            if value in (None, ""):
                return False
            norm = str(value).lower() if ci else value
            return any(
                ((str(o.get(name) or "").lower() if ci else o.get(name)) == norm) for o in others
            )

        if resource == USER:
            if clash("username", ci=True):
                return "Ein Benutzer mit diesem Benutzernamen existiert bereits."
            if clash("email", ci=True):
                return "Ein Benutzer mit dieser E-Mail-Adresse existiert bereits."
            if clash("remote_key"):
                return "Ein Benutzer mit diesem remote_key existiert bereits."
        elif resource == PERSON:
            if clash("remote_key"):
                return "Mitarbeitende mit diesem remote_key existiert bereits."
        elif resource == CUSTOMGROUP:
            name = obj.get("name")
            if any(g["name"] == name for gid, g in self._groups.items() if gid != oid):
                return "Eine Gruppe mit diesem Namen existiert bereits."
        return None

    def _now(self) -> str:
        return self._clock().astimezone(UTC).isoformat().replace("+00:00", "Z")

    # ------------------------------------------------------------------ schema
    def openapi(self) -> dict[str, Any]:
        """A minimal OpenAPI 3 document (drf-spectacular shape) listing each resource's fields."""
        slash = "/" if self.trailing_slash else ""
        types = {
            "str": "string",
            "email": "string",
            "bool": "boolean",
            "int": "integer",
            "date": "string",
            "choice": "string",
            "ref": "integer",
            "groups": "array",
        }
        schemas: dict[str, Any] = {}
        paths: dict[str, Any] = {}
        for resource in RESOURCES:
            name = SCHEMA_NAMES[resource]
            props: dict[str, Any] = {
                field: {"type": kind, "readOnly": True}
                for field, kind in {**COMMON_READ_ONLY, **READ_ONLY[resource]}.items()
            }
            required = ["id", "uuid", "created", "modified"]
            for field, spec in FIELDS[resource].items():
                prop: dict[str, Any] = {"type": types[spec.kind]}
                if spec.nullable:
                    prop["nullable"] = True
                if spec.max_length is not None:
                    prop["maxLength"] = spec.max_length
                if spec.kind == "date":
                    prop["format"] = "date"
                if spec.kind == "email":
                    prop["format"] = "email"
                if spec.kind == "choice":
                    prop["enum"] = list(spec.choices)
                if spec.kind == "groups":
                    prop["items"] = {"type": "integer"}
                if resource in READ_ONLY_RESOURCES:
                    prop["readOnly"] = True
                props[field] = prop
                if spec.required:
                    required.append(field)
            schemas[name] = {"type": "object", "properties": props, "required": required}
            ref = {"$ref": f"#/components/schemas/{name}"}
            content = {"application/json": {"schema": ref}}
            listing: dict[str, Any] = {
                "get": {
                    "operationId": f"{name.lower()}_list",
                    "parameters": [
                        {"name": f, "in": "query", "schema": {"type": "string"}}
                        for f in (*FILTERS[resource], "limit", "offset")
                    ],
                    "responses": {
                        "200": {
                            "content": {
                                "application/json": {"schema": {"type": "array", "items": ref}}
                            }
                        }
                    },
                }
            }
            detail: dict[str, Any] = {"get": {"responses": {"200": {"content": content}}}}
            if resource not in READ_ONLY_RESOURCES:
                listing["post"] = {
                    "requestBody": {"content": content},
                    "responses": {"201": {"content": content}},
                }
                for verb in ("put", "patch"):
                    detail[verb] = {
                        "requestBody": {"content": content},
                        "responses": {"200": {"content": content}},
                    }
                detail["delete"] = {"responses": {"204": {}}}
            paths[f"/api/{resource}{slash}"] = listing
            paths[f"/api/{resource}/{{id}}{slash}"] = detail
        return {
            "openapi": "3.0.3",
            "info": {"title": "ELIZA API", "version": "1.0.0 (deltasync sandbox)"},
            "paths": paths,
            "components": {"schemas": schemas},
        }


def _as_int(value: Any, message: str) -> int:
    if isinstance(value, bool):
        raise _Invalid(message)
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    raise _Invalid(message)


def _positive_int(value: str | None, *, strict: bool, cutoff: int | None = None) -> int | None:
    """DRF's ``_positive_int``: invalid (or 0 when strict) means "not given"."""
    if value is None:
        return None
    try:
        number = int(value)
    except ValueError:
        return None
    if number < 0 or (strict and number == 0):
        return None
    return min(number, cutoff) if cutoff is not None else number


def _reason(status: int) -> str:
    return httpx.codes.get_reason_phrase(status) or "Error"
