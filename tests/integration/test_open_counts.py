"""The start page's counts come from `open_handover_counts`, kept by triggers (migration 0010).

A seeded random walk saves handovers through the store's own `save` as the
service does (new notices, receipts, deferrals that move the deadline,
confirmations, withdrawals) and now and then deletes one by SQL, as a purge
or an operator could. After every step the counts table must equal a GROUP BY
over the open overdrachten, and `open_counts` must equal a count of the rows
themselves, for every filter the start page offers, on SQLite and on
PostgreSQL.
"""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from itertools import product

import pytest
from sqlalchemy import delete, select

from adapters.dashboard.queries import OpenCounts, OpenFilter, open_counts
from adapters.dashboard.urgency import Cutoffs
from adapters.store import SqlStore
from adapters.store.tables import COUNTED_ANY, open_handover_counts, overdrachten
from gateway.domain.deadlines import DeadlineState
from gateway.domain.handover import (
    Moment,
    Overdracht,
    on_confirmation,
    on_deferral,
    on_notice,
    on_receipt,
    on_withdrawal,
)

START = datetime(2026, 11, 2, 9, tzinfo=UTC)
GEMEENTEN = ("0202", "0281", "1740")  # synthetic picks from the region's codes
RECIPIENTS = ("jbg", "lt-arnhem", "moviera")
CUTOFFS = Cutoffs(overdue_through=date(2026, 11, 20), warning_through=date(2026, 11, 24))
KEY = ("gemeente", "recipient", "moment", "state", "open_deadline")


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest) -> SqlStore:
    fixture = "sqlite_store" if request.param == "sqlite" else "postgres_store"
    return request.getfixturevalue(fixture)  # type: ignore[no-any-return]


def next_step(overdracht: Overdracht, rng: random.Random, at: datetime, n: int) -> Overdracht:
    """One thing that can happen to an open handover, as its recipient or VT does it."""
    sender, message_id = overdracht.recipient, f"m{n}"
    choice = rng.randrange(5)
    if choice == 0:
        return on_receipt(overdracht, sender=sender, message_id=message_id, at=at)
    if choice == 1:
        new_date = overdracht.deadline + timedelta(days=rng.randint(1, 10))
        return on_deferral(
            overdracht, sender=sender, message_id=message_id, at=at, new_date=new_date, reason="r"
        )
    if choice == 2:
        return on_confirmation(overdracht, sender=sender, message_id=message_id, at=at)
    if choice == 3:
        return on_withdrawal(overdracht, message_id=message_id, at=at)
    return overdracht  # saved again unchanged: a history-only save in effect


async def table_matches_rows(store: SqlStore) -> None:
    """The counts table is the cube of the open rows: per subset of the four filter
    values (the others `*`) and deadline day, how many open handovers."""
    dimensions = ("gemeente", "recipient", "moment", "state")
    async with store.connection() as db:
        kept = {
            tuple(row[:-1]): row[-1]
            for row in await db.execute(
                select(*(open_handover_counts.c[c] for c in KEY), open_handover_counts.c.n)
            )
        }
        open_rows = (
            await db.execute(
                select(*(overdrachten.c[c] for c in KEY)).where(
                    overdrachten.c.open_deadline.is_not(None)
                )
            )
        ).all()
    cube: Counter[tuple[object, ...]] = Counter()
    for row in open_rows:
        values = dict(zip(KEY, row, strict=True))
        for kept_ones in product((True, False), repeat=len(dimensions)):
            cell = [
                values[d] if keep else COUNTED_ANY
                for d, keep in zip(dimensions, kept_ones, strict=True)
            ]
            cube[(*cell, values["open_deadline"])] += 1
    assert kept == dict(cube)


def expected(rows: dict[str, Overdracht], filters: OpenFilter) -> OpenCounts:
    def matches(o: Overdracht) -> bool:
        return (
            not o.state.final
            and filters.gemeente in (None, o.gemeente)
            and filters.recipient in (None, o.recipient)
            and filters.moment in (None, o.moment.value)
            and filters.state in (None, o.state.value)
        )

    tally: Counter[str] = Counter()
    for o in filter(matches, rows.values()):
        stand = CUTOFFS.state_of(o.deadline)
        if filters.urgency in (None, stand):
            tally[stand] += 1
            tally["open"] += 1
    return OpenCounts(tally["open"], tally[DeadlineState.WARNING], tally[DeadlineState.OVERDUE])


FILTERS = (
    OpenFilter(),
    OpenFilter(gemeente="0281"),
    OpenFilter(recipient="jbg", moment=Moment.B.value),
    OpenFilter(state="deferred"),
    OpenFilter(gemeente="1740", state="delivered"),
    OpenFilter(recipient="moviera", moment=Moment.C.value, state="notice_sent", urgency="overdue"),
    OpenFilter(gemeente="0202", urgency="warning"),
    OpenFilter(urgency="ok"),
    OpenFilter(gemeente=COUNTED_ANY),  # the cube's own word: no handover is there
)


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_the_counts_follow_every_save_and_delete(store: SqlStore, seed: int) -> None:
    rng = random.Random(seed)
    rows: dict[str, Overdracht] = {}
    for n in range(120):
        at = START + timedelta(minutes=n)
        open_ones = [o for o in rows.values() if not o.state.final]
        roll = rng.random()
        if roll < 0.4 or not open_ones:
            saved = on_notice(
                id=f"o{n}",
                case_ref=f"VT-2026-{n:04d}",
                gemeente=rng.choice(GEMEENTEN),
                moment=rng.choice(list(Moment)),
                recipient=rng.choice(RECIPIENTS),
                advised_term=date(2026, 11, 14) + timedelta(days=rng.randint(0, 16)),
                at=at,
            )
        elif roll < 0.93:
            saved = next_step(rng.choice(open_ones), rng, at, n)
        else:
            gone = rng.choice(list(rows.values()))
            async with store.connection() as db:
                await db.execute(delete(overdrachten).where(overdrachten.c.id == gone.id))
            del rows[gone.id]
            await table_matches_rows(store)
            continue
        async with store.transaction() as uow:
            await uow.handovers.save(saved)
        rows[saved.id] = saved
        await table_matches_rows(store)
    assert any(o.state.final for o in rows.values())
    assert any(o.deferred_to for o in rows.values() if not o.state.final)
    async with store.connection() as db:
        for filters in FILTERS:
            assert await open_counts(db, filters, CUTOFFS) == expected(rows, filters), filters


async def test_a_rolled_back_save_leaves_the_counts_as_they_were(store: SqlStore) -> None:
    first = on_notice(
        id="o1",
        case_ref="VT-2026-0001",
        gemeente="0202",
        moment=Moment.A,
        recipient="jbg",
        advised_term=date(2026, 11, 20),
        at=START,
    )
    async with store.transaction() as uow:
        await uow.handovers.save(first)

    class AbandonedError(Exception):
        pass

    async def withdraw_then_abandon() -> None:
        async with store.transaction() as uow:
            await uow.handovers.save(on_withdrawal(first, message_id="w1", at=START))
            raise AbandonedError

    with pytest.raises(AbandonedError):
        await withdraw_then_abandon()
    async with store.connection() as db:
        assert await open_counts(db, OpenFilter(), CUTOFFS) == OpenCounts(1, 0, 1)
