"""The partner's answers to VT: signed, stored, sent, and sent again until VT's receipt comes.

The partner's system gives `{"type", "reply_to", "body"}` (over the local HTTP
endpoint or as a file in the outbox folder). `AnswerSender` fills in the
rest from the answered message (`thread`, `case`; `recipient` is always VT),
gives it a new `id` and `sent_at`, signs it with the partner's key, checks it
against the hub's schema and contracts, stores its exact bytes, and only then
publishes it. Stored first: an answer the broker did not take is tried again,
not lost.

Level 2 of PROTOCOL.md's acknowledgements, from the partner's side: when VT's
receipt (with the digest of what we sent) does not come within the receipt
timeout, the same bytes are sent again (same `id`, original `sent_at`), the
wait doubling each time, up to the attempt limit; then the answer is
`undeliverable` and logged as an error. A signed `error` from VT ends it as
`refused`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog

from adapters.amqp.partner.courier import Courier
from adapters.amqp.partner.ledger import Answer, AnswerStatus, DuplicateSourceError, PartnerLedger
from adapters.amqp.partner.messages import AnswerRequest, Partner, build_answer, encode
from gateway.domain.canonical import digest
from gateway.domain.delivery import next_attempt_due
from gateway.domain.envelope import Envelope
from gateway.domain.errors import ErrorCode, GatewayError, PermanentError

log = structlog.get_logger("vtgw.partner.answers")

Clock = Callable[[], datetime]


@dataclass(frozen=True, slots=True)
class ResendPolicy:
    """How long to wait for VT's receipt, how many sends in all, and the pause after a failure."""

    receipt_timeout: timedelta
    attempt_limit: int
    retry_after_failure: timedelta = timedelta(seconds=5)

    def __post_init__(self) -> None:
        if self.receipt_timeout <= timedelta(0) or self.attempt_limit < 1:
            raise ValueError("the receipt timeout must be positive and the attempt limit >= 1")


