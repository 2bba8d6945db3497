"""The dashboard's operations pages: last heard from per sender, dead-letter actions.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | None = None
depends_on: str | None = None

ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_IDENT = sa.String(200)
_MOMENT = sa.DateTime(timezone=True)


def upgrade() -> None:
    # The partners page: the newest message from each party is one index lookup.
    op.create_index("ix_messages_sender_created_at", "messages", ["sender", "created_at"])
    # The alerts page: the recently closed ones, newest first.
    op.create_index("ix_alerts_closed_at", "alerts", ["closed_at"])
    # What staff did with a dead letter (the `rejected` row itself is never changed).
    op.create_table(
        "dead_letter_actions",
        sa.Column("id", ROW_ID, primary_key=True),
        sa.Column("rejected_id", ROW_ID, nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("at", _MOMENT, nullable=False),
        sa.Column("by_user", _IDENT, nullable=False),
        sa.Column("outcome", sa.String(64), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("message_id", sa.Text),
        sa.PrimaryKeyConstraint("id", name="pk_dead_letter_actions"),
        sa.ForeignKeyConstraint(
            ["rejected_id"],
            ["rejected.id"],
            name="fk_dead_letter_actions_rejected_id_rejected",
        ),
    )
    op.create_index(
        "ix_dead_letter_actions_rejected_id_id", "dead_letter_actions", ["rejected_id", "id"]
    )


def downgrade() -> None:
    op.drop_table("dead_letter_actions")
    op.drop_index("ix_alerts_closed_at", table_name="alerts")
    op.drop_index("ix_messages_sender_created_at", table_name="messages")
