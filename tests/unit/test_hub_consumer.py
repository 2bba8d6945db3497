"""The hub consumer's ack decisions, with the broker's messages faked (no network)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import pytest

import adapters.amqp.hub as hub_module
from adapters.amqp.hub import HubConsumer
from gateway.bootstrap import Core
from gateway.domain.calendar import WorkingDayCalendar
from gateway.domain.contracts import Contracts
from gateway.service.outgoing import Hub
from gateway.service.pipeline import Verifier
from gateway.service.receiving import Delivery, Handled
from gateway.vectors import vector_key
from tests.fakes.store import MemoryStore
from tests.unit.conftest import NOW, Sign

NIJMEGEN = {"ref": "VT-2026-000123", "gemeente": "GM0268"}


class FakeDelivery:
    """What the consumer uses of an aio-pika incoming message."""

    def __init__(self, body: bytes, user_id: str) -> None:
        self.body, self.user_id, self.message_id = body, user_id, None
        self.acked: bool | None = None
        self.requeued: bool | None = None

    async def ack(self, multiple: bool = False) -> None:
        self.acked = True
        self.multiple = multiple

    async def nack(self, requeue: bool = True) -> None:
        self.requeued = requeue


@pytest.fixture
def consumer(core: Core, keyed_contracts: Contracts) -> tuple[HubConsumer, MemoryStore]:
    hub = Hub(
        Verifier(keyed_contracts, core.validator, "vt-gz"),
        vector_key("vt-gz"),
        WorkingDayCalendar.for_region(core.region),
    )
    store = MemoryStore()
    consumer = HubConsumer(
        None,
        None,
        store,
        hub,
        lambda: NOW,  # type: ignore[arg-type]
        batch_size=10,
        batch_wait=timedelta(milliseconds=5),
    )
    return consumer, store


async def test_a_stored_batch_is_acknowledged_with_one_ack(
    consumer: tuple[HubConsumer, MemoryStore], sign: Sign
) -> None:
    """Stored first, then one multiple ack for the batch's last delivery."""
    hub_consumer, store = consumer
    batch = [
        FakeDelivery(
            sign(
                "regie.change",
                sender="lt-nijmegen",
                case=NIJMEGEN,
                id=f"0000000{n}-0000-4000-8000-000000000000",
            ),
            "lt-nijmegen",
        )
        for n in range(3)
    ]
    await hub_consumer._store_batch(batch)  # type: ignore[arg-type]
    assert (batch[-1].acked, batch[-1].multiple) == (True, True)
    async with store.transaction() as uow:
        keys = [("lt-nijmegen", json.loads(d.body)["id"]) for d in batch]
        assert len(await uow.inbox.get_many(keys)) == 3
        assert await uow.outbox.depth() == 3  # three receipts


async def test_a_defect_in_one_delivery_holds_up_none_of_the_others(
    consumer: tuple[HubConsumer, MemoryStore], sign: Sign, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch that fails on a bug is retried one by one; only the poison one is requeued."""
    hub_consumer, store = consumer
    real = hub_module.receive_batch

    async def failing(
        uow: Any, hub: Hub, deliveries: Sequence[Delivery], now: Any
    ) -> list[Handled]:
        if any(d.raw == b"poison" for d in deliveries):
            raise KeyError("a defect")
        return await real(uow, hub, deliveries, now)

    monkeypatch.setattr(hub_module, "receive_batch", failing)
    good = FakeDelivery(sign("regie.change", sender="lt-nijmegen", case=NIJMEGEN), "lt-nijmegen")
    poison = FakeDelivery(b"poison", "lt-nijmegen")
    await hub_consumer._store_batch([poison, good])  # type: ignore[list-item]
    assert (poison.acked, poison.requeued) == (None, True)
    assert good.acked is True
    async with store.transaction() as uow:
        assert await uow.outbox.depth() == 1  # the good one's receipt
