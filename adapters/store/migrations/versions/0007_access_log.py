"""The dashboard's access log (NEN 7513): append-only, hash-chained.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | None = None
depends_on: str | None = None

ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_IDENT = sa.String(200)
_MOMENT = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "access_log",
        sa.Column("sequence", ROW_ID, primary_key=True, autoincrement=False),
        sa.Column("at", _MOMENT, nullable=False),
        sa.Column("username", _IDENT, nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("case_ref", _IDENT),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("outcome", sa.String(64), nullable=False),
        sa.Column("client", sa.String(100)),
        sa.Column("previous_hash", sa.String(128), nullable=False),
        sa.Column("hash", sa.String(128), nullable=False),
        sa.PrimaryKeyConstraint("sequence", name="pk_access_log"),
        sa.UniqueConstraint("hash", name="uq_access_log_hash"),
    )
    op.create_index("ix_access_log_username_at", "access_log", ["username", "at"])
    op.create_index("ix_access_log_case_ref_at", "access_log", ["case_ref", "at"])
    op.create_index("ix_access_log_at", "access_log", ["at"])


def downgrade() -> None:
    op.drop_table("access_log")
