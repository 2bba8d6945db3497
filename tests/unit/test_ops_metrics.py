"""The operations metrics over a real SQLite store, filled through the real service functions.

VT submits an overdracht.notice for Tiel, the relay publishes it (through a
counting publisher), the team's receipt and confirmation arrive through the
real receive path; the scrape then shows the counters, the latencies (SENT ->
DELIVERED, notice -> confirmation) and the store's gauges, which agree with
what the service layer's own views say.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from adapters.http.ops import Metrics, last_overdue_day
from adapters.store.engine import create_engine
from adapters.store.sql import SqlStore, migrate, open_store
from gateway.bootstrap import Core
from gateway.domain.calendar import WorkingDayCalendar
from gateway.domain.contracts import Contracts, Transport
from gateway.domain.deadlines import CONFIRMATION
from gateway.domain.envelope import CaseRef
from gateway.service.outgoing import Hub
from gateway.service.pipeline import Verifier
from gateway.service.ports import OutboxItem, StoredMessage
from gateway.service.receiving import Delivery, Handled, receive
from gateway.service.relay import Claim, relay_once
from gateway.service.submission import SubmitMessage, submit
from gateway.service.views import held_past_deadline
from gateway.vectors import vector_key
from tests.unit.conftest import NOW, Sign

CASE = {"ref": "VT-2026-000123", "gemeente": "GM0281"}
CLAIM = Claim(claimer="test", lease=timedelta(seconds=30))


class Clock:
    """The scrape's clock, set by the test."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


class Recorder:
    """The transport's publishing side: takes every item (the confirm always comes)."""

    def __init__(self) -> None:
        self.items: list[OutboxItem] = []

    async def publish(self, item: OutboxItem) -> None:
        self.items.append(item)


@dataclass
class World:
    store: SqlStore
    metrics: Metrics
    clock: Clock
    hub: Hub
    calendar: WorkingDayCalendar


@pytest.fixture
async def world(tmp_path: Path, core: Core, keyed_contracts: Contracts) -> AsyncIterator[World]:
    dsn = f"sqlite+aiosqlite:///{tmp_path / 'store.db'}"
    await migrate(dsn)
    store = await open_store(dsn)
    calendar = WorkingDayCalendar.for_region(core.region)
    hub = Hub(Verifier(keyed_contracts, core.validator, "vt-gz"), vector_key("vt-gz"), calendar)
    clock = Clock(NOW - timedelta(minutes=10))
    metrics = Metrics(store, calendar, "vt-gz", clock)
    try:
        yield World(store, metrics, clock, hub, calendar)
    finally:
        await metrics.close()
        await store.close()


async def vt_submits(
    world: World, core: Core, examples: dict[str, Any], message_type: str, at: datetime
) -> StoredMessage:
    command = SubmitMessage(
        type=message_type, case=CaseRef(**CASE), body=examples[message_type]["body"]
    )
    return (await submit(world.store, world.hub, core.region, command, at))[0]


async def team_sends(world: World, raw: bytes, at: datetime = NOW) -> Handled:
    """A delivery through the real receive path, counted as the hub consumer counts it."""
    async with world.store.transaction() as uow:
        handled = await receive(uow, world.hub, Delivery(raw, "vtgw-bridge"), at)
    world.metrics.observe(handled)
    return handled


def answer(sign: Sign, message_type: str, notice: StoredMessage, **changes: Any) -> bytes:
    """The team's signed answer to the notice (a receipt names no case)."""
    case = {} if message_type == "receipt" else {"case": CASE}
    return sign(
        message_type,
        id=str(uuid.uuid4()),
        reply_to=notice.id,
        thread=notice.thread,
        **case,
        **changes,
    )


async def scrape(world: World) -> dict[str, float]:
    """Every sample of a scrape, by name and sorted labels: `name{a=x,b=y}` -> value."""
    text = (await world.metrics.exposition()).decode()
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            samples[f"{sample.name}{{{labels}}}"] = sample.value
    return samples


