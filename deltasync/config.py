"""Load and check deltasync's YAML configuration file.

An administrator's mistake must surface before any network call, all at once, each line naming
the file and the key; a secret must never reach output. Everything else in deltasync receives
the frozen, typed :class:`Config` built here and never looks at YAML itself.

The file format is a superset of ELIZA's own Entra sync tool (its example loads unchanged); the
keys, defaults and meaning are described in ``interface.md`` and in
``config/entra_sync.yaml.example``.

Rules applied by :func:`load_config`:

- ``${VAR}`` and ``${VAR:-default}`` are replaced in every string value (``$${`` is a literal
  ``${``). An unset variable without a default is an error naming the key and the variable.
  A value that came from the environment is never quoted back in a message.
- A missing key, or a key set to ``null``, takes its default (in ``field_mapping``, ``null``
  removes a default field).
- Relative paths (``certificate_path``, ``ca_bundle``, a relative SQLite file in ``state.url``)
  are relative to the config file's folder. Nothing is created or opened at load time.
"""

from __future__ import annotations

import difflib
import hmac
import ipaddress
import math
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit, urlunsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

import yaml

from deltasync.errors import ConfigError
from deltasync.filter import Filter, FilterError, parse_filter
from deltasync.mapping import (
    DEFAULT_PERSON_MAPPING,
    DEFAULT_USER_MAPPING,
    Expr,
    ExpressionError,
    compile_expr,
    merge_mapping,
)

__all__ = [
    "DEFAULT_CONFIG_PATH",
    "DEFAULT_ELIZA_PATHS",
    "AdvancedConfig",
    "Config",
    "DeprovisioningConfig",
    "ElizaConfig",
    "EntraConfig",
    "FieldMapping",
    "GroupsConfig",
    "MatchingConfig",
    "Secret",
    "StateConfig",
    "SyncOptions",
    "config_to_redacted_dict",
    "load_config",
    "redact_url",
    "resolve_config_path",
]

DEFAULT_CONFIG_PATH: Final = Path("config/entra_sync.yaml")
CONFIG_ENV_VAR: Final = "DELTASYNC_CONFIG"
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

REDACTED: Final = "***"


# --------------------------------------------------------------------------------------------
# The typed configuration


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
    create_mitarbeitende: bool = True
    update_mitarbeitende: bool = True
    sync_groups: bool = False


def _default_user_mapping() -> dict[str, Expr]:
    return merge_mapping(DEFAULT_USER_MAPPING, {})


def _default_person_mapping() -> dict[str, Expr]:
    return merge_mapping(DEFAULT_PERSON_MAPPING, {})


@dataclass(frozen=True)
class FieldMapping:
    """``field_mapping``: ELIZA field → compiled expression, the defaults merged with the
    configured entries."""

    user: dict[str, Expr] = field(default_factory=_default_user_mapping)
    mitarbeitende: dict[str, Expr] = field(default_factory=_default_person_mapping)


@dataclass(frozen=True)
class AdvancedConfig:
    """``advanced``: which Entra users are in scope."""

    user_filter: Filter | None = None
    excluded_domains: tuple[str, ...] = ()
    excluded_users: tuple[str, ...] = ()


def redact_url(url: str) -> str:
    """The URL with a password (``user:pw@host``) replaced by ``***``."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return url
    if not password:
        return url
    userinfo, _, hostinfo = parts.netloc.rpartition("@")
    user = userinfo.split(":", 1)[0]
    return urlunsplit(
        (parts.scheme, f"{user}:{REDACTED}@{hostinfo}", parts.path, parts.query, parts.fragment)
    )


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


# --------------------------------------------------------------------------------------------
# The schema: which keys exist where


_SECTIONS: Final[dict[str, tuple[str, ...]]] = {
    "entra": (
        "tenant_id",
        "client_id",
        "client_secret",
        "certificate_path",
        "certificate_password",
        "managed_identity",
        "authority_host",
        "graph_url",
        "ca_bundle",
    ),
    "eliza": (
        "base_url",
        "api_token",
        "trailing_slash",
        "timeout_s",
        "max_concurrency",
        "ca_bundle",
        "paths",
    ),
    "sync_options": (
        "create_users",
        "update_users",
        "create_mitarbeitende",
        "update_mitarbeitende",
        "sync_groups",
    ),
    "field_mapping": ("user", "mitarbeitende"),
    "advanced": ("user_filter", "excluded_domains", "excluded_users"),
    "state": ("url",),
    "matching": ("hard_match", "soft_match", "protected_groups"),
    "deprovisioning": (
        "on_disable",
        "on_delete",
        "max_deactivations",
        "max_deactivation_percent",
    ),
    "groups": ("include", "nested", "assign_to_group"),
}
_TOP_LEVEL: Final = (
    "entra",
    "eliza",
    "sync_options",
    "orgunit_mapping",
    "field_mapping",
    "advanced",
    "timezone",
    "state",
    "matching",
    "deprovisioning",
    "groups",
)
_SECRET_KEYS: Final = frozenset(
    {"entra.client_secret", "entra.certificate_password", "eliza.api_token"}
)

#: Fields deltasync sets itself; a mapping of them is refused with the reason.
_RESERVED_FIELDS: Final[Mapping[str, str]] = {
    "id": "is ELIZA's own id and cannot be mapped",
    "remote_key": "is always the Entra object id, set by deltasync itself; it cannot be mapped",
    "is_active": (
        "follows the Entra account state (see deprovisioning), set by deltasync itself; "
        "it cannot be mapped"
    ),
    "user": "is the linked ELIZA user, set by deltasync itself; it cannot be mapped",
    "groups": (
        "is managed by deltasync (groups.assign_to_group, org units) and a mapping would "
        "replace every group of the user; it cannot be mapped"
    ),
}
_FORBIDDEN: Final[Mapping[str, frozenset[str]]] = {
    "user": frozenset({"id", "remote_key", "is_active", "groups"}),
    "mitarbeitende": frozenset({"id", "remote_key", "user"}),
}
_REQUIRED_FIELDS: Final[Mapping[str, frozenset[str]]] = {
    "user": frozenset({"username"}),
    "mitarbeitende": frozenset({"vorname", "nachname"}),
}
_FIELD_NAME_RE: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_TENANT_RE: Final = re.compile(r"[A-Za-z0-9.\-]+\Z")
_SCHEME_RE: Final = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://")
_SQLITE_RE: Final = re.compile(r"(sqlite(?:\+[A-Za-z0-9_]+)?):///(.*)\Z", re.DOTALL)


# --------------------------------------------------------------------------------------------
# YAML: parse, remember where each key is, refuse duplicate keys


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader; only the node tree is inspected before construction."""


