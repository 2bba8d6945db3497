"""The e-mail bridge's tables: the mails it sent, its links, the evidence, the mail it received.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | None = None
depends_on: str | None = None

ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_IDENT = sa.String(200)
_MOMENT = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "email_mails",
        sa.Column("id", ROW_ID, primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("message_sender", _IDENT),
        sa.Column("message_id", _IDENT),
        sa.Column("message_type", sa.String(64)),
        sa.Column("party", _IDENT),
        sa.Column("addresses", sa.Text, nullable=False),
        sa.Column("smtp_message_id", sa.String(300), nullable=False),
        sa.Column("confirmation_code", sa.String(16)),
        sa.Column("token_id", sa.String(64)),
        sa.Column("about", sa.String(64)),
        sa.Column("accepted_at", _MOMENT, nullable=False),
        sa.Column("smtp_response", sa.Text, nullable=False),
        sa.Column("receipt_state", sa.String(16), nullable=False),
        sa.Column("receipt_id", _IDENT),
        sa.Column("bounced_at", _MOMENT),
        sa.Column("bounce_status", sa.String(32)),
        sa.PrimaryKeyConstraint("id", name="pk_email_mails"),
    )
    op.create_index(
        "uq_email_mails_smtp_message_id", "email_mails", ["smtp_message_id"], unique=True
    )
    op.create_index(
        "ix_email_mails_message_sender_message_id",
        "email_mails",
        ["message_sender", "message_id"],
    )
    op.create_index("ix_email_mails_confirmation_code", "email_mails", ["confirmation_code"])
    op.create_index("ix_email_mails_receipt_state", "email_mails", ["receipt_state"])

    op.create_table(
        "email_tokens",
        sa.Column("token_id", sa.String(64), primary_key=True),
        sa.Column("message_sender", _IDENT, nullable=False),
        sa.Column("message_id", _IDENT, nullable=False),
        sa.Column("party", _IDENT, nullable=False),
        sa.Column("purpose", sa.String(16), nullable=False),
        sa.Column("issued_at", _MOMENT, nullable=False),
        sa.Column("expires_at", _MOMENT, nullable=False),
        sa.Column("used_at", _MOMENT),
        sa.PrimaryKeyConstraint("token_id", name="pk_email_tokens"),
    )
    op.create_index("ix_email_tokens_message_id", "email_tokens", ["message_id"])

    op.create_table(
        "email_submissions",
        sa.Column("id", ROW_ID, primary_key=True),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("token_id", sa.String(64)),
        sa.Column("from_address", sa.String(300)),
        sa.Column("smtp_message_id", sa.String(300)),
        sa.Column("party", _IDENT, nullable=False),
        sa.Column("answered_id", _IDENT, nullable=False),
        sa.Column("answer_type", sa.String(64), nullable=False),
        sa.Column("answer_id", _IDENT, nullable=False),
        sa.Column("outcome", sa.String(64), nullable=False),
        sa.Column("at", _MOMENT, nullable=False),
        sa.Column("client_address", sa.String(100)),
        sa.Column("user_agent", sa.Text),
        sa.Column("name", sa.Text),
        sa.Column("role", sa.Text),
        sa.PrimaryKeyConstraint("id", name="pk_email_submissions"),
    )
    op.create_index("ix_email_submissions_answered_id", "email_submissions", ["answered_id"])

    op.create_table(
        "email_inbound",
        sa.Column("id", ROW_ID, primary_key=True),
        sa.Column("received_at", _MOMENT, nullable=False),
        sa.Column("peer", sa.String(100)),
        sa.Column("mail_from", sa.String(300), nullable=False),
        sa.Column("rcpt_to", sa.Text, nullable=False),
        sa.Column("smtp_message_id", sa.String(300)),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("outcome", sa.String(64), nullable=False),
        sa.Column("about_message_id", _IDENT),
        sa.Column("raw", sa.LargeBinary, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_email_inbound"),
    )
    op.create_index("ix_email_inbound_received_at", "email_inbound", ["received_at"])


def downgrade() -> None:
    for table in ("email_inbound", "email_submissions", "email_tokens", "email_mails"):
        op.drop_table(table)
