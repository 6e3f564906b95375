"""The nesting of groups is read from an index of the group members that are groups.

Planning with nested groups and `state user` read every (group, member group) pair; at
100,000 users that filter scanned all 296,000 memberships (about 70 ms each time). The
partial index holds only the member groups, a few rows however many users there are.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_NESTED = sa.text("member_type = 'group'")


def upgrade() -> None:
    op.create_index(
        "ix_group_member_nested",
        "group_member",
        ["group_id", "member_id"],
        sqlite_where=_NESTED,
        postgresql_where=_NESTED,
    )


def downgrade() -> None:
    op.drop_index("ix_group_member_nested", table_name="group_member")
