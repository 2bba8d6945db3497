"""What the instances on one store must agree on: signed-out sessions and rate-limit events.

`signed_out_sessions` holds the dashboard sessions signed out, until their
cookies could no longer be fresh; `rate_events` the requests the dashboard's
sign-in limit and the bridge's link limit admitted, per scope and keyed-hash
subject. Both were kept in each process's memory, so that another instance
neither refused a signed-out session nor counted the same client's requests.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-09
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | None = None
depends_on: str | None = None

ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_MOMENT = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "signed_out_sessions",
        sa.Column("session_id", sa.String(64), nullable=False),
        sa.Column("refused_until", _MOMENT, nullable=False),
        sa.PrimaryKeyConstraint("session_id", name="pk_signed_out_sessions"),
    )
    op.create_index(
        "ix_signed_out_sessions_refused_until", "signed_out_sessions", ["refused_until"]
    )
    op.create_table(
        "rate_events",
        sa.Column("id", ROW_ID, nullable=False),
        sa.Column("scope", sa.String(32), nullable=False),
        sa.Column("subject", sa.String(64), nullable=False),
        sa.Column("at", _MOMENT, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_rate_events"),
    )
    op.create_index("ix_rate_events_scope_subject_at", "rate_events", ["scope", "subject", "at"])
    op.create_index("ix_rate_events_scope_at", "rate_events", ["scope", "at"])


def downgrade() -> None:
    op.drop_table("rate_events")
    op.drop_table("signed_out_sessions")
