"""`vt-gateway run`: one process runs the hub consumer, the relay, the timers and the API.

Wiring only: the real adapters are put behind the service layer's ports
here. Connections are made inside the running loop. SIGTERM stops taking new
deliveries, finishes the batch in hand (acking nothing unstored), lets the
relay finish its round, and closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import faulthandler
import os
import signal
import socket
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import structlog
from aiohttp import web

from adapters.amqp.connection import connect
from adapters.amqp.hub import HubConsumer
from adapters.amqp.publisher import AmqpPublisher
from adapters.amqp.topology import IN_QUEUE, declare_topology
from adapters.crypto.keyfiles import key_path, read_private_key
from adapters.dashboard import create_dashboard_app
from adapters.email.bridge import EmailBridge, open_bridge
from adapters.http.api import create_api_app
from adapters.http.auth import load_api_tokens
from adapters.http.ops import Metrics, add_ops_routes
from adapters.http.proxy import forwarding_middleware, trusted_networks
from adapters.store.sql import SqlStore, migrate, open_store
from gateway.bootstrap import Core, Paths, load_core
from gateway.domain.calendar import WorkingDayCalendar
from gateway.domain.contracts import Transport
from gateway.domain.errors import ConfigurationError, TransientError
from gateway.domain.signatures import SigningKey
from gateway.service.outgoing import Hub
from gateway.service.ports import Publisher
from gateway.service.relay import Claim, fire_due_timers, relay_once
from gateway.settings import Settings

log = structlog.get_logger("vtgw.run")

Clock = Callable[[], datetime]

BROKER_CLOSE_TIMEOUT = 5.0


def utc_now() -> datetime:
    return datetime.now(UTC)


def hub_signing_key(core: Core, settings: Settings, now: datetime) -> SigningKey:
    """The hub's key: the configured kid, or the newest valid key whose private half is on disk."""
    hub = core.contracts.hub
    candidates = [
        key
        for key in sorted(hub.keys, key=lambda k: k.not_before, reverse=True)
        if key.valid_for(signed_at=now, now=now)
        and (not settings.signing_kid or key.kid == settings.signing_kid)
        and key_path(settings.keys_dir, hub.party, key.kid).exists()
    ]
    if not candidates:
        raise ConfigurationError(
            f"no valid signing key of '{hub.party}' with a private key in {settings.keys_dir}"
            " (development: `vt-gateway dev init`)"
        )
    kid = candidates[0].kid
    return read_private_key(key_path(settings.keys_dir, hub.party, kid), kid)


def hub_successor_keys(core: Core, settings: Settings, now: datetime) -> tuple[SigningKey, ...]:
    """The hub's keys whose window opens after `now`, private halves on disk: a rotation under
    way, taken over at their `not_before` without a restart (docs/keys.md). None when a kid
    is pinned."""
    hub = core.contracts.hub
    if settings.signing_kid:
        return ()
    return tuple(
        read_private_key(key_path(settings.keys_dir, hub.party, key.kid), key.kid)
        for key in sorted(hub.keys, key=lambda k: k.not_before)
        if key.not_before > now
        and not key.revoked
        and key_path(settings.keys_dir, hub.party, key.kid).exists()
    )


@dataclass
class Gateway:
    """The running parts, so that a test or `run` can start and stop them."""

    settings: Settings
    core: Core
    hub: Hub
    store: SqlStore
    clock: Clock = utc_now
    bridge: EmailBridge | None = None
    metrics: Metrics | None = None  # the operations metrics (`/metrics`), one registry each

    async def relay_loop(self, publisher: AmqpPublisher, stopping: asyncio.Event) -> None:
        """Publish the outbox and fire due timers until asked to stop.

        With the e-mail bridge, messages to parties on the e-mail transport are
        mailed, and after each round the bridge records the receipts its mails
        earned and sends the reminders that are due. With metrics, each
        publisher counts what it published.
        """
        claim = Claim(claimer=_instance_name(), lease=self.settings.lease)
        contracts = self.core.contracts
        interval = self.settings.relay_interval.total_seconds()
        publishers: dict[Transport, Publisher] = {Transport.AMQP: publisher}
        if self.bridge is not None:
            publishers[Transport.EMAIL] = self.bridge.publisher()
        if self.metrics is not None:
            metrics = self.metrics
            publishers = {t: metrics.counting(p, t) for t, p in publishers.items()}
        loop = asyncio.get_running_loop()
        timers_due = loop.time()
        while not stopping.is_set():
            busy = 0
            try:
                busy += await relay_once(self.store, publishers, contracts, claim, self.clock())
                if self.bridge is not None:
                    busy += await self.bridge.after_round(self.clock())
                if loop.time() >= timers_due:  # timers are minutes apart: look each interval
                    busy += await fire_due_timers(self.store, self.hub, claim, self.clock())
                    timers_due = loop.time() + interval
            except TransientError as exc:
                log.warning("relay_retrying", error=str(exc))
            if not busy:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stopping.wait(), interval)


