"""The store's repositories on one open transaction's connection (SQLAlchemy Core).

Each method is one or two indexed statements. Conflicts the caller must hear
about (a (sender, id) stored twice, a second open alert) are inserted `ON
CONFLICT DO NOTHING` and decided from what came back: a refused insert does
not abort a PostgreSQL transaction, so the unit of work stays usable after a
`DuplicateMessageError`, as it does on SQLite and in the fake.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final

from sqlalchemy import Row, Table, and_, bindparam, func, or_, select, text, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from adapters.store.engine import translating
from adapters.store.tables import (
    alerts,
    as_utc,
    escalations,
    inbox,
    ledger,
    message_status,
    messages,
    outbox,
    overdrachten,
    rejected,
    timers,
)
from gateway.domain.delivery import Direction, Status, StatusChange, TimerKind
from gateway.domain.errors import TransientError
from gateway.domain.escalation import (
    Escalation,
    EscalationReason,
    EscalationState,
    EscalationStep,
    Outcome,
    Route,
)
from gateway.domain.handover import Moment, Overdracht, OverdrachtState, Transition
from gateway.domain.ledger import EntryKind, LedgerEntry, linked
from gateway.service.ports import (
    Alert,
    DuplicateMessageError,
    InboxEntry,
    OutboxItem,
    RejectedMessage,
    StoredMessage,
    Timer,
)


def _insert(connection: AsyncConnection, table: Table) -> postgresql.Insert | sqlite.Insert:
    """An INSERT of the connection's dialect, which knows ON CONFLICT."""
    if connection.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def _json(mapping: Mapping[str, str]) -> str:
    return json.dumps(dict(mapping), ensure_ascii=False, sort_keys=True)


def _strings(text: str) -> dict[str, str]:
    loaded: dict[str, str] = json.loads(text)
    return loaded


