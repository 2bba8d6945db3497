"""An in-memory store with the SQL store's semantics, proved by the shared contract suite.

One transaction at a time (like SQLite's single writer): a transaction works
on a copy of the state, which replaces the state when the block ends and is
dropped when it raises. Rows are frozen dataclasses, so copying the tables'
dicts is enough to stage a transaction's changes.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import TypeVar

from gateway.domain.delivery import StatusChange, TimerKind
from gateway.domain.errors import TransientError
from gateway.domain.escalation import Escalation
from gateway.domain.handover import Overdracht
from gateway.domain.ledger import LedgerEntry, linked
from gateway.domain.monitoring import MonitoringCheck
from gateway.service.ports import (
    Alert,
    Alerts,
    DuplicateMessageError,
    Escalations,
    Handovers,
    Inbox,
    InboxEntry,
    LedgerRepository,
    MessageRepository,
    MonitoringChecks,
    Outbox,
    OutboxItem,
    Purged,
    RejectedMessage,
    Rejections,
    RetentionLog,
    StoredMessage,
    Timer,
    Timers,
    UnitOfWork,
)

Key = tuple[str, str]  # (sender, message id)
T = TypeVar("T")


def as_utc(value: datetime) -> datetime:
    """The same moment as an aware UTC datetime; a naive one is refused (as the SQL store does)."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"naive datetime {value.isoformat()}: the store keeps aware UTC times")
    return value.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class _MessageRow:
    seq: int
    message: StoredMessage
    final: bool
    history: tuple[StatusChange, ...]


@dataclass(frozen=True, slots=True)
class _OutboxRow:
    id: int
    key: Key
    enqueued_at: datetime
    claimed_by: str | None = None
    claimed_until: datetime | None = None
    published_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class _TimerRow:
    timer: Timer  # with its timer_id
    claimed_by: str | None = None
    claimed_until: datetime | None = None
    fired_at: datetime | None = None
    cancelled_at: datetime | None = None

    @property
    def pending(self) -> bool:
        return self.fired_at is None and self.cancelled_at is None


@dataclass(slots=True)
class _State:
    messages: dict[Key, _MessageRow] = field(default_factory=dict)
    inbox: dict[Key, InboxEntry] = field(default_factory=dict)
    outbox: dict[int, _OutboxRow] = field(default_factory=dict)
    timers: dict[int, _TimerRow] = field(default_factory=dict)
    alerts: dict[int, Alert] = field(default_factory=dict)
    rejected: dict[int, RejectedMessage] = field(default_factory=dict)
    last_id: int = 0  # one sequence for every table: ids are unique and increasing
    ledger: dict[int, LedgerEntry] = field(default_factory=dict)  # by sequence, in order
    overdrachten: dict[str, Overdracht] = field(default_factory=dict)
    escalations: dict[int, Escalation] = field(default_factory=dict)  # by number
    checks: dict[tuple[str, int], MonitoringCheck] = field(default_factory=dict)
    purged: list[Purged] = field(default_factory=list)

    def copy(self) -> _State:
        return _State(
            dict(self.messages),
            dict(self.inbox),
            dict(self.outbox),
            dict(self.timers),
            dict(self.alerts),
            dict(self.rejected),
            self.last_id,
            dict(self.ledger),
            dict(self.overdrachten),
            dict(self.escalations),
            dict(self.checks),
            list(self.purged),
        )

    def next_id(self) -> int:
        self.last_id += 1
        return self.last_id


class _Transaction:
    """The state a unit of work sees, until its block ends."""

    def __init__(self, state: _State) -> None:
        self._state: _State | None = state
        self.ledger_appended: list[LedgerEntry] = []  # linked when the block ends

    @property
    def state(self) -> _State:
        if self._state is None:
            raise RuntimeError("the transaction of this unit of work has ended")
        return self._state

    def end(self) -> None:
        self._state = None


def _kept(change: StatusChange) -> StatusChange:
    """A change as the store gives it back: UTC, its evidence a dict, `closes` only when needed."""
    return replace(
        change,
        at=as_utc(change.at),
        evidence=dict(change.evidence),
        closes=change.final and not change.status.final,
    )


