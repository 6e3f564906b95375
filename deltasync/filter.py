"""The ``advanced.user_filter`` OData ``$filter``, evaluated by deltasync itself.

Graph's delta query cannot filter (only ``id eq …``), so deltasync reads every user and applies
the administrator's filter to the mirrored JSON properties. This module parses the filter once
(at config load, so a typo is a configuration error) and evaluates it per user.

Supported (the subset of OData v4 that Entra's ``$filter`` offers on users)::

    or  <  and  <  not  <  comparison            (precedence, loosest first)
    eq ne gt ge lt le     prop in ('a', 'b')     ( … )
    startswith(p, 'x')    endswith(p, 'x')       contains(p, 'x')
    proxyAddresses/any(a: startswith(a, 'smtp:'))    proxyAddresses/all(a: …)   x/any()
    'text' (with '' for a quote)   42   -7   true   false   null
    2024-01-01   2024-01-01T08:00:00Z   (date and date-time literals, unquoted as in OData)
    onPremisesExtensionAttributes/extensionAttribute1   (a property of a complex property)

Semantics, chosen to match Entra where Entra has an answer:

- String comparisons and functions ignore case (Entra's do).
- A missing key is null. ``x eq null`` is true when ``x`` is missing or None; ``x ne 'a'`` is
  true for a null ``x``; ordering comparisons and functions with a null operand are false.
- Values of different types are never equal (``accountEnabled eq 'true'`` is a parse error
  for the well-known properties, and false for properties deltasync does not know).
- ``any``/``all`` over a null collection behave as over an empty one (``any`` false,
  ``all`` true); a bare ``coll/any()`` is true for a non-empty collection.
- A bare property (``accountEnabled``) is true only when its value is the boolean ``true``.

Errors raise :class:`FilterError`, whose message quotes the position (counted from 1) and the
filter text.
"""

from __future__ import annotations

import abc
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, Final, Literal

__all__ = [
    "GRAPH_USER_PROPERTIES",
    "Filter",
    "FilterError",
    "parse_filter",
    "property_name_problem",
]


class FilterError(ValueError):
    """The filter text is not a filter deltasync can evaluate; the message says where."""


# --------------------------------------------------------------------------------------------
# Graph property names

PropType = Literal["string", "bool", "datetime", "strings", "complex", "complexes"]


def _typed(prop_type: PropType, names: str) -> dict[str, PropType]:
    return dict.fromkeys(names.split(), prop_type)


#: The Graph v1.0 ``user`` properties deltasync knows the type of. Used to catch case typos
#: (``Mail``) and type mistakes (``accountEnabled eq 'true'``) at load time; any other
#: camelCase name (extension attributes, newer properties) is accepted unchecked.
GRAPH_USER_PROPERTIES: Final[Mapping[str, PropType]] = {
    **_typed(
        "string",
        "aboutMe ageGroup city companyName consentProvidedForMinor country creationType "
        "department displayName employeeId employeeType externalUserState faxNumber "
        "givenName id jobTitle legalAgeGroupClassification mail mailNickname manager "
        "mobilePhone mySite officeLocation onPremisesDistinguishedName onPremisesDomainName "
        "onPremisesImmutableId onPremisesSamAccountName onPremisesSecurityIdentifier "
        "onPremisesUserPrincipalName passwordPolicies postalCode preferredDataLocation "
        "preferredLanguage preferredName securityIdentifier state streetAddress surname "
        "usageLocation userPrincipalName userType",
    ),
    **_typed("bool", "accountEnabled onPremisesSyncEnabled showInAddressList"),
    **_typed(
        "datetime",
        "birthday createdDateTime deletedDateTime employeeHireDate employeeLeaveDateTime "
        "externalUserStateChangeDateTime hireDate lastPasswordChangeDateTime "
        "onPremisesLastSyncDateTime refreshTokensValidFromDateTime "
        "signInSessionsValidFromDateTime",
    ),
    **_typed(
        "strings",
        "businessPhones imAddresses interests otherMails pastProjects proxyAddresses "
        "responsibilities schools skills",
    ),
    **_typed(
        "complex",
        "authorizationInfo customSecurityAttributes employeeOrgData mailboxSettings "
        "onPremisesExtensionAttributes passwordProfile signInActivity",
    ),
    **_typed(
        "complexes",
        "assignedLicenses assignedPlans identities licenseAssignmentStates "
        "onPremisesProvisioningErrors provisionedPlans",
    ),
}

