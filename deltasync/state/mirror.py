"""The ``mirror`` table: the Entra objects as the delta pages left them, with versions.

:meth:`MirrorStore.apply_page` stores a page's objects and its progress marker in one
transaction, so a crash between pages loses at most the page in flight.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, bindparam, exists, func, insert, or_, select, update

from deltasync.errors import StateStoreError
from deltasync.models import DeltaPage, MirrorObject, ObjectChange, Removed, RoundKind
from deltasync.state.base import StoreBase, chunks, plain, utcnow
from deltasync.state.cursors import cursor_row
from deltasync.state.groups import GROUPS_RESOURCE, apply_members, finish_full_round
from deltasync.state.meta import VersionCounter
from deltasync.state.tables import ADDRESS, cursor, failure, mirror


@dataclass(frozen=True)
class PageStats:
    """What applying one delta page did to the mirror."""

    seen: int  # distinct objects on the page
    changed: int  # objects whose data or removal changed (they got a new version)
    removed: int  # objects the page marked removed (Graph ``@removed``)
    absent: int = 0  # objects marked absent because the completed full round lacked them


class MirrorStore(StoreBase):
    """Delta pages into the mirror; the mirrored objects out, to plan and to show."""

    def apply_page(self, resource: str, page: DeltaPage, *, replace: bool) -> PageStats:
        """Merge one delta page into the mirror and store its link, in ONE transaction.

        Each change: ``@removed`` sets ``removed`` and keeps the data; otherwise the data is
        ``props`` (``replace=True``, full rounds) or ``{**old, **props}`` (incremental: an
        absent key is unchanged, ``None`` is cleared) and ``removed`` is cleared. Only an
        object whose data or removal really changed gets a new version, so replaying a page
        changes nothing. ``page.next_link`` becomes the progress marker; ``page.delta_link``
        completes the round, and a completed FULL round marks every object it did not return
        :attr:`Removed.ABSENT`.

        Raises:
            StateStoreError: no round was begun for ``resource``, or the database failed.
        """
        if (page.next_link is None) == (page.delta_link is None):
            raise StateStoreError("a delta page needs exactly one of nextLink and deltaLink")
        now = utcnow()
        with self._write() as conn:
            cur = cursor_row(conn, resource, lock=True)
            if cur is None:
                raise StateStoreError(f"no delta round was begun for {resource!r}")
            full = cur.round_kind == RoundKind.FULL.value
            before = _mirror_states(conn, resource, [c.id for c in page.changes])
            after = _merge(page.changes, before, replace=replace)
            version = VersionCounter(conn)
            changed, removed = _store_objects(
                conn,
                resource,
                before,
                after,
                version,
                now,
                full_round=cur.round_seq if full else None,
            )
            self.statistics.wrote(conn, "mirror", changed)
            if resource == GROUPS_RESOURCE:
                seq = cur.round_seq if full else None
                members = apply_members(conn, page.changes, before, after, version, seq)
                self.statistics.wrote(conn, "group_member", members)
            absent = 0
            progress: dict[str, Any] = {"next_link": page.next_link}
            if page.delta_link is not None:
                progress.update(delta_link=page.delta_link, round_kind=None, delta_committed_at=now)
                if full:
                    progress["full_completed_at"] = now
                    if resource == GROUPS_RESOURCE:
                        finish_full_round(conn, cur.round_seq, version)
                    absent = _mark_absent(conn, resource, cur.round_seq, version, now)
            conn.execute(update(cursor).where(cursor.c.resource == resource).values(progress))
        return PageStats(seen=len(after), changed=changed, removed=removed, absent=absent)

    def apply_objects(self, resource: str, changes: Sequence[ObjectChange]) -> PageStats:
        """Merge objects read by id (``sync --user``) into the mirror, cursor untouched.

        The read is not minimal: each object's ``props`` are all its selected properties (an
        absent key was never set), so they replace the stored data; a stored ``None`` that
        the read leaves out stays, so a read that changes nothing gives no new version. The
        delta cursor and the full round's bookkeeping are left alone: the next delta round
        brings the same object again and, finding it unchanged, changes nothing.
        """
        now = utcnow()
        with self._write() as conn:
            before = _mirror_states(conn, resource, [c.id for c in changes])
            after = _merge(changes, before, replace=True)
            for id_, (data, gone) in after.items():
                old = before.get(id_)
                if old is not None and gone is None:
                    for key, value in old[0].items():
                        if value is None and key not in data:
                            data[key] = None
            version = VersionCounter(conn)
            changed, removed = _store_objects(
                conn, resource, before, after, version, now, full_round=None
            )
        return PageStats(seen=len(after), changed=changed, removed=removed)

    def objects_by_id(self, resource: str, ids: Iterable[str]) -> list[MirrorObject]:
        """The mirrored objects of ``resource`` with these Entra ids, ordered by id."""
        wanted = sorted(set(ids))
        found: list[MirrorObject] = []
        with self._read() as conn:
            for chunk in chunks(wanted):
                stmt = select(mirror).where(mirror.c.resource == resource, mirror.c.id.in_(chunk))
                found.extend(to_object(row) for row in conn.execute(stmt))
        return sorted(found, key=lambda o: o.id)

    def dirty_objects(
        self,
        resource: str,
        now: datetime,
        *,
        everything: bool = False,
        after: str | None = None,
        limit: int | None = None,
    ) -> list[MirrorObject]:
        """The objects to plan, ordered by id; ``after``/``limit`` read them a batch at a time.

        Those changed since they were last settled (``version > settled_version``), except
        while a failure already recorded for that version waits for its retry time; plus
        every object with a failure due at ``now``. ``everything=True``: all objects. Keyset
        pagination (ids after ``after``) is not disturbed by the settling of earlier batches.

        The two sets are read by two queries and merged here: the changed ones come from the
        partial index ``ix_mirror_dirty``, which holds only unsettled rows, so an idle run at
        100,000 users reads nothing (one query with an OR scanned every row: 0.34 s).
        """
        first = select(mirror).where(mirror.c.resource == resource)
        if after is not None:
            first = first.where(mirror.c.id > after)
        if everything:
            return self._objects(first, limit)
        waiting = exists().where(
            failure.c.entra_id == mirror.c.id,
            failure.c.failed_version >= mirror.c.version,
            failure.c.next_retry_at > now,
        )
        changed = first.where(mirror.c.version > mirror.c.settled_version, ~waiting)
        due = select(failure.c.entra_id).where(failure.c.next_retry_at <= now)
        merged = {o.id: o for o in self._objects(changed, limit)}
        for o in self._objects(first.where(mirror.c.id.in_(due)), limit):
            merged.setdefault(o.id, o)
        ordered = [merged[k] for k in sorted(merged)]
        return ordered if limit is None else ordered[:limit]

    def _objects(self, stmt: Any, limit: int | None) -> list[MirrorObject]:
        stmt = stmt.order_by(mirror.c.id)
        if limit is not None:
            stmt = stmt.limit(limit)
        with self._read() as conn:
            return [to_object(row) for row in conn.execute(stmt)]

    def get_object(self, entra_id: str) -> MirrorObject | None:
        """One mirrored object by its Entra id."""
        stmt = select(mirror).where(mirror.c.id == entra_id).order_by(mirror.c.resource).limit(1)
        with self._read() as conn:
            row = conn.execute(stmt).first()
        return to_object(row) if row is not None else None

    def find_objects(self, query: str) -> list[MirrorObject]:
        """Objects whose Entra id, userPrincipalName or mail is ``query`` (any case)."""
        text = query.strip()
        lowered = text.lower()
        stmt = (
            select(mirror)
            .where(
                or_(
                    mirror.c.id.in_({text, lowered}),
                    mirror.c.upn == lowered,
                    mirror.c.mail == lowered,
                )
            )
            .order_by(mirror.c.resource, mirror.c.id)
        )
        with self._read() as conn:
            return [to_object(row) for row in conn.execute(stmt)]

    def settle(self, entra_id: str, version: int) -> None:
        """Record that everything up to ``version`` of the object reached ELIZA."""
        with self._write() as conn:
            conn.execute(
                update(mirror)
                .where(mirror.c.id == entra_id, mirror.c.settled_version < version)
                .values(settled_version=version)
            )

    def count_objects(self, resource: str, *, removed: bool | None = None) -> int:
        """How many objects of ``resource`` are mirrored (only removed / present ones on ask)."""
        stmt = select(func.count()).select_from(mirror).where(mirror.c.resource == resource)
        if removed is not None:
            is_removed = mirror.c.removed.is_not(None)
            stmt = stmt.where(is_removed if removed else ~is_removed)
        with self._read() as conn:
            return int(conn.execute(stmt).scalar_one())

    def all_objects(self, resource: str) -> list[MirrorObject]:
        """Every mirrored object of ``resource``, removed ones included, ordered by id."""
        stmt = select(mirror).where(mirror.c.resource == resource).order_by(mirror.c.id)
        with self._read() as conn:
            return [to_object(row) for row in conn.execute(stmt)]


_State = tuple[dict[str, Any], str | None]  # (data, removed reason) of one mirror object


def _merge(
    changes: Iterable[ObjectChange], before: Mapping[str, _State], *, replace: bool
) -> dict[str, _State]:
    """The state of every object on the page after its changes, applied in page order."""
    after: dict[str, _State] = {}
    for change in changes:
        old = after.get(change.id) or before.get(change.id)
        if change.removed is not None:
            data = old[0] if old is not None else plain(change.props)
            after[change.id] = (data, change.removed.value)
        elif replace or old is None:
            after[change.id] = (plain(change.props), None)
        else:
            after[change.id] = ({**old[0], **plain(change.props)}, None)
    return after


def _store_objects(
    conn: Connection,
    resource: str,
    before: Mapping[str, _State],
    after: Mapping[str, _State],
    version: VersionCounter,
    now: datetime,
    *,
    full_round: int | None,
) -> tuple[int, int]:
    """Write the objects whose state changed (new version); returns (changed, removed).

    In a full round every object on the page, changed or not, is marked as seen in it.
    """
    inserts: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    unchanged: list[str] = []
    removed = 0
    for id_, (data, gone) in after.items():
        old = before.get(id_)
        if old == (data, gone):
            unchanged.append(id_)
            continue
        if gone is not None and (old is None or old[1] != gone):
            removed += 1
        row = {
            "b_id": id_,
            "data": data,
            "removed": gone,
            "version": version.next(),
            "upn": _lower(data.get("userPrincipalName")),
            "mail": _lower(data.get("mail")),
            "updated_at": now,
        }
        (updates if old is not None else inserts).append(row)
    seen = {"last_seen_round": full_round} if full_round is not None else {}
    if inserts:
        conn.execute(
            insert(mirror).values(
                resource=resource,
                id=bindparam("b_id"),
                settled_version=0,
                first_seen_at=now,
                **seen,
            ),
            inserts,
        )
    if updates:
        conn.execute(
            update(mirror)
            .where(mirror.c.resource == resource, mirror.c.id == bindparam("b_id"))
            .values(**seen),
            updates,
        )
    if seen:
        for chunk in chunks(unchanged):
            conn.execute(
                update(mirror)
                .where(mirror.c.resource == resource, mirror.c.id.in_(chunk))
                .values(**seen)
            )
    return len(inserts) + len(updates), removed


def _mark_absent(
    conn: Connection, resource: str, seq: int, version: VersionCounter, now: datetime
) -> int:
    """Mark every present object the completed full round ``seq`` did not return."""
    missing = (
        mirror.c.resource == resource,
        mirror.c.removed.is_(None),
        or_(mirror.c.last_seen_round.is_(None), mirror.c.last_seen_round != seq),
    )
    count = conn.execute(select(func.count()).select_from(mirror).where(*missing)).scalar_one()
    if not count:
        return 0
    conn.execute(
        update(mirror)
        .where(*missing)
        .values(removed=Removed.ABSENT.value, version=version.next(), updated_at=now)
    )
    return int(count)


def _mirror_states(conn: Connection, resource: str, ids: Sequence[str]) -> dict[str, _State]:
    states: dict[str, _State] = {}
    for chunk in chunks(sorted(set(ids))):
        stmt = select(mirror.c.id, mirror.c.data, mirror.c.removed).where(
            mirror.c.resource == resource, mirror.c.id.in_(chunk)
        )
        for row in conn.execute(stmt):
            states[row.id] = (row.data, row.removed)
    return states


def _lower(value: Any) -> str | None:
    return value.lower()[:ADDRESS] if isinstance(value, str) and value else None


def to_object(row: Row[Any]) -> MirrorObject:
    return MirrorObject(
        id=row.id,
        data=row.data,
        removed=Removed(row.removed) if row.removed else None,
        version=row.version,
        settled_version=row.settled_version,
        updated_at=row.updated_at,
    )
