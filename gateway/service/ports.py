"""The ports the service layer needs from the outside world, as Protocols.

The store is one unit of work per transaction: everything a message causes
(its inbox row, its domain effect, the outbox rows of what it makes us send)
is written together or not at all. Adapters translate their library's
errors at the edge: a failure that may pass (database away, lock timeout)
raises `TransientError`; a unique-key conflict on the inbox is a
`DuplicateMessageError`.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Protocol

from gateway.domain.delivery import Direction, Status, StatusChange, TimerKind
from gateway.domain.errors import GatewayError
from gateway.domain.escalation import Escalation
from gateway.domain.handover import Overdracht
from gateway.domain.ledger import LedgerEntry
from gateway.domain.monitoring import MonitoringCheck


class DuplicateMessageError(GatewayError):
    """The inbox already holds this (sender, id)."""


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """A message as the gateway keeps it: its envelope's addressing, digest and bytes.

    Unique on (sender, id). `raw` is the exact bytes as received or as sent
    (a resend publishes the same bytes). `status` is the latest status.
    """

    id: str
    sender: str
    recipient: str
    type: str
    thread: str
    reply_to: str | None
    case_ref: str | None
    gemeente: str | None
    direction: Direction
    digest: str
    raw: bytes
    sent_at: datetime
    created_at: datetime
    status: Status
    attempts: int = 0


@dataclass(frozen=True, slots=True)
class InboxEntry:
    """A message the gateway accepted: (sender, id) once, with its digest and our receipt's id."""

    sender: str
    message_id: str
    digest: str
    receipt_id: str | None
    received_at: datetime


@dataclass(frozen=True, slots=True)
class OutboxItem:
    """A message to publish: which one, to whom, its bytes, and its outbox row."""

    outbox_id: int
    sender: str
    message_id: str
    recipient: str
    type: str
    raw: bytes


@dataclass(frozen=True, slots=True)
class Timer:
    """A deadline the gateway follows: what it is about, when it is due, the rule that made it."""

    kind: TimerKind
    subject_sender: str
    subject_id: str
    due_at: datetime
    rule: str
    attempt: int = 1  # receipt timers: the attempt waited for; monitoring: months after handover
    timer_id: int | None = None


@dataclass(frozen=True, slots=True)
class Alert:
    """A condition staff must see: opened once, closed once, keyed by what it is about."""

    key: str
    detail: str
    opened_at: datetime
    closed_at: datetime | None = None
    alert_id: int | None = None


@dataclass(frozen=True, slots=True)
class RejectedMessage:
    """A refused message, kept whole for inspection, with why."""

    received_at: datetime
    transport: str
    transport_identity: str
    code: str
    detail: str
    pointer: str
    raw: bytes
    message_id: str | None = None
    sender: str | None = None
    error_id: str | None = None  # the id of the `error` we sent back, if any
    headers: Mapping[str, str] = field(default_factory=dict)


MessageKey = tuple[str, str]  # (sender, id): unique per message


class MessageRepository(Protocol):
    async def add(self, message: StoredMessage, change: StatusChange) -> None:
        """Store a new message with its first status."""

    async def add_many(self, items: Sequence[tuple[StoredMessage, StatusChange]]) -> None:
        """Store several new messages at once (a batch's one round trip per table).

        DuplicateMessageError when one is stored already; the transaction is
        then to be abandoned.
        """

    async def get_many(self, keys: Sequence[MessageKey]) -> dict[MessageKey, StoredMessage]:
        """The stored ones among these messages, by (sender, id)."""

    async def record_many(self, changes: Sequence[tuple[str, str, StatusChange]]) -> None:
        """`record` for several (sender, id, change) at once, in order."""

    async def record(self, sender: str, message_id: str, change: StatusChange) -> None:
        """Append a status to a message's history and make it the current status."""

    async def get(self, sender: str, message_id: str) -> StoredMessage | None: ...

    async def find(self, message_id: str) -> Sequence[StoredMessage]:
        """Every message with this id, whoever sent it."""

    async def history(self, sender: str, message_id: str) -> Sequence[StatusChange]:
        """The status history, oldest first."""

    async def in_thread(self, thread: str) -> Sequence[StoredMessage]:
        """The messages of a thread, oldest first."""

    async def replies_to(self, message_id: str) -> Sequence[StoredMessage]:
        """The messages whose reply_to is this id, oldest first."""

    async def count_attempt(self, sender: str, message_id: str) -> int:
        """Add one to the message's attempts and return the new count."""

    async def purge(self, keys: Sequence[MessageKey]) -> int:
        """Remove these messages whole (rows, status history, outbox and inbox rows); how many.

        Only the retention purge calls it, and only for final messages.
        """


