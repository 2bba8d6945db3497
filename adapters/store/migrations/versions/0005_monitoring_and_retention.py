"""Monitoring checks (§7.1), so their answers are tracked; the retention purge's audit (§5.1).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None

ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_IDENT = sa.String(200)
_MOMENT = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "monitoring_checks",
        sa.Column("overdracht_id", _IDENT, nullable=False),
        sa.Column("month", sa.Integer(), nullable=False),
        sa.Column("case_ref", _IDENT, nullable=False),
        sa.Column("gemeente", sa.String(16), nullable=False),
        sa.Column("recipient", _IDENT, nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("request_id", _IDENT),
        sa.Column("requested_at", _MOMENT),
        sa.Column("answer_before", _MOMENT),
        sa.Column("response_id", _IDENT),
        sa.Column("answered_at", _MOMENT),
        sa.PrimaryKeyConstraint("overdracht_id", "month", name="pk_monitoring_checks"),
    )
    op.create_index(
        "ix_monitoring_checks_request_id", "monitoring_checks", ["request_id"], unique=True
    )
    op.create_index("ix_monitoring_checks_requested_at", "monitoring_checks", ["requested_at"])
    op.create_table(
        "retention_purges",
        sa.Column("id", ROW_ID, nullable=False, autoincrement=True),
        sa.Column("sender", _IDENT, nullable=False),
        sa.Column("message_id", _IDENT, nullable=False),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("recipient", _IDENT, nullable=False),
        sa.Column("case_ref", _IDENT),
        sa.Column("gemeente", sa.String(16)),
        sa.Column("digest", sa.String(128), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("retained_until", sa.Date(), nullable=False),
        sa.Column("purged_at", _MOMENT, nullable=False),
        sa.Column("rule", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_retention_purges"),
    )
    op.create_index("ix_retention_purges_purged_at", "retention_purges", ["purged_at"])


def downgrade() -> None:
    op.drop_index("ix_retention_purges_purged_at", "retention_purges")
    op.drop_table("retention_purges")
    op.drop_index("ix_monitoring_checks_requested_at", "monitoring_checks")
    op.drop_index("ix_monitoring_checks_request_id", "monitoring_checks")
    op.drop_table("monitoring_checks")
