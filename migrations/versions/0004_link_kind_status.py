"""Links are counted by kind and status from an index, not by reading every row.

`state` and the deletion threshold count active user links; at 100,000 users the count read
every link row of the kind (~0.1 s each time, four times per `state`).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_link_kind_status", "link", ["kind", "status"])


def downgrade() -> None:
    op.drop_index("ix_link_kind_status", table_name="link")
