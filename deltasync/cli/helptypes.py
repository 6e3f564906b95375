"""What ``--help`` shows in the type column: click's words (TEXT, INTEGER, PATH), never a Python
type name (``<int>``, ``<list[str]>``) as typer itself prints them since 0.2x."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any, get_args

import typer
from typer.core import TyperArgument, TyperOption

_LABELS: dict[Any, str] = {
    str: "TEXT",
    int: "INTEGER",
    float: "FLOAT",
    bool: "BOOLEAN",
    datetime: "DATETIME",
    Path: "PATH",
}


def type_label(param: TyperArgument | TyperOption) -> str:
    """The word for what a parameter takes; a list takes several (``TEXT...``)."""
    desc = param.type_descriptor
    if desc.is_choice:
        return "|".join(str(getattr(c, "value", c)) for c in desc.choices or ())
    annotation = get_args(desc.annotation)[0] if desc.is_list else desc.annotation
    label = desc.path_type.upper() if desc.is_path else _LABELS.get(annotation, "VALUE")
    return f"{label}..." if desc.is_list or param.nargs != 1 else label


def _argument_type(self: TyperArgument, ctx: typer.Context) -> str | None:
    return type_label(self)


def _option_type(self: TyperOption, ctx: typer.Context) -> str | None:
    """A flag takes no value: its help row shows no type at all."""
    if self.is_flag:
        return None
    return self.metavar if self.metavar is not None else type_label(self)


def install() -> None:
    """Replace typer's type column in every help page (idempotent)."""
    TyperArgument.display_type_rich = _argument_type  # type: ignore[method-assign,assignment]
    TyperOption.display_type_rich = _option_type  # type: ignore[method-assign,assignment]
