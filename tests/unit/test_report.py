"""The quarterly report per municipality (§7.2), for what the gateway can know."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest

from gateway.bootstrap import Core
from gateway.domain.calendar import WorkingDayCalendar
from gateway.domain.escalation import EscalationReason, Outcome, propose, record_outcome
from gateway.domain.handover import (
    Moment,
    Overdracht,
    on_confirmation,
    on_deferral,
    on_notice,
    on_undeliverable,
    on_withdrawal,
)
from gateway.domain.report import COLUMNS, Quarter, quarterly_report

T0 = datetime(2026, 10, 5, 9, tzinfo=UTC)  # a Monday in 2026Q4
TERM = date(2026, 10, 9)  # Friday: due 17:00 local (15:00 UTC)


def notice(n: int, moment: Moment, gemeente: str = "GM0281") -> Overdracht:
    return on_notice(
        id=f"n{n}",
        case_ref=f"VT-2026-00000{n}",
        gemeente=gemeente,
        moment=moment,
        recipient="lt-tiel",
        advised_term=TERM,
        at=T0,
    )


@pytest.fixture
def calendar(core: Core) -> WorkingDayCalendar:
    return WorkingDayCalendar.for_region(core.region)


def test_a_quarter_runs_from_local_midnight_to_local_midnight() -> None:
    """2026Q4 is 1 October 00:00 to 1 January 00:00, Amsterdam time; Q4 ends in the next year."""
    start, end = Quarter.parse("2026Q4").bounds("Europe/Amsterdam")
    assert (start.astimezone(UTC), end.astimezone(UTC)) == (
        datetime(2026, 9, 30, 22, tzinfo=UTC),
        datetime(2026, 12, 31, 23, tzinfo=UTC),
    )
    with pytest.raises(ValueError, match="2026Q3"):
        Quarter.parse("2026-Q5")


def test_the_report_counts_handovers_per_moment_and_how_they_ended(
    core: Core, calendar: WorkingDayCalendar
) -> None:
    """Per gemeente: moments A/B/C, confirmed in the advised term or late, deferred, open, ended."""
    in_time = on_confirmation(
        notice(1, Moment.A),
        sender="lt-tiel",
        message_id="c1",
        at=datetime(2026, 10, 9, 14, 59, tzinfo=UTC),
    )
    late = on_confirmation(
        notice(2, Moment.B),
        sender="lt-tiel",
        message_id="c2",
        at=datetime(2026, 10, 9, 15, 1, tzinfo=UTC),
    )
    deferred = on_deferral(
        notice(3, Moment.C),
        sender="lt-tiel",
        message_id="d3",
        at=T0 + timedelta(days=1),
        new_date=date(2026, 10, 20),
        reason="wachtlijst",
    )
    withdrawn = on_withdrawal(notice(4, Moment.C), message_id="w4", at=T0 + timedelta(days=1))
    lost = on_undeliverable(notice(5, Moment.A), message_id="n5", at=T0 + timedelta(days=2))
    escalation = record_outcome(
        propose("VT-2026-000003", "lt-tiel", EscalationReason.CONFIRMATION_OVERDUE, T0),
        Outcome.NOT_SOLVED,
        by="teamleider",
        at=T0 + timedelta(days=3),
    )
    rows = quarterly_report(
        core.region,
        [in_time, late, deferred, withdrawn, lost],
        [escalation],
        {"VT-2026-000003": "GM0281"},
        calendar,
    )
    assert len(rows) == len(core.region)
    tiel = next(row for row in rows if row["gemeente"] == "GM0281")
    assert {k: v for k, v in tiel.items() if v} == {
        "gemeente": "GM0281",
        "naam": "Tiel",
        "overdrachten_a": 2,
        "overdrachten_b": 1,
        "overdrachten_c": 2,
        "bevestigd_binnen_termijn": 1,
        "bevestigd_te_laat": 1,
        "uitgesteld": 1,
        "nog_open": 1,
        "ingetrokken": 1,
        "onbestelbaar": 1,
        "escalaties_route_b": 1,
    }
    nijmegen = next(row for row in rows if row["gemeente"] == "GM0268")
    assert all(nijmegen[c] == 0 for c in COLUMNS[2:])


def test_a_confirmation_by_the_new_date_of_a_reasoned_deferral_is_within_the_term(
    core: Core, calendar: WorkingDayCalendar
) -> None:
    """§8.5 C: a reasoned deferral sets the term anew; confirmed by that date is in time,
    as the deadline's alerts judge it too. After it: late."""
    deferred = on_deferral(
        notice(1, Moment.A),
        sender="lt-tiel",
        message_id="d1",
        at=T0 + timedelta(days=1),
        new_date=date(2026, 10, 20),
        reason="wachtlijst",
    )
    by_new_date = on_confirmation(
        deferred, sender="lt-tiel", message_id="c1", at=datetime(2026, 10, 20, 14, tzinfo=UTC)
    )
    after_it = on_confirmation(
        replace(deferred, id="o2"),
        sender="lt-tiel",
        message_id="c2",
        at=datetime(2026, 10, 21, 14, tzinfo=UTC),
    )
    rows = quarterly_report(core.region, [by_new_date, after_it], [], {}, calendar)
    tiel = next(row for row in rows if row["gemeente"] == "GM0281")
    assert (tiel["bevestigd_binnen_termijn"], tiel["bevestigd_te_laat"], tiel["uitgesteld"]) == (
        1,
        1,
        2,
    )


def test_a_quarter_outside_the_years_2000_to_2999_is_refused() -> None:
    """Year 0 has no calendar date and 9999Q4 ends in year 10000: refused, not a crash."""
    for text in ("0000Q1", "9999Q4", "1999Q4"):
        with pytest.raises(ValueError, match="from 2000 to 2999"):
            Quarter.parse(text)
    assert str(Quarter.parse("2026Q3")) == "2026Q3"
