"""What the hub does with the messages partners send it.

Every delivery goes: verification pipeline (pure) -> the checks that need the
store -> in the caller's ONE transaction: inbox row, domain effect, outbox
rows -> a disposition the transport carries out after the commit (ack, or
dead-letter with the reason). Nothing is acknowledged before it is stored.

The deliveries in flight are handled as one batch: what the store must tell
(inbox, the messages answered) is read for the whole batch at once, each
delivery is decided in order, and what they write goes to the store in one
statement per table. A delivery sees what the ones before it in the batch
decided (a duplicate within the batch, a second confirmation).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from gateway.domain.delivery import UNANSWERED_TYPES, Direction, Status, StatusChange, TimerKind
from gateway.domain.errors import ErrorCode, PermanentError, Rejection
from gateway.domain.threads import answer_problem
from gateway.service import responsibility
from gateway.service.outgoing import Hub, error_for, receipt_for
from gateway.service.pipeline import Accepted, Rejected, verify_message
from gateway.service.ports import (
    InboxEntry,
    MessageKey,
    RejectedMessage,
    StoredMessage,
    UnitOfWork,
)


class Disposition(StrEnum):
    ACK = "ack"  # stored (or a duplicate already stored): acknowledge
    DEAD_LETTER = "dead_letter"  # refused and kept: publish to vtgw.dead with the reason, then ack


@dataclass(frozen=True, slots=True)
class Delivery:
    """One message as a transport received it, with the identity the transport authenticated."""

    raw: bytes
    transport_identity: str
    transport: str = "amqp"


@dataclass(frozen=True, slots=True)
class Handled:
    disposition: Disposition
    message_id: str | None
    sender: str | None
    message_type: str | None
    rejection: Rejection | None = None
    duplicate: bool = False


_LEDGER_TYPES = frozenset({"case.return", "regie.change"})  # their effect needs an open case


def undeliverable_alert(party: str) -> str:
    return f"undeliverable:{party}"


@dataclass
class _Batch:
    """What a batch has seen and decided so far, and what it will write."""

    inbox: dict[MessageKey, InboxEntry]
    originals: dict[MessageKey, StoredMessage]
    new_messages: list[tuple[StoredMessage, StatusChange]] = field(default_factory=list)
    inbox_entries: list[InboxEntry] = field(default_factory=list)
    to_publish: list[MessageKey] = field(default_factory=list)
    status_changes: list[tuple[str, str, StatusChange]] = field(default_factory=list)
    timers_done: list[MessageKey] = field(default_factory=list)
    heard_from: set[str] = field(default_factory=set)
    opened_cases: set[str] = field(default_factory=set)
    thread_types: dict[str, list[str]] = field(default_factory=dict)

    def send(self, message: StoredMessage, now: datetime) -> None:
        self.new_messages.append((message, StatusChange(Status.QUEUED, now)))
        self.to_publish.append((message.sender, message.id))
        self.thread_types.setdefault(message.thread, []).append(message.type)

    async def write(self, uow: UnitOfWork, now: datetime) -> None:
        await uow.messages.add_many(self.new_messages)
        await uow.inbox.add_many(self.inbox_entries)
        await uow.outbox.enqueue_many(self.to_publish, now)
        await uow.messages.record_many(self.status_changes)
        await uow.timers.cancel_many(TimerKind.RECEIPT, self.timers_done, now)
        for party in sorted(self.heard_from):  # the partner is heard from again
            await uow.alerts.close(undeliverable_alert(party), now)


async def receive_batch(
    uow: UnitOfWork, hub: Hub, deliveries: Sequence[Delivery], now: datetime
) -> list[Handled]:
    """Verify, store and answer the deliveries in flight, inside the caller's transaction."""
    outcomes = [
        verify_message(
            d.raw, transport_identity=d.transport_identity, now=now, verifier=hub.verifier
        )
        for d in deliveries
    ]
    accepted = [o.envelope for o in outcomes if isinstance(o, Accepted)]
    inbox = await uow.inbox.get_many([(e.sender, e.id) for e in accepted])
    originals = await uow.messages.get_many(
        [(hub.party, e.reply_to) for e in accepted if e.reply_to is not None]
    )
    # Every case the batch may touch is held at once, before any of its handover rows:
    # batches on other cases go on beside this one, and none waits for another in a cycle.
    await uow.ledger.hold(
        {e.case.ref for e in accepted if e.case is not None}
        | {m.case_ref for m in originals.values() if m.case_ref is not None}
    )
    batch = _Batch(
        inbox=inbox,
        originals=originals,
        opened_cases=await uow.ledger.opened(
            [e.case.ref for e in accepted if e.case is not None and e.type in _LEDGER_TYPES]
        ),
    )
    handled = [
        await _decide(uow, hub, batch, delivery, outcome, now=now)
        for delivery, outcome in zip(deliveries, outcomes, strict=True)
    ]
    await batch.write(uow, now)
    return handled


