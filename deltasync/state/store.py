"""The state store: delta cursors, the mirror of Entra objects, links, failures, runs, lease.

It is the only place that writes SQL. Each method is one short transaction, so whatever is
committed is consistent on its own: :meth:`StateStore.apply_page` stores a page's objects and
its progress marker together, a link is saved right after ELIZA accepted a write. A crash at
any instant loses at most the work in flight, and re-running converges.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, Self

from sqlalchemy import (
    Connection,
    Engine,
    Row,
    and_,
    bindparam,
    delete,
    exists,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from deltasync.errors import ConflictError, StateStoreError
from deltasync.models import (
    Cursor,
    DeltaPage,
    Failure,
    JournalEntry,
    Kind,
    Link,
    MirrorObject,
    ObjectChange,
    Removed,
    RoundKind,
    RunRecord,
)
from deltasync.state.database import (
    WRITE,
    create_state_engine,
    describe,
    json_dumps,
    mask_url,
    migrate,
    ping,
)
from deltasync.state.tables import (
    ADDRESS,
    LEASE_NAME,
    VERSION_KEY,
    cursor,
    failure,
    journal,
    lease,
    meta,
    mirror,
    run,
)
from deltasync.state.tables import link as link_table

RETRY_BASE = timedelta(minutes=5)
RETRY_MAX = timedelta(hours=24)
_CHUNK = 500  # ids per IN (...) list, well below every backend's parameter limit


@dataclass(frozen=True)
class PageStats:
    """What applying one delta page did to the mirror."""

    seen: int  # distinct objects on the page
    changed: int  # objects whose data or removal changed (they got a new version)
    removed: int  # objects the page marked removed (Graph ``@removed``)
    absent: int = 0  # objects marked absent because the completed full round lacked them


def retry_delay(attempts: int) -> timedelta:
    """The wait before retry number ``attempts``: 5 min, doubling, at most a day."""
    doublings = min(max(attempts - 1, 0), 10)  # 5 min * 2**9 already exceeds a day
    delay: timedelta = RETRY_BASE * 2**doublings
    return min(delay, RETRY_MAX)


def open_store(url: str) -> StateStore:
    """Open the state database at ``url``, migrated to the newest schema.

    SQLite: the folder of a file database is created, WAL journal mode, foreign keys on,
    busy timeout. Every backend: Alembic migrations are applied to head.

    Raises:
        StateStoreError: unreachable database (URL shown with its password masked), a
            database newer than this code, or a failed migration.
    """
    engine = create_state_engine(url)
    try:
        ping(engine)
        migrate(engine)
    except BaseException:
        engine.dispose()
        raise
    return StateStore(engine)


class StateStore:
    """Typed access to the state database; see the module docstring for its guarantees."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._writer = engine.execution_options(**{WRITE: True})
        self._url = mask_url(engine.url)

    @property
    def url(self) -> str:
        """The database URL, password masked."""
        return self._url

    def close(self) -> None:
        """Release every connection."""
        self._engine.dispose()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # ------------------------------------------------------------ transactions
    @contextmanager
    def _guard(self) -> Iterator[None]:
        try:
            yield
        except SQLAlchemyError as exc:
            raise StateStoreError(f"state database {self._url}: {describe(exc)}") from exc

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        with self._guard(), self._engine.connect() as conn:
            yield conn

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        with self._guard(), self._writer.begin() as conn:
            yield conn

    # ------------------------------------------------------------------ cursor
    def get_cursor(self, resource: str) -> Cursor | None:
        """Where the delta reading of ``resource`` stands, ``None`` before its first round."""
        with self._read() as conn:
            row = _cursor_row(conn, resource)
        return _to_cursor(row) if row is not None else None

    def begin_round(
        self, resource: str, kind: RoundKind, select_fingerprint: str, first_url: str
    ) -> Cursor:
        """Start a delta round: ``first_url`` becomes the progress marker.

        A full round gets the next ``round_seq``; the stored delta link stays until the round
        completes, so an interrupted full round leaves the last good token in place.
        """
        values: dict[str, Any] = {
            "next_link": first_url,
            "round_kind": kind.value,
            "round_started_at": _now(),
            "select_fingerprint": select_fingerprint,
        }
        with self._write() as conn:
            row = _cursor_row(conn, resource, lock=True)
            seq = row.round_seq if row is not None else 0
            values["round_seq"] = seq + 1 if kind is RoundKind.FULL else seq
            if row is None:
                conn.execute(insert(cursor).values(resource=resource, **values))
            else:
                conn.execute(update(cursor).where(cursor.c.resource == resource).values(values))
            row = _cursor_row(conn, resource)
        assert row is not None
        return _to_cursor(row)

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
        now = _now()
        with self._write() as conn:
            cur = _cursor_row(conn, resource, lock=True)
            if cur is None:
                raise StateStoreError(f"no delta round was begun for {resource!r}")
            full = cur.round_kind == RoundKind.FULL.value
            before = _mirror_states(conn, resource, [c.id for c in page.changes])
            after = _merge(page.changes, before, replace=replace)
            version = _VersionCounter(conn)
            changed, removed = _store_objects(
                conn,
                resource,
                before,
                after,
                version,
                now,
                full_round=cur.round_seq if full else None,
            )
            absent = 0
            progress: dict[str, Any] = {"next_link": page.next_link}
            if page.delta_link is not None:
                progress.update(delta_link=page.delta_link, round_kind=None, delta_committed_at=now)
                if full:
                    progress["full_completed_at"] = now
                    absent = _mark_absent(conn, resource, cur.round_seq, version, now)
            conn.execute(update(cursor).where(cursor.c.resource == resource).values(progress))
        return PageStats(seen=len(after), changed=changed, removed=removed, absent=absent)

    def reset_cursor(self, resource: str | None = None) -> None:
        """Forget the delta and progress links of ``resource`` (all when ``None``).

        The row and its ``round_seq`` stay, so later full rounds keep numbering upwards.
        """
        stmt = update(cursor).values(
            delta_link=None, next_link=None, round_kind=None, round_started_at=None
        )
        if resource is not None:
            stmt = stmt.where(cursor.c.resource == resource)
        with self._write() as conn:
            conn.execute(stmt)

    # ------------------------------------------------------------------ mirror
    def dirty_objects(
        self, resource: str, now: datetime, *, everything: bool = False
    ) -> list[MirrorObject]:
        """The objects to plan, ordered by id.

        Those changed since they were last settled (``version > settled_version``), except
        while a failure already recorded for that version waits for its retry time; plus
        every object with a failure due at ``now``. ``everything=True``: all objects.
        """
        stmt = select(mirror).where(mirror.c.resource == resource).order_by(mirror.c.id)
        if not everything:
            waiting = exists().where(
                failure.c.entra_id == mirror.c.id,
                failure.c.failed_version >= mirror.c.version,
                failure.c.next_retry_at > now,
            )
            due = select(failure.c.entra_id).where(failure.c.next_retry_at <= now)
            stmt = stmt.where(
                or_(
                    and_(mirror.c.version > mirror.c.settled_version, ~waiting),
                    mirror.c.id.in_(due),
                )
            )
        with self._read() as conn:
            return [_to_object(row) for row in conn.execute(stmt)]

    def get_object(self, entra_id: str) -> MirrorObject | None:
        """One mirrored object by its Entra id."""
        stmt = select(mirror).where(mirror.c.id == entra_id).order_by(mirror.c.resource).limit(1)
        with self._read() as conn:
            row = conn.execute(stmt).first()
        return _to_object(row) if row is not None else None

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
            return [_to_object(row) for row in conn.execute(stmt)]

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
            return [_to_object(row) for row in conn.execute(stmt)]

    # ------------------------------------------------------------------- links
    def links_for(self, entra_ids: Iterable[str]) -> dict[str, dict[Kind, Link]]:
        """The links of the given objects; objects without any link are left out."""
        result: dict[str, dict[Kind, Link]] = {}
        with self._read() as conn:
            for chunk in _chunks(sorted(set(entra_ids))):
                stmt = select(link_table).where(link_table.c.entra_id.in_(chunk))
                for row in conn.execute(stmt):
                    item = _to_link(row)
                    result.setdefault(item.entra_id, {})[item.kind] = item
        return result

    def all_links(self, kind: Kind) -> list[Link]:
        """Every link of ``kind``, ordered by Entra id."""
        stmt = select(link_table).where(link_table.c.kind == kind.value)
        with self._read() as conn:
            return [_to_link(row) for row in conn.execute(stmt.order_by(link_table.c.entra_id))]

    def link_by_eliza_id(self, kind: Kind, eliza_id: int) -> Link | None:
        """The link pointing at ELIZA object ``eliza_id`` of ``kind``."""
        stmt = select(link_table).where(
            link_table.c.kind == kind.value, link_table.c.eliza_id == eliza_id
        )
        with self._read() as conn:
            row = conn.execute(stmt).first()
        return _to_link(row) if row is not None else None

    def save_link(self, item: Link) -> None:
        """Insert or replace the link of (``entra_id``, ``kind``).

        Raises:
            ConflictError: that ELIZA object is already linked to another Entra object.
        """
        with self._write() as conn:
            _save_link(conn, item)

    def delete_link(self, entra_id: str, kind: Kind) -> None:
        """Forget the link of (``entra_id``, ``kind``), if any."""
        with self._write() as conn:
            conn.execute(
                delete(link_table).where(
                    link_table.c.entra_id == entra_id, link_table.c.kind == kind.value
                )
            )

    def count_links(self, kind: Kind, status: str | None = None) -> int:
        """How many links of ``kind`` there are (with ``status``, when given)."""
        stmt = select(func.count()).select_from(link_table).where(link_table.c.kind == kind.value)
        if status is not None:
            stmt = stmt.where(link_table.c.status == status)
        with self._read() as conn:
            return int(conn.execute(stmt).scalar_one())

    # ---------------------------------------------------------------- failures
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
        """Record (another) failed push of one object; its retry waits 5 min × 2^(n−1), ≤ 24 h."""
        key = (failure.c.entra_id == entra_id, failure.c.kind == kind.value)
        with self._write() as conn:
            row = conn.execute(select(failure).where(*key).with_for_update()).first()
            attempts = row.attempts + 1 if row is not None else 1
            values = {
                "action": action,
                "category": category,
                "message": message,
                "detail": _plain(detail),
                "attempts": attempts,
                "failed_version": failed_version,
                "last_failed_at": now,
                "next_retry_at": now + retry_delay(attempts),
            }
            if row is None:
                conn.execute(
                    insert(failure).values(
                        entra_id=entra_id, kind=kind.value, first_failed_at=now, **values
                    )
                )
            else:
                conn.execute(update(failure).where(*key).values(values))
            row = conn.execute(select(failure).where(*key)).one()
        return _to_failure(row)

    def clear_failure(self, entra_id: str, kind: Kind) -> None:
        """Forget the failure of (``entra_id``, ``kind``) after a successful push."""
        with self._write() as conn:
            conn.execute(
                delete(failure).where(failure.c.entra_id == entra_id, failure.c.kind == kind.value)
            )

    def failures(self) -> list[Failure]:
        """Every pending failure, the next to be retried first."""
        stmt = select(failure).order_by(failure.c.next_retry_at, failure.c.entra_id, failure.c.kind)
        with self._read() as conn:
            return [_to_failure(row) for row in conn.execute(stmt)]

    def failures_for(self, entra_id: str) -> list[Failure]:
        """The pending failures of one object."""
        stmt = select(failure).where(failure.c.entra_id == entra_id).order_by(failure.c.kind)
        with self._read() as conn:
            return [_to_failure(row) for row in conn.execute(stmt)]

    # ------------------------------------------------------------ runs/journal
    def start_run(self, command: str, dry_run: bool) -> int:
        """Record the start of a run; returns its id."""
        with self._write() as conn:
            stmt = insert(run).values(
                command=command, dry_run=dry_run, started_at=_now(), status="running", report={}
            )
            return int(conn.execute(stmt.returning(run.c.id)).scalar_one())

    def finish_run(
        self, run_id: int, status: str, exit_code: int | None, report: Mapping[str, Any]
    ) -> None:
        """Record how a run ended, with its report."""
        with self._write() as conn:
            conn.execute(
                update(run)
                .where(run.c.id == run_id)
                .values(
                    finished_at=_now(), status=status, exit_code=exit_code, report=_plain(report)
                )
            )

    def runs(self, limit: int = 20) -> list[RunRecord]:
        """The last ``limit`` runs, newest first."""
        stmt = select(run).order_by(run.c.id.desc()).limit(limit)
        with self._read() as conn:
            return [
                RunRecord(
                    id=row.id,
                    command=row.command,
                    dry_run=bool(row.dry_run),
                    started_at=row.started_at,
                    finished_at=row.finished_at,
                    status=row.status,
                    exit_code=row.exit_code,
                    report=row.report,
                )
                for row in conn.execute(stmt)
            ]

    def journal(
        self,
        run_id: int,
        entra_id: str,
        kind: Kind,
        action: str,
        eliza_id: int | None,
        changes: Mapping[str, Any],
    ) -> int:
        """Append one applied change (or matching decision) to the journal; returns its id."""
        with self._write() as conn:
            return _journal(conn, run_id, entra_id, kind, action, eliza_id, changes)

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
        """What ELIZA accepted, in one transaction: the link (or its removal when ``item`` is
        None) and the journal entry describing the change."""
        with self._write() as conn:
            if item is None:
                conn.execute(
                    delete(link_table).where(
                        link_table.c.entra_id == entra_id, link_table.c.kind == kind.value
                    )
                )
            else:
                _save_link(conn, item)
            _journal(conn, run_id, entra_id, kind, action, eliza_id, changes)

    def journal_for(self, entra_id: str, limit: int = 50) -> list[JournalEntry]:
        """The last ``limit`` journal entries of one object, newest first."""
        stmt = (
            select(journal)
            .where(journal.c.entra_id == entra_id)
            .order_by(journal.c.id.desc())
            .limit(limit)
        )
        with self._read() as conn:
            return [
                JournalEntry(
                    id=row.id,
                    run_id=row.run_id,
                    at=row.at,
                    entra_id=row.entra_id,
                    kind=Kind(row.kind),
                    action=row.action,
                    eliza_id=row.eliza_id,
                    changes=row.changes,
                )
                for row in conn.execute(stmt)
            ]

    # ------------------------------------------------------------------- lease
    def acquire_lease(self, holder: str, ttl_s: int = 120) -> bool:
        """Take the lease unless another holder's lease has not expired yet.

        Atomic across processes and hosts: an expired (or own) lease row is taken with a
        compare-and-swap UPDATE, a missing one with an INSERT that only one can win. Times
        come from the database server on PostgreSQL, so clock skew between hosts does not
        matter. A holder killed without releasing blocks others for at most ``ttl_s``.
        """
        with self._guard():
            with self._writer.begin() as conn:
                now = _db_now(conn)
                values = _lease_values(holder, ttl_s, now)
                taken = conn.execute(
                    update(lease)
                    .where(
                        lease.c.name == LEASE_NAME,
                        or_(lease.c.expires_at <= now, lease.c.holder == holder),
                    )
                    .values(values)
                ).rowcount
                if taken:
                    return True
                held = select(lease.c.name).where(lease.c.name == LEASE_NAME)
                if conn.execute(held).first() is not None:
                    return False
            try:
                with self._writer.begin() as conn:
                    values = _lease_values(holder, ttl_s, _db_now(conn))
                    conn.execute(insert(lease).values(name=LEASE_NAME, **values))
            except IntegrityError:
                return False  # another process inserted it first
            return True

    def renew_lease(self, holder: str, ttl_s: int | None = None) -> bool:
        """Extend ``holder``'s lease by its ttl (or ``ttl_s``); False if it is no longer held."""
        with self._write() as conn:
            key = (lease.c.name == LEASE_NAME, lease.c.holder == holder)
            row = conn.execute(select(lease.c.ttl_s).where(*key).with_for_update()).first()
            if row is None:
                return False
            ttl = ttl_s if ttl_s is not None else row.ttl_s
            now = _db_now(conn)
            conn.execute(
                update(lease)
                .where(*key)
                .values(ttl_s=ttl, renewed_at=now, expires_at=now + timedelta(seconds=ttl))
            )
            return True

    def release_lease(self, holder: str) -> None:
        """Give the lease up (only ``holder``'s own)."""
        with self._write() as conn:
            conn.execute(delete(lease).where(lease.c.name == LEASE_NAME, lease.c.holder == holder))

    def lease_info(self) -> dict[str, Any] | None:
        """Who holds the lease and until when (ISO 8601 strings, JSON-ready); None if free."""
        with self._read() as conn:
            row = conn.execute(select(lease).where(lease.c.name == LEASE_NAME)).first()
            if row is None:
                return None
            now = _db_now(conn)
        return {
            "holder": row.holder,
            "acquired_at": row.acquired_at.isoformat(),
            "renewed_at": row.renewed_at.isoformat(),
            "expires_at": row.expires_at.isoformat(),
            "expired": row.expires_at <= now,
        }

    # -------------------------------------------------------------------- meta
    def get_meta(self, key: str) -> str | None:
        """A stored setting of the sync itself (e.g. the plan fingerprint)."""
        with self._read() as conn:
            row = conn.execute(select(meta.c.value).where(meta.c.key == key)).first()
        return row.value if row is not None else None

    def set_meta(self, key: str, value: str) -> None:
        """Store a setting of the sync itself."""
        with self._write() as conn:
            _set_meta(conn, key, value)