class SqlMessages:
    def __init__(self, connection: AsyncConnection) -> None:
        self._db = connection

    @translating
    async def add(self, message: StoredMessage, change: StatusChange) -> None:
        if message.status != change.status:
            raise ValueError(
                f"message status {message.status} is not its first status {change.status}"
            )
        insert = (
            _insert(self._db, messages)
            .values(**_message_values(message, change))
            .on_conflict_do_nothing(index_elements=[messages.c.sender, messages.c.id])
            .returning(messages.c.seq)
        )
        seq = (await self._db.execute(insert)).scalar_one_or_none()
        if seq is None:
            raise DuplicateMessageError(f"message ({message.sender}, {message.id}) is stored")
        await self._append(seq, change)

    @translating
    async def add_many(self, items: Sequence[tuple[StoredMessage, StatusChange]]) -> None:
        if not items:
            return
        for message, change in items:
            if message.status != change.status:
                raise ValueError(
                    f"message status {message.status} is not its first status {change.status}"
                )
        rows = (
            await self._db.execute(
                _insert(self._db, messages)
                .on_conflict_do_nothing(index_elements=[messages.c.sender, messages.c.id])
                .returning(messages.c.seq, messages.c.sender, messages.c.id),
                [_message_values(message, change) for message, change in items],
            )
        ).all()
        if len(rows) != len(items):
            raise DuplicateMessageError(f"{len(items) - len(rows)} of the messages are stored")
        seqs = {(row.sender, row.id): row.seq for row in rows}
        await self._db.execute(
            message_status.insert(),
            [
                _status_values(seqs[(message.sender, message.id)], change)
                for message, change in items
            ],
        )

    @translating
    async def get_many(
        self, keys: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], StoredMessage]:
        if not keys:
            return {}
        rows = await self._db.execute(
            select(messages).where(tuple_(messages.c.sender, messages.c.id).in_(list(keys)))
        )
        return {(row.sender, row.id): _message(row) for row in rows}

    @translating
    async def record_many(self, changes: Sequence[tuple[str, str, StatusChange]]) -> None:
        if not changes:
            return
        keys = list(dict.fromkeys((sender, message_id) for sender, message_id, _ in changes))
        found = {
            (row.sender, row.id): (row.seq, row.final)
            for row in await self._db.execute(
                select(messages.c.seq, messages.c.sender, messages.c.id, messages.c.final).where(
                    tuple_(messages.c.sender, messages.c.id).in_(keys)
                )
            )
        }
        current: dict[int, StatusChange] = {}
        final = dict(found.values())
        statuses = []
        for sender, message_id, change in changes:
            if (sender, message_id) not in found:
                raise LookupError(f"no message ({sender}, {message_id})")
            seq = found[(sender, message_id)][0]
            if not final[seq]:  # a final status never changes again (see `record`)
                current[seq] = change
                final[seq] = change.final
            statuses.append(_status_values(seq, change))
        if current:
            await self._db.execute(
                update(messages)
                # A status another instance made final meanwhile stays (as in `record`).
                .where(messages.c.seq == bindparam("b_seq"), messages.c.final.is_(False))
                .values(status=bindparam("b_status"), final=bindparam("b_final")),
                [
                    {"b_seq": seq, "b_status": c.status.value, "b_final": c.final}
                    for seq, c in current.items()
                ],
            )
        await self._db.execute(message_status.insert(), statuses)

    @translating
    async def record(self, sender: str, message_id: str, change: StatusChange) -> None:
        at = as_utc(change.at)
        # A final status never changes again: a later change joins the history as
        # evidence (a resent receipt, a broker confirm that arrives after the
        # receipt) and leaves the current status as it is.
        seq = (
            await self._db.execute(
                update(messages)
                .where(
                    messages.c.sender == sender,
                    messages.c.id == message_id,
                    messages.c.final.is_(False),
                )
                .values(status=change.status.value, final=change.final)
                .returning(messages.c.seq)
            )
        ).scalar_one_or_none()
        if seq is None:
            seq = await self._db.scalar(
                select(messages.c.seq).where(
                    messages.c.sender == sender, messages.c.id == message_id
                )
            )
            if seq is None:
                raise LookupError(f"no message ({sender}, {message_id})")
        await self._append(seq, replace(change, at=at))

    async def _append(self, seq: int, change: StatusChange) -> None:
        await self._db.execute(message_status.insert().values(**_status_values(seq, change)))

    @translating
    async def get(self, sender: str, message_id: str) -> StoredMessage | None:
        row = (
            await self._db.execute(
                select(messages).where(messages.c.sender == sender, messages.c.id == message_id)
            )
        ).one_or_none()
        return None if row is None else _message(row)

    @translating
    async def find(self, message_id: str) -> Sequence[StoredMessage]:
        return await self._messages(messages.c.id == message_id)

    @translating
    async def history(self, sender: str, message_id: str) -> Sequence[StatusChange]:
        rows = await self._db.execute(
            select(message_status)
            .join(messages, messages.c.seq == message_status.c.message_seq)
            .where(messages.c.sender == sender, messages.c.id == message_id)
            .order_by(message_status.c.seq)
        )
        return [_change(Status(r.status), r.at, r.evidence, r.final) for r in rows]

    @translating
    async def in_thread(self, thread: str) -> Sequence[StoredMessage]:
        return await self._messages(messages.c.thread == thread)

    @translating
    async def replies_to(self, message_id: str) -> Sequence[StoredMessage]:
        return await self._messages(messages.c.reply_to == message_id)

    @translating
    async def purge(self, keys: Sequence[tuple[str, str]]) -> int:
        if not keys:
            return 0
        wanted = tuple_(messages.c.sender, messages.c.id).in_(list(keys))
        rows = (await self._db.execute(select(messages.c.seq).where(wanted))).all()
        seqs = [row.seq for row in rows]
        if not seqs:
            return 0
        # Explicit, not only ON DELETE CASCADE: the store must not depend on a pragma.
        await self._db.execute(
            message_status.delete().where(message_status.c.message_seq.in_(seqs))
        )
        await self._db.execute(outbox.delete().where(outbox.c.message_seq.in_(seqs)))
        await self._db.execute(
            inbox.delete().where(tuple_(inbox.c.sender, inbox.c.message_id).in_(list(keys)))
        )
        await self._db.execute(messages.delete().where(messages.c.seq.in_(seqs)))
        return len(seqs)

    async def _messages(self, condition: Any) -> list[StoredMessage]:
        rows = await self._db.execute(
            select(messages).where(condition).order_by(messages.c.created_at, messages.c.seq)
        )
        return [_message(row) for row in rows]

    @translating
    async def count_attempt(self, sender: str, message_id: str) -> int:
        attempts = (
            await self._db.execute(
                update(messages)
                .where(messages.c.sender == sender, messages.c.id == message_id)
                .values(attempts=messages.c.attempts + 1)
                .returning(messages.c.attempts)
            )
        ).scalar_one_or_none()
        if attempts is None:
            raise LookupError(f"no message ({sender}, {message_id})")
        return int(attempts)


def _message_values(message: StoredMessage, change: StatusChange) -> dict[str, Any]:
    return {
        "id": message.id,
        "sender": message.sender,
        "recipient": message.recipient,
        "type": message.type,
        "thread": message.thread,
        "reply_to": message.reply_to,
        "case_ref": message.case_ref,
        "gemeente": message.gemeente,
        "direction": message.direction.value,
        "digest": message.digest,
        "raw": message.raw,
        "sent_at": as_utc(message.sent_at),
        "created_at": as_utc(message.created_at),
        "status": change.status.value,
        "final": change.final,
        "attempts": message.attempts,
    }


def _status_values(seq: int, change: StatusChange) -> dict[str, Any]:
    return {
        "message_seq": seq,
        "status": change.status.value,
        "at": as_utc(change.at),
        "evidence": _json(change.evidence),
        "final": change.final,
    }


