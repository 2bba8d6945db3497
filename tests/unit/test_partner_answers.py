"""The partner's answers: stored before they are sent, sent again until VT's receipt comes."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from adapters.amqp.partner.answers import AnswerSender, ResendPolicy
from adapters.amqp.partner.ledger import (
    Answer,
    AnswerStatus,
    Handover,
    PartnerLedger,
    ReceivedMessage,
)
from adapters.amqp.partner.messages import AnswerRequest, Partner
from gateway.bootstrap import Core
from gateway.domain.contracts import Contracts
from gateway.domain.envelope import CaseRef, Envelope
from gateway.domain.errors import ErrorCode, PermanentError, TransientError
from gateway.vectors import VECTOR_NOW, vector_key

REQUEST_ID = "881a3efd-5221-47fd-8b10-b7e872c95cf4"
TIMEOUT = timedelta(minutes=15)
LIMIT = 3


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, by: timedelta) -> None:
        self.now += by


@dataclass
class FakeCourier:
    sent: list[bytes] = field(default_factory=list)
    failures: int = 0

    async def send(self, raw: bytes, *, message_id: str, message_type: str) -> None:
        if self.failures:
            self.failures -= 1
            raise TransientError("the broker is away")
        self.sent.append(raw)


@dataclass
class Setup:
    sender: AnswerSender
    courier: FakeCourier
    clock: Clock
    ledger: PartnerLedger
    body: dict[str, Any]

    def request(self, **changes: Any) -> AnswerRequest:
        fields = {"type": "enrichment.response", "reply_to": REQUEST_ID, "body": self.body}
        return AnswerRequest(**(fields | changes))

    async def status(self, answer: Answer) -> Answer:
        stored = await self.ledger.answer(answer.id)
        assert stored is not None
        return stored


@pytest.fixture
async def setup(
    core: Core, keyed_contracts: Contracts, tmp_path: Path, examples: dict[str, Any]
) -> AsyncIterator[Setup]:
    partner = Partner.create(
        party="jbg", contracts=keyed_contracts, validator=core.validator, key=vector_key("jbg")
    )
    clock = Clock(VECTOR_NOW)
    ledger = await PartnerLedger.open(tmp_path / "jbg.sqlite3")
    await ledger.add_received(
        ReceivedMessage(
            sender="vt-gz",
            id=REQUEST_ID,
            type="enrichment.request",
            digest="sha256:" + "0" * 64,
            thread=REQUEST_ID,
            case=CaseRef("VT-2026-000123", "GM0281"),
            received_at=VECTOR_NOW,
            handover=Handover.DONE,
        )
    )
    courier = FakeCourier()
    sender = AnswerSender(partner, ledger, courier, ResendPolicy(TIMEOUT, LIMIT), clock)
    yield Setup(sender, courier, clock, ledger, examples["enrichment.response"]["body"])
    await ledger.close()


def vt_says(message_type: str, answer: Answer, body: dict[str, Any]) -> Envelope:
    """VT's receipt or error about an answer (verified upstream; only its content matters)."""
    return Envelope(
        id="7d0f4f0e-3d43-4a7c-9a55-2c1f3e4b5a6d",
        type=message_type,
        sender="vt-gz",
        recipient="jbg",
        sent_at=VECTOR_NOW,
        thread=answer.thread,
        reply_to=answer.id,
        body=body,
    )


async def test_an_answer_is_stored_then_sent_once(setup: Setup) -> None:
    """One publish, status sent, one attempt; the bytes sent are the bytes stored."""
    answer = await setup.sender.send(setup.request())

    assert (answer.status, answer.attempts) == (AnswerStatus.SENT, 1)
    assert setup.courier.sent == [answer.raw]
    assert json.loads(answer.raw)["sent_at"] == "2026-11-28T12:00:00.000Z"


async def test_an_answer_the_broker_did_not_take_is_kept_and_tried_again(setup: Setup) -> None:
    """Queued, not lost: the resend loop publishes it after the pause."""
    setup.courier.failures = 1
    answer = await setup.sender.send(setup.request())
    assert (answer.status, setup.courier.sent) == (AnswerStatus.QUEUED, [])

    setup.clock.advance(timedelta(seconds=5))
    await setup.sender.resend_due()

    assert setup.courier.sent == [answer.raw]
    assert (await setup.status(answer)).status is AnswerStatus.SENT


async def test_without_a_receipt_the_same_bytes_are_sent_again_the_wait_doubling(
    setup: Setup,
) -> None:
    """Same id, same sent_at, same signature: after 15 min, then 30 min more."""
    answer = await setup.sender.send(setup.request())

    setup.clock.advance(TIMEOUT - timedelta(seconds=1))
    await setup.sender.resend_due()
    assert len(setup.courier.sent) == 1
    setup.clock.advance(timedelta(seconds=1))
    await setup.sender.resend_due()
    setup.clock.advance(TIMEOUT)
    await setup.sender.resend_due()
    assert len(setup.courier.sent) == 2
    setup.clock.advance(TIMEOUT)
    await setup.sender.resend_due()

    assert setup.courier.sent == [answer.raw] * 3