# ------------------------------------------------------------------------ helpers
class _VersionCounter:
    """The store-wide version counter, bumped at most once per transaction, on first use."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._value: int | None = None

    def next(self) -> int:
        if self._value is None:
            stmt = select(meta.c.value).where(meta.c.key == VERSION_KEY).with_for_update()
            row = self._conn.execute(stmt).first()
            if row is None:
                # First use: two writers may both try to create the row; one insert wins,
                # the other falls back to the savepoint and then waits on the winner's lock.
                try:
                    with self._conn.begin_nested():
                        self._conn.execute(insert(meta).values(key=VERSION_KEY, value="0"))
                except IntegrityError:
                    pass
                row = self._conn.execute(stmt).one()
            self._value = int(row.value) + 1
            self._conn.execute(
                update(meta).where(meta.c.key == VERSION_KEY).values(value=str(self._value))
            )
        return self._value


def _set_meta(conn: Connection, key: str, value: str) -> None:
    if conn.execute(update(meta).where(meta.c.key == key).values(value=value)).rowcount == 0:
        conn.execute(insert(meta).values(key=key, value=value))


_State = tuple[dict[str, Any], str | None]  # (data, removed reason) of one mirror object


def _merge(
    changes: Iterable[ObjectChange], before: Mapping[str, _State], *, replace: bool
) -> dict[str, _State]:
    """The state of every object on the page after its changes, applied in page order."""
    after: dict[str, _State] = {}
    for change in changes:
        old = after.get(change.id) or before.get(change.id)
        if change.removed is not None:
            data = old[0] if old is not None else _plain(change.props)
            after[change.id] = (data, change.removed.value)
        elif replace or old is None:
            after[change.id] = (_plain(change.props), None)
        else:
            after[change.id] = ({**old[0], **_plain(change.props)}, None)
    return after


def _store_objects(
    conn: Connection,
    resource: str,
    before: Mapping[str, _State],
    after: Mapping[str, _State],
    version: _VersionCounter,
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
        for chunk in _chunks(unchanged):
            conn.execute(
                update(mirror)
                .where(mirror.c.resource == resource, mirror.c.id.in_(chunk))
                .values(**seen)
            )
    return len(inserts) + len(updates), removed


def _mark_absent(
    conn: Connection, resource: str, seq: int, version: _VersionCounter, now: datetime
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
    for chunk in _chunks(sorted(set(ids))):
        stmt = select(mirror.c.id, mirror.c.data, mirror.c.removed).where(
            mirror.c.resource == resource, mirror.c.id.in_(chunk)
        )
        for row in conn.execute(stmt):
            states[row.id] = (row.data, row.removed)
    return states


def _cursor_row(conn: Connection, resource: str, *, lock: bool = False) -> Row[Any] | None:
    stmt = select(cursor).where(cursor.c.resource == resource)
    return conn.execute(stmt.with_for_update() if lock else stmt).first()


def _lease_values(holder: str, ttl_s: int, now: datetime) -> dict[str, Any]:
    return {
        "holder": holder,
        "ttl_s": ttl_s,
        "acquired_at": now,
        "renewed_at": now,
        "expires_at": now + timedelta(seconds=ttl_s),
    }


def _db_now(conn: Connection) -> datetime:
    """The database server's clock where there is one (PostgreSQL), else this host's."""
    if conn.dialect.name == "postgresql":
        value: datetime = conn.execute(select(func.now())).scalar_one()
        return value.astimezone(UTC)
    return _now()


def _now() -> datetime:
    return datetime.now(UTC)


def _plain(value: Mapping[str, Any]) -> dict[str, Any]:
    """A JSON-clean copy: what the database will give back, for exact change detection."""
    try:
        result: dict[str, Any] = json.loads(json_dumps(dict(value)))
    except (TypeError, ValueError) as exc:
        raise StateStoreError(f"cannot store a value as JSON: {exc}") from exc
    return result


def _lower(value: Any) -> str | None:
    return value.lower()[:ADDRESS] if isinstance(value, str) and value else None


def _chunks(items: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


def _to_cursor(row: Row[Any]) -> Cursor:
    return Cursor(
        resource=row.resource,
        delta_link=row.delta_link,
        next_link=row.next_link,
        select_fingerprint=row.select_fingerprint,
        round_kind=RoundKind(row.round_kind) if row.round_kind else None,
        round_seq=row.round_seq,
        round_started_at=row.round_started_at,
        delta_committed_at=row.delta_committed_at,
        full_completed_at=row.full_completed_at,
    )


def _save_link(conn: Connection, item: Link) -> None:
    key = (link_table.c.entra_id == item.entra_id, link_table.c.kind == item.kind.value)
    values = {
        "eliza_id": item.eliza_id,
        "matched_by": item.matched_by,
        "matched_at": item.matched_at,
        "pushed": _plain(item.pushed),
        "pushed_version": item.pushed_version,
        "status": item.status,
        "saved": _plain(item.saved),
    }
    other = conn.execute(
        select(link_table.c.entra_id).where(
            link_table.c.kind == item.kind.value,
            link_table.c.eliza_id == item.eliza_id,
            link_table.c.entra_id != item.entra_id,
        )
    ).first()
    if other is not None:
        raise ConflictError(
            f"ELIZA {item.kind.value} {item.eliza_id} is already linked to Entra "
            f"object {other.entra_id}; not linking it to {item.entra_id} as well"
        )
    if conn.execute(update(link_table).where(*key).values(values)).rowcount == 0:
        conn.execute(
            insert(link_table).values(entra_id=item.entra_id, kind=item.kind.value, **values)
        )


def _journal(
    conn: Connection,
    run_id: int,
    entra_id: str,
    kind: Kind,
    action: str,
    eliza_id: int | None,
    changes: Mapping[str, Any],
) -> int:
    stmt = insert(journal).values(
        run_id=run_id,
        at=_now(),
        entra_id=entra_id,
        kind=kind.value,
        action=action,
        eliza_id=eliza_id,
        changes=_plain(changes),
    )
    return int(conn.execute(stmt.returning(journal.c.id)).scalar_one())


def _to_object(row: Row[Any]) -> MirrorObject:
    return MirrorObject(
        id=row.id,
        data=row.data,
        removed=Removed(row.removed) if row.removed else None,
        version=row.version,
        settled_version=row.settled_version,
        updated_at=row.updated_at,
    )


def _to_link(row: Row[Any]) -> Link:
    return Link(
        entra_id=row.entra_id,
        kind=Kind(row.kind),
        eliza_id=row.eliza_id,
        matched_by=row.matched_by,
        matched_at=row.matched_at,
        pushed=row.pushed,
        pushed_version=row.pushed_version,
        status=row.status,
        saved=row.saved,
    )


def _to_failure(row: Row[Any]) -> Failure:
    return Failure(
        entra_id=row.entra_id,
        kind=Kind(row.kind),
        action=row.action,
        category=row.category,
        message=row.message,
        detail=row.detail,
        attempts=row.attempts,
        failed_version=row.failed_version,
        first_failed_at=row.first_failed_at,
        last_failed_at=row.last_failed_at,
        next_retry_at=row.next_retry_at,
    )