def _change(status: Status, at: datetime, evidence: str, final: bool) -> StatusChange:
    """A stored change: `closes` is what made it final beyond its status."""
    return StatusChange(status, at, _strings(evidence), closes=final and not status.final)


def _message(row: Row[Any]) -> StoredMessage:
    return StoredMessage(
        id=row.id,
        sender=row.sender,
        recipient=row.recipient,
        type=row.type,
        thread=row.thread,
        reply_to=row.reply_to,
        case_ref=row.case_ref,
        gemeente=row.gemeente,
        direction=Direction(row.direction),
        digest=row.digest,
        raw=bytes(row.raw),
        sent_at=row.sent_at,
        created_at=row.created_at,
        status=Status(row.status),
        attempts=row.attempts,
    )


class SqlInbox:
    def __init__(self, connection: AsyncConnection) -> None:
        self._db = connection

    @translating
    async def get(self, sender: str, message_id: str) -> InboxEntry | None:
        row = (
            await self._db.execute(
                select(inbox).where(inbox.c.sender == sender, inbox.c.message_id == message_id)
            )
        ).one_or_none()
        if row is None:
            return None
        return InboxEntry(row.sender, row.message_id, row.digest, row.receipt_id, row.received_at)

    @translating
    async def add(self, entry: InboxEntry) -> None:
        added = (
            await self._db.execute(
                _insert(self._db, inbox)
                .values(
                    sender=entry.sender,
                    message_id=entry.message_id,
                    digest=entry.digest,
                    receipt_id=entry.receipt_id,
                    received_at=as_utc(entry.received_at),
                )
                .on_conflict_do_nothing(index_elements=[inbox.c.sender, inbox.c.message_id])
                .returning(inbox.c.sender)
            )
        ).scalar_one_or_none()
        if added is None:
            raise DuplicateMessageError(f"inbox holds ({entry.sender}, {entry.message_id})")

    @translating
    async def get_many(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], InboxEntry]:
        if not keys:
            return {}
        rows = await self._db.execute(
            select(inbox).where(tuple_(inbox.c.sender, inbox.c.message_id).in_(list(keys)))
        )
        return {
            (r.sender, r.message_id): InboxEntry(
                r.sender, r.message_id, r.digest, r.receipt_id, r.received_at
            )
            for r in rows
        }

    @translating
    async def add_many(self, entries: Sequence[InboxEntry]) -> None:
        if not entries:
            return
        added = (
            await self._db.execute(
                _insert(self._db, inbox)
                .on_conflict_do_nothing(index_elements=[inbox.c.sender, inbox.c.message_id])
                .returning(inbox.c.sender),
                [
                    {
                        "sender": e.sender,
                        "message_id": e.message_id,
                        "digest": e.digest,
                        "receipt_id": e.receipt_id,
                        "received_at": as_utc(e.received_at),
                    }
                    for e in entries
                ],
            )
        ).all()
        if len(added) != len(entries):
            raise DuplicateMessageError(f"the inbox holds {len(entries) - len(added)} of them")


class SqlOutbox:
    def __init__(self, connection: AsyncConnection) -> None:
        self._db = connection

    @translating
    async def enqueue(self, sender: str, message_id: str, at: datetime) -> None:
        at = as_utc(at)
        seq = await self._db.scalar(
            select(messages.c.seq).where(messages.c.sender == sender, messages.c.id == message_id)
        )
        if seq is None:
            raise LookupError(f"no message ({sender}, {message_id}) to enqueue")
        await self._db.execute(outbox.insert().values(message_seq=seq, enqueued_at=at))

    @translating
    async def enqueue_many(self, keys: Sequence[tuple[str, str]], at: datetime) -> None:
        if not keys:
            return
        at = as_utc(at)
        seqs = {
            (row.sender, row.id): row.seq
            for row in await self._db.execute(
                select(messages.c.seq, messages.c.sender, messages.c.id).where(
                    tuple_(messages.c.sender, messages.c.id).in_(list(dict.fromkeys(keys)))
                )
            )
        }
        missing = [key for key in keys if key not in seqs]
        if missing:
            raise LookupError(f"no message {missing[0]} to enqueue")
        await self._db.execute(
            outbox.insert(), [{"message_seq": seqs[key], "enqueued_at": at} for key in keys]
        )

    @translating
    async def claim(
        self, *, limit: int, now: datetime, lease: timedelta, claimer: str
    ) -> Sequence[OutboxItem]:
        now = as_utc(now)
        if limit <= 0:
            return []
        rows = (
            await self._db.execute(
                select(
                    outbox.c.id,
                    messages.c.sender,
                    messages.c.id.label("message_id"),
                    messages.c.recipient,
                    messages.c.type,
                    messages.c.raw,
                )
                .join(messages, messages.c.seq == outbox.c.message_seq)
                .where(
                    outbox.c.published_at.is_(None),
                    or_(outbox.c.claimed_until.is_(None), outbox.c.claimed_until <= now),
                )
                .order_by(outbox.c.enqueued_at, outbox.c.id)
                .limit(limit)
                .with_for_update(of=outbox, skip_locked=True)  # nothing on SQLite: one writer
            )
        ).all()
        if not rows:
            return []
        await self._db.execute(
            update(outbox)
            .where(outbox.c.id.in_([row.id for row in rows]))
            .values(claimed_by=claimer, claimed_until=now + lease)
        )
        return [
            OutboxItem(r.id, r.sender, r.message_id, r.recipient, r.type, bytes(r.raw))
            for r in rows
        ]

    @translating
    async def published(self, outbox_ids: Sequence[int], at: datetime) -> None:
        at = as_utc(at)
        if not outbox_ids:
            return
        await self._db.execute(
            update(outbox)
            .where(outbox.c.id.in_(list(outbox_ids)), outbox.c.published_at.is_(None))
            .values(published_at=at)
        )

    @translating
    async def depth(self) -> int:
        count = await self._db.scalar(
            select(func.count()).select_from(outbox).where(outbox.c.published_at.is_(None))
        )
        return int(count or 0)


