"""The ``run`` and ``journal`` tables: what each run did, change by change."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Row, bindparam, delete, func, insert, select, update

from deltasync.models import JournalEntry, Kind, Link, RunRecord
from deltasync.state.base import StoreBase, plain, utcnow
from deltasync.state.links import delete_link_row, save_link_row
from deltasync.state.records import JournalRow, LinkOp, write_records
from deltasync.state.tables import journal, run


class RunStore(StoreBase):
    """Runs with their reports, and the journal of applied changes."""

    def start_run(self, command: str, dry_run: bool) -> int:
        """Record the start of a run; returns its id."""
        with self._write() as conn:
            stmt = insert(run).values(
                command=command, dry_run=dry_run, started_at=utcnow(), status="running", report={}
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
                    finished_at=utcnow(), status=status, exit_code=exit_code, report=plain(report)
                )
            )

    def first_run_id(self) -> int | None:
        """The oldest run this database remembers."""
        with self._read() as conn:
            value: int | None = conn.execute(select(func.min(run.c.id))).scalar()
        return value

    def runs(self, limit: int = 20) -> list[RunRecord]:
        """The last ``limit`` runs, newest first."""
        stmt = select(run).order_by(run.c.id.desc()).limit(limit)
        with self._read() as conn:
            return [_run_record(row) for row in conn.execute(stmt)]

    def get_run(self, run_id: int) -> RunRecord | None:
        """One run by its id."""
        with self._read() as conn:
            row = conn.execute(select(run).where(run.c.id == run_id)).first()
        return _run_record(row) if row is not None else None

    def run_journal(self, run_id: int) -> list[JournalEntry]:
        """Every journal entry of one run, in the order it was written."""
        stmt = select(journal).where(journal.c.run_id == run_id).order_by(journal.c.id)
        with self._read() as conn:
            return [_entry(row) for row in conn.execute(stmt)]

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
                delete_link_row(conn, entra_id, kind)
            else:
                save_link_row(conn, item)
            _journal(conn, run_id, entra_id, kind, action, eliza_id, changes)

    def write_records(
        self,
        journal_rows: Sequence[JournalRow],
        links: Sequence[LinkOp],
        settled: Sequence[tuple[str, int]],
    ) -> None:
        """A batch of the push's records, one prepared statement per kind (see
        :mod:`deltasync.state.records`), in one transaction (or the open batch)."""
        with self._write() as conn:
            write_records(conn, journal_rows, links, settled)
            self.statistics.wrote(conn, "journal", len(journal_rows))
            self.statistics.wrote(conn, "link", len(links))
            self.statistics.wrote(conn, "mirror", len(settled))

    def unjournal(self, run_id: int, action: str, keys: Sequence[tuple[str, Kind]]) -> None:
        """Delete run ``run_id``'s journal entries ``action`` of these objects (markers
        written ahead of creates the run did not send)."""
        if not keys:
            return
        with self._write() as conn:
            conn.execute(
                _UNJOURNAL,
                [
                    {"b_run": run_id, "b_action": action, "b_entra_id": e, "b_kind": k.value}
                    for e, k in keys
                ],
            )

    def journal_for(self, entra_id: str, limit: int = 50) -> list[JournalEntry]:
        """The last ``limit`` journal entries of one object, newest first."""
        stmt = (
            select(journal)
            .where(journal.c.entra_id == entra_id)
            .order_by(journal.c.id.desc())
            .limit(limit)
        )
        with self._read() as conn:
            return [_entry(row) for row in conn.execute(stmt)]


_UNJOURNAL = delete(journal).where(
    journal.c.entra_id == bindparam("b_entra_id"),
    journal.c.run_id == bindparam("b_run"),
    journal.c.kind == bindparam("b_kind"),
    journal.c.action == bindparam("b_action"),
)


def _run_record(row: Row[Any]) -> RunRecord:
    return RunRecord(
        id=row.id,
        command=row.command,
        dry_run=bool(row.dry_run),
        started_at=row.started_at,
        finished_at=row.finished_at,
        status=row.status,
        exit_code=row.exit_code,
        report=row.report,
    )


def _entry(row: Row[Any]) -> JournalEntry:
    return JournalEntry(
        id=row.id,
        run_id=row.run_id,
        at=row.at,
        entra_id=row.entra_id,
        kind=Kind(row.kind),
        action=row.action,
        eliza_id=row.eliza_id,
        changes=row.changes,
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
        at=utcnow(),
        entra_id=entra_id,
        kind=kind.value,
        action=action,
        eliza_id=eliza_id,
        changes=plain(changes),
    )
    return int(conn.execute(stmt.returning(journal.c.id)).scalar_one())
