"""field_mapping expressions: from a user's Graph JSON to the values ELIZA receives."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from deltasync.errors import ConfigError, exit_code_for
from deltasync.fields import (
    ELIZA_FIELDS,
    blank_when_null,
    default_mapping,
    required_fields,
    reserved_fields,
)
from deltasync.mapping import (
    DEFAULT_PERSON_MAPPING,
    DEFAULT_USER_MAPPING,
    RESERVED_FIELDS,
    Expr,
    ExpressionError,
    compile_expr,
    initials,
    merge_mapping,
    primary_smtp,
)
from deltasync.models import Kind

ZURICH = ZoneInfo("Europe/Zurich")

MAX: dict[str, Any] = {
    "id": "0f1e2d3c-0000-4000-8000-000000000001",
    "accountEnabled": True,
    "userPrincipalName": "Max.Muster@Firma.ch",
    "mail": "Max.Muster@Firma.ch",
    "givenName": "Max",
    "surname": "Muster",
    "displayName": "  Max Muster  ",
    "jobTitle": "Projektleiter",
    "department": None,
    "employeeHireDate": "2024-03-31T22:00:00Z",
    "proxyAddresses": ["smtp:mm@firma.ch", "SMTP:Max.Muster@Firma.ch", "SIP:max@firma.ch"],
    "businessPhones": ["+41 44 000 00 00", "+41 44 000 00 01"],
    "onPremisesExtensionAttributes": {"extensionAttribute1": "K-42"},
    "extension_abc_level": 3,
}


EVALUATES: list[tuple[str, dict[str, Any], Any]] = [
    # plain properties: the value as Graph sends it
    ("mail", MAX, "Max.Muster@Firma.ch"),
    ("jobTitle", MAX, "Projektleiter"),
    ("department", MAX, None),  # null
    ("officeLocation", MAX, None),  # missing key
    ("accountEnabled", MAX, True),  # booleans pass through
    ("proxyAddresses", MAX, MAX["proxyAddresses"]),  # lists pass through
    ("extension_abc_level", MAX, 3),
    ("displayName", MAX, "  Max Muster  "),  # no filter, no change
    ("  mail  ", MAX, "Max.Muster@Firma.ch"),
    ("onPremisesExtensionAttributes/extensionAttribute1", MAX, "K-42"),
    ("onPremisesExtensionAttributes/extensionAttribute2", MAX, None),
    ("onPremisesExtensionAttributes/extensionAttribute1", {}, None),
    # constants
    ("'intern'", MAX, "intern"),
    ('"intern"', MAX, "intern"),
    ("''", MAX, ""),
    ("'O''Brien'", MAX, "O'Brien"),
    ('"say ""hi"""', MAX, 'say "hi"'),
    ("'a | b'", MAX, "a | b"),  # a pipe inside quotes is text
    ("'{givenName}'", MAX, "{givenName}"),  # braces inside quotes are text
    ("'  spaced  '", MAX, "  spaced  "),
    ("'intern' | upper", MAX, "INTERN"),
    ("  'intern'  |  upper  ", MAX, "INTERN"),
    # templates
    ("{givenName} {surname}", MAX, "Max Muster"),
    ("{givenName}.{surname}@firma.ch", MAX, "Max.Muster@firma.ch"),
    ("{ givenName }", MAX, "Max"),
    ("{surname}, {givenName}", MAX, "Muster, Max"),
    ("{givenName} {department}", MAX, "Max"),  # null renders empty, result stripped
    ("{department} {givenName}", MAX, "Max"),
    ("{givenName} {middleName} {surname}", MAX, "Max Muster"),  # no double space
    ("{givenName}  {middleName}  {surname}", MAX, "Max  Muster"),
    ("{department} {officeLocation}", MAX, None),  # every placeholder null
    ("{department}", MAX, None),
    ("Team {department}", MAX, None),
    ("{accountEnabled}/{extension_abc_level}", MAX, "true/3"),
    ("{businessPhones}", MAX, "+41 44 000 00 00, +41 44 000 00 01"),
    ("{onPremisesExtensionAttributes/extensionAttribute1}-{surname}", MAX, "K-42-Muster"),
    ("{{literal}} {givenName}", MAX, "{literal} Max"),
    ("{{}}", MAX, "{}"),  # no placeholder: a constant
    ("{displayName}", MAX, "Max Muster"),  # templates strip
    # filters
    ("mail | lower", MAX, "max.muster@firma.ch"),
    ("mail | upper", MAX, "MAX.MUSTER@FIRMA.CH"),
    ("displayName | trim", MAX, "Max Muster"),
    ("givenName | first:1", MAX, "M"),
    ("givenName | first:1 | upper", MAX, "M"),
    ("givenName | lower | first:2", MAX, "ma"),
    ("givenName | first:50", MAX, "Max"),
    ("givenName|first:2|upper", MAX, "MA"),
    ("givenName | first : 2", MAX, "Ma"),
    ("givenName | first:01", MAX, "M"),
    ("{givenName} {surname} | initials", MAX, "MM"),
    ("displayName | initials", MAX, "MM"),
    ("employeeHireDate | date", MAX, "2024-04-01"),
    ("proxyAddresses | primary_smtp", MAX, "Max.Muster@Firma.ch"),
    ("proxyAddresses | primary_smtp | lower", MAX, "max.muster@firma.ch"),
    ("{givenName}.{surname}@firma.ch | lower", MAX, "max.muster@firma.ch"),
    # filters on None give None
    ("department | lower", MAX, None),
    ("department | first:1 | upper", MAX, None),
    ("officeLocation | date", MAX, None),
    ("otherMails | primary_smtp", MAX, None),
    ("{department} | initials", MAX, None),
    # lists map item-wise through the text filters; non-text passes through
    ("proxyAddresses | lower", MAX, [a.lower() for a in MAX["proxyAddresses"]]),
    ("businessPhones | first:3", MAX, ["+41", "+41"]),
    ("accountEnabled | upper", MAX, True),
    ("extension_abc_level | first:1", MAX, 3),
    (
        "extension_abc_dates | date",
        {"extension_abc_dates": ["2024-01-01T23:30:00Z"]},
        ["2024-01-02"],
    ),
]


