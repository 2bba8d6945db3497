"""The operations endpoints: readiness, the routes, and the hub consumer's report to the metrics.

The store is real each time (SQLite in tmp_path; PostgreSQL at a closed port;
a server that accepts and never answers). The broker connection is a plain
object with the two attributes readiness reads of aio-pika's connection.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from prometheus_client.parser import text_string_to_metric_families

from adapters.amqp.hub import HubConsumer
from adapters.http.ops import CONTENT_TYPE_LATEST, Metrics, add_ops_routes, readiness
from adapters.store.sql import SqlStore, migrate, open_store
from gateway.bootstrap import Core
from gateway.domain.calendar import WorkingDayCalendar
from gateway.domain.contracts import Contracts
from gateway.service.outgoing import Hub
from gateway.service.pipeline import Verifier
from gateway.service.receiving import Handled
from gateway.vectors import vector_key
from tests.fakes.store import MemoryStore
from tests.unit.conftest import NOW, Sign

Client = Callable[[web.Application], Awaitable[TestClient[web.Request, web.Application]]]

CLOSED_PORT_DSN = "postgresql+asyncpg://vtgw@127.0.0.1:1/x"


@dataclass
class BrokerConnection:
    """What aio-pika's robust connection shows: closed for good, and connected now."""

    is_closed: bool = False
    connected: asyncio.Event = field(default_factory=asyncio.Event)


def connected() -> BrokerConnection:
    broker = BrokerConnection()
    broker.connected.set()
    return broker


@pytest.fixture
async def sqlite_dsn(tmp_path: Path) -> str:
    dsn = f"sqlite+aiosqlite:///{tmp_path / 'store.db'}"
    await migrate(dsn)
    return dsn


@pytest.fixture
async def sqlite_store(sqlite_dsn: str) -> AsyncIterator[SqlStore]:
    store = await open_store(sqlite_dsn)
    yield store
    await store.close()


@pytest.fixture
async def unreachable_store() -> AsyncIterator[SqlStore]:
    store = await open_store(CLOSED_PORT_DSN)
    yield store
    await store.close()


async def test_ready_when_the_store_answers_and_the_broker_is_connected(
    sqlite_store: SqlStore,
) -> None:
    found = await readiness(sqlite_store, connected())
    assert found.ready
    assert found.as_json() == {
        "status": "ready",
        "checks": {"store": "ok", "broker": "ok"},
        "not_ready": [],
    }


async def test_not_ready_names_an_unreachable_store_and_a_closed_broker(
    unreachable_store: SqlStore,
) -> None:
    """Both named; no host, port or driver message in the body."""
    found = await readiness(unreachable_store, BrokerConnection(is_closed=True))
    assert not found.ready
    assert found.as_json() == {
        "status": "not_ready",
        "checks": {"store": "unreachable", "broker": "closed"},
        "not_ready": ["broker", "store"],
    }


async def test_a_broker_connection_that_is_reconnecting_is_not_ready(
    sqlite_store: SqlStore,
) -> None:
    """aio-pika's robust connection is not closed while it reconnects: `connected` tells."""
    found = await readiness(sqlite_store, BrokerConnection(is_closed=False))
    assert found.checks == {"store": "ok", "broker": "reconnecting"}
    assert (await readiness(sqlite_store, None)).checks["broker"] == "not_connected"


