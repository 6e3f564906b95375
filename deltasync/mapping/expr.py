"""Compiled expressions, the default mappings, and merging the configured entries over them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final
from zoneinfo import ZoneInfo

from deltasync import fields
from deltasync.errors import ExpressionError
from deltasync.mapping.functions import Step, compile_filter
from deltasync.mapping.parse import parse_source
from deltasync.mapping.values import Source
from deltasync.models import Kind

#: ELIZA user fields filled from Entra by default (``remote_key`` and ``is_active`` are set
#: by the planner).
DEFAULT_USER_MAPPING: Final[dict[str, str]] = fields.default_mapping(Kind.USER)

#: ELIZA person fields filled from Entra by default (``remote_key`` and ``user`` are set by
#: the planner). ``vorgesetzter: manager`` is opt-in: it reads Graph's manager relationship
#: (an Entra id) and the planner turns it into the manager's linked person.
DEFAULT_PERSON_MAPPING: Final[dict[str, str]] = fields.default_mapping(Kind.PERSON)

#: Fields the planner owns: mapping them would break matching, scope or group handling.
RESERVED_FIELDS: Final = fields.RESERVED_FIELDS


@dataclass(frozen=True)
class Expr:
    """A compiled mapping expression; ``evaluate`` computes the ELIZA field's value."""

    source: str
    properties: frozenset[str]  # the Graph properties it reads (for $select)
    _value: Source = field(repr=False, compare=False)
    _steps: tuple[Step, ...] = field(default=(), repr=False, compare=False)

    def evaluate(self, data: Mapping[str, Any], tz: ZoneInfo) -> Any:
        """The value for one user's Graph JSON (camelCase keys; a missing key is null).

        Raises:
            ExpressionError: ``date`` met text that is no ISO 8601 date (a per-user problem:
                the value, not the configuration, is wrong).
        """
        value = self._value.value(data)
        for step in self._steps:
            if value is None:
                return None
            value = step.apply(value, tz)
        return value


def compile_expr(text: str) -> Expr:
    """Compile a mapping expression.

    Raises:
        ExpressionError: the expression is invalid; the message says what is wrong (the
            caller adds the configuration key).
    """
    raw: object = text  # YAML may hand over a number or a list
    if not isinstance(raw, str):
        raise ExpressionError(f"expected an expression (text), found {type(raw).__name__} {raw!r}")
    source, index = parse_source(text)
    steps: list[Step] = []
    while index < len(text):
        # text[index] is the "|" that starts the next filter
        following = text.find("|", index + 1)
        end = len(text) if following < 0 else following
        steps.append(compile_filter(text[index + 1 : end], index + 1))
        index = end
    return Expr(
        source=text.strip(), properties=source.properties, _value=source, _steps=tuple(steps)
    )


def merge_mapping(
    defaults: Mapping[str, str], overrides: Mapping[str, str | Expr | None]
) -> dict[str, Expr]:
    """The defaults with the configured entries over them, compiled.

    An override (text, or an expression compiled already) replaces or adds a field; ``None``
    removes one. Fields the planner manages
    (:data:`RESERVED_FIELDS`) cannot be set or removed.

    Raises:
        ExpressionError: one or more fields are invalid; ``problems`` has one line per field,
            each as ``"<field>: <what is wrong>"``.
    """
    merged: dict[str, str | Expr] = dict(defaults)
    problems: list[str] = []
    for key, value in overrides.items():
        if key in RESERVED_FIELDS:
            problems.append(f"{key}: is set by deltasync itself and cannot be mapped")
        elif value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    compiled: dict[str, Expr] = {}
    for key, text in merged.items():
        if isinstance(text, Expr):
            compiled[key] = text
            continue
        try:
            compiled[key] = compile_expr(text)
        except ExpressionError as exc:
            problems.append(f"{key}: {exc}")
    if problems:
        raise ExpressionError("; ".join(problems), problems)
    return compiled
