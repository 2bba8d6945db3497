"""The open handovers counted per filter of the start page and deadline day, for every filter.

The start page shows how many handovers are open, how many warn and how many
are overdue, for whatever filter is set. Counting them read one index entry
per open handover, so the page grew with their number (4x slower at 100,000
open than at 1,000). This table is a small cube: for each open handover one
row per subset of its four filter values (municipality, partner, moment,
state), the others written `*` (any), and its deadline day, with the number of
open handovers there. The counts of any filter read the rows of its one
combination, one per deadline day: about 120 rows, however many handovers
are open.

Triggers on `overdrachten` keep it in the same transaction as the write, so no
writer (the service, a purge, an operator's SQL) can forget it: a handover that
enters an open bucket adds one to its 16 rows, one that leaves takes one off,
and a row that reaches zero is deleted. A save that changes neither the
deadline nor the state nor the parties (a history step, the common case)
touches nothing.

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
DIMENSIONS = ("gemeente", "recipient", "moment", "state")
ANY = "*"  # no municipality, party id, moment or state is spelled so
KEY = (*DIMENSIONS, "open_deadline")

_COLUMNS = ", ".join(KEY)
_KEY_CHANGED = " OR ".join(f"OLD.{column} IS NOT NEW.{column}" for column in KEY)
_PG_KEY_CHANGED = " OR ".join(f"OLD.{column} IS DISTINCT FROM NEW.{column}" for column in KEY)
# The 16 rows of one handover: its own value or ANY in each dimension, its day.
_OLD_ROWS = " AND ".join(
    [f"{d} IN (OLD.{d}, '{ANY}')" for d in DIMENSIONS] + ["open_deadline = OLD.open_deadline"]
)
_TAKE = (
    f"UPDATE {TABLE} SET n = n - 1 WHERE {_OLD_ROWS}; "
    f"DELETE FROM {TABLE} WHERE {_OLD_ROWS} AND n <= 0;"
)


def _add(choices: str) -> str:
    """One upsert of a handover's 16 rows; `choices` gives a dimension's two values as a
    table `{d}(v)` (PostgreSQL: unnest of an array; SQLite: a UNION ALL)."""
    tables = ", ".join(choices.format(d=d) for d in DIMENSIONS)
    values = ", ".join(f"{d}.v" for d in DIMENSIONS)
    return (
        f"INSERT INTO {TABLE} ({_COLUMNS}, n) "
        f"SELECT {values}, NEW.open_deadline, 1 FROM {tables} WHERE true "
        f"ON CONFLICT ({_COLUMNS}) DO UPDATE SET n = {TABLE}.n + 1;"
    )


# PostgreSQL: one PL/pgSQL function for insert, update and delete.
_PG_FUNCTION = f"""
CREATE FUNCTION {TABLE}_keep() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND NOT ({_PG_KEY_CHANGED}) THEN
        RETURN NULL;
    END IF;
    IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.open_deadline IS NOT NULL THEN
        {_TAKE}
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') AND NEW.open_deadline IS NOT NULL THEN
        {_add("unnest(ARRAY[NEW.{d}, '" + ANY + "']::text[]) AS {d}(v)")}
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
_SQLITE_ADD = _add("(SELECT NEW.{d} AS v UNION ALL SELECT '" + ANY + "') AS {d}")
_SQLITE_TRIGGERS = {
    f"{TABLE}_insert": (
        "AFTER INSERT ON overdrachten WHEN NEW.open_deadline IS NOT NULL",
        _SQLITE_ADD,
    ),
    f"{TABLE}_delete": (
        "AFTER DELETE ON overdrachten WHEN OLD.open_deadline IS NOT NULL",
        _TAKE,
    ),
    f"{TABLE}_update_old": (
        f"AFTER UPDATE ON overdrachten WHEN OLD.open_deadline IS NOT NULL AND ({_KEY_CHANGED})",
        _TAKE,
    ),
    f"{TABLE}_update_new": (
        f"AFTER UPDATE ON overdrachten WHEN NEW.open_deadline IS NOT NULL AND ({_KEY_CHANGED})",
        _SQLITE_ADD,
    ),
}


def upgrade() -> None:
    op.create_table(
        TABLE,
        sa.Column("gemeente", sa.String(16), nullable=False),
        sa.Column("recipient", sa.String(200), nullable=False),
        sa.Column("moment", sa.String(8), nullable=False),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("open_deadline", sa.Date(), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(*KEY, name=f"pk_{TABLE}"),
    )
    for mask in range(2 ** len(DIMENSIONS)):  # the handovers already open, per subset
        kept = [d for bit, d in enumerate(DIMENSIONS) if mask & (1 << bit)]
        chosen = ", ".join(d if d in kept else f"'{ANY}'" for d in DIMENSIONS)
        grouped = ", ".join([*kept, "open_deadline"])
        op.execute(
            f"INSERT INTO {TABLE} ({_COLUMNS}, n) "
            f"SELECT {chosen}, open_deadline, COUNT(*) FROM overdrachten "
            f"WHERE open_deadline IS NOT NULL GROUP BY {grouped}"
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
