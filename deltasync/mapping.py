"""Mapping expressions: how an ELIZA field's value is computed from a user's Graph properties.

The values under ``field_mapping.user`` / ``field_mapping.mitarbeitende`` are expressions,
compiled once at config load (so a typo is a configuration error) and evaluated per user::

    mail                                  a Graph property (the value as Graph sends it)
    onPremisesExtensionAttributes/extensionAttribute1     a property of a complex property
    'intern'   "intern"                   a constant (a doubled quote stands for the quote)
    {givenName}.{surname}@firma.ch        a template ({{ and }} stand for braces)
    mail | lower                          filters after a pipe, applied left to right
    givenName | first:1 | upper

A ``|`` outside a quoted constant always starts a filter. Filters: ``trim``, ``upper``,
``lower``, ``first:N`` (first N characters), ``initials``, ``date`` (ISO 8601 date-time →
calendar date ``YYYY-MM-DD`` in the configured time zone; a plain date stays), ``primary_smtp``
(the ``SMTP:`` address of a proxyAddresses list).

Values: a null property is ``None`` and every filter passes ``None`` through. Strings stay
strings, lists and booleans pass through a plain property unchanged. The text filters (trim,
upper, lower, first, initials, date) apply to each item of a list and leave non-text values
(booleans, numbers) alone. In a template a null placeholder renders as nothing (and the space
it leaves between two words is not doubled), the result is stripped, and a template whose
placeholders are all null gives ``None``; a list renders as its items joined by ``", "``, a
boolean as ``true``/``false``.

The ELIZA fields deltasync manages itself (``remote_key``, ``is_active``, the person's
``user``, ``groups``, ``id``) cannot be mapped.
"""

from __future__ import annotations

import abc
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, Final
from zoneinfo import ZoneInfo

from deltasync.filter import GRAPH_USER_PROPERTIES, property_name_problem

__all__ = [
    "DEFAULT_PERSON_MAPPING",
    "DEFAULT_USER_MAPPING",
    "RESERVED_FIELDS",
    "Expr",
    "ExpressionError",
    "compile_expr",
    "initials",
    "merge_mapping",
    "primary_smtp",
]

#: ELIZA user fields filled from Entra by default (``remote_key`` and ``is_active`` are set
#: by the planner).
DEFAULT_USER_MAPPING: Final[dict[str, str]] = {
    "username": "userPrincipalName",
    "email": "mail",
    "first_name": "givenName",
    "last_name": "surname",
}

#: ELIZA Mitarbeitende fields filled from Entra by default (``remote_key`` and ``user`` are set
#: by the planner). ``vorgesetzter: manager`` is opt-in: it reads Graph's manager relationship
#: (an Entra id) and the planner turns it into the manager's linked person.
DEFAULT_PERSON_MAPPING: Final[dict[str, str]] = {
    "vorname": "givenName",
    "nachname": "surname",
    "email": "mail",
    "telefon": "mobilePhone",
    "position": "jobTitle",
    "abteilung": "department",
    "eintrittsdatum": "employeeHireDate | date",
}

#: Fields the planner owns: mapping them would break matching, scope or group handling.
RESERVED_FIELDS: Final = frozenset({"id", "remote_key", "is_active", "user", "groups"})


class ExpressionError(ValueError):
    """A mapping expression is invalid; the message says what is wrong.

    ``problems`` lists every problem found (one for :func:`compile_expr`, one per bad field
    for :func:`merge_mapping`, each prefixed with its field name).
    """

    def __init__(self, message: str, problems: Sequence[str] | None = None) -> None:
        super().__init__(message)
        self.problems: list[str] = list(problems) if problems else [message]


# --------------------------------------------------------------------------------------------
# Helpers shared with matching


