"""What the partner's adapter does with each message from its inbox, up to the ack decision.

The path of one message:

    verify (the pipeline) -> dedupe (the ledger) -> hand over (webhook or folder)
    -> publish the signed receipt (confirmed) -> ACK

Transport identity: a partner's broker user may only write `vtgw.in`; only
the gateway can publish to `vtgw.out`, so whatever lies in the partner's own
inbox `vtgw.out.<party>` was put there by the hub. It is verified with
`transport_identity` = the hub's party id (`contracts.hub.party`, "vt-gz")
and `receiving_party` = the partner's own party id: a message signed by
anyone else is SENDER_MISMATCH, one addressed to another party NOT_PERMITTED.

Idempotency (PROTOCOL.md): the same id with the same digest again gets the
same receipt again (the stored bytes) and is handed over only if it was not
yet; the same id with another digest is refused with DUPLICATE_CONFLICT.

Refusals: a refused message is kept in the rejected folder with its reason
and answered with a signed `error` where the pipeline says whom to notify
(never for a receipt or an error, so no two systems can loop), then acked.

`receive` never acks: it returns a `Received` with its `Settlement`, and the
agent carries that out in one place. RETRY means: nothing is lost, the
delivery goes back to the queue after a pause (the partner's system was not
reachable, the broker did not confirm our receipt, the disk failed).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

import structlog

from adapters.amqp.partner.answers import AnswerSender
from adapters.amqp.partner.courier import Courier
from adapters.amqp.partner.handoff import HandedMessage, Handoff, HandoffError
from adapters.amqp.partner.ledger import Handover, PartnerLedger, ReceivedMessage
from adapters.amqp.partner.messages import Partner, encode, error_for, receipt_for
from adapters.amqp.partner.rejected import RejectedFolder, RejectedMessage
from gateway.domain.delivery import UNANSWERED_TYPES
from gateway.domain.errors import ErrorCode, GatewayError, PermanentError, Rejection
from gateway.service.pipeline import Accepted, Rejected, verify_message

log = structlog.get_logger("vtgw.partner.inbox")

Clock = Callable[[], datetime]


class Settlement(StrEnum):
    """What becomes of the AMQP delivery."""

    ACK = "ack"  # handed over and receipted, a known duplicate, or refused and kept
    RETRY = "retry"  # not done: back to the queue after a pause


@dataclass(frozen=True, slots=True)
class Received:
    """The outcome of one delivery: what to do with it, and what to log."""

    settlement: Settlement
    outcome: str  # handed_over | duplicate | receipt | rejected | handoff_failed | ...
    message_id: str | None = None
    message_type: str | None = None
    code: str | None = None


class PartnerInbox:
    """Verifies, dedupes, hands over and receipts the messages VT sends the partner."""

    def __init__(
        self,
        partner: Partner,
        *,
        ledger: PartnerLedger,
        handoff: Handoff,
        courier: Courier,
        rejected: RejectedFolder,
        answers: AnswerSender,
        clock: Clock,
    ) -> None:
        self._partner = partner
        self._ledger = ledger
        self._handoff = handoff
        self._courier = courier
        self._rejected = rejected
        self._answers = answers
        self._clock = clock
        self._locks = _KeyedLocks()

    async def receive(self, raw: bytes) -> Received:
        """Everything for one message, short of the ack itself."""
        now = self._clock()
        outcome = verify_message(
            raw,
            transport_identity=self._partner.hub,
            now=now,
            verifier=self._partner.verifier,
        )
        if isinstance(outcome, Rejected):
            return await self._refuse(raw, outcome, now)
        envelope = outcome.envelope
        async with self._locks.hold(envelope.sender, envelope.id):
            seen = await self._ledger.received(envelope.sender, envelope.id)
            if seen is not None and seen.digest != outcome.digest:
                return await self._refuse(raw, _conflict(outcome), now)
            duplicate = seen is not None
            if seen is None:
                seen = await self._ledger.add_received(self._record(outcome, now))
            return await self._complete(seen, outcome, raw, duplicate=duplicate)

    async def _complete(
        self, seen: ReceivedMessage, accepted: Accepted, raw: bytes, *, duplicate: bool
    ) -> Received:
        """The steps not yet done for this message: effect, handover, receipt."""
        envelope = accepted.envelope
        if envelope.type == "receipt":
            await self._answers.on_receipt(envelope)
        elif envelope.type == "error":
            await self._answers.on_error(envelope)
        handed_over = False
        if seen.handover is Handover.PENDING:
            message = HandedMessage(
                envelope.id, envelope.type, envelope.sender, envelope.thread, seen.digest, raw
            )
            try:
                await self._handoff.hand_over(message)
            except HandoffError as exc:
                log.warning(
                    "handoff_failed", message_id=envelope.id, type=envelope.type, error=str(exc)
                )
                return Received(Settlement.RETRY, "handoff_failed", envelope.id, envelope.type)
            await self._ledger.mark_handed_over(envelope.sender, envelope.id, self._clock())
            handed_over = True
        if seen.receipt_raw is not None and seen.receipt_id is not None:
            try:
                await self._courier.send(
                    seen.receipt_raw, message_id=seen.receipt_id, message_type="receipt"
                )
            except GatewayError as exc:
                log.warning(
                    "receipt_not_sent", message_id=envelope.id, type=envelope.type, error=str(exc)
                )
                return Received(Settlement.RETRY, "receipt_not_sent", envelope.id, envelope.type)
            await self._ledger.mark_receipt_sent(envelope.sender, envelope.id, self._clock())
        if duplicate and not handed_over:
            outcome = "duplicate"
        elif envelope.type == "receipt":
            outcome = "receipt"
        else:
            outcome = "handed_over"
        return Received(Settlement.ACK, outcome, envelope.id, envelope.type)

    def _record(self, accepted: Accepted, now: datetime) -> ReceivedMessage:
        """A new message's ledger row, with its receipt (none for a receipt or an error)."""
        envelope = accepted.envelope
        receipt = None
        if envelope.type not in UNANSWERED_TYPES:
            receipt = receipt_for(
                self._partner,
                message_id=envelope.id,
                thread=envelope.thread,
                message_digest=accepted.digest,
                now=now,
            )
        return ReceivedMessage(
            sender=envelope.sender,
            id=envelope.id,
            type=envelope.type,
            digest=accepted.digest,
            thread=envelope.thread,
            case=envelope.case,
            received_at=now,
            handover=Handover.NOT_NEEDED if envelope.type == "receipt" else Handover.PENDING,
            receipt_id=None if receipt is None else receipt.id,
            receipt_raw=None if receipt is None else encode(receipt),
        )

    async def _refuse(self, raw: bytes, rejected: Rejected, now: datetime) -> Received:
        """Keep the refused message, tell VT with a signed error where that is allowed, ack."""
        error = None
        if rejected.notify is not None and rejected.message_id is not None:
            try:
                error = error_for(
                    self._partner,
                    message_id=rejected.message_id,
                    thread=rejected.thread or rejected.message_id,
                    rejection=rejected.rejection,
                    now=now,
                )
            except PermanentError as exc:  # our own error would not pass: keep the message only
                log.exception("error_not_buildable", message_id=rejected.message_id, error=str(exc))
        kept = RejectedMessage(
            raw=raw,
            rejection=rejected.rejection,
            message_id=rejected.message_id,
            thread=rejected.thread,
            received_at=now,
            transport_identity=self._partner.hub,
            error_id=None if error is None else error.id,
        )
        code = rejected.code.value
        try:
            await self._rejected.keep(kept)
            if error is not None:
                await self._courier.send(encode(error), message_id=error.id, message_type="error")
        except GatewayError as exc:
            log.warning("rejection_not_done", message_id=rejected.message_id, error=str(exc))
            return Received(Settlement.RETRY, "rejection_not_done", rejected.message_id, code=code)
        log.info(
            "message_rejected",
            message_id=rejected.message_id,
            code=code,
            pointer=rejected.rejection.pointer,
            error_id=kept.error_id,
        )
        return Received(Settlement.ACK, "rejected", rejected.message_id, code=code)


def _conflict(accepted: Accepted) -> Rejected:
    """The same id again with other bytes: DUPLICATE_CONFLICT (receipts and errors: not told)."""
    envelope = accepted.envelope
    notify = None if envelope.type in UNANSWERED_TYPES else envelope.sender
    rejection = Rejection(
        ErrorCode.DUPLICATE_CONFLICT, "this id was received before with another digest", "/id"
    )
    return Rejected(rejection, notify, envelope.id, envelope.thread)


class _KeyedLocks:
    """One lock per message: two deliveries of the same id are handled one after the other."""

    def __init__(self) -> None:
        self._locks: dict[tuple[str, str], tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def hold(self, sender: str, message_id: str) -> AsyncIterator[None]:
        k = (sender, message_id)
        lock, users = self._locks.get(k, (asyncio.Lock(), 0))
        self._locks[k] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[k]
            if users == 1:
                del self._locks[k]
            else:
                self._locks[k] = (lock, users - 1)
