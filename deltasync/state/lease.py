"""The ``lease`` table: one sync at a time, across processes and hosts."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from deltasync.state.base import StoreBase, db_now
from deltasync.state.tables import LEASE_NAME, lease


class LeaseStore(StoreBase):
    """Take, renew, release and show the single sync lease."""

    def acquire_lease(self, holder: str, ttl_s: int = 120) -> bool:
        """Take the lease unless another holder's lease has not expired yet.

        Atomic across processes and hosts: an expired (or own) lease row is taken with a
        compare-and-swap UPDATE, a missing one with an INSERT that only one can win. Times
        come from the database server on PostgreSQL, so clock skew between hosts does not
        matter. A holder killed without releasing blocks others for at most ``ttl_s``.
        """
        with self._guard():
            with self._writer.begin() as conn:
                now = db_now(conn)
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
                    values = _lease_values(holder, ttl_s, db_now(conn))
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
            now = db_now(conn)
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
            now = db_now(conn)
        return {
            "holder": row.holder,
            "acquired_at": row.acquired_at.isoformat(),
            "renewed_at": row.renewed_at.isoformat(),
            "expires_at": row.expires_at.isoformat(),
            "expired": row.expires_at <= now,
        }


def _lease_values(holder: str, ttl_s: int, now: datetime) -> dict[str, Any]:
    return {
        "holder": holder,
        "ttl_s": ttl_s,
        "acquired_at": now,
        "renewed_at": now,
        "expires_at": now + timedelta(seconds=ttl_s),
    }
