"""Type checks against the Graph property catalogue, applied while parsing.

Graph answers a comparison of a well-known property with a value of the wrong type with 400;
silently evaluating it to false would take every user out of scope, so it is a parse error.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from deltasync.errors import FilterError
from deltasync.fields import GRAPH_USER_PROPERTIES, PropType
from deltasync.filter.lexer import Token, error_at
from deltasync.filter.nodes import ORDERINGS, IsTrue, Lit, Node, Path, as_datetime


def type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "a number"
    if isinstance(value, datetime):
        return "a date"
    return "text"


def known_type(node: Node) -> PropType | None:
    """The catalogue type of a plain property (None: a variable, a sub-property, unknown)."""
    if isinstance(node, Path) and not node.is_var and not node.rest:
        return GRAPH_USER_PROPERTIES.get(node.head)
    return None


def as_condition(text: str, node: Node, start: Token) -> Node:
    """A value used where a condition is expected: a boolean literal or a boolean property."""
    if isinstance(node, Lit):
        if isinstance(node.value, bool):
            return node
        raise error_at(text, start.pos, f"expected a condition, found the value {start.text!r}")
    assert isinstance(node, Path)
    prop_type = known_type(node)
    if prop_type not in (None, "bool"):
        raise error_at(
            text,
            start.pos,
            f"{start.text!r} is not a condition (compare it, as in {start.text} eq '…')",
        )
    return IsTrue(node)


def check_text(text: str, node: Path, start: Token, where: str) -> None:
    prop_type = known_type(node)
    if prop_type is not None and prop_type != "string":
        raise error_at(text, start.pos, f"{node.head!r} is not text ({where} needs text)")


def check_comparison(text: str, prop: Node, other: Node, op: Token, start: Token) -> Node:
    """Reject comparisons of well-known properties with values of the wrong type.

    Returns ``other``, a quoted date turned into a date.
    """
    prop_type = known_type(prop)
    if prop_type is None:
        return other
    assert isinstance(prop, Path)
    name = prop.head

    def error(what: str, tok: Token = start) -> FilterError:
        return error_at(text, tok.pos, what)

    if prop_type in ("strings", "complexes"):
        raise error(f"{name!r} is a collection (test its items: {name}/any(a: a eq '…'))")
    if prop_type == "complex":
        raise error(f"{name!r} has sub-properties (compare one: {name}/…)")
    if not isinstance(other, Lit) or other.value is None:
        return other
    value = other.value
    if prop_type == "bool":
        if not isinstance(value, bool):
            raise error(
                f"{name!r} is a boolean, compared with {type_name(value)} (use true or false)"
            )
        if op.value in ORDERINGS:
            raise error(f"{name!r} is a boolean (compare it with eq or ne)", op)
    elif prop_type == "datetime":
        if isinstance(value, str):
            # Entra wants unquoted date literals; accept a quoted one that parses as a date.
            parsed = as_datetime(value)
            if parsed is None:
                raise error(
                    f"{name!r} is a date, compared with {value!r} "
                    "(use a date like 2024-01-01 or 2024-01-01T00:00:00Z)"
                )
            return Lit(parsed)
        elif not isinstance(value, datetime):
            raise error(
                f"{name!r} is a date, compared with {type_name(value)} "
                "(use a date like 2024-01-01 or 2024-01-01T00:00:00Z)"
            )
    elif not isinstance(value, str):
        raise error(f"{name!r} is text, compared with {type_name(value)} (quote it: '…')")
    return other