class AnswerSender:
    """Builds, stores, sends and resends the partner's answers."""

    def __init__(
        self,
        partner: Partner,
        ledger: PartnerLedger,
        courier: Courier,
        policy: ResendPolicy,
        clock: Clock,
    ) -> None:
        self._partner = partner
        self._ledger = ledger
        self._courier = courier
        self._policy = policy
        self._clock = clock

    async def send(
        self, request: AnswerRequest, *, source: str | None = None, source_hash: str | None = None
    ) -> Answer:
        """Sign, store and publish an answer; the stored answer (status queued or sent).

        `source` names where the answer came from, once: the same source with
        the same `source_hash` returns the answer stored before; with another
        hash it is a DUPLICATE_CONFLICT. Refusals are PermanentError with the
        protocol's code and pointer; nothing is stored for them.
        """
        if source is not None:
            existing = await self._ledger.answer_from(source)
            if existing is not None:
                return _same_source(existing, source_hash)
        answered = await self._ledger.received_by_id(request.reply_to)
        if answered is None or answered.sender != self._partner.hub:
            raise PermanentError(
                ErrorCode.UNKNOWN_THREAD,
                "reply_to names no message received from VT",
                "/reply_to",
            )
        now = self._clock()
        envelope = build_answer(
            self._partner,
            request,
            answered_type=answered.type,
            answered_thread=answered.thread,
            answered_case=answered.case,
            now=now,
            thread_types=await self._ledger.types_in_thread(answered.thread),
        )
        answer = _stored(envelope, now, self._policy, source, source_hash)
        try:
            await self._ledger.add_answer(answer)
        except DuplicateSourceError as duplicate:  # the same source, concurrently
            return _same_source(duplicate.existing, source_hash)
        log.info("answer_stored", message_id=answer.id, type=answer.type, reply_to=answer.reply_to)
        await self._publish(answer, now)
        stored = await self._ledger.answer(answer.id)
        return stored or answer

    async def resend_due(self) -> int:
        """Send again (or give up on) the answers whose receipt is overdue; how many."""
        now = self._clock()
        due = await self._ledger.due_answers(now)
        for answer in due:
            too_old = now - answer.sent_at > self._partner.contract.max_age
            if answer.attempts >= self._policy.attempt_limit or too_old:
                await self._ledger.settle_answer(answer.id, AnswerStatus.UNDELIVERABLE)
                log.error(
                    "answer_undeliverable",
                    message_id=answer.id,
                    type=answer.type,
                    attempts=answer.attempts,
                    reason="past the maximum age" if too_old else "attempt limit reached",
                )
                continue
            await self._publish(answer, now)
        return len(due)

    async def on_receipt(self, receipt: Envelope) -> None:
        """VT's receipt of one of our answers: delivered, when it names the digest we sent."""
        answer = await self._answered(receipt)
        if answer is None:
            return
        if receipt.body.get("digest") != answer.digest:
            log.warning("receipt_digest_mismatch", message_id=answer.id, receipt_id=receipt.id)
            return  # proves nothing: keep sending until the right receipt comes
        if await self._ledger.settle_answer(
            answer.id, AnswerStatus.DELIVERED, outcome_id=receipt.id
        ):
            log.info("answer_delivered", message_id=answer.id, receipt_id=receipt.id)

    async def on_error(self, error: Envelope) -> None:
        """VT's signed error about one of our answers: refused, no more resends."""
        answer = await self._answered(error)
        if answer is None:
            return
        code = str(error.body.get("code", ""))
        if await self._ledger.settle_answer(
            answer.id, AnswerStatus.REFUSED, outcome_id=error.id, outcome_code=code
        ):
            log.warning("answer_refused", message_id=answer.id, error_id=error.id, code=code)

    async def status(self, answer_id: str) -> Answer | None:
        return await self._ledger.answer(answer_id)

    async def _answered(self, envelope: Envelope) -> Answer | None:
        answer = None if envelope.reply_to is None else await self._ledger.answer(envelope.reply_to)
        if answer is None:
            log.info(
                "answer_unknown",
                message_id=envelope.id,
                type=envelope.type,
                reply_to=envelope.reply_to,
            )
        return answer

    async def _publish(self, answer: Answer, now: datetime) -> None:
        """One attempt: on the broker's confirm count it, else try again after a pause."""
        try:
            await self._courier.send(answer.raw, message_id=answer.id, message_type=answer.type)
        except GatewayError as exc:
            await self._ledger.postpone(answer.id, now + self._policy.retry_after_failure)
            log.warning("answer_not_sent", message_id=answer.id, type=answer.type, error=str(exc))
            return
        attempt = answer.attempts + 1
        due = next_attempt_due(now, self._policy.receipt_timeout, attempt)
        await self._ledger.record_attempt(answer.id, now, due)
        log.info("answer_sent", message_id=answer.id, type=answer.type, attempt=attempt)


def _stored(
    envelope: Envelope,
    now: datetime,
    policy: ResendPolicy,
    source: str | None,
    source_hash: str | None,
) -> Answer:
    obj = envelope.to_json()
    return Answer(
        id=envelope.id,
        type=envelope.type,
        reply_to=envelope.reply_to or "",  # build_answer always sets it
        thread=envelope.thread,
        digest=digest(obj),
        raw=encode(envelope),
        sent_at=now,
        status=AnswerStatus.QUEUED,
        # Not due before the first attempt's receipt could have come: the resend
        # loop leaves a fresh answer to `send`, unless its publish fails.
        next_due_at=now + policy.receipt_timeout,
        source=source,
        source_hash=source_hash,
    )


def _same_source(existing: Answer, source_hash: str | None) -> Answer:
    if existing.source_hash != source_hash:
        raise PermanentError(
            ErrorCode.DUPLICATE_CONFLICT,
            "this idempotency key was used before for another request",
            "",
        )
    return existing