def _oldest_first(rows: Iterable[_MessageRow]) -> list[StoredMessage]:
    return [r.message for r in sorted(rows, key=lambda r: (r.message.created_at, r.seq))]


def _first(rows: Iterable[T], limit: int, key: Callable[[T], tuple[datetime, int]]) -> list[T]:
    return sorted(rows, key=key)[: max(limit, 0)]


class MemoryMessages:
    def __init__(self, tx: _Transaction) -> None:
        self._tx = tx

    async def add(self, message: StoredMessage, change: StatusChange) -> None:
        if message.status != change.status:
            raise ValueError(
                f"message status {message.status} is not its first status {change.status}"
            )
        change = _kept(change)
        message = replace(
            message, sent_at=as_utc(message.sent_at), created_at=as_utc(message.created_at)
        )
        state = self._tx.state
        key = (message.sender, message.id)
        if key in state.messages:
            raise DuplicateMessageError(f"message ({message.sender}, {message.id}) is stored")
        state.messages[key] = _MessageRow(state.next_id(), message, change.final, (change,))

    async def record(self, sender: str, message_id: str, change: StatusChange) -> None:
        change = _kept(change)
        row = self._row(sender, message_id)
        if row.final:  # a final status never changes again: the change is only evidence
            updated = replace(row, history=(*row.history, change))
        else:
            message = replace(row.message, status=change.status)
            updated = replace(row, message=message, final=change.final)
            updated = replace(updated, history=(*row.history, change))
        self._tx.state.messages[(sender, message_id)] = updated

    async def get(self, sender: str, message_id: str) -> StoredMessage | None:
        row = self._tx.state.messages.get((sender, message_id))
        return None if row is None else row.message

    async def find(self, message_id: str) -> Sequence[StoredMessage]:
        return _oldest_first(
            r for r in self._tx.state.messages.values() if r.message.id == message_id
        )

    async def history(self, sender: str, message_id: str) -> Sequence[StatusChange]:
        row = self._tx.state.messages.get((sender, message_id))
        return [] if row is None else list(row.history)

    async def in_thread(self, thread: str) -> Sequence[StoredMessage]:
        return _oldest_first(
            r for r in self._tx.state.messages.values() if r.message.thread == thread
        )

    async def replies_to(self, message_id: str) -> Sequence[StoredMessage]:
        return _oldest_first(
            r for r in self._tx.state.messages.values() if r.message.reply_to == message_id
        )

    async def count_attempt(self, sender: str, message_id: str) -> int:
        row = self._row(sender, message_id)
        attempts = row.message.attempts + 1
        message = replace(row.message, attempts=attempts)
        self._tx.state.messages[(sender, message_id)] = replace(row, message=message)
        return attempts

    async def add_many(self, items: Sequence[tuple[StoredMessage, StatusChange]]) -> None:
        for message, change in items:
            await self.add(message, change)

    async def purge(self, keys: Sequence[tuple[str, str]]) -> int:
        state = self._tx.state
        gone = {key for key in keys if key in state.messages}
        for key in gone:
            del state.messages[key]
            state.inbox.pop(key, None)
        state.outbox = {i: row for i, row in state.outbox.items() if row.key not in gone}
        return len(gone)

    async def get_many(
        self, keys: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], StoredMessage]:
        rows = self._tx.state.messages
        return {key: rows[key].message for key in keys if key in rows}

    async def record_many(self, changes: Sequence[tuple[str, str, StatusChange]]) -> None:
        for sender, message_id, change in changes:
            await self.record(sender, message_id, change)

    def _row(self, sender: str, message_id: str) -> _MessageRow:
        row = self._tx.state.messages.get((sender, message_id))
        if row is None:
            raise LookupError(f"no message ({sender}, {message_id})")
        return row


