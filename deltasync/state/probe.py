"""``check``'s look at the state database: reachable, at which revision, sound, writable.

Nothing here creates, migrates, moves or changes the database: a SQLite file that does not
exist yet is not created (its folder is checked instead), the revision and the schema are only
read, and the write test runs in a transaction that is rolled back. A damaged database (not a
database, several revisions, deltasync's tables without a revision, a table or column missing)
is a ✗ saying what was found and what to do; the next sync would move a SQLite file aside.
"""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import Connection, Engine, make_url, text
from sqlalchemy.engine import URL
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from deltasync.errors import StateDamagedError, StateLockedError, StateStoreError
from deltasync.models import Probe
from deltasync.state.database import WRITE, create_state_engine, describe, is_damaged, mask_url
from deltasync.state.integrity import damaged, own_tables, verify_schema, what_to_do
from deltasync.state.revision import HEAD_REVISION, no_such_table

#: How long the write test waits for a lock a running sync holds (milliseconds).
LOCK_WAIT_MS = 3000
_NO_SCHEMA = object()


def probe_state(url: str) -> list[Probe]:
    """Lines ``state database`` (reachable), ``state revision``, ``state schema`` (sound)
    and ``state writable``."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        return [Probe("state database", False, f"the URL is not valid: {exc}", "correct state.url")]
    shown = mask_url(parsed)
    missing = missing_sqlite_file(parsed)
    if missing is not None:
        return [_absent_file(missing)]
    try:
        engine = create_state_engine(url)
    except StateStoreError as exc:
        return [Probe("state database", False, str(exc), "correct state.url")]
    try:
        return _probe(engine, shown)
    finally:
        engine.dispose()


def missing_sqlite_file(url: URL) -> Path | None:
    """The file a SQLite URL names when it does not exist yet (opening it would create it)."""
    if url.get_backend_name() != "sqlite":
        return None
    database = url.database or ""
    if database in ("", ":memory:") or "mode=memory" in database or database.startswith("file:"):
        return None
    path = Path(database)
    return None if path.exists() else path


def _absent_file(path: Path) -> Probe:
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if os.access(folder, os.W_OK | os.X_OK):
        return Probe(
            "state database",
            True,
            f"{path} does not exist yet: the first run creates it (and {path.parent})",
        )
    return Probe(
        "state database",
        False,
        f"{path} does not exist and cannot be created: {folder} is not writable",
        f"let the user running deltasync write to {folder}, or point state.url elsewhere",
    )


def _probe(engine: Engine, shown: str) -> list[Probe]:
    url = engine.url.render_as_string(hide_password=False)
    try:
        with engine.connect() as conn:
            revision = _revision(conn)
    except StateDamagedError as exc:
        return [_damaged("state database", url, exc)]
    except SQLAlchemyError as exc:
        if is_damaged(exc):
            found = damaged(url, f"not a SQLite database ({describe(exc)})")
            return [_damaged("state database", url, found)]
        return [
            Probe(
                "state database",
                False,
                f"cannot reach {shown}: {describe(exc)}",
                "check state.url, the database server and its credentials",
            )
        ]
    lines = [Probe("state database", True, f"{shown} answers")]
    soundness = _soundness(engine, url, revision)
    if soundness is None or soundness.ok is not False or revision is not _NO_SCHEMA:
        lines.append(_revision_line(revision))  # (not "no schema yet" beside a half schema)
    if soundness is not None:
        lines.append(soundness)
        if soundness.ok is False:
            return lines
    if revision is _NO_SCHEMA or revision == HEAD_REVISION or _known(str(revision)):
        lines.append(_writable(engine, shown, has_schema=revision is not _NO_SCHEMA))
    return lines


def _revision(conn: Connection) -> object:
    try:
        rows = conn.execute(text("SELECT version_num FROM alembic_version")).all()
    except SQLAlchemyError as exc:
        if is_damaged(exc) or not no_such_table(exc):
            raise
        return _NO_SCHEMA
    if len(rows) > 1:
        revisions = ", ".join(sorted(str(r[0]) for r in rows))
        url = conn.engine.url.render_as_string(hide_password=False)
        raise damaged(url, f"it holds several schema revisions ({revisions})")
    return str(rows[0][0]) if rows else _NO_SCHEMA


def _soundness(engine: Engine, url: str, revision: object) -> Probe | None:
    """``state schema``: deltasync's tables without a revision (an interrupted migration), or
    at this code's revision a table or column missing; None when there is nothing to verify."""
    try:
        if revision is _NO_SCHEMA:
            found = own_tables(engine)
            if found:
                raise damaged(
                    url,
                    "it has deltasync tables (" + ", ".join(found) + ") but no schema "
                    "revision: a migration was interrupted or the revision table was dropped",
                )
            return None
        if revision != HEAD_REVISION:
            return None  # an older schema: the next run migrates it, then verifies
        verify_schema(engine)
    except StateDamagedError as exc:
        return _damaged("state schema", url, exc)
    except StateLockedError:
        return Probe("state schema", None, "not verified: another process holds it locked")
    except SQLAlchemyError as exc:
        return Probe("state schema", None, f"not verified: {describe(exc)}")
    return Probe("state schema", True, "every table and column of this revision is there")


