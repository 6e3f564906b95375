"""advanced.user_filter: the OData $filter deltasync evaluates over mirrored Graph JSON."""

from __future__ import annotations

from typing import Any

import pytest

from deltasync.errors import ConfigError, exit_code_for
from deltasync.filter import (
    GRAPH_USER_PROPERTIES,
    Filter,
    FilterError,
    parse_filter,
    property_name_problem,
)

MAX: dict[str, Any] = {
    "id": "0f1e2d3c-0000-4000-8000-000000000001",
    "accountEnabled": True,
    "userPrincipalName": "Max.Muster@firma.ch",
    "mail": "max.muster@firma.ch",
    "givenName": "Max",
    "surname": "Muster",
    "department": "IT",
    "companyName": "Firma AG",
    "employeeHireDate": "2024-03-31T22:00:00Z",
    "proxyAddresses": ["SMTP:max.muster@firma.ch", "smtp:mm@firma.ch", "SIP:max@firma.ch"],
    "businessPhones": [],
    "onPremisesExtensionAttributes": {"extensionAttribute1": "HR-42"},
    "identities": [{"signInType": "userPrincipalName", "issuer": "firma.onmicrosoft.com"}],
    "extension_abc_level": 3,
    "jobTitle": None,
}


def test_seed_default_keeps_enabled_users_only() -> None:
    seed = parse_filter("accountEnabled eq true")

    assert seed.matches({"accountEnabled": True})
    assert not seed.matches({"accountEnabled": False})
    assert not seed.matches({})  # not read yet: null is not true
    assert seed.properties == frozenset({"accountEnabled"})


