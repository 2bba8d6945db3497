"""End to end: the e-mail bridge for the lokaal team of Tiel, with a real SMTP server and browser.

The gateway runs as its own process with the bridge configured; an aiosmtpd
server in the test is the team's mailbox (and the bridge's SMTP server); a
headless system Chromium driven by Playwright opens the mailed link. VT
submits through its API; the ledger shows who holds the case.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Page, async_playwright
from sqlalchemy import text

from adapters.email.tokens import LinkToken, Purpose, issue, new_token_id
from adapters.store.engine import create_engine
from tests.integration.email_support import (
    CHROMIUM,
    Mailbox,
    Received,
    dsn_bytes,
    reply_mail,
    send_mail,
    send_raw,
)
from tests.integration.gateway_rig import GatewayRig, gateway_rig
from tests.integration.partner_side import example

pytestmark = pytest.mark.integration

BRIDGE = "overdracht-brug@vt-gz.example"
TEAM = "overdracht@lokaalteam-tiel.example"
TIEL = "GM0281"

_refs = iter(range(901, 999))


def new_case() -> dict[str, str]:
    return {"ref": f"VT-2026-000{next(_refs)}", "gemeente": TIEL}


@pytest.fixture(scope="module")
def mailbox() -> Iterator[Mailbox]:
    with Mailbox() as box:
        yield box


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory, mailbox: Mailbox) -> Iterator[GatewayRig]:
    with gateway_rig(tmp_path_factory.mktemp("email"), "email", smtp_port=mailbox.port) as rig:
        rig.start()
        yield rig
        assert rig.stop() == 0, rig.log_tail()


@pytest.fixture
async def page() -> AsyncIterator[Page]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"no system Chromium at {CHROMIUM} (apt-get install chromium)", pytrace=False)
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            yield await browser.new_page()
        finally:
            await browser.close()


def in_days(days: int) -> str:
    return (datetime.now(UTC) + timedelta(days=days)).date().isoformat()


def submit_notice(rig: GatewayRig, case: dict[str, str]) -> str:
    """VT's overdracht.notice for the lokaal team of Tiel, through the API; its id."""
    body = example("overdracht.notice")["body"]
    body["geadviseerde_termijn"] = {"uiterlijk": in_days(14)}
    status, created = rig.api(
        "POST",
        "/messages",
        {"type": "overdracht.notice", "case": case, "body": body, "recipients": ["lt-tiel"]},
    )
    assert status == 201, created
    return str(created["messages"][0]["id"])


async def mail_of(mailbox: Mailbox, message_id: str) -> Received:
    return await mailbox.wait_for(
        lambda m: f"/bridge/m/{message_id}/" in m.text() and "Herinnering" not in m.text(),
        what=f"mail of {message_id}",
    )


async def holder_until(
    rig: GatewayRig, ref: str, holder: str, timeout: float = 15
) -> dict[str, Any]:
    view: dict[str, Any] = {}
    for _ in range(int(timeout * 10)):
        status, view = rig.api("GET", f"/cases/{ref}")
        if status == 200 and view["holder"] == holder:
            return view
        await asyncio.sleep(0.1)
    pytest.fail(f"{ref} is not held by {holder}: {view}\n{rig.log_tail()}")


async def status_until(rig: GatewayRig, message_id: str, status: str) -> dict[str, Any]:
    view: dict[str, Any] = {}
    for _ in range(150):
        code, view = rig.api("GET", f"/messages/{message_id}")
        if code == 200 and view["status"] == status:
            return view
        await asyncio.sleep(0.1)
    pytest.fail(f"message {message_id} is not {status}: {view}")


async def confirm_in_browser(page: Page, link: str) -> None:
    response = await page.goto(link)
    assert response is not None
    assert response.status == 200, await page.content()
    await page.fill("input[name=naam]", "Testcoordinator Team")
    await page.fill("input[name=functie]", "coordinator lokaal team")
    await page.check("input[name=keuze][value=bevestigen]")
    await page.click("button[type=submit]")
    await page.wait_for_selector("h1")
    assert await page.inner_text("h1") == "Dank u wel", await page.content()


