"""What the engine needs from the outside: a Graph source, an ELIZA target, a state store.

The engine imports none of ``graph/``, ``eliza/`` or ``state/``; the service layer hands in
the real clients, the engine tests hand in in-memory fakes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any, Protocol

from deltasync.models import (
    Cursor,
    DeltaPage,
    Failure,
    JournalEntry,
    Kind,
    Link,
    MirrorObject,
    ObjectChange,
    RoundKind,
)


class LookupRows(Protocol):
    """Rows held for the run's ELIZA lookups, out of the process's memory
    (``deltasync.state.scratch.ScratchRows``): by kind and id, found by indexed keys."""

    def put(self, kind: str, oid: Any, row: Mapping[str, Any], keys: Mapping[str, Any]) -> None: ...

    def drop(self, kind: str, oid: Any) -> None: ...

    def find(self, kind: str, name: str, value: Any) -> list[dict[str, Any]]: ...

    def rows(self, kind: str) -> Iterator[dict[str, Any]]: ...

    def count(self, kind: str) -> int: ...

    def close(self) -> None: ...


class Source(Protocol):
    """What the engine needs from the Graph client."""

    @property
    def requests(self) -> int: ...

    def initial_url(self, resource: str, select: Sequence[str]) -> str: ...

    async def fetch_page(self, url: str, *, minimal: bool) -> DeltaPage: ...


class Collections(Protocol):
    """The target's names of the collections the engine touches (``deltasync.eliza.Resource``)."""

    @property
    def USER(self) -> str: ...

    @property
    def PERSON(self) -> str: ...

    @property
    def MEMBERSHIP(self) -> str: ...

    @property
    def ORGUNIT(self) -> str: ...

    @property
    def CUSTOMGROUP(self) -> str: ...


def collection(names: Collections, kind: Kind) -> str:
    """The target's collection that holds objects of ``kind``."""
    return {
        Kind.USER: names.USER,
        Kind.PERSON: names.PERSON,
        Kind.MEMBERSHIP: names.MEMBERSHIP,
        Kind.GROUP: names.CUSTOMGROUP,
    }[kind]


class Target(Protocol):
    """What the engine needs from the ELIZA client (or its dry-run stand-in)."""

    @property
    def requests(self) -> int: ...

    @property
    def writes(self) -> int: ...

    async def find(self, resource: str, **filters: Any) -> list[dict[str, Any]]: ...

    async def list_all(self, resource: str, **filters: Any) -> list[dict[str, Any]]: ...

    def list_pages(self, resource: str) -> AsyncIterator[list[dict[str, Any]]]: ...

    async def get(self, resource: str, id: int) -> dict[str, Any] | None: ...

    async def create(self, resource: str, fields: Mapping[str, Any]) -> dict[str, Any]: ...

    async def update(self, resource: str, id: int, fields: Mapping[str, Any]) -> dict[str, Any]: ...

    async def delete(self, resource: str, id: int) -> None: ...

    async def known_fields(self, resource: str) -> frozenset[str] | None:
        """The fields ELIZA's schema lists for the resource; None: no schema, not listed."""
        ...


class PageCounts(Protocol):
    """What applying one delta page did to the mirror."""

    @property
    def seen(self) -> int: ...

    @property
    def changed(self) -> int: ...


class Store(Protocol):
    """What the engine needs from the state store (``deltasync.state.StateStore``)."""

    # mirror and cursors: written by the pull phase, in a dry run too
    def get_cursor(self, resource: str) -> Cursor | None: ...

    def begin_round(
        self, resource: str, kind: RoundKind, select_fingerprint: str, first_url: str
    ) -> Cursor: ...

    def apply_page(self, resource: str, page: DeltaPage, *, replace: bool) -> PageCounts: ...

    def dirty_objects(
        self,
        resource: str,
        now: datetime,
        *,
        everything: bool = False,
        after: str | None = None,
        limit: int | None = None,
    ) -> list[MirrorObject]: ...

    def apply_objects(self, resource: str, changes: Sequence[ObjectChange]) -> PageCounts: ...

    def objects_by_id(self, resource: str, ids: Iterable[str]) -> list[MirrorObject]: ...

    def renew_lease(self, holder: str, ttl_s: int | None = None) -> bool: ...

    # group memberships (mirrored by the pull phase)
    def all_objects(self, resource: str) -> list[MirrorObject]: ...

    def group_edges(self) -> list[tuple[str, str]]: ...

    def direct_groups(self, member_ids: Iterable[str]) -> dict[str, set[str]]: ...

    def group_members(self, group_ids: Iterable[str]) -> dict[str, list[tuple[str, str]]]: ...

    # reads of what earlier runs recorded
    def get_meta(self, key: str) -> str | None: ...

    def failures(self) -> list[Failure]: ...

    def links_for(self, entra_ids: Iterable[str]) -> dict[str, dict[Kind, Link]]: ...

    def all_links(self, kind: Kind) -> list[Link]: ...

    def eliza_ids(self, kind: Kind) -> dict[str, int]: ...

    def link_by_eliza_id(self, kind: Kind, eliza_id: int) -> Link | None: ...

    def any_link_matched(self, kind: Kind, prefix: str) -> bool: ...

    def count_links(self, kind: Kind, status: str | None = None) -> int: ...

    def journal_for(self, entra_id: str, limit: int = 50) -> list[JournalEntry]: ...

    def lookup_rows(self) -> LookupRows: ...

    @property
    def threadsafe(self) -> bool:
        """Whether a worker thread may write while the event loop's thread reads."""
        ...

    # what this run did: written only through the ledger
    def batch(self) -> AbstractContextManager[None]:
        """Every write inside joins one transaction, committed when the block ends."""
        ...

    def journal(
        self,
        run_id: int,
        entra_id: str,
        kind: Kind,
        action: str,
        eliza_id: int | None,
        changes: Mapping[str, Any],
    ) -> int: ...

    def record_push(
        self,
        item: Link | None,
        run_id: int,
        entra_id: str,
        kind: Kind,
        action: str,
        eliza_id: int | None,
        changes: Mapping[str, Any],
    ) -> None: ...

    def write_records(
        self,
        journal_rows: Sequence[tuple[int, str, Kind, str, int | None, Mapping[str, Any]]],
        links: Sequence[tuple[str, Kind, Link | None]],
        settled: Sequence[tuple[str, int]],
    ) -> None:
        """Journal rows, link saves (None: removal) in order, and settled versions, in bulk."""
        ...

    def unjournal(self, run_id: int, action: str, keys: Sequence[tuple[str, Kind]]) -> None:
        """Delete the run's journal entries ``action`` of these objects."""
        ...

    def save_link(self, item: Link) -> None: ...

    def delete_link(self, entra_id: str, kind: Kind) -> None: ...

    def record_failure(
        self,
        entra_id: str,
        kind: Kind,
        action: str,
        category: str,
        message: str,
        detail: Mapping[str, Any],
        failed_version: int,
        now: datetime,
    ) -> Failure: ...

    def clear_failure(self, entra_id: str, kind: Kind) -> None: ...

    def settle(self, entra_id: str, version: int) -> None: ...

    def set_meta(self, key: str, value: str) -> None: ...