MATCHES: list[tuple[str, dict[str, Any], bool]] = [
    # comparisons, case-insensitive on text
    ("mail eq 'MAX.MUSTER@FIRMA.CH'", MAX, True),
    ("mail ne 'max.muster@firma.ch'", MAX, False),
    ("department eq 'it'", MAX, True),
    ("department eq 'HR'", MAX, False),
    ("surname gt 'a'", MAX, True),
    ("surname gt 'N'", MAX, False),
    ("surname lt 'n'", MAX, True),
    ("surname ge 'muster'", MAX, True),
    ("surname le 'MUSTER'", MAX, True),
    ("surname lt 'muster'", MAX, False),
    ("accountEnabled eq false", MAX, False),
    ("accountEnabled ne false", MAX, True),
    ("extension_abc_level ge 3", MAX, True),
    ("extension_abc_level gt 3", MAX, False),
    ("extension_abc_level eq -3", MAX, False),
    ("extension_abc_level eq '3'", MAX, False),  # unknown property: types differ, not equal
    ("'IT' eq department", MAX, True),  # literal on the left
    # null semantics
    ("jobTitle eq null", MAX, True),  # None
    ("officeLocation eq null", MAX, True),  # missing key
    ("mail eq null", MAX, False),
    ("jobTitle ne null", MAX, False),
    ("mail ne null", MAX, True),
    ("jobTitle eq 'x'", MAX, False),
    ("jobTitle ne 'x'", MAX, True),
    ("jobTitle lt 'x'", MAX, False),
    ("jobTitle ge 'x'", MAX, False),
    ("startswith(jobTitle, 'x')", MAX, False),
    ("not startswith(jobTitle, 'x')", MAX, True),
    ("contains(officeLocation, '')", MAX, False),
    # functions
    ("startswith(mail, 'MAX.')", MAX, True),
    ("startswith(mail, 'muster')", MAX, False),
    ("endswith(userPrincipalName, '@FIRMA.ch')", MAX, True),
    ("endswith(userPrincipalName, '@external.firma.ch')", MAX, False),
    ("contains(companyName, 'ma a')", MAX, True),
    ("contains(companyName, 'GmbH')", MAX, False),
    ("startswith('Firma AG', companyName)", MAX, True),
    # in
    ("department in ('hr', 'it')", MAX, True),
    ("department in ('hr', 'sales')", MAX, False),
    ("jobTitle in ('x', null)", MAX, True),
    ("extension_abc_level in (1, 2, 3)", MAX, True),
    # logic and precedence: or < and < not < comparison
    ("accountEnabled eq true and department eq 'IT'", MAX, True),
    ("accountEnabled eq true and department eq 'HR'", MAX, False),
    ("department eq 'HR' or department eq 'IT'", MAX, True),
    ("department eq 'HR' or department eq 'IT' and accountEnabled eq false", MAX, False),
    ("(department eq 'HR' or department eq 'IT') and accountEnabled eq true", MAX, True),
    ("department eq 'IT' or department eq 'HR' and accountEnabled eq false", MAX, True),
    ("not department eq 'HR'", MAX, True),
    ("not department eq 'IT' or accountEnabled eq true", MAX, True),
    ("not (department eq 'IT' or accountEnabled eq false)", MAX, False),
    ("not not accountEnabled eq true", MAX, True),
    ("((accountEnabled eq true))", MAX, True),
    # bare booleans
    ("accountEnabled", MAX, True),
    ("accountEnabled", {"accountEnabled": False}, False),
    ("accountEnabled", {}, False),
    ("not accountEnabled", {"accountEnabled": False}, True),
    ("true", MAX, True),
    ("false or accountEnabled", MAX, True),
    # lambdas over string collections
    ("proxyAddresses/any(p: startswith(p, 'smtp:'))", MAX, True),
    ("proxyAddresses/any(p: p eq 'smtp:MM@FIRMA.CH')", MAX, True),
    ("proxyAddresses/any(p: endswith(p, '@other.ch'))", MAX, False),
    ("proxyAddresses/all(p: endswith(p, '@firma.ch'))", MAX, True),
    ("proxyAddresses/all(p: startswith(p, 'smtp:'))", MAX, False),
    ("proxyAddresses/any()", MAX, True),
    ("businessPhones/any()", MAX, False),
    ("businessPhones/all(p: p eq 'x')", MAX, True),  # vacuously true
    ("otherMails/any(m: m eq 'x')", MAX, False),  # missing collection = empty
    ("otherMails/all(m: m eq 'x')", MAX, True),
    ("not proxyAddresses/any(p: p eq 'x')", MAX, True),
    ("proxyAddresses/any(p: startswith(p, 'sip:') and endswith(p, '@firma.ch'))", MAX, True),
    ("proxyAddresses/any(p: p eq mail)", MAX, False),  # 'SMTP:…' is not the bare mail
    ("proxyAddresses/any(p: contains(p, 'max') and accountEnabled eq true)", MAX, True),
    ("identities/any(i: i/issuer eq 'FIRMA.onmicrosoft.com')", MAX, True),
    ("extension_abc_tags/any(t: t eq 'x')", {"extension_abc_tags": "x"}, False),  # not a list
    # complex properties
    ("onPremisesExtensionAttributes/extensionAttribute1 eq 'hr-42'", MAX, True),
    ("onPremisesExtensionAttributes/extensionAttribute2 eq null", MAX, True),
    ("onPremisesExtensionAttributes/extensionAttribute1 eq null", {}, True),
    # dates: unquoted OData literals, or quoted ones on a known date property
    ("employeeHireDate ge 2024-01-01", MAX, True),
    ("employeeHireDate lt 2024-03-31T22:00:00Z", MAX, False),
    ("employeeHireDate eq 2024-04-01T00:00:00+02:00", MAX, True),
    ("employeeHireDate gt 2024-03-31T23:59:59.5Z", MAX, False),
    ("employeeHireDate ge '2024-03-31T22:00:00Z'", MAX, True),
    ("employeeHireDate ge 2024-01-01", {"employeeHireDate": None}, False),
    ("employeeHireDate ge 2024-01-01", {"employeeHireDate": "soon"}, False),
    ("extension_abc_start le 2024-01-01", {"extension_abc_start": "2023-12-31"}, True),
    # strings with quotes and odd characters
    ("surname eq 'O''Brien'", {"surname": "o'brien"}, True),
    ("displayName eq 'Müller, Anna (HR)'", {"displayName": "MÜLLER, ANNA (HR)"}, True),
    ("displayName eq ''", {"displayName": ""}, True),
    ("displayName eq ''", {}, False),
    # types never mix silently
    ("extension_abc_flag eq 1", {"extension_abc_flag": True}, False),
    ("extension_abc_flag eq true", {"extension_abc_flag": 1}, False),
    ("extension_abc_flag gt false", {"extension_abc_flag": True}, True),
    ("extension_abc_flag lt 'a'", {"extension_abc_flag": 1}, False),
    ("contains(extension_abc_level, '3')", MAX, False),
    # whitespace is free
    ("  accountEnabled   eq\ttrue\n", MAX, True),
    ("startswith( mail ,'max' )and(department eq'IT')", MAX, True),
]


