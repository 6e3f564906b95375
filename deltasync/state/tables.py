"""The state database schema, as SQLAlchemy Core tables.

The tables are the single description of the schema: the store queries them and Alembic's
autogenerate compares them with the migrations (a test fails when the two drift apart). The
naming convention gives every constraint and index a stable name, so migrations can address
them on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Dialect,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.types import TypeDecorator, TypeEngine

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)

# The meta key holding the store-wide version counter of mirror objects.
VERSION_KEY = "mirror_version"
# The one row of the lease table.
LEASE_NAME = "sync"


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend.

    PostgreSQL keeps the offset (``timestamptz``); SQLite stores naive text, so values are
    written as naive UTC and read back with ``tzinfo=UTC``. Naive input is refused: a local
    time silently taken for UTC would shift every retry and lease by hours.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r}: the state database stores UTC only")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


# Plain JSON documents (dicts); JSONB on PostgreSQL for compact storage.
JSONDoc: TypeEngine[Any] = JSON().with_variant(JSONB(), "postgresql")

ID = 64  # Entra object ids are GUIDs (36 chars)
ADDRESS = 320  # the longest valid e-mail address

cursor = Table(
    "cursor",
    metadata,
    Column("resource", String(32), primary_key=True),
    # Graph links carry opaque tokens and can be far longer than 8,000 characters.
    Column("delta_link", Text),
    Column("next_link", Text),  # progress marker of the unfinished round
    Column("select_fingerprint", String(128)),
    Column("round_kind", String(16)),  # RoundKind of the unfinished round
    Column("round_seq", Integer, nullable=False, default=0),
    Column("round_started_at", UTCDateTime),
    Column("delta_committed_at", UTCDateTime),
    Column("full_completed_at", UTCDateTime),
)

mirror = Table(
    "mirror",
    metadata,
    Column("resource", String(32), primary_key=True),
    Column("id", String(ID), primary_key=True),
    Column("data", JSONDoc, nullable=False),
    Column("removed", String(16)),  # Removed reason, NULL while the object exists
    Column("version", BigInteger, nullable=False),
    Column("settled_version", BigInteger, nullable=False, default=0),
    Column("last_seen_round", Integer),  # round_seq of the last full round that returned it
    # Lower-cased userPrincipalName and mail, kept beside the JSON for indexed lookups.
    Column("upn", String(ADDRESS)),
    Column("mail", String(ADDRESS)),
    Column("first_seen_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Index("ix_mirror_id", "id"),
    Index("ix_mirror_upn", "upn"),
    Index("ix_mirror_mail", "mail"),
)

# Only the few objects waiting for a push are in this index, however big the mirror grows.
Index(
    "ix_mirror_dirty",
    mirror.c.resource,
    mirror.c.id,
    sqlite_where=mirror.c.version > mirror.c.settled_version,
    postgresql_where=mirror.c.version > mirror.c.settled_version,
)

link = Table(
    "link",
    metadata,
    Column("entra_id", String(ID), primary_key=True),
    Column("kind", String(16), primary_key=True),
    Column("eliza_id", BigInteger, nullable=False),
    Column("matched_by", String(32), nullable=False),
    Column("matched_at", UTCDateTime, nullable=False),
    Column("pushed", JSONDoc, nullable=False),
    Column("pushed_version", BigInteger, nullable=False),
    Column("status", String(16), nullable=False),
    Column("saved", JSONDoc, nullable=False),
    # ELIZA values adoption left alone because Entra had none (migration 0002)
    Column("kept", JSONDoc, nullable=False, server_default="{}"),
    UniqueConstraint("kind", "eliza_id"),
    Index("ix_link_kind_status", "kind", "status"),  # counts by kind and status (0004)
)

# The direct members of each mirrored Entra group (users, nested groups, other objects).
group_member = Table(
    "group_member",
    metadata,
    Column("group_id", String(ID), primary_key=True),
    Column("member_id", String(ID), primary_key=True),
    Column("member_type", String(32), nullable=False),  # "user", "group", "device", ...
    Column("last_seen_round", Integer),  # round_seq of the last full groups round listing it
    Index("ix_group_member_member_id", "member_id"),
)

# The member groups alone: the nesting graph, read without scanning every membership (0005).
Index(
    "ix_group_member_nested",
    group_member.c.group_id,
    group_member.c.member_id,
    sqlite_where=text("member_type = 'group'"),
    postgresql_where=text("member_type = 'group'"),
)

failure = Table(
    "failure",
    metadata,
    Column("entra_id", String(ID), primary_key=True),
    Column("kind", String(16), primary_key=True),
    Column("action", String(32), nullable=False),
    Column("category", String(16), nullable=False),
    Column("message", Text, nullable=False),
    Column("detail", JSONDoc, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("failed_version", BigInteger, nullable=False),
    Column("first_failed_at", UTCDateTime, nullable=False),
    Column("last_failed_at", UTCDateTime, nullable=False),
    Column("next_retry_at", UTCDateTime, nullable=False),
    Index("ix_failure_next_retry_at", "next_retry_at"),
)

run = Table(
    "run",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("command", String(32), nullable=False),
    Column("dry_run", Boolean, nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime),
    Column("status", String(16), nullable=False),
    Column("exit_code", Integer),
    Column("report", JSONDoc, nullable=False),
)

journal = Table(
    "journal",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    # No foreign key to run: the engine journals with run_id 0 when it runs without a record.
    Column("run_id", Integer, nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("entra_id", String(ID), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("action", String(32), nullable=False),
    Column("eliza_id", BigInteger),
    Column("changes", JSONDoc, nullable=False),
    Index("ix_journal_entra_id", "entra_id"),
    Index("ix_journal_run_id", "run_id"),
)

lease = Table(
    "lease",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("holder", String(255), nullable=False),
    Column("ttl_s", Integer, nullable=False),
    Column("acquired_at", UTCDateTime, nullable=False),
    Column("renewed_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
)

meta = Table(
    "meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)
