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


@pytest.mark.postgres
def test_a_prepared_membership_update_is_planned_for_its_own_group(pg_server: PgServer) -> None:
    """psycopg prepares a statement from its fifth run; PostgreSQL's generic plan for
    ``group_id = $1 AND member_id IN (...)`` then took the 98,000-member group for an average
    one and scanned it whole on every update (a full groups round at 100,000 users: 350 s)."""
    from sqlalchemy import bindparam, update

    from deltasync.state.database import create_state_engine
    from deltasync.state.tables import group_member

    url = pg_server.create_database()
    open_store(url).close()
    engine = create_state_engine(url)
    try:
        with engine.begin() as conn:
            rows = [{"g": "big", "m": f"m{i:05d}"} for i in range(20_000)]
            rows += [{"g": f"g{i:03d}", "m": f"m{j:05d}"} for i in range(400) for j in range(5)]
            conn.execute(
                text("INSERT INTO group_member VALUES (:g, :m, 'user', 1)"),
                rows,
            )
            conn.exec_driver_sql("ANALYZE group_member")
        stmt = (
            update(group_member)
            .where(
                group_member.c.group_id == bindparam("g"),
                group_member.c.member_id.in_(bindparam("ms", expanding=True)),
            )
            .values(last_seen_round=2)
        )
        with engine.begin() as conn:
            for start in range(0, 16 * 500, 500):  # prepared from the 6th; generic from the 11th
                members = [f"m{i:05d}" for i in range(start, start + 500)]
                conn.execute(stmt, {"g": "big", "ms": members})
            plans = conn.execute(
                text(
                    "SELECT generic_plans, custom_plans FROM pg_prepared_statements "
                    "WHERE statement LIKE 'UPDATE group_member%'"
                )
            ).all()
        assert plans, "the update was never prepared (psycopg prepares from its fifth run)"
        assert all(generic == 0 for generic, _ in plans), plans
    finally:
        engine.dispose()
