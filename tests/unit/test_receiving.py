"""What the hub does with each delivery, against the in-memory store (PROTOCOL.md)."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from typing import Any

import pytest

from gateway.bootstrap import Core
from gateway.domain.calendar import WorkingDayCalendar
from gateway.domain.contracts import Contracts
from gateway.domain.delivery import Status, TimerKind
from gateway.domain.envelope import CaseRef
from gateway.domain.errors import ErrorCode
from gateway.service.outgoing import Hub
from gateway.service.pipeline import Verifier
from gateway.service.ports import StoredMessage, Timer
from gateway.service.receiving import Delivery, Disposition, Handled, receive, undeliverable_alert
from gateway.service.submission import SubmitMessage, submit
from gateway.vectors import vector_key
from tests.fakes.store import MemoryStore
from tests.unit.conftest import NOW, Sign


@pytest.fixture
def hub(core: Core, keyed_contracts: Contracts) -> Hub:
    return Hub(
        Verifier(keyed_contracts, core.validator, "vt-gz"),
        vector_key("vt-gz"),
        WorkingDayCalendar.for_region(core.region),
    )


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


async def deliver(store: MemoryStore, hub: Hub, raw: bytes, identity: str) -> Handled:
    async with store.transaction() as uow:
        return await receive(uow, hub, Delivery(raw, identity), NOW)


async def sent_by_vt(
    store: MemoryStore,
    hub: Hub,
    core: Core,
    examples: dict[str, Any],
    message_type: str,
    *,
    recipients: tuple[str, ...] = (),
) -> StoredMessage:
    example = examples[message_type]
    command = SubmitMessage(
        type=message_type,
        case=CaseRef(**example["case"]),
        body=example["body"],
        recipients=recipients,
    )
    messages = await submit(store, hub, core.region, command, NOW - timedelta(minutes=2))
    return messages[0]


async def test_an_accepted_message_is_stored_with_its_receipt_queued(
    store: MemoryStore, hub: Hub, sign: Sign
) -> None:
    """Accepted: message RECEIVED, inbox row, a signed receipt with its digest in the outbox."""
    handled = await deliver(store, hub, sign("regie.change"), "vtgw-bridge")
    assert handled.disposition is Disposition.ACK
    async with store.transaction() as uow:
        stored = await uow.messages.get("lt-tiel", handled.message_id or "")
        assert stored is not None
        assert stored.status is Status.RECEIVED
        entry = await uow.inbox.get("lt-tiel", stored.id)
        assert entry is not None
        assert entry.receipt_id is not None
        receipt = await uow.messages.get("vt-gz", entry.receipt_id)
        assert receipt is not None
        assert (receipt.type, receipt.recipient, receipt.reply_to) == (
            "receipt",
            "lt-tiel",
            stored.id,
        )
        assert json.loads(receipt.raw)["body"]["digest"] == stored.digest
        assert await uow.outbox.depth() == 1


async def test_the_same_message_again_gets_the_same_receipt_and_is_not_reprocessed(
    store: MemoryStore, hub: Hub, sign: Sign
) -> None:
    """Same id, same digest: the original receipt again, nothing stored twice."""
    raw = sign("regie.change")
    first = await deliver(store, hub, raw, "vtgw-bridge")
    again = await deliver(store, hub, raw, "vtgw-bridge")
    assert again.duplicate
    assert again.disposition is Disposition.ACK
    async with store.transaction() as uow:
        entry = await uow.inbox.get("lt-tiel", first.message_id or "")
        assert entry is not None
        claimed = await uow.outbox.claim(
            limit=10, now=NOW, lease=timedelta(seconds=30), claimer="t"
        )
    assert [item.message_id for item in claimed] == [entry.receipt_id, entry.receipt_id]


async def test_the_same_id_with_another_digest_is_a_duplicate_conflict(
    store: MemoryStore, hub: Hub, sign: Sign, examples: dict[str, Any]
) -> None:
    """Same id, other content: DUPLICATE_CONFLICT, an error to the sender, the message kept."""
    raw = sign("regie.change")
    await deliver(store, hub, raw, "vtgw-bridge")
    body = examples["regie.change"]["body"] | {"per": "2026-12-01"}
    other = sign("regie.change", id=json.loads(raw)["id"], body=body)
    handled = await deliver(store, hub, other, "vtgw-bridge")
    assert handled.disposition is Disposition.DEAD_LETTER
    assert handled.rejection is not None
    assert handled.rejection.code is ErrorCode.DUPLICATE_CONFLICT
    async with store.transaction() as uow:
        kept = await uow.rejections.recent(10)
    assert [k.raw for k in kept] == [other]
    assert kept[0].error_id is not None


async def test_a_receipt_with_the_right_digest_marks_the_message_delivered(
    store: MemoryStore, hub: Hub, core: Core, sign: Sign, examples: dict[str, Any]
) -> None:
    """Level 2: the recipient's receipt with our digest -> DELIVERED, its timer cancelled."""
    sent = await sent_by_vt(store, hub, core, examples, "enrichment.request", recipients=("jbg",))
    async with store.transaction() as uow:
        await uow.timers.schedule(Timer(TimerKind.RECEIPT, "vt-gz", sent.id, NOW, "test"))
    receipt = sign(
        "receipt",
        sender="jbg",
        recipient="vt-gz",
        reply_to=sent.id,
        thread=sent.thread,
        body={"digest": sent.digest, "received_at": "2026-11-28T11:59:00.000Z"},
    )
    handled = await deliver(store, hub, receipt, "jbg")
    assert handled.disposition is Disposition.ACK
    async with store.transaction() as uow:
        delivered = await uow.messages.get("vt-gz", sent.id)
        assert delivered is not None
        assert delivered.status is Status.DELIVERED
        pending = await uow.timers.pending("vt-gz", sent.id)
        assert [t for t in pending if t.kind is TimerKind.RECEIPT] == []
        # the enrichment answer's own term still runs: a receipt is not an answer
        assert {t.kind for t in pending} == {TimerKind.ENRICHMENT_WARNING, TimerKind.ENRICHMENT_DUE}
        assert await uow.outbox.depth() == 1  # only the notice itself: receipts get no receipt