class Inbox(Protocol):
    async def get(self, sender: str, message_id: str) -> InboxEntry | None: ...

    async def get_many(self, keys: Sequence[MessageKey]) -> dict[MessageKey, InboxEntry]:
        """The entries held among these (sender, id)."""

    async def add_many(self, entries: Sequence[InboxEntry]) -> None:
        """Several entries at once; DuplicateMessageError when one is already there."""

    async def add(self, entry: InboxEntry) -> None:
        """Raises DuplicateMessageError when (sender, id) is already there."""


class Outbox(Protocol):
    async def enqueue(self, sender: str, message_id: str, at: datetime) -> None:
        """Put a stored message in line for publishing (again, for a resend)."""

    async def enqueue_many(self, keys: Sequence[MessageKey], at: datetime) -> None:
        """`enqueue` for several stored messages at once, in this order."""

    async def claim(
        self, *, limit: int, now: datetime, lease: timedelta, claimer: str
    ) -> Sequence[OutboxItem]:
        """Rows nobody holds, oldest first, held for `lease` (SKIP LOCKED where it exists)."""

    async def published(self, outbox_ids: Sequence[int], at: datetime) -> None:
        """Done with these rows."""

    async def depth(self) -> int:
        """Rows not yet published."""


class Timers(Protocol):
    async def schedule(self, timer: Timer) -> None: ...

    async def claim_due(
        self, *, now: datetime, limit: int, lease: timedelta, claimer: str
    ) -> Sequence[Timer]:
        """Due timers nobody holds, earliest first, held for `lease`."""

    async def done(self, timer_id: int, at: datetime) -> None:
        """The timer fired and its effect is written (same transaction)."""

    async def cancel(
        self, kind: TimerKind, subject_sender: str, subject_id: str, at: datetime
    ) -> int:
        """Cancel, at `at`, the pending timers of this kind for this message; how many."""

    async def cancel_many(
        self, kind: TimerKind, subjects: Sequence[MessageKey], at: datetime
    ) -> None:
        """`cancel` for several messages at once."""

    async def schedule_many(self, timers: Sequence[Timer]) -> None:
        """`schedule` for several timers at once."""

    async def pending(self, subject_sender: str, subject_id: str) -> Sequence[Timer]: ...


class Alerts(Protocol):
    async def open(self, key: str, detail: str, at: datetime) -> bool:
        """Open the alert unless one with this key is open; True when it opened now."""

    async def close(self, key: str, at: datetime) -> bool:
        """Close the open alert with this key; True when one was open."""

    async def open_alerts(self) -> Sequence[Alert]: ...

    async def all_alerts(self, key: str) -> Sequence[Alert]:
        """Every alert with this key, open and closed, oldest first."""


class Rejections(Protocol):
    async def add(self, rejected: RejectedMessage) -> int:
        """Keep a refused message; its row id."""

    async def recent(self, limit: int) -> Sequence[RejectedMessage]: ...


class LedgerRepository(Protocol):
    """The responsibility ledger's entries: one hash chain over all cases.

    A transaction extends a case in three steps: `hold` the case, read its
    `last_of`, `append` the entry decided on it (`decided_entry`). The store
    links the appended entries into the one chain (sequence, previous hash,
    hash) when the transaction commits, holding the chain only for that
    moment: transactions on different cases do not wait for each other, two
    on one case take turns.
    """

    async def head(self) -> LedgerEntry | None:
        """The chain's last linked entry."""

    async def hold(self, case_refs: Collection[str]) -> None:
        """These cases are this transaction's to extend until it ends: another that holds
        one of them waits (PostgreSQL; one writer at a time already elsewhere). Hold a
        case before reading its last entry to decide on it, and before a handover row."""

    async def last_of(self, case_ref: str) -> LedgerEntry | None:
        """The case's latest entry, one appended in this transaction included."""

    async def opened(self, case_refs: Sequence[str]) -> set[str]:
        """Those of these cases that have entries (one read for a batch)."""

    async def history(self, case_ref: str) -> Sequence[LedgerEntry]:
        """The case's entries, oldest first, those appended in this transaction last."""

    async def append(self, entry: LedgerEntry) -> None:
        """Keep `entry`, decided on the case's `last_of`, to be linked when the transaction
        commits; until then its sequence and hashes are those `decided_entry` left open."""

    async def link(self) -> Sequence[LedgerEntry]:
        """Link the entries appended so far now, in order, and give them as linked (the
        chain is then held until the transaction ends); the store calls it at commit."""

    async def entries(self, *, after: int, limit: int) -> Sequence[LedgerEntry]:
        """Entries with a sequence above `after`, in order (for verifying the chain)."""


