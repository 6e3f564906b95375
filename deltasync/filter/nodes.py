"""The filter's syntax tree: every node evaluates against one user's data and the lambda
variables in scope."""

from __future__ import annotations

import abc
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Final

from deltasync.filter.lexer import literal_datetime

Scope = Mapping[str, Any]


class Node(abc.ABC):
    @abc.abstractmethod
    def eval(self, data: Mapping[str, Any], scope: Scope) -> Any:
        """The node's value for one user's data."""


@dataclass(frozen=True)
class Lit(Node):
    value: Any

    def eval(self, data: Mapping[str, Any], scope: Scope) -> Any:
        return self.value


@dataclass(frozen=True)
class Path(Node):
    head: str
    rest: tuple[str, ...]
    is_var: bool  # a lambda's range variable, not a property

    def eval(self, data: Mapping[str, Any], scope: Scope) -> Any:
        value = scope.get(self.head) if self.is_var else data.get(self.head)
        for name in self.rest:
            value = value.get(name) if isinstance(value, Mapping) else None
        return value


@dataclass(frozen=True)
class IsTrue(Node):
    """A bare property used as a condition."""

    operand: Node

    def eval(self, data: Mapping[str, Any], scope: Scope) -> Any:
        return self.operand.eval(data, scope) is True


@dataclass(frozen=True)
class Not(Node):
    operand: Node

    def eval(self, data: Mapping[str, Any], scope: Scope) -> Any:
        return not self.operand.eval(data, scope)


@dataclass(frozen=True)
class And(Node):
    operands: tuple[Node, ...]

    def eval(self, data: Mapping[str, Any], scope: Scope) -> Any:
        return all(node.eval(data, scope) for node in self.operands)


@dataclass(frozen=True)
class Or(Node):
    operands: tuple[Node, ...]

    def eval(self, data: Mapping[str, Any], scope: Scope) -> Any:
        return any(node.eval(data, scope) for node in self.operands)


ORDERINGS: Final[Mapping[str, Callable[[Any, Any], bool]]] = {
    "gt": operator.gt,
    "ge": operator.ge,
    "lt": operator.lt,
    "le": operator.le,
}
COMPARISONS: Final = frozenset({"eq", "ne", *ORDERINGS})


def as_datetime(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    if isinstance(value, str):
        try:
            return literal_datetime(value.strip())
        except ValueError:
            return None
    return None


def comparable(a: Any, b: Any) -> tuple[Any, Any] | None:
    """Both values in a form Python can compare, or None when their types differ."""
    if isinstance(a, bool) or isinstance(b, bool):
        return (a, b) if isinstance(a, bool) and isinstance(b, bool) else None
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a, b
    if isinstance(a, datetime | date) or isinstance(b, datetime | date):
        da, db = as_datetime(a), as_datetime(b)
        return None if da is None or db is None else (da, db)
    if isinstance(a, str) and isinstance(b, str):
        return a.casefold(), b.casefold()
    return None


def equal(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is None and b is None
    pair = comparable(a, b)
    return pair is not None and pair[0] == pair[1]


@dataclass(frozen=True)
class Compare(Node):
    op: str
    left: Node
    right: Node

    def eval(self, data: Mapping[str, Any], scope: Scope) -> Any:
        a, b = self.left.eval(data, scope), self.right.eval(data, scope)
        if self.op == "eq":
            return equal(a, b)
        if self.op == "ne":
            return not equal(a, b)
        if a is None or b is None:
            return False
        pair = comparable(a, b)
        return pair is not None and ORDERINGS[self.op](*pair)


@dataclass(frozen=True)
class In(Node):
    operand: Node
    values: tuple[Any, ...]

    def eval(self, data: Mapping[str, Any], scope: Scope) -> Any:
        value = self.operand.eval(data, scope)
        return any(equal(value, candidate) for candidate in self.values)


FUNCTIONS: Final[Mapping[str, Callable[[str, str], bool]]] = {
    "startswith": str.startswith,
    "endswith": str.endswith,
    "contains": lambda haystack, needle: needle in haystack,
}


@dataclass(frozen=True)
class Call(Node):
    name: str
    args: tuple[Node, Node]

    def eval(self, data: Mapping[str, Any], scope: Scope) -> Any:
        a, b = (arg.eval(data, scope) for arg in self.args)
        if not isinstance(a, str) or not isinstance(b, str):
            return False  # null (or not text): a function on it is false
        return FUNCTIONS[self.name](a.casefold(), b.casefold())


@dataclass(frozen=True)
class Lambda(Node):
    quantifier: str  # "any" | "all"
    collection: Path
    var: str | None
    body: Node | None

    def eval(self, data: Mapping[str, Any], scope: Scope) -> Any:
        items = self.collection.eval(data, scope)
        if items is None:
            items = []
        if not isinstance(items, list | tuple):
            return False
        if self.body is None or self.var is None:
            return bool(items)  # a bare coll/any(): the collection is not empty
        body, var = self.body, self.var
        hits = (body.eval(data, {**scope, var: item}) for item in items)
        return any(hits) if self.quantifier == "any" else all(hits)