_NAME_RE: Final = re.compile(r"[a-z][A-Za-z0-9_]*\Z")
_NAME_MAX: Final = 120
_BY_FOLDED: Final = {name.casefold(): name for name in GRAPH_USER_PROPERTIES}


def property_name_problem(name: str) -> str | None:
    """Why ``name`` is not a plausible Graph property name, or None when it is.

    A Graph property name is camelCase: a lowercase ASCII letter, then letters, digits or
    underscores (``extension_<appId>_costCenter`` included). A name that differs from a known
    property only in case gets a "did you mean" hint.
    """
    if not name:
        return "a property name is empty"
    known = _BY_FOLDED.get(name.casefold())
    if known is not None and known != name:
        return (
            f"{name!r} is not a Graph property (names are case-sensitive: did you mean {known!r}?)"
        )
    if len(name) > _NAME_MAX:
        return f"{name[:20]!r}… is too long for a Graph property name"
    if not _NAME_RE.match(name):
        return (
            f"{name!r} is not a Graph property name (expected camelCase: a lowercase letter, "
            "then letters, digits or underscores, like accountEnabled)"
        )
    return None


# --------------------------------------------------------------------------------------------
# Tokens

TokKind = Literal["ident", "string", "int", "datetime", "punct", "end"]


@dataclass(frozen=True)
class _Token:
    kind: TokKind
    text: str  # the source text of the token
    value: Any  # str / int / datetime literal value, or the identifier / punctuation itself
    pos: int  # 0-based offset into the filter text


_DATETIME_RE: Final = re.compile(
    r"\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2})?)?"
)
_INT_RE: Final = re.compile(r"-?\d+")
_IDENT_RE: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_PUNCT: Final = frozenset("(),:/")
_HINTS: Final = {
    '"': "strings use single quotes: 'text'",
    "=": "compare with eq, ne, gt, ge, lt or le",
    "!": "compare with ne, negate with not",
    "<": "compare with lt or le",
    ">": "compare with gt or ge",
    "&": "combine with and",
    "|": "combine with or",
}


def _literal_datetime(text: str) -> datetime:
    """A date or date-time literal as an aware datetime (a date is midnight UTC)."""
    value = datetime.fromisoformat(text)
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch.isspace():
            i += 1
        elif ch in _PUNCT:
            tokens.append(_Token("punct", ch, ch, i))
            i += 1
        elif ch == "'":
            i = _read_string(text, i, tokens)
        elif ch.isdigit() or (ch == "-" and i + 1 < n and text[i + 1].isdigit()):
            i = _read_number(text, i, tokens)
        elif match := _IDENT_RE.match(text, i):
            tokens.append(_Token("ident", match.group(), match.group(), i))
            i = match.end()
        else:
            hint = _HINTS.get(ch)
            suffix = f" ({hint})" if hint else ""
            raise _error(text, i, f"unexpected character {ch!r}{suffix}")
    tokens.append(_Token("end", "", None, n))
    return tokens


def _read_string(text: str, start: int, tokens: list[_Token]) -> int:
    chars: list[str] = []
    i = start + 1
    while i < len(text):
        if text[i] == "'":
            if text.startswith("''", i):
                chars.append("'")
                i += 2
                continue
            tokens.append(_Token("string", text[start : i + 1], "".join(chars), start))
            return i + 1
        chars.append(text[i])
        i += 1
    raise _error(text, start, "unterminated string (a quote inside a string is written '')")


def _read_number(text: str, start: int, tokens: list[_Token]) -> int:
    if match := _DATETIME_RE.match(text, start):
        try:
            value = _literal_datetime(match.group())
        except ValueError:
            raise _error(text, start, f"invalid date {match.group()!r}") from None
        tokens.append(_Token("datetime", match.group(), value, start))
        end = match.end()
    else:
        match = _INT_RE.match(text, start)
        assert match is not None  # the caller saw a digit
        tokens.append(_Token("int", match.group(), int(match.group()), start))
        end = match.end()
    if end < len(text) and (text[end].isalnum() or text[end] in "._"):
        raise _error(text, start, f"invalid number {text[start : end + 1]!r}…")
    return end


