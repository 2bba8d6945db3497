"""One message from the partner's inbox, up to the ack decision, with fakes of the transport."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from adapters.amqp.partner.answers import AnswerSender, ResendPolicy
from adapters.amqp.partner.handoff import HandedMessage, HandoffError
from adapters.amqp.partner.inbox import PartnerInbox, Settlement
from adapters.amqp.partner.ledger import PartnerLedger
from adapters.amqp.partner.messages import Partner
from adapters.amqp.partner.rejected import RejectedFolder
from gateway.bootstrap import Core
from gateway.domain.canonical import digest
from gateway.domain.contracts import Contracts
from gateway.domain.errors import TransientError
from gateway.service.pipeline import Accepted, Verifier, verify_message
from gateway.vectors import VECTOR_NOW, vector_key

REQUEST_ID = "0b5cf0a4-4c1e-4f8e-9d3a-2f7b1c6d8e90"
Sign = Callable[..., bytes]


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@dataclass
class FakeCourier:
    """Records what would go to `vtgw.in`; fails the next `failures` sends."""

    sent: list[tuple[str, str, bytes]] = field(default_factory=list)
    failures: int = 0

    async def send(self, raw: bytes, *, message_id: str, message_type: str) -> None:
        if self.failures:
            self.failures -= 1
            raise TransientError("the broker did not confirm")
        self.sent.append((message_type, message_id, raw))

    def of_type(self, message_type: str) -> list[dict[str, Any]]:
        return [json.loads(raw) for kind, _, raw in self.sent if kind == message_type]


@dataclass
class FakeHandoff:
    """The partner's system: takes what it is given, or fails the next `failures` times."""

    handed: list[HandedMessage] = field(default_factory=list)
    failures: int = 0

    async def start(self) -> None:
        return None

    async def hand_over(self, message: HandedMessage) -> None:
        if self.failures:
            self.failures -= 1
            raise HandoffError("the webhook answered HTTP 503")
        self.handed.append(message)

    async def close(self) -> None:
        return None


@dataclass
class Setup:
    inbox: PartnerInbox
    courier: FakeCourier
    handoff: FakeHandoff
    ledger: PartnerLedger
    rejected: Path
    answers: AnswerSender
    partner: Partner


@pytest.fixture
def partner(core: Core, keyed_contracts: Contracts) -> Partner:
    return Partner.create(
        party="jbg", contracts=keyed_contracts, validator=core.validator, key=vector_key("jbg")
    )


@pytest.fixture
async def setup(partner: Partner, tmp_path: Path) -> AsyncIterator[Setup]:
    clock = Clock(VECTOR_NOW)
    ledger = await PartnerLedger.open(tmp_path / "jbg.sqlite3")
    courier, handoff = FakeCourier(), FakeHandoff()
    rejected = RejectedFolder(tmp_path / "rejected")
    await rejected.start()
    answers = AnswerSender(partner, ledger, courier, ResendPolicy(timedelta(minutes=15), 3), clock)
    inbox = PartnerInbox(
        partner,
        ledger=ledger,
        handoff=handoff,
        courier=courier,
        rejected=rejected,
        answers=answers,
        clock=clock,
    )
    yield Setup(inbox, courier, handoff, ledger, tmp_path / "rejected", answers, partner)
    await ledger.close()


@pytest.fixture
def request_raw(sign: Sign) -> bytes:
    """VT's signed enrichment.request to jbg."""
    return sign("enrichment.request", id=REQUEST_ID, thread=REQUEST_ID)


def at_hub(partner: Partner, raw: bytes) -> Any:
    verifier = Verifier(partner.contracts, partner.validator, "vt-gz")
    return verify_message(raw, transport_identity="jbg", now=VECTOR_NOW, verifier=verifier)