@pytest.mark.parametrize(("text", "data", "expected"), EVALUATES)
def test_evaluate(text: str, data: dict[str, Any], expected: Any) -> None:
    assert compile_expr(text).evaluate(data, ZURICH) == expected


DATES: list[tuple[Any, str, str | None]] = [
    ("2024-03-31T22:00:00Z", "Europe/Zurich", "2024-04-01"),  # the interface.md example
    ("2024-03-31T21:59:59Z", "Europe/Zurich", "2024-03-31"),
    ("2024-01-31T23:00:00Z", "Europe/Zurich", "2024-02-01"),  # winter: UTC+1
    ("2024-01-31T22:59:59Z", "Europe/Zurich", "2024-01-31"),
    ("2024-03-31T22:00:00Z", "UTC", "2024-03-31"),
    ("2024-03-31T22:00:00Z", "America/New_York", "2024-03-31"),
    ("2024-03-31T22:00:00.0000000Z", "Europe/Zurich", "2024-04-01"),  # Graph's 7 digits
    ("2024-03-31T22:00:00+00:00", "Europe/Zurich", "2024-04-01"),
    ("2024-04-01T00:30:00+02:00", "UTC", "2024-03-31"),
    ("2024-03-31T22:00:00", "Europe/Zurich", "2024-04-01"),  # naive: UTC, like Graph
    ("2024-04-01", "Europe/Zurich", "2024-04-01"),  # a plain date stays
    ("2024-04-01", "Pacific/Kiritimati", "2024-04-01"),
    ("  2024-04-01  ", "Europe/Zurich", "2024-04-01"),
    (datetime(2024, 3, 31, 22, tzinfo=UTC), "Europe/Zurich", "2024-04-01"),
    (date(2024, 4, 1), "Europe/Zurich", "2024-04-01"),
    (None, "Europe/Zurich", None),
]


