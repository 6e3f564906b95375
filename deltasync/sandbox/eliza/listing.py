"""List endpoints: django-filter's filters and DRF's limit/offset pagination (or a bare list)."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import httpx

from deltasync.sandbox.eliza.index import Index
from deltasync.sandbox.eliza.resources import FILTERS
from deltasync.sandbox.eliza.validation import FALSE, FILTER_NOT_INT, TRUE
from deltasync.sandbox.eliza.wire import json_response


def list_response(
    request: httpx.Request,
    objects: Mapping[int, dict[str, Any]],
    index: Index,
    resource: str,
    query: Mapping[str, str],
    max_limit: int,
) -> httpx.Response:
    """``GET`` on a list endpoint: unknown filters ignored, paged only when ``limit`` is given.

    Each filter is one index lookup; the ids left are sorted, and only the page is copied.
    """
    wanted: set[int] | None = None
    errors: dict[str, list[str]] = {}
    for name, kind in FILTERS[resource].items():
        value = query.get(name, "")
        if value == "":
            continue  # django-filter skips empty values
        match: Any
        if kind in ("iexact", "exact"):
            match = value
        elif kind == "bool":
            if value in TRUE:
                match = True
            elif value in FALSE:
                match = False
            else:
                continue  # NullBooleanSelect makes it "unknown", the filter is skipped
        else:
            try:
                match = int(value)
            except ValueError:
                errors[name] = [FILTER_NOT_INT]
                continue
        found = index.ids(resource, name, match)
        wanted = found if wanted is None else wanted & found
    if errors:
        return json_response(400, errors)
    ids = index.ordered(resource, objects) if wanted is None else sorted(wanted)
    limit = _positive_int(query.get("limit"), strict=True, cutoff=max_limit)
    if limit is None:
        return json_response(200, [copy.deepcopy(objects[i]) for i in ids])
    offset = _positive_int(query.get("offset"), strict=False) or 0
    count = len(ids)
    url = request.url
    next_url = None
    if offset + limit < count:
        next_url = str(url.copy_set_param("offset", str(offset + limit)))
    previous = None
    if offset > 0:
        if offset - limit <= 0:
            previous = str(url.copy_remove_param("offset"))
        else:
            previous = str(url.copy_set_param("offset", str(offset - limit)))
    results = [copy.deepcopy(objects[i]) for i in ids[offset : offset + limit]]
    page = {"count": count, "next": next_url, "previous": previous, "results": results}
    return json_response(200, page)


def _positive_int(value: str | None, *, strict: bool, cutoff: int | None = None) -> int | None:
    """DRF's ``_positive_int``: invalid (or 0 when strict) means "not given"."""
    if value is None:
        return None
    try:
        number = int(value)
    except ValueError:
        return None
    if number < 0 or (strict and number == 0):
        return None
    return min(number, cutoff) if cutoff is not None else number
