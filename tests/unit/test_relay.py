"""The outbox relay and the receipt timers (PROTOCOL.md, acknowledgement level 2)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from gateway.bootstrap import Core
from gateway.domain.calendar import WorkingDayCalendar
from gateway.domain.contracts import Contracts, Transport
from gateway.domain.delivery import Status, TimerKind
from gateway.domain.envelope import CaseRef
from gateway.domain.errors import TransientError
from gateway.service.outgoing import Hub
from gateway.service.pipeline import Verifier
from gateway.service.ports import StoredMessage
from gateway.service.receiving import undeliverable_alert
from gateway.service.relay import Claim, fire_due_timers, relay_once
from gateway.service.submission import SubmitMessage, submit
from gateway.vectors import vector_key
from tests.fakes.publisher import RecordingPublisher
from tests.fakes.store import MemoryStore
from tests.unit.conftest import NOW

CLAIM = Claim(claimer="test", lease=timedelta(seconds=30))
NIJMEGEN_CASE = {"ref": "VT-2026-000123", "gemeente": "GM0268"}


@pytest.fixture
def hub(core: Core, keyed_contracts: Contracts) -> Hub:
    return Hub(
        Verifier(keyed_contracts, core.validator, "vt-gz"),
        vector_key("vt-gz"),
        WorkingDayCalendar.for_region(core.region),
    )


async def queued(
    store: MemoryStore, hub: Hub, core: Core, examples: dict[str, Any]
) -> StoredMessage:
    example = examples["enrichment.request"]
    command = SubmitMessage(
        type="enrichment.request",
        case=CaseRef(**example["case"]),
        body=example["body"],
        recipients=("jbg",),
    )
    return (await submit(store, hub, core.region, command, NOW))[0]


async def test_the_relay_marks_sent_only_what_the_broker_confirmed(
    hub: Hub, core: Core, keyed_contracts: Contracts, examples: dict[str, Any]
) -> None:
    """Published with a confirm -> SENT with the broker's evidence, and a receipt timer."""
    store, publisher = MemoryStore(), RecordingPublisher()
    message = await queued(store, hub, core, examples)
    assert await relay_once(store, {Transport.AMQP: publisher}, keyed_contracts, CLAIM, NOW) == 1
    assert [item.raw for item in publisher.published] == [message.raw]
    async with store.transaction() as uow:
        stored = await uow.messages.get("vt-gz", message.id)
        timers = [
            t
            for t in await uow.timers.pending("vt-gz", message.id)
            if t.kind is TimerKind.RECEIPT
        ]
    assert stored is not None
    assert stored.status is Status.SENT
    jbg = keyed_contracts.get("jbg")
    assert jbg is not None
    assert [t.due_at for t in timers] == [NOW + jbg.receipt_timeout]


async def test_a_failed_publish_leaves_the_row_for_another_attempt(
    hub: Hub, core: Core, keyed_contracts: Contracts, examples: dict[str, Any]
) -> None:
    """Broker away: nothing is marked sent; after the lease the row is published."""
    store, publisher = MemoryStore(), RecordingPublisher()
    message = await queued(store, hub, core, examples)
    publisher.fail_after = 0
    with pytest.raises(TransientError):
        await relay_once(store, {Transport.AMQP: publisher}, keyed_contracts, CLAIM, NOW)
    publisher.fail_after = None
    assert (
        await relay_once(store, {Transport.AMQP: publisher}, keyed_contracts, CLAIM, NOW) == 0
    )  # still leased
    later = NOW + CLAIM.lease + timedelta(seconds=1)
    assert await relay_once(store, {Transport.AMQP: publisher}, keyed_contracts, CLAIM, later) == 1
    async with store.transaction() as uow:
        stored = await uow.messages.get("vt-gz", message.id)
    assert stored is not None
    assert stored.status is Status.SENT


