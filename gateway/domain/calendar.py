"""The working-day calendar of the region: working days, statutory terms, office hours.

Working days are Monday to Friday minus the days the Algemene termijnenwet
(art. 3) puts on a par with Saturday and Sunday: New Year's Day, Good Friday,
Easter Monday, King's Day, 5 May (every year), Ascension Day, Whit Monday and
both Christmas days; minus the region's extra closing days (config/region.toml).
Lokale teams and VT are reachable 9:00-17:00 on working days, holiday season
included (agreement §8.4). All moments are timezone-aware; wall-clock times are
read in the region's zone (Europe/Amsterdam).

The holidays come from the `holidays` package, asked for "NL" with the
categories "public" and "optional": its "public" set has 5 May only in lustrum
years (2025, 2030), the other years it is "optional". With both categories it
also returns Easter Sunday and Whit Sunday (Sundays anyway), which are dropped:
only the names of the Algemene termijnenwet are kept (asked in Dutch, so that
the names do not follow the process locale). Good Friday is in "public" (holidays
0.109). A year for which the package does not name every one of them is refused
(ConfigurationError), so that a change in the package cannot quietly shorten a
term. Years are computed lazily and kept; nothing here reads a file or a clock.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import overload
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays

from gateway.domain.contracts import AGREED_OFFICE_HOURS, OfficeHours
from gateway.domain.errors import ConfigurationError
from gateway.domain.region import Region

SATURDAY = 5
"""`date.weekday()` of Saturday; Sunday is 6."""

TERMIJNENWET_HOLIDAYS: Mapping[str, tuple[str, ...]] = {
    "nieuwjaarsdag": ("Nieuwjaarsdag",),
    "goede_vrijdag": ("Goede vrijdag",),
    "tweede_paasdag": ("Tweede paasdag",),
    "koningsdag": ("Koningsdag", "Koninginnedag"),
    "bevrijdingsdag": ("Bevrijdingsdag",),
    "hemelvaartsdag": ("Hemelvaartsdag",),
    "tweede_pinksterdag": ("Tweede pinksterdag",),
    "eerste_kerstdag": ("Eerste kerstdag",),
    "tweede_kerstdag": ("Tweede kerstdag",),
}
"""The Algemene termijnenwet's days (art. 3; Good Friday by designation), each
with the Dutch name(s) the `holidays` package gives it; Koninginnedag before 2014."""

_KEPT_NAMES = frozenset(name for names in TERMIJNENWET_HOLIDAYS.values() for name in names)


def statutory_holidays(year: int) -> dict[date, str]:
    """The Algemene termijnenwet's holidays of one year, from the `holidays` package.

    Raises ConfigurationError when the package does not name all nine.
    """
    found = holidays.country_holidays(
        "NL", years=year, categories=("public", "optional"), language="nl"
    )
    kept: dict[date, str] = {}
    for day in sorted(found):
        names = [name for name in found.get_list(day) if name in _KEPT_NAMES]
        if names:
            kept[day] = "; ".join(sorted(names))
    named = {name for names in kept.values() for name in names.split("; ")}
    missing = [key for key, names in TERMIJNENWET_HOLIDAYS.items() if not named & set(names)]
    if missing:
        raise ConfigurationError(
            f"calendar: the holidays package gives no {', '.join(missing)} for NL in {year}"
        )
    return kept


def _require_aware(moment: datetime, what: str) -> None:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware, got {moment.isoformat()}")


@dataclass(frozen=True, slots=True)
class WorkingDayCalendar:
    """Working days, statutory terms and office hours of the region.

    `time_zone` reads wall-clock times; `extra_closing_days` are days VT and
    the lokale teams are closed on top of the holidays; `office_hours` are the
    agreed 9:00-17:00 (§8.4), start included, end not.
    """

    time_zone: ZoneInfo = field(default_factory=lambda: ZoneInfo("Europe/Amsterdam"))
    extra_closing_days: frozenset[date] = frozenset()
    office_hours: OfficeHours = AGREED_OFFICE_HOURS
    _years: dict[int, Mapping[date, str]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    @classmethod
    def for_region(
        cls, region: Region, office_hours: OfficeHours = AGREED_OFFICE_HOURS
    ) -> WorkingDayCalendar:
        """The calendar of a region: its time zone and its extra closing days."""
        try:
            zone = ZoneInfo(region.time_zone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ConfigurationError(f"calendar: unknown time zone {region.time_zone!r}") from exc
        return cls(
            time_zone=zone,
            extra_closing_days=frozenset(region.extra_closing_days),
            office_hours=office_hours,
        )

    # --- days ---------------------------------------------------------------

    def holidays_of(self, year: int) -> Mapping[date, str]:
        """The Algemene termijnenwet's holidays of a year, by date, with their Dutch names."""
        known = self._years.get(year)
        if known is None:
            known = statutory_holidays(year)
            self._years[year] = known
        return known

    def holiday_name(self, day: date) -> str | None:
        """The name of the statutory holiday on this day, or None."""
        return self.holidays_of(day.year).get(day)

    def is_statutory_rest_day(self, day: date) -> bool:
        """A Saturday, a Sunday or a holiday of the Algemene termijnenwet (art. 1, 3)."""
        return day.weekday() >= SATURDAY or day in self.holidays_of(day.year)

    def is_working_day(self, day: date) -> bool:
        """Monday to Friday, no statutory holiday and no extra closing day of the region."""
        return not self.is_statutory_rest_day(day) and day not in self.extra_closing_days

    def next_working_day(self, day: date) -> date:
        """This day when it is a working day, else the first working day after it."""
        while not self.is_working_day(day):
            day += timedelta(days=1)
        return day

    def local_day(self, moment: date) -> date:
        """The region's calendar date of a moment (a date is its own day)."""
        if isinstance(moment, datetime):
            _require_aware(moment, "moment")
            return moment.astimezone(self.time_zone).date()
        return moment

    @overload
    def add_working_days(self, start: datetime, count: int) -> datetime: ...
    @overload
    def add_working_days(self, start: date, count: int) -> date: ...

    def add_working_days(self, start: date, count: int) -> date:
        """The `count`-th working day after `start` (start itself not counted).

        0 gives the next working day (start itself when it is one); a negative
        count goes back: -1 is the last working day before `start`. A moment
        keeps its wall-clock time in the region's zone (working days never hold
        a daylight-saving switch, which falls on a Sunday).
        """
        day = self.local_day(start)
        if count == 0:
            day = self.next_working_day(day)
        step = timedelta(days=1 if count > 0 else -1)
        for _ in range(abs(count)):
            day += step
            while not self.is_working_day(day):
                day += step
        if isinstance(start, datetime):
            wall = start.astimezone(self.time_zone)
            return datetime.combine(day, wall.timetz().replace(tzinfo=None), self.time_zone)
        return day

    def statutory_end(self, start: date, days: int) -> date:
        """The last day of a term of `days` calendar days from `start`.

        Algemene termijnenwet art. 1: a term ending on a Saturday, Sunday or
        statutory holiday runs to the next day that is none of these; art. 2: a
        term of at least 3 days holds at least two such days. The region's extra
        closing days are no statutory rest days: they do not lengthen a term.
        """
        if days < 0:
            raise ValueError(f"a term has no negative length: {days}")
        end = start + timedelta(days=days)
        while self.is_statutory_rest_day(end) or (days >= 3 and self._open_days(start, end) < 2):
            end += timedelta(days=1)
        return end

    def _open_days(self, start: date, end: date) -> int:
        """How many days after `start` up to and including `end` are no statutory rest day."""
        span = (end - start).days
        return sum(
            1
            for offset in range(1, span + 1)
            if not self.is_statutory_rest_day(start + timedelta(days=offset))
        )

    # --- office hours -------------------------------------------------------

    def within_office_hours(self, moment: datetime) -> bool:
        """On a working day, between opening (included) and closing (not), local time (§8.4)."""
        _require_aware(moment, "moment")
        local = moment.astimezone(self.time_zone)
        return self.is_working_day(local.date()) and self.office_hours.covers(local.time())

    def next_office_moment(self, moment: datetime) -> datetime:
        """The moment itself (in local time) when within office hours, else the next opening."""
        _require_aware(moment, "moment")
        local = moment.astimezone(self.time_zone)
        if self.within_office_hours(local):
            return local
        day = local.date()
        if not (self.is_working_day(day) and local.time() < self.office_hours.start):
            day = self.next_working_day(day + timedelta(days=1))
        return self.opening(day)

    def opening(self, day: date) -> datetime:
        """The opening of office hours on this day, local time."""
        return self._at(day, self.office_hours.start)

    def closing(self, day: date) -> datetime:
        """The close of office hours on this day, local time: when a day's deadline falls due."""
        return self._at(day, self.office_hours.end)

    def _at(self, day: date, wall: time) -> datetime:
        return datetime.combine(day, wall, self.time_zone)