class MemoryInbox:
    def __init__(self, tx: _Transaction) -> None:
        self._tx = tx

    async def get(self, sender: str, message_id: str) -> InboxEntry | None:
        return self._tx.state.inbox.get((sender, message_id))

    async def add(self, entry: InboxEntry) -> None:
        entry = replace(entry, received_at=as_utc(entry.received_at))
        key = (entry.sender, entry.message_id)
        if key in self._tx.state.inbox:
            raise DuplicateMessageError(f"inbox holds ({entry.sender}, {entry.message_id})")
        self._tx.state.inbox[key] = entry

    async def get_many(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], InboxEntry]:
        held = self._tx.state.inbox
        return {key: held[key] for key in keys if key in held}

    async def add_many(self, entries: Sequence[InboxEntry]) -> None:
        for entry in entries:
            await self.add(entry)


def _claimable(claimed_until: datetime | None, now: datetime) -> bool:
    return claimed_until is None or claimed_until <= now


class MemoryOutbox:
    def __init__(self, tx: _Transaction) -> None:
        self._tx = tx

    async def enqueue(self, sender: str, message_id: str, at: datetime) -> None:
        at = as_utc(at)
        state = self._tx.state
        if (sender, message_id) not in state.messages:
            raise LookupError(f"no message ({sender}, {message_id}) to enqueue")
        row_id = state.next_id()
        state.outbox[row_id] = _OutboxRow(row_id, (sender, message_id), at)

    async def enqueue_many(self, keys: Sequence[tuple[str, str]], at: datetime) -> None:
        for sender, message_id in keys:
            await self.enqueue(sender, message_id, at)

    async def claim(
        self, *, limit: int, now: datetime, lease: timedelta, claimer: str
    ) -> Sequence[OutboxItem]:
        now = as_utc(now)
        state = self._tx.state
        free = (
            r
            for r in state.outbox.values()
            if r.published_at is None and _claimable(r.claimed_until, now)
        )
        items = []
        for row in _first(free, limit, key=lambda r: (r.enqueued_at, r.id)):
            state.outbox[row.id] = replace(row, claimed_by=claimer, claimed_until=now + lease)
            message = state.messages[row.key].message
            items.append(
                OutboxItem(
                    row.id, message.sender, message.id, message.recipient, message.type, message.raw
                )
            )
        return items

    async def published(self, outbox_ids: Sequence[int], at: datetime) -> None:
        at = as_utc(at)
        state = self._tx.state
        for row_id in outbox_ids:
            row = state.outbox.get(row_id)
            if row is not None and row.published_at is None:
                state.outbox[row_id] = replace(row, published_at=at)

    async def depth(self) -> int:
        return sum(1 for r in self._tx.state.outbox.values() if r.published_at is None)


class MemoryTimers:
    def __init__(self, tx: _Transaction) -> None:
        self._tx = tx

    async def schedule(self, timer: Timer) -> None:
        state = self._tx.state
        row_id = state.next_id()
        state.timers[row_id] = _TimerRow(
            replace(timer, due_at=as_utc(timer.due_at), timer_id=row_id)
        )

    async def claim_due(
        self, *, now: datetime, limit: int, lease: timedelta, claimer: str
    ) -> Sequence[Timer]:
        now = as_utc(now)
        state = self._tx.state
        due = (
            r
            for r in state.timers.values()
            if r.pending and r.timer.due_at <= now and _claimable(r.claimed_until, now)
        )
        claimed = _first(due, limit, key=lambda r: (r.timer.due_at, r.timer.timer_id or 0))
        for row in claimed:
            state.timers[row.timer.timer_id or 0] = replace(
                row, claimed_by=claimer, claimed_until=now + lease
            )
        return [row.timer for row in claimed]

    async def done(self, timer_id: int, at: datetime) -> None:
        at = as_utc(at)
        row = self._tx.state.timers.get(timer_id)
        if row is None:
            raise LookupError(f"no timer {timer_id}")
        if row.fired_at is None:
            self._tx.state.timers[timer_id] = replace(row, fired_at=at)

    async def cancel(
        self, kind: TimerKind, subject_sender: str, subject_id: str, at: datetime
    ) -> int:
        state = self._tx.state
        now = as_utc(at)
        cancelled = [
            row
            for row in state.timers.values()
            if row.pending
            and row.timer.kind == kind
            and (row.timer.subject_sender, row.timer.subject_id) == (subject_sender, subject_id)
        ]
        for row in cancelled:
            state.timers[row.timer.timer_id or 0] = replace(row, cancelled_at=now)
        return len(cancelled)

    async def cancel_many(
        self, kind: TimerKind, subjects: Sequence[tuple[str, str]], at: datetime
    ) -> None:
        for sender, message_id in subjects:
            await self.cancel(kind, sender, message_id, at)

    async def schedule_many(self, timers: Sequence[Timer]) -> None:
        for timer in timers:
            await self.schedule(timer)

    async def pending(self, subject_sender: str, subject_id: str) -> Sequence[Timer]:
        rows = [
            row
            for row in self._tx.state.timers.values()
            if row.pending
            and (row.timer.subject_sender, row.timer.subject_id) == (subject_sender, subject_id)
        ]
        return [
            r.timer for r in sorted(rows, key=lambda r: (r.timer.due_at, r.timer.timer_id or 0))
        ]


