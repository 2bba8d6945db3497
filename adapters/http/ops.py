"""Operations endpoints: `/readyz` (may this instance take work) and `/metrics` (Prometheus).

`/healthz` (in `gateway.runtime`) says the process is alive. `/readyz` says it
can do its work: the store answers a short transaction within
`READY_TIMEOUT` seconds and the broker connection is open and connected; else
503 with the checks that failed. `/metrics` is the Prometheus text format of a
registry of this gateway's own (never the process-global one).

What the metrics carry: message types, parties, outcomes, rejection codes,
handover moments and states. Never a case reference, a message id or content.

Where the figures come from, without the service layer knowing of Prometheus:

- counters, counted as things happen in this process: the hub consumer
  reports each delivery's `Handled` (`Metrics.observe`); the relay's
  publishers are wrapped in a `CountingPublisher`.
- gauges, read from the store at scrape time with COUNT queries on indexed
  columns (no rows are loaded): open and overdue handovers, outbox depth,
  dead letters, open alerts. They describe the shared store, not this
  process: with several instances, aggregate them with `max`, never `sum`.
- latency histograms, also at scrape time: the status rows and ledger
  entries written since the previous scrape (a watermark on their
  sequence), so a scrape reads only what is new. The first read after the
  start only sets the watermark: the histograms count what happened while
  this process ran, as a counter does. This is approximate on PostgreSQL: a
  row whose transaction commits after a later-numbered row was already read
  is not observed. Good enough for trends; the store keeps the exact times.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Final, Protocol

import structlog
from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection

from adapters.store.engine import translated
from adapters.store.sql import SqlStore
from adapters.store.tables import (
    alerts,
    ledger,
    message_status,
    messages,
    outbox,
    overdrachten,
    rejected,
)
from gateway.domain.calendar import WorkingDayCalendar
from gateway.domain.contracts import Transport
from gateway.domain.deadlines import CONFIRMATION
from gateway.domain.delivery import Status
from gateway.domain.errors import GatewayError
from gateway.domain.handover import OverdrachtState
from gateway.domain.ledger import EntryKind, Evidence
from gateway.service.ports import OutboxItem, Publisher, Store
from gateway.service.receiving import Disposition, Handled

log = structlog.get_logger("vtgw.ops")

Clock = Callable[[], datetime]

READY_TIMEOUT: Final = 2.0
"""Seconds the store may take to answer the readiness check."""

SCRAPE_TIMEOUT: Final = 5.0
"""Seconds the store may take to answer a scrape's queries."""

LATENCY_BATCH: Final = 10_000
"""Most status rows (or ledger entries) one scrape reads; the rest waits for the next."""

OPEN_STATES: Final = tuple(s.value for s in OverdrachtState if not s.final)

# The receipt (level 2) is due within minutes (PT15M by default, doubling per resend).
RECEIPT_BUCKETS: Final = (1, 5, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 86400)
_DAY = 86400
# The confirmation comes within the advised term: days to weeks.
CONFIRMATION_BUCKETS: Final = (
    3600,
    4 * 3600,
    8 * 3600,
    _DAY,
    2 * _DAY,
    3 * _DAY,
    5 * _DAY,
    7 * _DAY,
    10 * _DAY,
    14 * _DAY,
    21 * _DAY,
    28 * _DAY,
    42 * _DAY,
    56 * _DAY,
)

UNKNOWN: Final = "unknown"  # the type of a refused message: what it claims is not trusted


# --- readiness -----------------------------------------------------------------------


class BrokerConnection(Protocol):
    """What readiness reads of the broker connection (aio-pika's robust connection)."""

    @property
    def is_closed(self) -> bool:
        """Closed for good (closed by us, or given up)."""
        ...

    @property
    def connected(self) -> asyncio.Event:
        """Set while a connection to the broker is up; clear while the robust one reconnects."""
        ...