@pytest.mark.parametrize(("value", "zone", "expected"), DATES)
def test_date_filter_gives_the_calendar_date_in_the_configured_zone(
    value: Any, zone: str, expected: str | None
) -> None:
    expr = compile_expr("employeeHireDate | date")

    assert expr.evaluate({"employeeHireDate": value}, ZoneInfo(zone)) == expected


def test_date_filter_on_text_that_is_no_date_raises_for_that_user() -> None:
    expr = compile_expr("jobTitle | date")

    with pytest.raises(ExpressionError) as caught:
        expr.evaluate({"jobTitle": "Projektleiter"}, ZURICH)

    assert str(caught.value) == "date: cannot read 'Projektleiter' as an ISO 8601 date or date-time"


PROPERTIES: list[tuple[str, set[str]]] = [
    ("mail", {"mail"}),
    ("mail | lower", {"mail"}),
    ("'intern'", set()),
    ("'intern' | upper", set()),
    ("{givenName} {surname} | initials", {"givenName", "surname"}),
    ("{givenName} {givenName}", {"givenName"}),
    ("{{literal}}", set()),
    ("onPremisesExtensionAttributes/extensionAttribute1", {"onPremisesExtensionAttributes"}),
    ("{employeeOrgData/costCenter}", {"employeeOrgData"}),
    ("employeeHireDate | date", {"employeeHireDate"}),
]


@pytest.mark.parametrize(("text", "expected"), PROPERTIES)
def test_properties_lists_the_graph_properties_read(text: str, expected: set[str]) -> None:
    assert compile_expr(text).properties == frozenset(expected)


def test_expr_is_a_value_object_keyed_by_its_text() -> None:
    expr = compile_expr("  mail | lower ")

    assert expr.source == "mail | lower"
    assert expr == compile_expr("mail | lower")
    assert expr != compile_expr("mail | upper")
    assert repr(expr) == "Expr(source='mail | lower', properties=frozenset({'mail'}))"
    assert isinstance(expr, Expr)