@pytest.mark.parametrize(("text", "data", "expected"), MATCHES)
def test_matches(text: str, data: dict[str, Any], expected: bool) -> None:
    assert parse_filter(text).matches(data) is expected


PROPERTIES: list[tuple[str, set[str]]] = [
    ("accountEnabled eq true", {"accountEnabled"}),
    ("startswith(mail, 'a') or endswith(userPrincipalName, 'b')", {"mail", "userPrincipalName"}),
    ("proxyAddresses/any(p: startswith(p, 'smtp:'))", {"proxyAddresses"}),
    ("proxyAddresses/any(p: p eq mail)", {"proxyAddresses", "mail"}),
    ("onPremisesExtensionAttributes/extensionAttribute1 eq 'x'", {"onPremisesExtensionAttributes"}),
    ("identities/any(i: i/issuer eq 'x')", {"identities"}),
    ("department in ('a') and not (companyName eq 'b')", {"department", "companyName"}),
    ("true", set()),
]


@pytest.mark.parametrize(("text", "expected"), PROPERTIES)
def test_properties_lists_every_property_read(text: str, expected: set[str]) -> None:
    assert parse_filter(text).properties == frozenset(expected)


def test_a_lambda_variable_is_not_a_property_outside_its_lambda() -> None:
    parsed = parse_filter("proxyAddresses/any(p: p eq 'x') and p eq 'y'")

    assert parsed.properties == frozenset({"proxyAddresses", "p"})
    assert parsed.matches({"proxyAddresses": ["X"], "p": "Y"})
    assert not parsed.matches({"proxyAddresses": ["X"]})


def test_nested_lambdas_see_the_outer_variable() -> None:
    parsed = parse_filter("identities/any(i: proxyAddresses/any(p: endswith(p, i/issuer)))")

    assert parsed.properties == frozenset({"identities", "proxyAddresses"})
    assert parsed.matches(MAX) is False
    assert parsed.matches({**MAX, "identities": [{"issuer": "firma.ch"}]}) is True


def test_filter_is_a_value_object_keyed_by_its_text() -> None:
    parsed = parse_filter("  accountEnabled eq true ")

    assert parsed == parse_filter("accountEnabled eq true")
    assert parsed.source == "accountEnabled eq true"
    assert "_root" not in repr(parsed)
    assert isinstance(parsed, Filter)


