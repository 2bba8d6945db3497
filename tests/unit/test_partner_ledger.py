"""The partner's SQLite ledger: received ids with their receipts, answers with their attempts."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from adapters.amqp.partner.ledger import (
    Answer,
    AnswerStatus,
    DuplicateSourceError,
    Handover,
    PartnerLedger,
    ReceivedMessage,
)
from gateway.domain.envelope import CaseRef
from gateway.vectors import VECTOR_NOW

NOW = VECTOR_NOW
MESSAGE_ID = "881a3efd-5221-47fd-8b10-b7e872c95cf4"
ANSWER_ID = "dd6a30c4-42dd-4a22-9540-f9fe5be1aed8"


@pytest.fixture
async def ledger(tmp_path: Path) -> AsyncIterator[PartnerLedger]:
    ledger = await PartnerLedger.open(tmp_path / "state" / "jbg.sqlite3")
    yield ledger
    await ledger.close()


def received(**changes: object) -> ReceivedMessage:
    fields: dict[str, object] = {
        "sender": "vt-gz",
        "id": MESSAGE_ID,
        "type": "enrichment.request",
        "digest": "sha256:" + "0" * 64,
        "thread": MESSAGE_ID,
        "case": CaseRef("VT-2026-000123", "GM0281"),
        "received_at": NOW,
        "handover": Handover.PENDING,
        "receipt_id": "6cc7f4d0-6fee-45a5-8795-a9344e1225e8",
        "receipt_raw": b'{"type":"receipt"}',
    }
    return ReceivedMessage(**(fields | changes))  # type: ignore[arg-type]


def answer(**changes: object) -> Answer:
    fields: dict[str, object] = {
        "id": ANSWER_ID,
        "type": "enrichment.response",
        "reply_to": MESSAGE_ID,
        "thread": MESSAGE_ID,
        "digest": "sha256:" + "1" * 64,
        "raw": b'{"type":"enrichment.response"}',
        "sent_at": NOW,
        "status": AnswerStatus.QUEUED,
        "next_due_at": NOW + timedelta(minutes=15),
    }
    return Answer(**(fields | changes))  # type: ignore[arg-type]


async def test_a_received_message_is_remembered_with_its_receipt(ledger: PartnerLedger) -> None:
    """Everything needed to answer a repeat: digest, thread, case, the receipt's exact bytes."""
    stored = await ledger.add_received(received())

    assert stored == received()
    assert await ledger.received("vt-gz", MESSAGE_ID) == received()
    assert await ledger.received_by_id(MESSAGE_ID) == received()
    assert await ledger.received("jbg", MESSAGE_ID) is None


async def test_adding_a_received_id_again_keeps_the_first(ledger: PartnerLedger) -> None:
    """The first record (and its receipt) wins: a repeat never replaces it."""
    await ledger.add_received(received())

    again = await ledger.add_received(received(digest="sha256:" + "f" * 64, receipt_raw=b"other"))

    assert again == received()


async def test_handover_and_receipt_are_marked_once(ledger: PartnerLedger) -> None:
    """Handed over, then receipted; a repeated receipt keeps the first moment."""
    await ledger.add_received(received())
    await ledger.mark_handed_over("vt-gz", MESSAGE_ID, NOW)
    await ledger.mark_receipt_sent("vt-gz", MESSAGE_ID, NOW)
    await ledger.mark_receipt_sent("vt-gz", MESSAGE_ID, NOW + timedelta(hours=1))

    stored = await ledger.received("vt-gz", MESSAGE_ID)

    assert stored is not None
    assert stored.handover is Handover.DONE
    assert stored.receipt_sent_at == NOW


async def test_the_ledger_survives_a_restart(tmp_path: Path) -> None:
    """What was written is there when the file is opened again."""
    path = tmp_path / "jbg.sqlite3"
    first = await PartnerLedger.open(path)
    await first.add_received(received())
    await first.add_answer(answer())
    await first.close()

    second = await PartnerLedger.open(path)
    try:
        assert await second.received("vt-gz", MESSAGE_ID) == received()
        assert await second.answer(ANSWER_ID) == answer()
    finally:
        await second.close()


async def test_an_answer_is_due_when_its_next_attempt_is(ledger: PartnerLedger) -> None:
    """Not before `next_due_at`; at it, yes."""
    await ledger.add_answer(answer())

    assert await ledger.due_answers(NOW) == []
    assert [a.id for a in await ledger.due_answers(NOW + timedelta(minutes=15))] == [ANSWER_ID]


async def test_an_attempt_counts_and_moves_the_answer_to_sent(ledger: PartnerLedger) -> None:
    """Each confirmed send adds one attempt and sets the next due moment."""
    await ledger.add_answer(answer())
    later = NOW + timedelta(minutes=30)

    await ledger.record_attempt(ANSWER_ID, NOW, later)

    stored = await ledger.answer(ANSWER_ID)
    assert stored is not None
    assert (stored.status, stored.attempts, stored.next_due_at) == (AnswerStatus.SENT, 1, later)
    assert stored.last_attempt_at == NOW


async def test_a_receipt_that_came_before_the_attempt_was_noted_is_kept(
    ledger: PartnerLedger,
) -> None:
    """VT's fast receipt settles the answer; the late note of the send does not undo that."""
    await ledger.add_answer(answer())
    await ledger.settle_answer(ANSWER_ID, AnswerStatus.DELIVERED, outcome_id="r")

    await ledger.record_attempt(ANSWER_ID, NOW, NOW + timedelta(minutes=15))

    stored = await ledger.answer(ANSWER_ID)
    assert stored is not None
    assert stored.status is AnswerStatus.DELIVERED
    assert await ledger.due_answers(NOW + timedelta(days=1)) == []


async def test_a_final_status_never_changes(ledger: PartnerLedger) -> None:
    """Delivered stays delivered: a later error or give-up is not recorded."""
    await ledger.add_answer(answer())

    assert await ledger.settle_answer(ANSWER_ID, AnswerStatus.DELIVERED, outcome_id="r")
    assert not await ledger.settle_answer(ANSWER_ID, AnswerStatus.REFUSED, outcome_code="X")

    stored = await ledger.answer(ANSWER_ID)
    assert stored is not None
    assert (stored.status, stored.outcome_id) == (AnswerStatus.DELIVERED, "r")


async def test_an_answer_from_a_source_seen_before_is_reported_with_the_first(
    ledger: PartnerLedger,
) -> None:
    """The same outbox file or idempotency key again: DuplicateSourceError naming the answer."""
    await ledger.add_answer(answer(source="http:key-1", source_hash="h"))

    with pytest.raises(DuplicateSourceError) as duplicate:
        await ledger.add_answer(answer(id="b" * 8, source="http:key-1", source_hash="h"))

    assert duplicate.value.existing.id == ANSWER_ID
    assert (await ledger.answer_from("http:key-1")) == duplicate.value.existing
