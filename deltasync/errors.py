"""Every exception deltasync raises, named for what the caller should do.

::

    DeltaSyncError
    ├── ConfigError                 fix the configuration file (exit 2)
    │   ├── ExpressionError         a field_mapping expression is invalid
    │   └── FilterError             advanced.user_filter is not a filter deltasync can evaluate
    ├── UsageError                  fix the command line (exit 2)
    ├── LeaseHeldError              another run is active; try later (exit 75)
    ├── DeltaTokenExpiredError      the engine starts a full round by itself
    ├── RunFailedError              stop the run; nothing half-applied is lost (exit 1)
    │   ├── AuthError               a credential was rejected (Graph or ELIZA)
    │   ├── PermissionDeniedError   a credential lacks a permission
    │   ├── ServiceUnavailableError network / 5xx / 429 still failing after retries
    │   ├── BadPayloadError         a Graph page could not be understood
    │   └── StateStoreError         the state database is unusable
    └── ObjectRejectedError         record this object as failed, go on with the others (exit 3)
        └── ConflictError           matching found an ambiguous or protected account

:func:`exit_code_for` is the one place that maps them to exit codes.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any


class DeltaSyncError(Exception):
    """Root of deltasync's own errors."""

    exit_code = 1


class ConfigError(DeltaSyncError):
    """The configuration is invalid; ``problems`` lists every one, each naming key and file."""

    exit_code = 2

    def __init__(self, problems: Sequence[str] | str) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("\n".join(self.problems))


class ExpressionError(ConfigError, ValueError):
    """A mapping expression is invalid; the message says what is wrong.

    ``problems`` lists every problem found (one for ``compile_expr``, one per bad field for
    ``merge_mapping``, each prefixed with its field name); the message joins them with ``"; "``.
    Raised at evaluation time too, when ``date`` meets a value that is no date: the engine then
    fails only that object.
    """

    def __init__(self, message: str, problems: Sequence[str] | None = None) -> None:
        DeltaSyncError.__init__(self, message)
        self.problems = list(problems) if problems else [message]


class FilterError(ConfigError, ValueError):
    """The filter text is not a filter deltasync can evaluate; the message says where."""


class UsageError(DeltaSyncError):
    """The command line asks for something that cannot be done."""

    exit_code = 2


class LeaseHeldError(DeltaSyncError):
    """Another run holds the lease on the state database."""

    exit_code = 75


class DeltaTokenExpiredError(DeltaSyncError):
    """Graph no longer accepts the stored delta/skip link; a full round is needed."""


class RunFailedError(DeltaSyncError):
    """The run cannot go on; the mirror and links stay consistent."""

    exit_code = 1


class AuthError(RunFailedError):
    """A credential was rejected (Entra app, or ELIZA API token)."""


class PermissionDeniedError(RunFailedError):
    """A credential is valid but lacks a permission; the message names it."""


class ServiceUnavailableError(RunFailedError):
    """A service kept failing (network, 5xx, 429) after every retry."""


class BadPayloadError(RunFailedError):
    """Graph sent something deltasync cannot interpret; the message names the page."""


class StateStoreError(RunFailedError):
    """The state database cannot be used."""


class ObjectRejectedError(DeltaSyncError):
    """ELIZA rejected one object's write; the others go on (exit 3 at the end)."""

    exit_code = 3

    def __init__(self, message: str, *, status: int | None = None, body: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.body = body


class ConflictError(ObjectRejectedError):
    """Matching refused to link: two candidates, a protected account, or a taken key."""


def exit_code_for(exc: BaseException) -> int:
    """The process exit code for an exception that ended a command."""
    if isinstance(exc, DeltaSyncError):
        return exc.exit_code
    return 1


_OBJECT_REPR = re.compile(r"\s*(?:\b\w+:)?<[^<>]*\bobject at 0x[0-9a-fA-F]+>")


def without_reprs(text: str) -> str:
    """``text`` without Python object reprs, such as aiohttp's ``ssl:<ssl.SSLContext object at
    0x…>`` in "Cannot connect to host h:443 ssl:<…> [Connection refused]"."""
    return _OBJECT_REPR.sub("", text).strip(" ,;")
