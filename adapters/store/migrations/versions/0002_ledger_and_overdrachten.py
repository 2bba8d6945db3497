"""The responsibility ledger and the overdrachten (handovers).

Revision ID: 0002
Revises: 0001
Create Date: 2026-02-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None

ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
IDENT = sa.String(200)
TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "ledger",
        # Numbered by the domain, never by the database: no sequence, no identity.
        sa.Column("sequence", ROW_ID, nullable=False, autoincrement=False),
        sa.Column("case_ref", IDENT, nullable=False),
        sa.Column("gemeente", sa.String(16), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("by_party", IDENT, nullable=False),
        sa.Column("holder", IDENT, nullable=True),
        sa.Column("regievoerder", IDENT, nullable=True),
        sa.Column("at", TIME, nullable=False),
        sa.Column("evidence", sa.Text(), nullable=False),
        sa.Column("previous_hash", sa.String(128), nullable=False),
        sa.Column("hash", sa.String(128), nullable=False),
        sa.PrimaryKeyConstraint("sequence", name="pk_ledger"),
        sa.UniqueConstraint("hash", name="uq_ledger_hash"),
    )
    op.create_index("ix_ledger_case_ref_sequence", "ledger", ["case_ref", "sequence"])

    op.create_table(
        "overdrachten",
        sa.Column("id", IDENT, nullable=False),
        sa.Column("case_ref", IDENT, nullable=False),
        sa.Column("gemeente", sa.String(16), nullable=False),
        sa.Column("moment", sa.String(8), nullable=False),
        sa.Column("recipient", IDENT, nullable=False),
        sa.Column("advised_term", sa.Date(), nullable=False),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("deferred_to", sa.Date(), nullable=True),
        sa.Column("history", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_overdrachten"),
    )
    op.create_index("ix_overdrachten_case_ref", "overdrachten", ["case_ref"])
    op.create_index("ix_overdrachten_state_advised_term", "overdrachten", ["state", "advised_term"])


def downgrade() -> None:
    op.drop_table("overdrachten")
    op.drop_table("ledger")