def _damaged(name: str, url: str, exc: StateDamagedError) -> Probe:
    """A ✗ line: what was found and what to do."""
    advice = what_to_do(url)
    return Probe(name, False, str(exc).removesuffix(f". {advice}"), advice)


def _known(revision: str) -> bool:
    """Whether the migrations of this code know ``revision`` (Alembic: only off the head)."""
    from alembic.script import ScriptDirectory
    from alembic.util import CommandError

    from deltasync.state.migrate import alembic_config

    try:
        return ScriptDirectory.from_config(alembic_config()).get_revision(revision) is not None
    except CommandError:
        return False


def _revision_line(revision: object) -> Probe:
    if revision is _NO_SCHEMA:
        return Probe(
            "state revision", True, f"no schema yet: the next run creates it ({HEAD_REVISION})"
        )
    if revision == HEAD_REVISION:
        return Probe("state revision", True, f"at {HEAD_REVISION}, the revision of this code")
    if _known(str(revision)):
        return Probe(
            "state revision",
            True,
            f"at {revision}: will be migrated to {HEAD_REVISION} by the next run (or `db upgrade`)",
        )
    from deltasync.state.migrate import is_newer

    if not is_newer(str(revision), HEAD_REVISION):
        return Probe(
            "state revision",
            False,
            f"at {revision}, which is not one of deltasync's migrations (0001 to "
            f"{HEAD_REVISION}): another application's database, or an old pre-release's",
            "point state.url at a database of its own, or move this one aside (the next run "
            "then reads everything and re-links every ELIZA object by remote_key)",
        )
    return Probe(
        "state revision",
        False,
        f"at {revision}, newer than this code (which knows up to {HEAD_REVISION}): a newer "
        "deltasync upgraded it",
        "run that newer deltasync, or restore a backup made before the upgrade",
    )


def _writable(engine: Engine, shown: str, *, has_schema: bool) -> Probe:
    """A write in a transaction that is rolled back: the version row rewritten unchanged, or
    (no schema yet) a table created and dropped with the rollback."""
    statement = (
        "UPDATE alembic_version SET version_num = version_num"
        if has_schema
        else "CREATE TABLE deltasync_check_probe (id INTEGER)"
    )
    try:
        with engine.connect() as conn:
            if conn.dialect.name == "sqlite":  # on the driver's connection: no autobegin
                cursor = conn.connection.cursor()
                cursor.execute(f"PRAGMA busy_timeout = {LOCK_WAIT_MS}")
                cursor.close()
            conn.execution_options(**{WRITE: True})
            transaction = conn.begin()
            try:
                if conn.dialect.name == "postgresql":
                    conn.exec_driver_sql(f"SET LOCAL lock_timeout = {LOCK_WAIT_MS}")
                conn.exec_driver_sql(statement)
            finally:
                transaction.rollback()
    except SQLAlchemyError as exc:
        reason = describe(exc)
        locked = "locked" in reason.lower() or "lock timeout" in reason.lower()
        return Probe(
            "state writable",
            False,
            f"cannot write to {shown}: {reason}",
            "wait for the running sync to finish, then check again"
            if locked
            else "let the user running deltasync write to the database (file permissions, "
            "or the database role's grants)",
        )
    return Probe("state writable", True, "a test write (rolled back) succeeded")