def _label(key: Any) -> str:
    text = str(key)
    return text if re.fullmatch(r"[A-Za-z0-9_\-]+", text) else f'"{text}"'


def _join(prefix: str, key: Any) -> str:
    return f"{prefix}.{_label(key)}" if prefix else _label(key)


def _scan(
    node: yaml.Node,
    prefix: str,
    lines: dict[str, int],
    dups: list[tuple[str, int]],
    active: frozenset[int] = frozenset(),
) -> None:
    """Record the line of every key (dotted) and every repeated key; aliases may form cycles."""
    if id(node) in active:
        return
    active = active | {id(node)}
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.value == "<<":
                continue
            dotted = _join(prefix, key_node.value)
            line = key_node.start_mark.line + 1
            if key_node.value in seen:
                dups.append((dotted, line))
            else:
                seen.add(key_node.value)
                lines[dotted] = line
            _scan(value_node, dotted, lines, dups, active)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            dotted = f"{prefix}[{index}]"
            lines[dotted] = item.start_mark.line + 1
            _scan(item, dotted, lines, dups, active)


def _yaml_problem(file: str, exc: yaml.YAMLError) -> str:
    # Only the parser's own words and the position: str(exc) would quote the offending line,
    # which may hold a secret.
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        what = "; ".join(part for part in (exc.context, exc.problem) if part) or "invalid YAML"
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        return f"{file}: {where}YAML syntax error: {what}"
    return f"{file}: YAML syntax error"


# --------------------------------------------------------------------------------------------
# ${ENV} interpolation


class _EnvStr(str):
    """A string that came (partly) from ``${VAR}``; ``refs`` names the variables."""

    refs: tuple[str, ...]


class _Unresolved:
    """Placeholder for a value whose interpolation failed (already reported)."""

    def __repr__(self) -> str:
        return "<unresolved>"


_UNRESOLVED: Final = _Unresolved()
_REF_RE: Final = re.compile(r"\$\$\{|\$\{([^}]*)\}|\$\{")
_REF_BODY_RE: Final = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(?::-(.*))?\Z", re.DOTALL)


# --------------------------------------------------------------------------------------------
# The checker: collects every problem, builds typed values