async def test_an_accepted_message_is_handed_over_then_receipted_then_acked(
    setup: Setup, request_raw: bytes
) -> None:
    """The handoff gets the exact bytes; one receipt with the digest; ACK."""
    received = await setup.inbox.receive(request_raw)

    assert (received.settlement, received.outcome) == (Settlement.ACK, "handed_over")
    [handed] = setup.handoff.handed
    assert (handed.id, handed.type, handed.raw) == (REQUEST_ID, "enrichment.request", request_raw)
    [(kind, receipt_id, raw)] = setup.courier.sent
    receipt = json.loads(raw)
    assert (kind, receipt_id) == ("receipt", receipt["id"])
    assert receipt["body"]["digest"] == digest(json.loads(request_raw)) == handed.digest
    assert isinstance(at_hub(setup.partner, raw), Accepted)


async def test_the_same_message_again_gets_the_same_receipt_and_no_second_handover(
    setup: Setup, request_raw: bytes
) -> None:
    """Same id, same digest: the stored receipt bytes again, nothing handed over twice."""
    await setup.inbox.receive(request_raw)

    again = await setup.inbox.receive(request_raw)

    assert (again.settlement, again.outcome) == (Settlement.ACK, "duplicate")
    assert len(setup.handoff.handed) == 1
    first, second = setup.courier.sent
    assert first == second


async def test_a_handoff_failure_returns_the_delivery_without_a_receipt(
    setup: Setup, request_raw: bytes
) -> None:
    """The partner's system did not take it: RETRY, and no receipt promises otherwise."""
    setup.handoff.failures = 1

    received = await setup.inbox.receive(request_raw)

    assert (received.settlement, received.outcome) == (Settlement.RETRY, "handoff_failed")
    assert setup.courier.sent == []


async def test_a_returned_delivery_is_handed_over_and_receipted_when_it_comes_again(
    setup: Setup, request_raw: bytes
) -> None:
    """After a failed handoff, the redelivery completes: handed over once, receipted once."""
    setup.handoff.failures = 1
    await setup.inbox.receive(request_raw)

    received = await setup.inbox.receive(request_raw)

    assert (received.settlement, received.outcome) == (Settlement.ACK, "handed_over")
    assert len(setup.handoff.handed) == 1
    assert [kind for kind, _, _ in setup.courier.sent] == ["receipt"]


async def test_an_unconfirmed_receipt_returns_the_delivery_and_is_sent_again_later(
    setup: Setup, request_raw: bytes
) -> None:
    """The broker did not confirm our receipt: RETRY; next time the same receipt, no handover."""
    setup.courier.failures = 1
    first = await setup.inbox.receive(request_raw)

    second = await setup.inbox.receive(request_raw)

    assert (first.settlement, second.settlement) == (Settlement.RETRY, Settlement.ACK)
    assert len(setup.handoff.handed) == 1
    assert len(setup.courier.of_type("receipt")) == 1


async def test_the_same_id_with_another_digest_is_a_duplicate_conflict_and_kept(
    setup: Setup, sign: Sign, request_raw: bytes
) -> None:
    """A signed error DUPLICATE_CONFLICT replying to the id; the other bytes kept, then ACK."""
    await setup.inbox.receive(request_raw)
    other = sign("enrichment.request", id=REQUEST_ID, thread=REQUEST_ID, sent_at=VECTOR_NOW)

    received = await setup.inbox.receive(other)

    assert (received.settlement, received.code) == (Settlement.ACK, "DUPLICATE_CONFLICT")
    [error] = setup.courier.of_type("error")
    assert (error["reply_to"], error["body"]["code"]) == (REQUEST_ID, "DUPLICATE_CONFLICT")
    assert [p.read_bytes() for p in setup.rejected.glob("*.raw")] == [other]
    assert len(setup.handoff.handed) == 1


