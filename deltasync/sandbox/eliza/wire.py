"""Responses as Django and DRF shape them, and the request log entry."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import httpx


class SimRequest(NamedTuple):
    """One request the simulator received (before any fault injection)."""

    method: str
    path: str
    query: dict[str, str]
    json: Any


def html(status: int, title: str) -> httpx.Response:
    page = (
        f"<!doctype html><html><head><title>{title}</title></head>"
        f"<body><h1>{title}</h1></body></html>"
    )
    return httpx.Response(status, text=page, headers={"Content-Type": "text/html; charset=utf-8"})


def json_response(
    status: int, body: Any, headers: Mapping[str, str] | None = None
) -> httpx.Response:
    return httpx.Response(status, json=body, headers=dict(headers or {}))


def reason(status: int) -> str:
    return httpx.codes.get_reason_phrase(status) or "Error"
