"""Crashes and restarts: nothing lost, nothing done twice, every receipt sent.

1,000 messages in flight from a partner; the gateway killed with SIGKILL at
random moments three times and started again; then the same with RabbitMQ
restarted mid-stream. Afterwards the store must hold each message exactly
once with one RECEIVED status, and the partner must have received a receipt
for every message, the same receipt each time it got one more than once.
"""

from __future__ import annotations

import asyncio
import json
import random
import subprocess
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import aio_pika
import pytest
from sqlalchemy import text

from adapters.amqp.topology import inbox_queue
from adapters.store.engine import create_engine
from tests.integration.gateway_rig import GatewayRig, gateway_rig
from tests.integration.partner_side import WirePartner

pytestmark = pytest.mark.integration

MESSAGES = 1000
NIJMEGEN = {"ref": "VT-2026-000900", "gemeente": "GM0268"}


@pytest.fixture
def rig(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[GatewayRig]:
    with gateway_rig(tmp_path_factory.mktemp("crash"), request.node.name[:20]) as rig:
        rig.start()
        yield rig


class ReceiptCollector:
    """Reads the partner's inbox the whole time, across broker restarts."""

    def __init__(self, url: str, party: str) -> None:
        self.url, self.party = url, party
        self.receipts: dict[str, set[str]] = defaultdict(set)

    async def run(self, until: asyncio.Event) -> None:
        connection = await aio_pika.connect_robust(self.url)
        try:
            channel = await connection.channel()
            queue = await channel.declare_queue(inbox_queue(self.party), passive=True)

            async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
                envelope = json.loads(message.body)
                if envelope["type"] == "receipt":
                    self.receipts[envelope["reply_to"]].add(envelope["id"])
                await message.ack()

            await queue.consume(on_message)
            await until.wait()
        finally:
            await connection.close()


CHUNK, PAUSE = 50, 0.25  # paced: the stream lasts about 5 s, so every disturbance is mid-stream


async def publish_all(partner: WirePartner, messages: list[dict[str, Any]]) -> None:
    for index, message in enumerate(messages):
        if index and index % CHUNK == 0:
            await asyncio.sleep(PAUSE)
        for _ in range(100):
            try:
                await partner.send(message)
                break
            except Exception:
                await asyncio.sleep(0.2)


async def wait_for_receipts(collector: ReceiptCollector, ids: set[str], rig: GatewayRig) -> None:
    for _ in range(1800):
        if ids <= collector.receipts.keys():
            return
        await asyncio.sleep(0.1)
    missing = len(ids - collector.receipts.keys())
    pytest.fail(f"{missing} messages got no receipt in 180 s\n{rig.log_tail()}")


async def check_store(rig: GatewayRig, ids: set[str], collector: ReceiptCollector) -> None:
    """Each message once, received once, with one receipt that the partner got."""
    engine = create_engine(rig.dsn)
    try:
        async with engine.connect() as connection:
            rows = (
                await connection.execute(
                    text(
                        "SELECT m.id, count(s.seq) FROM messages m JOIN message_status s "
                        "ON s.message_seq = m.seq AND s.status = 'received' "
                        "WHERE m.sender = 'lt-nijmegen' GROUP BY m.id"
                    )
                )
            ).all()
            inbox = dict(
                (
                    await connection.execute(
                        text(
                            "SELECT message_id, receipt_id FROM inbox WHERE sender = 'lt-nijmegen'"
                        )
                    )
                ).all()
            )
    finally:
        await engine.dispose()
    assert {row[0] for row in rows} == ids
    assert all(row[1] == 1 for row in rows), "a message was processed more than once"
    assert set(inbox) == ids
    for message_id in ids:
        assert collector.receipts[message_id] == {inbox[message_id]}, "another receipt was sent"


async def run_stream(rig: GatewayRig, disturb: Any) -> None:
    partner = WirePartner(
        "lt-nijmegen", rig.credentials["lt-nijmegen"], rig.signing_key("lt-nijmegen")
    )
    collector = ReceiptCollector(rig.credentials["lt-nijmegen"], "lt-nijmegen")
    done = asyncio.Event()
    collecting = asyncio.create_task(collector.run(done))
    async with partner:
        messages = [
            partner.envelope(random.choice(["regie.change", "case.return"]), case=NIJMEGEN)
            for _ in range(MESSAGES)
        ]
        ids = {m["id"] for m in messages}
        publishing = asyncio.create_task(publish_all(partner, messages))
        await disturb(lambda: len(ids - collector.receipts.keys()))
        await publishing
        await wait_for_receipts(collector, ids, rig)
    done.set()
    await collecting
    await check_store(rig, ids, collector)


async def test_three_kills_lose_nothing_and_do_nothing_twice(rig: GatewayRig) -> None:
    """SIGKILL at random moments, three times, restarted: exactly once in effect, all receipted."""

    async def kill_three_times(unreceipted: Any) -> None:
        for _ in range(3):
            await asyncio.sleep(random.uniform(0.3, 1.2))
            assert unreceipted() > 0, "the stream ended before the kill"
            rig.kill()
            rig.start()

    await run_stream(rig, kill_three_times)


async def test_a_broker_restart_mid_stream_loses_nothing(rig: GatewayRig) -> None:
    """RabbitMQ stopped and started mid-stream: the gateway reconnects, the same guarantees."""

    async def restart_broker(unreceipted: Any) -> None:
        await asyncio.sleep(random.uniform(0.3, 1.0))
        assert unreceipted() > 0, "the stream ended before the restart"
        subprocess.run(["rabbitmqctl", "stop_app"], check=True, capture_output=True, timeout=60)
        await asyncio.sleep(1)
        subprocess.run(["rabbitmqctl", "start_app"], check=True, capture_output=True, timeout=120)
        subprocess.run(
            ["rabbitmqctl", "await_startup"], check=True, capture_output=True, timeout=120
        )

    await run_stream(rig, restart_broker)
    assert rig.process is not None
    assert rig.process.poll() is None, "the gateway died with the broker"