async def test_a_team_confirms_through_the_mailed_link_and_becomes_holder(
    rig: GatewayRig, mailbox: Mailbox, page: Page
) -> None:
    """Mail to Tiel's address; the browser confirms; the ledger names lt-tiel; receipt recorded."""
    case = new_case()
    notice_id = submit_notice(rig, case)
    mail = await mail_of(mailbox, notice_id)
    assert mail.rcpt_tos == (TEAM,)
    assert mail.message["Message-ID"]
    assert mail.message.get_body(preferencelist=("html",)) is not None
    delivered = await status_until(rig, notice_id, "delivered")  # the bridge's receipt
    assert any(e.get("smtp") == "accepted" for e in (s["evidence"] for s in delivered["timeline"]))
    await holder_until(rig, case["ref"], "vt-gz")

    response = await page.goto(mail.link())
    assert response is not None
    headers = await response.all_headers()
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert headers["x-frame-options"] == "DENY"
    assert headers["cache-control"] == "no-store"
    assert "Veiligheidsvoorwaarden" in await page.content()
    await confirm_in_browser(page, mail.link())

    view = await holder_until(rig, case["ref"], "lt-tiel")
    assert view["overdrachten"][0]["state"] == "confirmed"


async def test_a_team_defers_with_a_reasoned_decision_and_vt_keeps_the_case(
    rig: GatewayRig, mailbox: Mailbox, page: Page
) -> None:
    """The deferral from the page: VT still holds the case, the overdracht is deferred."""
    case = new_case()
    notice_id = submit_notice(rig, case)
    mail = await mail_of(mailbox, notice_id)
    await page.goto(mail.link())
    await page.fill("input[name=naam]", "Testcoordinator Team")
    await page.fill("input[name=functie]", "coordinator lokaal team")
    await page.check("input[name=keuze][value=uitstellen]")
    await page.fill(
        "textarea[name=beargumenteerd_besluit]", "De casusregisseur is tot volgende maand afwezig."
    )
    await page.fill("input[name=nieuwe_datum]", in_days(28))
    await page.click("button[type=submit]")
    assert await page.inner_text("h1") == "Dank u wel", await page.content()
    for _ in range(100):
        _, view = rig.api("GET", f"/cases/{case['ref']}")
        if view["overdrachten"][0]["state"] == "deferred":
            break
        await asyncio.sleep(0.1)
    assert view["holder"] == "vt-gz"
    assert view["overdrachten"][0]["state"] == "deferred"


async def test_a_team_answers_an_enrichment_request_per_person(
    rig: GatewayRig, mailbox: Mailbox, page: Page
) -> None:
    """Known / not known per person from the page: VT receives the enrichment.response."""
    case = new_case()
    body = example("enrichment.request")["body"]
    body["antwoord_voor"] = f"{in_days(3)}T15:00:00.000Z"
    status, created = rig.api(
        "POST",
        "/messages",
        {"type": "enrichment.request", "case": case, "body": body, "recipients": ["lt-tiel"]},
    )
    assert status == 201, created
    request_id = created["messages"][0]["id"]
    mail = await mail_of(mailbox, request_id)
    await page.goto(mail.link())
    await page.fill("input[name=naam]", "Testmedewerker Team")
    await page.fill("input[name=functie]", "casusregisseur")
    await page.check("input[name=bekend_p1][value=N]")
    await page.check("input[name=bekend_p2][value=N]")
    await page.check("input[name=bekend_p3][value=J]")
    await page.fill("input[name=soort_p3]", "ambulante jeugdhulp")
    await page.fill("input[name=sinds_p3]", "2025-01-06")
    await page.select_option("select[name=status_p3]", "actief")
    await page.fill("input[name=bereikbaar]", "testmedewerker.team@lt.example.org")
    await page.click("button[type=submit]")
    assert await page.inner_text("h1") == "Dank u wel", await page.content()
    for _ in range(100):
        _, view = rig.api("GET", f"/messages/{request_id}")
        if any(a["type"] == "enrichment.response" for a in view["answers"]):
            break
        await asyncio.sleep(0.1)
    else:
        pytest.fail(f"no enrichment.response: {view}")