async def test_after_the_attempt_limit_the_answer_is_undeliverable(setup: Setup) -> None:
    """Three sends, no receipt: undeliverable, and nothing more is sent."""
    answer = await setup.sender.send(setup.request())
    for _ in range(6):
        setup.clock.advance(TIMEOUT * 8)
        await setup.sender.resend_due()

    assert len(setup.courier.sent) == LIMIT
    assert (await setup.status(answer)).status is AnswerStatus.UNDELIVERABLE


async def test_vts_receipt_with_the_digest_delivers_the_answer_and_ends_the_resends(
    setup: Setup,
) -> None:
    """Delivered; the timer finds nothing to do."""
    answer = await setup.sender.send(setup.request())
    receipt = vt_says("receipt", answer, {"digest": answer.digest, "received_at": "x"})

    await setup.sender.on_receipt(receipt)
    setup.clock.advance(TIMEOUT * 4)
    await setup.sender.resend_due()

    stored = await setup.status(answer)
    assert (stored.status, stored.outcome_id) == (AnswerStatus.DELIVERED, receipt.id)
    assert len(setup.courier.sent) == 1


async def test_a_receipt_of_other_bytes_proves_nothing(setup: Setup) -> None:
    """Another digest: still sent, still resent."""
    answer = await setup.sender.send(setup.request())

    await setup.sender.on_receipt(
        vt_says("receipt", answer, {"digest": "sha256:" + "9" * 64, "received_at": "x"})
    )

    assert (await setup.status(answer)).status is AnswerStatus.SENT


async def test_vts_error_refuses_the_answer_with_its_code(setup: Setup) -> None:
    """A signed error from VT: refused, no more resends."""
    answer = await setup.sender.send(setup.request())

    await setup.sender.on_error(vt_says("error", answer, {"code": "INVALID_STATE"}))
    setup.clock.advance(TIMEOUT * 4)
    await setup.sender.resend_due()

    stored = await setup.status(answer)
    assert (stored.status, stored.outcome_code) == (AnswerStatus.REFUSED, "INVALID_STATE")
    assert len(setup.courier.sent) == 1


async def test_an_answer_to_a_message_never_received_is_unknown_thread(setup: Setup) -> None:
    """reply_to must name a message VT sent us: 404-worthy UNKNOWN_THREAD, nothing stored."""
    with pytest.raises(PermanentError) as refused:
        await setup.sender.send(setup.request(reply_to="00000000-0000-4000-8000-000000000000"))

    assert refused.value.code is ErrorCode.UNKNOWN_THREAD
    assert setup.courier.sent == []


async def test_the_same_source_twice_is_one_answer(setup: Setup) -> None:
    """A repeated request with its idempotency key returns the first answer, sent once."""
    first = await setup.sender.send(setup.request(), source="http:k", source_hash="h")

    again = await setup.sender.send(setup.request(), source="http:k", source_hash="h")

    assert again.id == first.id
    assert len(setup.courier.sent) == 1


async def test_the_same_source_with_other_content_is_a_conflict(setup: Setup) -> None:
    """An idempotency key reused for another request: DUPLICATE_CONFLICT."""
    await setup.sender.send(setup.request(), source="http:k", source_hash="h")

    with pytest.raises(PermanentError) as refused:
        await setup.sender.send(setup.request(), source="http:k", source_hash="other")

    assert refused.value.code is ErrorCode.DUPLICATE_CONFLICT


async def test_a_second_confirmation_of_a_handover_is_refused_before_it_leaves(
    setup: Setup, examples: dict[str, Any]
) -> None:
    """The thread holds our confirmation already: INVALID_STATE here, not an error from VT."""
    notice_id = "3c9a1d2e-5b6f-4a7c-8d9e-0f1a2b3c4d5e"
    await setup.ledger.add_received(
        ReceivedMessage(
            sender="vt-gz",
            id=notice_id,
            type="overdracht.notice",
            digest="sha256:" + "2" * 64,
            thread=notice_id,
            case=CaseRef("VT-2026-000123", "GM0281"),
            received_at=VECTOR_NOW,
            handover=Handover.DONE,
        )
    )
    confirmation = AnswerRequest(
        "overdracht.confirmation", notice_id, examples["overdracht.confirmation"]["body"]
    )
    await setup.sender.send(confirmation)

    with pytest.raises(PermanentError) as refused:
        await setup.sender.send(confirmation)

    assert refused.value.code is ErrorCode.INVALID_STATE
    assert len(setup.courier.sent) == 1
