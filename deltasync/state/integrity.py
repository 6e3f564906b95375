"""Is the state database sound? And what to do when it is not.

The state database is a cache of facts that ELIZA and Graph also hold (DESIGN.md), so a
damaged one is never patched up in place: a SQLite file is moved aside, kept as
``<name>.corrupt-<UTC time>`` and never overwritten, and a fresh database is started; the next
run reads everything and re-links every ELIZA object by ``remote_key``. A server database
(PostgreSQL) is never moved or dropped: the error says what to do.

:func:`verify_schema` costs one query, so it runs on every open.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Connection, Engine, inspect, text
from sqlalchemy.exc import SQLAlchemyError

from deltasync.errors import StateDamagedError
from deltasync.state.database import (
    describe,
    is_locked,
    locked_error,
    mask_url,
    sqlite_file,
    waiting_for_locks,
)
from deltasync.state.tables import metadata

CORRUPT_SUFFIX = ".corrupt-"
CACHE_NOTE = (
    "the state database is a cache of what Entra and ELIZA hold: a fresh one loses no data "
    "(the next run reads everything and re-links every ELIZA object by remote_key), only "
    "the history of runs and the journal"
)


def damaged(url: str, what: str) -> StateDamagedError:
    """The error for a damaged database at ``url``, with the advice that fits its backend."""
    head = f"the state database {mask_url(url)} is damaged: {what}"
    if sqlite_file(url) is not None:
        return StateDamagedError(head)
    return StateDamagedError(f"{head}. {what_to_do(url)}")


def what_to_do(url: str) -> str:
    """What an administrator does about a damaged database at ``url`` (``check``'s fix)."""
    path = sqlite_file(url)
    if path is not None:
        return (
            f"the next sync moves it aside as {path.name}{CORRUPT_SUFFIX}<UTC time> and starts "
            "a fresh one (or restore a backup first); " + CACHE_NOTE
        )
    return (
        "deltasync never moves or drops a server database: restore a backup, or drop and "
        "re-create the database (or point state.url at a new, empty one); " + CACHE_NOTE
    )


def _probe(conn: Connection, tables: list[str]) -> None:
    """One statement reading no row from every listed table and column; raises if one is off."""
    quote = conn.dialect.identifier_preparer.quote
    parts = []
    for i, name in enumerate(tables):
        columns = ", ".join(quote(c.name) for c in metadata.tables[name].c)
        parts.append(f"(SELECT {columns} FROM {quote(name)} LIMIT 0) AS t{i}")
    conn.execute(text("SELECT 1 FROM " + " CROSS JOIN ".join(parts)))


def verify_schema(engine: Engine) -> None:
    """Every table and column of the code's schema is there (one query when all is well).

    Raises:
        StateDamagedError: naming each missing or altered table.
        StateLockedError: another process holds the database locked.
    """
    names = [t.name for t in metadata.sorted_tables]
    try:
        with engine.connect() as conn:
            try:
                if conn.dialect.name == "postgresql":  # a table lock: a short, stated wait
                    waiting_for_locks(conn, engine.url, lambda c: _probe(c, names))
                else:
                    _probe(conn, names)
                return
            except SQLAlchemyError as exc:
                if is_locked(exc):
                    raise locked_error(engine.url) from exc
                conn.rollback()
            broken = []
            for name in names:
                try:
                    _probe(conn, [name])
                except SQLAlchemyError as exc:
                    conn.rollback()
                    broken.append(f"table {name}: {describe(exc)}")
    except SQLAlchemyError as exc:
        if is_locked(exc):
            raise locked_error(engine.url) from exc
        raise damaged(str(engine.url), describe(exc)) from exc
    if broken:
        raise damaged(
            str(engine.url),
            "its schema does not match its revision (" + "; ".join(broken) + ")",
        )


def own_tables(engine: Engine) -> list[str]:
    """Which of deltasync's tables the database already has (a schema without a revision)."""
    present = set(inspect(engine).get_table_names())
    return sorted(t.name for t in metadata.sorted_tables if t.name in present)


def move_aside(path: Path, now: datetime | None = None) -> Path:
    """Rename a damaged SQLite file (and its -wal/-shm) to ``<name>.corrupt-<UTC time>``.

    Never overwrites: an existing name gets a counter.
    """
    stamp = (now or datetime.now(UTC)).astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    base = path.with_name(f"{path.name}{CORRUPT_SUFFIX}{stamp}")
    target, n = base, 1
    while any(Path(f"{target}{s}").exists() for s in ("", "-wal", "-shm")):
        n += 1
        target = base.with_name(f"{base.name}-{n}")
    for suffix in ("-wal", "-shm", ""):  # the main file last: its name is what is looked for
        source = Path(f"{path}{suffix}")
        if source.exists():
            os.rename(source, f"{target}{suffix}")
    return target