class _Checker:
    def __init__(
        self,
        file: str,
        base_dir: Path,
        env: Mapping[str, str],
        lines: dict[str, int],
        *,
        need_secrets: bool = True,
    ):
        self.need_secrets = need_secrets
        self.file = file
        self.base_dir = base_dir
        self.env = env
        self.lines = lines
        self.problems: list[str] = []
        self.warnings: list[str] = []
        # keys whose value became empty through ${VAR:-} / an empty variable: treated as unset
        self.emptied: dict[str, tuple[str, ...]] = {}
        # keys an unknown key was taken for (a typo): not reported again as missing
        self.suggested: set[str] = set()

    # -- reporting ---------------------------------------------------------------------------

    def report(self, key: str, message: str) -> None:
        line = self.lines.get(key)
        suffix = f" (line {line})" if line else ""
        self.problems.append(f"{self.file}: {key}: {message}{suffix}")

    def warn(self, key: str, message: str) -> None:
        self.warnings.append(f"{key} {message}")

    def nothing(self, key: str) -> str:
        """How an unset value is described: "nothing", or the variables that were empty."""
        refs = self.emptied.get(key)
        if refs:
            return "an empty value from " + ", ".join(f"${{{name}}}" for name in refs)
        return "nothing"

    def describe(self, value: Any, key: str) -> str:
        """How a found value is quoted in a message: never a secret, never an env value."""
        if isinstance(value, _EnvStr):
            refs = ", ".join(f"${{{name}}}" for name in value.refs)
            return f"the value of {refs}" if value else f"an empty string from {refs}"
        if key in _SECRET_KEYS:
            kind = _kind(value)
            return f"{kind} (value not shown)" if isinstance(value, str) and value else kind
        if value is None:
            return self.nothing(key)
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int | float):
            return repr(value)
        if isinstance(value, str):
            if not value.strip():
                return "an empty string"
            shown = value if len(value) <= 80 else value[:77] + "..."
            return repr(shown)
        return _kind(value)

    # -- interpolation -----------------------------------------------------------------------

    def interpolate(self, value: Any, key: str) -> Any:
        if isinstance(value, dict):
            return {k: self.interpolate(v, _join(key, k)) for k, v in value.items()}
        if isinstance(value, list):
            return [self.interpolate(v, f"{key}[{i}]") for i, v in enumerate(value)]
        if isinstance(value, str) and "${" in value:
            return self._substitute(value, key)
        return value

    def _substitute(self, text: str, key: str) -> Any:
        refs: list[str] = []
        failed = False

        def replace(match: re.Match[str]) -> str:
            nonlocal failed
            token = match.group(0)
            if token == "$${":
                return "${"
            body = match.group(1)
            parsed = _REF_BODY_RE.match(body) if body is not None else None
            if parsed is None:
                shown = token if body is not None else "${ without a closing }"
                self.report(
                    key,
                    "expected ${VAR} or ${VAR:-default} (VAR of letters, digits and _), "
                    f"got {shown!r}",
                )
                failed = True
                return ""
            name, default = parsed.group(1), parsed.group(2)
            refs.append(name)
            found = self.env.get(name)
            if default is not None and not found:
                return default
            if found is None and not self.need_secrets and key in _SECRET_KEYS:
                return f"<{name} not set>"  # a command that never authenticates
            if found is None:
                self.report(
                    key,
                    f"expected environment variable {name} to be set (the file uses ${{{name}}}), "
                    "got it unset; set it or write ${" + name + ":-default}",
                )
                failed = True
                return ""
            return found

        result = _REF_RE.sub(replace, text)
        if failed:
            return _UNRESOLVED
        if not refs:
            return result  # only $${ escapes: a literal
        if not result.strip():
            self.emptied[key] = tuple(dict.fromkeys(refs))
            return None  # ${VAR:-} left empty: the key counts as not set
        out = _EnvStr(result)
        out.refs = tuple(dict.fromkeys(refs))
        return out

    # -- sections and unknown keys -----------------------------------------------------------

    def section(self, root: Mapping[str, Any], name: str) -> dict[str, Any]:
        """A top-level section as a dict ({} when absent or null); unknown keys reported."""
        value = root.get(name)
        if value is None or value is _UNRESOLVED:
            return {}
        if not isinstance(value, dict):
            self.report(name, f"expected a mapping of keys, got {self.describe(value, name)}")
            return {}
        self.unknown_keys(value, name, _SECTIONS[name])
        return value

    def unknown_keys(self, data: Mapping[Any, Any], prefix: str, allowed: Iterable[str]) -> None:
        allowed = tuple(allowed)
        for key in data:
            if isinstance(key, str) and key in allowed:
                continue
            dotted = _join(prefix, key)
            hint, target = _suggest(str(key), prefix, allowed)
            if target is not None:
                self.suggested.add(target)
            self.report(dotted, f"unknown key; {hint}")

    def missing(self, key: str, message: str) -> None:
        """Report a required key that is not set, unless a typo of it was reported already."""
        if key not in self.suggested:
            self.report(key, message)

    # -- typed readers -----------------------------------------------------------------------

    def string(
        self, sec: Mapping[str, Any], prefix: str, name: str, default: str | None = None
    ) -> str | None:
        key = _join(prefix, name)
        value = sec.get(name)
        if value is None or value is _UNRESOLVED:
            return default
        if not isinstance(value, str) or not value.strip():
            self.report(key, f"expected a non-empty string, got {self.describe(value, key)}")
            return default
        return str(value).strip()

    def required_string(self, sec: Mapping[str, Any], prefix: str, name: str) -> str:
        key = _join(prefix, name)
        value = sec.get(name)
        if value is _UNRESOLVED:
            return ""
        if value is None:
            self.missing(key, f"expected a non-empty string (required), got {self.nothing(key)}")
            return ""
        return self.string(sec, prefix, name) or ""

    def secret(
        self, sec: Mapping[str, Any], prefix: str, name: str, *, required: bool = False
    ) -> Secret | None:
        key = _join(prefix, name)
        value = sec.get(name)
        if value is _UNRESOLVED:
            return None
        if value is None:
            if required:
                self.missing(
                    key, f"expected a secret, e.g. ${{ENV_VAR}} (required), got {self.nothing(key)}"
                )
            return None
        if not isinstance(value, str) or not value.strip():
            self.report(key, f"expected a non-empty string, got {self.describe(value, key)}")
            return None
        if not isinstance(value, _EnvStr):
            self.warn(key, "is written in the file; prefer ${ENV_VAR}")
        return Secret(str(value))

    def boolean(self, sec: Mapping[str, Any], prefix: str, name: str, default: bool) -> bool:
        key = _join(prefix, name)
        value = sec.get(name)
        if value is None or value is _UNRESOLVED:
            return default
        if isinstance(value, bool):
            return value
        if isinstance(value, _EnvStr):
            word = value.strip().lower()
            if word in ("true", "yes", "on", "1"):
                return True
            if word in ("false", "no", "off", "0"):
                return False
        hint = (
            " (remove the quotes)"
            if isinstance(value, str) and value.strip().lower() in ("true", "false")
            else ""
        )
        self.report(key, f"expected true or false, got {self.describe(value, key)}{hint}")
        return default

    def integer(
        self,
        sec: Mapping[str, Any],
        prefix: str,
        name: str,
        default: int | None,
        *,
        low: int | None = None,
        high: int | None = None,
    ) -> int | None:
        key = _join(prefix, name)
        value = sec.get(name)
        if value is None or value is _UNRESOLVED:
            return default
        number = self._as_int(value)
        if (
            number is None
            or (low is not None and number < low)
            or (high is not None and number > high)
        ):
            self.report(
                key,
                f"expected {_range_text('an integer', low, high)}, "
                f"got {self.describe(value, key)}{_quote_hint(value)}",
            )
            return default
        return number

    @staticmethod
    def _as_int(value: Any) -> int | None:
        if isinstance(value, bool):
            return None
        if isinstance(value, int):
            return value
        if isinstance(value, _EnvStr) and re.fullmatch(r"\s*[+-]?\d+\s*", value):
            return int(value)
        return None

    def number(
        self,
        sec: Mapping[str, Any],
        prefix: str,
        name: str,
        default: float,
        *,
        low: float | None = None,
        high: float | None = None,
        low_exclusive: bool = False,
    ) -> float:
        key = _join(prefix, name)
        value = sec.get(name)
        if value is None or value is _UNRESOLVED:
            return default
        number: float | None = None
        if isinstance(value, int | float) and not isinstance(value, bool):
            number = float(value)
        elif isinstance(value, _EnvStr):
            try:
                number = float(value)
            except ValueError:
                number = None
        ok = number is not None and math.isfinite(number)
        if ok and number is not None and low is not None:
            ok = number > low if low_exclusive else number >= low
        if ok and number is not None and high is not None:
            ok = number <= high
        if not ok or number is None:
            if low_exclusive and high is None:
                wanted = f"a number > {_num(low)}"
            else:
                wanted = _range_text("a number", low, high)
            self.report(
                key, f"expected {wanted}, got {self.describe(value, key)}{_quote_hint(value)}"
            )
            return default
        return number

    def choice(
        self, sec: Mapping[str, Any], prefix: str, name: str, default: str, choices: tuple[str, ...]
    ) -> str:
        key = _join(prefix, name)
        value = sec.get(name)
        if value is None or value is _UNRESOLVED:
            return default
        if isinstance(value, str) and value.strip().lower() in choices:
            return value.strip().lower()
        self.report(key, f"expected one of {' | '.join(choices)}, got {self.describe(value, key)}")
        return default

    def path(self, sec: Mapping[str, Any], prefix: str, name: str) -> Path | None:
        text = self.string(sec, prefix, name)
        if text is None:
            return None
        return self.resolve(text)

    def resolve(self, text: str) -> Path:
        path = Path(text).expanduser()
        if not path.is_absolute():
            path = self.base_dir / path
        return Path(os.path.normpath(path))

    def url(
        self,
        sec: Mapping[str, Any],
        prefix: str,
        name: str,
        default: str | None,
        *,
        http: str,
    ) -> str | None:
        """A URL; ``http`` is "never", "loopback" (http only on loopback) or "warn"."""
        key = _join(prefix, name)
        value = sec.get(name)
        if value is None or value is _UNRESOLVED:
            return default
        got = self.describe(value, key)
        if not isinstance(value, str) or not value.strip():
            self.report(key, f"expected an https:// URL, got {got}")
            return default
        text = str(value).strip()
        try:
            parts = urlsplit(text)
            _ = parts.port
        except ValueError:
            self.report(key, f"expected an https:// URL, got {got} (not a valid URL)")
            return default
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https") or not parts.hostname:
            self.report(key, f"expected an https:// URL with a host name, got {got}")
            return default
        if parts.username is not None or parts.password is not None:
            self.report(
                key,
                "expected a URL without user name or password (credentials belong in "
                "their own keys), got a URL with credentials",
            )
            return default
        if parts.query or parts.fragment:
            self.report(key, f"expected a URL without ?query or #fragment, got {got}")
            return default
        if scheme == "http" and not _is_loopback(parts.hostname):
            if http == "never":
                self.report(key, f"expected an https:// URL, got {got}")
                return default
            if http == "loopback":
                self.report(
                    key,
                    "expected an https:// URL (http:// only on loopback: 127.0.0.0/8, "
                    f"localhost, [::1]), got {got}",
                )
                return default
            self.warn(
                key, "uses plain http:// to a host that is not loopback; tokens travel unencrypted"
            )
        elif scheme == "http" and http == "never":
            self.report(key, f"expected an https:// URL, got {got}")
            return default
        return text.rstrip("/")

    def string_list(self, sec: Mapping[str, Any], prefix: str, name: str) -> tuple[str, ...]:
        key = _join(prefix, name)
        value = sec.get(name)
        if value is None or value is _UNRESOLVED:
            return ()
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list):
            self.report(key, f"expected a list of strings, got {self.describe(value, key)}")
            return ()
        items: list[str] = []
        for index, item in enumerate(value):
            item_key = f"{key}[{index}]"
            if item is _UNRESOLVED or (item is None and item_key in self.emptied):
                continue
            if not isinstance(item, str) or not item.strip():
                self.report(
                    item_key,
                    f"expected a non-empty string, got "
                    f"{self.describe(item, item_key)}{_quote_hint(item)}",
                )
                continue
            items.append(str(item).strip())
        return tuple(items)

    def id_list(self, sec: Mapping[str, Any], prefix: str, name: str) -> tuple[int, ...]:
        key = _join(prefix, name)
        value = sec.get(name)
        if value is None or value is _UNRESOLVED:
            return ()
        if not isinstance(value, list):
            value = [value]
        ids: list[int] = []
        for index, item in enumerate(value):
            item_key = f"{key}[{index}]"
            if item is _UNRESOLVED or (item is None and item_key in self.emptied):
                continue
            number = self._as_int(item)
            if number is None or number < 1:
                self.report(
                    item_key,
                    f"expected an ELIZA group id (an integer >= 1), got "
                    f"{self.describe(item, item_key)}{_quote_hint(item)}",
                )
                continue
            ids.append(number)
        return tuple(ids)


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string" if value else "an empty string"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"a {type(value).__name__}"


