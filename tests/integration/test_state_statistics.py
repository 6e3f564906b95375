"""PostgreSQL's planner statistics follow a table the run fills from empty: without them, a
first sync of 100,000 users planned every ``id IN (…)`` lookup as a scan of all the users."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from deltasync.models import DeltaPage, ObjectChange, RoundKind
from deltasync.state import StateStore, open_store
from tests.db_fixtures import PgServer

PAGE = 1_000


def fill(store: StateStore, count: int) -> None:
    store.begin_round("users", RoundKind.FULL, "fp", "https://graph.example/users/delta")
    for start in range(0, count, PAGE):
        changes = tuple(
            ObjectChange(f"u{i:06d}", {"id": f"u{i:06d}", "userPrincipalName": f"u{i}@x"})
            for i in range(start, min(start + PAGE, count))
        )
        last = start + PAGE >= count
        page = DeltaPage(changes, None if last else f"next-{start}", "d" if last else None)
        store.apply_page("users", page, replace=True)


@pytest.mark.postgres
def test_a_table_filled_from_empty_is_analyzed_as_it_doubles_and_not_on_every_page(
    pg_server: PgServer,
) -> None:
    url = pg_server.create_database()
    store = open_store(url)
    try:
        fill(store, 6 * PAGE)
        # at 2,000 rows, then at 4,000; 6,000 is not yet twice the 4,000 last analyzed
        assert store.statistics.analyzed == ["mirror", "mirror"]
        engine = create_engine(url)
        with engine.connect() as conn:
            estimate = conn.execute(
                text("SELECT reltuples FROM pg_class WHERE relname = 'mirror'")
            ).scalar_one()
        engine.dispose()
        assert estimate >= 4 * PAGE
    finally:
        store.close()


def test_sqlite_is_never_analyzed(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'state.db'}")
    try:
        fill(store, 3 * PAGE)
        assert store.statistics.analyzed == []
    finally:
        store.close()
