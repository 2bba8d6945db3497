"""Helpers of the dashboard's tests: a real SQLite store filled through the service layer,
the dashboard served on a free port, staff accounts, and a clock the test moves.

Handovers are made as VT makes them (`submit`), published by the relay (the
project's recording publisher stands in for the broker), answered by the
teams with messages signed by the keys of the test vectors (`receive`), and
their deadlines run out by the real timers (`fire_due_timers`).
"""

from __future__ import annotations

import json
import secrets
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp import web
from playwright.async_api import Browser, BrowserContext, Page

from adapters.dashboard import DashboardSettings, create_dashboard_app, hash_password
from adapters.store.sql import SqlStore, migrate, open_store
from gateway.bootstrap import Core, Paths, load_core
from gateway.domain.calendar import WorkingDayCalendar
from gateway.domain.contracts import Contracts, PublicKey, Transport
from gateway.domain.envelope import CaseRef, format_timestamp
from gateway.resources import data_dir
from gateway.service.outgoing import Hub
from gateway.service.pipeline import Verifier
from gateway.service.ports import StoredMessage
from gateway.service.receiving import Delivery, Disposition, Handled, receive
from gateway.service.relay import Claim, fire_due_timers, relay_once
from gateway.service.submission import SubmitMessage, submit
from gateway.vectors import (
    TEST_KEY_NOT_AFTER,
    TEST_KEY_NOT_BEFORE,
    load_examples,
    sign_object,
    signer_key,
    vector_key,
    with_test_keys,
)
from tests.fakes.publisher import RecordingPublisher
from tests.integration.gateway_rig import free_port

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "var" / "screenshots"
CHROMIUM = "/usr/bin/chromium"

PASSWORDS = {"coord": "coord-wachtwoord-1", "viewer": "viewer-wachtwoord-1", "admin": "admin-ww-1"}
ROLES = {"coord": "coordinator", "viewer": "viewer", "admin": "admin"}
CLAIM = Claim(claimer="dashboard-test", lease=timedelta(seconds=30))


@dataclass
class TestClock:
    """The clock of the hub and the dashboard, moved by the test."""

    now: datetime

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Region:
    """VT, its contracts with the test keys, the example bodies, and the store."""

    core: Core
    contracts: Contracts
    hub: Hub
    store: SqlStore
    clock: TestClock
    examples: dict[str, dict[str, Any]] = field(default_factory=dict)

    async def notice(
        self, ref: str, gemeente: str, last_day: date, moment: str = "B"
    ) -> StoredMessage:
        """VT's overdracht.notice to the case's lokaal team, published by the relay."""
        body = json.loads(json.dumps(self.examples["overdracht.notice"]["body"]))
        body["geadviseerde_termijn"] = {"uiterlijk": last_day.isoformat()}
        body["moment"] = moment
        if moment != "B":  # only moment B says whether the suspicion was refuted
            body.pop("vermoeden_weerlegd", None)
        if moment == "A":  # a written handover: no warm one
            body.pop("warme_overdracht", None)
        command = SubmitMessage(type="overdracht.notice", case=CaseRef(ref, gemeente), body=body)
        sent = await submit(self.store, self.hub, self.core.region, command, self.clock())
        await self.relay()
        return sent[0]

    async def relay(self) -> None:
        publisher = RecordingPublisher()
        publishers = {Transport.AMQP: publisher, Transport.EMAIL: publisher}
        await relay_once(self.store, publishers, self.contracts, CLAIM, self.clock())

    async def answer(self, notice: StoredMessage, message_type: str, **changes: Any) -> None:
        """The notice's recipient answers (a receipt, a confirmation), signed by its signer."""
        handled = await self.deliver(self.signed_answer(notice, message_type, **changes))
        assert handled.disposition is Disposition.ACK, handled.rejection

    async def receipt(self, notice: StoredMessage) -> None:
        received = format_timestamp(self.clock() - timedelta(minutes=1))
        await self.answer(
            notice, "receipt", body={"digest": notice.digest, "received_at": received}
        )

    async def fire_timers(self) -> None:
        await fire_due_timers(self.store, self.hub, CLAIM, self.clock())

    def signed_answer(
        self, notice: StoredMessage, message_type: str, key_label: str = "1", **changes: Any
    ) -> Delivery:
        """Like `answer`, but only the delivery: signed with the recipient's key `key_label`."""
        now = self.clock()
        obj = json.loads(json.dumps(self.examples[message_type]))
        obj.update(
            id=str(uuid.uuid4()),
            sender=notice.recipient,
            recipient=notice.sender,
            thread=notice.thread,
            reply_to=notice.id,
            case={"ref": notice.case_ref, "gemeente": notice.gemeente},
            sent_at=format_timestamp(now - timedelta(seconds=30)),
        )
        if "case" not in self.examples[message_type]:
            del obj["case"]
        obj.update(changes)
        key = signer_key(self.contracts, notice.recipient, key_label)
        raw = json.dumps(sign_object(obj, key), ensure_ascii=False).encode()
        signer = self.contracts.signer_of(notice.recipient)
        return Delivery(raw, signer.party if signer is not None else notice.recipient)

    async def deliver(self, delivery: Delivery) -> Handled:
        async with self.store.transaction() as uow:
            return await receive(uow, self.hub, delivery, self.clock())

    def use_contracts(self, contracts: Contracts) -> None:
        """The gateway reads its contracts at start; this stands in for a restart with new ones."""
        object.__setattr__(self.hub.verifier, "contracts", contracts)
        self.contracts = contracts