ERRORS: list[tuple[Any, str]] = [
    # empty
    ("", "empty expression"),
    ("   ", "empty expression"),
    ("| lower", "missing the value before '|' (a property, a 'constant' or a {template})"),
    ("  | lower", "missing the value before '|' (a property, a 'constant' or a {template})"),
    # filters
    ("mail |", "missing filter name after '|' at position 6"),
    ("mail | | lower", "missing filter name after '|' at position 6"),
    ("mail | lower |", "missing filter name after '|' at position 14"),
    (
        "mail | lowr",
        "unknown filter 'lowr' (known: date, first:N, initials, lower, primary_smtp, trim, upper)",
    ),
    (
        "mail | Lower",
        "unknown filter 'Lower' (known: date, first:N, initials, lower, primary_smtp, trim, upper)",
    ),
    (
        "mail | lower()",
        "unknown filter 'lower()' (known: date, first:N, initials, lower, primary_smtp, trim,"
        " upper)",
    ),
    ("mail | first", "filter 'first' needs a count, as in first:1"),
    ("mail | first:", "filter 'first' needs a whole number of characters ≥ 1, found ''"),
    ("mail | first:x", "filter 'first' needs a whole number of characters ≥ 1, found 'x'"),
    ("mail | first:0", "filter 'first' needs a whole number of characters ≥ 1, found '0'"),
    ("mail | first:-1", "filter 'first' needs a whole number of characters ≥ 1, found '-1'"),
    ("mail | first:1.5", "filter 'first' needs a whole number of characters ≥ 1, found '1.5'"),
    ("mail | lower:2", "filter 'lower' takes no argument, found 'lower:2'"),
    ("mail | date:iso", "filter 'date' takes no argument, found 'date:iso'"),
    ("mail | primary_smtp:", "filter 'primary_smtp' takes no argument, found 'primary_smtp:'"),
    # braces
    (
        "{givenName {surname}",
        "unbalanced braces: '{' at position 12 inside the placeholder opened at position 1",
    ),
    ("{givenName", "unbalanced braces: '{' at position 1 is never closed"),
    ("Herr {surname", "unbalanced braces: '{' at position 6 is never closed"),
    ("givenName}", "unbalanced braces: '}' at position 10 has no matching '{'"),
    ("{givenName}} x", "unbalanced braces: '}' at position 12 has no matching '{'"),
    ("  {surname}}", "unbalanced braces: '}' at position 12 has no matching '{'"),
    ("{}", "empty placeholder '{}' at position 1"),
    ("{givenName} { }", "empty placeholder '{}' at position 13"),
    # property names
    (
        "given name",
        "bad property name 'given name': a constant needs quotes ('text'), a template needs"
        " braces ({givenName} {surname})",
    ),
    (
        "Mail",
        "'Mail' is not a Graph property (names are case-sensitive: did you mean 'mail'?)",
    ),
    (
        "{GivenName} {surname}",
        "'GivenName' is not a Graph property (names are case-sensitive: did you mean"
        " 'givenName'?) (in the placeholder at position 1)",
    ),
    (
        "{given name}",
        "'given name' is not a Graph property name (expected camelCase: a lowercase letter,"
        " then letters, digits or underscores, like accountEnabled)"
        " (in the placeholder at position 1)",
    ),
    (
        "job-title",
        "'job-title' is not a Graph property name (expected camelCase: a lowercase letter,"
        " then letters, digits or underscores, like accountEnabled)",
    ),
    (
        "mail.address",
        "'mail.address' is not a Graph property name (expected camelCase: a lowercase letter,"
        " then letters, digits or underscores, like accountEnabled)",
    ),
    ("mail/address", "'mail' has no sub-properties"),
    ("proxyAddresses/0", "'proxyAddresses' has no sub-properties"),
    (
        "onPremisesExtensionAttributes/",
        "'onPremisesExtensionAttributes/' is not a property path (names joined by '/')",
    ),
    (
        "employeeOrgData//costCenter",
        "'employeeOrgData//costCenter' is not a property path (names joined by '/')",
    ),
    # constants
    ("'intern", "unterminated constant: the ' at position 1 is never closed"),
    ('"intern', 'unterminated constant: the " at position 1 is never closed'),
    ("'O'Brien'", "unexpected text after the constant at position 4 (filters follow a '|')"),
    (
        "'intern' 'extern'",
        "unexpected text after the constant at position 10 (filters follow a '|')",
    ),
    ("'intern' upper", "unexpected text after the constant at position 10 (filters follow a '|')"),
    # not text at all (YAML gave a number or a list)
    (5, "expected an expression (text), found int 5"),
    (True, "expected an expression (text), found bool True"),
    (["mail"], "expected an expression (text), found list ['mail']"),
]


@pytest.mark.parametrize(("text", "message"), ERRORS)
def test_invalid_expressions_say_what_is_wrong(text: Any, message: str) -> None:
    with pytest.raises(ExpressionError) as caught:
        compile_expr(text)

    assert str(caught.value) == message
    assert caught.value.problems == [message]


def test_expression_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="empty expression"):
        compile_expr("")


# --------------------------------------------------------------------------------------------
# Defaults and merge


def test_default_user_mapping_is_the_documented_one() -> None:
    assert DEFAULT_USER_MAPPING == {
        "username": "userPrincipalName",
        "email": "mail",
        "first_name": "givenName",
        "last_name": "surname",
    }


def test_default_person_mapping_is_the_documented_one() -> None:
    assert DEFAULT_PERSON_MAPPING == {
        "vorname": "givenName",
        "nachname": "surname",
        "email": "mail",
        "telefon": "mobilePhone",
        "position": "jobTitle",
        "abteilung": "department",
        "eintrittsdatum": "employeeHireDate | date",
    }


