"""Group memberships: the direct members of each mirrored Entra group.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "group_member",
        sa.Column("group_id", sa.String(64), nullable=False),
        sa.Column("member_id", sa.String(64), nullable=False),
        sa.Column("member_type", sa.String(32), nullable=False),
        sa.Column("last_seen_round", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("group_id", "member_id", name=op.f("pk_group_member")),
    )
    op.create_index("ix_group_member_member_id", "group_member", ["member_id"])


def downgrade() -> None:
    op.drop_index("ix_group_member_member_id", table_name="group_member")
    op.drop_table("group_member")