async def receive(uow: UnitOfWork, hub: Hub, delivery: Delivery, now: datetime) -> Handled:
    """One delivery: a batch of one."""
    (handled,) = await receive_batch(uow, hub, [delivery], now)
    return handled


async def _decide(
    uow: UnitOfWork,
    hub: Hub,
    batch: _Batch,
    delivery: Delivery,
    outcome: Accepted | Rejected,
    *,
    now: datetime,
) -> Handled:
    if isinstance(outcome, Rejected):
        return await _reject(uow, hub, batch, delivery, outcome, now=now)
    envelope = outcome.envelope
    seen = batch.inbox.get((envelope.sender, envelope.id))
    if seen is not None:
        return await _duplicate(uow, hub, batch, delivery, outcome, seen=seen, now=now)
    original = await _original(uow, hub, batch, outcome)
    if isinstance(original, Rejection):
        return await _reject(uow, hub, batch, delivery, _refused(outcome, original), now=now)
    try:
        await responsibility.partner_sends(
            uow,
            envelope,
            digest=outcome.digest,
            answered=original,
            hub=hub,
            at=now,
            opened_cases=batch.opened_cases,
        )
    except PermanentError as refused:  # the handover's rules (§8.5) refuse it
        return await _reject(
            uow, hub, batch, delivery, _refused(outcome, refused.rejection), now=now
        )
    _store(hub, batch, delivery, outcome, now)
    _effect(batch, outcome, original, now)
    batch.heard_from.add(envelope.sender)
    return Handled(Disposition.ACK, envelope.id, envelope.sender, envelope.type, None)


async def _original(
    uow: UnitOfWork, hub: Hub, batch: _Batch, accepted: Accepted
) -> StoredMessage | Rejection | None:
    """The hub's message an answer replies to; UNKNOWN_THREAD when we never sent it to them."""
    envelope = accepted.envelope
    if envelope.reply_to is None:
        return None
    original = batch.originals.get((hub.party, envelope.reply_to))
    if original is None or original.recipient != envelope.sender:
        return Rejection(
            ErrorCode.UNKNOWN_THREAD, "reply_to names no message the gateway sent you", "/reply_to"
        )
    if original.thread != envelope.thread:
        return Rejection(
            ErrorCode.UNKNOWN_THREAD, "thread differs from the answered message's", "/thread"
        )
    if envelope.type in UNANSWERED_TYPES:
        return original
    stored = [m.type for m in await uow.messages.in_thread(envelope.thread)]
    in_thread = stored + batch.thread_types.get(envelope.thread, [])
    problem = answer_problem(envelope.type, original.type, in_thread)
    return problem or original


