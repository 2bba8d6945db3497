"""Scale of the dashboard's start page and the API's list of unconfirmed handovers.

Fills a fresh store (SQLite file, PostgreSQL database) with synthetic data by
bulk SQLAlchemy Core inserts straight into the tables: N messages with their
status rows, N/5 overdrachten of which N/10 are open (sent, delivered,
deferred; the rest confirmed, withdrawn, undeliverable), one ledger entry per
case, 15 municipalities, every partner that receives overdracht.notice,
deadlines spread over 60 days either side of now. Then it serves the
dashboard and VT's API in this process (aiohttp, over loopback HTTP), signs a
coordinator in and times, after a warm-up, the median of

- the start page (`GET /dashboard/`, the first page of 50 with the counts),
- a filtered start page (one municipality, overdue only),
- the start page filtered by state alone (the deferred ones: no index leads with
  the state, so this is the filter most likely to read many rows),
- the API's list of unconfirmed handovers past deadline (`GET /api/v1/overdue`).

Goal (issue 6): at 1,000,000 messages at most twice the median at 10,000, and
under 200 ms. Synthetic data, printed figures, no asserts on timing.

    .venv/bin/python bench/dashboard.py [--sizes 10000,1000000] \
        [--backends sqlite,postgresql] [--pg-dsn postgresql://postgres@127.0.0.1:5432/postgres] \
        [--requests 30]

The PostgreSQL databases are `vtgw_bench_<size>_<pid>`, dropped after their size is timed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import random
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import structlog
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import Table, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from adapters.dashboard import create_dashboard_app  # noqa: E402
from adapters.http.api import API_PREFIX, create_api_app  # noqa: E402
from adapters.http.auth import ApiTokens, hash_token  # noqa: E402
from adapters.store.engine import create_engine  # noqa: E402
from adapters.store.sql import SqlStore, migrate, open_store  # noqa: E402
from adapters.store.tables import ledger, message_status, messages, overdrachten  # noqa: E402
from gateway.bootstrap import Core, Paths, load_core  # noqa: E402
from gateway.domain.calendar import WorkingDayCalendar  # noqa: E402
from gateway.service.outgoing import Hub  # noqa: E402
from gateway.service.pipeline import Verifier  # noqa: E402
from gateway.vectors import vector_key, with_test_keys  # noqa: E402
from tests.integration.dashboard_support import PASSWORDS, staff_settings  # noqa: E402

VT = "vt-gz"
TOKEN = "bench-token-0123456789-abcdefghijklmnopqrstuvwxyz"  # noqa: S105 - synthetic
CHUNK = 20_000
RAW = b'{"synthetic": "' + b"x" * 300 + b'"}'  # a stored body of a plausible size
OPEN_STATES = (("notice_sent", 3), ("delivered", 5), ("deferred", 2))
CLOSED_STATES = (("confirmed", 17), ("withdrawn", 2), ("undeliverable", 1))
CSRF = re.compile(r'name="csrf" value="([^"]+)"')

Client = TestClient[web.Request, web.Application]


@dataclass(frozen=True)
class Result:
    backend: str
    size: int
    fill_seconds: float
    open_handovers: int
    start_ms: float
    filtered_ms: float
    state_ms: float
    api_ms: float
    api_items: int


# --- the synthetic store -----------------------------------------------------------


def _weighted(rng: random.Random, choices: Sequence[tuple[str, int]]) -> str:
    return rng.choices([c for c, _ in choices], weights=[w for _, w in choices])[0]


def _chunks(rows: Iterator[dict[str, Any]], size: int = CHUNK) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


@dataclass(frozen=True)
class Shape:
    """The numbers of one store: messages, handovers (all and open), cases."""

    messages: int

    @property
    def handovers(self) -> int:
        return self.messages // 5

    @property
    def open(self) -> int:
        return self.messages // 10


def _handover_rows(
    shape: Shape, now: datetime, gemeenten: Sequence[str], partners: Sequence[str]
) -> Iterator[dict[str, Any]]:
    """The overdrachten: the first `open` ones open, the rest final; cases of 1-2 handovers."""
    rng = random.Random(6)
    today = now.date()
    has_open_deadline = "open_deadline" in overdrachten.c
    for i in range(shape.handovers):
        is_open = i < shape.open
        state = _weighted(rng, OPEN_STATES if is_open else CLOSED_STATES)
        opened = now - timedelta(days=rng.uniform(0, 90), seconds=rng.randrange(86_400))
        advised = today + timedelta(days=rng.randint(-60, 60))
        deferred = advised + timedelta(days=rng.randint(1, 30)) if state == "deferred" else None
        history = [{"state": "notice_sent", "at": opened.isoformat(), "evidence": {}}]
        if state != "notice_sent":
            history.append(
                {
                    "state": state,
                    "at": (opened + timedelta(hours=2)).isoformat(),
                    "evidence": {"message_id": f"m-{i}"},
                }
            )
        row: dict[str, Any] = {
            "id": _uuid(i, 1),
            "case_ref": _case_ref(i),
            "gemeente": gemeenten[i % len(gemeenten)],
            "moment": rng.choice("ABBC"),
            "recipient": rng.choice(partners),
            "advised_term": advised,
            "state": state,
            "deferred_to": deferred,
            "history": json.dumps(history, sort_keys=True),
            "opened_at": opened,
        }
        if has_open_deadline:
            row["open_deadline"] = (deferred or advised) if is_open else None
        yield row


def _case_ref(handover: int) -> str:
    case = handover * 2 // 3  # two cases of three have one handover, one has two
    return f"VT-{2020 + case // 1_000_000}-{case % 1_000_000:06d}"


def _uuid(n: int, kind: int) -> str:
    return f"{kind:08x}-0000-4000-8000-{n:012x}"


def _message_rows(
    shape: Shape, now: datetime, gemeenten: Sequence[str], partners: Sequence[str]
) -> Iterator[dict[str, Any]]:
    """A notice per handover, answers to them, and other traffic up to `messages`."""
    rng = random.Random(7)
    for seq in range(1, shape.messages + 1):
        n = seq - 1
        partner = rng.choice(partners)
        sent = now - timedelta(days=rng.uniform(0, 120))
        case_ref: str | None
        if n < shape.handovers:  # the notices, by handover
            kind, sender, recipient, thread = "overdracht.notice", VT, partner, _uuid(n, 1)
            message_id, case_ref = thread, _case_ref(n)
        else:
            kind = rng.choice(
                (
                    "receipt",
                    "receipt",
                    "overdracht.confirmation",
                    "enrichment.request",
                    "enrichment.response",
                    "monitoring.request",
                )
            )
            incoming = kind in ("receipt", "overdracht.confirmation", "enrichment.response")
            sender, recipient = (partner, VT) if incoming else (VT, partner)
            message_id = _uuid(n, 2)
            thread = _uuid(rng.randrange(shape.handovers), 1)
            case_ref = None if kind == "receipt" else _case_ref(rng.randrange(shape.handovers))
        yield {
            "seq": seq,
            "id": message_id,
            "sender": sender,
            "recipient": recipient,
            "type": kind,
            "thread": thread,
            "reply_to": None if kind == "overdracht.notice" else thread,
            "case_ref": case_ref,
            "gemeente": gemeenten[n % len(gemeenten)] if case_ref else None,
            "direction": "out" if sender == VT else "in",
            "digest": f"sha256:{n:064x}",
            "raw": RAW,
            "sent_at": sent,
            "created_at": sent,
            "status": "delivered" if sender == VT else "received",
            "final": True,
            "attempts": 1,
        }


def _status_rows(shape: Shape, now: datetime) -> Iterator[dict[str, Any]]:
    for seq in range(1, shape.messages + 1):
        yield {
            "message_seq": seq,
            "status": "delivered",
            "at": now - timedelta(minutes=seq % 100_000),
            "evidence": '{"receipt_id": "x"}',
            "final": True,
        }


def _ledger_rows(shape: Shape, now: datetime, gemeenten: Sequence[str]) -> Iterator[dict[str, Any]]:
    """One entry per case: VT holds the cases of open handovers, the partner the others."""
    seen: set[str] = set()
    sequence = 0
    for i in range(shape.handovers):
        ref = _case_ref(i)
        if ref in seen:
            continue
        seen.add(ref)
        sequence += 1
        yield {
            "sequence": sequence,
            "case_ref": ref,
            "gemeente": gemeenten[i % len(gemeenten)],
            "kind": "veiligheidsbeoordeling" if i < shape.open else "overdracht_bevestigd",
            "by_party": VT,
            "holder": VT if i < shape.open else "partner",
            "regievoerder": VT,
            "at": now - timedelta(days=100),
            "evidence": "{}",
            "previous_hash": f"sha256:{sequence - 1:064x}",
            "hash": f"sha256:{sequence:064x}",
        }


async def _insert(db: AsyncConnection, table: Table, rows: Iterator[dict[str, Any]]) -> int:
    count = 0
    for batch in _chunks(rows):
        await db.execute(table.insert(), batch)
        count += len(batch)
    return count


async def fill(dsn: str, shape: Shape, core: Core, now: datetime) -> None:
    gemeenten = sorted(m.code for m in core.region)
    partners = sorted(c.party for c in core.contracts if "overdracht.notice" in c.may_receive)
    engine = create_engine(dsn)
    try:
        async with engine.begin() as db:
            await _insert(db, messages, _message_rows(shape, now, gemeenten, partners))
            await _insert(db, message_status, _status_rows(shape, now))
            await _insert(db, overdrachten, _handover_rows(shape, now, gemeenten, partners))
            await _insert(db, ledger, _ledger_rows(shape, now, gemeenten))
            if db.dialect.name == "postgresql":
                for table in ("messages", "message_status"):  # seq was given explicitly
                    await db.execute(
                        text("SELECT setval(pg_get_serial_sequence(:t, 'seq'), :n)"),
                        {"t": table, "n": shape.messages},
                    )
        if engine.dialect.name == "postgresql":
            async with engine.connect() as db:
                autocommit = await db.execution_options(isolation_level="AUTOCOMMIT")
                await autocommit.execute(text("VACUUM ANALYZE"))
        else:
            async with engine.begin() as db:
                await db.execute(text("ANALYZE"))
    finally:
        await engine.dispose()


# --- timing through the real applications --------------------------------------------


def _hub(core: Core) -> Hub:
    contracts = with_test_keys(core.contracts)
    return Hub(
        Verifier(contracts, core.validator, VT),
        vector_key(VT),
        WorkingDayCalendar.for_region(core.region),
    )


async def _signed_in(client: Client) -> None:
    page = await client.get("/dashboard/sign-in")
    found = CSRF.search(await page.text())
    assert found is not None, "no CSRF token on the sign-in page"
    answer = await client.post(
        "/dashboard/sign-in",
        data={"csrf": found.group(1), "username": "coord", "password": PASSWORDS["coord"]},
        allow_redirects=False,
    )
    assert answer.status == 303, f"sign-in failed: {answer.status}"


async def _median_ms(
    call: Callable[[], Awaitable[int]], requests: int, warm_up: int = 3
) -> tuple[float, int]:
    """The median duration of `requests` calls after a warm-up; fewer when one takes seconds."""
    started = time.perf_counter()
    items = 0
    for _ in range(warm_up):
        items = await call()
    if (time.perf_counter() - started) / warm_up > 1.0:
        requests = min(requests, 5)
    durations = []
    for _ in range(requests):
        started = time.perf_counter()
        await call()
        durations.append(time.perf_counter() - started)
    return statistics.median(durations) * 1000, items


async def measure(
    dsn: str, core: Core, now: datetime, requests: int, workdir: Path
) -> tuple[float, float, float, float, int]:
    store: SqlStore = await open_store(dsn)
    hub = _hub(core)
    settings = replace(staff_settings(workdir), secure_cookies=False)
    tokens = ApiTokens.from_mapping({"bench": hash_token(TOKEN)})
    app = web.Application()
    app.add_subapp(
        "/dashboard",
        create_dashboard_app(
            store=store, hub=hub, region=core.region, clock=lambda: now, settings=settings
        ),
    )
    app.add_subapp(
        API_PREFIX,
        create_api_app(store=store, hub=hub, region=core.region, tokens=tokens, clock=lambda: now),
    )
    client: Client = TestClient(TestServer(app))
    await client.start_server()
    first_gemeente = sorted(m.code for m in core.region)[0]
    auth = {"Authorization": f"Bearer {TOKEN}"}

    def page(query: str) -> Callable[[], Awaitable[int]]:
        async def call() -> int:
            response = await client.get(f"/dashboard/{query}")
            body = await response.text()
            assert response.status == 200, response.status
            return body.count("data-overdracht=")

        return call

    async def api() -> int:
        response = await client.get(f"{API_PREFIX}/overdue", headers=auth)
        assert response.status == 200, response.status
        body = await response.json()
        return len(body["handovers"])

    try:
        await _signed_in(client)
        start, _ = await _median_ms(page(""), requests)
        filtered, _ = await _median_ms(page(f"?gemeente={first_gemeente}&stand=overdue"), requests)
        by_state, _ = await _median_ms(page("?state=deferred"), requests)
        api_ms, items = await _median_ms(api, requests)
    finally:
        await client.close()
        await store.close()
    return start, filtered, by_state, api_ms, items


# --- the backends -------------------------------------------------------------------


async def _pg_admin(admin: str, *statements: str) -> None:
    connection = await asyncpg.connect(admin, timeout=5)
    try:
        for statement in statements:
            await connection.execute(statement)
    finally:
        await connection.close()


async def _pg_database(admin: str, name: str) -> str:
    await _pg_admin(
        admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', f'CREATE DATABASE "{name}"'
    )
    url = make_url(admin).set(drivername="postgresql+asyncpg", database=name)
    return url.render_as_string(hide_password=False)


async def run_one(
    backend: str, size: int, args: argparse.Namespace, core: Core, workdir: Path
) -> Result:
    if backend == "sqlite":
        path = workdir / f"bench-{size}.db"
        path.unlink(missing_ok=True)
        dsn = f"sqlite+aiosqlite:///{path}"
    elif backend == "postgresql":
        dsn = await _pg_database(args.pg_dsn, _pg_name(size))
    else:
        raise SystemExit(f"unknown backend {backend!r}: sqlite or postgresql")
    await migrate(dsn)
    now = datetime.now(UTC).replace(microsecond=0)
    shape = Shape(size)
    print(f"{backend:<10} {size:>9}: filling ...", end="", flush=True)
    started = time.perf_counter()
    await fill(dsn, shape, core, now)
    fill_seconds = time.perf_counter() - started
    print(f" {fill_seconds:.0f} s; timing ...", flush=True)
    try:
        start, filtered, by_state, api_ms, items = await measure(
            dsn, core, now, args.requests, workdir
        )
    finally:
        if backend == "postgresql":
            await _pg_admin(args.pg_dsn, f'DROP DATABASE IF EXISTS "{_pg_name(size)}" WITH (FORCE)')
        else:
            Path(dsn.removeprefix("sqlite+aiosqlite:///")).unlink(missing_ok=True)
    return Result(backend, size, fill_seconds, shape.open, start, filtered, by_state, api_ms, items)


def _pg_name(size: int) -> str:
    return f"vtgw_bench_{size}_{os.getpid()}"


def report(results: Sequence[Result]) -> None:
    print()
    print(
        f"{'backend':<10} {'messages':>9} {'open':>7} {'fill s':>7} {'start ms':>9} "
        f"{'filtered ms':>11} {'state ms':>9} {'API ms':>9} {'API items':>9}"
    )
    for r in results:
        print(
            f"{r.backend:<10} {r.size:>9} {r.open_handovers:>7} {r.fill_seconds:>7.0f} "
            f"{r.start_ms:>9.1f} {r.filtered_ms:>11.1f} {r.state_ms:>9.1f} {r.api_ms:>9.1f} "
            f"{r.api_items:>9}"
        )
    for backend in sorted({r.backend for r in results}):
        mine = sorted((r for r in results if r.backend == backend), key=lambda r: r.size)
        if len(mine) >= 2:
            small, big = mine[0], mine[-1]
            print(
                f"{backend:<10} ratio {big.size}/{small.size}: start "
                f"{big.start_ms / small.start_ms:.2f}x, filtered "
                f"{big.filtered_ms / small.filtered_ms:.2f}x, state "
                f"{big.state_ms / small.state_ms:.2f}x, API {big.api_ms / small.api_ms:.2f}x"
            )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,1000000")
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--pg-dsn", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--requests", type=int, default=30)
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    sizes = [int(s) for s in args.sizes.split(",")]
    core = load_core(Paths.defaults())
    results = []
    with tempfile.TemporaryDirectory(prefix="vtgw-bench-") as directory:
        for backend in args.backends.split(","):
            for size in sizes:
                results.append(await run_one(backend, size, args, core, Path(directory)))
    report(results)


if __name__ == "__main__":
    asyncio.run(main())
