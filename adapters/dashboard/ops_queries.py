"""The operations pages' reads and writes: partners, dead letters, alerts, monitoring decisions.

SQLAlchemy Core on a connection of the store (`SqlStore.connection()`), like
`queries.py`. This module also declares what migration 0008 adds on the
store's shared metadata: the index behind "last heard from" (the newest
message a party sent: one index lookup per party), the index of recently
closed alerts, and `dead_letter_actions`, what staff did with a refused
message (requeued with its outcome, or discarded with a reason). A row of
`rejected` is never changed or removed: its handling is the actions beside it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Column, ForeignKey, Index, String, Table, Text, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from adapters.dashboard.access_log import access_log
from adapters.store.tables import (
    Ident,
    RowId,
    UtcDateTime,
    alerts,
    messages,
    metadata,
    rejected,
)
from gateway.domain.delivery import Status

Index("ix_messages_sender_created_at", messages.c.sender, messages.c.created_at)
Index("ix_alerts_closed_at", alerts.c.closed_at)

dead_letter_actions = Table(
    "dead_letter_actions",
    metadata,
    Column("id", RowId, primary_key=True),
    Column("rejected_id", RowId, ForeignKey("rejected.id"), nullable=False),
    Column("action", String(16), nullable=False),  # requeued | discarded
    Column("at", UtcDateTime, nullable=False),
    Column("by_user", Ident, nullable=False),
    Column("outcome", String(64), nullable=False),  # accepted | refused:<code> | duplicate | -
    Column("reason", Text, nullable=False),  # a discard's reason; empty for a requeue
    Column("message_id", Text),
    Index("ix_dead_letter_actions_rejected_id_id", "rejected_id", "id"),
)

REQUEUED = "requeued"
DISCARDED = "discarded"
ACCEPTED = "accepted"

NO_MONITORING = "no_monitoring"
"""The access log's action for a recorded decision not to monitor (§7.1)."""


# --- partners ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DeliveryCounts:
    pending: int = 0  # queued, or sent and still waiting for the receipt
    undeliverable: int = 0


async def last_heard(db: AsyncConnection, parties: Iterable[str]) -> dict[str, datetime | None]:
    """The moment the newest message of each party was stored (index lookups, one per party)."""
    found: dict[str, datetime | None] = {}
    for party in parties:
        moment = await db.scalar(
            select(func.max(messages.c.created_at)).where(messages.c.sender == party)
        )
        found[party] = moment.astimezone(UTC) if isinstance(moment, datetime) else None
    return found


async def delivery_counts(db: AsyncConnection) -> dict[str, DeliveryCounts]:
    """Per recipient: messages pending (queued, or sent without receipt) and undeliverable."""
    rows = await db.execute(
        select(messages.c.recipient, messages.c.status, func.count())
        .where(
            messages.c.status.in_(
                [Status.QUEUED.value, Status.SENT.value, Status.UNDELIVERABLE.value]
            ),
            messages.c.final.is_(False) | (messages.c.status == Status.UNDELIVERABLE.value),
        )
        .group_by(messages.c.recipient, messages.c.status)
    )
    pending: dict[str, int] = {}
    undeliverable: dict[str, int] = {}
    for recipient, status, count in rows:
        target = undeliverable if status == Status.UNDELIVERABLE.value else pending
        target[recipient] = target.get(recipient, 0) + int(count)
    return {
        party: DeliveryCounts(pending.get(party, 0), undeliverable.get(party, 0))
        for party in set(pending) | set(undeliverable)
    }


# --- alerts -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AlertRow:
    id: int
    key: str
    detail: str
    opened_at: datetime
    closed_at: datetime | None
    party: str | None  # the partner it is about, when the gateway can tell


def alert_subject(key: str) -> tuple[str, str]:
    """An alert key's kind and subject: `undeliverable:tl-tiel` -> (`undeliverable`, `tl-tiel`)."""
    kind, _, subject = key.partition(":")
    return kind, subject


async def open_alerts(db: AsyncConnection, hub_party: str) -> list[AlertRow]:
    """The open alerts, oldest first."""
    rows = await db.execute(
        select(alerts).where(alerts.c.closed_at.is_(None)).order_by(alerts.c.opened_at, alerts.c.id)
    )
    return await _with_parties(db, hub_party, list(rows))


async def closed_alerts(db: AsyncConnection, hub_party: str, limit: int = 50) -> list[AlertRow]:
    """The most recently closed alerts, newest first."""
    rows = await db.execute(
        select(alerts)
        .where(alerts.c.closed_at.is_not(None))
        .order_by(alerts.c.closed_at.desc(), alerts.c.id.desc())
        .limit(limit)
    )
    return await _with_parties(db, hub_party, list(rows))


async def _with_parties(db: AsyncConnection, hub_party: str, rows: list[Any]) -> list[AlertRow]:
    """Each alert with its party: named in the key, or the other end of the message it is about.

    `undeliverable:<party>` names the party; the confirmation, enrichment,
    monitoring and question alerts name a message (an overdracht's id is its
    notice's id), whose other end is the party; VT's own terms (`case_...`)
    concern no partner.
    """
    subjects = {
        alert_subject(row.key)[1]
        for row in rows
        if alert_subject(row.key)[0] not in ("undeliverable",)
        and not alert_subject(row.key)[0].startswith("case_")
    }
    other_end: dict[str, str] = {}
    if subjects:
        found = await db.execute(
            select(messages.c.id, messages.c.sender, messages.c.recipient).where(
                messages.c.id.in_(sorted(subjects))
            )
        )
        for message_id, sender, recipient in found:
            other_end.setdefault(message_id, recipient if sender == hub_party else sender)
    result = []
    for row in rows:
        kind, subject = alert_subject(row.key)
        party = subject if kind == "undeliverable" else other_end.get(subject)
        result.append(
            AlertRow(int(row.id), row.key, row.detail, row.opened_at, row.closed_at, party)
        )
    return result