class MemoryAlerts:
    def __init__(self, tx: _Transaction) -> None:
        self._tx = tx

    async def open(self, key: str, detail: str, at: datetime) -> bool:
        at = as_utc(at)
        state = self._tx.state
        if any(a.key == key and a.closed_at is None for a in state.alerts.values()):
            return False
        alert_id = state.next_id()
        state.alerts[alert_id] = Alert(key, detail, at, None, alert_id)
        return True

    async def close(self, key: str, at: datetime) -> bool:
        at = as_utc(at)
        state = self._tx.state
        for alert_id, alert in state.alerts.items():
            if alert.key == key and alert.closed_at is None:
                state.alerts[alert_id] = replace(alert, closed_at=at)
                return True
        return False

    async def open_alerts(self) -> Sequence[Alert]:
        return self._sorted(a for a in self._tx.state.alerts.values() if a.closed_at is None)

    async def all_alerts(self, key: str) -> Sequence[Alert]:
        return self._sorted(a for a in self._tx.state.alerts.values() if a.key == key)

    @staticmethod
    def _sorted(alerts: Iterable[Alert]) -> list[Alert]:
        return sorted(alerts, key=lambda a: (a.opened_at, a.alert_id or 0))


class MemoryRejections:
    def __init__(self, tx: _Transaction) -> None:
        self._tx = tx

    async def add(self, rejected: RejectedMessage) -> int:
        state = self._tx.state
        row_id = state.next_id()
        state.rejected[row_id] = replace(
            rejected, received_at=as_utc(rejected.received_at), headers=dict(rejected.headers)
        )
        return row_id

    async def recent(self, limit: int) -> Sequence[RejectedMessage]:
        newest = sorted(
            self._tx.state.rejected.items(),
            key=lambda item: (item[1].received_at, item[0]),
            reverse=True,
        )
        return [rejected for _, rejected in newest[: max(limit, 0)]]


class MemoryLedger:
    """The ledger's chain by sequence: entries appended in a block are linked when it ends."""

    def __init__(self, tx: _Transaction) -> None:
        self._tx = tx

    def _ordered(self) -> list[LedgerEntry]:
        return [entry for _, entry in sorted(self._tx.state.ledger.items())]

    async def head(self) -> LedgerEntry | None:
        entries = self._tx.state.ledger
        return entries[max(entries)] if entries else None

    async def hold(self, case_refs: Collection[str]) -> None:
        return None  # one transaction at a time: every case is held anyway

    async def last_of(self, case_ref: str) -> LedgerEntry | None:
        history = await self.history(case_ref)
        return history[-1] if history else None

    async def history(self, case_ref: str) -> Sequence[LedgerEntry]:
        every = [*self._ordered(), *self._tx.ledger_appended]
        return [entry for entry in every if entry.case_ref == case_ref]

    async def opened(self, case_refs: Sequence[str]) -> set[str]:
        wanted = set(case_refs)
        every = [*self._ordered(), *self._tx.ledger_appended]
        return {entry.case_ref for entry in every if entry.case_ref in wanted}

    async def append(self, entry: LedgerEntry) -> None:
        entry = replace(entry, at=as_utc(entry.at), evidence=dict(entry.evidence))
        self._tx.ledger_appended.append(entry)

    async def link(self) -> Sequence[LedgerEntry]:
        entries = self._tx.state.ledger
        done = []
        for entry in self._tx.ledger_appended:
            head = entries[max(entries)] if entries else None
            done.append(linked(entry, head))
            entries[done[-1].sequence] = done[-1]
        self._tx.ledger_appended.clear()
        return done

    async def entries(self, *, after: int, limit: int) -> Sequence[LedgerEntry]:
        return [entry for entry in self._ordered() if entry.sequence > after][: max(limit, 0)]


