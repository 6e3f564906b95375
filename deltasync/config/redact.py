"""Redaction: a secret never reaches output, whether in a URL or in the effective config."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit, urlunsplit

if TYPE_CHECKING:
    from deltasync.config.model import Config, Secret

REDACTED: Final = "***"


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
            "managed_identity_client_id": entra.managed_identity_client_id,
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
            "create_mitarbeitende": config.sync_options.create_persons,
            "update_mitarbeitende": config.sync_options.update_persons,
            "sync_groups": config.sync_options.sync_groups,
        },
        "orgunit_mapping": dict(config.orgunit_mapping),
        "field_mapping": {
            "user": {name: expr.source for name, expr in config.field_mapping.user.items()},
            "mitarbeitende": {
                name: expr.source for name, expr in config.field_mapping.person.items()
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
            "delete_removed": config.groups.delete_removed,
            "assign_to_group": config.groups.assign_to_group,
        },
    }
