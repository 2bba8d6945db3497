"""The dashboard's operations and report pages in a real browser (headless system Chromium).

The store is SQLite, filled through the service layer as in
test_dashboard_browser.py. The fixable dead letter is a realistic one: the
Nijmegen team rotated its key and signed its confirmation with the new key
before VT had added that key to the team's contract, so the gateway refused
it (KEY_NOT_VALID). Once the contract holds the new key (here: the contracts
replaced in the running hub, as a restart with the updated contract file
would), a coordinator requeues the same bytes and they are accepted: the
handover is confirmed. (A message refused STALE or FUTURE for its clock could
not be fixed on VT's side: its `sent_at` is signed; the partner must send a
new one.) A message that is no JSON at all is discarded with a reason.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import date, timedelta
from pathlib import Path

import pytest
from playwright.async_api import Browser, BrowserContext, Page, async_playwright
from sqlalchemy import select

from adapters.dashboard.access_log import AccessLog, AccessQuery
from adapters.dashboard.ops_queries import dead_letter_actions
from adapters.store.tables import rejected
from gateway.domain.delivery import Status, TimerKind
from gateway.domain.handover import OverdrachtState
from gateway.service.ports import StoredMessage
from gateway.service.receiving import Delivery, Disposition
from tests.integration.dashboard_support import (
    CHROMIUM,
    Region,
    region_on_sqlite,
    serve_dashboard,
    shot,
    signed_in_at,
    staff_settings,
    utc,
    with_key,
    with_keys_ending,
)

pytestmark = pytest.mark.integration

NIJMEGEN_REF, WIJCHEN_REF, TIEL_REF = "VT-2026-000801", "VT-2026-000802", "VT-2026-000803"
ROTATING = "lt-nijmegen"  # signs with a new key before its contract has it
ENDING = "lt-wijchen"  # its only key ends within 60 days


@dataclass
class Scene:
    region: Region
    base: str
    browser: Browser
    nijmegen: StoredMessage
    wijchen: StoredMessage


@pytest.fixture
async def scene(tmp_path: Path) -> AsyncIterator[Scene]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"no system Chromium at {CHROMIUM} (apt-get install chromium)", pytrace=False)
    start = utc(2026, 11, 23, 9, 0)
    async with region_on_sqlite(tmp_path, start) as region:
        region.use_contracts(with_keys_ending(region.contracts, ENDING, start + timedelta(days=30)))
        nijmegen = await region.notice(NIJMEGEN_REF, "GM0268", date(2026, 12, 4))
        wijchen = await region.notice(WIJCHEN_REF, "GM0296", date(2026, 12, 4), "C")
        await region.notice(TIEL_REF, "GM0281", date(2026, 12, 4), "A")
        region.clock.now = utc(2026, 11, 23, 9, 5)
        await region.receipt(nijmegen)
        async with (
            serve_dashboard(region, staff_settings(tmp_path)) as base,
            async_playwright() as playwright,
        ):
            browser = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
            try:
                yield Scene(region, base, browser, nijmegen, wijchen)
            finally:
                await browser.close()


async def signed_in(scene: Scene, username: str) -> tuple[BrowserContext, Page]:
    return await signed_in_at(scene.browser, scene.base, username)


async def refused_twice(scene: Scene) -> tuple[int, int]:
    """Two dead letters: a confirmation signed with a key not yet in the contract, and junk."""
    rotated = scene.region.signed_answer(scene.nijmegen, "overdracht.confirmation", "2")
    handled = await scene.region.deliver(rotated)
    assert handled.disposition is Disposition.DEAD_LETTER
    assert handled.rejection is not None
    assert handled.rejection.code.value == "KEY_NOT_VALID"
    junk = await scene.region.deliver(Delivery(b"not json at all", ROTATING))
    assert junk.disposition is Disposition.DEAD_LETTER
    async with scene.region.store.connection() as db:
        ids = list((await db.execute(select(rejected.c.id).order_by(rejected.c.id))).scalars())
    assert len(ids) == 2
    return int(ids[0]), int(ids[1])


async def test_a_coordinator_requeues_a_fixed_dead_letter_and_discards_another(
    scene: Scene,
) -> None:
    key_refused, junk = await refused_twice(scene)
    context, page = await signed_in(scene, "coord")
    await page.click("header nav a:text('Geweigerd')")
    await page.wait_for_selector("table.dead-letters")
    rows = page.locator("table.dead-letters tbody tr")
    assert await rows.count() == 2
    assert await rows.first.get_attribute("data-dead-letter") == str(junk)  # newest first
    listing = await page.inner_text("table.dead-letters")
    assert "KEY_NOT_VALID" in listing
    assert "MALFORMED" in listing
    assert "not json" not in await page.content()  # no bytes by default

    # Requeued before the fix: refused again, with its code; nothing else changes.
    await page.goto(f"{scene.base}/dashboard/dead-letters/{key_refused}")
    assert await page.locator("#reveal").count() == 0  # a coordinator cannot see the bytes
    await page.click("form.requeue button")
    await page.wait_for_selector("#done")
    assert "weer geweigerd (KEY_NOT_VALID)" in await page.inner_text("#done")
    async with scene.region.store.connection() as db:
        assert len(list(await db.execute(select(rejected.c.id)))) == 2  # no second row

    # The fix: the team's new key joins its contract. Requeued: accepted now.
    scene.region.use_contracts(with_key(scene.region.contracts, ROTATING, "2"))
    await page.click("form.requeue button")
    await page.wait_for_selector("#done")
    assert "nu geaccepteerd" in await page.inner_text("#done")
    assert await page.locator("form.requeue").count() == 0  # handled
    async with scene.region.store.transaction() as uow:
        overdracht = await uow.handovers.get(scene.nijmegen.id)
    assert overdracht is not None
    assert overdracht.state is OverdrachtState.CONFIRMED

    # The junk is discarded with a reason; its row stays.
    await page.goto(f"{scene.base}/dashboard/dead-letters/{junk}")
    await page.fill("form.discard input[name=reden]", "testbericht van de partner, geen inhoud")
    await page.click("form.discard button")
    await page.wait_for_selector("#done")
    assert "afgewezen" in await page.inner_text("#handling")
    async with scene.region.store.connection() as db:
        actions = list(
            await db.execute(select(dead_letter_actions).order_by(dead_letter_actions.c.id))
        )
        kept = list(await db.execute(select(rejected.c.id)))
    assert [(a.rejected_id, a.action, a.outcome) for a in actions] == [
        (key_refused, "requeued", "refused:KEY_NOT_VALID"),
        (key_refused, "requeued", "accepted"),
        (junk, "discarded", "-"),
    ]
    assert actions[-1].reason == "testbericht van de partner, geen inhoud"
    assert actions[-1].by_user == "coord"
    assert len(kept) == 2
    await page.goto(f"{scene.base}/dashboard/dead-letters")
    handled = page.locator("table.dead-letters tbody tr[data-handled=yes]")
    assert await handled.count() == 2

    # The confirmed handover had monitoring planned: a reason not to monitor is recorded.
    await page.goto(f"{scene.base}/dashboard/cases/{NIJMEGEN_REF}")
    await page.select_option("form.no-monitoring select[name=reden]", "verhuisd_buiten_regio")
    await page.fill("form.no-monitoring input[name=toelichting]", "verhuisd naar regio Utrecht")
    await page.click("form.no-monitoring button")
    await page.wait_for_selector("p.notice")
    assert "verhuisd naar regio Utrecht" in await page.inner_text("table.no-monitoring")
    assert await page.locator("form.no-monitoring").count() == 0
    async with scene.region.store.transaction() as uow:
        pending = await uow.timers.pending(scene.region.hub.party, scene.nijmegen.id)
    assert not [t for t in pending if t.kind is TimerKind.MONITORING_REQUEST]
    entries = await AccessLog(scene.region.store).search(AccessQuery(case_ref=NIJMEGEN_REF))
    assert any(
        e.access.action == "no_monitoring" and e.access.detail["reden"] == "verhuisd_buiten_regio"
        for e in entries
    )
    assert any(e.access.action == "requeue_dead_letter" for e in entries)
    await context.close()


async def test_a_viewer_cannot_requeue_and_an_admin_reveals_the_bytes(scene: Scene) -> None:
    key_refused, _junk = await refused_twice(scene)
    context, page = await signed_in(scene, "viewer")
    await page.goto(f"{scene.base}/dashboard/dead-letters/{key_refused}")
    assert await page.locator("form.requeue").count() == 0
    assert await page.locator("form.discard").count() == 0
    token = await page.get_attribute("header input[name=csrf]", "value")
    assert token
    for action in ("requeue", "discard"):
        forged = await context.request.post(
            f"{scene.base}/dashboard/dead-letters/{key_refused}/{action}",
            form={"csrf": token, "reden": "x"},
        )
        assert forged.status == 403
    denied = await context.request.get(
        f"{scene.base}/dashboard/dead-letters/{key_refused}?inhoud=1"
    )
    assert denied.status == 403
    async with scene.region.store.connection() as db:
        assert not list(await db.execute(select(dead_letter_actions)))
    await context.close()

    context, page = await signed_in(scene, "admin")
    await page.goto(f"{scene.base}/dashboard/dead-letters/{key_refused}")
    await page.click("#reveal")
    await page.wait_for_selector("#raw")
    assert scene.nijmegen.id in await page.inner_text("#raw")  # the confirmation's reply_to
    entries = await AccessLog(scene.region.store).search(AccessQuery(username="admin"))
    assert any(
        e.access.action == "view_dead_letter_raw"
        and e.access.detail["rejected"] == str(key_refused)
        for e in entries
    )
    await context.close()


async def test_the_partners_page_warns_of_a_key_ending_within_60_days(scene: Scene) -> None:
    context, page = await signed_in(scene, "viewer")
    await page.click("header nav a:text('Partners')")
    await page.wait_for_selector("table.partners")
    ending = page.locator(f"tr[data-party='{ENDING}']")
    assert await ending.get_attribute("class") == "warning"
    assert await ending.locator(".key[data-state='ends-soon']").count() == 1
    assert "loopt binnen 60 dagen af" in await ending.inner_text()
    assert "1 partij(en)" in await page.inner_text("#key-summary")
    fine = page.locator(f"tr[data-party='{ROTATING}']")
    assert await fine.get_attribute("class") is None
    assert await fine.locator("td.heard").inner_text() != "-"  # its receipt was heard
    assert await fine.locator("td.pending").inner_text() == "0"  # the notice is delivered
    assert await ending.locator("td.pending").inner_text() == "1"  # sent, no receipt yet
    # No horizontal scrolling on a laptop.
    assert await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    await context.close()


async def test_resend_of_an_undeliverable_notice_and_the_alerts_page(scene: Scene) -> None:
    region = scene.region
    # Wijchen's team never sends a receipt: resends back off until the attempt limit.
    for _ in range(12):
        region.clock.now += timedelta(days=1)
        await region.fire_timers()
        await region.relay()
        async with region.store.transaction() as uow:
            message = await uow.messages.get(region.hub.party, scene.wijchen.id)
        assert message is not None
        if message.status is Status.UNDELIVERABLE:
            break
    assert message.status is Status.UNDELIVERABLE

    context, page = await signed_in(scene, "coord")
    await page.click("header nav a:text('Meldingen')")
    await page.wait_for_selector("table.open-alerts")
    assert await page.locator(f"tr[data-key='undeliverable:{ENDING}']").count() == 1
    await page.goto(f"{scene.base}/dashboard/partners")
    assert await page.locator(f"tr[data-party='{ENDING}'] td.undeliverable").inner_text() == "1"

    async with region.store.transaction() as uow:
        depth = await uow.outbox.depth()
    await page.goto(f"{scene.base}/dashboard/cases/{WIJCHEN_REF}")
    assert "onbestelbaar" in await page.inner_text("form.resend")
    await page.click("form.resend button")
    await page.wait_for_selector("p.notice")
    async with region.store.transaction() as uow:
        assert await uow.outbox.depth() == depth + 1
        again = await uow.messages.get(region.hub.party, scene.wijchen.id)
    assert again is not None
    assert again.raw == scene.wijchen.raw  # the same bytes, the same id
    entries = await AccessLog(region.store).search(AccessQuery(case_ref=WIJCHEN_REF))
    resent = [e for e in entries if e.access.action == "resend"]
    assert resent[0].access.outcome == "ok"
    assert resent[0].access.detail["history"] == "no"  # final: evidence in the access log only
    await context.close()

    viewer, page = await signed_in(scene, "viewer")
    await page.goto(f"{scene.base}/dashboard/cases/{WIJCHEN_REF}")
    assert await page.locator("form.resend").count() == 0
    token = await page.get_attribute("header input[name=csrf]", "value")
    forged = await viewer.request.post(
        f"{scene.base}/dashboard/cases/{WIJCHEN_REF}/messages/{scene.wijchen.id}/resend",
        form={"csrf": token or ""},
    )
    assert forged.status == 403
    await viewer.close()


async def test_the_report_page_shows_charts_and_downloads_csv(scene: Scene) -> None:
    await scene.region.answer(scene.nijmegen, "overdracht.confirmation")
    context, page = await signed_in(scene, "viewer")
    await page.click("header nav a:text('Rapportage')")
    await page.wait_for_selector("svg#chart-moments")
    assert page.url.endswith("/dashboard/reports/2026Q4")
    for chart in ("chart-moments", "chart-confirmed", "chart-monitoring", "chart-escalations"):
        assert await page.locator(f"svg#{chart}").count() == 1
    moments = await page.text_content("svg#chart-moments") or ""
    assert "Nijmegen" in moments
    assert "A 0 · B 1 · C 0 = 1" in moments  # values printed, not colour alone
    assert "Wijchen" in moments
    assert "op tijd 1 · te laat 0 = 1" in (await page.text_content("svg#chart-confirmed") or "")
    nijmegen = page.locator("table.handovers tr[data-gemeente='GM0268'] td")
    assert await nijmegen.nth(2).inner_text() == "1"  # moment B
    assert await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    await page.screenshot(path=shot("dashboard-report.png"), full_page=True)

    async with page.expect_download() as download_info:
        await page.click("a#csv")
    download = await download_info.value
    assert download.suggested_filename == "rapportage-2026Q4.csv"
    text = Path(await download.path()).read_text(encoding="utf-8")
    rows = {row["gemeente"]: row for row in csv.DictReader(io.StringIO(text))}
    assert rows["GM0268"]["overdrachten_b"] == "1"
    assert rows["GM0268"]["bevestigd_binnen_termijn"] == "1"
    assert rows["GM0296"]["overdrachten_c"] == "1"

    # The picker goes to another quarter.
    await page.select_option("#quarter-picker select", "2026Q3")
    await page.click("#quarter-picker button")
    await page.wait_for_selector("svg#chart-moments")
    assert page.url.endswith("/dashboard/reports/2026Q3")
    entries = await AccessLog(scene.region.store).search(AccessQuery(username="viewer"))
    actions = {(e.access.action, e.access.detail.get("quarter")) for e in entries}
    assert ("view_report", "2026Q4") in actions
    assert ("download_report", "2026Q4") in actions
    await context.close()


async def test_the_start_pages_links_walk_every_open_handover_forwards_and_back(
    tmp_path: Path,
) -> None:
    """Pages of 5 over 13 open handovers, some sharing a deadline: following "volgende" shows
    each once in deadline order (the links carry the last row's key, not an offset), and
    "vorige" walks back through the same pages."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"no system Chromium at {CHROMIUM} (apt-get install chromium)", pytrace=False)
    async with region_on_sqlite(tmp_path, utc(2026, 11, 23, 9, 0)) as region:
        for n in range(13):
            await region.notice(f"VT-2026-0009{n:02d}", "GM0268", date(2026, 12, 1 + n // 3))
        settings = replace(staff_settings(tmp_path), page_size=5)
        async with serve_dashboard(region, settings) as base, async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
            try:
                _, page = await signed_in_at(browser, base, "coord")

                async def shown() -> list[str]:
                    rows = await page.query_selector_all("tr[data-overdracht]")
                    return [str(await row.get_attribute("data-overdracht")) for row in rows]

                forwards = [await shown()]
                while await page.query_selector("a[rel=next]"):
                    await page.click("a[rel=next]")
                    await page.wait_for_selector("#open-list")
                    assert "na=" in page.url
                    forwards.append(await shown())
                backwards = [await shown()]
                while await page.query_selector("a[rel=prev]"):
                    await page.click("a[rel=prev]")
                    await page.wait_for_selector("#open-list")
                    backwards.append(await shown())
                pager = await page.inner_text(".pager")
            finally:
                await browser.close()
        async with region.store.transaction() as uow:
            in_order = sorted(await uow.handovers.still_open(), key=lambda o: (o.deadline, o.id))
    assert [len(p) for p in forwards] == [5, 5, 3]
    assert [i for p in forwards for i in p] == [o.id for o in in_order]
    assert backwards == list(reversed(forwards))
    assert "Pagina 1 van 3" in pager
