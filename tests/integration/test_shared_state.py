"""What the instances on one store agree on: signed-out sessions and rate limits (migration 0011).

`SharedStateContract` holds the store's rules, run on SQLite and on
PostgreSQL, each time with two stores on one database (two instances, each
with its own connections). Then the instances themselves: two dashboards and
two bridge page apps, each on its own store of one PostgreSQL database, as two
`vt-gateway run` processes would be. A session signed out on one is refused by
the other; five failed sign-ins on one and the sixth on the other is refused;
sixty link requests on one and the sixty-first on the other is refused. The
clock is the test's: windows run out without waiting.
"""

from __future__ import annotations

import asyncio
import random
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import Table, func, select

from adapters.dashboard.app import SESSION_COOKIE, SIGN_IN_COOKIE
from adapters.email.content import Sender
from adapters.email.context import BridgeContext
from adapters.email.pages import create_pages_app
from adapters.email.signing import TeamSigner
from adapters.email.smtp import SmtpOut
from adapters.email.store import BridgeStore, MailRecord, ReceiptState
from adapters.store import SqlStore, open_store
from adapters.store.shared_state import (
    RateLimit,
    RateRule,
    SignedOutSessions,
    rate_events,
    signed_out_sessions,
    sole_round,
)
from gateway.bootstrap import Paths, load_core
from gateway.domain.calendar import WorkingDayCalendar
from gateway.resources import data_dir
from gateway.service.outgoing import Hub
from gateway.service.pipeline import Verifier
from gateway.vectors import load_examples, vector_key, with_test_keys
from tests.integration.dashboard_support import (
    PASSWORDS,
    Region,
    serve_dashboard,
    staff_settings,
)
from tests.integration.dashboard_support import TestClock as Clock

pytestmark = pytest.mark.integration

