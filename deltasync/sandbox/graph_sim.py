"""Simulated Microsoft Graph (users and groups delta) and Entra token endpoint.

deltasync is tested, and demonstrated, against this simulator instead of a live tenant, so it
has to behave like real Graph in every way a delta client can get wrong (see
shared/reference/graph-delta.md §1, §2, §4.7, §4.8):

- pages in no particular order, duplicates across pages, an empty page that still carries a
  ``nextLink``, exactly one of ``nextLink``/``deltaLink`` per page, absolute links that
  carry only opaque tokens (query options live in the initial request only);
- ``$select`` decides both what is returned and what is tracked; ``Prefer: return=minimal``
  turns incremental payloads into "changed properties only" (an explicit ``null`` = cleared,
  absent = unchanged); ``@removed`` with reason ``changed`` (soft delete) or ``deleted``;
  a restored user comes back as a new object; ``manager@delta`` / ``members@delta``;
- tokens that expire (400 ``syncStateNotFound``), injected faults (429 with ``Retry-After``,
  5xx, 410 with ``Location``, 401, 403), bearer tokens checked against :class:`TokenSim`.

Everything is an in-memory model driven by a change log: each mutation appends a
:class:`Change` with a sequence number; a delta token is a position in that log plus the
selected property set. Each simulator exposes ``handle(request) -> response`` so it serves
both ``httpx.MockTransport(sim.handle)`` in-process and the loopback server.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
import random
import re
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final, Literal
from urllib.parse import parse_qsl, urlsplit
from zoneinfo import ZoneInfo

import httpx
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding

from deltasync.sandbox import tenant_data as td

__all__ = [
    "Change",
    "GraphSim",
    "IssuedToken",
    "SimRequest",
    "TokenSim",
    "make_tenant",
]

_JSON_CONTENT_TYPE: Final = (
    "application/json;odata.metadata=minimal;odata.streaming=true;"
    "IEEE754Compatible=false;charset=utf-8"
)
_USER_TYPE: Final = "#microsoft.graph.user"
_GROUP_TYPE: Final = "#microsoft.graph.group"
_SYNC_STATE_MESSAGE: Final = (
    "The sync state generation is not found. The delta token is expired and data must be "
    "synchronized again."
)
_RESYNC_MESSAGE: Final = (
    "Resync required. Replace any local items with the server's version (including deletes) "
    "if you're sure that the service was up to date with your local changes when you last "
    "synced. Upload any local changes that the server doesn't know about."
)
_DEFAULT_MESSAGES: Final[dict[str, str]] = {
    "syncStateNotFound": _SYNC_STATE_MESSAGE,
    "resyncRequired": _RESYNC_MESSAGE,
    "InvalidAuthenticationToken": "Access token has expired or is not yet valid.",
    "Authorization_RequestDenied": "Insufficient privileges to complete the operation.",
    "TooManyRequests": "Too many requests, please retry later.",
    "generalException": "An internal server error occurred while processing the request.",
    "serviceNotAvailable": "The service is temporarily unavailable. Please retry later.",
    "gatewayTimeout": "The gateway did not receive a timely response from the upstream server.",
    "BadGateway": "The gateway received an invalid response from the upstream server.",
    "Request_BadRequest": "Invalid request.",
    "Request_ResourceNotFound": "Resource not found.",
}
_DEFAULT_CODES: Final[dict[int, str]] = {
    400: "resyncRequired",
    401: "InvalidAuthenticationToken",
    403: "Authorization_RequestDenied",
    404: "Request_ResourceNotFound",
    410: "resyncRequired",
    429: "TooManyRequests",
    500: "generalException",
    502: "BadGateway",
    503: "serviceNotAvailable",
    504: "gatewayTimeout",
}
# Headers a test may want to look at; Authorization is kept only as "Bearer ***".
_LOGGED_HEADERS: Final = (
    "prefer",
    "client-request-id",
    "retry-attempt",
    "consistencylevel",
    "x-ms-throttle-priority",
    "content-type",
    "user-agent",
)
# Options that Graph rejects on users/groups delta (graph-delta.md §1.2).
_UNSUPPORTED_DELTA_OPTIONS: Final = ("expand", "orderby", "search", "skip", "count")
_ODATA_OPTIONS: Final = frozenset(
    {
        "select",
        "filter",
        "expand",
        "orderby",
        "top",
        "skip",
        "skiptoken",
        "deltatoken",
        "search",
        "count",
        "format",
    }
)
_MAX_FILTER_IDS: Final = 50
_FILTER_TERM: Final = re.compile(r"\s*id\s+eq\s+'([^']*)'\s*", re.IGNORECASE)


@dataclass(frozen=True)
class _Schema:
    """What Graph knows about one directory resource (users or groups)."""

    resource: str
    odata_type: str
    scalars: tuple[str, ...]
    collections: tuple[str, ...]
    relation: str
    default_select: tuple[str, ...]
    permissions: frozenset[str]

    @property
    def properties(self) -> tuple[str, ...]:
        return self.scalars + self.collections

    def canonical(self, name: str) -> str | None:
        """The property's own spelling for a case-insensitive name, or None if unknown."""
        wanted = name.strip().lower()
        for known in ("id", *self.properties, self.relation):
            if known.lower() == wanted:
                return known
        return None


USERS: Final = _Schema(
    resource="users",
    odata_type=_USER_TYPE,
    scalars=(
        "userPrincipalName",
        "mail",
        "givenName",
        "surname",
        "displayName",
        "mobilePhone",
        "jobTitle",
        "department",
        "companyName",
        "employeeId",
        "employeeType",
        "employeeHireDate",
        "employeeLeaveDateTime",
        "accountEnabled",
        "officeLocation",
        "onPremisesImmutableId",
        "onPremisesSyncEnabled",
        "preferredLanguage",
        "userType",
        "usageLocation",
        "city",
        "country",
        "state",
        "streetAddress",
        "postalCode",
        "mailNickname",
        "faxNumber",
        "ageGroup",
        "createdDateTime",
    ),
    collections=("businessPhones", "proxyAddresses", "otherMails", "imAddresses"),
    relation="manager",
    default_select=(
        "businessPhones",
        "displayName",
        "givenName",
        "jobTitle",
        "mail",
        "mobilePhone",
        "officeLocation",
        "preferredLanguage",
        "surname",
        "userPrincipalName",
    ),
    permissions=frozenset(
        {"User.Read.All", "User.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All"}
    ),
)
GROUPS: Final = _Schema(
    resource="groups",
    odata_type=_GROUP_TYPE,
    scalars=(
        "displayName",
        "description",
        "mail",
        "mailNickname",
        "mailEnabled",
        "securityEnabled",
        "visibility",
        "onPremisesSyncEnabled",
        "createdDateTime",
    ),
    collections=("groupTypes", "proxyAddresses"),
    relation="members",
    default_select=(
        "displayName",
        "description",
        "groupTypes",
        "mail",
        "mailEnabled",
        "mailNickname",
        "securityEnabled",
        "visibility",
        "members",
    ),
    permissions=frozenset(
        {
            "GroupMember.Read.All",
            "Group.Read.All",
            "Group.ReadWrite.All",
            "Directory.Read.All",
            "Directory.ReadWrite.All",
        }
    ),
)
_SCHEMAS: Final = {USERS.resource: USERS, GROUPS.resource: GROUPS}

ChangeOp = Literal["create", "update", "soft_delete", "restore", "hard_delete"]


@dataclass(frozen=True)
class Change:
    """One entry of the tenant's change log; delta tokens are positions in this log."""

    seq: int
    resource: str
    id: str
    op: ChangeOp
    props: frozenset[str] = frozenset()
    old_manager: str | None = None
    members_added: tuple[str, ...] = ()
    members_removed: tuple[str, ...] = ()


