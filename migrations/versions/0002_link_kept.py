"""Links remember the ELIZA values adoption kept because Entra had none.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copy of the JSON type in deltasync.state.tables (JSONB on PostgreSQL).
JSON_DOC = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("link") as batch:
        batch.add_column(sa.Column("kept", JSON_DOC, nullable=False, server_default="{}"))


def downgrade() -> None:
    with op.batch_alter_table("link") as batch:
        batch.drop_column("kept")
