"""The ``failure`` table: pushes ELIZA refused or could not take, and when to retry them."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row, delete, insert, select, update

from deltasync.models import Failure, Kind
from deltasync.state.base import StoreBase, plain
from deltasync.state.tables import failure

RETRY_BASE = timedelta(minutes=5)
RETRY_MAX = timedelta(hours=24)


def retry_delay(attempts: int) -> timedelta:
    """The wait after failed attempt number ``attempts`` before the object is tried again.

    The first failure waits for nothing: the next run retries it, whenever that run comes
    (interface.md). Only an object that keeps failing spaces out: 5 min after the second
    failure, doubling, at most a day.
    """
    if attempts <= 1:
        return timedelta(0)
    doublings = min(attempts - 2, 10)  # 5 min * 2**9 already exceeds a day
    delay: timedelta = RETRY_BASE * 2**doublings
    return min(delay, RETRY_MAX)


class FailureStore(StoreBase):
    """One pending failure per (Entra object, kind), with its backoff."""

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
        """Record (another) failed push of one object; see :func:`retry_delay` for its next try."""
        key = (failure.c.entra_id == entra_id, failure.c.kind == kind.value)
        with self._write() as conn:
            row = conn.execute(select(failure).where(*key).with_for_update()).first()
            attempts = row.attempts + 1 if row is not None else 1
            values = {
                "action": action,
                "category": category,
                "message": message,
                "detail": plain(detail),
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