def _error(text: str, pos: int, what: str) -> FilterError:
    return FilterError(f"{what} at position {pos + 1} in: {text}")


# --------------------------------------------------------------------------------------------
# Syntax tree. Every node evaluates against the user's data and the lambda variables in scope.

Scope = Mapping[str, Any]


class _Node(abc.ABC):
    @abc.abstractmethod
    def eval(self, data: Mapping[str, Any], scope: Scope) -> Any:
        """The node's value for one user's data."""


@dataclass(frozen=True)
class _Lit(_Node):
    value: Any

    def eval(self, data: Mapping[str, Any], scope: Scope) -> Any:
        return self.value


@dataclass(frozen=True)
class _Path(_Node):
    head: str
    rest: tuple[str, ...]
    is_var: bool  # a lambda's range variable, not a property

    def eval(self, data: Mapping[str, Any], scope: Scope) -> Any:
        value = scope.get(self.head) if self.is_var else data.get(self.head)
        for name in self.rest:
            value = value.get(name) if isinstance(value, Mapping) else None
        return value


@dataclass(frozen=True)
class _IsTrue(_Node):
    """A bare property used as a condition."""

    operand: _Node

    def eval(self, data: Mapping[str, Any], scope: Scope) -> Any:
        return self.operand.eval(data, scope) is True


@dataclass(frozen=True)
class _Not(_Node):
    operand: _Node

    def eval(self, data: Mapping[str, Any], scope: Scope) -> Any:
        return not self.operand.eval(data, scope)


@dataclass(frozen=True)
class _And(_Node):
    operands: tuple[_Node, ...]

    def eval(self, data: Mapping[str, Any], scope: Scope) -> Any:
        return all(node.eval(data, scope) for node in self.operands)


@dataclass(frozen=True)
class _Or(_Node):
    operands: tuple[_Node, ...]

    def eval(self, data: Mapping[str, Any], scope: Scope) -> Any:
        return any(node.eval(data, scope) for node in self.operands)


_ORDERINGS: Final[Mapping[str, Callable[[Any, Any], bool]]] = {
    "gt": operator.gt,
    "ge": operator.ge,
    "lt": operator.lt,
    "le": operator.le,
}
_COMPARISONS: Final = frozenset({"eq", "ne", *_ORDERINGS})