def _store(hub: Hub, batch: _Batch, delivery: Delivery, accepted: Accepted, now: datetime) -> None:
    """The message, its inbox row and (unless it is a receipt or error) our receipt."""
    envelope = accepted.envelope
    message = StoredMessage(
        id=envelope.id,
        sender=envelope.sender,
        recipient=envelope.recipient,
        type=envelope.type,
        thread=envelope.thread,
        reply_to=envelope.reply_to,
        case_ref=envelope.case.ref if envelope.case else None,
        gemeente=envelope.case.gemeente if envelope.case else None,
        direction=Direction.IN,
        digest=accepted.digest,
        raw=delivery.raw,
        sent_at=envelope.sent_at,
        created_at=now,
        status=Status.RECEIVED,
    )
    evidence = {"transport": delivery.transport, "identity": delivery.transport_identity}
    batch.new_messages.append((message, StatusChange(Status.RECEIVED, now, evidence)))
    batch.thread_types.setdefault(envelope.thread, []).append(envelope.type)
    receipt_id = None
    if envelope.type not in UNANSWERED_TYPES:
        receipt = receipt_for(
            hub,
            sender=envelope.sender,
            message_id=envelope.id,
            thread=envelope.thread,
            message_digest=accepted.digest,
            now=now,
        )
        batch.send(receipt, now)
        receipt_id = receipt.id
    entry = InboxEntry(envelope.sender, envelope.id, accepted.digest, receipt_id, now)
    batch.inbox_entries.append(entry)
    batch.inbox[(envelope.sender, envelope.id)] = entry


def _effect(
    batch: _Batch, accepted: Accepted, original: StoredMessage | None, now: datetime
) -> None:
    """What a receipt or an error does to the message it answers."""
    envelope = accepted.envelope
    if original is None or original.status.final:
        return
    key = (original.sender, original.id)
    if envelope.type == "receipt":
        if envelope.body.get("digest") != original.digest:
            return  # a receipt of other bytes proves nothing; it stays stored as evidence
        evidence = {"receipt": envelope.id, "digest": original.digest}
        batch.status_changes.append((*key, StatusChange(Status.DELIVERED, now, evidence)))
        batch.timers_done.append(key)
    elif envelope.type == "error":
        evidence = {"error": envelope.id, "code": str(envelope.body.get("code", ""))}
        batch.status_changes.append((*key, StatusChange(Status.REFUSED, now, evidence)))
        batch.timers_done.append(key)


async def _duplicate(
    uow: UnitOfWork,
    hub: Hub,
    batch: _Batch,
    delivery: Delivery,
    accepted: Accepted,
    *,
    seen: InboxEntry,
    now: datetime,
) -> Handled:
    """Same id again: the same digest gets the original receipt again; another digest a conflict."""
    envelope = accepted.envelope
    if seen.digest != accepted.digest:
        conflict = Rejection(
            ErrorCode.DUPLICATE_CONFLICT, "this id was received before with another digest", "/id"
        )
        return await _reject(uow, hub, batch, delivery, _refused(accepted, conflict), now=now)
    if seen.receipt_id is not None:
        batch.to_publish.append((hub.party, seen.receipt_id))
    return Handled(Disposition.ACK, envelope.id, envelope.sender, envelope.type, duplicate=True)


def _refused(accepted: Accepted, rejection: Rejection) -> Rejected:
    envelope = accepted.envelope
    notify = None if envelope.type in UNANSWERED_TYPES else envelope.sender
    return Rejected(rejection, notify, envelope.id, envelope.thread)


async def _reject(
    uow: UnitOfWork,
    hub: Hub,
    batch: _Batch,
    delivery: Delivery,
    rejected: Rejected,
    *,
    now: datetime,
) -> Handled:
    """Keep the refused message whole; tell the sender where it can be known."""
    error_id = None
    if rejected.notify is not None and rejected.message_id is not None:
        error = error_for(
            hub,
            recipient=rejected.notify,
            message_id=rejected.message_id,
            thread=rejected.thread or rejected.message_id,
            rejection=rejected.rejection,
            now=now,
        )
        batch.send(error, now)
        error_id = error.id
    await uow.rejections.add(
        RejectedMessage(
            received_at=now,
            transport=delivery.transport,
            transport_identity=delivery.transport_identity,
            code=rejected.code.value,
            detail=rejected.rejection.detail,
            pointer=rejected.rejection.pointer,
            raw=delivery.raw,
            message_id=rejected.message_id,
            sender=rejected.notify,
            error_id=error_id,
        )
    )
    return Handled(
        Disposition.DEAD_LETTER, rejected.message_id, rejected.notify, None, rejected.rejection
    )
