"""The working-day calendar: Dutch statutory holidays, extra closing days, office hours."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import holidays
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.contract_files import load_region
from gateway.domain.calendar import TERMIJNENWET_HOLIDAYS, WorkingDayCalendar, statutory_holidays
from gateway.domain.errors import ConfigurationError
from gateway.domain.region import Region, region_from_mapping
from gateway.resources import data_dir

AMSTERDAM = ZoneInfo("Europe/Amsterdam")
CALENDAR = WorkingDayCalendar()
"""The agreed calendar without extra closing days, for the property tests."""

TERMIJNENWET_NAMES = {
    "Nieuwjaarsdag",
    "Goede vrijdag",
    "Tweede paasdag",
    "Koningsdag",
    "Bevrijdingsdag",
    "Hemelvaartsdag",
    "Tweede pinksterdag",
    "Eerste kerstdag",
    "Tweede kerstdag",
}


def local(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=AMSTERDAM)


@pytest.fixture(scope="module")
def region() -> Region:
    return load_region(data_dir("config") / "region.toml")


@pytest.fixture(scope="module")
def calendar(region: Region) -> WorkingDayCalendar:
    return WorkingDayCalendar.for_region(region)


# --- which days are working days -------------------------------------------------


@pytest.mark.parametrize("year", range(2025, 2031))
def test_the_holidays_are_exactly_the_nine_days_of_the_algemene_termijnenwet(year: int) -> None:
    """Algemene termijnenwet art. 3: nine days, one each, whatever else the package returns."""
    days = statutory_holidays(year)
    assert sorted(days.values()) == sorted(TERMIJNENWET_NAMES)
    assert all(names for names in TERMIJNENWET_HOLIDAYS.values())


@pytest.mark.parametrize("year", range(2025, 2031))
def test_easter_sunday_and_whit_sunday_are_dropped_from_the_package_answer(year: int) -> None:
    """The package also gives Eerste paas- and pinksterdag: Sundays, not termijnenwet days."""
    found = holidays.country_holidays(
        "NL", years=year, categories=("public", "optional"), language="nl"
    )
    sundays = {
        day for day, name in found.items() if name in {"Eerste paasdag", "Eerste pinksterdag"}
    }
    assert len(sundays) == 2
    for day in sundays:
        assert day.weekday() == 6
        assert CALENDAR.holiday_name(day) is None
        assert not CALENDAR.is_working_day(day)


def test_kings_day_is_not_a_working_day(calendar: WorkingDayCalendar) -> None:
    """Algemene termijnenwet art. 3: King's Day, 27 April 2026, a Monday."""
    assert calendar.holiday_name(date(2026, 4, 27)) == "Koningsdag"
    assert not calendar.is_working_day(date(2026, 4, 27))
    assert calendar.next_working_day(date(2026, 4, 27)) == date(2026, 4, 28)


def test_kings_day_is_26_april_when_27_april_is_a_sunday(calendar: WorkingDayCalendar) -> None:
    """Wet vaststelling Koningsdag: on a Sunday it moves to Saturday 26 April (2025)."""
    assert date(2025, 4, 27).weekday() == 6
    assert calendar.holiday_name(date(2025, 4, 26)) == "Koningsdag"
    assert calendar.holiday_name(date(2025, 4, 27)) is None
    assert calendar.is_working_day(date(2025, 4, 28))


@pytest.mark.parametrize("year", [2025, 2026, 2027, 2028])
def test_5_may_is_a_holiday_every_year_not_only_in_lustrum_years(
    calendar: WorkingDayCalendar, year: int
) -> None:
    """Algemene termijnenwet art. 3 names "de vijfde mei" for every year, not every fifth."""
    assert calendar.holiday_name(date(year, 5, 5)) == "Bevrijdingsdag"
    assert not calendar.is_working_day(date(year, 5, 5))


def test_5_may_2026_moves_a_deadline_to_the_next_day(calendar: WorkingDayCalendar) -> None:
    """5 May 2026 is a Tuesday in a non-lustrum year: Wednesday is the next working day."""
    assert calendar.next_working_day(date(2026, 5, 5)) == date(2026, 5, 6)


@pytest.mark.parametrize(
    ("day", "name"),
    [
        (date(2026, 4, 3), "Goede vrijdag"),
        (date(2026, 4, 6), "Tweede paasdag"),
        (date(2026, 5, 14), "Hemelvaartsdag"),
        (date(2026, 5, 25), "Tweede pinksterdag"),
        (date(2026, 1, 1), "Nieuwjaarsdag"),
        (date(2026, 12, 25), "Eerste kerstdag"),
        (date(2028, 12, 26), "Tweede kerstdag"),
    ],
)
def test_the_christian_and_new_year_holidays_are_not_working_days(
    calendar: WorkingDayCalendar, day: date, name: str
) -> None:
    """Algemene termijnenwet art. 3 (Good Friday by designation): none of these is a working day."""
    assert day.weekday() < 5
    assert calendar.holiday_name(day) == name
    assert not calendar.is_working_day(day)


