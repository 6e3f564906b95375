"""The ELIZA resources deltasync uses and where they live below ``<base>/api/``."""

from __future__ import annotations

import enum
from collections.abc import Mapping

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
