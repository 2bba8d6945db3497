"""A lokaal team on the e-mail bridge answers VT's monitoring request on the bridge's page.

In-process on a real SQLite store and a real SMTP server (aiosmtpd): the notice
is mailed, the team confirms on its page, three months later the gateway
mails the monitoring request (§7.1 B), and the team's answer on the page is
signed by the bridge, accepted, and counted on time.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from urllib.parse import urlsplit

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from adapters.email.outbound import EmailPublisher, record_receipts
from adapters.email.pages import CSRF_COOKIE, create_pages_app
from gateway.domain.contracts import Transport
from gateway.domain.monitoring import CheckState
from gateway.service.relay import Claim, fire_due_timers, relay_once
from tests.integration.email_support import Mailbox
from tests.integration.partner_side import example
from tests.integration.test_email_reminders import ZONE, World, mailbox, notice_mailed, world

__all__ = ["mailbox", "world"]  # the fixtures of the reminders' module, used here too

pytestmark = pytest.mark.integration

CLAIM = Claim("test", timedelta(seconds=30))


@pytest.fixture
async def client(world: World) -> AsyncIterator[TestClient[web.Request, web.Application]]:
    root = web.Application()
    root.add_subapp("/bridge", create_pages_app(world.context))
    async with TestClient(TestServer(root)) as test_client:
        yield test_client


async def answer_on_the_page(
    client: TestClient[web.Request, web.Application], link: str, form: dict[str, str]
) -> str:
    """Open the mailed link, then post the form with the page's CSRF token and cookie."""
    path = urlsplit(link).path
    page = await client.get(path)
    assert page.status == 200, await page.text()
    html = await page.text()
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match is not None, html
    nonce = page.cookies[CSRF_COOKIE].value
    posted = await client.post(
        path, data={"csrf": match.group(1), **form}, headers={"Cookie": f"{CSRF_COOKIE}={nonce}"}
    )
    text = await posted.text()
    assert posted.status == 200, text
    return html


WHO = {"naam": "Test Coördinator", "functie": "coördinator"}


async def monitoring_request_mailed(
    world: World, mailbox: Mailbox, client: TestClient[web.Request, web.Application]
) -> str:
    """Tiel confirms the notice on its page; 3 months on the monitoring request is mailed.
    The notice's id."""
    notice_id = await notice_mailed(world)
    await record_receipts(world.context, world.clock.now)
    await answer_on_the_page(client, mailbox.mails[0].link(), {"keuze": "bevestigen", **WHO})
    world.clock.now = datetime(2027, 3, 1, 10, 0, tzinfo=ZONE)  # 3 months on, a Monday
    assert await fire_due_timers(world.store, world.hub, CLAIM, world.clock.now) >= 1
    publishers = {Transport.EMAIL: EmailPublisher(world.context)}
    contracts = world.hub.verifier.contracts
    assert await relay_once(world.store, publishers, contracts, CLAIM, world.clock.now) >= 1
    return notice_id


async def test_a_team_on_the_bridge_answers_the_monitoring_request_on_its_page(
    world: World, mailbox: Mailbox, client: TestClient[web.Request, web.Application]
) -> None:
    """§7.1 B, C: the 3-month request reaches the team by mail, its answer counts on time."""
    notice_id = await monitoring_request_mailed(world, mailbox, client)
    mails = mailbox.mails
    handle = str(mails[0].message["Subject"]).rpartition(" - dossier ")[2]
    assert [str(m.message["Subject"]) for m in mails[1:]] == [
        f"[Veilig Thuis] Verzoek om monitoring - dossier {handle}"
    ]  # VT's receipt of the confirmation is held by the bridge, not mailed
    request_mail = mails[1]
    for condition in example("overdracht.notice")["body"]["veiligheidsvoorwaarden"]:
        assert condition["omschrijving"] not in request_mail.text()  # the page shows it, not mail
        assert condition["omschrijving"] not in request_mail.html()
    form = {
        **WHO,
        "voldaan_1": "ja",
        "voldaan_2": "deels",
        "toelichting_2": "Traject loopt nog.",
        "voldaan_3": "ja",
        "score": "7",
        "onderbouwing": "Geen nieuwe incidenten gemeld.",
        "directe_veiligheid": "ja",
        "stabiele_veiligheid": "nee",
        "herstel_schade_aandacht": "ja",
    }
    world.clock.now += timedelta(hours=2)
    page = await answer_on_the_page(client, request_mail.link(), form)
    assert "Veiligheidsvoorwaarden" in page

    async with world.store.transaction() as uow:
        (three, _twelve) = await uow.monitoring.of_overdracht(notice_id)
        assert three.request_id is not None
        answers = await uow.messages.replies_to(three.request_id)
    assert three.state is CheckState.ANSWERED
    assert three.answered_on_time is True
    assert [(m.type, m.sender) for m in answers if m.type != "receipt"] == [
        ("monitoring.response", "lt-tiel")
    ]


async def test_a_monitoring_answer_that_breaks_the_rules_is_refused_on_the_page(
    world: World, mailbox: Mailbox, client: TestClient[web.Request, web.Application]
) -> None:
    """Stable safety without direct safety is refused with a clear message; nothing is sent."""
    await monitoring_request_mailed(world, mailbox, client)
    (request_mail,) = [m for m in mailbox.mails if "monitoring" in str(m.message["Subject"])]
    path = urlsplit(request_mail.link()).path
    page = await client.get(path)
    match = re.search(r'name="csrf" value="([^"]+)"', await page.text())
    assert match is not None
    nonce = page.cookies[CSRF_COOKIE].value
    form = {
        **WHO,
        "csrf": match.group(1),
        "voldaan_1": "ja",
        "voldaan_2": "ja",
        "voldaan_3": "ja",
        "score": "8",
        "onderbouwing": "Rustig.",
        "directe_veiligheid": "nee",
        "stabiele_veiligheid": "ja",
        "herstel_schade_aandacht": "ja",
    }
    posted = await client.post(path, data=form, headers={"Cookie": f"{CSRF_COOKIE}={nonce}"})
    assert posted.status == 400
    assert "Stabiele veiligheid komt na directe veiligheid" in await posted.text()
