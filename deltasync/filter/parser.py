"""The filter's recursive-descent parser, and the parsed :class:`Filter`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from deltasync.errors import FilterError
from deltasync.fields import GRAPH_USER_PROPERTIES, property_name_problem
from deltasync.filter.lexer import Token, error_at, tokenize
from deltasync.filter.nodes import (
    COMPARISONS,
    FUNCTIONS,
    And,
    Call,
    Compare,
    In,
    Lambda,
    Lit,
    Node,
    Not,
    Or,
    Path,
)
from deltasync.filter.types import as_condition, check_comparison, check_text

KEYWORDS: Final = frozenset({"and", "or", "not", "in", "true", "false", "null", *COMPARISONS})
MAX_DEPTH: Final = 64
TermKind = Literal["bool", "value"]


class Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.i = 0
        self.depth = 0
        self.scope: list[str] = []  # lambda variables, innermost last
        self.properties: set[str] = set()

    # -- token helpers

    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def peek(self, ahead: int = 1) -> Token:
        return self.tokens[min(self.i + ahead, len(self.tokens) - 1)]

    def advance(self) -> Token:
        tok = self.tokens[self.i]
        self.i = min(self.i + 1, len(self.tokens) - 1)
        return tok

    def is_punct(self, ch: str, tok: Token | None = None) -> bool:
        tok = tok or self.tok
        return tok.kind == "punct" and tok.value == ch

    def is_word(self, word: str, tok: Token | None = None) -> bool:
        tok = tok or self.tok
        return tok.kind == "ident" and tok.value == word

    def error(self, what: str, tok: Token | None = None) -> FilterError:
        return error_at(self.text, (tok or self.tok).pos, what)

    def found(self, tok: Token | None = None) -> str:
        tok = tok or self.tok
        return "the end of the filter" if tok.kind == "end" else repr(tok.text)

    def expect_punct(self, ch: str, what: str) -> Token:
        if not self.is_punct(ch):
            raise self.error(f"expected {ch!r} {what}, found {self.found()}")
        return self.advance()

    def close(self, opener: Token, what: str) -> None:
        """Consume the ')' that closes ``opener``."""
        tok = self.tok
        if tok.kind == "end":
            raise self.error(f"unbalanced parentheses: the '(' of {what} is never closed", opener)
        if not self.is_punct(")", tok):
            raise self.error(f"unexpected {self.found()} (expected ')' to close {what})")
        self.advance()

    # -- grammar

    def parse(self) -> Node:
        if self.tok.kind == "end":
            raise FilterError("the filter is empty")
        node = self.parse_or()
        rest = self.tok
        if self.is_punct(")", rest):
            raise self.error("unbalanced parentheses: ')' without a matching '('")
        if rest.kind != "end":
            raise self.error(f"unexpected {self.found()}")
        return node

    def parse_or(self) -> Node:
        operands = [self.parse_and()]
        while self.is_word("or"):
            self.advance()
            operands.append(self.parse_and())
        return operands[0] if len(operands) == 1 else Or(tuple(operands))

    def parse_and(self) -> Node:
        operands = [self.parse_not()]
        while self.is_word("and"):
            self.advance()
            operands.append(self.parse_not())
        return operands[0] if len(operands) == 1 else And(tuple(operands))

    def parse_not(self) -> Node:
        if self.is_word("not"):
            with self.nested(self.advance()):
                return Not(self.parse_not())
        return self.parse_comparison()

    def parse_comparison(self) -> Node:
        start = self.tok
        left, kind = self.parse_term()
        tok = self.tok
        if tok.kind == "ident" and tok.value in COMPARISONS:
            self.require_value(left, kind, start, f"before {tok.value!r}")
            self.advance()
            right_start = self.tok
            right, right_kind = self.parse_term()
            self.require_value(right, right_kind, right_start, f"after {tok.value!r}")
            right = check_comparison(self.text, left, right, tok, start)
            left = check_comparison(self.text, right, left, tok, right_start)
            return Compare(tok.value, left, right)
        if self.is_word("in"):
            self.require_value(left, kind, start, "before 'in'")
            return self.parse_in(left, start)
        if tok.kind == "ident" and tok.value not in ("and", "or"):
            if kind == "value":
                lowered = tok.value.lower()
                if lowered in COMPARISONS or lowered in ("and", "or", "in"):
                    problem = (
                        f"unknown operator {tok.value!r} "
                        f"(operators are lowercase: did you mean {lowered!r}?)"
                    )
                else:
                    problem = (
                        f"unknown operator {tok.value!r} (expected eq, ne, gt, ge, lt, le or in)"
                    )
                raise self.error(problem)
            raise self.error(f"unexpected {self.found()}")
        if kind == "value":
            return as_condition(self.text, left, start)
        return left

    def parse_in(self, left: Node, start: Token) -> Node:
        self.advance()
        opener = self.expect_punct("(", "after 'in'")
        values: list[Any] = []
        while True:
            item = self.tok
            if item.kind in ("string", "int", "datetime") or (
                item.kind == "ident" and item.value in ("true", "false", "null")
            ):
                literal = check_comparison(self.text, left, self.parse_literal(), item, start)
                assert isinstance(literal, Lit)
                values.append(literal.value)
            else:
                raise self.error(f"expected a value in the 'in' list, found {self.found()}")
            if self.is_punct(","):
                self.advance()
                continue
            self.close(opener, "the 'in' list")
            return In(left, tuple(values))

    def parse_term(self) -> tuple[Node, TermKind]:
        tok = self.tok
        if self.is_punct("("):
            self.advance()
            with self.nested(tok):
                inner = self.parse_or()
            close = self.tok
            if close.kind == "end":
                raise self.error("unbalanced parentheses: '(' is never closed", tok)
            if not self.is_punct(")", close):
                raise self.error(f"unexpected {self.found()} (expected 'and', 'or' or ')')")
            self.advance()
            return inner, "bool"
        if tok.kind in ("string", "int", "datetime"):
            return self.parse_literal(), "value"
        if tok.kind == "ident":
            if tok.value in ("true", "false", "null"):
                return self.parse_literal(), "value"
            if tok.value in KEYWORDS:
                raise self.error(f"expected a property or a value, found {tok.value!r}")
            if self.is_punct("(", self.peek()):
                return self.parse_call(), "bool"
            return self.parse_path()
        if self.is_punct(")"):
            raise self.error("unbalanced parentheses: ')' without a matching '('")
        raise self.error(f"expected a property or a value, found {self.found()}")

    def parse_literal(self) -> Lit:
        tok = self.advance()
        if tok.kind == "ident":
            return Lit({"true": True, "false": False, "null": None}[tok.value])
        return Lit(tok.value)

    def parse_call(self) -> Node:
        name_tok = self.advance()
        name = name_tok.value
        if name not in FUNCTIONS:
            if name in ("any", "all"):
                raise self.error(
                    f"{name!r} follows a collection, as in proxyAddresses/{name}(a: …)", name_tok
                )
            known = ", ".join(sorted(FUNCTIONS))
            raise self.error(f"unknown function {name!r} (known: {known})", name_tok)
        opener = self.advance()  # "("
        args: list[Node] = []
        while True:
            start = self.tok
            arg, kind = self.parse_term()
            self.require_value(arg, kind, start, f"as an argument of {name}()")
            if isinstance(arg, Path):
                check_text(self.text, arg, start, f"{name}()")
            args.append(arg)
            if self.is_punct(","):
                self.advance()
                continue
            self.close(opener, f"{name}()")
            break
        if len(args) != 2:
            raise self.error(
                f"{name}() takes 2 arguments (a property and a string), found {len(args)}",
                name_tok,
            )
        return Call(name, (args[0], args[1]))

    def parse_path(self) -> tuple[Node, TermKind]:
        head = self.advance()
        is_var = head.value in self.scope
        if not is_var:
            problem = property_name_problem(head.value)
            if problem:
                raise self.error(problem, head)
            self.properties.add(head.value)
        rest: list[str] = []
        while self.is_punct("/"):
            slash = self.advance()
            seg = self.tok
            if seg.kind != "ident" or seg.value in KEYWORDS:
                raise self.error(f"expected a property name after '/', found {self.found()}")
            self.advance()
            if seg.value in ("any", "all") and self.is_punct("("):
                path = Path(head.value, tuple(rest), is_var)
                return self.parse_lambda(seg.value, path, head), "bool"
            if not rest and not is_var:
                prop_type = GRAPH_USER_PROPERTIES.get(head.value)
                if prop_type is not None and prop_type != "complex":
                    raise self.error(f"{head.value!r} has no sub-properties", slash)
            rest.append(seg.value)
        return Path(head.value, tuple(rest), is_var), "value"

    def parse_lambda(self, quantifier: str, path: Path, head: Token) -> Node:
        if not path.rest and not path.is_var:
            prop_type = GRAPH_USER_PROPERTIES.get(path.head)
            if prop_type is not None and prop_type not in ("strings", "complexes"):
                raise self.error(
                    f"{path.head!r} is not a collection ({quantifier}() needs one, "
                    "like proxyAddresses)",
                    head,
                )
        opener = self.advance()  # "("
        if self.is_punct(")"):
            if quantifier == "all":
                raise self.error("all() needs a condition, as in proxyAddresses/all(a: …)")
            self.advance()
            return Lambda(quantifier, path, None, None)
        var = self.tok
        if var.kind != "ident" or var.value in KEYWORDS:
            raise self.error(
                f"expected a variable name in {quantifier}(a: …), found {self.found()}"
            )
        self.advance()
        self.expect_punct(":", f"after the variable of {quantifier}({var.value}: …)")
        self.scope.append(var.value)
        try:
            with self.nested(opener):
                body = self.parse_or()
        finally:
            self.scope.pop()
        self.close(opener, f"{quantifier}()")
        return Lambda(quantifier, path, var.value, body)

    # -- checks

    def nested(self, opener: Token) -> Depth:
        return Depth(self, opener)

    def require_value(self, node: Node, kind: TermKind, start: Token, where: str) -> None:
        if kind != "value":
            raise self.error(f"expected a property or a value {where}, found a condition", start)


class Depth:
    """Bounds the nesting so a pathological filter is an error, not a RecursionError."""

    def __init__(self, parser: Parser, opener: Token) -> None:
        self.parser = parser
        self.opener = opener

    def __enter__(self) -> None:
        if self.parser.depth >= MAX_DEPTH:
            raise self.parser.error(
                f"the filter is nested more than {MAX_DEPTH} levels deep", self.opener
            )
        self.parser.depth += 1

    def __exit__(self, *exc: object) -> None:
        self.parser.depth -= 1


@dataclass(frozen=True)
class Filter:
    """A parsed ``$filter``: ``matches(user_json)`` tells whether the user is in scope."""

    source: str
    properties: frozenset[str]  # every Graph property the filter reads (for $select)
    _root: Node = field(repr=False, compare=False)

    def matches(self, data: Mapping[str, Any]) -> bool:
        """Whether the user's Graph JSON (camelCase keys; missing = null) passes the filter."""
        return bool(self._root.eval(data, {}))


def parse_filter(text: str) -> Filter:
    """Parse an OData ``$filter`` expression.

    Raises:
        FilterError: the text is not a supported filter; the message quotes the position.
    """
    parser = Parser(text)
    root = parser.parse()
    return Filter(source=text.strip(), properties=frozenset(parser.properties), _root=root)