def test_defaults_compile_and_compute_the_documented_values() -> None:
    user = merge_mapping(DEFAULT_USER_MAPPING, {})
    person = merge_mapping(DEFAULT_PERSON_MAPPING, {})

    assert {k: e.evaluate(MAX, ZURICH) for k, e in user.items()} == {
        "username": "Max.Muster@Firma.ch",
        "email": "Max.Muster@Firma.ch",
        "first_name": "Max",
        "last_name": "Muster",
    }
    assert {k: e.evaluate(MAX, ZURICH) for k, e in person.items()} == {
        "vorname": "Max",
        "nachname": "Muster",
        "email": "Max.Muster@Firma.ch",
        "telefon": None,
        "position": "Projektleiter",
        "abteilung": None,
        "eintrittsdatum": "2024-04-01",
    }


def test_the_seed_configs_field_mapping_loads_unchanged() -> None:
    seed = {"telefon": "mobilePhone", "position": "jobTitle", "abteilung": "department"}

    merged = merge_mapping(DEFAULT_PERSON_MAPPING, seed)

    assert {k: e.source for k, e in merged.items()} == DEFAULT_PERSON_MAPPING


def test_overrides_replace_add_and_remove_fields_in_order() -> None:
    merged = merge_mapping(
        DEFAULT_PERSON_MAPPING,
        {
            "telefon": None,  # removed
            "position": "jobTitle | trim",  # replaced
            "kurzzeichen": "{givenName} {surname} | initials",  # added
            "anstellungsart": "'intern'",  # added constant
            "not_mapped_anyway": None,  # removing an absent field is fine
        },
    )

    assert list(merged) == [
        "vorname",
        "nachname",
        "email",
        "position",
        "abteilung",
        "eintrittsdatum",
        "kurzzeichen",
        "anstellungsart",
    ]
    assert merged["position"].source == "jobTitle | trim"
    assert merged["kurzzeichen"].evaluate(MAX, ZURICH) == "MM"
    assert merged["anstellungsart"].evaluate(MAX, ZURICH) == "intern"
    assert all(isinstance(e, Expr) for e in merged.values())


def test_merge_does_not_change_the_defaults() -> None:
    before = dict(DEFAULT_USER_MAPPING)

    merge_mapping(DEFAULT_USER_MAPPING, {"email": None, "username": "mail"})

    assert before == DEFAULT_USER_MAPPING


def test_merge_prefixes_the_field_name() -> None:
    with pytest.raises(ExpressionError) as caught:
        merge_mapping(DEFAULT_PERSON_MAPPING, {"position": "jobTitle | lowr"})

    assert str(caught.value) == (
        "position: unknown filter 'lowr' "
        "(known: date, first:N, initials, lower, primary_smtp, trim, upper)"
    )


def test_merge_reports_every_bad_field_at_once() -> None:
    with pytest.raises(ExpressionError) as caught:
        merge_mapping(
            DEFAULT_USER_MAPPING,
            {
                "remote_key": "mail",
                "first_name": "{givenName",
                "email": None,
                "last_name": "surname | first:x",
                "is_active": None,
            },
        )

    assert caught.value.problems == [
        "remote_key: is set by deltasync itself and cannot be mapped",
        "is_active: is set by deltasync itself and cannot be mapped",
        "first_name: unbalanced braces: '{' at position 1 is never closed",
        "last_name: filter 'first' needs a whole number of characters ≥ 1, found 'x'",
    ]
    assert str(caught.value) == "; ".join(caught.value.problems)


@pytest.mark.parametrize("field_name", sorted(RESERVED_FIELDS))
def test_fields_the_planner_owns_cannot_be_mapped(field_name: str) -> None:
    with pytest.raises(ExpressionError, match=f"^{field_name}: is set by deltasync itself"):
        merge_mapping(DEFAULT_PERSON_MAPPING, {field_name: "id"})


def test_reserved_fields_are_the_planners() -> None:
    assert frozenset({"remote_key", "is_active", "user", "groups", "id"}) == RESERVED_FIELDS


