"""The ``cursor`` table: where the delta reading of each Graph resource stands."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Row, insert, select, update

from deltasync.models import Cursor, RoundKind
from deltasync.state.base import StoreBase, utcnow
from deltasync.state.tables import cursor


class CursorStore(StoreBase):
    """Delta rounds: their progress marker, delta link and round numbering."""

    def get_cursor(self, resource: str) -> Cursor | None:
        """Where the delta reading of ``resource`` stands, ``None`` before its first round."""
        with self._read() as conn:
            row = cursor_row(conn, resource)
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
            "round_started_at": utcnow(),
            "select_fingerprint": select_fingerprint,
        }
        with self._write() as conn:
            row = cursor_row(conn, resource, lock=True)
            seq = row.round_seq if row is not None else 0
            values["round_seq"] = seq + 1 if kind is RoundKind.FULL else seq
            if row is None:
                conn.execute(insert(cursor).values(resource=resource, **values))
            else:
                conn.execute(update(cursor).where(cursor.c.resource == resource).values(values))
            row = cursor_row(conn, resource)
        assert row is not None
        return _to_cursor(row)

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


def cursor_row(conn: Connection, resource: str, *, lock: bool = False) -> Row[Any] | None:
    stmt = select(cursor).where(cursor.c.resource == resource)
    return conn.execute(stmt.with_for_update() if lock else stmt).first()


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
