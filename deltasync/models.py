"""Plain data shared by the layers; imports nothing that does I/O."""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


class Kind(enum.StrEnum):
    """The kinds of ELIZA object a link can point at."""

    USER = "user"
    PERSON = "person"
    MEMBERSHIP = "membership"


class Removed(enum.StrEnum):
    """Why an Entra object is gone from the tenant (deprovisioning evidence)."""

    CHANGED = "changed"  # Graph @removed reason "changed": soft-deleted, restorable ~30 days
    DELETED = "deleted"  # Graph @removed reason "deleted": permanently deleted
    ABSENT = "absent"  # missing from a *completed* full round


class LinkStatus(enum.StrEnum):
    """Where a link stands; stored as its value, so it compares equal to the stored string."""

    ACTIVE = "active"
    DEACTIVATED = "deactivated"  # deprovisioned by the sync; reversible
    DELETED = "deleted"  # deleted in ELIZA by the sync; a new object is created when back
    ENDED = "ended"  # a membership ended because the company changed (the link is dropped)
    PROTECTED = "protected"  # the account became a superuser or protected; hands off


class MatchedBy(enum.StrEnum):
    """How a link was made: created by the sync, or matched to an existing ELIZA object."""

    CREATED = "created"
    HARD = "hard"  # remote_key
    USER = "user"  # a person found through its linked user
    SOFT_USERNAME = "soft:username"
    SOFT_EMAIL = "soft:email"
    SOFT_PROXY = "soft:proxy"
    SOFT_USERNAME_EMAIL = "soft:username+email"
    SOFT_USERNAME_PROXY = "soft:username+proxy"
    SOFT_EMAIL_PROXY = "soft:email+proxy"
    SOFT_USERNAME_EMAIL_PROXY = "soft:username+email+proxy"

    @classmethod
    def soft(cls, attributes: Iterable[str]) -> MatchedBy:
        """The soft match on these attributes, in the order username, email, proxy."""
        return cls("soft:" + "+".join(attributes))


class RoundKind(enum.StrEnum):
    """A delta round reads everything (full) or only what changed (incremental)."""

    FULL = "full"
    INCREMENTAL = "incremental"


@dataclass(frozen=True)
class ObjectChange:
    """One entry of a Graph delta page.

    ``props`` holds exactly the keys present in the JSON (absent = unchanged on a minimal
    incremental round; ``None`` = cleared). ``manager@delta`` becomes the ``manager`` key
    (the manager's id, or ``None`` when removed).
    """

    id: str
    props: Mapping[str, Any]
    removed: Removed | None = None


@dataclass(frozen=True)
class DeltaPage:
    """One page of a delta round, parsed; exactly one of the two links is set."""

    changes: tuple[ObjectChange, ...]
    next_link: str | None
    delta_link: str | None


@dataclass(frozen=True)
class Cursor:
    """Where the delta reading of one resource stands."""

    resource: str
    delta_link: str | None
    next_link: str | None  # progress marker of an unfinished round
    select_fingerprint: str | None
    round_kind: RoundKind | None  # kind of the unfinished round, if any
    round_seq: int  # number of full rounds started (marks objects seen in the current one)
    round_started_at: datetime | None
    delta_committed_at: datetime | None  # when the last round completed
    full_completed_at: datetime | None  # when the last full round completed


@dataclass(frozen=True)
class MirrorObject:
    """The last known Entra attributes of one object, merged property by property."""

    id: str
    data: Mapping[str, Any]
    removed: Removed | None
    version: int
    settled_version: int
    updated_at: datetime | None = None


@dataclass(frozen=True)
class Link:
    """An ELIZA object that the sync created or matched, and what ELIZA last accepted."""

    entra_id: str
    kind: Kind
    eliza_id: int
    matched_by: MatchedBy
    matched_at: datetime
    pushed: Mapping[str, Any]  # field -> value ELIZA accepted
    pushed_version: int
    status: LinkStatus = LinkStatus.ACTIVE
    saved: Mapping[str, Any] = field(default_factory=dict)  # what deprovisioning must undo
    # ELIZA values adoption kept because Entra had none: field -> value ELIZA held. While
    # Entra's value stays empty the field is left alone; once Entra has one it is written.
    kept: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # the store hands in the stored strings; keep the enums true at run time
        object.__setattr__(self, "matched_by", MatchedBy(self.matched_by))
        object.__setattr__(self, "status", LinkStatus(self.status))


@dataclass(frozen=True)
class Failure:
    """An object whose push failed or conflicted; retried at ``next_retry_at``."""

    entra_id: str
    kind: Kind
    action: str
    category: str  # "error" | "conflict"
    message: str
    detail: Mapping[str, Any]
    attempts: int
    failed_version: int
    first_failed_at: datetime
    last_failed_at: datetime
    next_retry_at: datetime


@dataclass(frozen=True)
class RunRecord:
    """One run of a command, as the state database remembers it."""

    id: int
    command: str
    dry_run: bool
    started_at: datetime
    finished_at: datetime | None
    status: str  # "running" | "ok" | "partial" | "held" | "failed"
    exit_code: int | None
    report: Mapping[str, Any]


@dataclass(frozen=True)
class JournalEntry:
    """One change the sync applied in ELIZA (or a matching decision)."""

    id: int
    run_id: int
    at: datetime
    entra_id: str
    kind: Kind
    action: str
    eliza_id: int | None
    changes: Mapping[str, Any]


@dataclass(frozen=True)
class Probe:
    """One line of ``check``: what was tested, whether it passed, and the fix if not.

    ``ok`` is None for a line that neither passed nor failed: something that could not be
    verified (said so in ``detail``), which does not fail the check.
    """

    name: str
    ok: bool | None
    detail: str
    fix: str = ""