def _num(value: float | None) -> str:
    if value is None:
        return ""
    return str(int(value)) if float(value).is_integer() else str(value)


def _range_text(what: str, low: float | None, high: float | None) -> str:
    if low is not None and high is not None:
        return f"{what} from {_num(low)} to {_num(high)}"
    if low is not None:
        return f"{what} >= {_num(low)}"
    if high is not None:
        return f"{what} <= {_num(high)}"
    return what


def _quote_hint(value: Any) -> str:
    if isinstance(value, str) and not isinstance(value, _EnvStr):
        try:
            float(value)
        except ValueError:
            return ""
        return " (remove the quotes)"
    return ""


def _is_loopback(host: str) -> bool:
    host = host.lower().rstrip(".")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _suggest(key: str, prefix: str, allowed: tuple[str, ...]) -> tuple[str, str | None]:
    """A "did you mean" for an unknown key (a close key here, the same key elsewhere, or a
    close key anywhere; else the list of known keys), and the dotted key it suggests."""
    lowered = {name.lower(): name for name in allowed}
    close = difflib.get_close_matches(key.lower(), list(lowered), n=1, cutoff=0.6)
    if close:
        here = _join(prefix, lowered[close[0]])
        return f"did you mean {here}?", here
    everywhere: dict[str, str] = {name: name for name in _TOP_LEVEL}
    for section, keys in _SECTIONS.items():
        for name in keys:
            everywhere.setdefault(name, f"{section}.{name}")
    everywhere.pop(prefix, None)
    target: str | None = everywhere.get(key)
    if target is None:
        close = difflib.get_close_matches(key.lower(), list(everywhere), n=1, cutoff=0.75)
        target = everywhere[close[0]] if close else None
    if target is not None and target != _join(prefix, key):
        where = " (at the top level)" if prefix and "." not in target else ""
        return f"did you mean {target}{where}?", target
    return f"expected one of: {', '.join(allowed)}", None


