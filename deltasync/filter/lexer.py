"""The filter's tokens: identifiers, quoted strings, numbers, date literals, punctuation."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Literal

from deltasync.errors import FilterError

TokKind = Literal["ident", "string", "int", "datetime", "punct", "end"]


@dataclass(frozen=True)
class Token:
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


def literal_datetime(text: str) -> datetime:
    """A date or date-time literal as an aware datetime (a date is midnight UTC)."""
    value = datetime.fromisoformat(text)
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch.isspace():
            i += 1
        elif ch in _PUNCT:
            tokens.append(Token("punct", ch, ch, i))
            i += 1
        elif ch == "'":
            i = _read_string(text, i, tokens)
        elif ch in _DIGITS or (ch == "-" and i + 1 < n and text[i + 1] in _DIGITS):
            i = _read_number(text, i, tokens)
        elif match := _IDENT_RE.match(text, i):
            tokens.append(Token("ident", match.group(), match.group(), i))
            i = match.end()
        else:
            hint = _HINTS.get(ch)
            suffix = f" ({hint})" if hint else ""
            raise error_at(text, i, f"unexpected character {ch!r}{suffix}")
    tokens.append(Token("end", "", None, n))
    return tokens


def _read_string(text: str, start: int, tokens: list[Token]) -> int:
    chars: list[str] = []
    i = start + 1
    while i < len(text):
        if text[i] == "'":
            if text.startswith("''", i):
                chars.append("'")
                i += 2
                continue
            tokens.append(Token("string", text[start : i + 1], "".join(chars), start))
            return i + 1
        chars.append(text[i])
        i += 1
    raise error_at(text, start, "unterminated string (a quote inside a string is written '')")


_DIGITS = frozenset("0123456789")  # str.isdigit() also accepts "²", which int() refuses


def _read_number(text: str, start: int, tokens: list[Token]) -> int:
    if match := _DATETIME_RE.match(text, start):
        try:
            value = literal_datetime(match.group())
        except ValueError:
            raise error_at(text, start, f"invalid date {match.group()!r}") from None
        tokens.append(Token("datetime", match.group(), value, start))
        end = match.end()
    else:
        match = _INT_RE.match(text, start)
        assert match is not None  # the caller saw a digit
        tokens.append(Token("int", match.group(), int(match.group()), start))
        end = match.end()
    if end < len(text) and (text[end].isalnum() or text[end] in "._"):
        raise error_at(text, start, f"invalid number {text[start : end + 1]!r}…")
    return end


def error_at(text: str, pos: int, what: str) -> FilterError:
    return FilterError(f"{what} at position {pos + 1} in: {text}")
