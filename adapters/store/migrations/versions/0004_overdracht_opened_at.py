"""When each overdracht's notice went out, indexed: the quarterly report counts by it.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("overdrachten") as table:
        table.add_column(sa.Column("opened_at", sa.DateTime(timezone=True), nullable=True))
        table.create_index("ix_overdrachten_opened_at", ["opened_at"])


def downgrade() -> None:
    with op.batch_alter_table("overdrachten") as table:
        table.drop_index("ix_overdrachten_opened_at")
        table.drop_column("opened_at")