async def test_a_used_link_is_refused_and_changes_nothing(
    rig: GatewayRig, mailbox: Mailbox, page: Page
) -> None:
    """After the confirmation the same link gives 410 'al gebruikt'; the holder stays."""
    case = new_case()
    mail = await mail_of(mailbox, submit_notice(rig, case))
    await confirm_in_browser(page, mail.link())
    await holder_until(rig, case["ref"], "lt-tiel")
    response = await page.goto(mail.link())
    assert response is not None
    assert response.status == 410
    assert "al gebruikt" in await page.inner_text("h1")


async def test_an_expired_link_is_refused_and_changes_nothing(
    rig: GatewayRig, mailbox: Mailbox, page: Page
) -> None:
    """A link whose time is over (signed with the bridge's secret) gets 410 'verlopen'."""
    case = new_case()
    notice_id = submit_notice(rig, case)
    mail = await mail_of(mailbox, notice_id)
    secret = rig.bridge_secret_file.read_bytes()
    expired = LinkToken(
        new_token_id(), notice_id, "lt-tiel", Purpose.RESPOND, datetime.now(UTC) - timedelta(1)
    )
    link = re.sub(r"/[^/]+$", "/" + issue(secret, expired), mail.link())
    response = await page.goto(link)
    assert response is not None
    assert response.status == 410
    assert "verlopen" in await page.inner_text("h1")
    await holder_until(rig, case["ref"], "vt-gz")


async def test_an_altered_link_is_refused_and_changes_nothing(
    rig: GatewayRig, mailbox: Mailbox, page: Page
) -> None:
    """One character of the token changed: 403 'ongeldig', for the page and for a POST."""
    case = new_case()
    mail = await mail_of(mailbox, submit_notice(rig, case))
    link = mail.link()
    altered = link[:-1] + ("A" if link[-1] != "A" else "B")
    response = await page.goto(altered)
    assert response is not None
    assert response.status == 403
    assert "ongeldig" in await page.inner_text("h1")
    posted = await page.request.post(altered, form={"naam": "X", "functie": "Y"})
    assert posted.status == 403
    await holder_until(rig, case["ref"], "vt-gz")


async def test_a_link_of_another_message_is_refused_and_changes_nothing(
    rig: GatewayRig, mailbox: Mailbox, page: Page
) -> None:
    """Message A's token on message B's address: 403 'hoort niet bij dit bericht'."""
    case_a, case_b = new_case(), new_case()
    mail_a = await mail_of(mailbox, submit_notice(rig, case_a))
    notice_b = submit_notice(rig, case_b)
    await mail_of(mailbox, notice_b)
    foreign = re.sub(r"/bridge/m/[^/]+/", f"/bridge/m/{notice_b}/", mail_a.link())
    response = await page.goto(foreign)
    assert response is not None
    assert response.status == 403
    assert "hoort niet bij" in await page.inner_text("h1")
    await holder_until(rig, case_a["ref"], "vt-gz")
    await holder_until(rig, case_b["ref"], "vt-gz")


async def test_a_reply_with_the_code_from_the_registered_address_confirms(
    rig: GatewayRig, mailbox: Mailbox
) -> None:
    """A reply quoting the confirmation code from Tiel's address confirms as the link does."""
    case = new_case()
    mail = await mail_of(mailbox, submit_notice(rig, case))
    reply = reply_mail(
        from_address=TEAM,
        to=BRIDGE,
        code=mail.code(),
        in_reply_to=str(mail.message["Message-ID"]),
    )
    await asyncio.to_thread(send_mail, rig.bridge_port, reply, mail_from=TEAM, to=BRIDGE)
    await holder_until(rig, case["ref"], "lt-tiel")


async def test_a_reply_from_an_unregistered_address_confirms_nothing(
    rig: GatewayRig, mailbox: Mailbox
) -> None:
    """The right code from another address: nothing confirmed, a polite reply, the mail kept."""
    case = new_case()
    mail = await mail_of(mailbox, submit_notice(rig, case))
    stranger = "iemand@elders.example"
    reply = reply_mail(
        from_address=stranger,
        to=BRIDGE,
        code=mail.code(),
        in_reply_to=str(mail.message["Message-ID"]),
    )
    await asyncio.to_thread(send_mail, rig.bridge_port, reply, mail_from=stranger, to=BRIDGE)
    polite = await mailbox.wait_for(lambda m: m.rcpt_tos == (stranger,), what="the polite reply")
    assert "niet verwerkt" in str(polite.message["Subject"])
    assert "link" in polite.text()
    await holder_until(rig, case["ref"], "vt-gz")
    kept = await _rows(
        rig, "SELECT outcome FROM email_inbound WHERE about_message_id = :id", id=mail_id(mail)
    )
    assert kept == [("unregistered_address",)]


