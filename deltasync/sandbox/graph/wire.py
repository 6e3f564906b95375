"""What goes over the wire: JSON responses, Graph error bodies and the request log."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

import httpx

_JSON_CONTENT_TYPE: Final = (
    "application/json;odata.metadata=minimal;odata.streaming=true;"
    "IEEE754Compatible=false;charset=utf-8"
)
_SYNC_STATE_MESSAGE: Final = (
    "The sync state generation is not found. The delta token is expired and data must be "
    "synchronized again."
)
_RESYNC_MESSAGE: Final = (
    "Resync required. Replace any local items with the server's version (including deletes) "
    "if you're sure that the service was up to date with your local changes when you last "
    "synced. Upload any local changes that the server doesn't know about."
)
_DEFAULT_MESSAGES: Final[dict[str, str]] = {
    "syncStateNotFound": _SYNC_STATE_MESSAGE,
    "resyncRequired": _RESYNC_MESSAGE,
    "InvalidAuthenticationToken": "Access token has expired or is not yet valid.",
    "Authorization_RequestDenied": "Insufficient privileges to complete the operation.",
    "TooManyRequests": "Too many requests, please retry later.",
    "generalException": "An internal server error occurred while processing the request.",
    "serviceNotAvailable": "The service is temporarily unavailable. Please retry later.",
    "gatewayTimeout": "The gateway did not receive a timely response from the upstream server.",
    "BadGateway": "The gateway received an invalid response from the upstream server.",
    "Request_BadRequest": "Invalid request.",
    "Request_ResourceNotFound": "Resource not found.",
}
DEFAULT_CODES: Final[dict[int, str]] = {
    400: "resyncRequired",
    401: "InvalidAuthenticationToken",
    403: "Authorization_RequestDenied",
    404: "Request_ResourceNotFound",
    410: "resyncRequired",
    429: "TooManyRequests",
    500: "generalException",
    502: "BadGateway",
    503: "serviceNotAvailable",
    504: "gatewayTimeout",
}
# Headers a test may want to look at; Authorization is kept only as "Bearer ***".
_LOGGED_HEADERS: Final = (
    "prefer",
    "client-request-id",
    "retry-attempt",
    "consistencylevel",
    "x-ms-throttle-priority",
    "content-type",
    "user-agent",
)


@dataclass(frozen=True)
class SimRequest:
    """One request a simulator received (secrets are never kept)."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    status: int


class GraphError(Exception):
    """Raised inside request handling; becomes a Graph error response."""

    def __init__(
        self, status: int, code: str, message: str | None = None, headers: Mapping[str, str] = {}
    ) -> None:
        super().__init__(code)
        self.status = status
        self.code = code
        self.message = message or _DEFAULT_MESSAGES.get(code, code)
        self.headers = dict(headers)


def log_request(request: httpx.Request, status: int) -> SimRequest:
    """The log entry for a request, with the credential masked."""
    headers = {k: request.headers[k] for k in _LOGGED_HEADERS if k in request.headers}
    if "authorization" in request.headers:
        scheme = request.headers["authorization"].split(" ", 1)[0]
        headers["authorization"] = f"{scheme} ***"
    query = dict(request.url.params.multi_items())
    return SimRequest(request.method, request.url.path, query, headers, status)


def prefers_minimal(request: httpx.Request) -> bool:
    """Whether the client asked for changed properties only (``Prefer: return=minimal``)."""
    for value in request.headers.get_list("prefer", split_commas=True):
        if value.replace(" ", "").lower() == "return=minimal":
            return True
    return False


def json_response(status: int, body: Any, headers: Mapping[str, str]) -> httpx.Response:
    content = json.dumps(body, ensure_ascii=False).encode("utf-8")
    return httpx.Response(
        status, headers={"Content-Type": _JSON_CONTENT_TYPE, **headers}, content=content
    )


def origin(url: str) -> str:
    """``scheme://host:port`` of a URL, lower-cased (what token audiences are compared by)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()