def _kept_overdracht(overdracht: Overdracht) -> Overdracht:
    """An overdracht as the store gives it back: its moments UTC, its evidence dicts."""
    history = tuple(
        replace(step, at=as_utc(step.at), evidence=dict(step.evidence))
        for step in overdracht.history
    )
    return replace(overdracht, history=history)


def _opened(overdracht: Overdracht) -> tuple[datetime, str]:
    """The order of a case's overdrachten: by their notice's moment, then id (as in SQL)."""
    first = overdracht.history[0].at if overdracht.history else datetime.min.replace(tzinfo=UTC)
    return first, overdracht.id


class MemoryHandovers:
    def __init__(self, tx: _Transaction) -> None:
        self._tx = tx

    async def get(self, overdracht_id: str) -> Overdracht | None:
        return self._tx.state.overdrachten.get(overdracht_id)

    async def hold_cases_of(self, overdracht_ids: Collection[str]) -> None:
        return None  # one transaction at a time

    async def save(self, overdracht: Overdracht) -> None:
        self._tx.state.overdrachten[overdracht.id] = _kept_overdracht(overdracht)

    async def of_case(self, case_ref: str) -> Sequence[Overdracht]:
        found = (o for o in self._tx.state.overdrachten.values() if o.case_ref == case_ref)
        return sorted(found, key=_opened)

    async def opened_between(self, start: datetime, end: datetime) -> Sequence[Overdracht]:
        found = (o for o in self._tx.state.overdrachten.values() if start <= _opened(o)[0] < end)
        return sorted(found, key=_opened)

    async def still_open(self) -> Sequence[Overdracht]:
        found = (o for o in self._tx.state.overdrachten.values() if not o.state.final)
        return sorted(found, key=_opened)

    async def open_due_through(
        self, last_day: date, *, limit: int, after: tuple[date, str] | None = None
    ) -> Sequence[Overdracht]:
        found = sorted(
            (o.deadline, o.id)
            for o in self._tx.state.overdrachten.values()
            if not o.state.final and o.deadline <= last_day
        )
        keys = [key for key in found if after is None or key > after]
        return [self._tx.state.overdrachten[i] for _, i in keys[: max(limit, 0)]]


def _kept_escalation(escalation: Escalation) -> Escalation:
    """An escalation as the store gives it back: its moments UTC, its history a tuple."""
    history = tuple(replace(step, at=as_utc(step.at)) for step in escalation.history)
    return replace(escalation, opened_at=as_utc(escalation.opened_at), history=history)


class MemoryEscalations:
    """The escalations by number (from the one sequence), oldest first by opened_at, number."""

    def __init__(self, tx: _Transaction) -> None:
        self._tx = tx

    async def add(self, escalation: Escalation) -> int:
        kept = _kept_escalation(escalation)
        state = self._tx.state
        number = state.next_id()
        state.escalations[number] = kept
        return number

    async def get(self, number: int) -> Escalation | None:
        return self._tx.state.escalations.get(number)

    async def save(self, number: int, escalation: Escalation) -> None:
        kept = _kept_escalation(escalation)
        if number not in self._tx.state.escalations:
            raise LookupError(f"no escalation {number}")
        self._tx.state.escalations[number] = kept

    async def since(self, moment: datetime) -> Sequence[tuple[int, Escalation]]:
        moment = as_utc(moment)
        return self._sorted(lambda e: e.opened_at >= moment)

    async def still_open(self) -> Sequence[tuple[int, Escalation]]:
        return self._sorted(lambda e: not e.state.final)

    def _sorted(self, wanted: Callable[[Escalation], bool]) -> list[tuple[int, Escalation]]:
        found = [(n, e) for n, e in self._tx.state.escalations.items() if wanted(e)]
        return sorted(found, key=lambda item: (item[1].opened_at, item[0]))