def primary_smtp(proxy_addresses: Any) -> str | None:
    """The primary address of a ``proxyAddresses`` list: the one after the uppercase ``SMTP:``.

    Aliases carry a lowercase ``smtp:`` and other types (``SIP:``, ``X500:``) are ignored.
    Returns None for None (or anything not a list), an empty list or a list without a primary
    address. A single string is read as a one-item list.
    """
    if isinstance(proxy_addresses, str):
        items: Iterable[Any] = [proxy_addresses]
    elif isinstance(proxy_addresses, list | tuple):
        items = proxy_addresses
    else:
        return None
    for item in items:
        if isinstance(item, str) and item.startswith("SMTP:"):
            address = item[len("SMTP:") :].strip()
            if address:
                return address
    return None


# Lowercase name particles that do not give an initial ("Anna-Lena von Arx" → "ALA").
_PARTICLE_WORDS: Final = (
    "af al am av d da das de del della den der des di do dos du el la le lo ten ter "
    "van vom von y zu zum zur"
)
_PARTICLES: Final = frozenset(_PARTICLE_WORDS.split())
_WORD_SPLIT: Final = re.compile(r"[\s\-‐‑–]+")


def initials(text: str) -> str:
    """The initials of a name, uppercase: ``"Max Muster"`` → ``"MM"``.

    Rule: the name is split at spaces and hyphens; each part gives its first letter, so a
    double name gives two (``"Anna-Lena von Arx"`` → ``"ALA"``, ``"Hans-Peter Müller"`` →
    ``"HPM"``). Name particles written in lowercase (von, van, de, di, du, zu, …) are skipped
    unless the name has nothing else; capitalised ones count (``"Van Gogh"`` → ``"VG"``).
    Characters before the first letter (``"O'Brien"`` keeps ``O``, ``"(Max)"`` gives ``M``) and
    parts without a letter are ignored. An empty or letter-less text gives ``""``.
    """
    parts = [part for part in _WORD_SPLIT.split(text) if any(ch.isalpha() for ch in part)]
    kept = [part for part in parts if part not in _PARTICLES] or parts
    letters = (next(ch for ch in part if ch.isalpha()) for part in kept)
    return "".join(letter.upper() for letter in letters)


# --------------------------------------------------------------------------------------------
# Values: where an expression's value comes from


class _Source(abc.ABC):
    @property
    def properties(self) -> frozenset[str]:
        return frozenset()

    @abc.abstractmethod
    def value(self, data: Mapping[str, Any]) -> Any:
        """The raw value before filters."""


@dataclass(frozen=True)
class _Constant(_Source):
    text: str

    def value(self, data: Mapping[str, Any]) -> Any:
        return self.text


@dataclass(frozen=True)
class _Property(_Source):
    path: tuple[str, ...]

    @property
    def properties(self) -> frozenset[str]:
        return frozenset({self.path[0]})

    def value(self, data: Mapping[str, Any]) -> Any:
        value: Any = data
        for name in self.path:
            value = value.get(name) if isinstance(value, Mapping) else None
        return value