T0 = datetime(2026, 12, 9, 9, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
SECOND = timedelta(seconds=1)


async def rows(store: SqlStore, table: Table) -> int:
    async with store.connection() as db:
        return int(await db.scalar(select(func.count()).select_from(table)) or 0)


class SharedStateContract:
    """The rules of the shared state, on one backend; `store` and `other` share one database."""

    async def test_a_rate_limit_admits_its_limit_then_refuses(
        self, store: SqlStore, other: SqlStore
    ) -> None:
        """Three in the window pass, the fourth not; another subject or scope is counted apart."""
        rule = RateRule(limit=3, window=MINUTE)
        here, there = RateLimit(store, "test", rule), RateLimit(other, "test", rule)
        assert [await here.take("a", T0 + n * SECOND) for n in range(2)] == [True, True]
        assert await there.take("a", T0 + 2 * SECOND)
        assert not await here.take("a", T0 + 3 * SECOND)
        assert not await there.take("a", T0 + 3 * SECOND)
        assert await there.take("b", T0 + 3 * SECOND)
        assert await RateLimit(other, "another", rule).take("a", T0 + 3 * SECOND)

    async def test_a_refused_request_counts_for_nothing(
        self, store: SqlStore, other: SqlStore
    ) -> None:
        """Refused at 20 s; at 60 s the first has aged out and only the one at 10 s still counts."""
        rule = RateRule(limit=2, window=MINUTE)
        here, there = RateLimit(store, "test", rule), RateLimit(other, "test", rule)
        assert await here.take("a", T0)
        assert await there.take("a", T0 + 10 * SECOND)
        assert not await here.take("a", T0 + 20 * SECOND)
        assert not await there.take("a", T0 + MINUTE - SECOND)
        assert await there.take("a", T0 + MINUTE)
        assert not await here.take("a", T0 + MINUTE + SECOND)

    async def test_the_store_decides_as_the_rule_does(
        self, store: SqlStore, other: SqlStore
    ) -> None:
        """A seeded walk of requests of three subjects over two instances: the rule's verdicts."""
        rule = RateRule(limit=4, window=30 * SECOND)
        instances = (RateLimit(store, "test", rule), RateLimit(other, "test", rule))
        rng = random.Random(11)  # a seeded walk: the same every run
        admitted: dict[str, list[datetime]] = {"a": [], "b": [], "c": []}
        now = T0
        for _ in range(120):
            now += timedelta(milliseconds=rng.randrange(0, 8000))
            subject = rng.choice("abc")
            expected = rule.admits(admitted[subject], now)
            assert await rng.choice(instances).take(subject, now) is expected, (subject, now)
            if expected:
                admitted[subject].append(now)
        assert sum(map(len, admitted.values())) < 120  # the walk did meet the limit

    async def test_events_past_the_window_are_pruned(
        self, store: SqlStore, other: SqlStore
    ) -> None:
        """The table keeps what still counts: a window later, old events of the scope are gone."""
        rule = RateRule(limit=5, window=MINUTE)
        here = RateLimit(store, "test", rule)
        for subject in "abcde":
            assert await here.take(subject, T0)
        assert await RateLimit(other, "other scope", rule).take("a", T0)
        assert await rows(store, rate_events) == 6
        assert await here.take("f", T0 + MINUTE + SECOND)
        assert await rows(store, rate_events) == 2  # the new one and the other scope's
        assert await RateLimit(other, "other scope", rule).take("a", T0 + 3 * MINUTE)
        assert await rows(store, rate_events) == 2

    async def test_clearing_a_subject_forgets_its_events(
        self, store: SqlStore, other: SqlStore
    ) -> None:
        """A sign-in that succeeds clears the failures: the subject starts again, others not."""
        rule = RateRule(limit=1, window=MINUTE)
        here, there = RateLimit(store, "test", rule), RateLimit(other, "test", rule)
        assert await here.take("a", T0)
        assert await here.take("b", T0)
        await there.clear("a")
        assert await here.take("a", T0 + SECOND)
        assert not await here.take("b", T0 + SECOND)

    async def test_concurrent_requests_on_two_instances_pass_the_limit_no_further(
        self, store: SqlStore, other: SqlStore
    ) -> None:
        """Sixteen requests at once, half on each instance, limit five: exactly five pass."""
        rule = RateRule(limit=5, window=MINUTE)
        here, there = RateLimit(store, "test", rule), RateLimit(other, "test", rule)
        verdicts = await asyncio.gather(
            *(
                (here if n % 2 else there).take("a", T0 + n * timedelta(milliseconds=1))
                for n in range(16)
            )
        )
        assert verdicts.count(True) == 5

    async def test_a_session_signed_out_on_one_instance_is_known_to_the_other(
        self, store: SqlStore, other: SqlStore
    ) -> None:
        """Signed out here, refused there; signing out twice is no error; others are not."""
        await SignedOutSessions(store).add("session-1", T0 + 35 * MINUTE, T0)
        await SignedOutSessions(store).add("session-1", T0 + 35 * MINUTE, T0)
        assert await SignedOutSessions(other).contains("session-1")
        assert not await SignedOutSessions(other).contains("session-2")

    async def test_signed_out_sessions_are_pruned_once_their_cookies_are_stale(
        self, store: SqlStore, other: SqlStore
    ) -> None:
        """A sign-out forgets the sessions whose time of refusal is over."""
        await SignedOutSessions(store).add("session-1", T0 + 35 * MINUTE, T0)
        await SignedOutSessions(other).add("session-2", T0 + 40 * MINUTE, T0 + 35 * MINUTE)
        assert await rows(store, signed_out_sessions) == 2  # session-1's moment is not past
        await SignedOutSessions(other).add("session-3", T0 + 90 * MINUTE, T0 + 36 * MINUTE)
        assert await rows(store, signed_out_sessions) == 2
        assert not await SignedOutSessions(store).contains("session-1")
        assert await SignedOutSessions(store).contains("session-2")


class TestSqliteSharedState(SharedStateContract):
    @pytest.fixture
    def store(self, sqlite_store: SqlStore) -> SqlStore:
        return sqlite_store

    @pytest.fixture
    async def other(self, sqlite_dsn: str) -> AsyncIterator[SqlStore]:
        other = await open_store(sqlite_dsn)
        yield other
        await other.close()


class TestPostgresSharedState(SharedStateContract):
    @pytest.fixture
    def store(self, postgres_store: SqlStore) -> SqlStore:
        return postgres_store

    @pytest.fixture
    async def other(self, postgres_dsn: str) -> AsyncIterator[SqlStore]:
        other = await open_store(postgres_dsn)
        yield other
        await other.close()


# --- two instances of the gateway's web apps on one PostgreSQL -------------------------


@pytest.fixture
async def second_store(postgres_dsn: str) -> AsyncIterator[SqlStore]:
    """Another instance's store: its own engine on the same database."""
    store = await open_store(postgres_dsn)
    yield store
    await store.close()


@dataclass
class Dashboards:
    """Two dashboards (two instances) on one PostgreSQL database, sharing settings and clock."""

    first: str
    second: str
    clock: Clock
    http: aiohttp.ClientSession


@pytest.fixture
async def dashboards(
    tmp_path: Path, postgres_store: SqlStore, second_store: SqlStore
) -> AsyncIterator[Dashboards]:
    core = load_core(Paths.defaults())
    contracts = with_test_keys(core.contracts)
    hub = Hub(
        Verifier(contracts, core.validator, "vt-gz"),
        vector_key("vt-gz"),
        WorkingDayCalendar.for_region(core.region),
    )
    examples = {e["type"]: e for e in load_examples(data_dir("schemas") / "examples")}
    clock = Clock(T0)
    region = Region(core, contracts, hub, postgres_store, clock, examples)
    settings = staff_settings(tmp_path)  # one staff file and session secret, as deployed
    async with (
        serve_dashboard(region, settings) as first,
        serve_dashboard(replace(region, store=second_store), settings) as second,
        # Cookies by hand: the test decides which instance sees which cookie.
        aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http,
    ):
        yield Dashboards(first, second, clock, http)


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match is not None, html
    return match.group(1)


async def sign_in(
    dashboards: Dashboards, base: str, username: str, password: str
) -> aiohttp.ClientResponse:
    """The sign-in form fetched and posted on the instance at `base`; the POST's response."""
    async with dashboards.http.get(f"{base}/dashboard/sign-in") as page:
        nonce = page.cookies[SIGN_IN_COOKIE].value
        token = csrf_of(await page.text())
    async with dashboards.http.post(
        f"{base}/dashboard/sign-in",
        data={"csrf": token, "username": username, "password": password},
        headers={"Cookie": f"{SIGN_IN_COOKIE}={nonce}"},
        allow_redirects=False,
    ) as response:
        await response.read()
        return response


async def start_page(dashboards: Dashboards, base: str, cookie: str) -> aiohttp.ClientResponse:
    async with dashboards.http.get(
        f"{base}/dashboard/",
        headers={"Cookie": f"{SESSION_COOKIE}={cookie}"},
        allow_redirects=False,
    ) as response:
        await response.read()
        return response


async def test_a_session_signed_out_on_one_instance_is_refused_by_the_other(
    dashboards: Dashboards,
) -> None:
    """Signed in on the first, used on the second, signed out on the first: the second refuses."""
    signed_in = await sign_in(dashboards, dashboards.first, "coord", PASSWORDS["coord"])
    assert signed_in.status == 303
    cookie = signed_in.cookies[SESSION_COOKIE].value
    on_second = await start_page(dashboards, dashboards.second, cookie)
    assert on_second.status == 200
    async with dashboards.http.get(
        f"{dashboards.first}/dashboard/", headers={"Cookie": f"{SESSION_COOKIE}={cookie}"}
    ) as page:
        token = csrf_of(await page.text())
    async with dashboards.http.post(
        f"{dashboards.first}/dashboard/sign-out",
        data={"csrf": token},
        headers={"Cookie": f"{SESSION_COOKIE}={cookie}"},
        allow_redirects=False,
    ) as signed_out:
        assert signed_out.status == 303
    dashboards.clock.now += timedelta(minutes=29)  # still within the idle time of 30 minutes
    refused = await start_page(dashboards, dashboards.second, cookie)
    assert refused.status == 303
    assert refused.headers["Location"] == "/dashboard/sign-in"
    assert (await start_page(dashboards, dashboards.first, cookie)).status == 303


async def test_the_sixth_failed_sign_in_is_refused_whichever_instance_it_reaches(
    dashboards: Dashboards,
) -> None:
    """Five wrong passwords on the first; the sixth attempt on the second gets 429, even right."""
    statuses = [
        (await sign_in(dashboards, dashboards.first, "viewer", "fout")).status for _ in range(5)
    ]
    assert statuses == [401] * 5
    sixth = await sign_in(dashboards, dashboards.second, "viewer", "fout")
    assert sixth.status == 429
    right = await sign_in(dashboards, dashboards.second, "viewer", PASSWORDS["viewer"])
    assert right.status == 429
    other_name = await sign_in(dashboards, dashboards.second, "coord", PASSWORDS["coord"])
    assert other_name.status == 303
    # Fifteen minutes later the failures count no longer, on either instance.
    dashboards.clock.now += timedelta(minutes=15)
    later = await sign_in(dashboards, dashboards.second, "viewer", PASSWORDS["viewer"])
    assert later.status == 303
    assert (await sign_in(dashboards, dashboards.first, "viewer", "fout")).status == 401


def bridge_context(store: SqlStore, clock: Clock) -> BridgeContext:
    """The bridge of one instance, on its own store; the same secret as every instance."""
    core = load_core(Paths.defaults())
    calendar = WorkingDayCalendar.for_region(core.region)
    hub = Hub(
        Verifier(with_test_keys(core.contracts), core.validator, "vt-gz"),
        vector_key("vt-gz"),
        calendar,
    )
    return BridgeContext(
        store=BridgeStore(store),
        hub=hub,
        signer=TeamSigner(vector_key("vtgw-bridge")),
        bridge_party="vtgw-bridge",
        secret=b"r" * 32,
        smtp=SmtpOut("127.0.0.1", 25, "none"),  # no mail is sent here
        sender=Sender("overdracht-brug@vt-gz.example", "Veilig Thuis Gelderland-Zuid"),
        public_base_url="https://vtgw.example",
        link_lifetime=timedelta(days=7),
        calendar=calendar,
        clock=clock,
    )


@asynccontextmanager
async def pages(context: BridgeContext) -> AsyncIterator[TestClient[web.Request, web.Application]]:
    root = web.Application()
    root.add_subapp("/bridge", create_pages_app(context))
    async with TestClient(TestServer(root)) as client:
        yield client


async def test_the_link_rate_limit_counts_the_requests_of_every_instance(
    postgres_store: SqlStore, second_store: SqlStore
) -> None:
    """Sixty link requests on the first instance in a minute; the next, on either, gets 429."""
    clock = Clock(T0)
    link = "/bridge/m/6f1c1d4e-8a4b-4c57-9a39-3d1e5c0e2a10/niet-een-token"
    async with (
        pages(bridge_context(postgres_store, clock)) as first,
        pages(bridge_context(second_store, clock)) as second,
    ):
        statuses = []
        for _ in range(60):
            async with first.get(link) as response:
                statuses.append(response.status)
            clock.now += SECOND / 2
        assert statuses == [403] * 60  # an altered link, refused as such
        async with second.get(link) as response:
            assert response.status == 429
            assert "Te veel verzoeken" in await response.text()
        async with first.post(link, data={}) as response:
            assert response.status == 429
        clock.now = T0 + MINUTE  # the first request counts no longer
        async with second.get(link) as response:
            assert response.status == 403
        async with first.get(link) as response:
            assert response.status == 429


# --- the bridge's rounds with two instances on one PostgreSQL -------------------------


async def test_one_instance_at_a_time_does_a_round(
    postgres_store: SqlStore, second_store: SqlStore, sqlite_store: SqlStore
) -> None:
    """While one instance does the reminder round, another's round is skipped; after it,
    the other may. On SQLite (one instance) the round is always this one's."""
    async with (
        sole_round(postgres_store, "bridge-reminders") as first,
        sole_round(second_store, "bridge-reminders") as second,
        sole_round(second_store, "another-round") as unrelated,
    ):
        assert (first, second, unrelated) == (True, False, True)
    async with sole_round(second_store, "bridge-reminders") as later:
        assert later
    async with sole_round(sqlite_store, "bridge-reminders") as alone:
        assert alone


async def test_two_instances_record_each_mails_receipt_once(
    postgres_store: SqlStore, second_store: SqlStore
) -> None:
    """Pending receipts held by one instance's round are skipped by the other's."""

    def mail(n: int) -> MailRecord:
        return MailRecord(
            kind="message",
            message_sender="vt-gz",
            message_id=f"m{n}",
            message_type="overdracht.notice",
            party="lt-tiel",
            addresses=("team@lt-tiel.example",),
            smtp_message_id=f"<{n}@bridge.example>",
            confirmation_code=None,
            token_id=None,
            accepted_at=datetime(2026, 11, 23, 9, tzinfo=UTC),
            smtp_response="250 ok",
            receipt_state=ReceiptState.PENDING,
        )

    first, second = BridgeStore(postgres_store), BridgeStore(second_store)
    async with first.transaction() as work:
        for n in range(5):
            await work.mail.add_mail(mail(n))
    async with first.transaction() as mine:
        held = await mine.mail.receipts_pending(limit=3)
        async with second.transaction() as theirs:
            rest = await asyncio.wait_for(theirs.mail.receipts_pending(limit=10), 5)
    assert [m.message_id for m in held] == ["m0", "m1", "m2"]
    assert [m.message_id for m in rest] == ["m3", "m4"]
