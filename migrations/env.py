"""Alembic environment for the state database.

deltasync runs migrations itself (``deltasync.state.migrate.migrate``) and hands this file
the connection, already inside a transaction, through ``config.attributes["connection"]``.
For developers (``alembic revision --autogenerate``) a ``sqlalchemy.url`` option works too.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, create_engine, pool

from deltasync.state.tables import metadata

config = context.config


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        # SQLite cannot ALTER most things: Alembic copies the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _url() -> str:
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no connection given and no sqlalchemy.url option set")
    return url


if context.is_offline_mode():
    context.configure(
        url=_url(),
        target_metadata=metadata,
        literal_binds=True,
        render_as_batch=_url().startswith("sqlite"),
    )
    with context.begin_transaction():
        context.run_migrations()
else:
    given = config.attributes.get("connection")
    if given is not None:
        _configure(given)
    else:
        with create_engine(_url(), poolclass=pool.NullPool).connect() as conn:
            _configure(conn)