_pending = timers.c.fired_at.is_(None) & timers.c.cancelled_at.is_(None)
_LAST = (datetime.max.replace(tzinfo=UTC), 0)  # after every timer


class SqlTimers:
    def __init__(self, connection: AsyncConnection) -> None:
        self._db = connection

    @translating
    async def schedule(self, timer: Timer) -> None:
        await self._db.execute(
            timers.insert().values(
                kind=timer.kind.value,
                subject_sender=timer.subject_sender,
                subject_id=timer.subject_id,
                due_at=as_utc(timer.due_at),
                rule=timer.rule,
                attempt=timer.attempt,
            )
        )

    @translating
    async def claim_due(
        self, *, now: datetime, limit: int, lease: timedelta, claimer: str
    ) -> Sequence[Timer]:
        now = as_utc(now)
        if limit <= 0:
            return []
        rows = (
            await self._db.execute(
                select(timers)
                .where(
                    _pending,
                    timers.c.due_at <= now,
                    or_(timers.c.claimed_until.is_(None), timers.c.claimed_until <= now),
                )
                .order_by(timers.c.due_at, timers.c.id)
                .limit(limit)
                .with_for_update(skip_locked=True)  # nothing on SQLite: one writer
            )
        ).all()
        rows = await self._not_waiting(rows, now)
        if not rows:
            return []
        await self._db.execute(
            update(timers)
            .where(timers.c.id.in_([row.id for row in rows]))
            .values(claimed_by=claimer, claimed_until=now + lease)
        )
        return [_timer(row) for row in rows]

    async def _not_waiting(self, rows: Sequence[Row[Any]], now: datetime) -> list[Row[Any]]:
        """The rows no earlier due timer of their subject waits before, outside this claim.

        A subject's timers fire in order, as one instance fires them: a term's end
        waits while another instance fires its warning (which SKIP LOCKED passed
        over), or the end would close the warning's alert before the warning opened it.
        """
        if not rows:
            return []
        subject = tuple_(timers.c.subject_sender, timers.c.subject_id)
        others = await self._db.execute(
            select(timers.c.subject_sender, timers.c.subject_id, timers.c.due_at, timers.c.id)
            .where(_pending, timers.c.due_at <= now, timers.c.id.not_in([r.id for r in rows]))
            .where(subject.in_(list({(r.subject_sender, r.subject_id) for r in rows})))
        )
        first: dict[tuple[str, str], tuple[datetime, int]] = {}
        for other in others:
            key, place = (other.subject_sender, other.subject_id), (other.due_at, other.id)
            first[key] = min(first.get(key, place), place)
        return [
            row
            for row in rows
            if (row.due_at, row.id) < first.get((row.subject_sender, row.subject_id), _LAST)
        ]

    @translating
    async def done(self, timer_id: int, at: datetime) -> None:
        at = as_utc(at)
        found = await self._db.scalar(select(timers.c.id).where(timers.c.id == timer_id))
        if found is None:
            raise LookupError(f"no timer {timer_id}")
        await self._db.execute(
            update(timers)
            .where(timers.c.id == timer_id, timers.c.fired_at.is_(None))
            .values(fired_at=at)
        )

    @translating
    async def cancel(
        self, kind: TimerKind, subject_sender: str, subject_id: str, at: datetime
    ) -> int:
        cancelled = await self._db.execute(
            update(timers)
            .where(
                timers.c.subject_sender == subject_sender,
                timers.c.subject_id == subject_id,
                timers.c.kind == kind.value,
                _pending,
            )
            .values(cancelled_at=as_utc(at))
            .returning(timers.c.id)
        )
        return len(cancelled.all())

    @translating
    async def cancel_many(
        self, kind: TimerKind, subjects: Sequence[tuple[str, str]], at: datetime
    ) -> None:
        if not subjects:
            return
        await self._db.execute(
            update(timers)
            .where(
                tuple_(timers.c.subject_sender, timers.c.subject_id).in_(list(subjects)),
                timers.c.kind == kind.value,
                _pending,
            )
            .values(cancelled_at=as_utc(at))
        )

    @translating
    async def schedule_many(self, timers_: Sequence[Timer]) -> None:
        if not timers_:
            return
        await self._db.execute(
            timers.insert(),
            [
                {
                    "kind": t.kind.value,
                    "subject_sender": t.subject_sender,
                    "subject_id": t.subject_id,
                    "due_at": as_utc(t.due_at),
                    "rule": t.rule,
                    "attempt": t.attempt,
                }
                for t in timers_
            ],
        )

    @translating
    async def pending(self, subject_sender: str, subject_id: str) -> Sequence[Timer]:
        rows = await self._db.execute(
            select(timers)
            .where(
                timers.c.subject_sender == subject_sender,
                timers.c.subject_id == subject_id,
                _pending,
            )
            .order_by(timers.c.due_at, timers.c.id)
        )
        return [_timer(row) for row in rows]


