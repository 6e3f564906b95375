"""Alembic migrations on real SQLite and PostgreSQL databases, and opening the database."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, create_engine, inspect, text

from deltasync.errors import StateStoreError
from deltasync.models import DeltaPage, ObjectChange, RoundKind
from deltasync.state import open_store, upgrade
from deltasync.state.database import create_state_engine
from deltasync.state.migrate import alembic_config, head_revision
from deltasync.state.revision import HEAD_REVISION, script_location
from deltasync.state.tables import metadata

REPO = Path(__file__).resolve().parents[2]
TABLES = {table.name for table in metadata.sorted_tables}


@pytest.fixture
def engine_for() -> Iterator[Any]:
    """Plain engines on a URL, disposed after the test."""
    engines: list[Engine] = []

    def make(url: str) -> Engine:
        engines.append(create_engine(url))
        return engines[-1]

    yield make
    for engine in engines:
        engine.dispose()


def drift(engine: Engine) -> list[Any]:
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return list(compare_metadata(context, metadata))


def tables(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names())


def test_the_head_revision_known_to_the_code_is_the_migrations_head() -> None:
    assert head_revision() == HEAD_REVISION, (
        "a migration was added: set deltasync.state.revision.HEAD_REVISION to its revision id"
    )


def test_opening_an_up_to_date_store_does_not_import_alembic(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    upgrade(url)
    probe = (
        "import sys; from deltasync.state import open_store; "
        "open_store(sys.argv[1]).close(); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'alembic'))"
    )

    result = subprocess.run(
        [sys.executable, "-c", probe, url], capture_output=True, text=True, check=True, timeout=60
    )

    assert result.stdout.strip() == "[]"


def test_upgrade_on_an_empty_database_matches_the_tables(
    empty_db_url: str, engine_for: Any
) -> None:
    head = head_revision()
    assert head is not None

    assert upgrade(empty_db_url) == (None, head)

    engine = engine_for(empty_db_url)
    assert tables(engine) == TABLES | {"alembic_version"}
    assert drift(engine) == []
    with engine.begin() as conn:  # what `alembic check` does, through our env.py
        command.check(alembic_config(conn))


def test_upgrade_of_a_current_database_changes_nothing(empty_db_url: str) -> None:
    head = head_revision()
    upgrade(empty_db_url)
    assert upgrade(empty_db_url) == (head, head)


def test_downgrade_to_base_then_upgrade_to_head(empty_db_url: str, engine_for: Any) -> None:
    upgrade(empty_db_url)
    engine = engine_for(empty_db_url)

    with engine.begin() as conn:
        command.downgrade(alembic_config(conn), "base")
    assert tables(engine) == {"alembic_version"}

    assert upgrade(empty_db_url) == (None, head_revision())
    assert drift(engine) == []
    with open_store(empty_db_url) as store:
        store.begin_round("users", RoundKind.FULL, "fp", "start")
        store.apply_page(
            "users", DeltaPage((ObjectChange("a", {"n": 1}),), None, "delta"), replace=True
        )
        assert store.count_objects("users") == 1


def test_open_store_migrates_by_itself(empty_db_url: str, engine_for: Any) -> None:
    open_store(empty_db_url).close()
    assert drift(engine_for(empty_db_url)) == []


def test_first_opens_racing_on_an_empty_database_all_succeed(
    empty_db_url: str, engine_for: Any
) -> None:
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def open_once() -> None:
        barrier.wait()
        try:
            open_store(empty_db_url).close()
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=open_once) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)

    assert errors == []
    assert drift(engine_for(empty_db_url)) == []


def test_database_newer_than_the_code_is_refused(empty_db_url: str, engine_for: Any) -> None:
    db_url = empty_db_url  # its own database: the revision is not reset between tests
    upgrade(db_url)
    with engine_for(db_url).begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999_future'"))

    with pytest.raises(StateStoreError, match=r"'9999_future'.*newer deltasync"):
        open_store(db_url)
    with pytest.raises(StateStoreError, match="9999_future"):
        upgrade(db_url)


def test_unreachable_database_is_named_with_its_password_masked() -> None:
    url = "postgresql+psycopg://sync:s3cr3t-pw@127.0.0.1:1/state"

    with pytest.raises(StateStoreError) as caught:
        open_store(url)

    message = str(caught.value)
    assert "sync:***@127.0.0.1:1/state" in message
    assert "s3cr3t-pw" not in message
    assert "s3cr3t-pw" not in str(caught.value.__cause__)
    with pytest.raises(StateStoreError, match=r"\*\*\*@127\.0\.0\.1:1"):
        upgrade(url)


def test_malformed_url_is_refused() -> None:
    with pytest.raises(StateStoreError, match="not valid"):
        open_store("no database here")


def test_sqlite_folder_that_cannot_be_created_is_reported(tmp_path: Path) -> None:
    blocker = tmp_path / "state"
    blocker.write_text("a file where the folder should be")

    with pytest.raises(StateStoreError, match="cannot create the folder"):
        open_store(f"sqlite:///{blocker / 'deltasync.db'}")


def test_sqlite_file_gets_its_folder_wal_foreign_keys_and_busy_timeout(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "deltasync.db"
    url = f"sqlite:///{path}"

    open_store(url).close()

    assert path.is_file()
    with sqlite3.connect(path) as plain:
        assert plain.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    engine = create_state_engine(url)
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30_000
    finally:
        engine.dispose()


def test_in_memory_sqlite_keeps_its_schema_across_calls() -> None:
    with open_store("sqlite://") as store:
        store.set_meta("k", "v")
        assert store.get_meta("k") == "v"


def test_migrations_are_found_from_any_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert script_location() == REPO / "migrations"
    with open_store(f"sqlite:///{tmp_path / 'x.db'}") as store:
        assert store.count_objects("users") == 0


def test_built_wheel_carries_and_uses_its_own_migrations(tmp_path: Path) -> None:
    uv = shutil.which("uv")
    if uv is None:
        pytest.skip("uv is not on PATH: cannot build the wheel")
    subprocess.run(
        [uv, "build", "--wheel", "--quiet", "--out-dir", str(tmp_path / "dist"), str(REPO)],
        check=True,
        timeout=300,
    )
    (wheel,) = (tmp_path / "dist").glob("deltasync-*.whl")
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)
    probe = (
        "import sys; from deltasync.state import upgrade; "
        "from deltasync.state.revision import script_location; "
        "print(script_location()); print(upgrade(sys.argv[1]))"
    )

    result = subprocess.run(
        [sys.executable, "-c", probe, f"sqlite:///{tmp_path / 'x.db'}"],
        env={**os.environ, "PYTHONPATH": str(site)},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )

    location, revisions = result.stdout.splitlines()
    assert Path(location) == site / "deltasync" / "_migrations"
    assert revisions == f"(None, {head_revision()!r})"