def _render(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return ", ".join(_render(item) for item in value if item is not None)
    return str(value)


@dataclass(frozen=True)
class _Template(_Source):
    parts: tuple[str | _Property, ...]  # literal text and placeholders, in order

    @property
    def properties(self) -> frozenset[str]:
        return frozenset(p.path[0] for p in self.parts if isinstance(p, _Property))

    def value(self, data: Mapping[str, Any]) -> Any:
        placeholders = [p for p in self.parts if isinstance(p, _Property)]
        values = [p.value(data) for p in placeholders]
        if placeholders and all(v is None for v in values):
            return None
        out = ""
        dropped = False  # the previous placeholder rendered as nothing
        rendered = iter(values)
        for part in self.parts:
            if isinstance(part, str):
                if dropped and out[-1:].isspace() and part[:1].isspace():
                    part = part.lstrip()  # "{a} {middle} {b}" without a middle: one space
                out += part
                dropped = False
            else:
                value = next(rendered)
                text = "" if value is None else _render(value)
                out += text
                dropped = text == ""
        return out.strip()


# --------------------------------------------------------------------------------------------
# Filters


def _each(fn: Callable[[str], Any]) -> Callable[[Any], Any]:
    """Lift a text function: None stays None, lists map item-wise, non-text passes through."""

    def apply(value: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, list | tuple):
            return [apply(item) for item in value]
        if isinstance(value, str):
            return fn(value)
        return value

    return apply


def _to_date(value: Any, tz: ZoneInfo) -> Any:
    """An ISO 8601 date-time as a calendar date in ``tz`` (a naive date-time counts as UTC)."""

    def convert(item: Any) -> Any:
        if item is None:
            return None
        if isinstance(item, list | tuple):
            return [convert(x) for x in item]
        if isinstance(item, datetime):
            moment = item
        elif isinstance(item, date):
            return item.isoformat()
        elif isinstance(item, str):
            text = item.strip()
            try:
                return date.fromisoformat(text).isoformat()
            except ValueError:
                pass
            try:
                moment = datetime.fromisoformat(text)
            except ValueError:
                raise ExpressionError(
                    f"date: cannot read {item!r} as an ISO 8601 date or date-time"
                ) from None
        else:
            return item
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment.astimezone(tz).date().isoformat()

    return convert(value)


@dataclass(frozen=True)
class _Step:
    name: str
    apply: Callable[[Any, ZoneInfo], Any] = field(repr=False, compare=False)


def _first(count: int) -> Callable[[Any, ZoneInfo], Any]:
    take = _each(lambda text: text[:count])
    return lambda value, tz: take(value)


_TEXT_FILTERS: Final[Mapping[str, Callable[[str], Any]]] = {
    "trim": str.strip,
    "upper": str.upper,
    "lower": str.lower,
    "initials": initials,
}
_KNOWN_FILTERS: Final = "date, first:N, initials, lower, primary_smtp, trim, upper"


def _compile_filter(spec: str, pos: int) -> _Step:
    name, colon, arg = (piece.strip() for piece in spec.partition(":"))
    if not name:
        raise ExpressionError(f"missing filter name after '|' at position {pos}")
    if name == "first":
        if not colon:
            raise ExpressionError("filter 'first' needs a count, as in first:1")
        if not re.fullmatch(r"[0-9]+", arg) or int(arg) < 1:
            raise ExpressionError(
                f"filter 'first' needs a whole number of characters ≥ 1, found {arg!r}"
            )
        return _Step(f"first:{int(arg)}", _first(int(arg)))
    if name in _TEXT_FILTERS:
        step = _each(_TEXT_FILTERS[name])
        apply: Callable[[Any, ZoneInfo], Any] = lambda value, tz: step(value)  # noqa: E731
    elif name == "date":
        apply = _to_date
    elif name == "primary_smtp":
        apply = lambda value, tz: primary_smtp(value)  # noqa: E731
    else:
        raise ExpressionError(f"unknown filter {name!r} (known: {_KNOWN_FILTERS})")
    if colon:
        raise ExpressionError(f"filter {name!r} takes no argument, found {spec.strip()!r}")
    return _Step(name, apply)


# --------------------------------------------------------------------------------------------
# Parsing


def _check_path(text: str, where: str) -> tuple[str, ...]:
    path = tuple(text.split("/"))
    problem = property_name_problem(path[0])
    if problem is None and len(path) > 1:
        if GRAPH_USER_PROPERTIES.get(path[0], "complex") != "complex":
            problem = f"{path[0]!r} has no sub-properties"
        elif not all(re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name) for name in path[1:]):
            problem = f"{text!r} is not a property path (names joined by '/')"
    if problem is not None:
        raise ExpressionError(f"{problem}{where}")
    return path


