"""What Graph knows about each directory resource: properties, default ``$select``, permissions."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

_USER_TYPE: Final = "#microsoft.graph.user"
_GROUP_TYPE: Final = "#microsoft.graph.group"


@dataclass(frozen=True)
class Schema:
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

    def check(self, props: Mapping[str, Any]) -> dict[str, Any]:
        """Reject unknown properties; collections become lists (``None`` an empty one)."""
        unknown = sorted(set(props) - set(self.properties))
        if unknown:
            raise ValueError(f"unknown {self.resource} properties: {', '.join(unknown)}")
        return {
            name: list(value or []) if name in self.collections else value
            for name, value in props.items()
        }

    def complete(self, data: dict[str, Any]) -> dict[str, Any]:
        """Every property present: scalars ``None`` and collections empty unless given."""
        full: dict[str, Any] = dict.fromkeys(self.scalars)
        full.update({name: [] for name in self.collections})
        full.update(data)
        return full


USERS: Final = Schema(
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
GROUPS: Final = Schema(
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
SCHEMAS: Final = {USERS.resource: USERS, GROUPS.resource: GROUPS}