async def test_a_store_that_does_not_answer_in_time_is_not_ready() -> None:
    """A server that accepts the connection and never says a word: the check gives up."""
    silent: list[asyncio.StreamWriter] = []

    async def accept(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        silent.append(writer)

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    store = await open_store(f"postgresql+asyncpg://vtgw@127.0.0.1:{port}/x")
    try:
        loop = asyncio.get_running_loop()
        started = loop.time()
        found = await readiness(store, connected(), timeout=0.3)
        assert loop.time() - started < 2
    finally:
        for writer in silent:
            writer.close()
        server.close()
        await server.wait_closed()
        await store.close()
    assert found.checks == {"store": "timeout", "broker": "ok"}


async def test_the_routes_answer_200_then_503_with_what_is_not_ready(
    sqlite_store: SqlStore, unreachable_store: SqlStore, aiohttp_client: Client, core: Core
) -> None:
    app = web.Application()
    add_ops_routes(app, store=sqlite_store, broker=connected(), metrics=None)
    client = await aiohttp_client(app)
    reply = await client.get("/readyz")
    assert (reply.status, (await reply.json())["status"]) == (200, "ready")
    assert (await client.get("/metrics")).status == 404  # no metrics given

    down = web.Application()
    add_ops_routes(down, store=unreachable_store, broker=BrokerConnection(True), metrics=None)
    client = await aiohttp_client(down)
    reply = await client.get("/readyz")
    assert reply.status == 503
    assert (await reply.json())["not_ready"] == ["broker", "store"]


async def test_the_metrics_route_serves_the_prometheus_text_format(
    sqlite_store: SqlStore, sqlite_dsn: str, aiohttp_client: Client, core: Core
) -> None:
    calendar = WorkingDayCalendar.for_region(core.region)
    metrics = Metrics(sqlite_store, calendar, "vt-gz", lambda: NOW)
    app = web.Application()
    add_ops_routes(app, store=sqlite_store, broker=connected(), metrics=metrics)
    client = await aiohttp_client(app)
    try:
        reply = await client.get("/metrics")
        text = await reply.text()
    finally:
        await metrics.close()
    assert reply.status == 200
    assert reply.headers["Content-Type"] == CONTENT_TYPE_LATEST
    values = {s.name: s.value for f in text_string_to_metric_families(text) for s in f.samples}
    assert values["vtgw_store_scrape_ok"] == 1
    assert values["vtgw_outbox_depth"] == 0
    assert values["vtgw_handovers_overdue"] == 0
    assert values["vtgw_alerts_open"] == 0


class FakeDelivery:
    """What the hub consumer uses of an aio-pika incoming message."""

    def __init__(self, body: bytes, user_id: str) -> None:
        self.body, self.user_id, self.message_id = body, user_id, None
        self.acked = False

    async def ack(self, multiple: bool = False) -> None:
        self.acked = True

    async def nack(self, requeue: bool = True) -> None:
        raise AssertionError("nothing is returned to the queue here")


def consumer(core: Core, contracts: Contracts, observe: Callable[[Handled], None]) -> HubConsumer:
    hub = Hub(
        Verifier(contracts, core.validator, "vt-gz"),
        vector_key("vt-gz"),
        WorkingDayCalendar.for_region(core.region),
    )
    return HubConsumer(
        None,  # type: ignore[arg-type]
        None,  # type: ignore[arg-type]
        MemoryStore(),
        hub,
        lambda: NOW,
        batch_size=10,
        batch_wait=timedelta(milliseconds=5),
        observe=observe,
    )


NIJMEGEN = {"ref": "VT-2026-000123", "gemeente": "GM0268"}


async def test_the_hub_consumer_reports_each_committed_delivery(
    core: Core, keyed_contracts: Contracts, sign: Sign
) -> None:
    """One `Handled` per delivery, after the commit, before the ack."""
    seen: list[Handled] = []
    raw = sign("regie.change", sender="lt-nijmegen", case=NIJMEGEN)
    batch = [FakeDelivery(raw, "lt-nijmegen"), FakeDelivery(raw, "lt-nijmegen")]
    await consumer(core, keyed_contracts, seen.append)._store_batch(batch)  # type: ignore[arg-type]
    assert [(h.message_type, h.duplicate) for h in seen] == [
        ("regie.change", False),
        ("regie.change", True),
    ]
    assert batch[-1].acked


async def test_a_failing_observer_costs_no_delivery(
    core: Core, keyed_contracts: Contracts, sign: Sign
) -> None:
    def broken(_handled: Handled) -> None:
        raise ValueError("a defect in the metrics")

    delivery = FakeDelivery(
        sign("regie.change", sender="lt-nijmegen", case=NIJMEGEN), "lt-nijmegen"
    )
    await consumer(core, keyed_contracts, broken)._store_batch([delivery])  # type: ignore[list-item]
    assert delivery.acked