async def test_a_bounce_opens_an_alert(rig: GatewayRig, mailbox: Mailbox) -> None:
    """A DSN naming the mail's Message-ID: an alert for VT, the failure in the history, and
    the handover given up as undeliverable."""
    case = new_case()
    notice_id = submit_notice(rig, case)
    mail = await mail_of(mailbox, notice_id)
    await status_until(rig, notice_id, "delivered")
    raw = dsn_bytes(to=BRIDGE, original_message_id=str(mail.message["Message-ID"]), recipient=TEAM)
    await asyncio.to_thread(send_raw, rig.bridge_port, raw, mail_from="", to=BRIDGE)
    for _ in range(100):
        alerts = await _rows(
            rig,
            "SELECT key FROM alerts WHERE key = :key AND closed_at IS NULL",
            key=f"email_undeliverable:lt-tiel:{notice_id}",
        )
        if alerts:
            break
        await asyncio.sleep(0.1)
    else:
        pytest.fail("no alert opened for the bounce")
    _, view = rig.api("GET", f"/messages/{notice_id}")
    assert any(step["status"] == "undeliverable" for step in view["timeline"]), view
    # the receipt said only that the mail server took it: the handover is given up, VT holds
    _, held = rig.api("GET", f"/cases/{case['ref']}")
    assert [(o["id"], o["state"]) for o in held["overdrachten"]] == [(notice_id, "undeliverable")]
    assert held["holder"] == "vt-gz"


def test_no_mail_carries_personal_data_of_the_case(mailbox: Mailbox) -> None:
    """Every mail of this module: no name, birth date, BSN, address or free text of the cases."""
    notice = example("overdracht.notice")["body"]
    request = example("enrichment.request")["body"]
    forbidden = {"VT-2026-000"}  # no case reference either
    for person in notice["personen"] + request["personen"]:
        forbidden |= {person["geslachtsnaam"], person.get("bsn", "")}
        forbidden |= {person.get("geboortedatum", ""), person.get("voornamen", "Testpersoon")}
        if "adres" in person:
            forbidden |= {person["adres"]["straat"], person["adres"]["postcode"]}
    forbidden |= {"1 januari 1990", "2 februari 1988", "3 maart 2016"}
    for field in ("overdrachtsinformatie", "advies"):
        forbidden |= {line[:40] for line in notice[field].splitlines()}
    forbidden |= {c["omschrijving"][:40] for c in notice["veiligheidsvoorwaarden"]}
    forbidden |= {notice["vt_contact"]["naam"], notice["vt_contact"]["email"]}
    forbidden |= {notice["vt_contact"]["telefoon"], "Testprofessional"}
    forbidden.discard("")
    mails = mailbox.mails
    assert len(mails) >= 10
    for mail in mails:
        everything = mail.raw.decode("utf-8", "replace") + mail.text()
        if mail.message.get_body(preferencelist=("html",)) is not None:
            everything += mail.html()
        for word in forbidden:
            # First names like "Een" are Dutch words too: match them as whole words, capitalised.
            pattern = rf"\b{re.escape(word)}\b" if len(word) <= 4 else re.escape(word)
            assert not re.search(pattern, everything), (word, str(mail.message["Subject"]))


def mail_id(mail: Received) -> str:
    match = re.search(r"/bridge/m/([0-9a-f-]{36})/", mail.text())
    assert match is not None
    return match.group(1)


async def _rows(rig: GatewayRig, query: str, **params: Any) -> list[tuple[Any, ...]]:
    engine = create_engine(rig.dsn)
    try:
        async with engine.connect() as connection:
            return [tuple(row) for row in await connection.execute(text(query), params)]
    finally:
        await engine.dispose()