ERRORS: list[tuple[str, str]] = [
    # trailing tokens
    (
        "accountEnabled eq true foo",
        "unexpected 'foo' at position 24 in: accountEnabled eq true foo",
    ),
    ("mail eq 'a' 'b'", "unexpected \"'b'\" at position 13 in: mail eq 'a' 'b'"),
    (
        "startswith(mail, 'a') foo",
        "unexpected 'foo' at position 23 in: startswith(mail, 'a') foo",
    ),
    # empty
    ("", "the filter is empty"),
    ("   ", "the filter is empty"),
    # unknown operators and functions
    (
        "mail equals 'x'",
        "unknown operator 'equals' (expected eq, ne, gt, ge, lt, le or in)"
        " at position 6 in: mail equals 'x'",
    ),
    (
        "mail EQ 'x'",
        "unknown operator 'EQ' (operators are lowercase: did you mean 'eq'?)"
        " at position 6 in: mail EQ 'x'",
    ),
    (
        "mail has 'x'",
        "unknown operator 'has' (expected eq, ne, gt, ge, lt, le or in)"
        " at position 6 in: mail has 'x'",
    ),
    (
        "mail eq 'a' AND mail eq 'b'",
        "unexpected 'AND' at position 13 in: mail eq 'a' AND mail eq 'b'",
    ),
    (
        "tolower(mail) eq 'x'",
        "unknown function 'tolower' (known: contains, endswith, startswith)"
        " at position 1 in: tolower(mail) eq 'x'",
    ),
    (
        "any(p: p eq 'x')",
        "'any' follows a collection, as in proxyAddresses/any(a: …)"
        " at position 1 in: any(p: p eq 'x')",
    ),
    (
        "mail == 'x'",
        "unexpected character '=' (compare with eq, ne, gt, ge, lt or le)"
        " at position 6 in: mail == 'x'",
    ),
    (
        "a eq 1 && b eq 2",
        "unexpected character '&' (combine with and) at position 8 in: a eq 1 && b eq 2",
    ),
    ("a eq 1.5", "invalid number '1.'… at position 6 in: a eq 1.5"),
    ("a eq 12ab", "invalid number '12a'… at position 6 in: a eq 12ab"),
    ("a ge 2024-02-30", "invalid date '2024-02-30' at position 6 in: a ge 2024-02-30"),
    ("städt eq 'x'", "unexpected character 'ä' at position 3 in: städt eq 'x'"),
    # strings
    (
        "mail eq 'x",
        "unterminated string (a quote inside a string is written '') at position 9 in: mail eq 'x",
    ),
    (
        "surname eq 'O'Brien'",
        "unterminated string (a quote inside a string is written '')"
        " at position 20 in: surname eq 'O'Brien'",
    ),
    (
        'mail eq "x"',
        "unexpected character '\"' (strings use single quotes: 'text')"
        ' at position 9 in: mail eq "x"',
    ),
    # parentheses
    (
        "(accountEnabled eq true",
        "unbalanced parentheses: '(' is never closed at position 1 in: (accountEnabled eq true",
    ),
    (
        "accountEnabled eq true)",
        "unbalanced parentheses: ')' without a matching '(' at position 23"
        " in: accountEnabled eq true)",
    ),
    (
        "(a eq 1 foo)",
        "unexpected 'foo' (expected 'and', 'or' or ')') at position 9 in: (a eq 1 foo)",
    ),
    ("()", "unbalanced parentheses: ')' without a matching '(' at position 2 in: ()"),
    (
        "startswith(mail, 'a'",
        "unbalanced parentheses: the '(' of startswith() is never closed"
        " at position 11 in: startswith(mail, 'a'",
    ),
    (
        "startswith(mail 'a')",
        "unexpected \"'a'\" (expected ')' to close startswith()) at position 17"
        " in: startswith(mail 'a')",
    ),
    (
        "proxyAddresses/any(p: p eq 'x'",
        "unbalanced parentheses: the '(' of any() is never closed"
        " at position 19 in: proxyAddresses/any(p: p eq 'x'",
    ),
    (
        "mail in ('a', 'b'",
        "unbalanced parentheses: the '(' of the 'in' list is never closed"
        " at position 9 in: mail in ('a', 'b'",
    ),
    # incomplete expressions
    (
        "mail eq",
        "expected a property or a value, found the end of the filter at position 8 in: mail eq",
    ),
    ("not", "expected a property or a value, found the end of the filter at position 4 in: not"),
    (
        "mail eq 'a' and",
        "expected a property or a value, found the end of the filter at position 16"
        " in: mail eq 'a' and",
    ),
    (
        "and mail eq 'a'",
        "expected a property or a value, found 'and' at position 1 in: and mail eq 'a'",
    ),
    (
        "mail eq eq 'a'",
        "expected a property or a value, found 'eq' at position 9 in: mail eq eq 'a'",
    ),
    (", mail", "expected a property or a value, found ',' at position 1 in: , mail"),
    # conditions and values in the wrong place
    ("'x'", "expected a condition, found the value \"'x'\" at position 1 in: 'x'"),
    ("42", "expected a condition, found the value '42' at position 1 in: 42"),
    ("null", "expected a condition, found the value 'null' at position 1 in: null"),
    (
        "mail",
        "'mail' is not a condition (compare it, as in mail eq '…') at position 1 in: mail",
    ),
    (
        "startswith(mail, 'a') eq true",
        "expected a property or a value before 'eq', found a condition"
        " at position 1 in: startswith(mail, 'a') eq true",
    ),
    (
        "mail eq (givenName eq 'x')",
        "expected a property or a value after 'eq', found a condition"
        " at position 9 in: mail eq (givenName eq 'x')",
    ),
    (
        "(mail eq 'a') in ('x')",
        "expected a property or a value before 'in', found a condition"
        " at position 1 in: (mail eq 'a') in ('x')",
    ),
    (
        "startswith(mail eq 'a', 'b')",
        "unexpected 'eq' (expected ')' to close startswith()) at position 17"
        " in: startswith(mail eq 'a', 'b')",
    ),
    (
        "startswith(mail)",
        "startswith() takes 2 arguments (a property and a string), found 1"
        " at position 1 in: startswith(mail)",
    ),
    (
        "contains(mail, 'a', 'b')",
        "contains() takes 2 arguments (a property and a string), found 3"
        " at position 1 in: contains(mail, 'a', 'b')",
    ),
    (
        "contains((mail eq 'a'), 'b')",
        "expected a property or a value as an argument of contains(), found a condition"
        " at position 10 in: contains((mail eq 'a'), 'b')",
    ),
    # in lists
    ("mail in ()", "expected a value in the 'in' list, found ')' at position 10 in: mail in ()"),
    ("mail in 'a'", "expected '(' after 'in', found \"'a'\" at position 9 in: mail in 'a'"),
    (
        "mail in ('a', givenName)",
        "expected a value in the 'in' list, found 'givenName' at position 15"
        " in: mail in ('a', givenName)",
    ),
    # property names
    (
        "Mail eq 'x'",
        "'Mail' is not a Graph property (names are case-sensitive: did you mean 'mail'?)"
        " at position 1 in: Mail eq 'x'",
    ),
    (
        "AccountEnabled eq true",
        "'AccountEnabled' is not a Graph property (names are case-sensitive: did you mean"
        " 'accountEnabled'?) at position 1 in: AccountEnabled eq true",
    ),
    (
        "_hidden eq 'x'",
        "'_hidden' is not a Graph property name (expected camelCase: a lowercase letter,"
        " then letters, digits or underscores, like accountEnabled)"
        " at position 1 in: _hidden eq 'x'",
    ),
    (
        "True",
        "'True' is not a Graph property name (expected camelCase: a lowercase letter,"
        " then letters, digits or underscores, like accountEnabled) at position 1 in: True",
    ),
    (
        "mail/address eq 'x'",
        "'mail' has no sub-properties at position 5 in: mail/address eq 'x'",
    ),
    (
        "onPremisesExtensionAttributes/ eq 'x'",
        "expected a property name after '/', found 'eq' at position 32"
        " in: onPremisesExtensionAttributes/ eq 'x'",
    ),
    # lambdas
    (
        "mail/any(p: p eq 'x')",
        "'mail' is not a collection (any() needs one, like proxyAddresses)"
        " at position 1 in: mail/any(p: p eq 'x')",
    ),
    (
        "proxyAddresses/any(eq: eq eq 'x')",
        "expected a variable name in any(a: …), found 'eq' at position 20"
        " in: proxyAddresses/any(eq: eq eq 'x')",
    ),
    (
        "proxyAddresses/any(p p eq 'x')",
        "expected ':' after the variable of any(p: …), found 'p' at position 22"
        " in: proxyAddresses/any(p p eq 'x')",
    ),
    (
        "proxyAddresses/all()",
        "all() needs a condition, as in proxyAddresses/all(a: …) at position 20"
        " in: proxyAddresses/all()",
    ),
    # type mistakes on well-known properties (Graph answers them with 400)
    (
        "accountEnabled eq 'true'",
        "'accountEnabled' is a boolean, compared with text (use true or false)"
        " at position 1 in: accountEnabled eq 'true'",
    ),
    (
        "accountEnabled eq 1",
        "'accountEnabled' is a boolean, compared with a number (use true or false)"
        " at position 1 in: accountEnabled eq 1",
    ),
    (
        "accountEnabled gt false",
        "'accountEnabled' is a boolean (compare it with eq or ne)"
        " at position 16 in: accountEnabled gt false",
    ),
    (
        "'true' eq accountEnabled",
        "'accountEnabled' is a boolean, compared with text (use true or false)"
        " at position 11 in: 'true' eq accountEnabled",
    ),
    (
        "accountEnabled in (true, 'yes')",
        "'accountEnabled' is a boolean, compared with text (use true or false)"
        " at position 1 in: accountEnabled in (true, 'yes')",
    ),
    (
        "employeeId eq 1234",
        "'employeeId' is text, compared with a number (quote it: '…')"
        " at position 1 in: employeeId eq 1234",
    ),
    (
        "mail eq true",
        "'mail' is text, compared with a boolean (quote it: '…') at position 1 in: mail eq true",
    ),
    (
        "employeeHireDate ge 'last year'",
        "'employeeHireDate' is a date, compared with 'last year' (use a date like 2024-01-01"
        " or 2024-01-01T00:00:00Z) at position 1 in: employeeHireDate ge 'last year'",
    ),
    (
        "employeeHireDate ge 2024",
        "'employeeHireDate' is a date, compared with a number (use a date like 2024-01-01"
        " or 2024-01-01T00:00:00Z) at position 1 in: employeeHireDate ge 2024",
    ),
    (
        "proxyAddresses eq 'smtp:x'",
        "'proxyAddresses' is a collection (test its items: proxyAddresses/any(a: a eq '…'))"
        " at position 1 in: proxyAddresses eq 'smtp:x'",
    ),
    (
        "onPremisesExtensionAttributes eq 'x'",
        "'onPremisesExtensionAttributes' has sub-properties (compare one:"
        " onPremisesExtensionAttributes/…) at position 1 in: onPremisesExtensionAttributes eq 'x'",
    ),
    (
        "startswith(proxyAddresses, 'smtp:')",
        "'proxyAddresses' is not text (startswith() needs text)"
        " at position 12 in: startswith(proxyAddresses, 'smtp:')",
    ),
    (
        "contains(accountEnabled, 'x')",
        "'accountEnabled' is not text (contains() needs text)"
        " at position 10 in: contains(accountEnabled, 'x')",
    ),
    (
        "department",
        "'department' is not a condition (compare it, as in department eq '…')"
        " at position 1 in: department",
    ),
]