# --- dead letters -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DeadLetterAction:
    rejected_id: int
    action: str
    at: datetime
    by: str
    outcome: str
    reason: str
    message_id: str | None


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A refused message as the page lists it: never its bytes unless asked for (`raw`)."""

    id: int
    received_at: datetime
    transport: str
    transport_identity: str
    code: str
    pointer: str
    detail: str
    message_id: str | None
    sender: str | None
    actions: tuple[DeadLetterAction, ...] = ()
    raw: bytes | None = None

    @property
    def handled(self) -> DeadLetterAction | None:
        """The action that settled it: a discard, or a requeue that was accepted."""
        for action in reversed(self.actions):
            if action.action == DISCARDED or action.outcome in (ACCEPTED, "duplicate"):
                return action
        return None


_LISTED = (
    rejected.c.id,
    rejected.c.received_at,
    rejected.c.transport,
    rejected.c.transport_identity,
    rejected.c.code,
    rejected.c.pointer,
    rejected.c.detail,
    rejected.c.message_id,
    rejected.c.sender,
)


async def dead_letter_count(db: AsyncConnection) -> int:
    return int(await db.scalar(select(func.count()).select_from(rejected)) or 0)


async def dead_letters(db: AsyncConnection, *, page: int, size: int) -> list[DeadLetter]:
    """One page of refused messages, newest first, with what staff did with them."""
    rows = list(
        await db.execute(
            select(*_LISTED)
            .order_by(rejected.c.received_at.desc(), rejected.c.id.desc())
            .limit(size)
            .offset((max(page, 1) - 1) * size)
        )
    )
    actions = await _actions(db, [int(row.id) for row in rows])
    return [_dead_letter(row, actions.get(int(row.id), ()), None) for row in rows]


async def dead_letter(db: AsyncConnection, rejected_id: int) -> DeadLetter | None:
    """One refused message with its bytes (for a requeue, or an admin's explicit look)."""
    row = (
        await db.execute(select(*_LISTED, rejected.c.raw).where(rejected.c.id == rejected_id))
    ).one_or_none()
    if row is None:
        return None
    actions = await _actions(db, [rejected_id])
    return _dead_letter(row, actions.get(rejected_id, ()), bytes(row.raw))


async def add_action(db: AsyncConnection, action: DeadLetterAction) -> None:
    await db.execute(
        dead_letter_actions.insert().values(
            rejected_id=action.rejected_id,
            action=action.action,
            at=action.at,
            by_user=action.by,
            outcome=action.outcome,
            reason=action.reason,
            message_id=action.message_id,
        )
    )


async def _actions(
    db: AsyncConnection, ids: Sequence[int]
) -> dict[int, tuple[DeadLetterAction, ...]]:
    if not ids:
        return {}
    rows = await db.execute(
        select(dead_letter_actions)
        .where(dead_letter_actions.c.rejected_id.in_(ids))
        .order_by(dead_letter_actions.c.rejected_id, dead_letter_actions.c.id)
    )
    found: dict[int, list[DeadLetterAction]] = {}
    for row in rows:
        found.setdefault(int(row.rejected_id), []).append(
            DeadLetterAction(
                rejected_id=int(row.rejected_id),
                action=row.action,
                at=row.at,
                by=row.by_user,
                outcome=row.outcome,
                reason=row.reason,
                message_id=row.message_id,
            )
        )
    return {k: tuple(v) for k, v in found.items()}


def _dead_letter(row: Any, actions: tuple[DeadLetterAction, ...], raw: bytes | None) -> DeadLetter:
    return DeadLetter(
        id=int(row.id),
        received_at=row.received_at,
        transport=row.transport,
        transport_identity=row.transport_identity,
        code=row.code,
        pointer=row.pointer,
        detail=row.detail,
        message_id=row.message_id,
        sender=row.sender,
        actions=actions,
        raw=raw,
    )


# --- decisions not to monitor (§7.1), read back from the access log ---------------


@dataclass(frozen=True, slots=True)
class MonitoringDecision:
    overdracht_id: str
    at: datetime
    by: str
    reason: str
    explanation: str
    cancelled: int


async def monitoring_decisions(db: AsyncConnection, case_ref: str) -> list[MonitoringDecision]:
    """The recorded decisions not to monitor this case's handovers, oldest first."""
    rows = await db.execute(
        select(access_log.c.at, access_log.c.username, access_log.c.detail)
        .where(
            access_log.c.case_ref == case_ref,
            access_log.c.action == NO_MONITORING,
            access_log.c.outcome == "ok",
        )
        .order_by(access_log.c.at, access_log.c.sequence)
    )
    decisions = []
    for at, username, detail_text in rows:
        detail = json.loads(detail_text)
        decisions.append(
            MonitoringDecision(
                overdracht_id=str(detail.get("overdracht", "")),
                at=at,
                by=username,
                reason=str(detail.get("reden", "")),
                explanation=str(detail.get("toelichting", "")),
                cancelled=int(detail.get("geannuleerd", "0") or 0),
            )
        )
    return decisions