# --------------------------------------------------------------------------------------------
# Sections


def _entra(c: _Checker, root: Mapping[str, Any]) -> EntraConfig:
    sec = c.section(root, "entra")
    p = "entra"
    tenant_id = c.required_string(sec, p, "tenant_id")
    if tenant_id and not _TENANT_RE.match(tenant_id):
        c.report(
            "entra.tenant_id",
            "expected a tenant id or domain (letters, digits, '-' and '.'), got "
            f"{c.describe(sec.get('tenant_id'), 'entra.tenant_id')}",
        )
    client_id = c.required_string(sec, p, "client_id")

    chosen = [
        name
        for name in ("client_secret", "certificate_path", "managed_identity")
        if sec.get(name) is not None and sec.get(name) is not False
    ]
    client_secret = c.secret(sec, p, "client_secret")
    certificate_path = c.path(sec, p, "certificate_path")
    certificate_password = c.secret(sec, p, "certificate_password")
    managed_identity = c.boolean(sec, p, "managed_identity", False)
    typo = c.suggested & {"entra.client_secret", "entra.certificate_path", "entra.managed_identity"}
    if not chosen and not typo:
        c.report(
            "entra",
            "expected exactly one credential: client_secret (e.g. ${ENTRA_CLIENT_SECRET}), "
            "certificate_path or managed_identity: true; got none",
        )
    elif len(chosen) > 1:
        c.report(
            "entra",
            "expected exactly one credential among client_secret, certificate_path and "
            f"managed_identity, got {' and '.join(chosen)}",
        )
    if sec.get("certificate_password") is not None and sec.get("certificate_path") is None:
        c.warn("entra.certificate_password", "is set but only used with certificate_path")

    authority = c.url(sec, p, "authority_host", DEFAULT_AUTHORITY_HOST, http="never")
    graph_url = c.url(sec, p, "graph_url", DEFAULT_GRAPH_URL, http="warn")
    return EntraConfig(
        tenant_id=tenant_id,
        client_id=client_id,
        client_secret=client_secret,
        certificate_path=certificate_path,
        certificate_password=certificate_password,
        managed_identity=managed_identity,
        authority_host=authority or DEFAULT_AUTHORITY_HOST,
        graph_url=graph_url or DEFAULT_GRAPH_URL,
        ca_bundle=c.path(sec, p, "ca_bundle"),
    )


def _eliza(c: _Checker, root: Mapping[str, Any]) -> ElizaConfig:
    sec = c.section(root, "eliza")
    p = "eliza"
    if sec.get("base_url") is None:
        c.missing(
            "eliza.base_url",
            f"expected an https:// URL (required), got {c.nothing('eliza.base_url')}",
        )
        base_url = ""
    else:
        base_url = c.url(sec, p, "base_url", "", http="loopback") or ""
    if base_url.lower().endswith("/api"):
        c.warn(
            "eliza.base_url",
            "ends in /api; it should be the instance root (deltasync adds /api itself)",
        )
    api_token = c.secret(sec, p, "api_token", required=True)
    timeout = c.number(sec, p, "timeout_s", 30.0, low=0, low_exclusive=True)
    concurrency = c.integer(sec, p, "max_concurrency", 8, low=1, high=64)
    return ElizaConfig(
        base_url=base_url,
        api_token=api_token if api_token is not None else Secret(""),
        trailing_slash=c.boolean(sec, p, "trailing_slash", False),
        timeout_s=timeout,
        max_concurrency=_or(concurrency, 8),
        ca_bundle=c.path(sec, p, "ca_bundle"),
        paths=_eliza_paths(c, sec),
    )


