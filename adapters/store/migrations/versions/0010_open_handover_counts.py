"""The open handovers counted per deadline day, municipality, partner, moment and state.

The start page shows how many handovers are open, how many warn and how many
are overdue. Counting them read one index entry per open handover, so the page
grew with their number (4x slower at 100,000 open than at 1,000). This table
holds one row per (open_deadline, gemeente, recipient, moment, state) with its
number of open handovers: a count reads one row per deadline day and
combination, however many handovers share it.

Triggers on `overdrachten` keep it, in the same transaction as the write, so
no writer (the service, a purge, an operator's SQL) can forget it: a row that
enters an open bucket adds one, a row that leaves it takes one off, and a
bucket that reaches zero is deleted. A save that changes neither the deadline
nor the state nor the parties (a history step, the common case) touches
nothing.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-28
"""

# ruff: noqa: S608 - the SQL is built from the constant names above, never from input

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | None = None
depends_on: str | None = None

TABLE = "open_handover_counts"
KEY = ("open_deadline", "gemeente", "recipient", "moment", "state")

_COLUMNS = ", ".join(KEY)
_OLD_MATCHES = " AND ".join(f"{column} = OLD.{column}" for column in KEY)
_NEW_VALUES = ", ".join(f"NEW.{column}" for column in KEY)
_KEY_CHANGED = " OR ".join(f"OLD.{column} IS NOT NEW.{column}" for column in KEY)
_PG_KEY_CHANGED = " OR ".join(f"OLD.{column} IS DISTINCT FROM NEW.{column}" for column in KEY)

# PostgreSQL: one PL/pgSQL function for insert, update and delete.
_PG_FUNCTION = f"""
CREATE FUNCTION {TABLE}_keep() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND NOT ({_PG_KEY_CHANGED}) THEN
        RETURN NULL;
    END IF;
    IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.open_deadline IS NOT NULL THEN
        UPDATE {TABLE} SET n = n - 1 WHERE {_OLD_MATCHES};
        DELETE FROM {TABLE} WHERE {_OLD_MATCHES} AND n <= 0;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') AND NEW.open_deadline IS NOT NULL THEN
        INSERT INTO {TABLE} ({_COLUMNS}, n) VALUES ({_NEW_VALUES}, 1)
        ON CONFLICT ({_COLUMNS}) DO UPDATE SET n = {TABLE}.n + 1;
    END IF;
    RETURN NULL;
END
$$
"""
_PG_TRIGGER = f"""
CREATE TRIGGER {TABLE}_keep AFTER INSERT OR UPDATE OR DELETE ON overdrachten
FOR EACH ROW EXECUTE FUNCTION {TABLE}_keep()
"""

# SQLite: no procedural code, so one trigger per way in and out, each with its WHEN.
_SQLITE_ADD = (
    f"INSERT INTO {TABLE} ({_COLUMNS}, n) VALUES ({_NEW_VALUES}, 1) "
    f"ON CONFLICT ({_COLUMNS}) DO UPDATE SET n = n + 1;"
)
_SQLITE_TAKE = (
    f"UPDATE {TABLE} SET n = n - 1 WHERE {_OLD_MATCHES}; "
    f"DELETE FROM {TABLE} WHERE {_OLD_MATCHES} AND n <= 0;"
)
_SQLITE_TRIGGERS = {
    f"{TABLE}_insert": (
        "AFTER INSERT ON overdrachten WHEN NEW.open_deadline IS NOT NULL",
        _SQLITE_ADD,
    ),
    f"{TABLE}_delete": (
        "AFTER DELETE ON overdrachten WHEN OLD.open_deadline IS NOT NULL",
        _SQLITE_TAKE,
    ),
    f"{TABLE}_update_old": (
        f"AFTER UPDATE ON overdrachten WHEN OLD.open_deadline IS NOT NULL AND ({_KEY_CHANGED})",
        _SQLITE_TAKE,
    ),
    f"{TABLE}_update_new": (
        f"AFTER UPDATE ON overdrachten WHEN NEW.open_deadline IS NOT NULL AND ({_KEY_CHANGED})",
        _SQLITE_ADD,
    ),
}


def upgrade() -> None:
    op.create_table(
        TABLE,
        sa.Column("open_deadline", sa.Date(), nullable=False),
        sa.Column("gemeente", sa.String(16), nullable=False),
        sa.Column("recipient", sa.String(200), nullable=False),
        sa.Column("moment", sa.String(8), nullable=False),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(*KEY, name=f"pk_{TABLE}"),
    )
    op.execute(
        f"INSERT INTO {TABLE} ({_COLUMNS}, n) "
        f"SELECT {_COLUMNS}, COUNT(*) FROM overdrachten "
        f"WHERE open_deadline IS NOT NULL GROUP BY {_COLUMNS}"
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_PG_FUNCTION)
        op.execute(_PG_TRIGGER)
    else:
        for name, (when, body) in _SQLITE_TRIGGERS.items():
            op.execute(f"CREATE TRIGGER {name} {when} BEGIN {body} END")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP TRIGGER {TABLE}_keep ON overdrachten")
        op.execute(f"DROP FUNCTION {TABLE}_keep()")
    else:
        for name in _SQLITE_TRIGGERS:
            op.execute(f"DROP TRIGGER {name}")
    op.drop_table(TABLE)
