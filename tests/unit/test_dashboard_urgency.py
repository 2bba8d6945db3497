"""The colour of an open handover: overdue, warning (due within a working day) or ok."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from adapters.dashboard.urgency import Cutoffs, urgency
from gateway.bootstrap import Core
from gateway.domain.calendar import WorkingDayCalendar
from gateway.domain.deadlines import DeadlineState


@pytest.fixture(scope="module")
def calendar(core: Core) -> WorkingDayCalendar:
    return WorkingDayCalendar.for_region(core.region)


def test_a_handover_is_overdue_from_17h_on_its_last_day(calendar: WorkingDayCalendar) -> None:
    """Last day Monday 30 Nov 2026: fine before, warning from Friday 17:00, late Monday 17:00."""
    day = date(2026, 11, 30)  # a Monday
    assert urgency(day, calendar, datetime(2026, 11, 26, 12, 0, tzinfo=UTC)) is DeadlineState.OK
    # One working day before Monday 17:00 is Friday 17:00 (CET = UTC+1).
    assert urgency(day, calendar, datetime(2026, 11, 27, 15, 59, tzinfo=UTC)) is DeadlineState.OK
    assert (
        urgency(day, calendar, datetime(2026, 11, 27, 16, 0, tzinfo=UTC)) is DeadlineState.WARNING
    )
    assert (
        urgency(day, calendar, datetime(2026, 11, 30, 15, 59, tzinfo=UTC)) is DeadlineState.WARNING
    )
    assert (
        urgency(day, calendar, datetime(2026, 11, 30, 16, 0, tzinfo=UTC)) is DeadlineState.OVERDUE
    )


def test_a_last_day_in_the_weekend_runs_to_monday(calendar: WorkingDayCalendar) -> None:
    """A Saturday deadline is due Monday 17:00: on Saturday itself it is not yet late."""
    saturday = date(2026, 11, 28)
    assert (
        urgency(saturday, calendar, datetime(2026, 11, 28, 18, 0, tzinfo=UTC))
        is DeadlineState.WARNING
    )
    assert (
        urgency(saturday, calendar, datetime(2026, 11, 30, 16, 0, tzinfo=UTC))
        is DeadlineState.OVERDUE
    )


@pytest.mark.parametrize(
    "now",
    [
        datetime(2026, 11, 27, 15, 0, tzinfo=UTC),
        datetime(2026, 11, 27, 16, 30, tzinfo=UTC),
        datetime(2026, 11, 28, 10, 0, tzinfo=UTC),
        datetime(2026, 11, 30, 16, 30, tzinfo=UTC),
        datetime(2026, 12, 24, 17, 0, tzinfo=UTC),  # around Christmas
        datetime(2026, 12, 31, 23, 30, tzinfo=UTC),
    ],
)
def test_the_cutoffs_colour_every_day_as_the_rule_does(
    calendar: WorkingDayCalendar, now: datetime
) -> None:
    """The store's cutoff dates give each last day the same colour as the rule itself."""
    cutoffs = Cutoffs.at(now, calendar)
    start = now.date() - timedelta(days=20)
    for offset in range(40):
        day = start + timedelta(days=offset)
        assert cutoffs.state_of(day) is urgency(day, calendar, now), day
