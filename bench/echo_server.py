"""The bare floor of bench/throughput.py: consume, publish a reply, ack. Nothing else.

python bench/echo_server.py AMQP_URL REQUEST_QUEUE REPLY_QUEUE PREFETCH
"""

from __future__ import annotations

import asyncio
import sys

import aio_pika


async def serve(url: str, requests: str, replies: str, prefetch: int) -> None:
    connection = await aio_pika.connect_robust(url)
    channel = await connection.channel(publisher_confirms=True)
    await channel.set_qos(prefetch_count=prefetch)
    queue = await channel.declare_queue(requests, passive=True)

    async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        await channel.default_exchange.publish(
            aio_pika.Message(
                message.body,
                message_id=message.message_id,
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            ),
            routing_key=replies,
        )
        await message.ack()

    await queue.consume(on_message)
    print("ready", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(serve(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])))