def test_ascension_on_5_may_carries_both_names() -> None:
    """In 2016 Ascension fell on 5 May: one day, both holidays, still not a working day."""
    assert CALENDAR.holiday_name(date(2016, 5, 5)) == "Bevrijdingsdag; Hemelvaartsdag"
    assert not CALENDAR.is_working_day(date(2016, 5, 5))


def test_weekdays_without_a_holiday_are_working_days(calendar: WorkingDayCalendar) -> None:
    """Working days are Monday to Friday: 7 to 11 December 2026 all are, the weekend not."""
    week = [date(2026, 12, 7) + timedelta(days=offset) for offset in range(7)]
    assert [calendar.is_working_day(day) for day in week] == [True] * 5 + [False] * 2


def test_an_extra_closing_day_from_config_is_not_a_working_day(region: Region) -> None:
    """config/region.toml calendar.extra_closing_days: a day VT and the teams are closed."""
    data: dict[str, Any] = {
        "municipalities": [
            {
                "code": "GM0281",
                "name": "Tiel",
                "slug": "tiel",
                "subregio": "rivierenland",
                "police": "politie-on",
            }
        ],
        "calendar": {"extra_closing_days": [date(2026, 12, 24), "2026-12-31"]},
    }
    calendar = WorkingDayCalendar.for_region(region_from_mapping(data))
    assert not calendar.is_working_day(date(2026, 12, 24))
    assert not calendar.is_working_day(date(2026, 12, 31))
    assert calendar.next_working_day(date(2026, 12, 24)) == date(2026, 12, 28)
    assert WorkingDayCalendar.for_region(region).is_working_day(date(2026, 12, 24))


def test_an_extra_closing_day_does_not_lengthen_a_statutory_term(region: Region) -> None:
    """Algemene termijnenwet art. 1 counts only weekends and its holidays, not a closing day."""
    closed = WorkingDayCalendar.for_region(
        replace(region, extra_closing_days=(date(2026, 12, 24),))
    )
    assert closed.statutory_end(date(2026, 10, 15), 70) == date(2026, 12, 24)


def test_the_region_calendar_reads_europe_amsterdam_from_config(
    calendar: WorkingDayCalendar,
) -> None:
    """config/region.toml: the calendar's time zone is Europe/Amsterdam."""
    assert calendar.time_zone == AMSTERDAM
    assert calendar.extra_closing_days == frozenset()


def test_an_unknown_time_zone_refuses_to_start(region: Region) -> None:
    """A region with a time zone that does not exist is a configuration error."""
    with pytest.raises(ConfigurationError, match="time zone"):
        WorkingDayCalendar.for_region(replace(region, time_zone="Europe/Nijmegen"))


def test_a_package_without_5_may_in_a_year_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """DOMAIN.md Time: "public" alone has 5 May only every fifth year: such data is refused."""
    real = holidays.country_holidays

    def public_only(*args: Any, **kwargs: Any) -> Any:
        return real(*args, **{**kwargs, "categories": ("public",)})

    monkeypatch.setattr(holidays, "country_holidays", public_only)
    assert statutory_holidays(2025)[date(2025, 5, 5)] == "Bevrijdingsdag"
    with pytest.raises(ConfigurationError, match="bevrijdingsdag"):
        statutory_holidays(2026)


def test_holidays_are_computed_once_per_year(monkeypatch: pytest.MonkeyPatch) -> None:
    """The calendar asks the package lazily, once per year it needs."""
    asked: list[object] = []
    real = holidays.country_holidays

    def counting(*args: Any, **kwargs: Any) -> Any:
        asked.append(kwargs["years"])
        return real(*args, **kwargs)

    monkeypatch.setattr(holidays, "country_holidays", counting)
    calendar = WorkingDayCalendar()
    assert asked == []
    for day in range(1, 32):
        calendar.is_working_day(date(2027, 1, day))
    assert asked == [2027]


# --- counting working days ---------------------------------------------------------


def test_five_working_days_from_a_thursday_report_skip_the_weekend(
    calendar: WorkingDayCalendar,
) -> None:
    """§5.1: 5 working days from Thursday 5 March 2026 is Thursday 12 March."""
    assert calendar.add_working_days(date(2026, 3, 5), 5) == date(2026, 3, 12)


def test_five_working_days_skip_5_may_and_the_weekend(calendar: WorkingDayCalendar) -> None:
    """§5.1: from Thursday 30 April 2026, Friday, Monday, Wednesday, Thursday, Friday 8 May."""
    assert calendar.add_working_days(date(2026, 4, 30), 5) == date(2026, 5, 8)