class Handovers(Protocol):
    """The overdrachten and their lifecycle, by the id of their overdracht.notice."""

    async def get(self, overdracht_id: str) -> Overdracht | None:
        """The handover, held until the transaction ends (its case first, then its row)."""

    async def hold_cases_of(self, overdracht_ids: Collection[str]) -> None:
        """Hold the cases of these handovers all at once (ids of none are passed over): a
        transaction about to get several takes their cases in one order, as others do."""

    async def save(self, overdracht: Overdracht) -> None:
        """Insert or replace."""

    async def of_case(self, case_ref: str) -> Sequence[Overdracht]: ...

    async def still_open(self) -> Sequence[Overdracht]:
        """The overdrachten in no final state (sent, delivered, deferred)."""

    async def open_due_through(
        self, last_day: date, *, limit: int, after: tuple[date, str] | None = None
    ) -> Sequence[Overdracht]:
        """Open overdrachten whose deadline (`Overdracht.deadline`) is on or before `last_day`,
        by deadline then id, at most `limit`; after the (deadline, id) `after` if given."""

    async def opened_between(self, start: datetime, end: datetime) -> Sequence[Overdracht]:
        """The overdrachten whose notice went out in [start, end), oldest first."""


class Escalations(Protocol):
    """Escalations (§8.6, annex 4) with their history, by a number the store gives."""

    async def add(self, escalation: Escalation) -> int:
        """Keep a new escalation; its number."""

    async def get(self, number: int) -> Escalation | None: ...

    async def save(self, number: int, escalation: Escalation) -> None:
        """Replace an escalation's state and history."""

    async def since(self, moment: datetime) -> Sequence[tuple[int, Escalation]]:
        """Escalations opened at or after `moment`, oldest first."""

    async def still_open(self) -> Sequence[tuple[int, Escalation]]:
        """Escalations in no final state, oldest first."""


class MonitoringChecks(Protocol):
    """The monitoring checks of confirmed handovers (§7.1), by (overdracht, month)."""

    async def save_many(self, checks: Sequence[MonitoringCheck]) -> None:
        """Insert or replace each check; `month` None is not kept (extra checks are ad hoc)."""

    async def get(self, overdracht_id: str, month: int) -> MonitoringCheck | None: ...

    async def by_request(self, request_id: str) -> MonitoringCheck | None:
        """The check a monitoring.request asked for."""

    async def of_overdracht(self, overdracht_id: str) -> Sequence[MonitoringCheck]:
        """A handover's checks, by month."""

    async def requested_between(self, start: datetime, end: datetime) -> Sequence[MonitoringCheck]:
        """The checks whose request went out in [start, end), oldest first."""


@dataclass(frozen=True, slots=True)
class Purged:
    """The audit of one message the retention purge removed: what it was, never its content."""

    sender: str
    message_id: str
    type: str
    recipient: str
    case_ref: str | None
    gemeente: str | None
    digest: str
    status: str
    retained_until: date
    purged_at: datetime
    rule: str


class RetentionLog(Protocol):
    """What the retention purge removed (§5.1), append-only."""

    async def add_many(self, purged: Sequence[Purged]) -> None: ...

    async def recent(self, limit: int) -> Sequence[Purged]:
        """The latest purges, newest first."""


class UnitOfWork(Protocol):
    """One transaction's view of the store."""

    messages: MessageRepository
    inbox: Inbox
    outbox: Outbox
    timers: Timers
    alerts: Alerts
    rejections: Rejections
    ledger: LedgerRepository
    handovers: Handovers
    escalations: Escalations
    monitoring: MonitoringChecks
    retention: RetentionLog


class Store(Protocol):
    def transaction(self) -> AbstractAsyncContextManager[UnitOfWork]:
        """A unit of work: committed when the block ends, rolled back when it raises."""

    async def close(self) -> None: ...


class Publisher(Protocol):
    """The transport's publishing side, used by the outbox relay."""

    async def publish(self, item: OutboxItem) -> None:
        """Publish and wait for the broker's confirm; raise TransientError when it fails."""