def _as_datetime(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    if isinstance(value, str):
        try:
            return _literal_datetime(value.strip())
        except ValueError:
            return None
    return None


def _comparable(a: Any, b: Any) -> tuple[Any, Any] | None:
    """Both values in a form Python can compare, or None when their types differ."""
    if isinstance(a, bool) or isinstance(b, bool):
        return (a, b) if isinstance(a, bool) and isinstance(b, bool) else None
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a, b
    if isinstance(a, datetime | date) or isinstance(b, datetime | date):
        da, db = _as_datetime(a), _as_datetime(b)
        return None if da is None or db is None else (da, db)
    if isinstance(a, str) and isinstance(b, str):
        return a.casefold(), b.casefold()
    return None


def _equal(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is None and b is None
    pair = _comparable(a, b)
    return pair is not None and pair[0] == pair[1]


@dataclass(frozen=True)
class _Compare(_Node):
    op: str
    left: _Node
    right: _Node

    def eval(self, data: Mapping[str, Any], scope: Scope) -> Any:
        a, b = self.left.eval(data, scope), self.right.eval(data, scope)
        if self.op == "eq":
            return _equal(a, b)
        if self.op == "ne":
            return not _equal(a, b)
        if a is None or b is None:
            return False
        pair = _comparable(a, b)
        return pair is not None and _ORDERINGS[self.op](*pair)


@dataclass(frozen=True)
class _In(_Node):
    operand: _Node
    values: tuple[Any, ...]

    def eval(self, data: Mapping[str, Any], scope: Scope) -> Any:
        value = self.operand.eval(data, scope)
        return any(_equal(value, candidate) for candidate in self.values)


_FUNCTIONS: Final[Mapping[str, Callable[[str, str], bool]]] = {
    "startswith": str.startswith,
    "endswith": str.endswith,
    "contains": lambda haystack, needle: needle in haystack,
}


@dataclass(frozen=True)
class _Call(_Node):
    name: str
    args: tuple[_Node, _Node]

    def eval(self, data: Mapping[str, Any], scope: Scope) -> Any:
        a, b = (arg.eval(data, scope) for arg in self.args)
        if not isinstance(a, str) or not isinstance(b, str):
            return False  # null (or not text): a function on it is false
        return _FUNCTIONS[self.name](a.casefold(), b.casefold())


@dataclass(frozen=True)
class _Lambda(_Node):
    quantifier: str  # "any" | "all"
    collection: _Path
    var: str | None
    body: _Node | None

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


# --------------------------------------------------------------------------------------------
# Parser

_KEYWORDS: Final = frozenset({"and", "or", "not", "in", "true", "false", "null", *_COMPARISONS})
_MAX_DEPTH: Final = 64
Kind = Literal["bool", "value"]


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "a number"
    if isinstance(value, datetime):
        return "a date"
    return "text"


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.i = 0
        self.depth = 0
        self.scope: list[str] = []  # lambda variables, innermost last
        self.properties: set[str] = set()

    # -- token helpers

    @property
    def tok(self) -> _Token:
        return self.tokens[self.i]

    def peek(self, ahead: int = 1) -> _Token:
        return self.tokens[min(self.i + ahead, len(self.tokens) - 1)]

    def advance(self) -> _Token:
        tok = self.tokens[self.i]
        self.i = min(self.i + 1, len(self.tokens) - 1)
        return tok

    def is_punct(self, ch: str, tok: _Token | None = None) -> bool:
        tok = tok or self.tok
        return tok.kind == "punct" and tok.value == ch

    def is_word(self, word: str, tok: _Token | None = None) -> bool:
        tok = tok or self.tok
        return tok.kind == "ident" and tok.value == word

    def error(self, what: str, tok: _Token | None = None) -> FilterError:
        return _error(self.text, (tok or self.tok).pos, what)

    def found(self, tok: _Token | None = None) -> str:
        tok = tok or self.tok
        return "the end of the filter" if tok.kind == "end" else repr(tok.text)

    def expect_punct(self, ch: str, what: str) -> _Token:
        if not self.is_punct(ch):
            raise self.error(f"expected {ch!r} {what}, found {self.found()}")
        return self.advance()

    def close(self, opener: _Token, what: str) -> None:
        """Consume the ')' that closes ``opener``."""
        tok = self.tok
        if tok.kind == "end":
            raise self.error(f"unbalanced parentheses: the '(' of {what} is never closed", opener)
        if not self.is_punct(")", tok):
            raise self.error(f"unexpected {self.found()} (expected ')' to close {what})")
        self.advance()

    # -- grammar

    def parse(self) -> _Node:
        if self.tok.kind == "end":
            raise FilterError("the filter is empty")
        node = self.parse_or()
        rest = self.tok
        if self.is_punct(")", rest):
            raise self.error("unbalanced parentheses: ')' without a matching '('")
        if rest.kind != "end":
            raise self.error(f"unexpected {self.found()}")
        return node

    def parse_or(self) -> _Node:
        operands = [self.parse_and()]
        while self.is_word("or"):
            self.advance()
            operands.append(self.parse_and())
        return operands[0] if len(operands) == 1 else _Or(tuple(operands))

    def parse_and(self) -> _Node:
        operands = [self.parse_not()]
        while self.is_word("and"):
            self.advance()
            operands.append(self.parse_not())
        return operands[0] if len(operands) == 1 else _And(tuple(operands))

    def parse_not(self) -> _Node:
        if self.is_word("not"):
            with self.nested(self.advance()):
                return _Not(self.parse_not())
        return self.parse_comparison()

    def parse_comparison(self) -> _Node:
        start = self.tok
        left, kind = self.parse_term()
        tok = self.tok
        if tok.kind == "ident" and tok.value in _COMPARISONS:
            self.require_value(left, kind, start, f"before {tok.value!r}")
            self.advance()
            right_start = self.tok
            right, right_kind = self.parse_term()
            self.require_value(right, right_kind, right_start, f"after {tok.value!r}")
            right = self.check_comparison(left, right, tok, start)
            left = self.check_comparison(right, left, tok, right_start)
            return _Compare(tok.value, left, right)
        if self.is_word("in"):
            self.require_value(left, kind, start, "before 'in'")
            return self.parse_in(left, start)
        if tok.kind == "ident" and tok.value not in ("and", "or"):
            if kind == "value":
                lowered = tok.value.lower()
                if lowered in _COMPARISONS or lowered in ("and", "or", "in"):
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
            return self.as_condition(left, start)
        return left

    def parse_in(self, left: _Node, start: _Token) -> _Node:
        self.advance()
        opener = self.expect_punct("(", "after 'in'")
        values: list[Any] = []
        while True:
            item = self.tok
            if item.kind in ("string", "int", "datetime") or (
                item.kind == "ident" and item.value in ("true", "false", "null")
            ):
                literal = self.check_comparison(left, self.parse_literal(), item, start)
                assert isinstance(literal, _Lit)
                values.append(literal.value)
            else:
                raise self.error(f"expected a value in the 'in' list, found {self.found()}")
            if self.is_punct(","):
                self.advance()
                continue
            self.close(opener, "the 'in' list")
            return _In(left, tuple(values))

    def parse_term(self) -> tuple[_Node, Kind]:
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
            if tok.value in _KEYWORDS:
                raise self.error(f"expected a property or a value, found {tok.value!r}")
            if self.is_punct("(", self.peek()):
                return self.parse_call(), "bool"
            return self.parse_path()
        if self.is_punct(")"):
            raise self.error("unbalanced parentheses: ')' without a matching '('")
        raise self.error(f"expected a property or a value, found {self.found()}")

    def parse_literal(self) -> _Lit:
        tok = self.advance()
        if tok.kind == "ident":
            return _Lit({"true": True, "false": False, "null": None}[tok.value])
        return _Lit(tok.value)

    def parse_call(self) -> _Node:
        name_tok = self.advance()
        name = name_tok.value
        if name not in _FUNCTIONS:
            if name in ("any", "all"):
                raise self.error(
                    f"{name!r} follows a collection, as in proxyAddresses/{name}(a: …)", name_tok
                )
            known = ", ".join(sorted(_FUNCTIONS))
            raise self.error(f"unknown function {name!r} (known: {known})", name_tok)
        opener = self.advance()  # "("
        args: list[_Node] = []
        while True:
            start = self.tok
            arg, kind = self.parse_term()
            self.require_value(arg, kind, start, f"as an argument of {name}()")
            if isinstance(arg, _Path):
                self.check_text(arg, start, f"{name}()")
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
        return _Call(name, (args[0], args[1]))

    def parse_path(self) -> tuple[_Node, Kind]:
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
            if seg.kind != "ident" or seg.value in _KEYWORDS:
                raise self.error(f"expected a property name after '/', found {self.found()}")
            self.advance()
            if seg.value in ("any", "all") and self.is_punct("("):
                path = _Path(head.value, tuple(rest), is_var)
                return self.parse_lambda(seg.value, path, head), "bool"
            if not rest and not is_var:
                prop_type = GRAPH_USER_PROPERTIES.get(head.value)
                if prop_type is not None and prop_type != "complex":
                    raise self.error(f"{head.value!r} has no sub-properties", slash)
            rest.append(seg.value)
        return _Path(head.value, tuple(rest), is_var), "value"

    def parse_lambda(self, quantifier: str, path: _Path, head: _Token) -> _Node:
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
            return _Lambda(quantifier, path, None, None)
        var = self.tok
        if var.kind != "ident" or var.value in _KEYWORDS:
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
        return _Lambda(quantifier, path, var.value, body)

    # -- checks

    def nested(self, opener: _Token) -> _Depth:
        return _Depth(self, opener)

    def require_value(self, node: _Node, kind: Kind, start: _Token, where: str) -> None:
        if kind != "value":
            raise self.error(f"expected a property or a value {where}, found a condition", start)

    def as_condition(self, node: _Node, start: _Token) -> _Node:
        if isinstance(node, _Lit):
            if isinstance(node.value, bool):
                return node
            raise self.error(f"expected a condition, found the value {start.text!r}", start)
        assert isinstance(node, _Path)
        prop_type = self.known_type(node)
        if prop_type not in (None, "bool"):
            raise self.error(
                f"{start.text!r} is not a condition (compare it, as in {start.text} eq '…')", start
            )
        return _IsTrue(node)

    def known_type(self, node: _Node) -> PropType | None:
        if isinstance(node, _Path) and not node.is_var and not node.rest:
            return GRAPH_USER_PROPERTIES.get(node.head)
        return None

    def check_text(self, node: _Path, start: _Token, where: str) -> None:
        prop_type = self.known_type(node)
        if prop_type is not None and prop_type != "string":
            raise self.error(f"{node.head!r} is not text ({where} needs text)", start)

    def check_comparison(self, prop: _Node, other: _Node, op: _Token, start: _Token) -> _Node:
        """Reject comparisons of well-known properties with values of the wrong type.

        Graph itself answers them with 400; silently evaluating them to false would take
        every user out of scope. Returns ``other``, a quoted date turned into a date.
        """
        prop_type = self.known_type(prop)
        if prop_type is None:
            return other
        assert isinstance(prop, _Path)
        name = prop.head
        if prop_type in ("strings", "complexes"):
            raise self.error(
                f"{name!r} is a collection (test its items: {name}/any(a: a eq '…'))", start
            )
        if prop_type == "complex":
            raise self.error(f"{name!r} has sub-properties (compare one: {name}/…)", start)
        if not isinstance(other, _Lit) or other.value is None:
            return other
        value = other.value
        if prop_type == "bool":
            if not isinstance(value, bool):
                raise self.error(
                    f"{name!r} is a boolean, compared with {_type_name(value)} (use true or false)",
                    start,
                )
            if op.value in _ORDERINGS:
                raise self.error(f"{name!r} is a boolean (compare it with eq or ne)", op)
        elif prop_type == "datetime":
            if isinstance(value, str):
                # Entra wants unquoted date literals; accept a quoted one that parses as a date.
                parsed = _as_datetime(value)
                if parsed is None:
                    raise self.error(
                        f"{name!r} is a date, compared with {value!r} "
                        "(use a date like 2024-01-01 or 2024-01-01T00:00:00Z)",
                        start,
                    )
                return _Lit(parsed)
            elif not isinstance(value, datetime):
                raise self.error(
                    f"{name!r} is a date, compared with {_type_name(value)} "
                    "(use a date like 2024-01-01 or 2024-01-01T00:00:00Z)",
                    start,
                )
        elif not isinstance(value, str):
            raise self.error(
                f"{name!r} is text, compared with {_type_name(value)} (quote it: '…')",
                start,
            )
        return other


class _Depth:
    """Bounds the nesting so a pathological filter is an error, not a RecursionError."""

    def __init__(self, parser: _Parser, opener: _Token) -> None:
        self.parser = parser
        self.opener = opener

    def __enter__(self) -> None:
        if self.parser.depth >= _MAX_DEPTH:
            raise self.parser.error(
                f"the filter is nested more than {_MAX_DEPTH} levels deep", self.opener
            )
        self.parser.depth += 1

    def __exit__(self, *exc: object) -> None:
        self.parser.depth -= 1


# --------------------------------------------------------------------------------------------
# Public API


@dataclass(frozen=True)
class Filter:
    """A parsed ``$filter``: ``matches(user_json)`` tells whether the user is in scope."""

    source: str
    properties: frozenset[str]  # every Graph property the filter reads (for $select)
    _root: _Node = field(repr=False, compare=False)

    def matches(self, data: Mapping[str, Any]) -> bool:
        """Whether the user's Graph JSON (camelCase keys; missing = null) passes the filter."""
        return bool(self._root.eval(data, {}))


def parse_filter(text: str) -> Filter:
    """Parse an OData ``$filter`` expression.

    Raises:
        FilterError: the text is not a supported filter; the message quotes the position.
    """
    parser = _Parser(text)
    root = parser.parse()
    return Filter(source=text.strip(), properties=frozenset(parser.properties), _root=root)