async def test_no_receipt_means_the_same_bytes_again_backing_off(
    hub: Hub, core: Core, keyed_contracts: Contracts, examples: dict[str, Any]
) -> None:
    """Receipt overdue: resent with the same id and bytes; each wait doubles."""
    store, publisher = MemoryStore(), RecordingPublisher()
    message = await queued(store, hub, core, examples)
    jbg = keyed_contracts.get("jbg")
    assert jbg is not None
    now = NOW
    waits = []
    for _ in range(3):
        await relay_once(store, {Transport.AMQP: publisher}, keyed_contracts, CLAIM, now)
        async with store.transaction() as uow:
            (timer,) = [
                t
                for t in await uow.timers.pending("vt-gz", message.id)
                if t.kind is TimerKind.RECEIPT
            ]
        waits.append(timer.due_at - now)
        now = timer.due_at
        # the receipt timer, and by then the enrichment answer's own term (§5.1) too
        assert await fire_due_timers(store, hub, CLAIM, now) >= 1
    assert waits == [jbg.receipt_timeout, 2 * jbg.receipt_timeout, 4 * jbg.receipt_timeout]
    assert {item.raw for item in publisher.published} == {message.raw}


async def test_over_the_attempt_limit_the_message_is_undeliverable_with_one_alert(
    hub: Hub, core: Core, keyed_contracts: Contracts, examples: dict[str, Any]
) -> None:
    """Attempt limit reached: UNDELIVERABLE, one alert for the recipient, not one per retry."""
    store, publisher = MemoryStore(), RecordingPublisher()
    first = await queued(store, hub, core, examples)
    second = await queued(store, hub, core, examples)
    jbg = keyed_contracts.get("jbg")
    assert jbg is not None
    now = NOW
    for _ in range(jbg.attempt_limit + 1):
        await relay_once(store, {Transport.AMQP: publisher}, keyed_contracts, CLAIM, now)
        now += jbg.receipt_timeout * 2**jbg.attempt_limit
        await fire_due_timers(store, hub, CLAIM, now)
    async with store.transaction() as uow:
        for message in (first, second):
            stored = await uow.messages.get("vt-gz", message.id)
            assert stored is not None
            assert stored.status is Status.UNDELIVERABLE
            assert stored.attempts == jbg.attempt_limit
        alerts = await uow.alerts.all_alerts(undeliverable_alert("jbg"))
    assert len(alerts) == 1
    assert len(publisher.published) == 2 * jbg.attempt_limit


async def test_receipts_and_errors_are_final_once_sent(
    hub: Hub, core: Core, keyed_contracts: Contracts, sign: Any
) -> None:
    """A receipt expects no receipt: SENT is final for it and no timer is set."""
    from gateway.service.receiving import Delivery, receive

    store, publisher = MemoryStore(), RecordingPublisher()
    async with store.transaction() as uow:
        raw = sign("regie.change", sender="lt-nijmegen", case=NIJMEGEN_CASE)
        handled = await receive(uow, hub, Delivery(raw, "lt-nijmegen"), NOW)
        entry = await uow.inbox.get("lt-nijmegen", handled.message_id or "")
    assert entry is not None
    assert entry.receipt_id is not None
    await relay_once(store, {Transport.AMQP: publisher}, keyed_contracts, CLAIM, NOW)
    async with store.transaction() as uow:
        history = await uow.messages.history("vt-gz", entry.receipt_id)
        assert await uow.timers.pending("vt-gz", entry.receipt_id) == []
    assert history[-1].status is Status.SENT
    assert history[-1].final


async def test_rows_for_a_transport_without_publisher_wait_and_block_nothing(
    hub: Hub, core: Core, keyed_contracts: Contracts, examples: dict[str, Any]
) -> None:
    """A message to an e-mail party stays queued; AMQP messages behind it still go out."""
    store, publisher = MemoryStore(), RecordingPublisher()
    notice = examples["overdracht.notice"]
    to_email_party = await submit(
        store,
        hub,
        core.region,
        SubmitMessage(
            type="overdracht.notice", case=CaseRef(**notice["case"]), body=notice["body"]
        ),
        NOW,
    )
    to_jbg = await queued(store, hub, core, examples)
    assert await relay_once(store, {Transport.AMQP: publisher}, keyed_contracts, CLAIM, NOW) == 1
    assert [item.message_id for item in publisher.published] == [to_jbg.id]
    async with store.transaction() as uow:
        waiting = await uow.messages.get("vt-gz", to_email_party[0].id)
    assert waiting is not None
    assert waiting.status is Status.QUEUED