def test_working_days_from_a_saturday_start_on_monday(calendar: WorkingDayCalendar) -> None:
    """A report on a Saturday: Monday is the first working day after it."""
    assert calendar.add_working_days(date(2026, 3, 7), 1) == date(2026, 3, 9)
    assert calendar.add_working_days(date(2026, 3, 7), 0) == date(2026, 3, 9)


def test_negative_working_days_count_back(calendar: WorkingDayCalendar) -> None:
    """Working days back skip weekends and holidays: 28 April 2026 less 1 is 24 April."""
    assert calendar.add_working_days(date(2026, 4, 28), -1) == date(2026, 4, 24)


def test_working_days_keep_the_local_time_across_the_dst_switch(
    calendar: WorkingDayCalendar,
) -> None:
    """Friday 27 March 2026 10:00 CET plus one working day is Monday 10:00 CEST (8:00 UTC)."""
    friday = local(2026, 3, 27, 10)
    monday = calendar.add_working_days(friday, 1)
    assert monday == local(2026, 3, 30, 10)
    assert monday.astimezone(UTC).hour == 8
    assert friday.astimezone(UTC).hour == 9


def test_a_moment_counts_from_its_local_day(calendar: WorkingDayCalendar) -> None:
    """Thursday 23:30 UTC is Friday 00:30 in Amsterdam: the count starts from Friday."""
    moment = datetime(2026, 3, 5, 23, 30, tzinfo=UTC)
    assert calendar.local_day(moment) == date(2026, 3, 6)
    assert calendar.add_working_days(moment, 1) == local(2026, 3, 9, 0, 30)


def test_a_naive_moment_is_refused(calendar: WorkingDayCalendar) -> None:
    """All moments are timezone-aware: a naive one could be any zone."""
    with pytest.raises(ValueError, match="timezone-aware"):
        calendar.within_office_hours(datetime(2026, 3, 5, 10, 0))
    with pytest.raises(ValueError, match="timezone-aware"):
        calendar.add_working_days(datetime(2026, 3, 5, 10, 0), 1)


@given(
    start=st.dates(min_value=date(2015, 1, 1), max_value=date(2060, 12, 31)),
    first=st.integers(min_value=-30, max_value=30),
    extra=st.integers(min_value=0, max_value=30),
)
def test_adding_working_days_lands_on_a_working_day_and_is_monotonic(
    start: date, first: int, extra: int
) -> None:
    """Working days: the result is always a working day, and more days never give an earlier one."""
    earlier = CALENDAR.add_working_days(start, first)
    later = CALENDAR.add_working_days(start, first + extra)
    assert CALENDAR.is_working_day(earlier)
    assert CALENDAR.is_working_day(later)
    assert earlier <= later
    if first >= 1 and extra > 0:
        assert earlier < later


@given(
    start=st.dates(min_value=date(2015, 1, 1), max_value=date(2060, 12, 31)),
    count=st.integers(min_value=1, max_value=30),
)
def test_adding_working_days_passes_exactly_that_many(start: date, count: int) -> None:
    """The n-th working day after a start has exactly n working days after the start, up to it."""
    end = CALENDAR.add_working_days(start, count)
    between = [start + timedelta(days=offset) for offset in range(1, (end - start).days + 1)]
    assert sum(CALENDAR.is_working_day(day) for day in between) == count


# --- statutory terms ---------------------------------------------------------------


def test_seventy_days_ending_on_a_saturday_run_to_monday(calendar: WorkingDayCalendar) -> None:
    """§8 B, C, Algemene termijnenwet art. 1: 4 July 2026 + 70 days is Saturday: Monday 14 Sept."""
    assert date(2026, 9, 12).weekday() == 5
    assert calendar.statutory_end(date(2026, 7, 4), 70) == date(2026, 9, 14)


def test_a_term_ending_on_christmas_runs_to_the_next_working_day(
    calendar: WorkingDayCalendar,
) -> None:
    """Algemene termijnenwet art. 1: a term to Friday 25 December 2026 runs to Monday 28."""
    assert calendar.statutory_end(date(2026, 10, 16), 70) == date(2026, 12, 28)


def test_a_term_ending_on_kings_day_runs_to_the_next_day(calendar: WorkingDayCalendar) -> None:
    """Algemene termijnenwet art. 1: a term to Monday 27 April 2026 runs to Tuesday 28 April."""
    assert calendar.statutory_end(date(2026, 2, 16), 70) == date(2026, 4, 28)


def test_a_term_ending_on_5_may_runs_to_the_next_day(calendar: WorkingDayCalendar) -> None:
    """Algemene termijnenwet art. 1, 3: 5 May 2026 is no lustrum year and still extends the term."""
    assert calendar.statutory_end(date(2026, 2, 24), 70) == date(2026, 5, 6)