def with_key(contracts: Contracts, party: str, label: str, **window: datetime) -> Contracts:
    """The contracts with one more test key (`label`) for `party`, e.g. after a key rotation."""
    signing = vector_key(party, label)
    key = PublicKey(
        signing.kid,
        signing.public_bytes(),
        window.get("not_before", TEST_KEY_NOT_BEFORE),
        window.get("not_after", TEST_KEY_NOT_AFTER),
    )
    return Contracts(replace(c, keys=(*c.keys, key)) if c.party == party else c for c in contracts)


def with_keys_ending(contracts: Contracts, party: str, not_after: datetime) -> Contracts:
    """The contracts with every key of `party` ending at `not_after`."""
    return Contracts(
        replace(c, keys=tuple(replace(k, not_after=not_after) for k in c.keys))
        if c.party == party
        else c
        for c in contracts
    )


@asynccontextmanager
async def region_on_sqlite(directory: Path, start: datetime) -> AsyncIterator[Region]:
    core = load_core(Paths.defaults())
    contracts = with_test_keys(core.contracts)
    hub = Hub(
        Verifier(contracts, core.validator, "vt-gz"),
        vector_key("vt-gz"),
        WorkingDayCalendar.for_region(core.region),
    )
    dsn = f"sqlite+aiosqlite:///{directory / 'store.db'}"
    await migrate(dsn)
    store = await open_store(dsn)
    examples = {e["type"]: e for e in load_examples(data_dir("schemas") / "examples")}
    try:
        yield Region(core, contracts, hub, store, TestClock(start), examples)
    finally:
        await store.close()


def staff_settings(directory: Path) -> DashboardSettings:
    """A staff file with a coordinator, a viewer and an admin; a fresh session secret."""
    staff = directory / "staff.toml"
    staff.write_text(
        "".join(
            f'[[staff]]\nusername = "{name}"\ndisplay_name = "Test {ROLES[name]}"\n'
            f'role = "{ROLES[name]}"\npassword_hash = "{hash_password(password)}"\n\n'
            for name, password in PASSWORDS.items()
        ),
        encoding="utf-8",
    )
    secret = directory / "session.secret"
    secret.write_text(secrets.token_urlsafe(48), encoding="utf-8")
    return DashboardSettings(
        staff_file=staff,
        session_secret_file=secret,
        session_idle=timedelta(minutes=30),
        secure_cookies=True,  # Chromium keeps Secure cookies of http://localhost
        events_interval=timedelta(milliseconds=250),
        page_size=50,
    )


@asynccontextmanager
async def serve_dashboard(region: Region, settings: DashboardSettings) -> AsyncIterator[str]:
    """The dashboard at /dashboard of an app on a free port; its base URL."""
    app = web.Application()
    app.add_subapp(
        "/dashboard",
        create_dashboard_app(
            store=region.store,
            hub=region.hub,
            region=region.core.region,
            clock=region.clock,
            settings=settings,
        ),
    )
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    port = free_port()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    try:
        yield f"http://localhost:{port}"
    finally:
        await runner.cleanup()


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


async def signed_in_at(browser: Browser, base: str, username: str) -> tuple[BrowserContext, Page]:
    """A new laptop-sized browser context signed in to the dashboard at `base` as `username`."""
    context = await browser.new_context(
        viewport={"width": 1366, "height": 768}, accept_downloads=True
    )
    page = await context.new_page()
    await page.goto(f"{base}/dashboard/")
    await page.fill("input[name=username]", username)
    await page.fill("input[name=password]", PASSWORDS[username])
    await page.click("button[type=submit]")
    await page.wait_for_selector("#open-list")
    return context, page


def shot(name: str) -> str:
    """The path of a screenshot for review (`var/screenshots/`, README)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return str(SCREENSHOTS / name)
