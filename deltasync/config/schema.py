"""Which keys exist where in the file, and the "did you mean" for a key that does not."""

from __future__ import annotations

import difflib
import re
from typing import Any, Final

from deltasync.fields import MAPPING_SECTIONS

SECTIONS: Final[dict[str, tuple[str, ...]]] = {
    "entra": (
        "tenant_id",
        "client_id",
        "client_secret",
        "certificate_path",
        "certificate_password",
        "managed_identity",
        "managed_identity_client_id",
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
    "field_mapping": tuple(MAPPING_SECTIONS.values()),
    "advanced": ("user_filter", "excluded_domains", "excluded_users"),
    "state": ("url",),
    "matching": ("hard_match", "soft_match", "protected_groups"),
    "deprovisioning": (
        "on_disable",
        "on_delete",
        "max_deactivations",
        "max_deactivation_percent",
    ),
    "groups": ("include", "nested", "delete_removed", "assign_to_group"),
}
TOP_LEVEL: Final = (
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
SECRET_KEYS: Final = frozenset(
    {"entra.client_secret", "entra.certificate_password", "eliza.api_token"}
)


def label(key: Any) -> str:
    text = str(key)
    return text if re.fullmatch(r"[A-Za-z0-9_\-]+", text) else f'"{text}"'


def join(prefix: str, key: Any) -> str:
    return f"{prefix}.{label(key)}" if prefix else label(key)


def suggest(key: str, prefix: str, allowed: tuple[str, ...]) -> tuple[str, str | None]:
    """A "did you mean" for an unknown key (a close key here, the same key elsewhere, or a
    close key anywhere; else the list of known keys), and the dotted key it suggests."""
    lowered = {name.lower(): name for name in allowed}
    close = difflib.get_close_matches(key.lower(), list(lowered), n=1, cutoff=0.6)
    if close:
        here = join(prefix, lowered[close[0]])
        return f"did you mean {here}?", here
    everywhere: dict[str, str] = {name: name for name in TOP_LEVEL}
    for section, keys in SECTIONS.items():
        for name in keys:
            everywhere.setdefault(name, f"{section}.{name}")
    everywhere.pop(prefix, None)
    target: str | None = everywhere.get(key)
    if target is None:
        close = difflib.get_close_matches(key.lower(), list(everywhere), n=1, cutoff=0.75)
        target = everywhere[close[0]] if close else None
    if target is not None and target != join(prefix, key):
        where = " (at the top level)" if prefix and "." not in target else ""
        return f"did you mean {target}{where}?", target
    return f"expected one of: {', '.join(allowed)}", None
