"""Crashes and restarts: nothing lost, nothing done twice, every receipt sent.

1,000 messages in flight from a partner; the gateway killed with SIGKILL at
random moments three times and started again; then the same with RabbitMQ
restarted mid-stream. Afterwards the store must hold each message exactly
once with one RECEIVED status, and the partner must have received a receipt
for every message, the same receipt each time it got one more than once.
"""

from __future__ import annotations

import asyncio
import random
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.exactly_once import (
    ReceiptCollector,
    check_store,
    publish_all,
    wait_for_receipts,
)
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
