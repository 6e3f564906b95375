"""What ``--help`` shows in the type column: click's words (TEXT, INTEGER, PATH), never a Python
type name (``<int>``, ``<%Y-%m-%d|…>``) as typer's bundled click prints them.

typer is pinned below 0.29, which imports pydantic on every command (0.2 s of each start, a
seventh of an idle run); this module fits the help of the typer we pin.
"""

from __future__ import annotations

from typing import Any

import typer
from typer._click import types
from typer.core import TyperArgument

_LABELS: dict[str, str] = {
    "str": "TEXT",
    "int": "INTEGER",
    "int range": "INTEGER",
    "float": "FLOAT",
    "float range": "FLOAT",
    "boolean": "BOOLEAN",
    "datetime": "DATETIME",
    "uuid": "UUID",
    "filename": "FILE",
}


def label(param_type: types.ParamType) -> str:
    """The word for what a parameter of this type takes."""
    return _LABELS.get(param_type.name, param_type.name.upper())


def _type_metavar(self: types.ParamType, param: Any, ctx: Any) -> str | None:
    return label(self)


def _argument_metavar(self: TyperArgument, ctx: typer.Context, *, usage: bool = False) -> str:
    """The argument's name alone (typer appends ``:TYPE`` once a type has a metavar)."""
    var = self.metavar or self.name or ""
    if usage and not var.startswith("["):
        var = f"{{{var}}}" if self.required else f"[{var}]"
    return var if self.nargs == 1 else f"{var}..."


def install() -> None:
    """Replace typer's type words in every help page (idempotent)."""
    types.ParamType.get_metavar = _type_metavar  # type: ignore[method-assign]
    types.DateTime.get_metavar = _type_metavar  # type: ignore[method-assign]
    TyperArgument.make_metavar = _argument_metavar  # type: ignore[method-assign,assignment]