def _eliza_paths(c: _Checker, sec: Mapping[str, Any]) -> dict[str, str]:
    paths = dict(DEFAULT_ELIZA_PATHS)
    value = sec.get("paths")
    if value is None or value is _UNRESOLVED:
        return paths
    if not isinstance(value, dict):
        c.report(
            "eliza.paths",
            "expected a mapping of resource name to API path, got "
            f"{c.describe(value, 'eliza.paths')}",
        )
        return paths
    c.unknown_keys(value, "eliza.paths", tuple(DEFAULT_ELIZA_PATHS))
    for name in DEFAULT_ELIZA_PATHS:
        text = c.string(value, "eliza.paths", name)
        if text is None:
            continue
        cleaned = text.strip("/")
        if not cleaned or re.search(r"[\s?#]", cleaned):
            c.report(
                _join("eliza.paths", name),
                f"expected an API path such as {DEFAULT_ELIZA_PATHS[name]!r}, got {text!r}",
            )
            continue
        paths[name] = cleaned
    return paths


def _sync_options(c: _Checker, root: Mapping[str, Any]) -> SyncOptions:
    sec = c.section(root, "sync_options")
    p = "sync_options"
    return SyncOptions(
        create_users=c.boolean(sec, p, "create_users", True),
        update_users=c.boolean(sec, p, "update_users", True),
        create_mitarbeitende=c.boolean(sec, p, "create_mitarbeitende", True),
        update_mitarbeitende=c.boolean(sec, p, "update_mitarbeitende", True),
        sync_groups=c.boolean(sec, p, "sync_groups", False),
    )


def _orgunit_mapping(c: _Checker, root: Mapping[str, Any]) -> dict[str, int]:
    value = root.get("orgunit_mapping")
    if value is None or value is _UNRESOLVED:
        return {}
    if not isinstance(value, dict):
        c.report(
            "orgunit_mapping",
            "expected a mapping of Entra companyName to ELIZA org unit id, got "
            f"{c.describe(value, 'orgunit_mapping')}",
        )
        return {}
    result: dict[str, int] = {}
    for company, unit in value.items():
        key = _join("orgunit_mapping", company)
        if unit is _UNRESOLVED:
            continue
        if company is None or not str(company).strip():
            c.report(key, "expected a company name as key, got an empty one")
            continue
        number = c._as_int(unit)
        if number is None or number < 1:
            c.report(
                key,
                f"expected an ELIZA org unit id (an integer >= 1), got "
                f"{c.describe(unit, key)}{_quote_hint(unit)}",
            )
            continue
        result[str(company).strip()] = number
    return result


def _field_mapping(c: _Checker, root: Mapping[str, Any]) -> FieldMapping:
    sec = c.section(root, "field_mapping")
    merged: dict[str, dict[str, Expr]] = {}
    for kind, defaults in (
        ("user", DEFAULT_USER_MAPPING),
        ("mitarbeitende", DEFAULT_PERSON_MAPPING),
    ):
        prefix = f"field_mapping.{kind}"
        value = sec.get(kind)
        if value is _UNRESOLVED:
            value = None
        if value is not None and not isinstance(value, dict):
            c.report(
                prefix,
                "expected a mapping of ELIZA field to Graph property or expression, got "
                f"{c.describe(value, prefix)}",
            )
            value = None
        overrides: dict[str, str | None] = {}
        ok = True
        for name, text in (value or {}).items():
            key = _join(prefix, name)
            if not isinstance(name, str) or not _FIELD_NAME_RE.match(name):
                c.report(key, "expected an ELIZA field name (letters, digits and _) as key")
                ok = False
            elif name in _FORBIDDEN[kind]:
                c.report(key, _RESERVED_FIELDS[name])
                ok = False
            elif text is _UNRESOLVED:
                ok = False
            elif text is None:
                if name in _REQUIRED_FIELDS[kind]:
                    c.report(
                        key,
                        "expected a Graph property or expression, got null: ELIZA requires "
                        f"{name}, so it cannot be removed (map it to another property instead)",
                    )
                    ok = False
                else:
                    overrides[name] = None
            elif not isinstance(text, str) or not text.strip():
                c.report(
                    key,
                    "expected a Graph property or expression (or null to remove the field), "
                    f"got {c.describe(text, key)}",
                )
                ok = False
            else:
                try:
                    compile_expr(str(text))
                except ExpressionError as exc:
                    c.report(key, str(exc))
                    ok = False
                else:
                    overrides[name] = str(text)
        if not ok:
            merged[kind] = {}
            continue
        try:
            merged[kind] = merge_mapping(defaults, overrides)
        except ExpressionError as exc:
            for problem in exc.problems:
                name, sep, message = problem.partition(": ")
                if sep and (name in defaults or name in overrides):
                    c.report(_join(prefix, name), message)
                else:
                    c.report(prefix, problem)
            merged[kind] = {}
    return FieldMapping(user=merged["user"], mitarbeitende=merged["mitarbeitende"])