def _timer(row: Row[Any]) -> Timer:
    return Timer(
        kind=TimerKind(row.kind),
        subject_sender=row.subject_sender,
        subject_id=row.subject_id,
        due_at=row.due_at,
        rule=row.rule,
        attempt=row.attempt,
        timer_id=row.id,
    )


class SqlAlerts:
    def __init__(self, connection: AsyncConnection) -> None:
        self._db = connection

    @translating
    async def open(self, key: str, detail: str, at: datetime) -> bool:
        opened = (
            await self._db.execute(
                _insert(self._db, alerts)
                .values(key=key, detail=detail, opened_at=as_utc(at))
                .on_conflict_do_nothing(
                    index_elements=[alerts.c.key], index_where=alerts.c.closed_at.is_(None)
                )
                .returning(alerts.c.id)
            )
        ).scalar_one_or_none()
        return opened is not None

    @translating
    async def close(self, key: str, at: datetime) -> bool:
        closed = (
            await self._db.execute(
                update(alerts)
                .where(alerts.c.key == key, alerts.c.closed_at.is_(None))
                .values(closed_at=as_utc(at))
                .returning(alerts.c.id)
            )
        ).all()
        return bool(closed)

    @translating
    async def open_alerts(self) -> Sequence[Alert]:
        return await self._alerts(alerts.c.closed_at.is_(None))

    @translating
    async def all_alerts(self, key: str) -> Sequence[Alert]:
        return await self._alerts(alerts.c.key == key)

    async def _alerts(self, condition: Any) -> list[Alert]:
        rows = await self._db.execute(
            select(alerts).where(condition).order_by(alerts.c.opened_at, alerts.c.id)
        )
        return [Alert(r.key, r.detail, r.opened_at, r.closed_at, r.id) for r in rows]


class SqlRejections:
    def __init__(self, connection: AsyncConnection) -> None:
        self._db = connection

    @translating
    async def add(self, rejected_message: RejectedMessage) -> int:
        r = rejected_message
        row_id = (
            await self._db.execute(
                rejected.insert()
                .values(
                    received_at=as_utc(r.received_at),
                    transport=r.transport,
                    transport_identity=r.transport_identity,
                    code=r.code,
                    detail=r.detail,
                    pointer=r.pointer,
                    raw=r.raw,
                    message_id=r.message_id,
                    sender=r.sender,
                    error_id=r.error_id,
                    headers=_json(r.headers),
                )
                .returning(rejected.c.id)
            )
        ).scalar_one()
        return int(row_id)

    @translating
    async def recent(self, limit: int) -> Sequence[RejectedMessage]:
        if limit <= 0:
            return []
        rows = await self._db.execute(
            select(rejected)
            .order_by(rejected.c.received_at.desc(), rejected.c.id.desc())
            .limit(limit)
        )
        return [
            RejectedMessage(
                received_at=r.received_at,
                transport=r.transport,
                transport_identity=r.transport_identity,
                code=r.code,
                detail=r.detail,
                pointer=r.pointer,
                raw=bytes(r.raw),
                message_id=r.message_id,
                sender=r.sender,
                error_id=r.error_id,
                headers=_strings(r.headers),
            )
            for r in rows
        ]


LEDGER_LOCK: Final = 0x76_74_67_77_6C_65_64  # "vtgwled": the chain's one linker (PostgreSQL)
CASE_LOCKS: Final = 0x76_74_67_63  # "vtgc": the class of the cases' locks (two-key form)
_APPENDED: Final = "vtgw.ledger.appended"  # in the connection's info: entries to link at commit

