"""Where an expression's value comes from: a constant, a property path or a template."""

from __future__ import annotations

import abc
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


class Source(abc.ABC):
    @property
    def properties(self) -> frozenset[str]:
        return frozenset()

    @abc.abstractmethod
    def value(self, data: Mapping[str, Any]) -> Any:
        """The raw value before filters."""


@dataclass(frozen=True)
class Constant(Source):
    text: str

    def value(self, data: Mapping[str, Any]) -> Any:
        return self.text


@dataclass(frozen=True)
class Property(Source):
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
class Template(Source):
    parts: tuple[str | Property, ...]  # literal text and placeholders, in order

    @property
    def properties(self) -> frozenset[str]:
        return frozenset(p.path[0] for p in self.parts if isinstance(p, Property))

    def value(self, data: Mapping[str, Any]) -> Any:
        placeholders = [p for p in self.parts if isinstance(p, Property)]
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
