"""The ``link`` table: which ELIZA object each Entra object became, and what was pushed."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, Row, delete, func, insert, select, update

from deltasync.errors import ConflictError
from deltasync.models import Kind, Link
from deltasync.state.base import StoreBase, chunks, plain
from deltasync.state.tables import link as link_table


class LinkStore(StoreBase):
    """One link per (Entra object, kind); an ELIZA object is linked to one Entra object only."""

    def links_for(self, entra_ids: Iterable[str]) -> dict[str, dict[Kind, Link]]:
        """The links of the given objects; objects without any link are left out."""
        result: dict[str, dict[Kind, Link]] = {}
        with self._read() as conn:
            for chunk in chunks(sorted(set(entra_ids))):
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

    def eliza_ids(self, kind: Kind) -> dict[str, int]:
        """Entra id -> ELIZA id of every link of ``kind``: two columns, not whole links (a big
        tenant's persons, whose ids the planner needs for managers)."""
        stmt = select(link_table.c.entra_id, link_table.c.eliza_id).where(
            link_table.c.kind == kind.value
        )
        with self._read() as conn:
            return {str(row.entra_id): int(row.eliza_id) for row in conn.execute(stmt)}

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
            save_link_row(conn, item)

    def delete_link(self, entra_id: str, kind: Kind) -> None:
        """Forget the link of (``entra_id``, ``kind``), if any."""
        with self._write() as conn:
            delete_link_row(conn, entra_id, kind)

    def any_link_matched(self, kind: Kind, prefix: str) -> bool:
        """Whether a link of ``kind`` was matched by a ``prefix…`` rule (e.g. "soft"): one
        indexed probe, not every link of a big tenant read into memory."""
        stmt = (
            select(link_table.c.entra_id)
            .where(link_table.c.kind == kind.value, link_table.c.matched_by.startswith(prefix))
            .limit(1)
        )
        with self._read() as conn:
            return conn.execute(stmt).first() is not None

    def count_links(self, kind: Kind, status: str | None = None) -> int:
        """How many links of ``kind`` there are (with ``status``, when given)."""
        stmt = select(func.count()).select_from(link_table).where(link_table.c.kind == kind.value)
        if status is not None:
            stmt = stmt.where(link_table.c.status == status)
        with self._read() as conn:
            return int(conn.execute(stmt).scalar_one())


def save_link_row(conn: Connection, item: Link) -> None:
    """Upsert one link inside the caller's transaction; refuses a second Entra object."""
    key = (link_table.c.entra_id == item.entra_id, link_table.c.kind == item.kind.value)
    values = {
        "eliza_id": item.eliza_id,
        "matched_by": item.matched_by,
        "matched_at": item.matched_at,
        "pushed": plain(item.pushed),
        "pushed_version": item.pushed_version,
        "status": item.status,
        "saved": plain(item.saved),
        "kept": plain(item.kept),
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


def delete_link_row(conn: Connection, entra_id: str, kind: Kind) -> None:
    conn.execute(
        delete(link_table).where(link_table.c.entra_id == entra_id, link_table.c.kind == kind.value)
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
        kept=row.kept or {},
    )
