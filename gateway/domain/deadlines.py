"""Deadline rules: the terms of the agreement, and the deadlines they give a case.

A deadline the gateway tracks is data with a source: the rule that made it.
Each rule has the agreement's value as its default and can be configured (per
contract) with `with_term` and `with_warning`, or with the factories below.

Terms counted in days fall due at the close of office hours (17:00 local,
§8.4) of their last day; a term that ends on a day the calendar does not work
runs to the next working day. Terms counted in elapsed time (the receipt) fall
due at that moment. Pure: the clock (`now`) and the calendar are passed in.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from typing import Protocol, TypeAlias

from gateway.domain.calendar import WorkingDayCalendar


@dataclass(frozen=True, slots=True)
class WorkingDays:
    """A number of working days: as a term, due at closing on the `count`-th working day
    after the start's day; as a warning, that many working days before the due moment."""

    count: int

    def due(self, calendar: WorkingDayCalendar, start: date) -> datetime:
        """Closing time on the `count`-th working day after the start's day."""
        return calendar.closing(calendar.add_working_days(calendar.local_day(start), self.count))


WarnBefore: TypeAlias = timedelta | WorkingDays
"""How long before the due moment a deadline turns to "warning"."""


class Term(Protocol):
    """How a rule computes the due moment from its start."""

    def due(self, calendar: WorkingDayCalendar, start: date, /) -> datetime:
        """The due moment (timezone-aware) for a start (a moment, or a date)."""
        ...


@dataclass(frozen=True, slots=True)
class StatutoryDays:
    """Calendar days from the start's day, ending by the Algemene termijnenwet:
    a last day that is a Saturday, Sunday or statutory holiday runs to the next day."""

    count: int

    def due(self, calendar: WorkingDayCalendar, start: date) -> datetime:
        """Closing time on the statutory last day."""
        return calendar.closing(calendar.statutory_end(calendar.local_day(start), self.count))


@dataclass(frozen=True, slots=True)
class ByDate:
    """The start is itself the last day (an advised date): closing time on that day,
    or on the next working day when it is none."""

    def due(self, calendar: WorkingDayCalendar, start: date) -> datetime:
        """Closing time on the date, or on the next working day."""
        return calendar.closing(calendar.next_working_day(calendar.local_day(start)))


@dataclass(frozen=True, slots=True)
class Months:
    """Calendar months after the start's day (31 January + 1 month is 28 or 29 February),
    closing time on that day or on the next working day."""

    count: int

    def due(self, calendar: WorkingDayCalendar, start: date) -> datetime:
        """Closing time on the day `count` months on, or on the next working day."""
        day = add_months(calendar.local_day(start), self.count)
        return calendar.closing(calendar.next_working_day(day))


@dataclass(frozen=True, slots=True)
class Elapsed:
    """A length of time from the start moment, whatever the day or hour."""

    length: timedelta

    def due(self, calendar: WorkingDayCalendar, start: date) -> datetime:
        """The start moment plus the length."""
        return start_moment(calendar, start) + self.length


@dataclass(frozen=True, slots=True)
class OfficeDays:
    """Working days counted from the first office moment at or after the start, to the
    same time of day: asked Monday 10:00, due Tuesday 10:00; asked Friday 20:00, due
    Tuesday 9:00 (Monday 9:00 is the first office moment)."""

    count: int

    def due(self, calendar: WorkingDayCalendar, start: date) -> datetime:
        """`count` working days after the first office moment."""
        opened = calendar.next_office_moment(start_moment(calendar, start))
        return calendar.add_working_days(opened, self.count)


@dataclass(frozen=True, slots=True)
class Before:
    """Due `margin` before another term falls due (an answer needed before a decision)."""

    term: Term
    margin: WarnBefore

    def due(self, calendar: WorkingDayCalendar, start: date) -> datetime:
        """The other term's due moment, less the margin."""
        return earlier(calendar, self.term.due(calendar, start), self.margin)