@dataclass(frozen=True, slots=True)
class Readiness:
    """Each check's finding: `ok`, or what is wrong (no host names, no credentials)."""

    checks: Mapping[str, str]

    @property
    def ready(self) -> bool:
        return all(finding == "ok" for finding in self.checks.values())

    def as_json(self) -> dict[str, object]:
        return {
            "status": "ready" if self.ready else "not_ready",
            "checks": dict(self.checks),
            "not_ready": sorted(name for name, finding in self.checks.items() if finding != "ok"),
        }


async def readiness(
    store: Store, broker: BrokerConnection | None, *, timeout: float = READY_TIMEOUT
) -> Readiness:
    """Whether this instance can take work: the store answers and the broker is connected.

    The e-mail bridge's SMTP server is deliberately not a check: mail to the
    teams waits in the outbox (and the relay retries it) while the SMTP server
    is away, so nothing is lost and this instance can go on taking work.
    """
    return Readiness({"store": await _store_check(store, timeout), "broker": _broker_check(broker)})


async def _store_check(store: Store, timeout: float) -> str:
    """One short transaction with one primary-key lookup that finds nothing."""

    async def probe() -> None:
        async with store.transaction() as uow:
            await uow.inbox.get("", "")

    try:
        await asyncio.wait_for(probe(), timeout)
    except TimeoutError:
        log.warning("not_ready", check="store", error="timeout", timeout=timeout)
        return "timeout"
    except (GatewayError, OSError, SQLAlchemyError) as error:  # refused, dropped, denied
        log.warning("not_ready", check="store", error=str(error))
        return "unreachable"
    return "ok"


def _broker_check(broker: BrokerConnection | None) -> str:
    if broker is None:
        return "not_connected"
    if broker.is_closed:
        return "closed"
    if not broker.connected.is_set():
        return "reconnecting"
    return "ok"


# --- metrics -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StoreFigures:
    """The store's gauges at one scrape."""

    open_handovers: Mapping[str, int]  # by state
    overdue_handovers: int
    outbox_depth: int
    dead_letters: int
    open_alerts: int


@dataclass(slots=True)
class _Watermarks:
    """The last status row and ledger entry the latency histograms have seen."""

    status_seq: int
    ledger_sequence: int


@dataclass(frozen=True, slots=True)
class _Latencies:
    receipts: list[tuple[str, float]] = field(default_factory=list)  # (recipient, seconds)
    confirmations: list[tuple[str, float]] = field(default_factory=list)  # (moment, seconds)