async def test_a_receipt_of_other_bytes_proves_nothing(
    store: MemoryStore, hub: Hub, core: Core, sign: Sign, examples: dict[str, Any]
) -> None:
    """A receipt whose digest is not ours leaves the message undelivered."""
    sent = await sent_by_vt(store, hub, core, examples, "enrichment.request", recipients=("jbg",))
    receipt = sign(
        "receipt",
        sender="jbg",
        recipient="vt-gz",
        reply_to=sent.id,
        thread=sent.thread,
        body={"digest": "sha256:" + "0" * 64, "received_at": "2026-11-28T11:59:00.000Z"},
    )
    await deliver(store, hub, receipt, "jbg")
    async with store.transaction() as uow:
        message = await uow.messages.get("vt-gz", sent.id)
    assert message is not None
    assert message.status is Status.QUEUED


async def test_an_error_from_the_recipient_marks_the_message_refused(
    store: MemoryStore, hub: Hub, core: Core, sign: Sign, examples: dict[str, Any]
) -> None:
    """The recipient's signed error is final evidence: REFUSED, with its code."""
    sent = await sent_by_vt(store, hub, core, examples, "enrichment.request", recipients=("jbg",))
    error = sign(
        "error",
        sender="jbg",
        recipient="vt-gz",
        reply_to=sent.id,
        thread=sent.thread,
        body={"code": "SCHEMA_INVALID", "detail": "test", "pointer": "/body"},
    )
    await deliver(store, hub, error, "jbg")
    async with store.transaction() as uow:
        history = await uow.messages.history("vt-gz", sent.id)
    assert history[-1].status is Status.REFUSED
    assert history[-1].final
    assert history[-1].evidence["code"] == "SCHEMA_INVALID"


async def test_an_answer_to_a_message_never_sent_is_an_unknown_thread(
    store: MemoryStore, hub: Hub, sign: Sign
) -> None:
    """reply_to naming nothing the gateway sent to this sender: UNKNOWN_THREAD, kept."""
    handled = await deliver(store, hub, sign("enrichment.response"), "jbg")
    assert handled.rejection is not None
    assert handled.rejection.code is ErrorCode.UNKNOWN_THREAD


async def confirmation_for(sign: Sign, notice: StoredMessage) -> bytes:
    """A fresh confirmation (its own id) of the notice."""
    return sign(
        "overdracht.confirmation", id=str(uuid.uuid4()), reply_to=notice.id, thread=notice.thread
    )


async def test_a_second_confirmation_is_an_invalid_state(
    store: MemoryStore, hub: Hub, core: Core, sign: Sign, examples: dict[str, Any]
) -> None:
    """A handover is confirmed once: a second confirmation gets INVALID_STATE (§8.5 D)."""
    notice = await sent_by_vt(store, hub, core, examples, "overdracht.notice")
    first = await deliver(store, hub, await confirmation_for(sign, notice), "vtgw-bridge")
    assert first.disposition is Disposition.ACK
    second = await deliver(store, hub, await confirmation_for(sign, notice), "vtgw-bridge")
    assert second.rejection is not None
    assert second.rejection.code is ErrorCode.INVALID_STATE


async def test_a_confirmation_after_withdrawal_is_an_invalid_state(
    store: MemoryStore, hub: Hub, core: Core, sign: Sign, examples: dict[str, Any]
) -> None:
    """Nothing answers a withdrawn handover: the confirmation moves nothing, INVALID_STATE."""
    notice = await sent_by_vt(store, hub, core, examples, "overdracht.notice")
    withdrawal = examples["overdracht.withdrawal"]
    await submit(
        store,
        hub,
        core.region,
        SubmitMessage(
            type="overdracht.withdrawal",
            case=CaseRef(**withdrawal["case"]),
            body=withdrawal["body"],
            reply_to=notice.id,
        ),
        NOW - timedelta(minutes=1),
    )
    handled = await deliver(store, hub, await confirmation_for(sign, notice), "vtgw-bridge")
    assert handled.rejection is not None
    assert handled.rejection.code is ErrorCode.INVALID_STATE


async def test_garbage_is_kept_whole_and_not_answered(store: MemoryStore, hub: Hub) -> None:
    """Unreadable bytes: rejected, kept byte for byte, no error (there is no id to answer)."""
    handled = await deliver(store, hub, b"\x00garbage", "jbg")
    assert handled.disposition is Disposition.DEAD_LETTER
    async with store.transaction() as uow:
        kept = await uow.rejections.recent(1)
        assert await uow.outbox.depth() == 0
    assert kept[0].raw == b"\x00garbage"
    assert kept[0].code == "MALFORMED"


async def test_a_message_from_a_partner_closes_its_undeliverable_alert(
    store: MemoryStore, hub: Hub, sign: Sign
) -> None:
    """The partner is heard from again: its open undeliverable alert closes, once."""
    async with store.transaction() as uow:
        await uow.alerts.open(undeliverable_alert("lt-tiel"), "test", NOW)
    await deliver(store, hub, sign("regie.change"), "vtgw-bridge")
    async with store.transaction() as uow:
        assert await uow.alerts.open_alerts() == []