def _advanced(c: _Checker, root: Mapping[str, Any]) -> AdvancedConfig:
    sec = c.section(root, "advanced")
    p = "advanced"
    user_filter: Filter | None = None
    raw = sec.get("user_filter")
    if isinstance(raw, str) and not raw.strip():
        raw = None
    if raw is not None and raw is not _UNRESOLVED:
        if not isinstance(raw, str):
            c.report(
                "advanced.user_filter",
                'expected an OData filter such as "accountEnabled eq true", got '
                f"{c.describe(raw, 'advanced.user_filter')}",
            )
        else:
            try:
                user_filter = parse_filter(str(raw))
            except FilterError as exc:
                c.report("advanced.user_filter", str(exc))
    domains = c.string_list(sec, p, "excluded_domains")
    for index, domain in enumerate(domains):
        if any(ch.isspace() for ch in domain) or "@" in domain.lstrip("@"):
            c.report(
                f"advanced.excluded_domains[{index}]",
                f"expected a domain such as 'external.firma.ch', got {domain!r}",
            )
    return AdvancedConfig(
        user_filter=user_filter,
        excluded_domains=domains,
        excluded_users=c.string_list(sec, p, "excluded_users"),
    )


def _timezone(c: _Checker, root: Mapping[str, Any]) -> ZoneInfo:
    value = root.get("timezone")
    if value is None or value is _UNRESOLVED:
        return ZoneInfo(DEFAULT_TIMEZONE)
    if isinstance(value, str) and value.strip():
        name = value.strip()
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            pass
        close = difflib.get_close_matches(name, sorted(available_timezones()), n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        c.report(
            "timezone",
            "expected an IANA time zone name such as 'Europe/Zurich', got "
            f"{c.describe(value, 'timezone')}{hint}",
        )
    else:
        c.report(
            "timezone",
            f"expected an IANA time zone name such as 'Europe/Zurich', got "
            f"{c.describe(value, 'timezone')}",
        )
    return ZoneInfo(DEFAULT_TIMEZONE)


def _state(c: _Checker, root: Mapping[str, Any]) -> StateConfig:
    sec = c.section(root, "state")
    raw = sec.get("url")
    url = c.string(sec, "state", "url", DEFAULT_STATE_URL) or DEFAULT_STATE_URL
    if not _SCHEME_RE.match(url):
        c.report(
            "state.url",
            "expected a SQLAlchemy URL such as 'sqlite:///state/deltasync.db' or "
            f"'postgresql+psycopg://user@host/db', got {c.describe(raw, 'state.url')}",
        )
        url = DEFAULT_STATE_URL
    try:
        password = urlsplit(url).password
    except ValueError:
        password = None
    if password and not isinstance(raw, _EnvStr):
        c.warn("state.url", "has a password written in the file; prefer ${ENV_VAR}")
    return StateConfig(url=_resolve_sqlite(url, c))


def _resolve_sqlite(url: str, c: _Checker) -> str:
    match = _SQLITE_RE.match(url)
    if match is None:
        return url
    scheme, rest = match.group(1), match.group(2)
    file, sep, query = rest.partition("?")
    if not file or file == ":memory:" or file.startswith(("/", "file:")):
        return url
    return f"{scheme}:///{c.resolve(file).as_posix()}{sep}{query}"


def _matching(c: _Checker, root: Mapping[str, Any]) -> MatchingConfig:
    sec = c.section(root, "matching")
    p = "matching"
    return MatchingConfig(
        hard_match=c.boolean(sec, p, "hard_match", True),
        soft_match=c.boolean(sec, p, "soft_match", True),
        protected_groups=c.id_list(sec, p, "protected_groups"),
    )


def _deprovisioning(c: _Checker, root: Mapping[str, Any]) -> DeprovisioningConfig:
    sec = c.section(root, "deprovisioning")
    p = "deprovisioning"
    return DeprovisioningConfig(
        on_disable=c.choice(sec, p, "on_disable", "deactivate", ("deactivate", "ignore")),
        on_delete=c.choice(sec, p, "on_delete", "deactivate", ("deactivate", "delete", "ignore")),
        max_deactivations=_or(c.integer(sec, p, "max_deactivations", 25, low=0), 25),
        max_deactivation_percent=c.number(
            sec, p, "max_deactivation_percent", 10.0, low=0, high=100
        ),
    )


def _or(value: int | None, default: int) -> int:
    return default if value is None else value


def _groups(c: _Checker, root: Mapping[str, Any]) -> GroupsConfig:
    sec = c.section(root, "groups")
    p = "groups"
    include = c.string_list(sec, p, "include")
    return GroupsConfig(
        include=include,
        nested=c.choice(sec, p, "nested", "direct", ("direct", "flatten")),
        assign_to_group=c.integer(sec, p, "assign_to_group", None, low=1),
    )


# --------------------------------------------------------------------------------------------
# Public functions


def load_config(
    path: Path | str, env: Mapping[str, str] | None = None, *, need_secrets: bool = True
) -> Config:
    """Read, interpolate and check a configuration file.

    ``env`` is the environment for ``${VAR}`` (default: ``os.environ``). With
    ``need_secrets=False`` (commands that only read the state database) a secret whose
    variable is unset is no error; its value is then a placeholder that cannot authenticate.

    Raises:
        ConfigError: ``problems`` lists every problem found, each as
            ``"<file>: <dotted.key>: <what was expected, what was found>"``.
    """
    path = Path(path)
    file = str(path)
    environment: Mapping[str, str] = os.environ if env is None else env
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ConfigError(
            f"{file}: configuration file not found (give the path with -c or ${CONFIG_ENV_VAR})"
        ) from None
    except IsADirectoryError:
        raise ConfigError(f"{file}: expected a configuration file, got a folder") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{file}: expected UTF-8 text, got undecodable bytes") from None
    except OSError as exc:
        raise ConfigError(f"{file}: cannot read the configuration file: {exc.strerror}") from None

    lines: dict[str, int] = {}
    duplicates: list[tuple[str, int]] = []
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is not None:
            _scan(node, "", lines, duplicates)
            data: Any = loader.construct_document(node)
        else:
            data = None
    except yaml.YAMLError as exc:
        raise ConfigError(_yaml_problem(file, exc)) from None
    finally:
        loader.dispose()

    if data is None:
        raise ConfigError(
            f"{file}: expected a YAML mapping with at least the entra: and eliza: sections, "
            "got an empty file"
        )
    if not isinstance(data, dict):
        raise ConfigError(
            f"{file}: expected a YAML mapping with the entra: and eliza: sections at the top, "
            f"got {_kind(data)}"
        )

    base_dir = Path(os.path.normpath(path.absolute().parent))
    c = _Checker(file, base_dir, environment, lines, need_secrets=need_secrets)
    for dotted, line in duplicates:
        c.problems.append(
            f"{file}: {dotted}: expected each key once, got it again (line {line}; the "
            f"first is on line {lines.get(dotted, '?')})"
        )
    root = c.interpolate(data, "")
    c.unknown_keys(root, "", _TOP_LEVEL)

    entra = _entra(c, root)
    eliza = _eliza(c, root)
    config = Config(
        path=Path(os.path.normpath(path.absolute())),
        entra=entra,
        eliza=eliza,
        sync_options=_sync_options(c, root),
        orgunit_mapping=_orgunit_mapping(c, root),
        field_mapping=_field_mapping(c, root),
        advanced=_advanced(c, root),
        timezone=_timezone(c, root),
        state=_state(c, root),
        matching=_matching(c, root),
        deprovisioning=_deprovisioning(c, root),
        groups=_groups(c, root),
        warnings=tuple(c.warnings),
    )
    if c.problems:
        raise ConfigError(c.problems)
    return config


def resolve_config_path(cli_value: str | None, env: Mapping[str, str] | None = None) -> Path:
    """The config file to use: ``-c`` if given, else ``$DELTASYNC_CONFIG``, else
    ``config/entra_sync.yaml`` (relative to the working directory)."""
    environment: Mapping[str, str] = os.environ if env is None else env
    if cli_value:
        return Path(cli_value).expanduser()
    from_env = environment.get(CONFIG_ENV_VAR, "").strip()
    if from_env:
        return Path(from_env).expanduser()
    return DEFAULT_CONFIG_PATH


def _secret_out(secret: Secret | None) -> str | None:
    return None if secret is None else REDACTED


def _path_out(path: Path | None) -> str | None:
    return None if path is None else str(path)


def config_to_redacted_dict(config: Config) -> dict[str, Any]:
    """The effective configuration as plain data (YAML/JSON-ready), secrets as ``"***"``."""
    entra = config.entra
    eliza = config.eliza
    adv = config.advanced
    return {
        "entra": {
            "tenant_id": entra.tenant_id,
            "client_id": entra.client_id,
            "client_secret": _secret_out(entra.client_secret),
            "certificate_path": _path_out(entra.certificate_path),
            "certificate_password": _secret_out(entra.certificate_password),
            "managed_identity": entra.managed_identity,
            "authority_host": entra.authority_host,
            "graph_url": entra.graph_url,
            "ca_bundle": _path_out(entra.ca_bundle),
        },
        "eliza": {
            "base_url": eliza.base_url,
            "api_token": _secret_out(eliza.api_token),
            "trailing_slash": eliza.trailing_slash,
            "timeout_s": eliza.timeout_s,
            "max_concurrency": eliza.max_concurrency,
            "ca_bundle": _path_out(eliza.ca_bundle),
            "paths": dict(eliza.paths),
        },
        "sync_options": {
            "create_users": config.sync_options.create_users,
            "update_users": config.sync_options.update_users,
            "create_mitarbeitende": config.sync_options.create_mitarbeitende,
            "update_mitarbeitende": config.sync_options.update_mitarbeitende,
            "sync_groups": config.sync_options.sync_groups,
        },
        "orgunit_mapping": dict(config.orgunit_mapping),
        "field_mapping": {
            "user": {name: expr.source for name, expr in config.field_mapping.user.items()},
            "mitarbeitende": {
                name: expr.source for name, expr in config.field_mapping.mitarbeitende.items()
            },
        },
        "advanced": {
            "user_filter": adv.user_filter.source if adv.user_filter is not None else None,
            "excluded_domains": list(adv.excluded_domains),
            "excluded_users": list(adv.excluded_users),
        },
        "timezone": config.timezone.key,
        "state": {"url": config.state.redacted_url},
        "matching": {
            "hard_match": config.matching.hard_match,
            "soft_match": config.matching.soft_match,
            "protected_groups": list(config.matching.protected_groups),
        },
        "deprovisioning": {
            "on_disable": config.deprovisioning.on_disable,
            "on_delete": config.deprovisioning.on_delete,
            "max_deactivations": config.deprovisioning.max_deactivations,
            "max_deactivation_percent": config.deprovisioning.max_deactivation_percent,
        },
        "groups": {
            "include": list(config.groups.include),
            "nested": config.groups.nested,
            "assign_to_group": config.groups.assign_to_group,
        },
    }
