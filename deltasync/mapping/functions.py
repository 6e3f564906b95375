"""The functions a mapping expression applies after a ``|``, and the helpers behind them.

``primary_smtp`` is shared with matching (a soft match by the primary address).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, Final
from zoneinfo import ZoneInfo

from deltasync.errors import ExpressionError


def primary_smtp(proxy_addresses: Any) -> str | None:
    """The primary address of a ``proxyAddresses`` list: the one after the uppercase ``SMTP:``.

    Aliases carry a lowercase ``smtp:`` and other types (``SIP:``, ``X500:``) are ignored.
    Returns None for None (or anything not a list), an empty list or a list without a primary
    address. A single string is read as a one-item list.
    """
    if isinstance(proxy_addresses, str):
        items: Iterable[Any] = [proxy_addresses]
    elif isinstance(proxy_addresses, list | tuple):
        items = proxy_addresses
    else:
        return None
    for item in items:
        if isinstance(item, str) and item.startswith("SMTP:"):
            address = item[len("SMTP:") :].strip()
            if address:
                return address
    return None


# Lowercase name particles that do not give an initial ("Anna-Lena von Arx" → "ALA").
_PARTICLE_WORDS: Final = (
    "af al am av d da das de del della den der des di do dos du el la le lo ten ter "
    "van vom von y zu zum zur"
)
_PARTICLES: Final = frozenset(_PARTICLE_WORDS.split())
_WORD_SPLIT: Final = re.compile(r"[\s\-‐‑–]+")


def initials(text: str) -> str:
    """The initials of a name, uppercase: ``"Max Muster"`` → ``"MM"``.

    Rule: the name is split at spaces and hyphens; each part gives its first letter, so a
    double name gives two (``"Anna-Lena von Arx"`` → ``"ALA"``, ``"Hans-Peter Müller"`` →
    ``"HPM"``). Name particles written in lowercase (von, van, de, di, du, zu, …) are skipped
    unless the name has nothing else; capitalised ones count (``"Van Gogh"`` → ``"VG"``).
    Characters before the first letter (``"O'Brien"`` keeps ``O``, ``"(Max)"`` gives ``M``) and
    parts without a letter are ignored. An empty or letter-less text gives ``""``.
    """
    parts = [part for part in _WORD_SPLIT.split(text) if any(ch.isalpha() for ch in part)]
    kept = [part for part in parts if part not in _PARTICLES] or parts
    letters = (next(ch for ch in part if ch.isalpha()) for part in kept)
    return "".join(letter.upper() for letter in letters)


def _each(fn: Callable[[str], Any]) -> Callable[[Any], Any]:
    """Lift a text function: None stays None, lists map item-wise, non-text passes through."""

    def apply(value: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, list | tuple):
            return [apply(item) for item in value]
        if isinstance(value, str):
            return fn(value)
        return value

    return apply


def _to_date(value: Any, tz: ZoneInfo) -> Any:
    """An ISO 8601 date-time as a calendar date in ``tz`` (a naive date-time counts as UTC)."""

    def convert(item: Any) -> Any:
        if item is None:
            return None
        if isinstance(item, list | tuple):
            return [convert(x) for x in item]
        if isinstance(item, datetime):
            moment = item
        elif isinstance(item, date):
            return item.isoformat()
        elif isinstance(item, str):
            text = item.strip()
            try:
                return date.fromisoformat(text).isoformat()
            except ValueError:
                pass
            try:
                moment = datetime.fromisoformat(text)
            except ValueError:
                raise ExpressionError(
                    f"date: cannot read {item!r} as an ISO 8601 date or date-time"
                ) from None
        else:
            return item
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment.astimezone(tz).date().isoformat()

    return convert(value)


@dataclass(frozen=True)
class Step:
    name: str
    apply: Callable[[Any, ZoneInfo], Any] = field(repr=False, compare=False)


def _first(count: int) -> Callable[[Any, ZoneInfo], Any]:
    take = _each(lambda text: text[:count])
    return lambda value, tz: take(value)


_TEXT_FILTERS: Final[Mapping[str, Callable[[str], Any]]] = {
    "trim": str.strip,
    "upper": str.upper,
    "lower": str.lower,
    "initials": initials,
}
_KNOWN_FILTERS: Final = "date, first:N, initials, lower, primary_smtp, trim, upper"


def compile_filter(spec: str, pos: int) -> Step:
    name, colon, arg = (piece.strip() for piece in spec.partition(":"))
    if not name:
        raise ExpressionError(f"missing filter name after '|' at position {pos}")
    if name == "first":
        if not colon:
            raise ExpressionError("filter 'first' needs a count, as in first:1")
        if not re.fullmatch(r"[0-9]+", arg) or int(arg) < 1:
            raise ExpressionError(
                f"filter 'first' needs a whole number of characters ≥ 1, found {arg!r}"
            )
        return Step(f"first:{int(arg)}", _first(int(arg)))
    if name in _TEXT_FILTERS:
        step = _each(_TEXT_FILTERS[name])
        apply: Callable[[Any, ZoneInfo], Any] = lambda value, tz: step(value)  # noqa: E731
    elif name == "date":
        apply = _to_date
    elif name == "primary_smtp":
        apply = lambda value, tz: primary_smtp(value)  # noqa: E731
    else:
        raise ExpressionError(f"unknown filter {name!r} (known: {_KNOWN_FILTERS})")
    if colon:
        raise ExpressionError(f"filter {name!r} takes no argument, found {spec.strip()!r}")
    return Step(name, apply)