@pytest.mark.parametrize(("text", "message"), ERRORS)
def test_invalid_filters_say_what_and_where(text: str, message: str) -> None:
    with pytest.raises(FilterError) as caught:
        parse_filter(text)

    assert str(caught.value) == message


def test_filter_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="position 24"):
        parse_filter("accountEnabled eq true foo")


def test_deep_nesting_is_an_error_not_a_crash() -> None:
    text = "(" * 200 + "accountEnabled eq true" + ")" * 200

    with pytest.raises(FilterError, match="nested more than 64 levels deep at position 65"):
        parse_filter(text)


def test_moderate_nesting_is_fine() -> None:
    text = "not " * 10 + "(" * 30 + "accountEnabled eq true" + ")" * 30

    assert parse_filter(text).matches(MAX)


def test_a_bare_range_variable_is_a_condition() -> None:
    parsed = parse_filter("extension_abc_flags/any(f: f)")

    assert parsed.matches({"extension_abc_flags": [False, True]})
    assert not parsed.matches({"extension_abc_flags": [False, "true"]})


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("mail", None),
        ("accountEnabled", None),
        ("extension_0a1b2c3d4e_costCenter", None),
        ("employeeOrgData", None),
        ("someFutureProperty2", None),
        ("", "a property name is empty"),
        ("Mail", "'Mail' is not a Graph property (names are case-sensitive: did you mean 'mail'?)"),
        (
            "USERPRINCIPALNAME",
            "'USERPRINCIPALNAME' is not a Graph property (names are case-sensitive: did you"
            " mean 'userPrincipalName'?)",
        ),
        (
            "given name",
            "'given name' is not a Graph property name (expected camelCase: a lowercase letter,"
            " then letters, digits or underscores, like accountEnabled)",
        ),
        (
            "mail-address",
            "'mail-address' is not a Graph property name (expected camelCase: a lowercase"
            " letter, then letters, digits or underscores, like accountEnabled)",
        ),
        (
            "1mail",
            "'1mail' is not a Graph property name (expected camelCase: a lowercase letter,"
            " then letters, digits or underscores, like accountEnabled)",
        ),
        ("a" * 121, "'aaaaaaaaaaaaaaaaaaaa'… is too long for a Graph property name"),
    ],
)
def test_property_name_problem(name: str, problem: str | None) -> None:
    assert property_name_problem(name) == problem


def test_known_properties_are_valid_names() -> None:
    assert "accountEnabled" in GRAPH_USER_PROPERTIES
    assert all(property_name_problem(name) is None for name in GRAPH_USER_PROPERTIES)


def test_filter_error_is_a_config_error() -> None:
    with pytest.raises(FilterError) as caught:
        parse_filter("accountEnabled eq 'true'")
    assert isinstance(caught.value, ConfigError)
    assert isinstance(caught.value, ValueError)
    assert exit_code_for(caught.value) == 2
    assert caught.value.problems == [str(caught.value)]


def test_a_non_ascii_digit_is_a_filter_error_not_a_crash() -> None:
    """Found by the fuzz test: "²" passes str.isdigit() but not int()."""
    with pytest.raises(FilterError, match="position"):
        parse_filter("²")
    with pytest.raises(FilterError):
        parse_filter("employeeId eq ²")