async def test_a_handover_shows_in_the_counters_and_both_latency_histograms(
    world: World, core: Core, keyed_contracts: Contracts, examples: dict[str, Any], sign: Sign
) -> None:
    """Published by type and transport; received by type and outcome; 120 s and 180 s."""
    await world.metrics.prime()
    notice = await vt_submits(
        world, core, examples, "overdracht.notice", NOW - timedelta(minutes=3)
    )
    amqp, email = Recorder(), Recorder()
    publishers = {
        Transport.AMQP: world.metrics.counting(amqp, Transport.AMQP),
        Transport.EMAIL: world.metrics.counting(email, Transport.EMAIL),
    }
    published = await relay_once(
        world.store, publishers, keyed_contracts, CLAIM, NOW - timedelta(minutes=2)
    )
    assert published == len(amqp.items) + len(email.items) >= 1
    receipt = {"digest": notice.digest, "received_at": "2026-11-28T11:58:00.000Z"}
    await team_sends(world, answer(sign, "receipt", notice, body=receipt))
    confirmation = answer(sign, "overdracht.confirmation", notice)
    await team_sends(world, confirmation)
    await team_sends(world, confirmation)  # the same bytes again: a duplicate
    forged = json.loads(answer(sign, "overdracht.confirmation", notice))
    forged["body"]["opmerking"] = "ingevoegd"  # after signing: the signature fails
    refused = await team_sends(world, json.dumps(forged).encode())
    assert refused.rejection is not None

    world.clock.at = NOW
    samples = await scrape(world)

    notices = "vtgw_messages_published_total{transport=email,type=overdracht.notice}"
    assert samples[notices] == 1  # Tiel is on the e-mail transport
    assert sum(v for k, v in samples.items() if k.startswith("vtgw_messages_published_total")) == (
        published
    )
    received = "vtgw_messages_received_total"
    assert samples[f"{received}{{outcome=accepted,type=receipt}}"] == 1
    assert samples[f"{received}{{outcome=accepted,type=overdracht.confirmation}}"] == 1
    assert samples[f"{received}{{outcome=duplicate,type=overdracht.confirmation}}"] == 1
    assert samples[f"{received}{{outcome=refused,type=unknown}}"] == 1
    code = refused.rejection.code.value
    assert samples[f"vtgw_messages_refused_total{{code={code}}}"] == 1
    assert samples["vtgw_receipt_latency_seconds_count{recipient=lt-tiel}"] == 1
    assert samples["vtgw_receipt_latency_seconds_sum{recipient=lt-tiel}"] == 120.0
    assert samples["vtgw_receipt_latency_seconds_bucket{le=60.0,recipient=lt-tiel}"] == 0
    assert samples["vtgw_receipt_latency_seconds_bucket{le=120.0,recipient=lt-tiel}"] == 1
    moment = examples["overdracht.notice"]["body"]["moment"]
    assert samples[f"vtgw_confirmation_latency_seconds_count{{moment={moment}}}"] == 1
    assert samples[f"vtgw_confirmation_latency_seconds_sum{{moment={moment}}}"] == 180.0
    assert samples["vtgw_dead_letters{}"] == 1
    assert samples["vtgw_store_scrape_ok{}"] == 1

    again = await scrape(world)  # nothing new: each receipt and confirmation is observed once
    assert again["vtgw_receipt_latency_seconds_count{recipient=lt-tiel}"] == 1
    assert again[f"vtgw_confirmation_latency_seconds_count{{moment={moment}}}"] == 1


async def test_what_the_store_held_before_the_start_is_not_observed(
    world: World, core: Core, keyed_contracts: Contracts, examples: dict[str, Any], sign: Sign
) -> None:
    """The first read only sets the watermark: a restart does not count history again."""
    notice = await vt_submits(
        world, core, examples, "overdracht.notice", NOW - timedelta(minutes=3)
    )
    publishers = {t: Recorder() for t in Transport}
    await relay_once(world.store, publishers, keyed_contracts, CLAIM, NOW - timedelta(minutes=2))
    await team_sends(world, answer(sign, "overdracht.confirmation", notice))

    samples = await scrape(world)  # the first scrape of a process that never primed

    assert not any(k.startswith("vtgw_receipt_latency_seconds_count") for k in samples)
    assert not any(k.startswith("vtgw_confirmation_latency_seconds_count") for k in samples)


