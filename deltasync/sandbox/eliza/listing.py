"""List endpoints: django-filter's filters and DRF's limit/offset pagination (or a bare list)."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import httpx

from deltasync.sandbox.eliza.validation import FALSE, FILTER_NOT_INT, TRUE
from deltasync.sandbox.eliza.wire import json_response


def list_response(
    request: httpx.Request,
    objects: Mapping[int, dict[str, Any]],
    filters: Mapping[str, str],
    query: Mapping[str, str],
    max_limit: int,
) -> httpx.Response:
    """``GET`` on a list endpoint: unknown filters ignored, paged only when ``limit`` is given."""
    rows = sorted(objects.values(), key=lambda o: o["id"])
    errors: dict[str, list[str]] = {}
    for name, kind in filters.items():
        value = query.get(name, "")
        if value == "":
            continue  # django-filter skips empty values
        if kind == "iexact":
            low = value.lower()
            rows = [o for o in rows if str(o.get(name) or "").lower() == low]
        elif kind == "exact":
            rows = [o for o in rows if o.get(name) == value]
        elif kind == "bool":
            if value in TRUE:
                rows = [o for o in rows if o.get(name) is True]
            elif value in FALSE:
                rows = [o for o in rows if o.get(name) is False]
            # any other value: NullBooleanSelect makes it "unknown", the filter is skipped
        else:
            try:
                wanted = int(value)
            except ValueError:
                errors[name] = [FILTER_NOT_INT]
                continue
            rows = [o for o in rows if o.get(name) == wanted]
    if errors:
        return json_response(400, errors)
    limit = _positive_int(query.get("limit"), strict=True, cutoff=max_limit)
    if limit is None:
        return json_response(200, copy.deepcopy(rows))
    offset = _positive_int(query.get("offset"), strict=False) or 0
    count = len(rows)
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
    results = copy.deepcopy(rows[offset : offset + limit])
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
