"""The initial store: messages with their status history, inbox, outbox, timers, alerts, rejected.

Revision ID: 0001
Revises:
Create Date: 2026-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
IDENT = sa.String(200)
TIME = sa.DateTime(timezone=True)


UNPUBLISHED = sa.text("published_at IS NULL")
PENDING = sa.text("fired_at IS NULL AND cancelled_at IS NULL")
OPEN = sa.text("closed_at IS NULL")


def upgrade() -> None:
    op.create_table(
        "messages",
        sa.Column("seq", ROW_ID, nullable=False),
        sa.Column("id", IDENT, nullable=False),
        sa.Column("sender", IDENT, nullable=False),
        sa.Column("recipient", IDENT, nullable=False),
        sa.Column("type", IDENT, nullable=False),
        sa.Column("thread", IDENT, nullable=False),
        sa.Column("reply_to", IDENT, nullable=True),
        sa.Column("case_ref", IDENT, nullable=True),
        sa.Column("gemeente", sa.String(16), nullable=True),
        sa.Column("direction", sa.String(8), nullable=False),
        sa.Column("digest", sa.String(128), nullable=False),
        sa.Column("raw", sa.LargeBinary(), nullable=False),
        sa.Column("sent_at", TIME, nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("final", sa.Boolean(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_messages"),
        sa.UniqueConstraint("sender", "id", name="uq_messages_sender_id"),
    )
    op.create_index("ix_messages_id", "messages", ["id"])
    op.create_index("ix_messages_thread_created_at", "messages", ["thread", "created_at"])
    op.create_index("ix_messages_reply_to", "messages", ["reply_to"])
    op.create_index("ix_messages_status_created_at", "messages", ["status", "created_at"])

    op.create_table(
        "message_status",
        sa.Column("seq", ROW_ID, nullable=False),
        sa.Column("message_seq", ROW_ID, nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("at", TIME, nullable=False),
        sa.Column("evidence", sa.Text(), nullable=False),
        sa.Column("final", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_message_status"),
        sa.ForeignKeyConstraint(
            ["message_seq"],
            ["messages.seq"],
            name="fk_message_status_message_seq_messages",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_message_status_message_seq_seq", "message_status", ["message_seq", "seq"])

    op.create_table(
        "inbox",
        sa.Column("sender", IDENT, nullable=False),
        sa.Column("message_id", IDENT, nullable=False),
        sa.Column("digest", sa.String(128), nullable=False),
        sa.Column("receipt_id", IDENT, nullable=True),
        sa.Column("received_at", TIME, nullable=False),
        sa.PrimaryKeyConstraint("sender", "message_id", name="pk_inbox"),
    )

    op.create_table(
        "outbox",
        sa.Column("id", ROW_ID, nullable=False),
        sa.Column("message_seq", ROW_ID, nullable=False),
        sa.Column("enqueued_at", TIME, nullable=False),
        sa.Column("claimed_by", IDENT, nullable=True),
        sa.Column("claimed_until", TIME, nullable=True),
        sa.Column("published_at", TIME, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_outbox"),
        sa.ForeignKeyConstraint(
            ["message_seq"],
            ["messages.seq"],
            name="fk_outbox_message_seq_messages",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_outbox_message_seq", "outbox", ["message_seq"])
    op.create_index(
        "ix_outbox_unpublished",
        "outbox",
        ["enqueued_at", "id"],
        postgresql_where=UNPUBLISHED,
        sqlite_where=UNPUBLISHED,
    )

    op.create_table(
        "timers",
        sa.Column("id", ROW_ID, nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("subject_sender", IDENT, nullable=False),
        sa.Column("subject_id", IDENT, nullable=False),
        sa.Column("due_at", TIME, nullable=False),
        sa.Column("rule", sa.Text(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("claimed_by", IDENT, nullable=True),
        sa.Column("claimed_until", TIME, nullable=True),
        sa.Column("fired_at", TIME, nullable=True),
        sa.Column("cancelled_at", TIME, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_timers"),
    )
    op.create_index("ix_timers_subject", "timers", ["subject_sender", "subject_id", "kind"])
    op.create_index(
        "ix_timers_pending_due_at",
        "timers",
        ["due_at", "id"],
        postgresql_where=PENDING,
        sqlite_where=PENDING,
    )

    op.create_table(
        "alerts",
        sa.Column("id", ROW_ID, nullable=False),
        sa.Column("key", IDENT, nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("opened_at", TIME, nullable=False),
        sa.Column("closed_at", TIME, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_alerts"),
    )
    op.create_index("ix_alerts_key_opened_at", "alerts", ["key", "opened_at"])
    op.create_index(
        "uq_alerts_open_key",
        "alerts",
        ["key"],
        unique=True,
        postgresql_where=OPEN,
        sqlite_where=OPEN,
    )

    op.create_table(
        "rejected",
        sa.Column("id", ROW_ID, nullable=False),
        sa.Column("received_at", TIME, nullable=False),
        sa.Column("transport", sa.String(32), nullable=False),
        sa.Column("transport_identity", sa.Text(), nullable=False),
        sa.Column("code", sa.String(32), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("pointer", sa.Text(), nullable=False),
        sa.Column("raw", sa.LargeBinary(), nullable=False),
        sa.Column("message_id", sa.Text(), nullable=True),
        sa.Column("sender", sa.Text(), nullable=True),
        sa.Column("error_id", IDENT, nullable=True),
        sa.Column("headers", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_rejected"),
    )
    op.create_index("ix_rejected_received_at", "rejected", ["received_at"])


def downgrade() -> None:
    for table in ("rejected", "alerts", "timers", "outbox", "inbox", "message_status", "messages"):
        op.drop_table(table)