async def test_the_gauges_agree_with_the_stores_own_answers(
    world: World, core: Core, examples: dict[str, Any]
) -> None:
    """Open handovers by state, outbox depth and open alerts, counted as the ports count them."""
    await vt_submits(world, core, examples, "overdracht.notice", NOW - timedelta(minutes=3))
    async with world.store.transaction() as uow:
        await uow.alerts.open("undeliverable:jbg", "no receipt from jbg", NOW)
        await uow.alerts.open("undeliverable:raad", "no receipt from raad", NOW)
        await uow.alerts.close("undeliverable:raad", NOW)
    async with world.store.transaction() as uow:
        depth = await uow.outbox.depth()
        open_alerts = len(await uow.alerts.open_alerts())
        open_handovers = await uow.handovers.still_open()

    samples = await scrape(world)

    assert samples["vtgw_outbox_depth{}"] == depth >= 1
    assert samples["vtgw_alerts_open{}"] == open_alerts == 1
    assert samples["vtgw_handovers_open{state=notice_sent}"] == len(open_handovers) == 1
    assert samples["vtgw_handovers_open{state=delivered}"] == 0
    assert samples["vtgw_handovers_open{state=deferred}"] == 0
    assert samples["vtgw_dead_letters{}"] == 0  # none refused


async def test_overdue_handovers_are_counted_as_the_overdue_list_lists_them(
    world: World, core: Core, examples: dict[str, Any], sign: Sign
) -> None:
    """The count agrees with `held_past_deadline` either side of 17:00, and after a deferral."""
    notice = await vt_submits(
        world, core, examples, "overdracht.notice", NOW - timedelta(minutes=3)
    )
    advised = date.fromisoformat(
        examples["overdracht.notice"]["body"]["geadviseerde_termijn"]["uiterlijk"]
    )
    due = CONFIRMATION.due(world.calendar, advised)

    async def agree(at: datetime) -> int:
        world.clock.at = at
        listed = await held_past_deadline(world.store, world.calendar, at, "vt-gz")
        counted = (await scrape(world))["vtgw_handovers_overdue{}"]
        assert counted == len(listed), at
        return len(listed)

    assert await agree(due - timedelta(seconds=1)) == 0
    assert await agree(due) == 1
    deferral = dict(examples["overdracht.deferral"]["body"]) | {"nieuwe_datum": "2026-12-14"}
    await team_sends(world, answer(sign, "overdracht.deferral", notice, body=deferral))
    assert await agree(due) == 0
    new_due = CONFIRMATION.due(world.calendar, date(2026, 12, 14))
    assert await agree(new_due - timedelta(seconds=1)) == 0
    assert await agree(new_due) == 1
    await team_sends(world, answer(sign, "overdracht.confirmation", notice))
    assert await agree(new_due + timedelta(days=3)) == 0


def test_the_last_overdue_day_is_exactly_where_the_confirmation_term_ends(core: Core) -> None:
    """Over Christmas and a weekend: a deadline date is overdue iff its due moment has come."""
    calendar = WorkingDayCalendar.for_region(core.region)
    start = datetime(2026, 12, 18, tzinfo=UTC)
    for hour in range(0, 24 * 20, 5):
        now = start + timedelta(hours=hour)
        cutoff = last_overdue_day(calendar, now)
        for offset in range(-15, 3):
            day = now.date() + timedelta(days=offset)
            assert (day <= cutoff) == (now >= CONFIRMATION.due(calendar, day)), (now, day)


async def test_an_unreachable_store_leaves_the_gauges_out_and_keeps_the_counters(
    core: Core,
) -> None:
    """vtgw_store_scrape_ok 0, no store gauges; what this process counted is still served."""
    calendar = WorkingDayCalendar.for_region(core.region)
    away = SqlStore(create_engine("postgresql+asyncpg://vtgw@127.0.0.1:1/x"))
    metrics = Metrics(away, calendar, "vt-gz", lambda: NOW)
    try:
        metrics.count_published(
            OutboxItem(1, "vt-gz", "m", "jbg", "overdracht.notice", b"{}"), Transport.AMQP
        )
        text = (await metrics.exposition()).decode()
    finally:
        await metrics.close()
        await away.close()
    names = {s.name: s.value for f in text_string_to_metric_families(text) for s in f.samples}
    assert names["vtgw_store_scrape_ok"] == 0
    assert names["vtgw_messages_published_total"] == 1
    assert "vtgw_outbox_depth" not in names
    assert "vtgw_handovers_overdue" not in names
