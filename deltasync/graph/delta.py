"""Turns one raw Graph delta page into plain data, and names the property set a round tracks.

Pure: no I/O. The page is read as raw JSON rather than through the SDK's typed models,
because with ``Prefer: return=minimal`` an absent key means "unchanged" while an explicit
``null`` means "cleared", and the typed models turn both into ``None``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeAlias

from deltasync.errors import BadPayloadError
from deltasync.fields import GRAPH_USER_PROPERTIES
from deltasync.models import DeltaPage, ObjectChange, Removed

NEXT_LINK = "@odata.nextLink"
DELTA_LINK = "@odata.deltaLink"
MANAGER_DELTA = "manager@delta"

_REMOVED_REASONS = {"changed": Removed.CHANGED, "deleted": Removed.DELETED}
# $skiptoken / $deltatoken values (also URL-encoded as %24…), which can run to 8,000 chars.
_TOKEN_PARAM = re.compile(r"((?:\$|%24)(?:skiptoken|deltatoken)=)([^&#]*)", re.IGNORECASE)
_TOKEN_KEEP = 8
_URL_MAX = 300

_Bad: TypeAlias = Callable[[str], BadPayloadError]  # builds the page's error from a problem


def short_url(url: str) -> str:
    """The URL with its opaque state tokens cut short, fit for an error message or a log line."""

    def cut(match: re.Match[str]) -> str:
        token = match.group(2)
        if len(token) <= _TOKEN_KEEP + 3:
            return match.group(0)
        return f"{match.group(1)}{token[:_TOKEN_KEEP]}…({len(token)} chars)"

    shortened = _TOKEN_PARAM.sub(cut, url)
    if len(shortened) > _URL_MAX:
        shortened = shortened[:_URL_MAX] + f"…({len(url)} chars)"
    return shortened


def parse_page(raw: object, url_for_errors: str) -> DeltaPage:
    """Parse one page of a ``/users/delta`` (or ``/groups/delta``) round.

    Args:
        raw: the page's JSON, as ``json.loads`` returned it.
        url_for_errors: the URL the page was fetched from; only used to name it in errors.

    Returns:
        The page's changes in page order (an object may appear twice), each with ``props``
        holding exactly the keys the entry carries, ``id`` included, minus annotations
        (``@odata.*``, ``@removed``, ``*@delta``: any key with an ``@``); ``manager@delta``
        becomes ``props["manager"]``: the id of the last entry not marked ``@removed``, or
        ``None`` when there is none.

    Raises:
        BadPayloadError: the page is not shaped like a delta page; the message names the page.
    """

    def bad(problem: str) -> BadPayloadError:
        return BadPayloadError(f"Graph delta page {short_url(url_for_errors)}: {problem}")

    if not isinstance(raw, Mapping):
        raise bad(f"expected a JSON object, found {_kind(raw)}")
    value = raw.get("value")
    if not isinstance(value, list):
        found = "no 'value' key" if "value" not in raw else f"'value' is {_kind(value)}"
        raise bad(f"expected a 'value' list, found {found}")
    next_link = _link(raw, NEXT_LINK, bad)
    delta_link = _link(raw, DELTA_LINK, bad)
    if next_link is not None and delta_link is not None:
        raise bad(f"carries both {NEXT_LINK} and {DELTA_LINK}; a page has exactly one")
    if next_link is None and delta_link is None:
        raise bad(f"carries neither {NEXT_LINK} nor {DELTA_LINK}; a page has exactly one")
    changes = tuple(_change(entry, f"value[{i}]", bad) for i, entry in enumerate(value))
    return DeltaPage(changes=changes, next_link=next_link, delta_link=delta_link)


def select_for(properties: Iterable[str]) -> list[str]:
    """The ``$select`` list for some Graph properties: ``id`` first, the rest sorted, no repeats."""
    return ["id", *sorted(set(properties) - {"id"})]


def fingerprint(select: Iterable[str]) -> str:
    """A stable short hash of a property selection; a change means a new full round is needed."""
    canonical = ",".join(select_for(select))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


def _change(entry: object, where: str, bad: _Bad) -> ObjectChange:
    if not isinstance(entry, Mapping):
        raise bad(f"{where}: expected an object, found {_kind(entry)}")
    object_id = entry.get("id")
    if not isinstance(object_id, str) or not object_id:
        raise bad(f"{where}: expected a string 'id', found {_kind(object_id)}")
    removed = _removed(entry, f"{where} (id {object_id})", bad)
    props: dict[str, Any] = {key: val for key, val in entry.items() if not _is_annotation(key)}
    for key, val in props.items():
        if val is not None and not _has_type(key, val):
            raise bad(
                f"{where} (id {object_id}): {key!r} must be {_EXPECTED[GRAPH_USER_PROPERTIES[key]]}"
                f", found {_kind(val)}"
            )
    if MANAGER_DELTA in entry:
        props["manager"] = _manager(entry[MANAGER_DELTA], f"{where} (id {object_id})", bad)
    return ObjectChange(id=object_id, props=props, removed=removed)


def _removed(entry: Mapping[str, Any], where: str, bad: _Bad) -> Removed | None:
    if "@removed" not in entry:
        return None
    annotation = entry["@removed"]
    reason = annotation.get("reason") if isinstance(annotation, Mapping) else None
    if not isinstance(reason, str) or reason not in _REMOVED_REASONS:
        raise bad(
            f"{where}: '@removed' must be an object with reason 'changed' or 'deleted', "
            f"found {annotation!r:.80}"
        )
    return _REMOVED_REASONS[reason]


def _manager(entries: object, where: str, bad: _Bad) -> str | None:
    if not isinstance(entries, list):
        raise bad(f"{where}: '{MANAGER_DELTA}' must be a list, found {_kind(entries)}")
    manager: str | None = None
    for i, item in enumerate(entries):
        item_where = f"{where} {MANAGER_DELTA}[{i}]"
        if not isinstance(item, Mapping):
            raise bad(f"{item_where}: expected an object, found {_kind(item)}")
        if "@removed" in item:
            continue
        manager_id = item.get("id")
        if not isinstance(manager_id, str) or not manager_id:
            raise bad(f"{item_where}: expected a string 'id', found {_kind(manager_id)}")
        manager = manager_id
    return manager


def _link(raw: Mapping[str, Any], key: str, bad: _Bad) -> str | None:
    if key not in raw:
        return None
    link = raw[key]
    if not isinstance(link, str) or not link:
        raise bad(f"'{key}' must be a non-empty string, found {_kind(link)}")
    return link


_EXPECTED = {
    "string": "a string",
    "bool": "a boolean",
    "datetime": "a string",
    "strings": "a list of strings",
    "complex": "an object",
    "complexes": "a list of objects",
}


def _has_type(key: str, value: object) -> bool:
    """A known Graph property holds a value of its type (unknown properties are not checked):
    a page saying ``accountEnabled: "no"`` must not deprovision anyone."""
    expected = GRAPH_USER_PROPERTIES.get(key)
    if expected is None or key == "manager":
        return True
    if expected in ("string", "datetime"):
        return isinstance(value, str)
    if expected == "bool":
        return isinstance(value, bool)
    if expected == "strings":
        return isinstance(value, list) and all(isinstance(v, str) for v in value)
    if expected == "complex":
        return isinstance(value, Mapping)
    return isinstance(value, list) and all(isinstance(v, Mapping) for v in value)


def _is_annotation(key: str) -> bool:
    # Graph property names never contain "@"; every OData annotation does
    # (@odata.type, @removed, manager@delta, members@delta, prop@odata.type, ...).
    return "@" in key


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return "an empty string" if not value else "a string"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, Mapping):
        return "an object"
    return type(value).__name__