async def test_a_bad_signature_is_answered_with_an_error_and_the_message_kept(
    setup: Setup, request_raw: bytes
) -> None:
    """SIGNATURE_INVALID: the bytes and a reason file in rejected/, the error's id in it."""
    forged = request_raw.replace(b'"verrijking_vt_melding"', b'"verrijking_anders"')

    received = await setup.inbox.receive(forged)

    assert (received.settlement, received.code) == (Settlement.ACK, "SIGNATURE_INVALID")
    [error] = setup.courier.of_type("error")
    [kept] = setup.rejected.glob(f"{REQUEST_ID}.*.raw")
    reason = json.loads(kept.with_suffix(".json").read_text(encoding="utf-8"))
    assert kept.read_bytes() == forged
    assert (reason["code"], reason["pointer"]) == ("SIGNATURE_INVALID", "/signature/value")
    assert reason["error_sent"] == error["id"]
    assert setup.handoff.handed == []


async def test_a_message_signed_by_anyone_but_vt_is_a_sender_mismatch(
    setup: Setup, sign: Sign
) -> None:
    """Everything in the inbox comes from the hub: a partner's own signature is not VT's."""
    raw = sign("enrichment.response", recipient="jbg")

    received = await setup.inbox.receive(raw)

    assert received.code == "SENDER_MISMATCH"
    assert [e["recipient"] for e in setup.courier.of_type("error")] == ["vt-gz"]


async def test_a_message_for_another_partner_is_not_permitted(setup: Setup, sign: Sign) -> None:
    """Addressed to rvdk but in jbg's inbox: NOT_PERMITTED, never handed over."""
    raw = sign("enrichment.request", recipient="rvdk")

    received = await setup.inbox.receive(raw)

    assert received.code == "NOT_PERMITTED"
    assert setup.handoff.handed == []


async def test_bytes_without_an_id_are_kept_and_acked_without_an_error(setup: Setup) -> None:
    """Not JSON: nothing to reply to, so no error; kept as `unidentified`."""
    received = await setup.inbox.receive(b"{not json")

    assert (received.settlement, received.code) == (Settlement.ACK, "MALFORMED")
    assert setup.courier.sent == []
    assert [p.name.split(".")[0] for p in setup.rejected.glob("*.raw")] == ["unidentified"]


async def test_a_receipt_from_vt_is_neither_receipted_nor_handed_over(
    setup: Setup, sign: Sign
) -> None:
    """Receipts are never answered, and they are the adapter's own business."""
    raw = sign("receipt", sender="vt-gz", recipient="jbg")

    received = await setup.inbox.receive(raw)

    assert (received.settlement, received.outcome) == (Settlement.ACK, "receipt")
    assert setup.courier.sent == []
    assert setup.handoff.handed == []


async def test_an_error_from_vt_is_handed_over_but_never_answered(setup: Setup, sign: Sign) -> None:
    """The partner's system learns of the refusal; no receipt and no error goes back."""
    raw = sign("error", sender="vt-gz", recipient="jbg")

    received = await setup.inbox.receive(raw)

    assert (received.settlement, received.outcome) == (Settlement.ACK, "handed_over")
    assert [m.type for m in setup.handoff.handed] == ["error"]
    assert setup.courier.sent == []


async def test_a_forged_receipt_is_kept_but_never_answered_with_an_error(
    setup: Setup, sign: Sign
) -> None:
    """No error about a receipt (no loops): it is only kept in rejected/."""
    raw = sign("receipt", sender="vt-gz", recipient="jbg").replace(b'"sha256:', b'"sha256:0', 1)

    received = await setup.inbox.receive(raw)

    assert received.settlement is Settlement.ACK
    assert received.code is not None
    assert setup.courier.sent == []
    assert len(list(setup.rejected.glob("*.raw"))) == 1


async def test_a_stale_message_is_refused_with_stale(setup: Setup, sign: Sign) -> None:
    """Older than VT's maximum age (7 days): STALE."""
    raw = sign("enrichment.request", sent_at=VECTOR_NOW - timedelta(days=8))

    received = await setup.inbox.receive(raw)

    assert received.code == "STALE"