# One advisory lock per case, taken in the order of their keys: two transactions that
# hold several cases never wait for each other in a cycle. The two-key form has a key
# space of its own, apart from the chain's one-key LEDGER_LOCK.
_HOLD_CASES = text(
    "SELECT count(pg_advisory_xact_lock(:locks, held.key)) FROM ("
    " SELECT DISTINCT hashtext(ref) AS key FROM unnest(CAST(:refs AS text[])) AS ref"
    " ORDER BY key) AS held"
)


def begin_ledger(db: AsyncConnection) -> None:
    """A transaction starts on `db`: the ledger may be extended in it, linked at its commit."""
    db.info[_APPENDED] = []


def end_ledger(db: AsyncConnection) -> None:
    """The transaction on `db` ended: what it appended and did not link is gone with it."""
    db.info.pop(_APPENDED, None)


def _appended(db: AsyncConnection) -> list[LedgerEntry]:
    """The entries appended in the transaction on `db`, not linked yet."""
    appended: list[LedgerEntry] | None = db.info.get(_APPENDED)
    if appended is None:
        raise RuntimeError("the ledger is extended only in a store transaction: it links at commit")
    return appended


def _unlinked(db: AsyncConnection, case_refs: Collection[str]) -> list[LedgerEntry]:
    """Those of the transaction's entries not linked yet that are of these cases."""
    appended: list[LedgerEntry] = db.info.get(_APPENDED, [])
    return [entry for entry in appended if entry.case_ref in case_refs]


@translating
async def hold_cases(db: AsyncConnection, case_refs: Collection[str]) -> None:
    """The cases are held until the transaction ends (PostgreSQL; SQLite has one writer)."""
    if db.dialect.name == "postgresql" and case_refs:
        await db.execute(_HOLD_CASES, {"locks": CASE_LOCKS, "refs": sorted(set(case_refs))})


@translating
async def link_appended(db: AsyncConnection) -> list[LedgerEntry]:
    """Link the transaction's appended entries after the chain's head, in order, and write them.

    The chain is taken only here, at the end of the transaction: on PostgreSQL a
    transaction-scoped advisory lock, and the head read in a statement after it, so it is
    the head the previous linker committed (FOR UPDATE on the head row would give a waiter
    the old head back in READ COMMITTED). On SQLite BEGIN IMMEDIATE already holds the one
    write lock. The chain is then held until the commit, a moment later.
    """
    appended = _appended(db)
    if not appended:
        return []
    if db.dialect.name == "postgresql":
        await db.execute(select(func.pg_advisory_xact_lock(LEDGER_LOCK)))
    head = await _head(db)
    entries = []
    for entry in appended:
        head = linked(entry, head)
        entries.append(head)
    # DO NOTHING on any conflict: a refused insert leaves a PostgreSQL transaction usable.
    written = (
        await db.execute(
            _insert(db, ledger)
            .values([_ledger_row(entry) for entry in entries])
            .on_conflict_do_nothing()
            .returning(ledger.c.sequence)
        )
    ).all()
    if len(written) != len(entries):  # only by a writer that skipped the lock
        raise TransientError("ledger entries were appended meanwhile: retry the transaction")
    appended.clear()
    return entries


async def _head(db: AsyncConnection) -> LedgerEntry | None:
    row = (
        await db.execute(select(ledger).order_by(ledger.c.sequence.desc()).limit(1))
    ).one_or_none()
    return None if row is None else _ledger_entry(row)


def _ledger_row(entry: LedgerEntry) -> dict[str, Any]:
    return {
        "sequence": entry.sequence,
        "case_ref": entry.case_ref,
        "gemeente": entry.gemeente,
        "kind": entry.kind.value,
        "by_party": entry.by,
        "holder": entry.holder,
        "regievoerder": entry.regievoerder,
        "at": as_utc(entry.at),
        "evidence": _json(entry.evidence),
        "previous_hash": entry.previous_hash,
        "hash": entry.hash,
    }


class SqlLedger:
    """The responsibility ledger's chain; the domain decides and links, the store keeps."""

    def __init__(self, connection: AsyncConnection) -> None:
        self._db = connection

    @translating
    async def head(self) -> LedgerEntry | None:
        return await _head(self._db)

    async def hold(self, case_refs: Collection[str]) -> None:
        await hold_cases(self._db, case_refs)

    @translating
    async def opened(self, case_refs: Sequence[str]) -> set[str]:
        if not case_refs:
            return set()
        rows = await self._db.execute(
            select(ledger.c.case_ref).where(ledger.c.case_ref.in_(set(case_refs))).distinct()
        )
        return {row.case_ref for row in rows} | {e.case_ref for e in _unlinked(self._db, case_refs)}

    @translating
    async def last_of(self, case_ref: str) -> LedgerEntry | None:
        mine = _unlinked(self._db, [case_ref])
        if mine:
            return mine[-1]
        row = (
            await self._db.execute(
                select(ledger)
                .where(ledger.c.case_ref == case_ref)
                .order_by(ledger.c.sequence.desc())
                .limit(1)
            )
        ).one_or_none()
        return None if row is None else _ledger_entry(row)

    @translating
    async def history(self, case_ref: str) -> Sequence[LedgerEntry]:
        rows = await self._db.execute(
            select(ledger).where(ledger.c.case_ref == case_ref).order_by(ledger.c.sequence)
        )
        return [_ledger_entry(row) for row in rows] + _unlinked(self._db, [case_ref])

    async def append(self, entry: LedgerEntry) -> None:
        _appended(self._db).append(entry)

    async def link(self) -> Sequence[LedgerEntry]:
        return await link_appended(self._db)

    @translating
    async def entries(self, *, after: int, limit: int) -> Sequence[LedgerEntry]:
        if limit <= 0:
            return []
        rows = await self._db.execute(
            select(ledger).where(ledger.c.sequence > after).order_by(ledger.c.sequence).limit(limit)
        )
        return [_ledger_entry(row) for row in rows]


