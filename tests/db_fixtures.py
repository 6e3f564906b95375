"""Real databases for the tests: a SQLite file per test, throwaway PostgreSQL databases.

PostgreSQL is the server at ``DELTASYNC_TEST_PG_URL`` (default: trust auth on loopback).
Each test session creates its own databases, named ``deltasync_test_<random>[_<n>]``, and
drops them at the end, so concurrent runs never clash. Without a reachable server the
PostgreSQL variants skip, saying why.

Fixtures: ``pg_server`` (session), ``db_url`` (a migrated, empty database, per backend),
``store`` (an open :class:`StateStore` on it), ``empty_db_url`` (no schema at all).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from deltasync.state import StateStore, open_store
from deltasync.state.tables import metadata

PG_URL = os.environ.get(
    "DELTASYNC_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


class PgServer:
    """Creates throwaway databases on the test server and drops them all at the end."""

    def __init__(self, url: str) -> None:
        self._url = make_url(url)
        self._admin: Engine = create_engine(
            self._url, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 5}
        )
        self.prefix = f"deltasync_test_{uuid.uuid4().hex[:12]}"
        self._created: list[str] = []
        self._cleaner: Engine | None = None
        self._migrated_url: str | None = None

    def check(self) -> None:
        with self._admin.connect() as conn:
            conn.execute(text("SELECT 1"))

    def create_database(self) -> str:
        """A new empty database; its URL."""
        name = self.prefix if not self._created else f"{self.prefix}_{len(self._created)}"
        with self._admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        self._created.append(name)
        return self._url.set(database=name).render_as_string(hide_password=False)

    def migrated_url(self) -> str:
        """The session's migrated database, emptied of every row."""
        if self._migrated_url is None:
            self._migrated_url = self.create_database()
            open_store(self._migrated_url).close()
            self._cleaner = create_engine(self._migrated_url)
        assert self._cleaner is not None
        names = ", ".join(f'"{table.name}"' for table in metadata.sorted_tables)
        with self._cleaner.begin() as conn:
            conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY"))
        return self._migrated_url

    def drop_all(self) -> None:
        if self._cleaner is not None:
            self._cleaner.dispose()
        with self._admin.connect() as conn:
            for name in self._created:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        self.close()

    def close(self) -> None:
        self._admin.dispose()


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """The PostgreSQL test server; skips when it cannot be reached."""
    server = PgServer(PG_URL)
    try:
        server.check()
    except SQLAlchemyError as exc:
        server.close()
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        masked = make_url(PG_URL).render_as_string(hide_password=True)
        pytest.skip(f"PostgreSQL not reachable at {masked}: {reason}")
    yield server
    server.drop_all()


def _sqlite_url(folder: Path) -> str:
    # A folder that does not exist yet: open_store must create it.
    return f"sqlite:///{folder / 'state' / 'deltasync.db'}"


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated database without rows, on each backend."""
    if request.param == "sqlite":
        url = _sqlite_url(tmp_path)
        open_store(url).close()
        return url
    server: PgServer = request.getfixturevalue("pg_server")
    return server.migrated_url()


@pytest.fixture(params=BACKENDS)
def empty_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database without any schema, on each backend."""
    if request.param == "sqlite":
        return _sqlite_url(tmp_path)
    server: PgServer = request.getfixturevalue("pg_server")
    return server.create_database()


@pytest.fixture
def store(db_url: str) -> Iterator[StateStore]:
    """An open store on an empty, migrated database (SQLite and PostgreSQL)."""
    opened = open_store(db_url)
    yield opened
    opened.close()
