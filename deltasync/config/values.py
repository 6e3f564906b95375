"""Values as the checker sees them: text from ``${ENV}``, a failed interpolation, and how a
value is described in a message."""

from __future__ import annotations

from typing import Any, Final


class EnvStr(str):
    """A string that came (partly) from ``${VAR}``; ``refs`` names the variables."""

    refs: tuple[str, ...]


class Unresolved:
    """Placeholder for a value whose interpolation failed (already reported)."""

    def __repr__(self) -> str:
        return "<unresolved>"


UNRESOLVED: Final = Unresolved()


def describe_kind(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string" if value else "an empty string"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"a {type(value).__name__}"


def quote_hint(value: Any) -> str:
    if isinstance(value, str) and not isinstance(value, EnvStr):
        try:
            float(value)
        except ValueError:
            return ""
        return " (remove the quotes)"
    return ""
