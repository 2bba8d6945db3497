"""How urgent an open handover is: the colour of its row on the start page.

A handover's confirmation deadline is the rule `deadlines.CONFIRMATION`:
17:00 local on its advised term (or the latest deferral's new date), or on
the next working day; it warns one working day before. `urgency` says where
one handover stands. For a page of 100,000 handovers the store cannot ask
the calendar per row, so `Cutoffs` turns the rule around: because a later
date never falls due earlier, the dates that are overdue at a moment are
exactly those up to one day, and those that warn up to another.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from gateway.domain.calendar import WorkingDayCalendar
from gateway.domain.deadlines import CONFIRMATION, Deadline, DeadlineState, deadline_state

SEARCH_DAYS = 31  # a deadline's due and warn moments lie within days of its date


def confirmation_deadline(subject: str, day: date, calendar: WorkingDayCalendar) -> Deadline:
    """The confirmation deadline of a handover whose last day is `day`."""
    return CONFIRMATION.deadline(subject, day, calendar)


def urgency(day: date, calendar: WorkingDayCalendar, now: datetime) -> DeadlineState:
    """ok, warning (due within a working day) or overdue, for a handover due on `day`."""
    return deadline_state(confirmation_deadline("", day, calendar), now)


@dataclass(frozen=True, slots=True)
class Cutoffs:
    """At a moment: the handovers due on or before `overdue_through` are overdue, those due
    after it and on or before `warning_through` warn, the later ones are fine."""

    overdue_through: date
    warning_through: date

    @classmethod
    def at(cls, now: datetime, calendar: WorkingDayCalendar) -> Cutoffs:
        return cls(
            overdue_through=_last_day(now, calendar, DeadlineState.OVERDUE),
            warning_through=_last_day(now, calendar, DeadlineState.WARNING),
        )

    def state_of(self, day: date) -> DeadlineState:
        if day <= self.overdue_through:
            return DeadlineState.OVERDUE
        if day <= self.warning_through:
            return DeadlineState.WARNING
        return DeadlineState.OK


_AT_LEAST = {
    DeadlineState.OVERDUE: {DeadlineState.OVERDUE},
    DeadlineState.WARNING: {DeadlineState.OVERDUE, DeadlineState.WARNING},
}


def _last_day(now: datetime, calendar: WorkingDayCalendar, state: DeadlineState) -> date:
    """The latest day whose deadline is at least `state` at `now` (monotone in the day)."""
    wanted = _AT_LEAST[state]
    today = calendar.local_day(now)
    day = today + timedelta(days=SEARCH_DAYS)
    while urgency(day, calendar, now) not in wanted:
        day -= timedelta(days=1)
        if day < today - timedelta(days=SEARCH_DAYS):
            break
    return day
