"""Parsing the value part of an expression (before the first ``|``)."""

from __future__ import annotations

import re

from deltasync.errors import ExpressionError
from deltasync.fields import GRAPH_USER_PROPERTIES, property_name_problem
from deltasync.mapping.values import Constant, Property, Source, Template


def check_path(text: str, where: str) -> tuple[str, ...]:
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


def parse_template(text: str, offset: int) -> Template:
    parts: list[str | Property] = []
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
            parts.append(Property(check_path(name, where)))
            i = end + 1
        else:
            literal.append(ch)
            i += 1
    if literal:
        parts.append("".join(literal))
    return Template(tuple(parts))


def parse_constant(text: str, start: int) -> tuple[Constant, int]:
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
            return Constant("".join(chars)), i + 1
        chars.append(text[i])
        i += 1
    raise ExpressionError(
        f"unterminated constant: the {quote} at position {start + 1} is never closed"
    )


def parse_source(text: str) -> tuple[Source, int]:
    """The value part of an expression; returns it and the index where the filters start."""
    start = len(text) - len(text.lstrip())
    if start == len(text):
        raise ExpressionError("empty expression")
    if text[start] in "'\"":
        constant, end = parse_constant(text, start)
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
        return parse_template(body, start), end
    if any(ch.isspace() for ch in body):
        raise ExpressionError(
            f"bad property name {body!r}: a constant needs quotes ('text'), a template needs "
            "braces ({givenName} {surname})"
        )
    return Property(check_path(body, "")), end