def _parse_template(text: str, offset: int) -> _Template:
    parts: list[str | _Property] = []
    literal: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if text.startswith("{{", i) or text.startswith("}}", i):
            literal.append(ch)
            i += 2
        elif ch == "}":
            raise ExpressionError(
                f"unbalanced braces: '}}' at position {offset + i + 1} has no matching '{{'"
            )
        elif ch == "{":
            end = text.find("}", i + 1)
            nested = text.find("{", i + 1)
            if end < 0:
                raise ExpressionError(
                    f"unbalanced braces: '{{' at position {offset + i + 1} is never closed"
                )
            if 0 <= nested < end:
                raise ExpressionError(
                    f"unbalanced braces: '{{' at position {offset + nested + 1} inside the "
                    f"placeholder opened at position {offset + i + 1}"
                )
            name = text[i + 1 : end].strip()
            if not name:
                raise ExpressionError(f"empty placeholder '{{}}' at position {offset + i + 1}")
            if literal:
                parts.append("".join(literal))
                literal = []
            where = f" (in the placeholder at position {offset + i + 1})"
            parts.append(_Property(_check_path(name, where)))
            i = end + 1
        else:
            literal.append(ch)
            i += 1
    if literal:
        parts.append("".join(literal))
    return _Template(tuple(parts))


def _parse_constant(text: str, start: int) -> tuple[_Constant, int]:
    """Read a quoted constant starting at ``text[start]``; returns it and the index after it."""
    quote = text[start]
    chars: list[str] = []
    i = start + 1
    while i < len(text):
        if text[i] == quote:
            if text.startswith(quote * 2, i):
                chars.append(quote)
                i += 2
                continue
            return _Constant("".join(chars)), i + 1
        chars.append(text[i])
        i += 1
    raise ExpressionError(
        f"unterminated constant: the {quote} at position {start + 1} is never closed"
    )


def _parse_source(text: str) -> tuple[_Source, int]:
    """The value part of an expression; returns it and the index where the filters start."""
    start = len(text) - len(text.lstrip())
    if start == len(text):
        raise ExpressionError("empty expression")
    if text[start] in "'\"":
        constant, end = _parse_constant(text, start)
        rest = text[end:]
        gap = len(rest) - len(rest.lstrip())
        if rest.strip() and not rest.lstrip().startswith("|"):
            raise ExpressionError(
                f"unexpected text after the constant at position {end + gap + 1} "
                "(filters follow a '|')"
            )
        return constant, end + gap
    bar = text.find("|", start)
    end = len(text) if bar < 0 else bar
    body = text[start:end].rstrip()
    if not body:
        raise ExpressionError(
            "missing the value before '|' (a property, a 'constant' or a {template})"
        )
    if "{" in body or "}" in body:
        return _parse_template(body, start), end
    if any(ch.isspace() for ch in body):
        raise ExpressionError(
            f"bad property name {body!r}: a constant needs quotes ('text'), a template needs "
            "braces ({givenName} {surname})"
        )
    return _Property(_check_path(body, "")), end


@dataclass(frozen=True)
class Expr:
    """A compiled mapping expression; ``evaluate`` computes the ELIZA field's value."""

    source: str
    properties: frozenset[str]  # the Graph properties it reads (for $select)
    _value: _Source = field(repr=False, compare=False)
    _steps: tuple[_Step, ...] = field(default=(), repr=False, compare=False)

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
    source, index = _parse_source(text)
    steps: list[_Step] = []
    while index < len(text):
        # text[index] is the "|" that starts the next filter
        following = text.find("|", index + 1)
        end = len(text) if following < 0 else following
        steps.append(_compile_filter(text[index + 1 : end], index + 1))
        index = end
    return Expr(
        source=text.strip(), properties=source.properties, _value=source, _steps=tuple(steps)
    )


def merge_mapping(
    defaults: Mapping[str, str], overrides: Mapping[str, str | None]
) -> dict[str, Expr]:
    """The defaults with the configured entries over them, compiled.

    An override replaces or adds a field; ``None`` removes one. Fields the planner manages
    (:data:`RESERVED_FIELDS`) cannot be set or removed.

    Raises:
        ExpressionError: one or more fields are invalid; ``problems`` has one line per field,
            each as ``"<field>: <what is wrong>"``.
    """
    merged: dict[str, str] = dict(defaults)
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
        try:
            compiled[key] = compile_expr(text)
        except ExpressionError as exc:
            problems.append(f"{key}: {exc}")
    if problems:
        raise ExpressionError("; ".join(problems), problems)
    return compiled
