"""The ``lease`` table: one sync at a time, across processes and hosts."""

from __future__ import annotations

import os
import socket
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from deltasync.state.base import StoreBase, db_now
from deltasync.state.database import waiting_for_locks
from deltasync.state.tables import LEASE_NAME, lease


class LeaseStore(StoreBase):
    """Take, renew, release and show the single sync lease."""

    taken_over: str | None = None  # the dead holder the last acquire_lease took over from

    def acquire_lease(self, holder: str, ttl_s: int = 120) -> bool:
        """Take the lease unless another holder's lease has not expired yet.

        Atomic across processes and hosts: an expired (or own) lease row is taken with a
        compare-and-swap UPDATE, a missing one with an INSERT that only one can win. Times
        come from the database server on PostgreSQL, so clock skew between hosts does not
        matter. A holder killed without releasing blocks others for at most ``ttl_s``; one
        on this host whose process is gone (the holder string is ``host:pid:…``) is taken
        over at once, and :attr:`taken_over` names it. A lock another process or session
        holds (a writer on SQLite; a table or row lock on PostgreSQL) is waited for briefly,
        saying so, then :class:`StateLockedError` (exit 75).
        """
        self.taken_over = None
        with self._guard(), self._writer.connect() as conn:
            taken = waiting_for_locks(conn, self._url, lambda c: self._take(c, holder, ttl_s))
            if taken is not None:
                return taken
            try:
                waiting_for_locks(conn, self._url, lambda c: _insert(c, holder, ttl_s))
            except IntegrityError:
                return False  # another process inserted it first
            return True

    def _take(self, conn: Connection, holder: str, ttl_s: int) -> bool | None:
        """Take the existing lease row if it is free, own or a dead holder's; None if there
        is no row."""
        self.taken_over = None
        values = _lease_values(holder, ttl_s, db_now(conn))
        now = values["acquired_at"]
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
        row = conn.execute(select(lease.c.holder).where(lease.c.name == LEASE_NAME)).first()
        if row is None:
            return None
        if not holder_is_gone(row.holder):
            return False
        stmt = update(lease).where(lease.c.name == LEASE_NAME, lease.c.holder == row.holder)
        if conn.execute(stmt.values(values)).rowcount:
            self.taken_over = row.holder
            return True
        return False

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


def _insert(conn: Connection, holder: str, ttl_s: int) -> None:
    conn.execute(
        insert(lease).values(name=LEASE_NAME, **_lease_values(holder, ttl_s, db_now(conn)))
    )


def _lease_values(holder: str, ttl_s: int, now: datetime) -> dict[str, Any]:
    return {
        "holder": holder,
        "ttl_s": ttl_s,
        "acquired_at": now,
        "renewed_at": now,
        "expires_at": now + timedelta(seconds=ttl_s),
    }


def holder_is_gone(holder: str) -> bool:
    """Whether a lease holder ``host:pid:…`` is a process of this host that no longer runs.

    Only a certain answer counts: another host, an unparsable holder, or a process that
    exists (even one this user may not signal) is not gone.
    """
    parts = holder.split(":")
    if len(parts) < 2 or parts[0] != socket.gethostname() or not parts[1].isdigit():
        return False
    pid = int(parts[1])
    if pid <= 0 or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False  # it exists, owned by someone else
    return False