def _ledger_entry(row: Row[Any]) -> LedgerEntry:
    return LedgerEntry(
        sequence=row.sequence,
        case_ref=row.case_ref,
        gemeente=row.gemeente,
        kind=EntryKind(row.kind),
        by=row.by_party,
        holder=row.holder,
        regievoerder=row.regievoerder,
        at=row.at,
        evidence=_strings(row.evidence),
        previous_hash=row.previous_hash,
        hash=row.hash,
    )


def _moment_text(moment: datetime) -> str:
    """RFC 3339 in UTC with microseconds and `Z`: the history keeps the exact instant."""
    return as_utc(moment).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _history_json(history: Sequence[Transition]) -> str:
    return json.dumps(
        [
            {"state": t.state.value, "at": _moment_text(t.at), "evidence": dict(t.evidence)}
            for t in history
        ],
        ensure_ascii=False,
        sort_keys=True,
    )


def _history(text: str) -> tuple[Transition, ...]:
    steps: list[dict[str, Any]] = json.loads(text)
    return tuple(
        Transition(
            OverdrachtState(step["state"]),
            datetime.fromisoformat(step["at"]).astimezone(UTC),
            dict(step["evidence"]),
        )
        for step in steps
    )


def _opened(overdracht: Overdracht) -> tuple[datetime, str]:
    """The order of a case's overdrachten: by their notice's moment, then id."""
    first = overdracht.history[0].at if overdracht.history else datetime.min.replace(tzinfo=UTC)
    return first, overdracht.id


class SqlHandovers:
    """The overdrachten, one row each; the history is a JSON array in its row."""

    def __init__(self, connection: AsyncConnection) -> None:
        self._db = connection

    @translating
    async def get(self, overdracht_id: str) -> Overdracht | None:
        # The handover is read to be changed and saved whole: FOR UPDATE holds its row,
        # so two instances' transactions on one handover (a receipt and a confirmation,
        # a receipt and a timer) take turns instead of the later save undoing the other.
        # On PostgreSQL its case is held first, in every transaction that touches a
        # handover: the order is always case, then row, then (at commit) the chain, so
        # none deadlocks with one that extended the case's ledger (SQLite: one writer).
        if self._db.dialect.name == "postgresql":
            case_ref = await self._db.scalar(
                select(overdrachten.c.case_ref).where(overdrachten.c.id == overdracht_id)
            )
            if case_ref is not None:  # its case never changes: held, the row stays its own
                await hold_cases(self._db, [case_ref])
        row = (
            await self._db.execute(
                select(overdrachten).where(overdrachten.c.id == overdracht_id).with_for_update()
            )
        ).one_or_none()
        return None if row is None else _overdracht(row)

    @translating
    async def hold_cases_of(self, overdracht_ids: Collection[str]) -> None:
        if self._db.dialect.name != "postgresql" or not overdracht_ids:
            return
        cases = await self._db.scalars(
            select(overdrachten.c.case_ref).where(overdrachten.c.id.in_(set(overdracht_ids)))
        )
        await hold_cases(self._db, set(cases))

    @translating
    async def save(self, overdracht: Overdracht) -> None:
        o = overdracht
        values = {
            "case_ref": o.case_ref,
            "gemeente": o.gemeente,
            "moment": o.moment.value,
            "recipient": o.recipient,
            "advised_term": o.advised_term,
            "state": o.state.value,
            "deferred_to": o.deferred_to,
            "history": _history_json(o.history),
            "opened_at": _opened(o)[0],
            "open_deadline": None if o.state.final else o.deadline,
        }
        await self._db.execute(
            _insert(self._db, overdrachten)
            .values(id=o.id, **values)
            .on_conflict_do_update(index_elements=[overdrachten.c.id], set_=values)
        )

    @translating
    async def of_case(self, case_ref: str) -> Sequence[Overdracht]:
        rows = await self._db.execute(
            select(overdrachten)
            .where(overdrachten.c.case_ref == case_ref)
            .order_by(overdrachten.c.id)
        )
        return sorted((_overdracht(row) for row in rows), key=_opened)

    @translating
    async def opened_between(self, start: datetime, end: datetime) -> Sequence[Overdracht]:
        rows = await self._db.execute(
            select(overdrachten).where(
                overdrachten.c.opened_at >= as_utc(start), overdrachten.c.opened_at < as_utc(end)
            )
        )
        return sorted((_overdracht(row) for row in rows), key=_opened)

    @translating
    async def still_open(self) -> Sequence[Overdracht]:
        open_states = [s.value for s in OverdrachtState if not s.final]
        rows = await self._db.execute(
            select(overdrachten).where(overdrachten.c.state.in_(open_states))
        )
        return sorted((_overdracht(row) for row in rows), key=_opened)

    @translating
    async def open_due_through(
        self, last_day: date, *, limit: int, after: tuple[date, str] | None = None
    ) -> Sequence[Overdracht]:
        deadline = overdrachten.c.open_deadline  # NULL once final: the partial index's rows
        statement = select(overdrachten).where(deadline <= last_day)
        if after is not None:
            statement = statement.where(
                or_(
                    deadline > after[0],
                    and_(deadline == after[0], overdrachten.c.id > after[1]),
                )
            )
        rows = await self._db.execute(
            statement.order_by(deadline, overdrachten.c.id).limit(max(limit, 0))
        )
        return [_overdracht(row) for row in rows]