def start_moment(calendar: WorkingDayCalendar, start: date) -> datetime:
    """A start as a moment: a moment itself (timezone-aware), a date its local midnight."""
    if isinstance(start, datetime):
        if start.tzinfo is None or start.utcoffset() is None:
            raise ValueError(f"start must be timezone-aware, got {start.isoformat()}")
        return start
    return datetime.combine(start, time(0, 0), calendar.time_zone)


def earlier(calendar: WorkingDayCalendar, moment: datetime, by: WarnBefore) -> datetime:
    """The moment `by` before this one: elapsed time, or working days at the same wall time."""
    if isinstance(by, timedelta):
        return moment - by
    if by.count == 0:
        return moment
    return min(moment, calendar.add_working_days(moment, -by.count))


def add_months(day: date, months: int) -> date:
    """The same day `months` calendar months on, or the month's last day when it is shorter."""
    years, month_index = divmod(day.month - 1 + months, 12)
    year, month = day.year + years, month_index + 1
    next_month = date(year + month // 12, month % 12 + 1, 1)
    last = (next_month - timedelta(days=1)).day
    return date(year, month, min(day.day, last))


class DeadlineState(StrEnum):
    """Where a deadline stands at a moment."""

    OK = "ok"
    WARNING = "warning"
    OVERDUE = "overdue"


@dataclass(frozen=True, slots=True)
class Deadline:
    """One deadline of one subject (a case, a thread, a message): what is due and when.

    `rule` names the rule that made it; `warn_at` is when it turns to warning,
    `due` when it is overdue (the deed must be done before it). Both are
    timezone-aware, and `warn_at` is not after `due`.
    """

    rule: str
    subject: str
    due: datetime
    warn_at: datetime

    def __post_init__(self) -> None:
        for name, moment in (("due", self.due), ("warn_at", self.warn_at)):
            if moment.tzinfo is None or moment.utcoffset() is None:
                raise ValueError(f"deadline {name} must be timezone-aware")
        if self.warn_at > self.due:
            raise ValueError("a deadline warns before it is due, not after")


def deadline_state(deadline: Deadline, now: datetime) -> DeadlineState:
    """ok before `warn_at`, warning from `warn_at`, overdue from `due` on."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    if now >= deadline.due:
        return DeadlineState.OVERDUE
    if now >= deadline.warn_at:
        return DeadlineState.WARNING
    return DeadlineState.OK


@dataclass(frozen=True, slots=True)
class DeadlineRule:
    """A term of the agreement: its name, where it comes from (description, with
    the §), how it computes the due moment, and how early it warns."""

    name: str
    description: str
    term: Term
    warn_before: WarnBefore = timedelta(0)

    def due(self, calendar: WorkingDayCalendar, start: date) -> datetime:
        """The due moment for a start (a timezone-aware moment, or a date)."""
        return self.term.due(calendar, start)

    def deadline(self, subject: str, start: date, calendar: WorkingDayCalendar) -> Deadline:
        """The deadline this rule gives a subject from its start."""
        due = self.due(calendar, start)
        return Deadline(
            rule=self.name,
            subject=subject,
            due=due,
            warn_at=min(due, earlier(calendar, due, self.warn_before)),
        )

    def with_term(self, term: Term) -> DeadlineRule:
        """The same rule with another term (a contract's own value)."""
        return replace(self, term=term)

    def with_warning(self, warn_before: WarnBefore) -> DeadlineRule:
        """The same rule, warning at another distance from the due moment."""
        return replace(self, warn_before=warn_before)


# --- the agreement's rules -------------------------------------------------------

VEILIGHEIDSBEOORDELING = DeadlineRule(
    name="veiligheidsbeoordeling",
    description=(
        "§5.1 (C), §8 A: VT completes the veiligheidsbeoordeling within 5 working days "
        "of the melding (Handelingsprotocol)."
    ),
    term=WorkingDays(5),
    warn_before=WorkingDays(1),
)

ONDERZOEK = DeadlineRule(
    name="onderzoek",
    description=(
        "§8 B: onderzoek takes at most 70 days, then the warm handover; a last day "
        "on a Saturday, Sunday or holiday runs to the next working day (Algemene termijnenwet)."
    ),
    term=StatutoryDays(70),
    warn_before=WorkingDays(5),
)

VOORWAARDEN_EN_VERVOLG = DeadlineRule(
    name="voorwaarden_en_vervolg",
    description=(
        "§8 C: voorwaarden en vervolg takes at most 70 days, then the warm handover; a last "
        "day on a Saturday, Sunday or holiday runs to the next working day (Algemene termijnenwet)."
    ),
    term=StatutoryDays(70),
    warn_before=WorkingDays(5),
)


def enrichment_answer_rule(
    assessment: DeadlineRule = VEILIGHEIDSBEOORDELING,
    margin: WarnBefore = WorkingDays(1),
    warn_before: WarnBefore = WorkingDays(1),
) -> DeadlineRule:
    """The partners' enrichment answers are due `margin` before the assessment is (§5.1)."""
    return DeadlineRule(
        name="enrichment_answer",
        description=(
            "§5.1: VT needs the partners' enrichment answers before its veiligheidsbeoordeling; "
            "due one working day before the assessment deadline, from the melding."
        ),
        term=Before(assessment.term, margin),
        warn_before=warn_before,
    )


ENRICHMENT_ANSWER = enrichment_answer_rule()

CONFIRMATION = DeadlineRule(
    name="confirmation",
    description=(
        "§8.5 C, D: the recipient picks the case up within the term VT advised "
        "(overdracht.notice geadviseerde_termijn.uiterlijk, or a deferral's nieuwe_datum); "
        "due at 17:00 local on that date, or on the next working day."
    ),
    term=ByDate(),
    warn_before=WorkingDays(1),
)

DEFAULT_RECEIPT_TIMEOUT = timedelta(minutes=15)
"""PROTOCOL.md §7, §10.2: the receipt_timeout of every AMQP partner and of VT (PT15M)."""


def receipt_rule(timeout: timedelta = DEFAULT_RECEIPT_TIMEOUT) -> DeadlineRule:
    """The recipient's receipt is due `timeout` after the send (its contract's receipt_timeout)."""
    return DeadlineRule(
        name="receipt",
        description=(
            "PROTOCOL.md §10.2, §7: the signed receipt is due within the recipient contract's "
            "receipt_timeout of the first send (for reference: the resends, with waits that "
            "double, are the relay's)."
        ),
        term=Elapsed(timeout),
    )


RECEIPT = receipt_rule()

MONITORING_MONTHS = (3, 12)
"""§7.1 B: VT monitors at least 3 and 12 months after the handover."""


def monitoring_rule(months: int, warn_before: WarnBefore = WorkingDays(5)) -> DeadlineRule:
    """The monitoring check `months` after the confirmed handover (§7.1 B)."""
    return DeadlineRule(
        name=f"monitoring_{months}_maanden",
        description=(
            f"§7.1 B: VT monitors {months} months after the handover was confirmed "
            "(at least at 3 and 12 months); due at 17:00 local that day or the next working day."
        ),
        term=Months(months),
        warn_before=warn_before,
    )


def monitoring_rules(months: Iterable[int] = MONITORING_MONTHS) -> tuple[DeadlineRule, ...]:
    """One monitoring rule per moment, in order (a notice's monitoring.momenten_maanden)."""
    return tuple(monitoring_rule(count) for count in sorted(set(months)))


MONITORING = monitoring_rules()
"""The agreed moments: `monitoring_3_maanden` and `monitoring_12_maanden`."""

VT_ANSWER = DeadlineRule(
    name="vt_answer",
    description=(
        "§8.4: VT is reachable during office hours for the teams' questions about a handover; "
        "the gateway's choice: VT answers within 1 working day, counted from the first office "
        "moment at or after the question."
    ),
    term=OfficeDays(1),
    warn_before=timedelta(hours=2),
)

AGREED_RULES: Mapping[str, DeadlineRule] = {
    rule.name: rule
    for rule in (
        VEILIGHEIDSBEOORDELING,
        ONDERZOEK,
        VOORWAARDEN_EN_VERVOLG,
        ENRICHMENT_ANSWER,
        CONFIRMATION,
        RECEIPT,
        *MONITORING,
        VT_ANSWER,
    )
}
"""Every rule with the agreement's values, by name."""