@dataclass(frozen=True)
class SimRequest:
    """One request a simulator received (secrets are never kept)."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    status: int


@dataclass
class _Obj:
    id: str
    schema: _Schema
    props: dict[str, Any]
    manager: str | None = None
    members: dict[str, None] = field(default_factory=dict)
    deleted_at: str | None = None


@dataclass(frozen=True)
class _Entry:
    """One object on a delta page, rendered both ways (the Prefer header is per request)."""

    full: dict[str, Any]
    minimal: dict[str, Any]


@dataclass
class _Round:
    schema: _Schema
    pages: list[list[_Entry]]
    context: str
    end_pos: int
    select: tuple[str, ...]
    ids: frozenset[str] | None
    next_tokens: dict[int, str] = field(default_factory=dict)
    delta_token: str | None = None


@dataclass(frozen=True)
class _SkipState:
    round: _Round
    index: int
    issued_at: float


@dataclass(frozen=True)
class _DeltaState:
    schema: _Schema
    pos: int
    select: tuple[str, ...]
    ids: frozenset[str] | None
    issued_at: float


@dataclass
class _Fault:
    status: int
    code: str
    remaining: int
    retry_after: float | None
    headers: dict[str, str]


class _GraphError(Exception):
    """Raised inside request handling; becomes a Graph error response."""

    def __init__(
        self, status: int, code: str, message: str | None = None, headers: Mapping[str, str] = {}
    ) -> None:
        super().__init__(code)
        self.status = status
        self.code = code
        self.message = message or _DEFAULT_MESSAGES.get(code, code)
        self.headers = dict(headers)


def _log_request(request: httpx.Request, status: int) -> SimRequest:
    headers = {k: request.headers[k] for k in _LOGGED_HEADERS if k in request.headers}
    if "authorization" in request.headers:
        scheme = request.headers["authorization"].split(" ", 1)[0]
        headers["authorization"] = f"{scheme} ***"
    query = dict(request.url.params.multi_items())
    return SimRequest(request.method, request.url.path, query, headers, status)


def _prefers_minimal(request: httpx.Request) -> bool:
    for value in request.headers.get_list("prefer", split_commas=True):
        if value.replace(" ", "").lower() == "return=minimal":
            return True
    return False


def _json_response(status: int, body: Any, headers: Mapping[str, str]) -> httpx.Response:
    content = json.dumps(body, ensure_ascii=False).encode("utf-8")
    return httpx.Response(
        status, headers={"Content-Type": _JSON_CONTENT_TYPE, **headers}, content=content
    )


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


class GraphSim:
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

    ``granted`` holds the app's application permissions (``User.Read.All`` and
    ``GroupMember.Read.All`` by default); a resource none of whose read permissions is
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
    ) -> None:
        if page_size < 1:
            raise ValueError("page_size must be at least 1")
        self._lock = threading.RLock()
        self._base_url = base_url.rstrip("/")
        self.page_size = page_size
        self.tokens = tokens
        self.token_ttl_s = token_ttl_s
        self.duplicates = duplicates
        self.empty_pages = empty_pages
        self.granted: set[str] = {"User.Read.All", "GroupMember.Read.All"}
        self.tenant_id = str(uuid.UUID(int=random.Random(f"tenant:{seed}").getrandbits(128)))
        self.requests: list[SimRequest] = []
        self._now = now
        self._id_rng = random.Random(f"ids:{seed}")
        self._page_rng = random.Random(f"pages:{seed}")
        self._objs: dict[str, _Obj] = {}
        self._kinds: dict[str, str] = {}
        self._log: list[Change] = []
        self._skips: dict[str, _SkipState] = {}
        self._deltas: dict[str, _DeltaState] = {}
        self._lists: dict[str, tuple[list[str], tuple[str, ...], float]] = {}
        self._faults: list[_Fault] = []

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

    @property
    def changes(self) -> tuple[Change, ...]:
        """The change log, oldest first."""
        with self._lock:
            return tuple(self._log)

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
        if n < 1:
            raise ValueError("n must be at least 1")
        resolved = code or _DEFAULT_CODES.get(status, "UnknownError")
        if status == 429 and retry_after is None:
            retry_after = 1
        with self._lock:
            self._faults.append(_Fault(status, resolved, n, retry_after, dict(headers or {})))

    def throttle(self, n: int = 1, retry_after: float = 1) -> None:
        """Answer the next ``n`` requests with 429 Too Many Requests and ``Retry-After``."""
        self.fail_next(429, n=n, retry_after=retry_after)

    # ------------------------------------------------------------------ tenant: users

    def add_user(self, **props: Any) -> str:
        """Create a user; returns its id. ``manager=<id>`` sets the manager at creation."""
        with self._lock:
            manager = props.pop("manager", None)
            obj_id = str(props.pop("id", None) or self._new_id())
            if obj_id in self._kinds:
                raise ValueError(f"object id {obj_id} is already used")
            data = self._check_props(USERS, props)
            if not data.get("userPrincipalName"):
                raise ValueError("userPrincipalName is required")
            data.setdefault("accountEnabled", True)
            data.setdefault("userType", "Member")
            if data.get("displayName") is None:
                names = [data.get("givenName"), data.get("surname")]
                shown = " ".join(str(n) for n in names if n)
                data["displayName"] = shown or str(data["userPrincipalName"]).split("@")[0]
            if data.get("proxyAddresses") is None and data.get("mail"):
                data["proxyAddresses"] = [f"SMTP:{data['mail']}"]
            if data.get("createdDateTime") is None:
                data["createdDateTime"] = self._iso_now()
            obj = _Obj(obj_id, USERS, self._complete(USERS, data))
            if manager is not None:
                self._require(manager, USERS)
                obj.manager = manager
            self._objs[obj_id] = obj
            self._kinds[obj_id] = USERS.resource
            self._append(USERS, obj_id, "create", frozenset(obj.props) | {"manager"})
            return obj_id

    def update_user(self, user_id: str, **props: Any) -> None:
        """Change properties (``None`` clears); logs only the properties that really changed.

        Changing ``mail`` also rewrites ``proxyAddresses`` (new primary ``SMTP:``, the old
        one kept as an ``smtp:`` alias), as Exchange does, unless proxyAddresses is given.
        """
        with self._lock:
            obj = self._require(user_id, USERS)
            if "manager" in props:
                self._set_manager(obj, props.pop("manager"))
            data = self._check_props(USERS, props)
            if "mail" in data and "proxyAddresses" not in data and data["mail"]:
                data["proxyAddresses"] = self._proxy_after_mail_change(obj, str(data["mail"]))
            self._apply(obj, data)

    def set_manager(self, user_id: str, manager_id: str | None) -> None:
        """Set or (with None) remove a user's manager."""
        with self._lock:
            self._set_manager(self._require(user_id, USERS), manager_id)

    def disable_user(self, user_id: str) -> None:
        """``accountEnabled = false``: an ordinary property change, not a removal."""
        self.update_user(user_id, accountEnabled=False)

    def enable_user(self, user_id: str) -> None:
        """``accountEnabled = true``."""
        self.update_user(user_id, accountEnabled=True)

    def user(self, user_id: str) -> dict[str, Any]:
        """A copy of one user (soft-deleted too, with ``deletedDateTime``); KeyError if gone."""
        with self._lock:
            obj = self._objs.get(user_id)
            if obj is None or obj.schema is not USERS:
                raise KeyError(user_id)
            return self._export(obj)

    def users(self) -> list[dict[str, Any]]:
        """Copies of every user that is not deleted, in creation order."""
        with self._lock:
            return [self._export(o) for o in self._objs.values() if self._live(o, USERS)]

    def deleted_users(self) -> list[dict[str, Any]]:
        """Copies of the soft-deleted users (the recycle bin)."""
        with self._lock:
            return [
                self._export(o)
                for o in self._objs.values()
                if o.schema is USERS and o.deleted_at is not None
            ]

    # ------------------------------------------------------------------ tenant: groups

    def add_group(self, *, members: Iterable[str] = (), **props: Any) -> str:
        """Create a group (``displayName`` required) with optional initial members."""
        with self._lock:
            obj_id = str(props.pop("id", None) or self._new_id())
            if obj_id in self._kinds:
                raise ValueError(f"object id {obj_id} is already used")
            data = self._check_props(GROUPS, props)
            if not data.get("displayName"):
                raise ValueError("displayName is required")
            data.setdefault("securityEnabled", True)
            data.setdefault("mailEnabled", False)
            if data.get("createdDateTime") is None:
                data["createdDateTime"] = self._iso_now()
            obj = _Obj(obj_id, GROUPS, self._complete(GROUPS, data))
            for member in members:
                if member not in self._objs:
                    raise KeyError(member)
                obj.members[member] = None
            self._objs[obj_id] = obj
            self._kinds[obj_id] = GROUPS.resource
            self._append(GROUPS, obj_id, "create", frozenset(obj.props) | {"members"})
            return obj_id

    def update_group(self, group_id: str, **props: Any) -> None:
        """Change group properties (``None`` clears)."""
        with self._lock:
            obj = self._require(group_id, GROUPS)
            self._apply(obj, self._check_props(GROUPS, props))

    def add_member(self, group_id: str, member_id: str) -> None:
        """Add a direct member (user or group)."""
        with self._lock:
            group = self._require(group_id, GROUPS)
            if member_id not in self._objs:
                raise KeyError(member_id)
            if member_id not in group.members:
                group.members[member_id] = None
                self._append(GROUPS, group_id, "update", frozenset({"members"}), added=(member_id,))

    def remove_member(self, group_id: str, member_id: str) -> None:
        """Remove a direct member."""
        with self._lock:
            group = self._require(group_id, GROUPS)
            if member_id in group.members:
                del group.members[member_id]
                self._append(
                    GROUPS, group_id, "update", frozenset({"members"}), removed=(member_id,)
                )

    def group(self, group_id: str) -> dict[str, Any]:
        """A copy of one group with its ``members`` ids; KeyError if gone."""
        with self._lock:
            obj = self._objs.get(group_id)
            if obj is None or obj.schema is not GROUPS:
                raise KeyError(group_id)
            return self._export(obj)

    def groups(self) -> list[dict[str, Any]]:
        """Copies of every group that is not deleted."""
        with self._lock:
            return [self._export(o) for o in self._objs.values() if self._live(o, GROUPS)]

    # ------------------------------------------------------------------ deletion

    def soft_delete(self, object_id: str) -> None:
        """Move to deleted items (``@removed`` reason ``changed``); :meth:`restore` undoes it.

        Only users and Microsoft 365 groups (``groupTypes`` contains ``Unified``) can be
        soft-deleted; security groups go straight to :meth:`hard_delete` in Entra.
        """
        with self._lock:
            obj = self._objs.get(object_id)
            if obj is None or obj.deleted_at is not None:
                raise KeyError(object_id)
            if obj.schema is GROUPS and "Unified" not in (obj.props.get("groupTypes") or []):
                raise ValueError("security groups cannot be soft-deleted; use hard_delete")
            obj.deleted_at = self._iso_now()
            self._append(obj.schema, object_id, "soft_delete")

    def restore(self, object_id: str) -> None:
        """Restore a soft-deleted object; delta shows it as newly created, no annotation."""
        with self._lock:
            obj = self._objs.get(object_id)
            if obj is None or obj.deleted_at is None:
                raise KeyError(object_id)
            obj.deleted_at = None
            self._append(obj.schema, object_id, "restore", frozenset(obj.props))

    def hard_delete(self, object_id: str) -> None:
        """Delete permanently (``@removed`` reason ``deleted``), soft-deleted or not.

        The object leaves every group it was in, and its direct reports lose their manager.
        """
        with self._lock:
            obj = self._objs.pop(object_id, None)
            if obj is None:
                raise KeyError(object_id)
            self._append(obj.schema, object_id, "hard_delete")
            for other in self._objs.values():
                if object_id in other.members:
                    del other.members[object_id]
                    self._append(
                        GROUPS, other.id, "update", frozenset({"members"}), removed=(object_id,)
                    )
                if other.manager == object_id:
                    other.manager = None
                    self._append(
                        USERS, other.id, "update", frozenset({"manager"}), old_manager=object_id
                    )

    # ------------------------------------------------------------------ internals: tenant

    def _new_id(self) -> str:
        return str(uuid.UUID(int=self._id_rng.getrandbits(128), version=4))

    def _iso_now(self) -> str:
        return datetime.fromtimestamp(self._now(), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    @staticmethod
    def _live(obj: _Obj, schema: _Schema) -> bool:
        return obj.schema is schema and obj.deleted_at is None

    def _require(self, object_id: str, schema: _Schema) -> _Obj:
        obj = self._objs.get(object_id)
        if obj is None or obj.schema is not schema:
            raise KeyError(object_id)
        if obj.deleted_at is not None:
            raise ValueError(f"{object_id} is deleted; restore it first")
        return obj

    @staticmethod
    def _check_props(schema: _Schema, props: Mapping[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(props) - set(schema.properties))
        if unknown:
            raise ValueError(f"unknown {schema.resource} properties: {', '.join(unknown)}")
        data: dict[str, Any] = {}
        for name, value in props.items():
            if name in schema.collections:
                data[name] = list(value or [])
            else:
                data[name] = value
        return data

    @staticmethod
    def _complete(schema: _Schema, data: dict[str, Any]) -> dict[str, Any]:
        full: dict[str, Any] = dict.fromkeys(schema.scalars)
        full.update({name: [] for name in schema.collections})
        full.update(data)
        return full

    def _apply(self, obj: _Obj, data: Mapping[str, Any]) -> None:
        changed = {name for name, value in data.items() if obj.props.get(name) != value}
        for name in changed:
            obj.props[name] = copy.deepcopy(data[name])
        if changed:
            self._append(obj.schema, obj.id, "update", frozenset(changed))

    def _set_manager(self, obj: _Obj, manager_id: str | None) -> None:
        if manager_id is not None:
            if manager_id == obj.id:
                raise ValueError("a user cannot be their own manager")
            self._require(manager_id, USERS)
        if obj.manager != manager_id:
            old, obj.manager = obj.manager, manager_id
            self._append(USERS, obj.id, "update", frozenset({"manager"}), old_manager=old)

    @staticmethod
    def _proxy_after_mail_change(obj: _Obj, new_mail: str) -> list[str]:
        current = [str(a) for a in obj.props.get("proxyAddresses") or []]
        addresses = [f"SMTP:{new_mail}"]
        for address in current:
            plain = address.split(":", 1)[-1]
            if plain.lower() == new_mail.lower():
                continue
            kind = address.split(":", 1)[0].lower() if ":" in address else "smtp"
            entry = f"{kind}:{plain}"
            if entry.lower() not in (a.lower() for a in addresses):
                addresses.append(entry)
        return addresses

    def _append(
        self,
        schema: _Schema,
        object_id: str,
        op: ChangeOp,
        props: frozenset[str] = frozenset(),
        *,
        old_manager: str | None = None,
        added: tuple[str, ...] = (),
        removed: tuple[str, ...] = (),
    ) -> None:
        self._log.append(
            Change(
                seq=len(self._log) + 1,
                resource=schema.resource,
                id=object_id,
                op=op,
                props=props,
                old_manager=old_manager,
                members_added=added,
                members_removed=removed,
            )
        )

    def _export(self, obj: _Obj) -> dict[str, Any]:
        out: dict[str, Any] = {"id": obj.id, **copy.deepcopy(obj.props)}
        if obj.schema is USERS:
            out["manager"] = obj.manager
        else:
            out["members"] = list(obj.members)
        if obj.deleted_at is not None:
            out["deletedDateTime"] = obj.deleted_at
        return out

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
            except _GraphError as e:
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
                response = _json_response(e.status, body, {**headers, **e.headers})
            self.requests.append(_log_request(request, response.status_code))
            return response

    def _respond(self, request: httpx.Request, headers: dict[str, str]) -> httpx.Response:
        self._raise_fault(request)
        self._check_auth(request)
        path = re.sub(r"/{2,}", "/", request.url.path)
        base_path = urlsplit(self._base_url).path.rstrip("/")
        if not path.startswith(base_path + "/"):
            raise _GraphError(404, "UnknownResource", f"Resource not found for '{path}'.")
        segments = [s for s in path[len(base_path) + 1 :].split("/") if s]
        if request.method not in ("GET", "HEAD"):
            raise _GraphError(405, "Request_BadRequest", "The HTTP method is not allowed.")
        options = self._options(request)
        if len(segments) == 2 and segments[0] in _SCHEMAS:
            schema = _SCHEMAS[segments[0]]
            if re.fullmatch(r"(microsoft\.graph\.)?delta(\(\))?", segments[1]):
                self._check_permission(schema)
                return self._delta(request, schema, options, headers)
            self._check_permission(schema)
            return self._get_one(schema, segments[1], options, headers)
        if len(segments) == 1 and segments[0] in _SCHEMAS:
            schema = _SCHEMAS[segments[0]]
            self._check_permission(schema)
            return self._list(schema, options, headers)
        if segments == ["organization"]:
            body = {
                "@odata.context": f"{self._base_url}/$metadata#organization",
                "value": [{"id": self.tenant_id, "displayName": td.PARENT_COMPANY}],
            }
            return _json_response(200, body, headers)
        shown = "/".join(segments) or "/"
        raise _GraphError(404, "UnknownResource", f"Resource not found for the segment '{shown}'.")

    def _raise_fault(self, request: httpx.Request) -> None:
        if not self._faults:
            return
        fault = self._faults[0]
        fault.remaining -= 1
        if fault.remaining <= 0:
            self._faults.pop(0)
        headers = dict(fault.headers)
        if fault.retry_after is not None:
            seconds = fault.retry_after
            headers["Retry-After"] = str(int(seconds) if float(seconds).is_integer() else seconds)
        if fault.status == 429:
            headers.setdefault("x-ms-throttle-information", "ResourceUnitLimitExceeded")
            headers.setdefault(
                "x-ms-throttle-scope", f"Tenant_Application/ReadWrite/sandbox/{self.tenant_id}"
            )
        if fault.status == 410 and "Location" not in headers:
            url = request.url
            headers["Location"] = f"{url.scheme}://{url.netloc.decode()}{url.path}?$deltatoken="
        raise _GraphError(fault.status, fault.code, None, headers)

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
            raise _GraphError(
                401, "InvalidAuthenticationToken", "Access token is empty.", challenge
            )
        problem = self.tokens.validate(token.strip(), audiences=(_origin(self._base_url),))
        if problem is not None:
            raise _GraphError(401, "InvalidAuthenticationToken", problem, challenge)

    def _check_permission(self, schema: _Schema) -> None:
        if not (self.granted & schema.permissions):
            raise _GraphError(403, "Authorization_RequestDenied")

    @staticmethod
    def _options(request: httpx.Request) -> dict[str, str]:
        options: dict[str, str] = {}
        for key, value in request.url.params.multi_items():
            name = key.strip().lower()
            if name.startswith("$"):
                name = name[1:]
            elif name not in _ODATA_OPTIONS:
                continue  # not an OData option (api-version and the like): ignored
            if name in options:
                raise _GraphError(
                    400,
                    "Request_BadRequest",
                    f"Query option '${name}' was specified more than once, but it must be "
                    "specified at most once.",
                )
            options[name] = value
        return options

    def _parse_select(self, schema: _Schema, raw: str | None) -> tuple[str, ...]:
        if raw is None or not raw.strip():
            return ("id", *schema.default_select)
        selected: list[str] = ["id"]
        for name in raw.split(","):
            if not name.strip():
                continue
            known = schema.canonical(name)
            if known is None:
                raise _GraphError(
                    400,
                    "Request_BadRequest",
                    f"Could not find a property named '{name.strip()}' on type "
                    f"'{schema.odata_type.lstrip('#')}'.",
                )
            if known not in selected:
                selected.append(known)
        return tuple(selected)

    @staticmethod
    def _parse_filter(raw: str | None) -> frozenset[str] | None:
        if raw is None:
            return None
        ids: list[str] = []
        for term in re.split(r"\s+or\s+", raw.strip(), flags=re.IGNORECASE):
            match = _FILTER_TERM.fullmatch(term)
            if match is None:
                raise _GraphError(400, "Request_UnsupportedQuery", "Unsupported Query.")
            ids.append(match.group(1))
        if len(ids) > _MAX_FILTER_IDS:
            raise _GraphError(
                400,
                "Request_UnsupportedQuery",
                f"Unsupported Query. At most {_MAX_FILTER_IDS} ids can be given in $filter.",
            )
        return frozenset(ids)

    def _context(self, schema: _Schema, select: tuple[str, ...]) -> str:
        shown = [p for p in select if p != "id"]
        suffix = f"({','.join(shown)})" if shown else ""
        return f"{self._base_url}/$metadata#{schema.resource}{suffix}"

    def _expired(self, issued_at: float) -> bool:
        return self._now() - issued_at > self.token_ttl_s

    # ------------------------------------------------------------------ delta

    def _delta(
        self,
        request: httpx.Request,
        schema: _Schema,
        options: dict[str, str],
        headers: dict[str, str],
    ) -> httpx.Response:
        for name in _UNSUPPORTED_DELTA_OPTIONS:
            if name in options:
                raise _GraphError(400, "Request_UnsupportedQuery", "Unsupported Query.")
        minimal = _prefers_minimal(request)
        if minimal:
            headers["Preference-Applied"] = "return=minimal"
        if "skiptoken" in options:
            if set(options) - {"skiptoken", "top"}:
                # Graph encodes query options into the token; they are not accepted again.
                raise _GraphError(400, "Request_UnsupportedQuery", "Unsupported Query.")
            skip = self._skips.get(options["skiptoken"])
            if skip is None or skip.round.schema is not schema or self._expired(skip.issued_at):
                self._skips.pop(options["skiptoken"], None)
                raise _GraphError(400, "syncStateNotFound")
            return self._serve(skip.round, skip.index, minimal, headers)
        token = options.get("deltatoken", "")
        if token.lower() == "latest":
            select = self._parse_select(schema, options.get("select"))
            ids = self._parse_filter(options.get("filter"))
            rnd = _Round(schema, [[]], self._context(schema, select), len(self._log), select, ids)
            return self._serve(rnd, 0, minimal, headers)
        if token:
            state = self._deltas.get(token)
            if state is None or state.schema is not schema or self._expired(state.issued_at):
                self._deltas.pop(token, None)
                raise _GraphError(400, "syncStateNotFound")
            # A $select sent along with a deltaLink is ignored: the token fixes what is tracked.
            entries = self._collapse(state)
            rnd = _Round(
                schema,
                self._paginate(entries) if entries else [[]],
                self._context(schema, state.select),
                len(self._log),
                state.select,
                state.ids,
            )
            return self._serve(rnd, 0, minimal, headers)
        select = self._parse_select(schema, options.get("select"))
        ids = self._parse_filter(options.get("filter"))
        entries = []
        for obj in self._objs.values():
            if self._live(obj, schema) and (ids is None or obj.id in ids):
                full = self._render_full(obj, select)
                entries.append(_Entry(full, full))
        rnd = _Round(
            schema,
            self._paginate(entries),
            self._context(schema, select),
            len(self._log),
            select,
            ids,
        )
        return self._serve(rnd, 0, minimal, headers)

    def _paginate(self, entries: list[_Entry]) -> list[list[_Entry]]:
        if not entries:
            return [[]]
        shuffled = list(entries)
        rng = self._page_rng
        rng.shuffle(shuffled)
        size = self.page_size
        pages = [shuffled[i : i + size] for i in range(0, len(shuffled), size)]
        if self.duplicates and len(pages) > 1:
            for _ in range(min(5, max(1, len(shuffled) // 50))):
                source = rng.randrange(len(pages) - 1)
                entry = rng.choice(pages[source])
                target = rng.randrange(source + 1, len(pages))
                pages[target].insert(rng.randrange(len(pages[target]) + 1), entry)
        if self.empty_pages:
            pages.insert(rng.randrange(len(pages)), [])
        return pages

    def _serve(
        self, rnd: _Round, index: int, minimal: bool, headers: dict[str, str]
    ) -> httpx.Response:
        body: dict[str, Any] = {"@odata.context": rnd.context}
        link_base = f"{self._base_url}/{rnd.schema.resource}/delta"
        if index + 1 < len(rnd.pages):
            token = rnd.next_tokens.get(index + 1)
            if token is None or token not in self._skips:
                token = secrets.token_urlsafe(48)
                rnd.next_tokens[index + 1] = token
                self._skips[token] = _SkipState(rnd, index + 1, self._now())
            body["@odata.nextLink"] = f"{link_base}?$skiptoken={token}"
        else:
            token = rnd.delta_token or ""
            if token not in self._deltas:
                token = secrets.token_urlsafe(48)
                rnd.delta_token = token
                self._deltas[token] = _DeltaState(
                    rnd.schema, rnd.end_pos, rnd.select, rnd.ids, self._now()
                )
            body["@odata.deltaLink"] = f"{link_base}?$deltatoken={token}"
        body["value"] = [copy.deepcopy(e.minimal if minimal else e.full) for e in rnd.pages[index]]
        return _json_response(200, body, headers)

    def _relation_entry(self, member_id: str, removed: bool = False) -> dict[str, Any]:
        kind = self._kinds.get(member_id, USERS.resource)
        entry: dict[str, Any] = {"@odata.type": _SCHEMAS[kind].odata_type, "id": member_id}
        if removed:
            entry["@removed"] = {"reason": "deleted"}
        return entry

    def _render_full(self, obj: _Obj, select: tuple[str, ...]) -> dict[str, Any]:
        out: dict[str, Any] = {"id": obj.id}
        for name in select:
            if name in ("id", obj.schema.relation):
                continue
            value = obj.props.get(name)
            if value is not None:
                out[name] = copy.deepcopy(value)
        if obj.schema.relation in select:
            if obj.schema is USERS and obj.manager is not None:
                out["manager@delta"] = [self._relation_entry(obj.manager)]
            elif obj.schema is GROUPS:
                members = [
                    self._relation_entry(m)
                    for m in obj.members
                    if m in self._objs and self._objs[m].deleted_at is None
                ]
                if members:
                    out["members@delta"] = members
        return out

    def _collapse(self, state: _DeltaState) -> list[_Entry]:
        """Every object changed since the token, one entry each (graph-delta.md §1.6-§1.8)."""
        schema = state.schema
        per_object: dict[str, list[Change]] = {}
        for change in self._log[state.pos :]:
            if change.resource != schema.resource:
                continue
            if state.ids is not None and change.id not in state.ids:
                continue
            per_object.setdefault(change.id, []).append(change)
        entries: list[_Entry] = []
        tracked = set(state.select)
        for object_id, changes in per_object.items():
            obj = self._objs.get(object_id)
            if obj is None or obj.deleted_at is not None:
                reason = "deleted" if obj is None else "changed"
                removed = {"id": object_id, "@removed": {"reason": reason}}
                entries.append(_Entry(removed, removed))
                continue
            if any(c.op in ("create", "restore") for c in changes):
                full = self._render_full(obj, state.select)
                entries.append(_Entry(full, full))
                continue
            changed = set().union(*(c.props for c in changes)) & tracked
            changed.discard(schema.relation)
            relation = self._relation_changes(obj, changes, tracked)
            if not changed and not relation:
                continue  # only untracked properties changed: invisible to this token
            minimal: dict[str, Any] = {"id": object_id}
            for name in state.select:
                if name in changed:
                    minimal[name] = copy.deepcopy(obj.props.get(name))
            full = self._render_full(obj, state.select)
            full.pop(f"{schema.relation}@delta", None)
            for name in changed:
                full.setdefault(name, None)  # cleared since the token: an explicit null
            if relation:
                minimal[f"{schema.relation}@delta"] = relation
                full[f"{schema.relation}@delta"] = relation
            entries.append(_Entry(full, minimal))
        return entries

    def _relation_changes(
        self, obj: _Obj, changes: list[Change], tracked: set[str]
    ) -> list[dict[str, Any]]:
        relation = obj.schema.relation
        if relation not in tracked or not any(relation in c.props for c in changes):
            return []
        if obj.schema is USERS:
            if obj.manager is not None:
                return [self._relation_entry(obj.manager)]
            last = [c for c in changes if "manager" in c.props][-1]
            if last.old_manager is None:
                return []
            return [self._relation_entry(last.old_manager, removed=True)]
        net: dict[str, bool] = {}
        for change in changes:
            for member in change.members_added:
                if net.get(member) is False:
                    del net[member]
                else:
                    net[member] = True
            for member in change.members_removed:
                if net.get(member) is True:
                    del net[member]
                else:
                    net[member] = False
        return [self._relation_entry(m, removed=not added) for m, added in net.items()]

    # ------------------------------------------------------------------ plain reads

    def _get_one(
        self, schema: _Schema, object_id: str, options: dict[str, str], headers: dict[str, str]
    ) -> httpx.Response:
        obj = self._objs.get(object_id)
        if obj is None or not self._live(obj, schema):
            raise _GraphError(
                404,
                "Request_ResourceNotFound",
                f"Resource '{object_id}' does not exist or one of its queried reference-property "
                "objects are not present.",
            )
        select = self._parse_select(schema, options.get("select"))
        body = self._render_plain(obj, select)
        body["@odata.context"] = f"{self._context(schema, select)}/$entity"
        return _json_response(200, body, headers)

    def _render_plain(self, obj: _Obj, select: tuple[str, ...]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in select:
            if name == "id":
                out["id"] = obj.id
            elif name != obj.schema.relation:
                out[name] = copy.deepcopy(obj.props.get(name))
        return out

    def _list(
        self, schema: _Schema, options: dict[str, str], headers: dict[str, str]
    ) -> httpx.Response:
        """``GET /users`` and ``/groups`` with ``$select`` and ``$top`` (for ``check``)."""
        if "skiptoken" in options:
            saved = self._lists.pop(options["skiptoken"], None)
            if saved is None or self._expired(saved[2]):
                raise _GraphError(400, "Request_BadRequest", "The skip token is invalid.")
            remaining, select, _ = saved
        else:
            select = self._parse_select(schema, options.get("select"))
            remaining = [o.id for o in self._objs.values() if self._live(o, schema)]
        try:
            top = max(1, min(999, int(options.get("top", "100"))))
        except ValueError:
            raise _GraphError(400, "Request_BadRequest", "Invalid $top value.") from None
        page, rest = remaining[:top], remaining[top:]
        body: dict[str, Any] = {"@odata.context": self._context(schema, select)}
        if rest:
            token = secrets.token_urlsafe(32)
            self._lists[token] = (rest, select, self._now())
            body["@odata.nextLink"] = f"{self._base_url}/{schema.resource}?$skiptoken={token}"
        body["value"] = [self._render_plain(self._objs[i], select) for i in page if i in self._objs]
        return _json_response(200, body, headers)


# ---------------------------------------------------------------------- token endpoint


@dataclass(frozen=True)
class IssuedToken:
    """What the token endpoint remembers about an access token it issued."""

    client_id: str
    scope: str
    expires_at: float


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class _TokenError(Exception):
    def __init__(self, status: int, error: str, aadsts: int, description: str) -> None:
        super().__init__(error)
        self.status = status
        self.error = error
        self.aadsts = aadsts
        self.description = description


class TokenSim:
    """The Entra token endpoint (client credentials) for one app registration.

    Serves ``POST /{tenant}/oauth2/v2.0/token`` (``client_secret`` in the form or HTTP
    Basic, or a ``client_assertion`` signed by a certificate registered with
    :meth:`add_certificate`), plus the two discovery documents MSAL-based (sync) credentials
    read. Errors look like AADSTS errors and never echo what the client sent.
    """

    def __init__(
        self,
        tenant_id: str,
        client_id: str,
        client_secret: str,
        *,
        ttl_s: int = 3600,
        now: Callable[[], float] = time.time,
        authority: str = "https://login.sandbox.invalid",
    ) -> None:
        self.tenant_id = tenant_id
        self.client_id = client_id
        self._secret = client_secret
        self.ttl_s = ttl_s
        self.authority = authority.rstrip("/")
        self.issued: dict[str, IssuedToken] = {}
        self.requests: list[SimRequest] = []
        self._now = now
        self._lock = threading.RLock()
        self._certificates: dict[str, x509.Certificate] = {}
        self._faults: list[list[int]] = []

    def __repr__(self) -> str:
        return f"TokenSim(tenant_id={self.tenant_id!r}, client_id={self.client_id!r})"

    @property
    def request_count(self) -> int:
        """Requests received (token and discovery)."""
        return len(self.requests)

    def add_certificate(self, certificate_pem: bytes) -> None:
        """Accept client assertions signed by this certificate's key (CertificateCredential)."""
        cert = x509.load_pem_x509_certificate(certificate_pem)
        der = cert.public_bytes(Encoding.DER)
        with self._lock:
            self._certificates[_b64url(hashlib.sha1(der).digest())] = cert
            self._certificates[_b64url(hashlib.sha256(der).digest())] = cert

    def revoke_all(self) -> None:
        """Invalidate every access token issued so far (Graph then answers 401)."""
        with self._lock:
            self.issued.clear()

    def fail_next(self, status: int = 503, *, n: int = 1) -> None:
        """Answer the next ``n`` token requests with this status (an Entra outage)."""
        with self._lock:
            self._faults.append([status, n])

    def validate(self, token: str, *, audiences: Iterable[str] = ()) -> str | None:
        """Why this bearer token is not acceptable, or None when it is."""
        with self._lock:
            issued = self.issued.get(token)
        if issued is None:
            return "Invalid access token: unknown or revoked token."
        if issued.expires_at <= self._now():
            return "Lifetime validation failed, the token is expired."
        resource = issued.scope.removesuffix("/.default").rstrip("/").lower()
        accepted = {a.rstrip("/").lower() for a in audiences}
        accepted |= {"https://graph.microsoft.com", "00000003-0000-0000-c000-000000000000"}
        if resource not in accepted:
            return "Access token validation failure. Invalid audience."
        return None

    def handle(self, request: httpx.Request) -> httpx.Response:
        """Answer one request to the token endpoint or a discovery document (thread-safe)."""
        with self._lock:
            correlation = request.headers.get("client-request-id") or str(uuid.uuid4())
            trace = str(uuid.uuid4())
            headers = {
                "Cache-Control": "no-store, no-cache",
                "Pragma": "no-cache",
                "x-ms-request-id": trace,
                "client-request-id": correlation,
            }
            try:
                response = self._respond(request, headers)
            except _TokenError as e:
                stamp = datetime.fromtimestamp(self._now(), UTC).strftime("%Y-%m-%d %H:%M:%SZ")
                description = (
                    f"AADSTS{e.aadsts}: {e.description} Trace ID: {trace} "
                    f"Correlation ID: {correlation} Timestamp: {stamp}"
                )
                body = {
                    "error": e.error,
                    "error_description": description,
                    "error_codes": [e.aadsts],
                    "timestamp": stamp,
                    "trace_id": trace,
                    "correlation_id": correlation,
                    "error_uri": f"{_origin(str(request.url))}/error?code={e.aadsts}",
                }
                response = _json_response(e.status, body, headers)
            self.requests.append(_log_request(request, response.status_code))
            return response

    def _respond(self, request: httpx.Request, headers: dict[str, str]) -> httpx.Response:
        if self._faults:
            fault = self._faults[0]
            fault[1] -= 1
            if fault[1] <= 0:
                self._faults.pop(0)
            raise _TokenError(
                fault[0],
                "temporarily_unavailable",
                50196,
                "The server is temporarily unavailable. Please retry later.",
            )
        origin = _origin(str(request.url))
        segments = [s for s in request.url.path.split("/") if s]
        if request.method == "GET" and segments[:3] == ["common", "discovery", "instance"]:
            return self._instance_discovery(request, origin, headers)
        if not segments:
            raise _TokenError(404, "invalid_request", 90019, "No tenant-identifying information.")
        if segments[0] != self.tenant_id:
            raise _TokenError(
                400,
                "invalid_request",
                90002,
                f"Tenant '{segments[0]}' not found. Check to make sure you have the correct "
                "tenant ID and are signing into the correct cloud.",
            )
        rest = segments[1:]
        if request.method == "GET" and rest == ["v2.0", ".well-known", "openid-configuration"]:
            return _json_response(200, self._openid_configuration(origin), headers)
        if request.method == "POST" and rest == ["oauth2", "v2.0", "token"]:
            return self._token(request, origin, headers)
        raise _TokenError(404, "invalid_request", 900561, "The endpoint does not exist.")

    def _token(
        self, request: httpx.Request, origin: str, headers: dict[str, str]
    ) -> httpx.Response:
        raw = request.read().decode("utf-8", "replace")
        form = dict(parse_qsl(raw, keep_blank_values=True))
        if form.get("grant_type") != "client_credentials":
            raise _TokenError(
                400,
                "unsupported_grant_type",
                70003,
                "The app requested an unsupported grant type.",
            )
        client_id = form.get("client_id", "")
        basic_secret: str | None = None
        auth = request.headers.get("authorization", "")
        if auth.lower().startswith("basic "):
            try:
                decoded = base64.b64decode(auth[6:]).decode("utf-8")
            except ValueError:
                decoded = ""
            basic_client, _, basic_secret = decoded.partition(":")
            client_id = client_id or basic_client
        if not hmac.compare_digest(client_id.encode(), self.client_id.encode()):
            raise _TokenError(
                400,
                "unauthorized_client",
                700016,
                f"Application with the given identifier was not found in the directory "
                f"'{self.tenant_id}'. This can happen if the application has not been installed "
                "by the administrator of the tenant.",
            )
        secret = form.get("client_secret", basic_secret)
        assertion = form.get("client_assertion")
        if secret is not None:
            if not hmac.compare_digest(secret.encode(), self._secret.encode()):
                raise _TokenError(
                    401,
                    "invalid_client",
                    7000215,
                    "Invalid client secret provided. Ensure the secret being sent in the "
                    "request is the client secret value, not the client secret ID, for a "
                    "secret added to the app.",
                )
        elif assertion is not None:
            self._check_assertion(assertion, f"{origin}/{self.tenant_id}/oauth2/v2.0/token")
        else:
            raise _TokenError(
                401,
                "invalid_client",
                7000216,
                "'client_assertion', 'client_secret' or 'request' is required for the "
                "'client_credentials' grant type.",
            )
        scope = form.get("scope", "").strip()
        if not scope:
            raise _TokenError(
                400,
                "invalid_request",
                900144,
                "The request body must contain the following parameter: 'scope'.",
            )
        if len(scope.split()) != 1 or not scope.endswith("/.default"):
            raise _TokenError(
                400,
                "invalid_scope",
                1002012,
                "The provided value for scope is not valid. Client credential flows must "
                "have a scope value with /.default suffixed to the resource identifier.",
            )
        now = self._now()
        claims = {
            "aud": scope.removesuffix("/.default"),
            "iss": f"{origin}/{self.tenant_id}/v2.0",
            "iat": int(now),
            "nbf": int(now),
            "exp": int(now + self.ttl_s),
            "appid": self.client_id,
            "tid": self.tenant_id,
            "jti": secrets.token_urlsafe(16),
        }
        token = ".".join(
            (
                _b64url(json.dumps({"typ": "JWT", "alg": "RS256"}).encode()),
                _b64url(json.dumps(claims).encode()),
                _b64url(secrets.token_bytes(64)),
            )
        )
        self.issued[token] = IssuedToken(self.client_id, scope, now + self.ttl_s)
        body = {
            "token_type": "Bearer",
            "expires_in": self.ttl_s,
            "ext_expires_in": self.ttl_s,
            "access_token": token,
        }
        return _json_response(200, body, headers)

    def _check_assertion(self, assertion: str, endpoint: str) -> None:
        def reject(why: str) -> _TokenError:
            return _TokenError(401, "invalid_client", 700027, f"Client assertion failed: {why}.")

        parts = assertion.split(".")
        if len(parts) != 3:
            raise reject("not a signed JWT")
        try:
            header = json.loads(_b64url_decode(parts[0]))
            payload = json.loads(_b64url_decode(parts[1]))
            signature = _b64url_decode(parts[2])
        except ValueError:
            raise reject("the JWT cannot be decoded") from None
        if payload.get("iss") != self.client_id or payload.get("sub") != self.client_id:
            raise reject("iss and sub must be the client id")
        audience = payload.get("aud")
        audiences = audience if isinstance(audience, list) else [audience]
        if not any(str(a).rstrip("/").lower() == endpoint.lower() for a in audiences):
            raise reject("aud must be the token endpoint")
        if float(payload.get("exp", 0)) <= self._now():
            raise reject("the assertion is expired")
        thumbprint = str(header.get("x5t#S256") or header.get("x5t") or "").rstrip("=")
        cert = self._certificates.get(thumbprint)
        if cert is None:
            raise reject("no certificate with this thumbprint is registered for the app")
        key = cert.public_key()
        if not isinstance(key, rsa.RSAPublicKey):
            raise reject("the certificate key is not RSA")
        signed = f"{parts[0]}.{parts[1]}".encode("ascii")
        alg = header.get("alg")
        try:
            if alg == "RS256":
                key.verify(signature, signed, padding.PKCS1v15(), hashes.SHA256())
            elif alg == "PS256":
                pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
                key.verify(signature, signed, pss, hashes.SHA256())
            else:
                raise reject(f"unsupported alg {alg!r}")
        except InvalidSignature:
            raise reject("the signature is invalid") from None

    def _openid_configuration(self, origin: str) -> dict[str, Any]:
        base = f"{origin}/{self.tenant_id}"
        return {
            "token_endpoint": f"{base}/oauth2/v2.0/token",
            "token_endpoint_auth_methods_supported": [
                "client_secret_post",
                "private_key_jwt",
                "client_secret_basic",
            ],
            "jwks_uri": f"{base}/discovery/v2.0/keys",
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "issuer": f"{base}/v2.0",
            "request_uri_parameter_supported": False,
            "userinfo_endpoint": f"{origin}/oidc/userinfo",
            "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
            "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
            "http_logout_supported": True,
            "frontchannel_logout_supported": True,
            "end_session_endpoint": f"{base}/oauth2/v2.0/logout",
            "claims_supported": ["sub", "iss", "aud", "exp", "iat", "nonce", "tid", "ver"],
            "tenant_region_scope": "EU",
            "cloud_instance_name": "sandbox.invalid",
            "cloud_graph_host_name": "graph.sandbox.invalid",
            "msgraph_host": "graph.sandbox.invalid",
        }

    def _instance_discovery(
        self, request: httpx.Request, origin: str, headers: dict[str, str]
    ) -> httpx.Response:
        endpoint = request.url.params.get("authorization_endpoint", "")
        tenant = ([s for s in urlsplit(endpoint).path.split("/") if s] or ["common"])[0]
        host = urlsplit(origin).netloc
        body = {
            "tenant_discovery_endpoint": f"{origin}/{tenant}/v2.0/.well-known/openid-configuration",
            "api-version": "1.1",
            "metadata": [
                {"preferred_network": host, "preferred_cache": host, "aliases": [host]},
            ],
        }
        return _json_response(200, body, headers)


# ---------------------------------------------------------------------- demo tenant


@dataclass
class _Person:
    lang: str
    sex: str
    given: str
    surname: str
    company: str | None
    department: str | None
    title: str
    level: int  # 0 CEO of the group, 1 CEO of a company, 2 head, 3 team lead, 4 staff
    manager: int | None = None
    external: bool = False
    employee_type: str | None = "Employee"


def make_tenant(
    sim: GraphSim, n_users: int = 200, *, seed: int = 7, domain: str = "firma.ch"
) -> list[str]:
    """Fill ``sim`` with a realistic Swiss tenant; returns the new user ids, managers first.

    Three companies of one group (``Firma AG``, ``Firma GmbH``, ``Tochtergesellschaft``),
    departments with heads and team leads forming a manager hierarchy, German, French and
    Italian names, Swiss mobile (+41 7x) and office numbers, hire dates entered at local
    midnight (so ``…T22:00:00Z`` or ``…T23:00:00Z``), about 3 % disabled accounts, a few
    guests from ``external.<domain>``, and department groups. Deterministic for a seed (and
    the sim's own seed, which makes the object ids).
    """
    rng = random.Random(f"tenant:{seed}")
    n_external = 0 if n_users < 10 else max(2, round(n_users * 0.02))
    n_internal = n_users - n_external
    people = _plan_people(rng, n_internal)
    for _ in range(n_external):
        lang = rng.choices(td.LANGUAGES, td.LANGUAGE_WEIGHTS)[0]
        sex = rng.choice(("f", "m"))
        people.append(
            _Person(
                lang=lang,
                sex=sex,
                given=rng.choice(td.FIRST_NAMES[lang][sex]),
                surname=rng.choice(td.SURNAMES[lang]),
                company=None,
                department=None,
                title=td.EXTERNAL_TITLES[sex == "f"],
                level=5,
                external=True,
                employee_type=None,
            )
        )

    onmicrosoft = td.onmicrosoft_domain(domain)
    external_domain = f"{td.EXTERNAL_SUBDOMAIN}.{domain}"
    used_locals: set[str] = set()
    used_employee_ids: set[str] = set()
    zurich = ZoneInfo("Europe/Zurich")
    order = sorted(range(len(people)), key=lambda i: people[i].level)
    staff = [i for i, p in enumerate(people) if p.level == 4]
    disabled = set(rng.sample(staff, min(len(staff), round(n_users * 0.03))))
    ids: dict[int, str] = {}
    for index in order:
        person = people[index]
        base_local = f"{td.ascii_local_part(person.given)}.{td.ascii_local_part(person.surname)}"
        local, counter = base_local, 1
        while local in used_locals:
            counter += 1
            local = f"{base_local}{counter}"
        used_locals.add(local)
        mail_domain = external_domain if person.external else domain
        upn = f"{local}@{mail_domain}"
        has_mailbox = person.external or person.level < 4 or rng.random() > 0.02
        mail = upn if has_mailbox else None
        proxies: list[str] = []
        if mail:
            initials = (
                f"{td.ascii_local_part(person.given)[:1]}.{td.ascii_local_part(person.surname)}"
            )
            proxies = [f"SMTP:{mail}"]
            if not person.external:
                if f"{initials}@{domain}" != mail:
                    proxies.append(f"smtp:{initials}@{domain}")
                proxies.append(f"smtp:{local}@{onmicrosoft}")
        city = _city_for(rng, person)
        area = td.CITIES[city][1]
        props: dict[str, Any] = {
            "userPrincipalName": upn,
            "mail": mail,
            "givenName": person.given,
            "surname": person.surname,
            "displayName": f"{person.given} {person.surname}",
            "jobTitle": person.title,
            "department": person.department,
            "companyName": person.company,
            "officeLocation": None if person.external else city,
            "preferredLanguage": td.PREFERRED_LANGUAGE[person.lang],
            "usageLocation": "CH",
            "country": "Schweiz",
            "city": city,
            "userType": "Guest" if person.external else "Member",
            "employeeType": person.employee_type,
            "proxyAddresses": proxies,
            "mailNickname": local,
            "accountEnabled": True,
        }
        if rng.random() < 0.85:
            props["mobilePhone"] = td.swiss_number(
                rng.choice(td.MOBILE_PREFIXES), f"{rng.randrange(10**7):07d}"
            )
        if not person.external:
            if rng.random() < 0.8:
                props["businessPhones"] = [td.swiss_number(area, f"{rng.randrange(10**7):07d}")]
            employee_id = f"{rng.randrange(10000, 100000)}"
            while employee_id in used_employee_ids:
                employee_id = f"{rng.randrange(10000, 100000)}"
            used_employee_ids.add(employee_id)
            props["employeeId"] = employee_id
            props["employeeHireDate"] = _hire_date(rng, person.level, zurich)
            created = datetime.fromisoformat(props["employeeHireDate"]) - timedelta(days=14)
            props["createdDateTime"] = created.strftime("%Y-%m-%dT%H:%M:%SZ")
            if rng.random() < 0.6:
                props["onPremisesImmutableId"] = _b64std(rng.randbytes(16))
                props["onPremisesSyncEnabled"] = True
        if index in disabled:
            props["accountEnabled"] = False
        if person.external:
            props["createdDateTime"] = f"2025-{rng.randrange(1, 13):02d}-15T08:30:00Z"
        manager = ids[person.manager] if person.manager is not None else None
        ids[index] = sim.add_user(manager=manager, **props)

    created_ids = [ids[i] for i in order]
    by_department: dict[str, list[str]] = {}
    everyone: list[str] = []
    for index in order:
        person = people[index]
        if person.external:
            continue
        everyone.append(ids[index])
        if person.department:
            by_department.setdefault(person.department, []).append(ids[index])
    if everyone:
        sim.add_group(
            displayName="Alle Mitarbeitenden",
            description="Alle internen Mitarbeitenden der Firma-Gruppe",
            mail=f"alle@{domain}",
            mailNickname="alle",
            mailEnabled=True,
            securityEnabled=False,
            groupTypes=["Unified"],
            visibility="Private",
            members=everyone,
        )
    for department in sorted(by_department):
        nickname = f"abt-{td.ascii_local_part(department)}"
        sim.add_group(
            displayName=f"Abteilung {department}",
            description=f"Sicherheitsgruppe der Abteilung {department}",
            mailNickname=nickname,
            securityEnabled=True,
            mailEnabled=False,
            members=by_department[department],
        )
    return created_ids


def _plan_people(rng: random.Random, n: int) -> list[_Person]:
    def person(company: str | None, department: str | None, level: int) -> _Person:
        lang = rng.choices(td.LANGUAGES, td.LANGUAGE_WEIGHTS)[0]
        if company == "Tochtergesellschaft" and rng.random() < 0.6:
            lang = "fr"
        sex = rng.choice(("f", "m"))
        return _Person(
            lang=lang,
            sex=sex,
            given=rng.choice(td.FIRST_NAMES[lang][sex]),
            surname=rng.choice(td.SURNAMES[lang]),
            company=company,
            department=department,
            title="",
            level=level,
        )

    companies = list(td.COMPANIES)
    weights = [td.COMPANIES[c][0] for c in companies]
    departments = list(td.DEPARTMENTS)
    department_weights = [td.DEPARTMENTS[d][0] for d in departments]
    people: list[_Person] = []
    ceo_of: dict[str, int] = {}
    for company in companies:
        if len(people) >= n:
            break
        level = 0 if company == td.PARENT_COMPANY else 1
        ceo = person(company, td.MANAGEMENT_DEPARTMENT, level)
        ceo.title = td.CEO_TITLES[ceo.sex == "f"]
        ceo.manager = 0 if level == 1 else None
        ceo_of[company] = len(people)
        people.append(ceo)
    groups: dict[tuple[str, str], list[int]] = {}
    while len(people) < n:
        company = rng.choices(companies, weights)[0]
        department = rng.choices(departments, department_weights)[0]
        groups.setdefault((company, department), []).append(len(people))
        people.append(person(company, department, 4))
    for (company, department), members in groups.items():
        _, head_titles, staff_titles = td.DEPARTMENTS[department]
        head = people[members[0]]
        head.level, head.title = 2, head_titles[head.sex == "f"]
        head.manager = ceo_of.get(company)
        leads = members[1:3] if len(members) > 8 else []
        for lead_index in leads:
            lead = people[lead_index]
            lead.level, lead.title = 3, td.TEAM_LEAD_TITLES[lead.sex == "f"]
            lead.manager = members[0]
        for staff_index in members[1:]:
            if staff_index in leads:
                continue
            staff = people[staff_index]
            staff.manager = rng.choice(leads) if leads else members[0]
            if rng.random() < 0.04:
                staff.title = td.APPRENTICE_TITLES[staff.sex == "f"]
                staff.employee_type = "Apprentice"
            else:
                staff.title = rng.choice(staff_titles)[staff.sex == "f"]
    return people


def _city_for(rng: random.Random, person: _Person) -> str:
    if person.company and person.level <= 1:
        return td.COMPANIES[person.company][1]
    in_region = [c for c, (lang, _) in td.CITIES.items() if lang == person.lang]
    return rng.choice(in_region)


def _hire_date(rng: random.Random, level: int, tz: ZoneInfo) -> str:
    start = date(1992, 1, 1) if level <= 2 else date(2004, 1, 1)
    day = start + timedelta(days=rng.randrange((date(2025, 12, 31) - start).days))
    if rng.random() < 0.7:
        day = day.replace(day=1)  # most contracts start on the first of a month
    if rng.random() < 0.1:
        return f"{day.isoformat()}T00:00:00Z"  # entered through the API as UTC midnight
    local_midnight = datetime(day.year, day.month, day.day, tzinfo=tz)
    return local_midnight.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _b64std(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
