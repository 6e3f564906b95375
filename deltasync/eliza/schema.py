"""Reading an ELIZA instance's OpenAPI schema: which fields a resource has."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def schema_fields(schema: Mapping[str, Any], path: str) -> frozenset[str] | None:
    """The field names an OpenAPI document gives for a resource path (``/api/user`` or ``user``).

    Looks at the list path (with or without trailing slash): the POST request body, else the
    GET response items; follows ``$ref`` into ``components.schemas``. None if not described.
    """
    paths = schema.get("paths")
    if not isinstance(paths, Mapping):
        return None
    base = "/" + path.strip("/")
    if not base.startswith("/api/"):
        base = "/api" + base  # a resource path relative to /api/, as in eliza.paths
    entry = paths.get(base) or paths.get(base + "/")
    if not isinstance(entry, Mapping):
        return None
    candidates: list[Any] = []
    post = entry.get("post")
    if isinstance(post, Mapping):
        candidates.append(_dig(post, "requestBody", "content", "application/json", "schema"))
    get = entry.get("get")
    if isinstance(get, Mapping):
        listed = _dig(get, "responses", "200", "content", "application/json", "schema")
        candidates.append(_dig(listed, "items"))
        results = _dig(_resolve_ref(schema, listed), "properties", "results", "items")
        candidates.append(results)
    for candidate in candidates:
        resolved = _resolve_ref(schema, candidate)
        props = _dig(resolved, "properties")
        if isinstance(props, Mapping):
            return frozenset(str(k) for k in props)
    return None


def _dig(value: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def _resolve_ref(schema: Mapping[str, Any], value: Any) -> Any:
    for _ in range(10):  # refs may chain; a cycle is not followed forever
        ref = _dig(value, "$ref")
        if not isinstance(ref, str) or not ref.startswith("#/"):
            return value
        value = _dig(schema, *ref[2:].split("/"))
    return value
