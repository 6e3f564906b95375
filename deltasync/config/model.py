"""The typed configuration: frozen dataclasses, one per YAML section, and :class:`Secret`.

Everything else in deltasync receives a :class:`Config` and never looks at YAML itself.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit, urlunsplit
from zoneinfo import ZoneInfo

from deltasync.config.redact import REDACTED, redact_url
from deltasync.filter import Filter
from deltasync.mapping import DEFAULT_PERSON_MAPPING, DEFAULT_USER_MAPPING, Expr, merge_mapping

DEFAULT_AUTHORITY_HOST: Final = "https://login.microsoftonline.com"
DEFAULT_GRAPH_URL: Final = "https://graph.microsoft.com/v1.0"
DEFAULT_STATE_URL: Final = "sqlite:///state/deltasync.db"
DEFAULT_TIMEZONE: Final = "Europe/Zurich"

#: ELIZA resource name → API path below ``<base_url>/api/`` (``eliza.paths`` overrides them).
DEFAULT_ELIZA_PATHS: Final[Mapping[str, str]] = {
    "user": "user",
    "mitarbeitende": "organisation/mitarbeitende",
    "orgunit": "organisation/orgunit",
    "membership": "organisation/membership",
    "customgroup": "customgroup",
}


class Secret:
    """A secret string that prints as ``***``; :meth:`reveal` gives the value to the one
    place that sends it (a credential or an Authorization header)."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The secret value itself. Never log or print it."""
        return self._value

    def __repr__(self) -> str:
        return REDACTED

    def __str__(self) -> str:
        return REDACTED

    def __format__(self, format_spec: str) -> str:
        return format(REDACTED, format_spec)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return hash((Secret, self._value))

    def __bool__(self) -> bool:
        return bool(self._value)

    def __copy__(self) -> Secret:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> Secret:
        return self


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), "", "", ""))


@dataclass(frozen=True)
class EntraConfig:
    """``entra``: the app registration that reads users (and groups) through Microsoft Graph."""

    tenant_id: str
    client_id: str
    client_secret: Secret | None = None
    certificate_path: Path | None = None
    certificate_password: Secret | None = None
    managed_identity: bool = False
    managed_identity_client_id: str | None = None  # a user-assigned identity; None: system
    authority_host: str = DEFAULT_AUTHORITY_HOST
    graph_url: str = DEFAULT_GRAPH_URL
    ca_bundle: Path | None = None

    @property
    def token_scope(self) -> str:
        """The OAuth scope for Graph: the origin of ``graph_url`` plus ``/.default``."""
        return _origin(self.graph_url) + "/.default"

    @property
    def credential_kind(self) -> str:
        """``"client_secret"``, ``"certificate"`` or ``"managed_identity"``."""
        if self.certificate_path is not None:
            return "certificate"
        if self.managed_identity:
            return "managed_identity"
        return "client_secret"


@dataclass(frozen=True)
class ElizaConfig:
    """``eliza``: the ELIZA instance and its API token."""

    base_url: str  # the instance root without a trailing slash; the API is at <base_url>/api
    api_token: Secret
    trailing_slash: bool = False
    timeout_s: float = 30.0
    max_concurrency: int = 8
    ca_bundle: Path | None = None
    paths: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_ELIZA_PATHS))

    def path_for(self, resource: str) -> str:
        """The API path of a resource, by name (``"mitarbeitende"``) or by its default path
        (``"organisation/mitarbeitende"``, the value of the client's ``Resource`` enum)."""
        key = str(resource)
        if key in self.paths:
            return self.paths[key]
        for name, default in DEFAULT_ELIZA_PATHS.items():
            if default == key:
                return self.paths.get(name, default)
        return key


@dataclass(frozen=True)
class SyncOptions:
    """``sync_options``: what the sync may create and update (as in ELIZA's tool)."""

    create_users: bool = True
    update_users: bool = True
    create_persons: bool = True  # sync_options.create_mitarbeitende
    update_persons: bool = True  # sync_options.update_mitarbeitende
    sync_groups: bool = False


def _default_user_mapping() -> dict[str, Expr]:
    return merge_mapping(DEFAULT_USER_MAPPING, {})


def _default_person_mapping() -> dict[str, Expr]:
    return merge_mapping(DEFAULT_PERSON_MAPPING, {})


@dataclass(frozen=True)
class FieldMapping:
    """``field_mapping``: ELIZA field → compiled expression, the defaults merged with the
    configured entries (``person`` is the YAML section ``mitarbeitende``)."""

    user: dict[str, Expr] = field(default_factory=_default_user_mapping)
    person: dict[str, Expr] = field(default_factory=_default_person_mapping)


@dataclass(frozen=True)
class AdvancedConfig:
    """``advanced``: which Entra users are in scope."""

    user_filter: Filter | None = None
    excluded_domains: tuple[str, ...] = ()
    excluded_users: tuple[str, ...] = ()


@dataclass(frozen=True, repr=False)
class StateConfig:
    """``state``: the SQLAlchemy URL of the state database (a relative SQLite file already
    resolved against the config folder; the store creates the folder on first use)."""

    url: str = DEFAULT_STATE_URL

    @property
    def redacted_url(self) -> str:
        """The URL for printing: a password in it is shown as ``***``."""
        return redact_url(self.url)

    def __repr__(self) -> str:
        return f"StateConfig(url={self.redacted_url!r})"


@dataclass(frozen=True)
class MatchingConfig:
    """``matching``: how an unlinked Entra user finds an existing ELIZA account."""

    hard_match: bool = True
    soft_match: bool = True
    protected_groups: tuple[int, ...] = ()


@dataclass(frozen=True)
class DeprovisioningConfig:
    """``deprovisioning``: what happens when a user is disabled or deleted in Entra."""

    on_disable: str = "deactivate"  # deactivate | ignore
    on_delete: str = "deactivate"  # deactivate | delete | ignore
    max_deactivations: int = 25  # per run, 0 = no limit
    max_deactivation_percent: float = 10.0


@dataclass(frozen=True)
class GroupsConfig:
    """``groups``: which Entra groups are synced, and the group every synced user joins."""

    include: tuple[str, ...] = ()
    nested: str = "direct"  # direct | flatten
    delete_removed: bool = False  # a group removed in Entra is emptied; deleted only if true
    assign_to_group: int | None = None


@dataclass(frozen=True)
class Config:
    """The whole, checked configuration. ``warnings`` lists what is allowed but unwise."""

    path: Path
    entra: EntraConfig
    eliza: ElizaConfig
    sync_options: SyncOptions = field(default_factory=SyncOptions)
    orgunit_mapping: dict[str, int] = field(default_factory=dict)
    field_mapping: FieldMapping = field(default_factory=FieldMapping)
    advanced: AdvancedConfig = field(default_factory=AdvancedConfig)
    timezone: ZoneInfo = field(default_factory=lambda: ZoneInfo(DEFAULT_TIMEZONE))
    state: StateConfig = field(default_factory=StateConfig)
    matching: MatchingConfig = field(default_factory=MatchingConfig)
    deprovisioning: DeprovisioningConfig = field(default_factory=DeprovisioningConfig)
    groups: GroupsConfig = field(default_factory=GroupsConfig)
    warnings: tuple[str, ...] = ()