def test_a_term_ending_on_a_working_day_is_not_lengthened(calendar: WorkingDayCalendar) -> None:
    """§8 B, C: 70 calendar days, not working days: 2 March 2026 gives 11 May 2026."""
    assert calendar.statutory_end(date(2026, 3, 2), 70) == date(2026, 5, 11)


def test_a_short_term_holds_at_least_two_working_days(calendar: WorkingDayCalendar) -> None:
    """Algemene termijnenwet art. 2: 3 days from 24 December 2026 end on Tuesday 29 December."""
    assert calendar.statutory_end(date(2026, 12, 24), 3) == date(2026, 12, 29)


def test_a_negative_term_is_refused(calendar: WorkingDayCalendar) -> None:
    """A term has a length of zero days or more."""
    with pytest.raises(ValueError, match="negative"):
        calendar.statutory_end(date(2026, 1, 5), -1)


# --- office hours --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("moment", "open_"),
    [
        (local(2026, 3, 5, 8, 59), False),
        (local(2026, 3, 5, 9, 0), True),
        (local(2026, 3, 5, 16, 59), True),
        (local(2026, 3, 5, 17, 0), False),
        (local(2026, 3, 7, 10, 0), False),
        (local(2026, 4, 27, 10, 0), False),
        (local(2026, 7, 15, 10, 0), True),
    ],
)
def test_office_hours_are_9_to_17_on_working_days(
    calendar: WorkingDayCalendar, moment: datetime, open_: bool
) -> None:
    """§8.4: 9:00-17:00 on working days, holiday season (July) included, not on King's Day."""
    assert calendar.within_office_hours(moment) is open_


@pytest.mark.parametrize(
    ("utc", "open_"),
    [
        (datetime(2026, 3, 27, 7, 30, tzinfo=UTC), False),  # Friday 08:30 CET
        (datetime(2026, 3, 27, 15, 30, tzinfo=UTC), True),  # Friday 16:30 CET
        (datetime(2026, 3, 30, 7, 30, tzinfo=UTC), True),  # Monday 09:30 CEST
        (datetime(2026, 3, 30, 15, 30, tzinfo=UTC), False),  # Monday 17:30 CEST
        (datetime(2026, 10, 23, 14, 30, tzinfo=UTC), True),  # Friday 16:30 CEST
        (datetime(2026, 10, 23, 15, 30, tzinfo=UTC), False),  # Friday 17:30 CEST
        (datetime(2026, 10, 26, 7, 30, tzinfo=UTC), False),  # Monday 08:30 CET
        (datetime(2026, 10, 26, 15, 30, tzinfo=UTC), True),  # Monday 16:30 CET
    ],
)
def test_office_hours_follow_local_time_across_the_dst_switch(
    calendar: WorkingDayCalendar, utc: datetime, open_: bool
) -> None:
    """§8.4: 9-17 is Amsterdam wall-clock time: in UTC it shifts an hour in March and October."""
    assert calendar.within_office_hours(utc) is open_


def test_the_next_office_moment_within_office_hours_is_now(calendar: WorkingDayCalendar) -> None:
    """§8.4: during office hours the team is reachable at once."""
    moment = datetime(2026, 3, 5, 12, 15, tzinfo=UTC)
    assert calendar.next_office_moment(moment) == moment


def test_the_next_office_moment_before_opening_is_nine_that_day(
    calendar: WorkingDayCalendar,
) -> None:
    """§8.4: at 7:00 on a working day, the office opens at 9:00 the same day."""
    assert calendar.next_office_moment(local(2026, 3, 5, 7)) == local(2026, 3, 5, 9)


def test_the_next_office_moment_after_friday_closing_is_monday_nine(
    calendar: WorkingDayCalendar,
) -> None:
    """§8.4: at Friday 17:00 the office is closed until Monday 9:00."""
    assert calendar.next_office_moment(local(2026, 3, 6, 17)) == local(2026, 3, 9, 9)


def test_the_next_office_moment_over_the_dst_weekend_is_nine_local(
    calendar: WorkingDayCalendar,
) -> None:
    """§8.4: after the switch to summer time Monday 9:00 CEST is 7:00 UTC, not 8:00."""
    opening = calendar.next_office_moment(datetime(2026, 3, 28, 12, tzinfo=UTC))
    assert opening == local(2026, 3, 30, 9)
    assert opening.astimezone(UTC) == datetime(2026, 3, 30, 7, tzinfo=UTC)


def test_the_next_office_moment_skips_easter_monday(calendar: WorkingDayCalendar) -> None:
    """§8.4 with Algemene termijnenwet art. 3: Good Friday to Easter Monday are closed."""
    assert calendar.next_office_moment(local(2026, 4, 2, 18)) == local(2026, 4, 7, 9)
