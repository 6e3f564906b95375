"""Errors a test queues for the next Graph requests: 429 with ``Retry-After``, 5xx, 410, 401…"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import httpx

from deltasync.sandbox.graph.wire import DEFAULT_CODES, GraphError


@dataclass
class _Fault:
    status: int
    code: str
    remaining: int
    retry_after: float | None
    headers: dict[str, str]


class FaultQueue:
    """Queued faults, oldest first; each answers ``n`` requests before the next one does."""

    def __init__(self) -> None:
        self._faults: list[_Fault] = []

    def add(
        self,
        status: int,
        *,
        code: str | None,
        n: int,
        retry_after: float | None,
        headers: Mapping[str, str] | None,
    ) -> None:
        """Queue ``n`` answers with this status (the code defaults to Graph's for the status)."""
        if n < 1:
            raise ValueError("n must be at least 1")
        resolved = code or DEFAULT_CODES.get(status, "UnknownError")
        if status == 429 and retry_after is None:
            retry_after = 1
        self._faults.append(_Fault(status, resolved, n, retry_after, dict(headers or {})))

    def raise_next(self, request: httpx.Request, tenant_id: str) -> None:
        """Raise the oldest queued fault as a :class:`GraphError`; nothing when none is queued.

        410 carries a ``Location`` with the request URL and an empty ``$deltatoken``; 429
        carries ``Retry-After`` and the throttle headers.
        """
        if not self._faults:
            return
        fault = self._faults[0]
        fault.remaining -= 1
        if fault.remaining <= 0:
            self._faults.pop(0)
        headers = dict(fault.headers)
        if fault.retry_after is not None:
            seconds = fault.retry_after
            headers["Retry-After"] = str(int(seconds) if float(seconds).is_integer() else seconds)
        if fault.status == 429:
            headers.setdefault("x-ms-throttle-information", "ResourceUnitLimitExceeded")
            headers.setdefault(
                "x-ms-throttle-scope", f"Tenant_Application/ReadWrite/sandbox/{tenant_id}"
            )
        if fault.status == 410 and "Location" not in headers:
            url = request.url
            headers["Location"] = f"{url.scheme}://{url.netloc.decode()}{url.path}?$deltatoken="
        raise GraphError(fault.status, fault.code, None, headers)