def _kept_check(check: MonitoringCheck) -> MonitoringCheck:
    """A check as the store gives it back: its moments UTC."""

    def utc(moment: datetime | None) -> datetime | None:
        return None if moment is None else as_utc(moment)

    return replace(
        check,
        requested_at=utc(check.requested_at),
        answer_before=utc(check.answer_before),
        answered_at=utc(check.answered_at),
    )


class MemoryMonitoringChecks:
    def __init__(self, tx: _Transaction) -> None:
        self._tx = tx

    async def save_many(self, checks: Sequence[MonitoringCheck]) -> None:
        for check in checks:
            if check.month is not None:
                self._tx.state.checks[(check.overdracht_id, check.month)] = _kept_check(check)

    async def get(self, overdracht_id: str, month: int) -> MonitoringCheck | None:
        return self._tx.state.checks.get((overdracht_id, month))

    async def by_request(self, request_id: str) -> MonitoringCheck | None:
        found = (c for c in self._tx.state.checks.values() if c.request_id == request_id)
        return next(found, None)

    async def of_overdracht(self, overdracht_id: str) -> Sequence[MonitoringCheck]:
        found = (c for c in self._tx.state.checks.values() if c.overdracht_id == overdracht_id)
        return sorted(found, key=lambda c: c.month or 0)

    async def requested_between(self, start: datetime, end: datetime) -> Sequence[MonitoringCheck]:
        start, end = as_utc(start), as_utc(end)
        found = [
            c
            for c in self._tx.state.checks.values()
            if c.requested_at is not None and start <= c.requested_at < end
        ]
        return sorted(found, key=lambda c: (c.requested_at, c.request_id or ""))


class MemoryRetentionLog:
    def __init__(self, tx: _Transaction) -> None:
        self._tx = tx

    async def add_many(self, purged: Sequence[Purged]) -> None:
        self._tx.state.purged.extend(replace(p, purged_at=as_utc(p.purged_at)) for p in purged)

    async def recent(self, limit: int) -> Sequence[Purged]:
        return list(reversed(self._tx.state.purged))[: max(limit, 0)]


class MemoryUnitOfWork:
    def __init__(self, tx: _Transaction) -> None:
        self.messages: MessageRepository = MemoryMessages(tx)
        self.inbox: Inbox = MemoryInbox(tx)
        self.outbox: Outbox = MemoryOutbox(tx)
        self.timers: Timers = MemoryTimers(tx)
        self.alerts: Alerts = MemoryAlerts(tx)
        self.rejections: Rejections = MemoryRejections(tx)
        self.ledger: LedgerRepository = MemoryLedger(tx)
        self.handovers: Handovers = MemoryHandovers(tx)
        self.escalations: Escalations = MemoryEscalations(tx)
        self.monitoring: MonitoringChecks = MemoryMonitoringChecks(tx)
        self.retention: RetentionLog = MemoryRetentionLog(tx)


class MemoryStore:
    """The `Store` port in memory: one transaction at a time, staged, applied on commit."""

    def __init__(self, *, lock_timeout: float = 5.0) -> None:
        self._state = _State()
        self._lock = asyncio.Lock()
        self._lock_timeout = lock_timeout

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[UnitOfWork]:
        try:
            await asyncio.wait_for(self._lock.acquire(), self._lock_timeout)
        except TimeoutError as error:
            # As SQLite's busy timeout: another transaction holds the store too long.
            raise TransientError("memory store is locked by another transaction") from error
        tx = _Transaction(self._state.copy())
        try:
            uow = MemoryUnitOfWork(tx)
            yield uow
            await uow.ledger.link()
            self._state = tx.state
        finally:
            tx.end()
            self._lock.release()

    async def close(self) -> None:
        return None
