"""PostgreSQL's planner statistics, kept in step with the tables a run fills.

A first sync fills ``mirror``, ``group_member``, ``link`` and ``journal`` from empty inside one
process. Until the tables are analyzed, PostgreSQL plans them as the empty tables they were:
``resource = 'users' AND id IN (…500 ids…)`` became a scan of every ``users`` entry of the
primary key, so each page and each batch cost more than the one before (at 100,000 users the
first sync had linked 5,321 users after 16 minutes). Autovacuum would analyze them in time,
but it runs a minute apart at best and may be off. So the store analyzes a table itself each
time the rows it wrote to it since the last analysis reach the table's size at that analysis
(and at least :data:`FLOOR`): a table filled from empty to 100,000 rows is analyzed about six
times, each time cheaply (only the columns queries filter on). SQLite needs none of this.
"""

from __future__ import annotations

from sqlalchemy import Connection, text

FLOOR = 2_000  # rows written before the first analysis of a table
# The columns the queries filter, join or sort on: the JSON documents are left out, which
# keeps an analysis of 100,000 mirror rows well under a second.
COLUMNS: dict[str, tuple[str, ...]] = {
    "mirror": ("resource", "id", "removed", "version", "settled_version", "upn", "mail"),
    "group_member": ("group_id", "member_id", "member_type", "last_seen_round"),
    "link": ("entra_id", "kind", "eliza_id", "status"),
    "journal": ("run_id", "entra_id", "kind"),
}


class Statistics:
    """Counts the rows this process writes per table; analyzes a table when they are due."""

    def __init__(self) -> None:
        self._written: dict[str, int] = {}
        self._size: dict[str, float] = {}  # rows at the last analysis (PostgreSQL's estimate)
        self.analyzed: list[str] = []  # the tables analyzed, in order (tests and debugging)

    def wrote(self, conn: Connection, table: str, rows: int) -> None:
        """``rows`` rows of ``table`` were inserted or changed in ``conn``'s transaction."""
        if rows <= 0 or conn.dialect.name != "postgresql":
            return
        written = self._written.get(table, 0) + rows
        size = self._size.get(table)
        if size is None:
            size = self._size[table] = _estimate(conn, table)
        if written < max(FLOOR, size):
            self._written[table] = written
            return
        # SKIP_LOCKED: an analysis already under way (autovacuum) is left to finish, no wait
        conn.execute(text(f"ANALYZE (SKIP_LOCKED) {table} ({', '.join(COLUMNS[table])})"))
        self._size[table] = _estimate(conn, table)
        self._written[table] = 0
        self.analyzed.append(table)


def _estimate(conn: Connection, table: str) -> float:
    """PostgreSQL's row estimate of ``table``: 0 when it was never analyzed (-1 from 14 on)."""
    value = conn.execute(
        text("SELECT reltuples FROM pg_class WHERE oid = to_regclass(:t)"), {"t": table}
    ).scalar()
    return max(float(value or 0.0), 0.0)