class Metrics:
    """The gateway's Prometheus registry and its metric objects; one per gateway.

    `store` is the gateway's SQL store: the gauges and latencies are read on
    its connections with their own cheap queries.
    """

    def __init__(
        self, store: SqlStore, calendar: WorkingDayCalendar, party: str, clock: Clock
    ) -> None:
        self._store = store
        self._calendar = calendar
        self._party = party
        self._clock = clock
        self._lock = asyncio.Lock()
        self._watermarks: _Watermarks | None = None
        self.figures: StoreFigures | None = None
        self.registry = CollectorRegistry()
        self.received = Counter(
            "vtgw_messages_received",
            "Messages the hub consumer took from vtgw.in, by type and outcome "
            "(accepted, refused, duplicate); a refused message's type is 'unknown'.",
            ["type", "outcome"],
            registry=self.registry,
        )
        self.refused = Counter(
            "vtgw_messages_refused",
            "Messages the hub consumer refused (to vtgw.dead), by the protocol's error code.",
            ["code"],
            registry=self.registry,
        )
        self.published = Counter(
            "vtgw_messages_published",
            "Messages the relay published with the transport's confirm, by type and transport; "
            "resends count again.",
            ["type", "transport"],
            registry=self.registry,
        )
        self.receipt_latency = Histogram(
            "vtgw_receipt_latency_seconds",
            "From the first SENT of an outgoing message to its DELIVERED (the recipient's "
            "receipt), by recipient.",
            ["recipient"],
            buckets=RECEIPT_BUCKETS,
            registry=self.registry,
        )
        self.confirmation_latency = Histogram(
            "vtgw_confirmation_latency_seconds",
            "From an overdracht.notice (its handover opened) to the recipient's confirmation, "
            "by moment (A, B, C).",
            ["moment"],
            buckets=CONFIRMATION_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(_StoreCollector(self))

    # counters --------------------------------------------------------------

    def observe(self, handled: Handled) -> None:
        """Count one delivery the hub consumer stored (the consumer calls it after the commit)."""
        if handled.disposition is Disposition.DEAD_LETTER:
            outcome = "refused"
            code = handled.rejection.code.value if handled.rejection is not None else UNKNOWN
            self.refused.labels(code=code).inc()
        elif handled.duplicate:
            outcome = "duplicate"
        else:
            outcome = "accepted"
        message_type = handled.message_type if outcome != "refused" else None
        self.received.labels(type=message_type or UNKNOWN, outcome=outcome).inc()

    def count_published(self, item: OutboxItem, transport: Transport) -> None:
        self.published.labels(type=item.type, transport=transport.value).inc()

    def counting(self, publisher: Publisher, transport: Transport) -> Publisher:
        """The publisher, counting what it publishes."""
        return CountingPublisher(publisher, transport, self.count_published)

    # figures from the store ----------------------------------------------------

    async def prime(self) -> None:
        """Start the latency histograms from now: what is in the store already is not observed."""
        async with self._lock:
            await self._read(self._clock(), figures=False)

    async def refresh(self) -> None:
        """Read the gauges and the latencies since the last scrape; on failure, leave gauges out.

        A failure is logged and shows as `vtgw_store_scrape_ok 0`: the counters
        are still served.
        """
        async with self._lock:
            try:
                await asyncio.wait_for(self._read(self._clock(), figures=True), SCRAPE_TIMEOUT)
            except (TimeoutError, GatewayError, OSError, SQLAlchemyError) as error:
                log.warning("metrics_store_unavailable", error=str(error) or type(error).__name__)
                self.figures = None

    async def exposition(self) -> bytes:
        """The Prometheus text format, with fresh figures from the store."""
        await self.refresh()
        return generate_latest(self.registry)

    async def close(self) -> None:
        """Nothing of its own to close: the store is the gateway's, closed with it."""

    async def _read(self, now: datetime, *, figures: bool) -> None:
        with translated():
            async with self._store.connection() as db:
                marks = self._watermarks
                if marks is None:
                    latest = _Watermarks(
                        await _max(db, message_status.c.seq), await _max(db, ledger.c.sequence)
                    )
                    found, latencies = latest, _Latencies()
                else:
                    found, latencies = await _new_latencies(db, marks)
                read = (
                    await _store_figures(db, self._calendar, now, self._party) if figures else None
                )
        # Nothing awaited from here on: what was read is observed exactly once.
        for recipient, seconds in latencies.receipts:
            self.receipt_latency.labels(recipient=recipient).observe(seconds)
        for moment, seconds in latencies.confirmations:
            self.confirmation_latency.labels(moment=moment).observe(seconds)
        self._watermarks = found
        if figures:
            self.figures = read


class CountingPublisher:
    """A `Publisher` that counts each publish its transport confirmed."""

    def __init__(
        self,
        inner: Publisher,
        transport: Transport,
        count: Callable[[OutboxItem, Transport], None],
    ) -> None:
        self._inner = inner
        self._transport = transport
        self._count = count

    async def publish(self, item: OutboxItem) -> None:
        await self._inner.publish(item)
        self._count(item, self._transport)


class _StoreCollector(Collector):
    """The store's gauges, as the last scrape read them."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterable[Metric]:
        figures = self._metrics.figures
        yield GaugeMetricFamily(
            "vtgw_store_scrape_ok",
            "1 when this scrape read the store's figures; 0: the store did not answer and "
            "the store's gauges are left out.",
            value=0 if figures is None else 1,
        )
        if figures is None:
            return
        open_handovers = GaugeMetricFamily(
            "vtgw_handovers_open",
            "Handovers not yet final (VT still responsible), by state.",
            labels=["state"],
        )
        for state in OPEN_STATES:
            open_handovers.add_metric([state], figures.open_handovers.get(state, 0))
        yield open_handovers
        yield GaugeMetricFamily(
            "vtgw_handovers_overdue",
            "Handovers VT still holds after their confirmation deadline (GET /api/v1/overdue).",
            value=figures.overdue_handovers,
        )
        yield GaugeMetricFamily(
            "vtgw_outbox_depth",
            "Outbox rows not yet published (AMQP and e-mail).",
            value=figures.outbox_depth,
        )
        yield GaugeMetricFamily(
            "vtgw_dead_letters",
            "Refused messages kept in the store (the rejected table); by code: "
            "vtgw_messages_refused_total.",
            value=figures.dead_letters,
        )
        yield GaugeMetricFamily(
            "vtgw_alerts_open",
            "Alerts opened and not yet closed (undeliverable partners, overdue terms, bounces).",
            value=figures.open_alerts,
        )


# --- the queries (SQLAlchemy Core on the store's tables) ------------------------------


async def _max(db: AsyncConnection, column: ColumnElement[int]) -> int:
    value = await db.scalar(select(func.max(column)))
    return int(value or 0)


async def _store_figures(
    db: AsyncConnection, calendar: WorkingDayCalendar, now: datetime, party: str
) -> StoreFigures:
    """The gauges, each one COUNT on an indexed column (partial indexes where they exist)."""
    by_state = await db.execute(
        select(overdrachten.c.state, func.count())
        .where(overdrachten.c.state.in_(OPEN_STATES))
        .group_by(overdrachten.c.state)
    )
    return StoreFigures(
        open_handovers={row[0]: int(row[1]) for row in by_state},
        overdue_handovers=await overdue_handovers(db, calendar, now, party),
        outbox_depth=int(
            await db.scalar(
                select(func.count()).select_from(outbox).where(outbox.c.published_at.is_(None))
            )
            or 0
        ),
        dead_letters=int(await db.scalar(select(func.count()).select_from(rejected)) or 0),
        open_alerts=int(
            await db.scalar(
                select(func.count()).select_from(alerts).where(alerts.c.closed_at.is_(None))
            )
            or 0
        ),
    )


def last_overdue_day(calendar: WorkingDayCalendar, now: datetime) -> date:
    """The latest deadline date whose confirmation term has ended by `now`.

    The confirmation is due at closing on the deadline date, or on the next
    working day (`deadlines.CONFIRMATION`); that moment only grows with the
    date, so a handover is overdue exactly when its deadline is this day or
    earlier, which one indexed comparison can count.
    """
    day = calendar.local_day(now)
    while CONFIRMATION.due(calendar, day) > now:
        day -= timedelta(days=1)
    return day


async def overdue_handovers(
    db: AsyncConnection, calendar: WorkingDayCalendar, now: datetime, party: str
) -> int:
    """How many handovers `views.held_past_deadline` lists, counted by the database.

    Open, past the confirmation deadline (the advised term, or the latest
    deferral's date), and the case still held by VT by its latest ledger entry.
    """
    cutoff = last_overdue_day(calendar, now)
    holder = (
        select(ledger.c.holder)
        .where(ledger.c.case_ref == overdrachten.c.case_ref)
        .order_by(ledger.c.sequence.desc())
        .limit(1)
        .correlate(overdrachten)
        .scalar_subquery()
    )
    deadline_passed = or_(
        and_(overdrachten.c.deferred_to.is_(None), overdrachten.c.advised_term <= cutoff),
        overdrachten.c.deferred_to <= cutoff,
    )
    count = await db.scalar(
        select(func.count())
        .select_from(overdrachten)
        .where(overdrachten.c.state.in_(OPEN_STATES), deadline_passed, holder == party)
    )
    return int(count or 0)


async def _new_latencies(db: AsyncConnection, marks: _Watermarks) -> tuple[_Watermarks, _Latencies]:
    """The receipts and confirmations recorded after the watermarks, and the new watermarks."""
    receipts, status_seq = await _receipt_latencies(db, marks.status_seq)
    confirmations, sequence = await _confirmation_latencies(db, marks.ledger_sequence)
    return _Watermarks(status_seq, sequence), _Latencies(receipts, confirmations)


async def _receipt_latencies(
    db: AsyncConnection, after: int
) -> tuple[list[tuple[str, float]], int]:
    """SENT -> DELIVERED of the messages delivered after status row `after`.

    From the message's first SENT (a resend's wait counts), read through the
    index on (message_seq, seq).
    """
    upto = await _max(db, message_status.c.seq)
    sent = message_status.alias("sent_status")
    first_sent = (
        select(func.min(sent.c.at))
        .where(
            sent.c.message_seq == message_status.c.message_seq, sent.c.status == Status.SENT.value
        )
        .correlate(message_status)
        .scalar_subquery()
    )
    rows = (
        await db.execute(
            select(message_status.c.seq, message_status.c.at, messages.c.recipient, first_sent)
            .join_from(message_status, messages, messages.c.seq == message_status.c.message_seq)
            .where(
                message_status.c.seq > after,
                message_status.c.seq <= upto,
                message_status.c.status == Status.DELIVERED.value,
            )
            .order_by(message_status.c.seq)
            .limit(LATENCY_BATCH)
        )
    ).all()
    found = [
        (recipient, max(0.0, (delivered - first).total_seconds()))
        for _seq, delivered, recipient, first in rows
        if first is not None
    ]
    return found, (rows[-1][0] if len(rows) == LATENCY_BATCH else max(upto, after))


async def _confirmation_latencies(
    db: AsyncConnection, after: int
) -> tuple[list[tuple[str, float]], int]:
    """Notice -> confirmation of the handovers confirmed after ledger entry `after`.

    The ledger's `overdracht_bevestigd` entry names the overdracht; its
    `opened_at` is the notice's moment.
    """
    upto = await _max(db, ledger.c.sequence)
    entries = (
        await db.execute(
            select(ledger.c.sequence, ledger.c.at, ledger.c.evidence)
            .where(
                ledger.c.sequence > after,
                ledger.c.sequence <= upto,
                ledger.c.kind == EntryKind.OVERDRACHT_BEVESTIGD.value,
            )
            .order_by(ledger.c.sequence)
            .limit(LATENCY_BATCH)
        )
    ).all()
    confirmed: dict[str, datetime] = {}
    for _sequence, at, evidence in entries:
        overdracht_id = json.loads(evidence).get(Evidence.OVERDRACHT_ID)
        if isinstance(overdracht_id, str):
            confirmed[overdracht_id] = at
    found: list[tuple[str, float]] = []
    if confirmed:
        opened = await db.execute(
            select(overdrachten.c.id, overdrachten.c.moment, overdrachten.c.opened_at).where(
                overdrachten.c.id.in_(list(confirmed))
            )
        )
        found = [
            (moment, max(0.0, (confirmed[overdracht_id] - opened_at).total_seconds()))
            for overdracht_id, moment, opened_at in opened
            if opened_at is not None
        ]
    return found, (entries[-1][0] if len(entries) == LATENCY_BATCH else max(upto, after))


# --- the routes ------------------------------------------------------------------------


def add_ops_routes(
    app: web.Application,
    *,
    store: Store,
    broker: BrokerConnection | None,
    metrics: Metrics | None,
) -> None:
    """`GET /readyz`, and `GET /metrics` when there are metrics, on the gateway's application."""

    async def readyz(_request: web.Request) -> web.Response:
        found = await readiness(store, broker)
        return web.json_response(found.as_json(), status=200 if found.ready else 503)

    app.router.add_get("/readyz", readyz)
    if metrics is None:
        return

    async def metrics_text(_request: web.Request) -> web.Response:
        return web.Response(
            body=await metrics.exposition(), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    app.router.add_get("/metrics", metrics_text)
