"""An in-memory fake of the engine's Store port: `calls` lists every write, `fail` crashes one."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from dataclasses import replace as dataclass_replace
from datetime import UTC, datetime
from typing import Any

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
from deltasync.state.scratch import ScratchRows

NOW = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)

#: The store methods that record what a run did (the ledger's); the mirror ones are not.
RECORDING = frozenset(
    {
        "journal",
        "record_push",
        "save_link",
        "delete_link",
        "record_failure",
        "clear_failure",
        "settle",
        "set_meta",
    }
)


@dataclass(frozen=True)
class Counts:
    seen: int
    changed: int


@dataclass
class FakeStore:
    """The state store in memory; ``calls`` lists every write, ``fail`` crashes one."""

    cursors: dict[str, Cursor] = field(default_factory=dict)
    mirror: dict[str, tuple[str, MirrorObject]] = field(default_factory=dict)
    links: dict[tuple[str, Kind], Link] = field(default_factory=dict)
    failed: dict[tuple[str, Kind], Failure] = field(default_factory=dict)
    entries: list[JournalEntry] = field(default_factory=list)
    meta: dict[str, str] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)
    fail: dict[str, Exception] = field(default_factory=dict)
    lease_ok: bool = True
    events: list[str] = field(default_factory=list)  # shared with a FakeTarget: one timeline
    dirty_reads: list[tuple[str, str | None, int | None]] = field(default_factory=list)

    def _write(self, method: str) -> None:
        self.calls.append(method)
        if method in RECORDING:
            self.events.append(f"state.{method}")
        if method in self.fail:
            raise self.fail.pop(method)

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Writes apply at once in memory; a batch only groups them."""
        yield

    def recorded(self) -> list[str]:
        """The ledger's writes, in order."""
        return [c for c in self.calls if c in RECORDING]

    # mirror and cursors
    def get_cursor(self, resource: str) -> Cursor | None:
        return self.cursors.get(resource)

    def begin_round(self, resource: str, kind: RoundKind, fp: str, first_url: str) -> Cursor:
        self._write("begin_round")
        old = self.cursors.get(resource)
        cursor = Cursor(
            resource, old.delta_link if old else None, first_url, fp, kind, 0, NOW, None, None
        )
        self.cursors[resource] = cursor
        return cursor

    def apply_page(self, resource: str, page: DeltaPage, *, replace: bool) -> Counts:
        self._write("apply_page")
        changed = 0
        for c in page.changes:
            old = self.mirror.get(c.id)
            data = dict(c.props) if replace or old is None else {**old[1].data, **c.props}
            if old is None or old[1].data != data:
                version = old[1].version + 1 if old else 1
                settled = old[1].settled_version if old else 0
                self.mirror[c.id] = (resource, MirrorObject(c.id, data, None, version, settled))
                changed += 1
        cursor = self.cursors[resource]
        self.cursors[resource] = (
            dataclass_replace(cursor, delta_link=page.delta_link, next_link=None, round_kind=None)
            if page.delta_link
            else dataclass_replace(cursor, next_link=page.next_link)
        )
        return Counts(len(page.changes), changed)

    def dirty_objects(
        self,
        resource: str,
        now: datetime,
        *,
        everything: bool = False,
        after: str | None = None,
        limit: int | None = None,
    ) -> list[MirrorObject]:
        self.dirty_reads.append((resource, after, limit))
        found = sorted(
            (
                o
                for r, o in self.mirror.values()
                if r == resource
                and (everything or o.version > o.settled_version)
                and (after is None or o.id > after)
            ),
            key=lambda o: o.id,
        )
        return found if limit is None else found[:limit]

    def apply_objects(self, resource: str, changes: Sequence[ObjectChange]) -> Counts:
        self._write("apply_objects")
        changed = 0
        for c in changes:
            old = self.mirror.get(c.id)
            data = dict(c.props)
            if old is None or old[1].data != data:
                version = old[1].version + 1 if old else 1
                settled = old[1].settled_version if old else 0
                self.mirror[c.id] = (resource, MirrorObject(c.id, data, None, version, settled))
                changed += 1
        return Counts(len(changes), changed)

    def objects_by_id(self, resource: str, ids: Iterable[str]) -> list[MirrorObject]:
        wanted = set(ids)
        return sorted(
            (o for r, o in self.mirror.values() if r == resource and o.id in wanted),
            key=lambda o: o.id,
        )

    def renew_lease(self, holder: str, ttl_s: int | None = None) -> bool:
        return self.lease_ok

    # group memberships: the engine tests run without groups
    def all_objects(self, resource: str) -> list[MirrorObject]:
        return sorted((o for r, o in self.mirror.values() if r == resource), key=lambda o: o.id)

    def group_edges(self) -> list[tuple[str, str]]:
        return []

    def direct_groups(self, member_ids: Iterable[str]) -> dict[str, set[str]]:
        return {}

    def group_members(self, group_ids: Iterable[str]) -> dict[str, list[tuple[str, str]]]:
        return {}

    # reads
    def get_meta(self, key: str) -> str | None:
        return self.meta.get(key)

    def failures(self) -> list[Failure]:
        return list(self.failed.values())

    def links_for(self, entra_ids: Iterable[str]) -> dict[str, dict[Kind, Link]]:
        wanted = set(entra_ids)
        out: dict[str, dict[Kind, Link]] = {}
        for (eid, kind), lk in self.links.items():
            if eid in wanted:
                out.setdefault(eid, {})[kind] = lk
        return out

    def all_links(self, kind: Kind) -> list[Link]:
        return [lk for (_, k), lk in sorted(self.links.items()) if k == kind]

    def eliza_ids(self, kind: Kind) -> dict[str, int]:
        return {lk.entra_id: lk.eliza_id for (_, k), lk in self.links.items() if k == kind}

    def link_by_eliza_id(self, kind: Kind, eliza_id: int) -> Link | None:
        found = [lk for lk in self.links.values() if lk.kind == kind and lk.eliza_id == eliza_id]
        return found[0] if found else None

    def any_link_matched(self, kind: Kind, prefix: str) -> bool:
        return any(
            k == kind and lk.matched_by.startswith(prefix) for (_, k), lk in self.links.items()
        )

    threadsafe = False  # the ledger commits in the event loop: one timeline of events

    def lookup_rows(self) -> ScratchRows:
        return ScratchRows()

    def count_links(self, kind: Kind, status: str | None = None) -> int:
        return sum(1 for lk in self.all_links(kind) if status is None or lk.status == status)

    def journal_for(self, entra_id: str, limit: int = 50) -> list[JournalEntry]:
        return [e for e in reversed(self.entries) if e.entra_id == entra_id][:limit]

    # what a run did
    def journal(
        self,
        run_id: int,
        entra_id: str,
        kind: Kind,
        action: str,
        eliza_id: int | None,
        changes: Mapping[str, Any],
    ) -> int:
        self._write("journal")
        entry = JournalEntry(
            len(self.entries) + 1, run_id, NOW, entra_id, kind, action, eliza_id, changes
        )
        self.entries.append(entry)
        return entry.id

    def record_push(
        self,
        item: Link | None,
        run_id: int,
        entra_id: str,
        kind: Kind,
        action: str,
        eliza_id: int | None,
        changes: Mapping[str, Any],
    ) -> None:
        self._write("record_push")
        if item is None:
            self.links.pop((entra_id, kind), None)
        else:
            self.links[(entra_id, kind)] = item
        self.entries.append(
            JournalEntry(
                len(self.entries) + 1, run_id, NOW, entra_id, kind, action, eliza_id, changes
            )
        )

    def unjournal(self, run_id: int, action: str, keys: Sequence[tuple[str, Kind]]) -> None:
        self._write("unjournal")
        drop = set(keys)
        self.entries = [
            e
            for e in self.entries
            if not (e.run_id == run_id and e.action == action and (e.entra_id, e.kind) in drop)
        ]

    def write_records(
        self,
        journal_rows: Sequence[tuple[int, str, Kind, str, int | None, Mapping[str, Any]]],
        links: Sequence[tuple[str, Kind, Link | None]],
        settled: Sequence[tuple[str, int]],
    ) -> None:
        """As one transaction: every record is checked (a crash applies none), then applied."""
        for _ in journal_rows:
            self._write("journal")
        for _, _, item in links:
            self._write("save_link" if item is not None else "delete_link")
        for _ in settled:
            self._write("settle")
        for run_id, entra_id, kind, action, eliza_id, changes in journal_rows:
            self.entries.append(
                JournalEntry(
                    len(self.entries) + 1, run_id, NOW, entra_id, kind, action, eliza_id, changes
                )
            )
        for entra_id, kind, item in links:
            if item is None:
                self.links.pop((entra_id, kind), None)
            else:
                self.links[(entra_id, kind)] = item
        for entra_id, version in settled:
            resource, obj = self.mirror[entra_id]
            if obj.settled_version < version:
                self.mirror[entra_id] = (resource, dataclass_replace(obj, settled_version=version))

    def save_link(self, item: Link) -> None:
        self._write("save_link")
        self.links[(item.entra_id, item.kind)] = item

    def delete_link(self, entra_id: str, kind: Kind) -> None:
        self._write("delete_link")
        self.links.pop((entra_id, kind), None)

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
    ) -> Failure:
        self._write("record_failure")
        old = self.failed.get((entra_id, kind))
        item = Failure(
            entra_id,
            kind,
            action,
            category,
            message,
            detail,
            (old.attempts if old else 0) + 1,
            failed_version,
            now,
            now,
            now,
        )
        self.failed[(entra_id, kind)] = item
        return item

    def clear_failure(self, entra_id: str, kind: Kind) -> None:
        self._write("clear_failure")
        self.failed.pop((entra_id, kind), None)

    def settle(self, entra_id: str, version: int) -> None:
        self._write("settle")
        resource, obj = self.mirror[entra_id]
        if obj.settled_version < version:
            self.mirror[entra_id] = (resource, dataclass_replace(obj, settled_version=version))

    def set_meta(self, key: str, value: str) -> None:
        self._write("set_meta")
        self.meta[key] = value
