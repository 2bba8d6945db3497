"""What the hub does with each message a partner sends it.

Every delivery goes: verification pipeline (pure) -> the checks that need the
store -> in the caller's ONE transaction: inbox row, domain effect, outbox
rows -> a disposition the transport carries out after the commit (ack, or
dead-letter with the reason). Nothing is acknowledged before it is stored.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from gateway.domain.delivery import UNANSWERED_TYPES, Direction, Status, StatusChange, TimerKind
from gateway.domain.errors import ErrorCode, Rejection
from gateway.domain.threads import answer_problem
from gateway.service.outgoing import Hub, error_for, receipt_for, send
from gateway.service.pipeline import Accepted, Rejected, verify_message
from gateway.service.ports import InboxEntry, RejectedMessage, StoredMessage, UnitOfWork


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


def undeliverable_alert(party: str) -> str:
    return f"undeliverable:{party}"


async def receive(uow: UnitOfWork, hub: Hub, delivery: Delivery, now: datetime) -> Handled:
    """Verify, store and answer one delivery inside the caller's transaction."""
    outcome = verify_message(
        delivery.raw,
        transport_identity=delivery.transport_identity,
        now=now,
        verifier=hub.verifier,
    )
    if isinstance(outcome, Rejected):
        return await _reject(uow, hub, delivery, outcome, now)
    envelope = outcome.envelope
    seen = await uow.inbox.get(envelope.sender, envelope.id)
    if seen is not None:
        return await _duplicate(uow, hub, delivery, outcome, seen=seen, now=now)
    original = await _original(uow, hub, outcome)
    if isinstance(original, Rejection):
        return await _reject(uow, hub, delivery, _refused(outcome, original), now)
    await _store(uow, hub, delivery, outcome, now)
    await _effect(uow, outcome, original, now)
    await uow.alerts.close(undeliverable_alert(envelope.sender), now)
    return Handled(Disposition.ACK, envelope.id, envelope.sender, envelope.type, None)


async def _original(
    uow: UnitOfWork, hub: Hub, accepted: Accepted
) -> StoredMessage | Rejection | None:
    """The hub's message an answer replies to; UNKNOWN_THREAD when we never sent it to them."""
    envelope = accepted.envelope
    if envelope.reply_to is None:
        return None
    original = await uow.messages.get(hub.party, envelope.reply_to)
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
    thread = await uow.messages.in_thread(envelope.thread)
    problem = answer_problem(envelope.type, original.type, [m.type for m in thread])
    return problem or original


async def _store(
    uow: UnitOfWork, hub: Hub, delivery: Delivery, accepted: Accepted, now: datetime
) -> None:
    """The message, its inbox row and (unless it is a receipt or error) our receipt."""
    envelope = accepted.envelope
    await uow.messages.add(
        StoredMessage(
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
        ),
        StatusChange(
            Status.RECEIVED,
            now,
            {"transport": delivery.transport, "identity": delivery.transport_identity},
        ),
    )
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
        await send(uow, receipt, now)
        receipt_id = receipt.id
    await uow.inbox.add(InboxEntry(envelope.sender, envelope.id, accepted.digest, receipt_id, now))


async def _effect(
    uow: UnitOfWork, accepted: Accepted, original: StoredMessage | None, now: datetime
) -> None:
    """What a receipt or an error does to the message it answers."""
    envelope = accepted.envelope
    if original is None or original.status.final:
        return
    if envelope.type == "receipt":
        if envelope.body.get("digest") != original.digest:
            return  # a receipt of other bytes proves nothing; it stays stored as evidence
        evidence = {"receipt": envelope.id, "digest": original.digest}
        await uow.messages.record(
            original.sender, original.id, StatusChange(Status.DELIVERED, now, evidence)
        )
        await uow.timers.cancel(TimerKind.RECEIPT, original.sender, original.id)
    elif envelope.type == "error":
        evidence = {"error": envelope.id, "code": str(envelope.body.get("code", ""))}
        await uow.messages.record(
            original.sender, original.id, StatusChange(Status.REFUSED, now, evidence)
        )
        await uow.timers.cancel(TimerKind.RECEIPT, original.sender, original.id)


async def _duplicate(
    uow: UnitOfWork,
    hub: Hub,
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
        return await _reject(uow, hub, delivery, _refused(accepted, conflict), now)
    if seen.receipt_id is not None:
        await uow.outbox.enqueue(hub.party, seen.receipt_id, now)
    return Handled(Disposition.ACK, envelope.id, envelope.sender, envelope.type, duplicate=True)


def _refused(accepted: Accepted, rejection: Rejection) -> Rejected:
    envelope = accepted.envelope
    notify = None if envelope.type in UNANSWERED_TYPES else envelope.sender
    return Rejected(rejection, notify, envelope.id, envelope.thread)


async def _reject(
    uow: UnitOfWork, hub: Hub, delivery: Delivery, rejected: Rejected, now: datetime
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
        await send(uow, error, now)
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


async def receive_batch(
    uow: UnitOfWork, hub: Hub, deliveries: Sequence[Delivery], now: datetime
) -> list[Handled]:
    """Several deliveries in one transaction (one commit for the messages in flight).

    A (sender, id) seen twice within the batch is handled by the inbox as any
    duplicate is, because each delivery's rows are written before the next
    delivery is looked at.
    """
    return [await receive(uow, hub, delivery, now) for delivery in deliveries]
