"""The checks of "nothing lost, nothing done twice in effect", shared by the crash and the
several-instances tests: a partner's inbox read the whole time, its messages published
through disturbances, and the store's word on each message.

A partner's message is done once in effect when the store holds it once, with
one RECEIVED status and one inbox row, and every receipt the partner got for
it is the receipt that inbox row names (the same receipt may arrive more than
once after a crash: the partner dedupes on its id).
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from typing import Any

import aio_pika
import pytest
from sqlalchemy import text

from adapters.amqp.topology import inbox_queue
from adapters.store.engine import create_engine
from tests.integration.gateway_rig import GatewayRig
from tests.integration.partner_side import WirePartner

Reaction = Callable[[dict[str, Any]], Awaitable[None]]


class ReceiptCollector:
    """Reads the partner's inbox the whole time, across broker restarts.

    `receipts` maps each answered message id to the receipt ids that came for
    it, `copies` counts how often each message arrived; `react`, when given,
    hears every message (a partner answering what the gateway sends it).
    """

    def __init__(self, url: str, party: str, react: Reaction | None = None) -> None:
        self.url, self.party, self.react = url, party, react
        self.receipts: dict[str, set[str]] = defaultdict(set)
        self.copies: Counter[str] = Counter()

    async def run(self, until: asyncio.Event) -> None:
        connection = await aio_pika.connect_robust(self.url)
        try:
            channel = await connection.channel()
            queue = await channel.declare_queue(inbox_queue(self.party), passive=True)

            async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
                envelope = json.loads(message.body)
                self.copies[envelope["id"]] += 1
                if envelope["type"] == "receipt":
                    self.receipts[envelope["reply_to"]].add(envelope["id"])
                if self.react is not None:
                    await self.react(envelope)
                await message.ack()

            await queue.consume(on_message)
            await until.wait()
        finally:
            await connection.close()


CHUNK, PAUSE = 50, 0.25  # paced: the stream lasts about 5 s, so every disturbance is mid-stream


async def send_surely(partner: WirePartner, message: dict[str, Any]) -> None:
    """Publish, trying again while the broker is away (a restart takes a while)."""
    for _ in range(100):
        try:
            await partner.send(message)
        except Exception:
            await asyncio.sleep(0.2)
        else:
            return
    pytest.fail(f"{partner.party} could not publish {message['id']} in 20 s", pytrace=False)


async def publish_all(partner: WirePartner, messages: list[dict[str, Any]]) -> None:
    for index, message in enumerate(messages):
        if index and index % CHUNK == 0:
            await asyncio.sleep(PAUSE)
        await send_surely(partner, message)


async def wait_for_receipts(collector: ReceiptCollector, ids: set[str], rig: GatewayRig) -> None:
    for _ in range(1800):
        if ids <= collector.receipts.keys():
            return
        await asyncio.sleep(0.1)
    missing = len(ids - collector.receipts.keys())
    pytest.fail(f"{missing} messages got no receipt in 180 s\n{rig.log_tail()}")


async def check_received_once(
    dsn: str,
    sender: str,
    ids: set[str],
    collector: ReceiptCollector,
    *,
    receipt_copies_once: bool = False,
) -> None:
    """Each message of `sender` once, received once, with one receipt that the partner got.

    `ids` are the messages that earn a receipt; `receipt_copies_once`: and the
    partner got that receipt exactly once (nothing was published twice).
    """
    engine = create_engine(dsn)
    try:
        async with engine.connect() as connection:
            rows = (
                await connection.execute(
                    text(
                        "SELECT m.id, count(s.seq) FROM messages m JOIN message_status s "
                        "ON s.message_seq = m.seq AND s.status = 'received' "
                        "WHERE m.sender = :sender AND m.type <> 'receipt' GROUP BY m.id"
                    ),
                    {"sender": sender},
                )
            ).all()
            inbox = dict(
                (
                    await connection.execute(
                        text(
                            "SELECT message_id, receipt_id FROM inbox "
                            "WHERE sender = :sender AND receipt_id IS NOT NULL"
                        ),
                        {"sender": sender},
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
        if receipt_copies_once:
            assert collector.copies[inbox[message_id]] == 1, "a receipt was published twice"


async def check_store(rig: GatewayRig, ids: set[str], collector: ReceiptCollector) -> None:
    """Each message once, received once, with one receipt that the partner got."""
    await check_received_once(rig.dsn, collector.party, ids, collector)
