"""What every table family of the store shares: the engine, short transactions, clean values.

Each public store method is one short transaction (:meth:`StoreBase._read` or
:meth:`StoreBase._write`), so whatever is committed is consistent on its own. Inside
:meth:`StoreBase.batch` the writes of this thread join one transaction instead: the push
records a batch of objects with one commit, not several per object.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self

from sqlalchemy import Connection, Engine, func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import StaticPool

from deltasync.errors import StateStoreError
from deltasync.state.database import WRITE, describe, is_locked, json_dumps, locked_error, mask_url
from deltasync.state.statistics import Statistics

CHUNK = 500  # ids per IN (...) list, well below every backend's parameter limit


class StoreBase:
    """The engine and its transactions; the table families of the store build on it."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._writer = engine.execution_options(**{WRITE: True})
        self._url = mask_url(engine.url)
        self._local = threading.local()  # .conn: this thread's open batch, if any
        self.statistics = Statistics()  # PostgreSQL's planner statistics kept in step

    @property
    def threadsafe(self) -> bool:
        """A worker thread may write while another thread reads: every backend but an
        in-memory SQLite database, whose one shared connection serves every thread."""
        return not isinstance(self._engine.pool, StaticPool)

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

    @contextmanager
    def _guard(self) -> Iterator[None]:
        try:
            yield
        except SQLAlchemyError as exc:
            if is_locked(exc):  # PostgreSQL's lock_timeout ran out mid-run
                raise locked_error(self._url) from exc
            raise StateStoreError(f"state database {self._url}: {describe(exc)}") from exc

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        with self._guard(), self._engine.connect() as conn:
            yield conn

    @contextmanager
    def batch(self) -> Iterator[None]:
        """One transaction for every write made inside, committed at the end (or rolled back
        on an exception); nested batches join the outer one."""
        if getattr(self._local, "conn", None) is not None:
            yield
            return
        with self._guard(), self._writer.begin() as conn:
            self._local.conn = conn
            try:
                yield
            finally:
                self._local.conn = None

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        joined: Connection | None = getattr(self._local, "conn", None)
        if joined is not None:
            with self._guard():
                yield joined
            return
        with self._guard(), self._writer.begin() as conn:
            yield conn


def utcnow() -> datetime:
    return datetime.now(UTC)


def db_now(conn: Connection) -> datetime:
    """The database server's clock where there is one (PostgreSQL), else this host's."""
    if conn.dialect.name == "postgresql":
        value: datetime = conn.execute(select(func.now())).scalar_one()
        return value.astimezone(UTC)
    return utcnow()


def plain(value: Mapping[str, Any]) -> dict[str, Any]:
    """A JSON-clean copy: what the database will give back, for exact change detection."""
    try:
        result: dict[str, Any] = json.loads(json_dumps(dict(value)))
    except (TypeError, ValueError) as exc:
        raise StateStoreError(f"cannot store a value as JSON: {exc}") from exc
    return result


def chunks(items: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), CHUNK):
        yield items[start : start + CHUNK]