async def start_gateway(settings: Settings, clock: Clock = utc_now) -> Gateway:
    paths = Paths.defaults(contracts=settings.contracts_dir)
    core = load_core(paths)
    calendar = WorkingDayCalendar.for_region(core.region)
    now = clock()
    hub = Hub(
        core.verifier(settings.party),
        hub_signing_key(core, settings, now),
        calendar,
        successors=hub_successor_keys(core, settings, now),
    )
    await migrate(settings.store_dsn)
    store = await open_store(settings.store_dsn)
    bridge = (
        open_bridge(settings, store, hub, calendar, clock) if settings.email is not None else None
    )
    # The bridge, the metrics and the dashboard share this store's pool; the metrics read
    # their gauges and latencies with COUNT queries of their own (adapters/http/ops.py).
    metrics = Metrics(store, calendar, settings.party, clock)
    with contextlib.suppress(TransientError):  # the first scrape starts the histograms then
        await metrics.prime()
    return Gateway(settings, core, hub, store, clock, bridge, metrics)


async def run(settings: Settings) -> None:
    """Run until SIGTERM or SIGINT."""
    faulthandler.register(signal.SIGUSR1, all_threads=True)  # operators: dump stacks to stderr
    gateway = await start_gateway(settings)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)

    connection = await connect(settings.amqp_urls, name=f"vt-gateway {_instance_name()}")
    consume_channel = await connection.channel()
    await consume_channel.set_qos(prefetch_count=settings.prefetch)
    parties = [c.party for c in gateway.core.contracts if c.transport is Transport.AMQP]
    await declare_topology(consume_channel, parties, delivery_limit=settings.delivery_limit)
    # A passive declare, not get_queue(ensure=False): only a queue declared on the
    # robust channel gets its consumer back after the broker restarts.
    queue = await consume_channel.declare_queue(IN_QUEUE, passive=True)
    consumer = HubConsumer(
        consume_channel,
        queue,
        gateway.store,
        gateway.hub,
        gateway.clock,
        batch_size=settings.batch_size,
        batch_wait=settings.batch_wait,
        observe=gateway.metrics.observe if gateway.metrics is not None else None,
    )
    publish_channel = await connection.channel(publisher_confirms=True)
    publisher = AmqpPublisher(publish_channel)

    # Behind the TLS reverse proxy: the client and scheme it names (adapters/http/proxy.py).
    proxies = trusted_networks(settings.trusted_proxies)
    app = web.Application(middlewares=[forwarding_middleware(proxies)])
    api = create_api_app(
        store=gateway.store,
        hub=gateway.hub,
        region=gateway.core.region,
        tokens=load_api_tokens(settings.api_tokens_file),
        clock=gateway.clock,
    )
    app.add_subapp("/api/v1", api)
    if gateway.bridge is not None:
        app.add_subapp("/bridge", gateway.bridge.pages_app())
    if settings.dashboard is not None:  # absolute links: mounted at exactly /dashboard
        dashboard = create_dashboard_app(
            store=gateway.store,
            hub=gateway.hub,
            region=gateway.core.region,
            clock=gateway.clock,
            settings=settings.dashboard,
        )
        app.add_subapp("/dashboard", dashboard)
    app.router.add_get("/healthz", _healthz)
    # /readyz: the store and the broker. The e-mail bridge's SMTP server is not part of
    # it: mail to the teams waits in the outbox while the server is away.
    add_ops_routes(app, store=gateway.store, broker=connection, metrics=gateway.metrics)
    # Live-update streams of the dashboard stay open: do not wait long for them at SIGTERM.
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=2.0)
    await runner.setup()
    site = web.TCPSite(runner, settings.http_host, settings.http_port)
    await site.start()
    if gateway.bridge is not None:
        await gateway.bridge.start_listener()

    await consumer.start()
    relay = asyncio.create_task(gateway.relay_loop(publisher, stopping))
    log.info("gateway_started", instance=_instance_name(), party=settings.party)
    await stopping.wait()
    log.info("gateway_stopping")
    await consumer.stop()
    await relay
    if gateway.bridge is not None:
        await gateway.bridge.close()
    await runner.cleanup()
    with contextlib.suppress(TimeoutError):  # the broker may be away: do not hang on it
        await asyncio.wait_for(connection.close(), BROKER_CLOSE_TIMEOUT)
    await gateway.store.close()
    if gateway.metrics is not None:
        await gateway.metrics.close()
    log.info("gateway_stopped")


async def _healthz(_request: web.Request) -> web.Response:
    return web.json_response({"status": "alive"})


def _instance_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"
