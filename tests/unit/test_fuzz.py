"""Fuzzing the parsers (hypothesis): every input ends in a result or in deltasync's own clear
error (BadPayloadError for a Graph page, FilterError, ExpressionError, ConfigError), never
another exception."""

from __future__ import annotations

import string
from collections.abc import Callable
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deltasync.config import load_config
from deltasync.errors import BadPayloadError, ConfigError, ExpressionError, FilterError
from deltasync.filter import parse_filter
from deltasync.graph.delta import parse_page
from deltasync.mapping import compile_expr
from deltasync.models import DeltaPage


def attempt(fn: Callable[[], Any], error: type[Exception]) -> Any:
    """``fn()``, or the exception of type ``error`` it raised (any other one propagates)."""
    try:
        return fn()
    except error as exc:
        return exc


FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
TZ = ZoneInfo("Europe/Zurich")

scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=20,
)
PROPS = [
    "id",
    "accountEnabled",
    "mail",
    "jobTitle",
    "proxyAddresses",
    "manager@delta",
    "@removed",
    "@odata.type",
    "displayName@odata.type",
    "businessPhones",
    "employeeHireDate",
]
entries = st.dictionaries(st.sampled_from(PROPS) | st.text(max_size=8), json_values, max_size=6)
pages = st.fixed_dictionaries(
    {},
    optional={
        "value": st.lists(entries, max_size=4) | json_values,
        "@odata.nextLink": st.text(max_size=10) | json_values,
        "@odata.deltaLink": st.text(max_size=10) | json_values,
        "@odata.context": st.text(max_size=10),
    },
)


@FAST
@given(pages | json_values)
def test_a_delta_page_parses_or_is_a_bad_payload_naming_the_page(raw: Any) -> None:
    page = attempt(
        lambda: parse_page(raw, "https://graph/v1.0/users/delta?$skiptoken=x"), BadPayloadError
    )
    if isinstance(page, BadPayloadError):
        assert "Graph delta page" in str(page)
    else:
        assert isinstance(page, DeltaPage)
        assert all(isinstance(c.id, str) and c.id for c in page.changes)


FILTER_WORDS = [
    "accountEnabled",
    "eq",
    "ne",
    "gt",
    "and",
    "or",
    "not",
    "true",
    "false",
    "null",
    "in",
    "startswith(",
    "endswith(",
    "contains(",
    "proxyAddresses/any(a:",
    "a",
    ")",
    "(",
    ",",
    "'x'",
    "''",
    "'",
    "42",
    "-7",
    "2024-01-01",
    "2024-01-01T08:00:00Z",
    "mail",
    "/",
    "x/any()",
    "onPremisesExtensionAttributes/extensionAttribute1",
    " ",
]
filter_texts = st.lists(st.sampled_from(FILTER_WORDS), max_size=12).map(" ".join) | st.text(
    max_size=40
)
users = st.dictionaries(
    st.sampled_from(["accountEnabled", "mail", "proxyAddresses", "x"]), json_values
)


@FAST
@given(filter_texts, users)
def test_a_filter_parses_and_evaluates_or_is_a_filter_error(
    text: str, data: dict[str, Any]
) -> None:
    compiled = attempt(lambda: parse_filter(text), FilterError)
    if isinstance(compiled, FilterError):
        assert str(compiled)
    else:
        assert compiled.matches(data) in (True, False)


EXPR_WORDS = [
    "givenName",
    "surname",
    "{givenName}",
    "{surname}",
    "|",
    "upper",
    "lower",
    "initials",
    "date",
    '"',
    "'",
    "{",
    "}",
    " ",
    "jobTitle",
    "employeeHireDate",
    "primary_smtp",
    "proxyAddresses",
    "x",
]
expr_texts = st.lists(st.sampled_from(EXPR_WORDS), max_size=8).map("".join) | st.text(max_size=30)
graph_users = st.dictionaries(
    st.sampled_from(["givenName", "surname", "jobTitle", "employeeHireDate", "proxyAddresses"]),
    json_values,
)


@FAST
@given(expr_texts, graph_users)
def test_a_mapping_expression_compiles_and_evaluates_or_is_an_expression_error(
    text: str, data: dict[str, Any]
) -> None:
    result = attempt(lambda: compile_expr(text).evaluate(data, TZ), ExpressionError)
    if isinstance(result, ExpressionError):
        assert str(result)


SECTIONS = [
    "entra",
    "eliza",
    "sync_options",
    "field_mapping",
    "advanced",
    "state",
    "matching",
    "deprovisioning",
    "groups",
    "timezone",
    "orgunit_mapping",
    "unknown",
]
KEYS = [
    "tenant_id",
    "client_id",
    "client_secret",
    "base_url",
    "api_token",
    "user",
    "mitarbeitende",
    "user_filter",
    "url",
    "max_deactivations",
    "timeout_s",
    "on_disable",
    "soft_match",
    "position",
    "include",
    "Firma AG",
]
yaml_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-5, 100)
    | st.text(string.printable, max_size=15)
    | st.sampled_from(["${MISSING}", "${ELIZA_API_TOKEN}", "https://firma.myeliza.ch", "jobTitle"]),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(KEYS), inner, max_size=4)
    ),
    max_leaves=15,
)
documents = st.dictionaries(st.sampled_from(SECTIONS), yaml_values, max_size=6)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(documents | json_values, st.sampled_from(["yaml", "repr"]) | st.text(max_size=60))
def test_a_config_file_loads_or_is_a_config_error(tmp_path: Path, doc: Any, how: str) -> None:
    path = tmp_path / "entra_sync.yaml"
    if how == "yaml":
        text = yaml.safe_dump(doc, allow_unicode=True)
    else:
        text = str(doc) if how == "repr" else how  # any text at all
    path.write_bytes(text.encode("utf-8", "surrogatepass"))
    env = {"ELIZA_API_TOKEN": "t", "ENTRA_CLIENT_SECRET": "s"}
    result = attempt(lambda: load_config(path, env=env), ConfigError)
    if isinstance(result, ConfigError):
        assert result.problems
