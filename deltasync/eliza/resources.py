"""The ELIZA resources deltasync uses, where they live below ``<base>/api/``, and how ELIZA
compares their list filters (which a lookup must verify, as ELIZA ignores unknown ones)."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any

SCHEMA_PATH = "/api/schema/"


class Resource(enum.StrEnum):
    """ELIZA resources deltasync uses; values are the default paths below ``<base>/api/``."""

    USER = "user"
    PERSON = "organisation/mitarbeitende"
    ORGUNIT = "organisation/orgunit"
    MEMBERSHIP = "organisation/membership"
    CUSTOMGROUP = "customgroup"


# Keys of the config's ``eliza.paths`` mapping.
PATH_KEYS: dict[str, Resource] = {
    "user": Resource.USER,
    "mitarbeitende": Resource.PERSON,
    "orgunit": Resource.ORGUNIT,
    "membership": Resource.MEMBERSHIP,
    "customgroup": Resource.CUSTOMGROUP,
}

# Filters ELIZA compares case-insensitively; every other filter is exact.
CASE_INSENSITIVE: dict[Resource, frozenset[str]] = {
    Resource.USER: frozenset({"username", "email"}),
}


def resolve_paths(overrides: Mapping[str, str]) -> dict[Resource, str]:
    """The path of every resource, with the config's ``eliza.paths`` overrides applied.

    Raises:
        ValueError: an unknown key, or an empty path.
    """
    paths = {res: res.value for res in Resource}
    for key, value in overrides.items():
        if key not in PATH_KEYS:
            known = ", ".join(PATH_KEYS)
            raise ValueError(f"unknown ELIZA resource {key!r} in eliza.paths (known: {known})")
        cleaned = str(value).strip().strip("/")
        if cleaned.startswith("api/"):
            cleaned = cleaned[len("api/") :]
        if not cleaned:
            raise ValueError(f"eliza.paths.{key} is empty")
        paths[PATH_KEYS[key]] = cleaned
    return paths


def query_value(value: Any) -> str:
    """A filter value as ELIZA reads it from a query string."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, enum.Enum):
        return str(value.value)
    return str(value)


def _norm(value: Any) -> Any:
    """Filter values and object values compared on the wire form: bools as "true"/"false"."""
    if value is None:
        return None
    return query_value(value)


def matches(res: Resource, obj: Mapping[str, Any], filters: Mapping[str, Any]) -> bool:
    """Whether one returned object really satisfies every filter."""
    insensitive = CASE_INSENSITIVE.get(res, frozenset())
    for name, wanted in filters.items():
        if name not in obj:
            return False
        have = obj[name]
        if wanted is None or have is None:
            if wanted is not have:
                return False
            continue
        if isinstance(have, (dict, list)):
            return False
        a, b = _norm(have), _norm(wanted)
        if name in insensitive:
            a, b = a.lower(), b.lower()
        if a != b:
            return False
    return True