def test_a_non_text_override_is_reported_with_its_field() -> None:
    overrides: dict[str, Any] = {"position": 42}

    with pytest.raises(ExpressionError) as caught:
        merge_mapping(DEFAULT_PERSON_MAPPING, overrides)

    assert caught.value.problems == ["position: expected an expression (text), found int 42"]


# --------------------------------------------------------------------------------------------
# Helpers reused by matching


@pytest.mark.parametrize(
    ("addresses", "expected"),
    [
        (["smtp:alias@firma.ch", "SMTP:Max.Muster@Firma.ch"], "Max.Muster@Firma.ch"),
        (["SMTP:first@firma.ch", "SMTP:second@firma.ch"], "first@firma.ch"),
        (("SMTP:tuple@firma.ch",), "tuple@firma.ch"),
        (["smtp:alias@firma.ch", "Smtp:odd@firma.ch"], None),  # only uppercase marks primary
        (["SIP:max@firma.ch", "X500:/o=Firma/cn=max"], None),
        (["SMTP:", "SMTP:real@firma.ch"], "real@firma.ch"),
        (["SMTP: spaced@firma.ch "], "spaced@firma.ch"),
        ([None, 3, "SMTP:ok@firma.ch"], "ok@firma.ch"),
        ("SMTP:single@firma.ch", "single@firma.ch"),
        ("smtp:single@firma.ch", None),
        ([], None),
        (None, None),
        (True, None),
    ],
)
def test_primary_smtp(addresses: Any, expected: str | None) -> None:
    assert primary_smtp(addresses) == expected


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Max Muster", "MM"),
        ("max muster", "MM"),
        ("Max muster", "MM"),
        ("Anna-Lena von Arx", "ALA"),
        ("Hans-Peter Müller", "HPM"),
        ("Ludwig van Beethoven", "LB"),
        ("Vincent Van Gogh", "VVG"),  # a capitalised particle counts
        ("von Arx", "A"),
        ("von", "V"),  # nothing but a particle: it counts
        ("de la Cruz", "C"),
        ("Élodie Ãlvarez", "ÉÃ"),
        ("Zoë O'Brien", "ZO"),
        ("(Max) Muster", "MM"),
        ("Max  Muster\tJr", "MMJ"),
        ("Anna – Maria", "AM"),
        ("Max 2nd", "MN"),
        ("123", ""),
        ("", ""),
        ("   ", ""),
    ],
)
def test_initials(name: str, expected: str) -> None:
    assert initials(name) == expected


def test_expression_error_is_a_config_error() -> None:
    with pytest.raises(ExpressionError) as caught:
        compile_expr("mail | shout")
    assert isinstance(caught.value, ConfigError)
    assert isinstance(caught.value, ValueError)
    assert exit_code_for(caught.value) == 2
    assert caught.value.problems == [str(caught.value)]


def test_field_table_is_the_home_of_the_mapping_rules() -> None:
    assert default_mapping(Kind.USER) == DEFAULT_USER_MAPPING
    assert default_mapping(Kind.PERSON) == DEFAULT_PERSON_MAPPING
    assert {"id", "remote_key", "is_active", "user", "groups"} == RESERVED_FIELDS
    assert set(reserved_fields(Kind.USER)) == {"id", "remote_key", "is_active", "groups"}
    assert set(reserved_fields(Kind.PERSON)) == {"id", "remote_key", "user"}
    assert required_fields(Kind.USER) == {"username"}
    assert required_fields(Kind.PERSON) == {"vorname", "nachname"}
    assert blank_when_null(Kind.USER) == ("first_name", "last_name")
    planner_owned = {n for n, f in ELIZA_FIELDS[Kind.PERSON].items() if f.planner}
    assert {"anstellungsart", "austrittsdatum", "remote_key", "user"} <= planner_owned
    assert all(f.planner for f in ELIZA_FIELDS[Kind.MEMBERSHIP].values() if f.required)
