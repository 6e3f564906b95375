"""Faults a test queues for matching ELIZA requests: errors, throttling, lost responses."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from deltasync.sandbox.eliza.wire import html, json_response, reason


@dataclass
class Fault:
    method: str | None
    path_contains: str | None
    remaining: int
    status: int
    retry_after: str | None
    body: Any
    lose: bool  # apply the request, then answer ``status`` instead of the real response
    delay_s: float = 0.0  # apply the request, answer it this much later (a slow ELIZA)

    def matches(self, method: str, path: str) -> bool:
        if self.method is not None and self.method.upper() != method:
            return False
        return self.path_contains is None or self.path_contains in path


class FaultQueue:
    """Queued faults; the first one matching a request answers it."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []

    def add(
        self,
        *,
        method: str | None,
        path_contains: str | None,
        status: int,
        n: int,
        retry_after: str | None,
        body: Any,
        lose: bool,
        delay_s: float = 0.0,
    ) -> None:
        """Queue a fault for the next ``n`` matching requests."""
        self._faults.append(
            Fault(method, path_contains, n, status, retry_after, body, lose, delay_s)
        )

    def take(self, method: str, path: str) -> Fault | None:
        """The fault that answers this request (one of its ``n`` used up), or None."""
        for fault in self._faults:
            if fault.remaining > 0 and fault.matches(method, path):
                fault.remaining -= 1
                self._faults = [f for f in self._faults if f.remaining > 0]
                return fault
        return None


def fault_response(fault: Fault) -> httpx.Response:
    """The answer a fault gives: Django's HTML error page unless a body was queued."""
    headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
    if fault.body is None:
        if fault.status == 429:
            detail = "Die Anfrage wurde gedrosselt."
            return json_response(429, {"detail": detail}, headers)
        response = html(fault.status, f"{fault.status} {reason(fault.status)}")
    elif isinstance(fault.body, (bytes, str)):
        response = httpx.Response(fault.status, content=fault.body)
    else:
        response = json_response(fault.status, fault.body)
    response.headers.update(headers)
    return response
