"""Initial schema: cursors, mirror, links, failures, runs, journal, lease, meta.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies of the column types in deltasync.state.tables (a migration must not change
# when the code does): UTC datetimes, and JSON stored as JSONB on PostgreSQL.
UTC_DATETIME = sa.DateTime(timezone=True)
JSON_DOC = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "cursor",
        sa.Column("resource", sa.String(32), nullable=False),
        sa.Column("delta_link", sa.Text(), nullable=True),
        sa.Column("next_link", sa.Text(), nullable=True),
        sa.Column("select_fingerprint", sa.String(128), nullable=True),
        sa.Column("round_kind", sa.String(16), nullable=True),
        sa.Column("round_seq", sa.Integer(), nullable=False),
        sa.Column("round_started_at", UTC_DATETIME, nullable=True),
        sa.Column("delta_committed_at", UTC_DATETIME, nullable=True),
        sa.Column("full_completed_at", UTC_DATETIME, nullable=True),
        sa.PrimaryKeyConstraint("resource", name=op.f("pk_cursor")),
    )
    op.create_table(
        "mirror",
        sa.Column("resource", sa.String(32), nullable=False),
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("data", JSON_DOC, nullable=False),
        sa.Column("removed", sa.String(16), nullable=True),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("settled_version", sa.BigInteger(), nullable=False),
        sa.Column("last_seen_round", sa.Integer(), nullable=True),
        sa.Column("upn", sa.String(320), nullable=True),
        sa.Column("mail", sa.String(320), nullable=True),
        sa.Column("first_seen_at", UTC_DATETIME, nullable=False),
        sa.Column("updated_at", UTC_DATETIME, nullable=False),
        sa.PrimaryKeyConstraint("resource", "id", name=op.f("pk_mirror")),
    )
    op.create_index("ix_mirror_id", "mirror", ["id"])
    op.create_index("ix_mirror_upn", "mirror", ["upn"])
    op.create_index("ix_mirror_mail", "mirror", ["mail"])
    op.create_index(
        "ix_mirror_dirty",
        "mirror",
        ["resource", "id"],
        sqlite_where=sa.text("version > settled_version"),
        postgresql_where=sa.text("version > settled_version"),
    )
    op.create_table(
        "link",
        sa.Column("entra_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("eliza_id", sa.BigInteger(), nullable=False),
        sa.Column("matched_by", sa.String(32), nullable=False),
        sa.Column("matched_at", UTC_DATETIME, nullable=False),
        sa.Column("pushed", JSON_DOC, nullable=False),
        sa.Column("pushed_version", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("saved", JSON_DOC, nullable=False),
        sa.PrimaryKeyConstraint("entra_id", "kind", name=op.f("pk_link")),
        sa.UniqueConstraint("kind", "eliza_id", name=op.f("uq_link_kind_eliza_id")),
    )
    op.create_table(
        "failure",
        sa.Column("entra_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("category", sa.String(16), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("detail", JSON_DOC, nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("failed_version", sa.BigInteger(), nullable=False),
        sa.Column("first_failed_at", UTC_DATETIME, nullable=False),
        sa.Column("last_failed_at", UTC_DATETIME, nullable=False),
        sa.Column("next_retry_at", UTC_DATETIME, nullable=False),
        sa.PrimaryKeyConstraint("entra_id", "kind", name=op.f("pk_failure")),
    )
    op.create_index("ix_failure_next_retry_at", "failure", ["next_retry_at"])
    op.create_table(
        "run",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("command", sa.String(32), nullable=False),
        sa.Column("dry_run", sa.Boolean(), nullable=False),
        sa.Column("started_at", UTC_DATETIME, nullable=False),
        sa.Column("finished_at", UTC_DATETIME, nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("exit_code", sa.Integer(), nullable=True),
        sa.Column("report", JSON_DOC, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_run")),
    )
    op.create_table(
        "journal",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("at", UTC_DATETIME, nullable=False),
        sa.Column("entra_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("eliza_id", sa.BigInteger(), nullable=True),
        sa.Column("changes", JSON_DOC, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_journal")),
    )
    op.create_index("ix_journal_entra_id", "journal", ["entra_id"])
    op.create_index("ix_journal_run_id", "journal", ["run_id"])
    op.create_table(
        "lease",
        sa.Column("name", sa.String(32), nullable=False),
        sa.Column("holder", sa.String(255), nullable=False),
        sa.Column("ttl_s", sa.Integer(), nullable=False),
        sa.Column("acquired_at", UTC_DATETIME, nullable=False),
        sa.Column("renewed_at", UTC_DATETIME, nullable=False),
        sa.Column("expires_at", UTC_DATETIME, nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_lease")),
    )
    op.create_table(
        "meta",
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_meta")),
    )


def downgrade() -> None:
    op.drop_table("meta")
    op.drop_table("lease")
    op.drop_index("ix_journal_run_id", table_name="journal")
    op.drop_index("ix_journal_entra_id", table_name="journal")
    op.drop_table("journal")
    op.drop_table("run")
    op.drop_index("ix_failure_next_retry_at", table_name="failure")
    op.drop_table("failure")
    op.drop_table("link")
    op.drop_index("ix_mirror_dirty", table_name="mirror")
    op.drop_index("ix_mirror_mail", table_name="mirror")
    op.drop_index("ix_mirror_upn", table_name="mirror")
    op.drop_index("ix_mirror_id", table_name="mirror")
    op.drop_table("mirror")
    op.drop_table("cursor")
