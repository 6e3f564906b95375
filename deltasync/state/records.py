"""The push's records in bulk: journal rows, link upserts and removals, settling.

The write-behind ledger hands over everything a batch of pushed objects did; it is written
here with one prepared statement per kind of record (``executemany``), not one statement
built per object, inside the caller's transaction. Links keep their order (a removal and a
later save of the same key); journal rows keep theirs, so their ids follow the push.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Insert, bindparam, delete, insert, update
from sqlalchemy.exc import IntegrityError

from deltasync.models import Kind, Link
from deltasync.state.base import utcnow
from deltasync.state.links import save_link_row
from deltasync.state.tables import journal, link, mirror

# (run id, Entra id, kind, journal action, ELIZA id, changes) of one journal entry
JournalRow = tuple[int, str, Kind, str, int | None, Mapping[str, Any]]
# (Entra id, kind, the link to keep, or None to drop it)
LinkOp = tuple[str, Kind, Link | None]

_JOURNAL = insert(journal)
_UNLINK = delete(link).where(
    link.c.entra_id == bindparam("b_entra_id"), link.c.kind == bindparam("b_kind")
)
_SETTLE = (
    update(mirror)
    .where(mirror.c.id == bindparam("b_id"), mirror.c.settled_version < bindparam("b_version"))
    .values(settled_version=bindparam("b_version"))
)
_UPSERTS: dict[str, Insert] = {}
_LINK_VALUES = ("eliza_id", "matched_by", "matched_at", "pushed", "pushed_version", "status")


def write_records(
    conn: Connection,
    journal_rows: Sequence[JournalRow],
    links: Sequence[LinkOp],
    settled: Sequence[tuple[str, int]],
) -> None:
    """Write one batch of records inside ``conn``'s transaction.

    Raises:
        ConflictError: a link would point a second Entra object at one ELIZA object.
    """
    if journal_rows:
        at = utcnow()
        conn.execute(
            _JOURNAL,
            [
                {
                    "run_id": run_id,
                    "at": at,
                    "entra_id": entra_id,
                    "kind": kind.value,
                    "action": action,
                    "eliza_id": eliza_id,
                    "changes": dict(changes),
                }
                for run_id, entra_id, kind, action, eliza_id, changes in journal_rows
            ],
        )
    _write_links(conn, links)
    if settled:
        latest: dict[str, int] = {}
        for entra_id, version in settled:
            latest[entra_id] = max(version, latest.get(entra_id, version))
        conn.execute(_SETTLE, [{"b_id": k, "b_version": v} for k, v in latest.items()])


def _write_links(conn: Connection, ops: Sequence[LinkOp]) -> None:
    """Consecutive saves in one upsert, consecutive removals in one delete, in order."""
    start = 0
    while start < len(ops):
        saving = ops[start][2] is not None
        end = start
        while end < len(ops) and (ops[end][2] is not None) == saving:
            end += 1
        run = ops[start:end]
        if saving:
            _save_links(conn, [item for _, _, item in run if item is not None])
        else:
            conn.execute(_UNLINK, [{"b_entra_id": e, "b_kind": k.value} for e, k, _ in run])
        start = end


def _save_links(conn: Connection, items: Sequence[Link]) -> None:
    """One upsert for all; when the unique ELIZA id refuses one, the row-by-row save names
    the conflict (its check, and only the conflicting link fails the batch)."""
    rows = [_link_row(item) for item in items]
    try:
        with conn.begin_nested():
            conn.execute(_upsert(conn), rows)
    except IntegrityError:
        for item in items:
            save_link_row(conn, item)


def _link_row(item: Link) -> dict[str, Any]:
    return {
        "entra_id": item.entra_id,
        "kind": item.kind.value,
        "eliza_id": item.eliza_id,
        "matched_by": item.matched_by,
        "matched_at": item.matched_at,
        "pushed": dict(item.pushed),
        "pushed_version": item.pushed_version,
        "status": item.status,
        "saved": dict(item.saved),
        "kept": dict(item.kept),
    }


def _upsert(conn: Connection) -> Insert:
    """``INSERT … ON CONFLICT (entra_id, kind) DO UPDATE`` in the connection's dialect."""
    name = conn.dialect.name
    stmt = _UPSERTS.get(name)
    if stmt is None:
        dialect_insert: Callable[[Any], Any]
        if name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as dialect_insert
        else:
            from sqlalchemy.dialects.sqlite import insert as dialect_insert
        base = dialect_insert(link)
        columns = (*_LINK_VALUES, "saved", "kept")
        stmt = base.on_conflict_do_update(
            index_elements=[link.c.entra_id, link.c.kind],
            set_={c: base.excluded[c] for c in columns},
        )
        _UPSERTS[name] = stmt
    return stmt
