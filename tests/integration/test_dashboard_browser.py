"""The staff dashboard in a real browser: headless system Chromium (Playwright) on a real store.

The store is SQLite, filled through the service layer: VT hands over cases in
several municipalities, the relay publishes them, the teams send receipts,
and one deadline runs out by the timers (the confirmation is overdue, route a
of the escalation is proposed). A coordinator signs in, sees the overdue
handover highlighted, watches a confirmation arrive live, opens the case,
records the escalation's outcome and signs out; a viewer can read but not act;
a form without its CSRF token is refused; an admin reads the access log and
sees it verify, until a row is altered in the database.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest
from playwright.async_api import Browser, BrowserContext, Page, async_playwright
from sqlalchemy import text

from adapters.dashboard.access_log import AccessLog
from adapters.dashboard.app import SECURITY_HEADERS
from gateway.domain.escalation import EscalationState
from gateway.domain.handover import OverdrachtState
from gateway.service.ports import StoredMessage
from tests.integration.dashboard_support import (
    CHROMIUM,
    Region,
    region_on_sqlite,
    serve_dashboard,
    shot,
    signed_in_at,
    staff_settings,
    utc,
)

pytestmark = pytest.mark.integration

OVERDUE_REF, WARNING_REF, LATER_REF, NIJMEGEN_REF = (
    "VT-2026-000701",
    "VT-2026-000702",
    "VT-2026-000703",
    "VT-2026-000704",
)


@dataclass
class Scene:
    region: Region
    base: str
    browser: Browser
    overdue: StoredMessage
    warning: StoredMessage
    nijmegen: StoredMessage


@pytest.fixture
async def scene(tmp_path: Path) -> AsyncIterator[Scene]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"no system Chromium at {CHROMIUM} (apt-get install chromium)", pytrace=False)
    # Monday 23 November 2026: VT hands over four cases.
    async with region_on_sqlite(tmp_path, utc(2026, 11, 23, 9, 0)) as region:
        overdue = await region.notice(OVERDUE_REF, "GM0281", date(2026, 11, 25))  # Tiel, Wed
        warning = await region.notice(WARNING_REF, "GM0216", date(2026, 11, 27))  # Culemborg, Fri
        await region.notice(LATER_REF, "GM0297", date(2026, 12, 10), "C")  # Zaltbommel
        nijmegen = await region.notice(NIJMEGEN_REF, "GM0268", date(2026, 12, 4))
        region.clock.now = utc(2026, 11, 23, 9, 5)
        for notice in (overdue, warning, nijmegen):
            await region.receipt(notice)
        # Thursday 26 November, 17:30: Tiel's term ended yesterday 17:00; Culemborg's warns.
        region.clock.now = utc(2026, 11, 26, 16, 30)
        await region.fire_timers()
        async with (
            serve_dashboard(region, staff_settings(tmp_path)) as base,
            async_playwright() as playwright,
        ):
            browser = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
            try:
                yield Scene(region, base, browser, overdue, warning, nijmegen)
            finally:
                await browser.close()


async def signed_in(scene: Scene, username: str) -> tuple[BrowserContext, Page]:
    return await signed_in_at(scene.browser, scene.base, username)


async def test_a_coordinator_follows_an_overdue_handover_to_its_escalation(scene: Scene) -> None:
    """Sign in, see the overdue one in red, watch a confirmation arrive live, record route a."""
    # Without a session: the sign-in page.
    anonymous = await scene.browser.new_context()
    page = await anonymous.new_page()
    response = await page.goto(f"{scene.base}/dashboard/")
    assert response is not None
    assert "/dashboard/sign-in" in page.url
    assert await page.inner_text("h1") == "Aanmelden"
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    await anonymous.close()

    context, page = await signed_in(scene, "coord")
    cookies = {c["name"]: c for c in await context.cookies()}
    session_cookie = cookies["vtgw_dashboard_session"]
    assert session_cookie["httpOnly"]
    assert session_cookie["secure"]
    assert session_cookie["sameSite"] == "Strict"

    overdue_row = page.locator(f"tr[data-overdracht='{scene.overdue.id}']")
    assert await overdue_row.get_attribute("class") == "overdue"
    assert await overdue_row.locator("td.stand").inner_text() == "Te laat"
    warning_row = page.locator(f"tr[data-overdracht='{scene.warning.id}']")
    assert await warning_row.get_attribute("class") == "warning"
    first = page.locator("table.open tbody tr").first
    assert await first.get_attribute("data-overdracht") == scene.overdue.id  # earliest deadline
    assert await page.inner_text("#count-open b") == "4"
    assert await page.inner_text("#count-overdue b") == "1"
    assert await page.inner_text("#count-warning b") == "1"
    # A laptop screen: no scrolling sideways.
    assert await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    await page.screenshot(path=shot("dashboard-start.png"), full_page=True)

    # Filters: Tiel only.
    await page.select_option("select[name=gemeente]", "GM0281")
    await page.click("form.filters button[type=submit]")
    await page.wait_for_selector("#open-list")
    assert await page.locator("table.open tbody tr").count() == 1
    await page.goto(f"{scene.base}/dashboard/")

    # Nijmegen's team confirms: the page updates without being reloaded.
    await page.evaluate("window.__notReloaded = true")
    nijmegen_row = f"tr[data-overdracht='{scene.nijmegen.id}']"
    assert await page.locator(nijmegen_row).count() == 1
    await scene.region.answer(scene.nijmegen, "overdracht.confirmation")
    await page.wait_for_selector(nijmegen_row, state="detached", timeout=10_000)
    assert await page.inner_text("#count-open b") == "3"
    assert await page.evaluate("window.__notReloaded === true")

    # The overdue handover's timeline.
    await overdue_row.locator("a").click()
    await page.wait_for_selector("section.handover")
    assert await page.inner_text("h1") == f"Zaak {OVERDUE_REF}"
    levels = page.locator("section.handover .level")
    assert await levels.nth(0).get_attribute("class") == "level done"  # broker confirmed
    assert await levels.nth(1).get_attribute("class") == "level done"  # receipt, digest matches
    assert "klopt" in await levels.nth(1).inner_text()
    assert await levels.nth(2).get_attribute("class") == "level"  # not confirmed
    assert "Te laat" in await page.inner_text("section.handover")
    assert "§8.5 C, D" in await page.inner_text("section.handover")  # the rule of the deadline
    assert await page.locator("form.withdraw").count() == 1
    assert await page.locator("form.outcome").count() == 1
    await page.screenshot(path=shot("dashboard-case.png"), full_page=True)

    await page.select_option("form.outcome select[name=outcome]", "I")
    await page.fill("form.outcome input[name=note]", "Afspraak gemaakt met coordinator")
    await page.click("form.outcome button[type=submit]")
    await page.wait_for_selector("p.notice")
    assert await page.get_attribute("section.escalation", "data-state") == "solved"
    assert await page.locator("form.outcome").count() == 0
    async with scene.region.store.transaction() as uow:
        (_number, escalation), *_ = await uow.escalations.since(utc(2026, 1, 1))
    assert escalation.state is EscalationState.SOLVED
    assert escalation.history[-1].by == "coord"

    # Sign out: the start page asks to sign in again, and the old cookie is no good.
    await page.click("header button.link")
    await page.wait_for_selector("form.signin")
    assert "afgemeld" in page.url
    await context.add_cookies([session_cookie])  # type: ignore[list-item]
    await page.goto(f"{scene.base}/dashboard/")
    assert "/dashboard/sign-in" in page.url
    await context.close()


async def test_a_viewer_sees_no_actions_and_a_forged_post_is_refused(scene: Scene) -> None:
    """A viewer reads the case but has no buttons; its POST, even with a valid token, is 403."""
    context, page = await signed_in(scene, "viewer")
    await page.goto(f"{scene.base}/dashboard/cases/{OVERDUE_REF}")
    await page.wait_for_selector("section.handover")
    assert await page.locator("form.withdraw").count() == 0
    assert await page.locator("form.outcome").count() == 0
    assert await page.locator("button.danger").count() == 0
    token = await page.get_attribute("header input[name=csrf]", "value")
    assert token
    forged = await context.request.post(
        f"{scene.base}/dashboard/cases/{OVERDUE_REF}/overdrachten/{scene.overdue.id}/withdraw",
        form={"csrf": token, "reden": "anders", "toelichting": "test"},
    )
    assert forged.status == 403
    outcome = await context.request.post(
        f"{scene.base}/dashboard/cases/{OVERDUE_REF}/escalations/1/outcome",
        form={"csrf": token, "outcome": "I"},
    )
    assert outcome.status == 403
    async with scene.region.store.transaction() as uow:
        overdracht = await uow.handovers.get(scene.overdue.id)
        escalation = await uow.escalations.get(1)
    assert overdracht is not None
    assert overdracht.state is not OverdrachtState.WITHDRAWN
    assert escalation is not None
    assert escalation.state is EscalationState.OPEN
    # The viewer may not read the access log either.
    denied = await context.request.get(f"{scene.base}/dashboard/access-log")
    assert denied.status == 403
    await context.close()


async def test_a_form_without_its_csrf_token_is_refused(scene: Scene) -> None:
    """A coordinator's POST without (or with another session's) token changes nothing: 403."""
    context, _page = await signed_in(scene, "coord")
    url = f"{scene.base}/dashboard/cases/{OVERDUE_REF}/overdrachten/{scene.overdue.id}/withdraw"
    missing = await context.request.post(url, form={"reden": "onjuiste_ontvanger"})
    assert missing.status == 403
    assert "Formulier niet geaccepteerd" in await missing.text()
    wrong = await context.request.post(url, form={"csrf": "0" * 64, "reden": "onjuiste_ontvanger"})
    assert wrong.status == 403
    sign_in_without = await context.request.post(
        f"{scene.base}/dashboard/sign-in", form={"username": "coord", "password": "x"}
    )
    assert sign_in_without.status == 403
    async with scene.region.store.transaction() as uow:
        overdracht = await uow.handovers.get(scene.overdue.id)
    assert overdracht is not None
    assert overdracht.state is OverdrachtState.DELIVERED
    await context.close()


async def test_a_coordinator_withdraws_an_open_handover(scene: Scene) -> None:
    """The withdraw form sends an overdracht.withdrawal: the handover is withdrawn, off the list."""
    context, page = await signed_in(scene, "coord")
    await page.goto(f"{scene.base}/dashboard/cases/{WARNING_REF}")
    await page.select_option("form.withdraw select[name=reden]", "onjuiste_ontvanger")
    await page.click("form.withdraw button[type=submit]")
    await page.wait_for_selector("p.notice")
    assert await page.get_attribute("section.handover", "data-state") == "withdrawn"
    await page.goto(f"{scene.base}/dashboard/")
    assert await page.locator(f"tr[data-overdracht='{scene.warning.id}']").count() == 0
    await context.close()


async def test_failed_sign_ins_are_limited(scene: Scene) -> None:
    """Five wrong passwords for one name from one client: the sixth attempt is refused (429)."""
    context = await scene.browser.new_context()
    page = await context.new_page()
    await page.goto(f"{scene.base}/dashboard/sign-in")
    statuses = []
    for _ in range(6):
        await page.fill("input[name=username]", "viewer")
        await page.fill("input[name=password]", "fout")
        async with page.expect_navigation() as navigation:
            await page.click("button[type=submit]")
        response = await navigation.value
        assert response is not None
        statuses.append(response.status)
    assert statuses == [401, 401, 401, 401, 401, 429]
    await context.close()


async def test_an_admin_searches_the_access_log_and_sees_tampering(scene: Scene) -> None:
    """Views and actions are logged with who and which case; an altered row breaks the chain."""
    coord, page = await signed_in(scene, "coord")
    await page.goto(f"{scene.base}/dashboard/cases/{OVERDUE_REF}")
    await coord.close()

    context, page = await signed_in(scene, "admin")
    await page.goto(f"{scene.base}/dashboard/access-log?case={OVERDUE_REF}")
    assert "Keten intact" in await page.inner_text("#chain")
    rows = await page.locator("table tbody tr").all_inner_texts()
    assert any("coord" in row and "view_case" in row and "coordinator" in row for row in rows)
    await page.goto(f"{scene.base}/dashboard/access-log")
    await page.screenshot(path=shot("dashboard-access-log.png"), full_page=True)
    for name in SECURITY_HEADERS:
        response = await context.request.get(f"{scene.base}/dashboard/access-log")
        assert name.lower() in response.headers

    async with scene.region.store.connection() as db:
        await db.execute(text("UPDATE access_log SET username = 'someone' WHERE sequence = 2"))
    check = await AccessLog(scene.region.store).verify()
    assert check.broken_at == 2
    await page.goto(f"{scene.base}/dashboard/access-log")
    assert "Keten verbroken bij regel 2" in await page.inner_text("#chain")
    await context.close()
