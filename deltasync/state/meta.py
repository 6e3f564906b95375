"""The ``meta`` table: settings of the sync itself, and the store-wide version counter."""

from __future__ import annotations

from sqlalchemy import Connection, insert, select, update
from sqlalchemy.exc import IntegrityError

from deltasync.state.base import StoreBase
from deltasync.state.tables import VERSION_KEY, meta

# When this database was created, and after what (no database found, a damaged one moved).
CREATED_AT = "created_at"
CREATED_AFTER = "created_after"


class MetaStore(StoreBase):
    """Key/value settings (e.g. the plan fingerprint)."""

    def get_meta(self, key: str) -> str | None:
        """A stored setting of the sync itself (e.g. the plan fingerprint)."""
        with self._read() as conn:
            row = conn.execute(select(meta.c.value).where(meta.c.key == key)).first()
        return row.value if row is not None else None

    def created(self) -> tuple[str, str] | None:
        """When this database was created (ISO 8601) and after what; None if not recorded."""
        at = self.get_meta(CREATED_AT)
        return None if at is None else (at, self.get_meta(CREATED_AFTER) or "")

    def set_meta(self, key: str, value: str) -> None:
        """Store a setting of the sync itself."""
        with self._write() as conn:
            _set_meta(conn, key, value)


def _set_meta(conn: Connection, key: str, value: str) -> None:
    if conn.execute(update(meta).where(meta.c.key == key).values(value=value)).rowcount == 0:
        conn.execute(insert(meta).values(key=key, value=value))


class VersionCounter:
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
