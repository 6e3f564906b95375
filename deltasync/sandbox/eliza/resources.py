"""ELIZA's resources and their serializer fields, read-only fields and list filters.

One table per resource is enough to validate writes like DRF, fill defaults on insert and
describe the API in the OpenAPI schema.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

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


@dataclass(frozen=True)
class Field:
    """A writable serializer field, enough to validate like DRF and to describe in the schema."""

    kind: str  # str | email | bool | int | date | choice | ref | groups
    required: bool = False
    nullable: bool = True
    blank: bool = True
    max_length: int | None = None
    default: Any = None
    choices: tuple[str, ...] = ()
    ref: str | None = None  # resource a "ref" points at


def _str(max_length: int | None = None, **kw: Any) -> Field:
    return Field("str", max_length=max_length, **kw)


FIELDS: dict[str, dict[str, Field]] = {
    USER: {
        "username": _str(150, required=True, nullable=False, blank=False),
        "email": Field("email", max_length=254),
        "first_name": _str(150, nullable=False, default=""),
        "last_name": _str(150, nullable=False, default=""),
        "is_active": Field("bool", nullable=False, default=True),
        "groups": Field("groups", nullable=False, default=()),
        "remote_key": _str(255),
    },
    PERSON: {
        "vorname": _str(100, required=True, nullable=False, blank=False),
        "nachname": _str(100, required=True, nullable=False, blank=False),
        "email": Field("email", max_length=254),
        "anstellungsart": Field(
            "choice", nullable=False, default="intern", choices=("intern", "extern", "ehemalig")
        ),
        "eintrittsdatum": Field("date"),
        "austrittsdatum": Field("date"),
        "telefon": _str(100),
        "position": _str(255),
        "abteilung": _str(255),
        "kurzzeichen": _str(20),
        "user": Field("ref", ref=USER),
        "vorgesetzter": Field("ref", ref=PERSON),
        "remote_key": _str(255),
        "archived": Field("bool", nullable=False, default=False),
    },
    ORGUNIT: {
        "titel": _str(255, required=True, nullable=False, blank=False),
        "parent": Field("ref", ref=ORGUNIT),
        "status": Field(
            "choice", nullable=False, default="aktiv", choices=("aktiv", "entwurf", "archiviert")
        ),
    },
    MEMBERSHIP: {
        "mitarbeiter": Field("ref", required=True, nullable=False, ref=PERSON),
        "orgunit": Field("ref", required=True, nullable=False, ref=ORGUNIT),
        "funktion": Field("int"),
        "von": Field("date"),
        "bis": Field("date"),
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


def defaults(resource: str) -> dict[str, Any]:
    """Every writable field of ``resource`` at its default (a fresh list for ``groups``)."""
    return {
        name: list(spec.default) if isinstance(spec.default, tuple) else spec.default
        for name, spec in FIELDS[resource].items()
    }
