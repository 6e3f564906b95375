"""One function per YAML section (but ``field_mapping`` and ``advanced``, see
:mod:`deltasync.config.expressions`), each building its dataclass through the checker."""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from deltasync.config.checker import Checker
from deltasync.config.model import (
    DEFAULT_AUTHORITY_HOST,
    DEFAULT_ELIZA_PATHS,
    DEFAULT_GRAPH_URL,
    DEFAULT_STATE_URL,
    DEFAULT_TIMEZONE,
    DeprovisioningConfig,
    ElizaConfig,
    EntraConfig,
    GroupsConfig,
    MatchingConfig,
    Secret,
    StateConfig,
    SyncOptions,
)
from deltasync.config.schema import join
from deltasync.config.values import UNRESOLVED, EnvStr, quote_hint

_TENANT_RE: Final = re.compile(r"[A-Za-z0-9.\-]+\Z")
_GUID_RE: Final = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\Z"
)
_SCHEME_RE: Final = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://")
_SQLITE_RE: Final = re.compile(r"(sqlite(?:\+[A-Za-z0-9_]+)?):///(.*)\Z", re.DOTALL)


def entra(c: Checker, root: Mapping[str, Any]) -> EntraConfig:
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
    identity_client_id = c.string(sec, p, "managed_identity_client_id")
    if identity_client_id is not None and not _GUID_RE.match(identity_client_id):
        key = "entra.managed_identity_client_id"
        c.report(
            key,
            "expected a GUID (the client id of a user-assigned managed identity, "
            "e.g. 6f1c2b3a-4d5e-4f60-8a7b-9c0d1e2f3a4b), got "
            f"{c.describe(sec.get('managed_identity_client_id'), key)}",
        )
        identity_client_id = None
    elif identity_client_id is not None and not managed_identity:
        c.warn("entra.managed_identity_client_id", "is set but only used with managed_identity")
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
        managed_identity_client_id=identity_client_id,
        authority_host=authority or DEFAULT_AUTHORITY_HOST,
        graph_url=graph_url or DEFAULT_GRAPH_URL,
        ca_bundle=c.path(sec, p, "ca_bundle"),
    )


def eliza(c: Checker, root: Mapping[str, Any]) -> ElizaConfig:
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
    api_token = c.secret(sec, p, "api_token", required=True, header=True)
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


def _eliza_paths(c: Checker, sec: Mapping[str, Any]) -> dict[str, str]:
    paths = dict(DEFAULT_ELIZA_PATHS)
    value = sec.get("paths")
    if value is None or value is UNRESOLVED:
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
                join("eliza.paths", name),
                f"expected an API path such as {DEFAULT_ELIZA_PATHS[name]!r}, got {text!r}",
            )
            continue
        paths[name] = cleaned
    return paths


def sync_options(c: Checker, root: Mapping[str, Any]) -> SyncOptions:
    sec = c.section(root, "sync_options")
    p = "sync_options"
    return SyncOptions(
        create_users=c.boolean(sec, p, "create_users", True),
        update_users=c.boolean(sec, p, "update_users", True),
        create_persons=c.boolean(sec, p, "create_mitarbeitende", True),
        update_persons=c.boolean(sec, p, "update_mitarbeitende", True),
        sync_groups=c.boolean(sec, p, "sync_groups", False),
    )


def orgunit_mapping(c: Checker, root: Mapping[str, Any]) -> dict[str, int]:
    value = root.get("orgunit_mapping")
    if value is None or value is UNRESOLVED:
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
        key = join("orgunit_mapping", company)
        if unit is UNRESOLVED:
            continue
        if company is None or not str(company).strip():
            c.report(key, "expected a company name as key, got an empty one")
            continue
        number = c.as_int(unit)
        if number is None or number < 1:
            c.report(
                key,
                f"expected an ELIZA org unit id (an integer >= 1), got "
                f"{c.describe(unit, key)}{quote_hint(unit)}",
            )
            continue
        result[str(company).strip()] = number
    return result


def timezone(c: Checker, root: Mapping[str, Any]) -> ZoneInfo:
    value = root.get("timezone")
    if value is None or value is UNRESOLVED:
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


def state(c: Checker, root: Mapping[str, Any]) -> StateConfig:
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
    if password and not isinstance(raw, EnvStr):
        c.warn("state.url", "has a password written in the file; prefer ${ENV_VAR}")
    return StateConfig(url=_resolve_sqlite(url, c))


def _resolve_sqlite(url: str, c: Checker) -> str:
    match = _SQLITE_RE.match(url)
    if match is None:
        return url
    scheme, rest = match.group(1), match.group(2)
    file, sep, query = rest.partition("?")
    if not file or file == ":memory:" or file.startswith(("/", "file:")):
        return url
    return f"{scheme}:///{c.resolve(file).as_posix()}{sep}{query}"


def matching(c: Checker, root: Mapping[str, Any]) -> MatchingConfig:
    sec = c.section(root, "matching")
    p = "matching"
    return MatchingConfig(
        hard_match=c.boolean(sec, p, "hard_match", True),
        soft_match=c.boolean(sec, p, "soft_match", True),
        protected_groups=c.id_list(sec, p, "protected_groups"),
    )


def deprovisioning(c: Checker, root: Mapping[str, Any]) -> DeprovisioningConfig:
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


def groups(c: Checker, root: Mapping[str, Any]) -> GroupsConfig:
    sec = c.section(root, "groups")
    p = "groups"
    include = c.string_list(sec, p, "include")
    return GroupsConfig(
        include=include,
        nested=c.choice(sec, p, "nested", "direct", ("direct", "flatten")),
        delete_removed=c.boolean(sec, p, "delete_removed", False),
        assign_to_group=c.integer(sec, p, "assign_to_group", None, low=1),
    )
