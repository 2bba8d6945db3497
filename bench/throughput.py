"""End to end: partner -> gateway -> receipt back, beside a bare aio-pika request/reply.

This process plays the partner: it keeps WINDOW signed messages in flight to
a real `vt-gateway run` (another process) and times each until its receipt
is back. The floor is the same loop against a bare echo server (consume,
publish a reply, ack; no signing, no validation, no store) in another
process, on quorum queues, in the same run. Needs RabbitMQ and PostgreSQL as
the tests do.

    .venv/bin/python bench/throughput.py [--messages 5000] [--window 200]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import aio_pika

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from adapters.amqp.topology import inbox_queue  # noqa: E402
from tests.integration.amqp_support import amqp_url, dedicated_vhost  # noqa: E402
from tests.integration.gateway_rig import GatewayRig, gateway_rig  # noqa: E402
from tests.integration.partner_side import WirePartner  # noqa: E402

PARTY = "lt-nijmegen"
CASE = {"ref": "VT-2026-000321", "gemeente": "GM0268"}
QUORUM = {"x-queue-type": "quorum"}


@dataclass(frozen=True)
class Figures:
    name: str
    count: int
    seconds: float
    latencies: list[float]

    @property
    def rate(self) -> float:
        return self.count / self.seconds

    def line(self) -> str:
        ordered = sorted(self.latencies)
        p50 = statistics.median(ordered) * 1000
        p99 = ordered[max(0, int(len(ordered) * 0.99) - 1)] * 1000
        return (
            f"{self.name:<28} {self.rate:8.0f} msg/s   p50 {p50:7.1f} ms   "
            f"p99 {p99:7.1f} ms   ({self.count} in {self.seconds:.1f} s)"
        )


async def round_trips(
    url: str,
    reply_queue: str,
    messages: list[tuple[str, bytes]],
    *,
    window: int,
    answered: Callable[[aio_pika.abc.AbstractIncomingMessage], str | None],
    send: Callable[[bytes, str], Awaitable[None]],
) -> tuple[float, list[float]]:
    """Keep `window` messages in flight; the whole time, and the time each took."""
    connection = await aio_pika.connect_robust(url)
    channel = await connection.channel()
    await channel.set_qos(prefetch_count=window * 2)
    replies = await channel.declare_queue(reply_queue, passive=True)
    started: dict[str, float] = {}
    latencies: list[float] = []
    free = asyncio.Semaphore(window)
    finished = asyncio.Event()

    async def on_reply(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        key = answered(message)
        await message.ack()
        if key is not None and key in started:
            latencies.append(time.perf_counter() - started.pop(key))
            free.release()
            if len(latencies) == len(messages):
                finished.set()

    await replies.consume(on_reply)
    sending: set[asyncio.Task[None]] = set()
    begin = time.perf_counter()
    for key, raw in messages:
        await free.acquire()
        started[key] = time.perf_counter()
        task = asyncio.create_task(send(raw, key))  # publishes pipelined, confirms awaited each
        sending.add(task)
        task.add_done_callback(sending.discard)
    await asyncio.wait_for(finished.wait(), timeout=900)
    seconds = time.perf_counter() - begin
    await connection.close()
    return seconds, latencies


async def through_gateway(
    rig: GatewayRig, count: int, window: int, name: str, cases: Sequence[dict[str, str]] = (CASE,)
) -> Figures:
    """`count` regie changes from PARTY, on the `cases` in turn, `window` in flight."""
    partner = WirePartner(PARTY, rig.credentials[PARTY], rig.signing_key(PARTY))
    async with partner:
        envelopes = [
            partner.envelope("regie.change", case=cases[i % len(cases)]) for i in range(count)
        ]
        messages = [(e["id"], json.dumps(e).encode()) for e in envelopes]

        async def send(raw: bytes, key: str) -> None:
            await partner.send(raw, message_id=key, kind="regie.change")

        def receipt_of(message: aio_pika.abc.AbstractIncomingMessage) -> str | None:
            envelope = json.loads(message.body)
            return envelope.get("reply_to") if envelope.get("type") == "receipt" else None

        seconds, latencies = await round_trips(
            rig.credentials[PARTY],
            inbox_queue(PARTY),
            messages,
            window=window,
            answered=receipt_of,
            send=send,
        )
    return Figures(name, count, seconds, latencies)


async def through_echo(url: str, count: int, window: int, payload: bytes) -> Figures:
    connection = await aio_pika.connect_robust(url)
    channel = await connection.channel(publisher_confirms=True)
    for name in ("bench.requests", "bench.replies"):
        await channel.declare_queue(name, durable=True, arguments=QUORUM)
    server = subprocess.Popen(  # noqa: S603 - our own script
        [
            sys.executable,
            str(ROOT / "bench" / "echo_server.py"),
            url,
            "bench.requests",
            "bench.replies",
            str(window),
        ],
        stdout=subprocess.PIPE,
    )
    assert server.stdout is not None
    server.stdout.readline()  # "ready"

    async def send(raw: bytes, key: str) -> None:
        message = aio_pika.Message(
            raw, message_id=key, delivery_mode=aio_pika.DeliveryMode.PERSISTENT
        )
        await channel.default_exchange.publish(message, routing_key="bench.requests")

    try:
        messages = [(f"m{i}", payload) for i in range(count)]
        seconds, latencies = await round_trips(
            url,
            "bench.replies",
            messages,
            window=window,
            answered=lambda m: m.message_id,
            send=send,
        )
    finally:
        server.terminate()
        server.wait()
        await connection.close()
    return Figures("bare aio-pika request/reply", count, seconds, latencies)


def gateway_figures(backend: str, count: int, window: int) -> Figures:
    with tempfile.TemporaryDirectory() as folder, gateway_rig(Path(folder), "bench") as rig:
        if backend == "SQLite":
            rig.dsn = f"sqlite+aiosqlite:///{Path(folder) / 'gateway.db'}"
            rig.write_settings()
        rig.start()
        try:
            return asyncio.run(through_gateway(rig, count, window, f"gateway, {backend}"))
        finally:
            rig.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--window", type=int, default=200)
    args = parser.parse_args()
    with dedicated_vhost() as vhost:
        payload = json.dumps({"padding": "x" * 1000}).encode()
        bare = asyncio.run(through_echo(amqp_url(vhost), args.messages, args.window, payload))
    gateways = [gateway_figures(b, args.messages, args.window) for b in ("SQLite", "PostgreSQL")]
    print(
        f"{args.messages} messages of about 1 KiB, {args.window} in flight, quorum queues, "
        "two processes each"
    )
    print(bare.line())
    for figures in gateways:
        print(f"{figures.line()}   ratio {figures.rate / bare.rate:.2f}")
    print("goal: PostgreSQL at least 0.50 of the bare round trip")


if __name__ == "__main__":
    main()
