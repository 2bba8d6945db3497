"""The bridge in-process on a real SQLite store and SMTP server: receipts and reminders."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from adapters.email.content import Sender
from adapters.email.context import BridgeContext
from adapters.email.outbound import EmailPublisher, record_receipts
from adapters.email.reminders import send_reminders
from adapters.email.signing import TeamSigner
from adapters.email.smtp import SmtpOut
from adapters.email.store import BridgeStore
from adapters.store import SqlStore
from gateway.bootstrap import Paths, load_core
from gateway.domain.calendar import WorkingDayCalendar
from gateway.domain.contracts import Transport
from gateway.domain.envelope import CaseRef
from gateway.service.outgoing import Hub
from gateway.service.pipeline import Verifier
from gateway.service.relay import Claim, relay_once
from gateway.service.submission import SubmitMessage, submit
from gateway.vectors import vector_key, with_test_keys
from tests.integration.email_support import Mailbox
from tests.integration.partner_side import example

pytestmark = pytest.mark.integration

ZONE = ZoneInfo("Europe/Amsterdam")


def local(day: int, hour: int) -> datetime:
    return datetime(2026, 11, day, hour, 0, tzinfo=ZONE)


@dataclass
class Clock:
    now: datetime

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    with Mailbox() as box:
        yield box


@dataclass
class World:
    store: SqlStore
    hub: Hub
    context: BridgeContext
    clock: Clock


@pytest.fixture
async def world(sqlite_dsn: str, sqlite_store: SqlStore, mailbox: Mailbox) -> AsyncIterator[World]:
    core = load_core(Paths.defaults())
    calendar = WorkingDayCalendar.for_region(core.region)
    contracts = with_test_keys(core.contracts)
    hub = Hub(Verifier(contracts, core.validator, "vt-gz"), vector_key("vt-gz"), calendar)
    clock = Clock(local(23, 10))
    bridge_store = BridgeStore(sqlite_store)
    context = BridgeContext(
        store=bridge_store,
        hub=hub,
        signer=TeamSigner(vector_key("vtgw-bridge")),
        bridge_party="vtgw-bridge",
        secret=b"r" * 32,
        smtp=SmtpOut("127.0.0.1", mailbox.port, "none"),
        sender=Sender("overdracht-brug@vt-gz.example", "Veilig Thuis Gelderland-Zuid"),
        public_base_url="https://vtgw.example",
        link_lifetime=timedelta(days=7),
        calendar=calendar,
        clock=clock,
    )
    yield World(sqlite_store, hub, context, clock)
    await bridge_store.close()


async def notice_mailed(world: World) -> str:
    """VT's notice for Tiel (advised term Monday 30 November), relayed and mailed; its id."""
    body = example("overdracht.notice")["body"]
    body["geadviseerde_termijn"] = {"uiterlijk": "2026-11-30"}
    core = load_core(Paths.defaults())
    (notice,) = await submit(
        world.store,
        world.hub,
        core.region,
        SubmitMessage("overdracht.notice", CaseRef("VT-2026-000777", "GM0281"), body, ("lt-tiel",)),
        world.clock.now,
    )
    published = await relay_once(
        world.store,
        {Transport.EMAIL: EmailPublisher(world.context)},
        world.hub.verifier.contracts,
        Claim("test", timedelta(seconds=30)),
        world.clock.now,
    )
    assert published >= 1
    return notice.id


async def test_the_receipt_is_recorded_after_the_smtp_server_accepted_the_mail(
    world: World, mailbox: Mailbox
) -> None:
    """The notice is delivered by the team's bridge-signed receipt, with the SMTP evidence."""
    notice_id = await notice_mailed(world)
    assert len(mailbox.mails) == 1
    assert await record_receipts(world.context, world.clock.now) == 1
    async with world.store.transaction() as uow:
        message = await uow.messages.get("vt-gz", notice_id)
        history = await uow.messages.history("vt-gz", notice_id)
    assert message is not None
    assert message.status.value == "delivered"
    evidence = [dict(change.evidence) for change in history]
    assert any(e.get("smtp") == "accepted" and e.get("smtp_message_id") for e in evidence)
    assert await record_receipts(world.context, world.clock.now) == 0  # once


async def test_one_reminder_goes_out_within_office_hours_the_working_day_before(
    world: World, mailbox: Mailbox
) -> None:
    """Deadline Monday 30th: nothing Thursday, nothing Friday 8:00, one Friday 10:00, no second."""
    await notice_mailed(world)
    await record_receipts(world.context, world.clock.now)
    assert await send_reminders(world.context, local(26, 10)) == 0
    assert await send_reminders(world.context, local(27, 8)) == 0
    world.clock.now = local(27, 10)
    assert await send_reminders(world.context, local(27, 10)) == 1
    assert await send_reminders(world.context, local(27, 14)) == 0
    reminder = mailbox.mails[-1]
    assert "Herinnering" in str(reminder.message["Subject"])
    assert "/bridge/m/" in reminder.text()