def _overdracht(row: Row[Any]) -> Overdracht:
    return Overdracht(
        id=row.id,
        case_ref=row.case_ref,
        gemeente=row.gemeente,
        moment=Moment(row.moment),
        recipient=row.recipient,
        advised_term=row.advised_term,
        state=OverdrachtState(row.state),
        history=_history(row.history),
        deferred_to=row.deferred_to,
    )


def _steps_json(history: Sequence[EscalationStep]) -> str:
    return json.dumps(
        [
            {
                "at": _moment_text(step.at),
                "route": step.route.value,
                "by": step.by,
                "outcome": None if step.outcome is None else step.outcome.value,
                "note": step.note,
            }
            for step in history
        ],
        ensure_ascii=False,
        sort_keys=True,
    )


def _steps(text: str) -> tuple[EscalationStep, ...]:
    steps: list[dict[str, Any]] = json.loads(text)
    return tuple(
        EscalationStep(
            at=datetime.fromisoformat(step["at"]).astimezone(UTC),
            route=Route(step["route"]),
            by=step["by"],
            outcome=None if step["outcome"] is None else Outcome(step["outcome"]),
            note=step["note"],
        )
        for step in steps
    )


def _escalation_values(escalation: Escalation) -> dict[str, Any]:
    e = escalation
    return {
        "case_ref": e.case_ref,
        "party": e.party,
        "reason": e.reason.value,
        "opened_at": as_utc(e.opened_at),
        "route": e.route.value,
        "state": e.state.value,
        "history": _steps_json(e.history),
    }


def _escalation(row: Row[Any]) -> Escalation:
    return Escalation(
        case_ref=row.case_ref,
        party=row.party,
        reason=EscalationReason(row.reason),
        opened_at=row.opened_at,
        route=Route(row.route),
        state=EscalationState(row.state),
        history=_steps(row.history),
    )


class SqlEscalations:
    """The escalations, one row each, numbered by the database; the history is JSON in its row."""

    def __init__(self, connection: AsyncConnection) -> None:
        self._db = connection

    @translating
    async def add(self, escalation: Escalation) -> int:
        number = (
            await self._db.execute(
                escalations.insert()
                .values(**_escalation_values(escalation))
                .returning(escalations.c.number)
            )
        ).scalar_one()
        return int(number)

    @translating
    async def get(self, number: int) -> Escalation | None:
        row = (
            await self._db.execute(select(escalations).where(escalations.c.number == number))
        ).one_or_none()
        return None if row is None else _escalation(row)

    @translating
    async def save(self, number: int, escalation: Escalation) -> None:
        saved = await self._db.execute(
            update(escalations)
            .where(escalations.c.number == number)
            .values(**_escalation_values(escalation))
            .returning(escalations.c.number)
        )
        if saved.scalar_one_or_none() is None:
            raise LookupError(f"no escalation {number}")

    @translating
    async def since(self, moment: datetime) -> Sequence[tuple[int, Escalation]]:
        return await self._escalations(escalations.c.opened_at >= as_utc(moment))

    @translating
    async def still_open(self) -> Sequence[tuple[int, Escalation]]:
        open_states = [s.value for s in EscalationState if not s.final]
        return await self._escalations(escalations.c.state.in_(open_states))

    async def _escalations(self, condition: Any) -> list[tuple[int, Escalation]]:
        rows = await self._db.execute(
            select(escalations)
            .where(condition)
            .order_by(escalations.c.opened_at, escalations.c.number)
        )
        return [(int(row.number), _escalation(row)) for row in rows]
