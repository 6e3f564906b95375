"""OData query options on Graph requests: which are known, ``$select`` and the id ``$filter``."""

from __future__ import annotations

import re
from typing import Final

import httpx

from deltasync.sandbox.graph.schema import Schema
from deltasync.sandbox.graph.wire import GraphError

# Options that Graph rejects on users/groups delta (graph-delta.md §1.2).
UNSUPPORTED_DELTA_OPTIONS: Final = ("expand", "orderby", "search", "skip", "count")
_ODATA_OPTIONS: Final = frozenset(
    {
        "select",
        "filter",
        "expand",
        "orderby",
        "top",
        "skip",
        "skiptoken",
        "deltatoken",
        "search",
        "count",
        "format",
    }
)
_MAX_FILTER_IDS: Final = 50
_FILTER_TERM: Final = re.compile(r"\s*id\s+eq\s+'([^']*)'\s*", re.IGNORECASE)
_LIST_TERM: Final = re.compile(r"\s*(\w+)\s+eq\s+'((?:[^']|'')*)'\s*", re.IGNORECASE)


def options(request: httpx.Request) -> dict[str, str]:
    """The request's OData options by lower-case name without ``$``; a repeated one is a 400."""
    found: dict[str, str] = {}
    for key, value in request.url.params.multi_items():
        name = key.strip().lower()
        if name.startswith("$"):
            name = name[1:]
        elif name not in _ODATA_OPTIONS:
            continue  # not an OData option (api-version and the like): ignored
        if name in found:
            raise GraphError(
                400,
                "Request_BadRequest",
                f"Query option '${name}' was specified more than once, but it must be "
                "specified at most once.",
            )
        found[name] = value
    return found


def parse_select(schema: Schema, raw: str | None) -> tuple[str, ...]:
    """``id`` plus the selected properties in their own spelling (the defaults when empty)."""
    if raw is None or not raw.strip():
        return ("id", *schema.default_select)
    selected: list[str] = ["id"]
    for name in raw.split(","):
        if not name.strip():
            continue
        known = schema.canonical(name)
        if known is None:
            raise GraphError(
                400,
                "Request_BadRequest",
                f"Could not find a property named '{name.strip()}' on type "
                f"'{schema.odata_type.lstrip('#')}'.",
            )
        if known not in selected:
            selected.append(known)
    return tuple(selected)


def parse_filter(raw: str | None) -> frozenset[str] | None:
    """The ids of ``id eq '…' or …`` (the only ``$filter`` delta supports), None without one."""
    if raw is None:
        return None
    ids: list[str] = []
    for term in re.split(r"\s+or\s+", raw.strip(), flags=re.IGNORECASE):
        match = _FILTER_TERM.fullmatch(term)
        if match is None:
            raise GraphError(400, "Request_UnsupportedQuery", "Unsupported Query.")
        ids.append(match.group(1))
    if len(ids) > _MAX_FILTER_IDS:
        raise GraphError(
            400,
            "Request_UnsupportedQuery",
            f"Unsupported Query. At most {_MAX_FILTER_IDS} ids can be given in $filter.",
        )
    return frozenset(ids)


def list_filter(schema: Schema, raw: str | None) -> list[tuple[str, str]] | None:
    """``prop eq 'value' [and …]`` on a plain list (``GET /users``), None without a filter.

    Enough for looking an object up by ``userPrincipalName``, ``mail``, ``displayName`` or
    ``id``; anything else is ``Request_UnsupportedQuery``, as Graph answers an unsupported
    filter.
    """
    if raw is None or not raw.strip():
        return None
    terms: list[tuple[str, str]] = []
    for term in re.split(r"\s+and\s+", raw.strip(), flags=re.IGNORECASE):
        match = _LIST_TERM.fullmatch(term)
        known = schema.canonical(match.group(1)) if match else None
        if match is None or known in (None, schema.relation) or known in schema.collections:
            raise GraphError(400, "Request_UnsupportedQuery", "Unsupported Query.")
        terms.append((known, match.group(2).replace("''", "'")))
    return terms
