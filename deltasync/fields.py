"""What deltasync knows about fields: ELIZA's fields per kind and Graph's user properties.

Two catalogues, plain data:

- :data:`ELIZA_FIELDS`: for each kind of ELIZA object, each field the sync reads or writes,
  with its default Graph source, whether the administrator may map it (``reserved``), whether
  ELIZA requires it, whether the sync's own logic sets it (``planner``) and whether ELIZA accepts
  null. The config checker, the mapping defaults and the planner all read it, so a field's
  rules are written down once. The name constants below are the fields the planner and the
  engine use by name.
- :data:`GRAPH_USER_PROPERTIES`: the Graph v1.0 ``user`` properties deltasync knows the type
  of, used by the filter, the mapping and ``$select``.

The vocabulary is ELIZA's where ELIZA spells it: the person kind is ``Mitarbeitende`` there and
its YAML section is ``field_mapping.mitarbeitende``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final, Literal

from deltasync.models import Kind

__all__ = [
    "ALWAYS_SELECTED",
    "ANSTELLUNGSART",
    "AUSTRITTSDATUM",
    "BIS",
    "EINTRITTSDATUM",
    "ELIZA_FIELDS",
    "EMAIL",
    "EMPLOYMENT_DEFAULT",
    "EMPLOYMENT_FORMER",
    "FIRST_NAME",
    "GRAPH_USER_PROPERTIES",
    "GROUPS",
    "ID",
    "IS_ACTIVE",
    "IS_SUPERUSER",
    "LAST_NAME",
    "MANAGER",
    "MANAGER_PROPERTY",
    "MAPPED_KINDS",
    "MAPPING_SECTIONS",
    "MEMBER",
    "NACHNAME",
    "ORGUNIT",
    "ORGUNIT_PROPERTY",
    "PERSON_USER",
    "REMOTE_KEY",
    "RESERVED_FIELDS",
    "USERNAME",
    "VON",
    "VORNAME",
    "FieldSpec",
    "PropType",
    "blank_when_null",
    "default_mapping",
    "property_name_problem",
    "required_fields",
    "reserved_fields",
    "unknown_properties",
]

# --------------------------------------------------------------------------------------------
# ELIZA field names the sync uses by name

ID: Final = "id"
REMOTE_KEY: Final = "remote_key"
EMAIL: Final = "email"

USERNAME: Final = "username"
FIRST_NAME: Final = "first_name"
LAST_NAME: Final = "last_name"
IS_ACTIVE: Final = "is_active"
IS_SUPERUSER: Final = "is_superuser"
GROUPS: Final = "groups"

VORNAME: Final = "vorname"
NACHNAME: Final = "nachname"
PERSON_USER: Final = "user"  # the person's linked ELIZA user
MANAGER: Final = "vorgesetzter"  # the manager's person id
ANSTELLUNGSART: Final = "anstellungsart"
EINTRITTSDATUM: Final = "eintrittsdatum"
AUSTRITTSDATUM: Final = "austrittsdatum"

MEMBER: Final = "mitarbeiter"  # the membership's person id
ORGUNIT: Final = "orgunit"
VON: Final = "von"
BIS: Final = "bis"

#: ``anstellungsart`` of a person who left, and ELIZA's default (restored on reactivation).
EMPLOYMENT_FORMER: Final = "ehemalig"
EMPLOYMENT_DEFAULT: Final = "intern"


# --------------------------------------------------------------------------------------------
# The ELIZA field table


@dataclass(frozen=True)
class FieldSpec:
    """One ELIZA field and the rules the sync keeps for it.

    ``source`` is the expression of the default mapping (None: not mapped by default);
    ``reserved`` says why the field cannot be mapped (None: it can); ``planner`` marks a
    field the sync's own logic sets (scope, deprovisioning, links, org units).
    """

    name: str
    source: str | None = None
    reserved: str | None = None
    required: bool = False
    planner: bool = False
    nullable: bool = True


_ID_REASON: Final = "is ELIZA's own id and cannot be mapped"
_REMOTE_KEY_REASON: Final = (
    "is always the Entra object id, set by deltasync itself; it cannot be mapped"
)


def _table(*specs: FieldSpec) -> Mapping[str, FieldSpec]:
    return {spec.name: spec for spec in specs}


ELIZA_FIELDS: Final[Mapping[Kind, Mapping[str, FieldSpec]]] = {
    Kind.USER: _table(
        FieldSpec(ID, reserved=_ID_REASON, nullable=False),
        FieldSpec(USERNAME, "userPrincipalName", required=True, nullable=False),
        FieldSpec(EMAIL, "mail"),
        FieldSpec(FIRST_NAME, "givenName", nullable=False),
        FieldSpec(LAST_NAME, "surname", nullable=False),
        FieldSpec(REMOTE_KEY, reserved=_REMOTE_KEY_REASON, planner=True),
        FieldSpec(
            IS_ACTIVE,
            reserved=(
                "follows the Entra account state (see deprovisioning), set by deltasync "
                "itself; it cannot be mapped"
            ),
            planner=True,
            nullable=False,
        ),
        FieldSpec(
            GROUPS,
            reserved=(
                "is managed by deltasync (groups.assign_to_group, org units) and a mapping "
                "would replace every group of the user; it cannot be mapped"
            ),
            planner=True,
            nullable=False,
        ),
    ),
    Kind.PERSON: _table(
        FieldSpec(ID, reserved=_ID_REASON, nullable=False),
        FieldSpec(VORNAME, "givenName", required=True, nullable=False),
        FieldSpec(NACHNAME, "surname", required=True, nullable=False),
        FieldSpec(EMAIL, "mail"),
        FieldSpec("telefon", "mobilePhone"),
        FieldSpec("position", "jobTitle"),
        FieldSpec("abteilung", "department"),
        FieldSpec(EINTRITTSDATUM, "employeeHireDate | date"),
        FieldSpec(ANSTELLUNGSART, planner=True, nullable=False),  # set on deprovisioning
        FieldSpec(AUSTRITTSDATUM, planner=True),  # set on deprovisioning
        FieldSpec("kurzzeichen"),
        # opt-in ``vorgesetzter: manager``: the planner turns the manager's Entra id into
        # the manager's linked person
        FieldSpec(MANAGER),
        FieldSpec(REMOTE_KEY, reserved=_REMOTE_KEY_REASON, planner=True),
        FieldSpec(
            PERSON_USER,
            reserved="is the linked ELIZA user, set by deltasync itself; it cannot be mapped",
            planner=True,
        ),
    ),
    # No field_mapping section: the planner sets every membership field.
    Kind.MEMBERSHIP: _table(
        FieldSpec(ID, nullable=False),
        FieldSpec(MEMBER, required=True, planner=True, nullable=False),
        FieldSpec(ORGUNIT, required=True, planner=True, nullable=False),
        FieldSpec(VON, planner=True),
        FieldSpec(BIS, planner=True),  # null = open-ended; the sync ends a membership by bis
        FieldSpec("funktion"),
    ),
}

#: The kinds the administrator maps, and their section under ``field_mapping``.
MAPPING_SECTIONS: Final[Mapping[Kind, str]] = {Kind.USER: "user", Kind.PERSON: "mitarbeitende"}
MAPPED_KINDS: Final = tuple(MAPPING_SECTIONS)


def default_mapping(kind: Kind) -> dict[str, str]:
    """The default mapping of a kind: ELIZA field → Graph expression."""
    return {
        name: spec.source for name, spec in ELIZA_FIELDS[kind].items() if spec.source is not None
    }


def reserved_fields(kind: Kind) -> Mapping[str, str]:
    """The fields of a kind that cannot be mapped, each with the reason."""
    return {
        name: spec.reserved
        for name, spec in ELIZA_FIELDS[kind].items()
        if spec.reserved is not None
    }


def required_fields(kind: Kind) -> frozenset[str]:
    """The mapped fields ELIZA requires: a mapping cannot remove them."""
    return frozenset(
        name
        for name, spec in ELIZA_FIELDS[kind].items()
        if spec.required and spec.reserved is None and not spec.planner
    )


def blank_when_null(kind: Kind) -> tuple[str, ...]:
    """Mapped, optional fields ELIZA stores as ``""`` rather than null (the user's names)."""
    return tuple(
        name
        for name, spec in ELIZA_FIELDS[kind].items()
        if not spec.nullable and not spec.required and spec.reserved is None and not spec.planner
    )


#: Every field a mapping may never set, whatever the kind.
RESERVED_FIELDS: Final = frozenset(name for kind in MAPPED_KINDS for name in reserved_fields(kind))


# --------------------------------------------------------------------------------------------
# The Graph user property catalogue

PropType = Literal["string", "bool", "datetime", "strings", "complex", "complexes"]


def _typed(prop_type: PropType, names: str) -> dict[str, PropType]:
    return dict.fromkeys(names.split(), prop_type)


#: The Graph v1.0 ``user`` properties deltasync knows the type of. Used to catch case typos
#: (``Mail``) and type mistakes (``accountEnabled eq 'true'``) at load time; any other
#: camelCase name (extension attributes, newer properties) is accepted unchecked.
GRAPH_USER_PROPERTIES: Final[Mapping[str, PropType]] = {
    **_typed(
        "string",
        "aboutMe ageGroup city companyName consentProvidedForMinor country creationType "
        "department displayName employeeId employeeType externalUserState faxNumber "
        "givenName id jobTitle legalAgeGroupClassification mail mailNickname manager "
        "mobilePhone mySite officeLocation onPremisesDistinguishedName onPremisesDomainName "
        "onPremisesImmutableId onPremisesSamAccountName onPremisesSecurityIdentifier "
        "onPremisesUserPrincipalName passwordPolicies postalCode preferredDataLocation "
        "preferredLanguage preferredName securityIdentifier state streetAddress surname "
        "usageLocation userPrincipalName userType",
    ),
    **_typed("bool", "accountEnabled onPremisesSyncEnabled showInAddressList"),
    **_typed(
        "datetime",
        "birthday createdDateTime deletedDateTime employeeHireDate employeeLeaveDateTime "
        "externalUserStateChangeDateTime hireDate lastPasswordChangeDateTime "
        "onPremisesLastSyncDateTime refreshTokensValidFromDateTime "
        "signInSessionsValidFromDateTime",
    ),
    **_typed(
        "strings",
        "businessPhones imAddresses interests otherMails pastProjects proxyAddresses "
        "responsibilities schools skills",
    ),
    **_typed(
        "complex",
        "authorizationInfo customSecurityAttributes employeeOrgData mailboxSettings "
        "onPremisesExtensionAttributes passwordProfile signInActivity",
    ),
    **_typed(
        "complexes",
        "assignedLicenses assignedPlans identities licenseAssignmentStates "
        "onPremisesProvisioningErrors provisionedPlans",
    ),
}

#: Graph properties the sync reads whatever the mapping: matching, scope, labels, and
#: ``companyName`` so that toggling org unit sync never forces a full round.
ALWAYS_SELECTED: Final = (
    "id",
    "userPrincipalName",
    "mail",
    "proxyAddresses",
    "accountEnabled",
    "displayName",
    "companyName",
)
ORGUNIT_PROPERTY: Final = "companyName"
MANAGER_PROPERTY: Final = "manager"

_NAME_RE: Final = re.compile(r"[a-z][A-Za-z0-9_]*\Z")
_NAME_MAX: Final = 120
_BY_FOLDED: Final = {name.casefold(): name for name in GRAPH_USER_PROPERTIES}


def unknown_properties(names: Iterable[str]) -> list[str]:
    """The names of ``names`` the catalogue does not know, in order, extension attributes
    (``extension_<appId>_…``) aside: typos, or properties newer than the catalogue."""
    return [
        n
        for n in dict.fromkeys(names)
        if n not in GRAPH_USER_PROPERTIES and not n.startswith("extension_")
    ]


def property_name_problem(name: str) -> str | None:
    """Why ``name`` is not a plausible Graph property name, or None when it is.

    A Graph property name is camelCase: a lowercase ASCII letter, then letters, digits or
    underscores (``extension_<appId>_costCenter`` included). A name that differs from a known
    property only in case gets a "did you mean" hint.
    """
    if not name:
        return "a property name is empty"
    known = _BY_FOLDED.get(name.casefold())
    if known is not None and known != name:
        return (
            f"{name!r} is not a Graph property (names are case-sensitive: did you mean {known!r}?)"
        )
    if len(name) > _NAME_MAX:
        return f"{name[:20]!r}… is too long for a Graph property name"
    if not _NAME_RE.match(name):
        return (
            f"{name!r} is not a Graph property name (expected camelCase: a lowercase letter, "
            "then letters, digits or underscores, like accountEnabled)"
        )
    return None
