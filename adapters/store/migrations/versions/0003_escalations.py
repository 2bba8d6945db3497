"""The escalations (§8.6, annex 4) with their history.

Revision ID: 0003
Revises: 0002
Create Date: 2026-03-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None

ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
IDENT = sa.String(200)
TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "escalations",
        sa.Column("number", ROW_ID, nullable=False, autoincrement=True),
        sa.Column("case_ref", IDENT, nullable=False),
        sa.Column("party", IDENT, nullable=False),
        sa.Column("reason", sa.String(64), nullable=False),
        sa.Column("opened_at", TIME, nullable=False),
        sa.Column("route", sa.String(8), nullable=False),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("history", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("number", name="pk_escalations"),
    )
    op.create_index("ix_escalations_opened_at", "escalations", ["opened_at"])
    op.create_index("ix_escalations_state", "escalations", ["state"])


def downgrade() -> None:
    op.drop_table("escalations")
