"""The store's schema as SQLAlchemy Core tables: one schema for SQLite and PostgreSQL.

Every time is a timezone-aware UTC `datetime` in Python. PostgreSQL keeps it as
`timestamptz`; SQLite has no time type, so `UtcDateTime` writes it as UTC text
of fixed width (which sorts and compares as time does) and reads it back as
aware UTC. The migrations in `migrations/versions` create exactly this schema
(a test compares them).
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)

# A 64-bit surrogate key that is SQLite's rowid there (only INTEGER PRIMARY KEY is).
RowId = BigInteger().with_variant(Integer(), "sqlite")

# Identifiers of the protocol (party ids, message ids, types) are short ASCII.
Ident = String(200)


def as_utc(value: datetime) -> datetime:
    """The same moment as an aware UTC datetime; a naive one is refused."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"naive datetime {value.isoformat()}: the store keeps aware UTC times")
    return value.astimezone(UTC)


class UtcDateTime(TypeDecorator[datetime]):
    """An aware datetime in, an aware UTC datetime out, on every backend."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        utc = as_utc(value)
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


messages = Table(
    "messages",
    metadata,
    Column("seq", RowId, primary_key=True),
    Column("id", Ident, nullable=False),
    Column("sender", Ident, nullable=False),
    Column("recipient", Ident, nullable=False),
    Column("type", Ident, nullable=False),
    Column("thread", Ident, nullable=False),
    Column("reply_to", Ident),
    Column("case_ref", Ident),
    Column("gemeente", String(16)),
    Column("direction", String(8), nullable=False),
    Column("digest", String(128), nullable=False),
    Column("raw", LargeBinary, nullable=False),
    Column("sent_at", UtcDateTime, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("status", String(32), nullable=False),
    Column("final", Boolean, nullable=False),
    Column("attempts", Integer, nullable=False),
    UniqueConstraint("sender", "id"),
    Index("ix_messages_id", "id"),
    Index("ix_messages_thread_created_at", "thread", "created_at"),
    Index("ix_messages_reply_to", "reply_to"),
    Index("ix_messages_status_created_at", "status", "created_at"),
)

message_status = Table(
    "message_status",
    metadata,
    Column("seq", RowId, primary_key=True),
    Column(
        "message_seq",
        RowId,
        ForeignKey("messages.seq", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("status", String(32), nullable=False),
    Column("at", UtcDateTime, nullable=False),
    Column("evidence", Text, nullable=False),  # JSON object of strings
    Column("final", Boolean, nullable=False),
    Index("ix_message_status_message_seq_seq", "message_seq", "seq"),
)

inbox = Table(
    "inbox",
    metadata,
    Column("sender", Ident, primary_key=True),
    Column("message_id", Ident, primary_key=True),
    Column("digest", String(128), nullable=False),
    Column("receipt_id", Ident),
    Column("received_at", UtcDateTime, nullable=False),
)

outbox = Table(
    "outbox",
    metadata,
    Column("id", RowId, primary_key=True),
    Column(
        "message_seq",
        RowId,
        ForeignKey("messages.seq", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("enqueued_at", UtcDateTime, nullable=False),
    Column("claimed_by", Ident),
    Column("claimed_until", UtcDateTime),
    Column("published_at", UtcDateTime),
    Index("ix_outbox_message_seq", "message_seq"),
)

# The relay's queue: only what is still to publish, in its order.
_unpublished = outbox.c.published_at.is_(None)
Index(
    "ix_outbox_unpublished",
    outbox.c.enqueued_at,
    outbox.c.id,
    postgresql_where=_unpublished,
    sqlite_where=_unpublished,
)

timers = Table(
    "timers",
    metadata,
    Column("id", RowId, primary_key=True),
    Column("kind", String(32), nullable=False),
    Column("subject_sender", Ident, nullable=False),
    Column("subject_id", Ident, nullable=False),
    Column("due_at", UtcDateTime, nullable=False),
    Column("rule", Text, nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("claimed_by", Ident),
    Column("claimed_until", UtcDateTime),
    Column("fired_at", UtcDateTime),
    Column("cancelled_at", UtcDateTime),
    Index("ix_timers_subject", "subject_sender", "subject_id", "kind"),
)

# The scheduler's queue: only pending timers, by when they are due.
_pending = timers.c.fired_at.is_(None) & timers.c.cancelled_at.is_(None)
Index(
    "ix_timers_pending_due_at",
    timers.c.due_at,
    timers.c.id,
    postgresql_where=_pending,
    sqlite_where=_pending,
)

alerts = Table(
    "alerts",
    metadata,
    Column("id", RowId, primary_key=True),
    Column("key", Ident, nullable=False),
    Column("detail", Text, nullable=False),
    Column("opened_at", UtcDateTime, nullable=False),
    Column("closed_at", UtcDateTime),
    Index("ix_alerts_key_opened_at", "key", "opened_at"),
)

# At most one open alert per key; `Alerts.open` inserts against it ON CONFLICT DO NOTHING.
_open = alerts.c.closed_at.is_(None)
Index("uq_alerts_open_key", alerts.c.key, unique=True, postgresql_where=_open, sqlite_where=_open)

rejected = Table(
    "rejected",
    metadata,
    Column("id", RowId, primary_key=True),
    Column("received_at", UtcDateTime, nullable=False),
    Column("transport", String(32), nullable=False),
    Column("transport_identity", Text, nullable=False),
    Column("code", String(32), nullable=False),
    Column("detail", Text, nullable=False),
    Column("pointer", Text, nullable=False),
    Column("raw", LargeBinary, nullable=False),
    Column("message_id", Text),
    Column("sender", Text),
    Column("error_id", Ident),
    Column("headers", Text, nullable=False),  # JSON object of strings
    Index("ix_rejected_received_at", "received_at"),
)

# The responsibility ledger: one hash chain over all cases, numbered by the domain
# (`sequence` is never generated here: a second instance appending the same
# number meets the primary key).
ledger = Table(
    "ledger",
    metadata,
    Column("sequence", RowId, primary_key=True, autoincrement=False),
    Column("case_ref", Ident, nullable=False),
    Column("gemeente", String(16), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("by_party", Ident, nullable=False),
    Column("holder", Ident),
    Column("regievoerder", Ident),
    Column("at", UtcDateTime, nullable=False),
    Column("evidence", Text, nullable=False),  # JSON object of strings
    Column("previous_hash", String(128), nullable=False),
    Column("hash", String(128), nullable=False),
    UniqueConstraint("hash"),
    Index("ix_ledger_case_ref_sequence", "case_ref", "sequence"),
)

# The handovers, by the id of their overdracht.notice.
overdrachten = Table(
    "overdrachten",
    metadata,
    Column("id", Ident, primary_key=True),
    Column("case_ref", Ident, nullable=False),
    Column("gemeente", String(16), nullable=False),
    Column("moment", String(8), nullable=False),
    Column("recipient", Ident, nullable=False),
    Column("advised_term", Date, nullable=False),
    Column("state", String(32), nullable=False),
    Column("deferred_to", Date),
    Column("history", Text, nullable=False),  # JSON array of {state, at, evidence}
    Column("opened_at", UtcDateTime),  # the notice's moment (migration 0004)
    # The last day for the confirmation while the handover is open (the latest deferral's
    # date, else the advised term); NULL once it is final (migration 0009).
    Column("open_deadline", Date),
    Index("ix_overdrachten_case_ref", "case_ref"),
    Index("ix_overdrachten_opened_at", "opened_at"),
    Index("ix_overdrachten_state_advised_term", "state", "advised_term"),
)

# The open handovers by deadline (the start page, the API's overdue list): ORDER BY +
# LIMIT walks an index, a count or a deadline range reads the index alone; by
# municipality and by partner too, the start page's most selective filters.
_still_open = overdrachten.c.open_deadline.is_not(None)
Index(  # state and moment ride along: a count filtered by them reads no table row
    "ix_overdrachten_open_deadline",
    overdrachten.c.open_deadline,
    overdrachten.c.id,
    overdrachten.c.state,
    overdrachten.c.moment,
    postgresql_where=_still_open,
    sqlite_where=_still_open,
)
Index(
    "ix_overdrachten_gemeente_open_deadline",
    overdrachten.c.gemeente,
    overdrachten.c.open_deadline,
    overdrachten.c.id,
    postgresql_where=_still_open,
    sqlite_where=_still_open,
)
Index(
    "ix_overdrachten_recipient_open_deadline",
    overdrachten.c.recipient,
    overdrachten.c.open_deadline,
    overdrachten.c.id,
    postgresql_where=_still_open,
    sqlite_where=_still_open,
)

# The open handovers counted per filter of the start page and deadline day, kept by
# triggers on overdrachten (migration 0010): for each open handover one row per subset
# of its municipality, partner, moment and state, the others `*` (any), so the counts
# of any filter read one row per deadline day, not one index entry per open handover.
COUNTED_ANY = "*"
open_handover_counts = Table(
    "open_handover_counts",
    metadata,
    Column("gemeente", String(16), primary_key=True),
    Column("recipient", Ident, primary_key=True),
    Column("moment", String(8), primary_key=True),
    Column("state", String(32), primary_key=True),
    Column("open_deadline", Date, primary_key=True),
    Column("n", Integer, nullable=False),
)

# The escalations (§8.6, annex 4), numbered by the store, oldest first by opened_at.
escalations = Table(
    "escalations",
    metadata,
    Column("number", RowId, primary_key=True, autoincrement=True),
    Column("case_ref", Ident, nullable=False),
    Column("party", Ident, nullable=False),
    Column("reason", String(64), nullable=False),
    Column("opened_at", UtcDateTime, nullable=False),
    Column("route", String(8), nullable=False),
    Column("state", String(32), nullable=False),
    Column("history", Text, nullable=False),  # JSON array of {at, route, by, outcome, note}
    Index("ix_escalations_opened_at", "opened_at"),
    Index("ix_escalations_state", "state"),
)

# The monitoring checks of confirmed handovers (§7.1), one per agreed month (migration 0005).
monitoring_checks = Table(
    "monitoring_checks",
    metadata,
    Column("overdracht_id", Ident, primary_key=True),
    Column("month", Integer, primary_key=True, autoincrement=False),
    Column("case_ref", Ident, nullable=False),
    Column("gemeente", String(16), nullable=False),
    Column("recipient", Ident, nullable=False),
    Column("due_on", Date, nullable=False),
    Column("request_id", Ident),
    Column("requested_at", UtcDateTime),
    Column("answer_before", UtcDateTime),
    Column("response_id", Ident),
    Column("answered_at", UtcDateTime),
    Index("ix_monitoring_checks_request_id", "request_id", unique=True),
    Index("ix_monitoring_checks_requested_at", "requested_at"),
)

# What the retention purge removed, and why (§5.1: an advice is kept 2 years); append-only.
retention_purges = Table(
    "retention_purges",
    metadata,
    Column("id", RowId, primary_key=True),
    Column("sender", Ident, nullable=False),
    Column("message_id", Ident, nullable=False),
    Column("type", String(64), nullable=False),
    Column("recipient", Ident, nullable=False),
    Column("case_ref", Ident),
    Column("gemeente", String(16)),
    Column("digest", String(128), nullable=False),
    Column("status", String(32), nullable=False),
    Column("retained_until", Date, nullable=False),
    Column("purged_at", UtcDateTime, nullable=False),
    Column("rule", Text, nullable=False),
    Index("ix_retention_purges_purged_at", "purged_at"),
)
