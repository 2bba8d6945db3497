"""The open handovers by deadline: a stored last day, NULL once final, and its indexes.

The start page and the API's overdue list read the open handovers earliest
deadline first; sorting them by `coalesce(deferred_to, advised_term)` made
every page read all open rows. `open_deadline` is that date while the
handover is open (kept by `SqlHandovers.save`), and three partial indexes
(all, by municipality, by partner) hold the open ones only.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | None = None
depends_on: str | None = None

STILL_OPEN = sa.text("open_deadline IS NOT NULL")
INDEXES = (
    ("ix_overdrachten_open_deadline", ["open_deadline", "id", "state", "moment"]),
    ("ix_overdrachten_gemeente_open_deadline", ["gemeente", "open_deadline", "id"]),
    ("ix_overdrachten_recipient_open_deadline", ["recipient", "open_deadline", "id"]),
)


def upgrade() -> None:
    with op.batch_alter_table("overdrachten") as table:
        table.add_column(sa.Column("open_deadline", sa.Date(), nullable=True))
    op.execute(
        "UPDATE overdrachten SET open_deadline = COALESCE(deferred_to, advised_term) "
        "WHERE state IN ('notice_sent', 'delivered', 'deferred')"
    )
    for name, columns in INDEXES:
        op.create_index(
            name,
            "overdrachten",
            columns,
            postgresql_where=STILL_OPEN,
            sqlite_where=STILL_OPEN,
        )


def downgrade() -> None:
    for name, _ in INDEXES:
        op.drop_index(name, table_name="overdrachten")
    with op.batch_alter_table("overdrachten") as table:
        table.drop_column("open_deadline")
