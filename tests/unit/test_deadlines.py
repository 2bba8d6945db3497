"""Deadline rules: the agreement's terms, the deadlines they give, and their state."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from gateway.contract_files import load_region
from gateway.domain.calendar import WorkingDayCalendar
from gateway.domain.deadlines import (
    AGREED_RULES,
    CONFIRMATION,
    ENRICHMENT_ANSWER,
    MONITORING,
    ONDERZOEK,
    RECEIPT,
    VEILIGHEIDSBEOORDELING,
    VOORWAARDEN_EN_VERVOLG,
    VT_ANSWER,
    Deadline,
    DeadlineState,
    WorkingDays,
    add_months,
    deadline_state,
    enrichment_answer_rule,
    monitoring_rules,
    receipt_rule,
)
from gateway.resources import data_dir

AMSTERDAM = ZoneInfo("Europe/Amsterdam")
CASE = "VT-2026-000042"


def local(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=AMSTERDAM)


@pytest.fixture(scope="module")
def calendar() -> WorkingDayCalendar:
    return WorkingDayCalendar.for_region(load_region(data_dir("config") / "region.toml"))


# --- moment A: the veiligheidsbeoordeling and the enrichment answers -------------------


def test_veiligheidsbeoordeling_is_due_at_closing_on_the_fifth_working_day(
    calendar: WorkingDayCalendar,
) -> None:
    """§5.1, §8 A: a report on Thursday 5 March 2026 is assessed by Thursday 12 March, 17:00."""
    deadline = VEILIGHEIDSBEOORDELING.deadline(CASE, local(2026, 3, 5, 14), calendar)
    assert deadline.rule == "veiligheidsbeoordeling"
    assert deadline.subject == CASE
    assert deadline.due == local(2026, 3, 12, 17)
    assert deadline.warn_at == local(2026, 3, 11, 17)


def test_veiligheidsbeoordeling_skips_5_may_and_the_weekend(calendar: WorkingDayCalendar) -> None:
    """§5.1 with Algemene termijnenwet art. 3: from Thursday 30 April 2026 to Friday 8 May."""
    deadline = VEILIGHEIDSBEOORDELING.deadline(CASE, local(2026, 4, 30, 10), calendar)
    assert deadline.due == local(2026, 5, 8, 17)


def test_a_report_after_midnight_local_counts_from_that_day(calendar: WorkingDayCalendar) -> None:
    """§5.1: Thursday 23:30 UTC is Friday 00:30 in Amsterdam, so day one is Monday."""
    deadline = VEILIGHEIDSBEOORDELING.deadline(
        CASE, datetime(2026, 3, 5, 23, 30, tzinfo=UTC), calendar
    )
    assert deadline.due == local(2026, 3, 13, 17)


def test_enrichment_answers_are_due_a_working_day_before_the_assessment(
    calendar: WorkingDayCalendar,
) -> None:
    """§5.1: VT needs the answers before its veiligheidsbeoordeling: Wednesday 11 March, 17:00."""
    deadline = ENRICHMENT_ANSWER.deadline(CASE, local(2026, 3, 5, 14), calendar)
    assert deadline.due == local(2026, 3, 11, 17)
    assert deadline.warn_at == local(2026, 3, 10, 17)


def test_enrichment_answers_follow_a_configured_assessment_term(
    calendar: WorkingDayCalendar,
) -> None:
    """§5.1: with a 3-day assessment the answers are due after 2 working days, not 4."""
    shorter = VEILIGHEIDSBEOORDELING.with_term(WorkingDays(3))
    rule = enrichment_answer_rule(assessment=shorter, margin=WorkingDays(1))
    assert rule.due(calendar, local(2026, 3, 5, 14)) == local(2026, 3, 9, 17)


# --- moments B and C: 70 days, the statutory end rule ------------------------------------


def test_onderzoek_of_70_days_ending_on_a_saturday_runs_to_monday(
    calendar: WorkingDayCalendar,
) -> None:
    """§8 B, Algemene termijnenwet art. 1: 4 July 2026 + 70 days is Saturday: Monday 14 Sept."""
    deadline = ONDERZOEK.deadline(CASE, date(2026, 7, 4), calendar)
    assert deadline.due == local(2026, 9, 14, 17)
    assert deadline.warn_at == local(2026, 9, 7, 17)


def test_voorwaarden_en_vervolg_ending_on_christmas_runs_to_the_next_working_day(
    calendar: WorkingDayCalendar,
) -> None:
    """§8 C, Algemene termijnenwet art. 1: a term to Friday 25 December 2026 runs to Monday 28."""
    deadline = VOORWAARDEN_EN_VERVOLG.deadline(CASE, local(2026, 10, 16, 11), calendar)
    assert deadline.due == local(2026, 12, 28, 17)


def test_onderzoek_ending_on_kings_day_runs_to_the_next_day(calendar: WorkingDayCalendar) -> None:
    """§8 B with Algemene termijnenwet art. 3: a term to Monday 27 April 2026 runs to Tuesday 28."""
    assert ONDERZOEK.due(calendar, date(2026, 2, 16)) == local(2026, 4, 28, 17)


def test_a_70_day_term_into_winter_time_is_due_at_17_local(calendar: WorkingDayCalendar) -> None:
    """§8 B: started in summer time, due Thursday 29 October 2026 at 17:00 CET, 16:00 UTC."""
    due = ONDERZOEK.due(calendar, local(2026, 8, 20, 10))
    assert due.astimezone(UTC) == datetime(2026, 10, 29, 16, tzinfo=UTC)


# --- the handover: confirmation, receipt, questions ---------------------------------------


def test_confirmation_is_due_at_17_on_the_advised_date(calendar: WorkingDayCalendar) -> None:
    """§8.5 C: geadviseerde_termijn.uiterlijk 10 June 2026: due at 17:00 CEST, 15:00 UTC."""
    deadline = CONFIRMATION.deadline(CASE, date(2026, 6, 10), calendar)
    assert deadline.due.astimezone(UTC) == datetime(2026, 6, 10, 15, tzinfo=UTC)
    assert deadline.warn_at == local(2026, 6, 9, 17)


def test_an_advised_date_on_5_may_runs_to_the_next_working_day(
    calendar: WorkingDayCalendar,
) -> None:
    """§8.5 C with Algemene termijnenwet art. 3: 5 May 2026, no lustrum year, moves to 6 May."""
    assert CONFIRMATION.due(calendar, date(2026, 5, 5)) == local(2026, 5, 6, 17)


def test_a_warning_in_working_days_skips_kings_day(calendar: WorkingDayCalendar) -> None:
    """§8.5 C: one working day before Tuesday 28 April 2026 is Friday 24 April, over King's Day."""
    deadline = CONFIRMATION.deadline(CASE, date(2026, 4, 28), calendar)
    assert deadline.warn_at == local(2026, 4, 24, 17)


def test_a_receipt_is_due_after_the_receipt_timeout(calendar: WorkingDayCalendar) -> None:
    """PROTOCOL.md §7: PT15M by default, whatever the day; a contract's own timeout otherwise."""
    sent = datetime(2026, 3, 7, 22, 50, tzinfo=UTC)
    assert RECEIPT.due(calendar, sent) == sent + timedelta(minutes=15)
    deadline = receipt_rule(timedelta(hours=1)).deadline("message-1", sent, calendar)
    assert deadline.due == sent + timedelta(hours=1)
    assert deadline.warn_at == deadline.due


def test_vt_answers_a_question_within_one_working_day(calendar: WorkingDayCalendar) -> None:
    """§8.4: a question on Monday 9 March 2026 at 10:00 is answered by Tuesday 10:00."""
    deadline = VT_ANSWER.deadline(CASE, local(2026, 3, 9, 10), calendar)
    assert deadline.due == local(2026, 3, 10, 10)
    assert deadline.warn_at == local(2026, 3, 10, 8)


def test_a_question_after_hours_counts_from_the_next_opening(calendar: WorkingDayCalendar) -> None:
    """§8.4: asked Friday 20:00, the office opens Monday 9:00, so the answer is due Tuesday 9:00."""
    assert VT_ANSWER.due(calendar, local(2026, 3, 6, 20)) == local(2026, 3, 10, 9)


def test_a_question_late_on_friday_is_due_on_monday(calendar: WorkingDayCalendar) -> None:
    """§8.4: asked Friday 16:00, one working day on is Monday 16:00."""
    assert VT_ANSWER.due(calendar, local(2026, 3, 6, 16)) == local(2026, 3, 9, 16)


# --- monitoring ------------------------------------------------------------------------------


def test_monitoring_is_due_3_and_12_months_after_the_confirmation(
    calendar: WorkingDayCalendar,
) -> None:
    """§7.1 B: confirmed Tuesday 10 March 2026: checks on 10 June 2026 and 10 March 2027."""
    confirmed = local(2026, 3, 10, 11)
    deadlines = [rule.deadline(CASE, confirmed, calendar) for rule in MONITORING]
    assert [d.rule for d in deadlines] == ["monitoring_3_maanden", "monitoring_12_maanden"]
    assert [d.due for d in deadlines] == [local(2026, 6, 10, 17), local(2027, 3, 10, 17)]


def test_monitoring_3_months_after_30_november_lands_on_the_next_working_day(
    calendar: WorkingDayCalendar,
) -> None:
    """§7.1 B: 30 November 2026 + 3 months is Sunday 28 February 2027, so Monday 1 March."""
    (three, _) = MONITORING
    assert three.due(calendar, date(2026, 11, 30)) == local(2027, 3, 1, 17)


def test_monitoring_moments_follow_the_notice() -> None:
    """§7.1 B: "and more often where needed": the notice's momenten_maanden, in order."""
    names = [rule.name for rule in monitoring_rules([12, 3, 6, 3])]
    assert names == ["monitoring_3_maanden", "monitoring_6_maanden", "monitoring_12_maanden"]


@pytest.mark.parametrize(
    ("day", "months", "expected"),
    [
        (date(2026, 1, 31), 1, date(2026, 2, 28)),
        (date(2028, 1, 31), 1, date(2028, 2, 29)),
        (date(2026, 11, 15), 3, date(2027, 2, 15)),
        (date(2026, 12, 31), 12, date(2027, 12, 31)),
        (date(2026, 3, 10), 0, date(2026, 3, 10)),
    ],
)
def test_months_are_calendar_months_clamped_to_the_month_end(
    day: date, months: int, expected: date
) -> None:
    """§7.1 B: "3 months" from the 31st is the last day of a shorter month."""
    assert add_months(day, months) == expected


# --- state ---------------------------------------------------------------------------------


def test_a_deadline_is_ok_before_warning_and_overdue_from_its_due_moment() -> None:
    """Deadlines: ok before warn_at, warning from warn_at, overdue from due on."""
    deadline = Deadline(
        rule="confirmation",
        subject=CASE,
        due=local(2026, 6, 10, 17),
        warn_at=local(2026, 6, 9, 17),
    )
    second = timedelta(seconds=1)
    assert deadline_state(deadline, deadline.warn_at - second) == "ok"
    assert deadline_state(deadline, deadline.warn_at) == "warning"
    assert deadline_state(deadline, deadline.due - second) is DeadlineState.WARNING
    assert deadline_state(deadline, deadline.due) == "overdue"
    assert deadline_state(deadline, deadline.due + timedelta(days=30)) is DeadlineState.OVERDUE


def test_the_state_compares_moments_not_wall_clocks() -> None:
    """Deadlines: 15:30 UTC on 10 June is 17:30 in Amsterdam, after a 17:00 local due."""
    deadline = Deadline("confirmation", CASE, local(2026, 6, 10, 17), local(2026, 6, 9, 17))
    assert deadline_state(deadline, datetime(2026, 6, 10, 14, 59, tzinfo=UTC)) == "warning"
    assert deadline_state(deadline, datetime(2026, 6, 10, 15, 30, tzinfo=UTC)) == "overdue"


def test_a_deadline_cannot_warn_after_it_is_due() -> None:
    """Deadlines: the warning comes before the due moment."""
    with pytest.raises(ValueError, match="warns before"):
        Deadline("confirmation", CASE, local(2026, 6, 10, 17), local(2026, 6, 11, 17))


def test_naive_moments_are_refused(calendar: WorkingDayCalendar) -> None:
    """Deadlines: every moment is timezone-aware."""
    with pytest.raises(ValueError, match="timezone-aware"):
        Deadline("receipt", CASE, datetime(2026, 6, 10, 17), local(2026, 6, 9, 17))
    deadline = Deadline("receipt", CASE, local(2026, 6, 10, 17), local(2026, 6, 9, 17))
    with pytest.raises(ValueError, match="timezone-aware"):
        deadline_state(deadline, datetime(2026, 6, 10, 12))
    with pytest.raises(ValueError, match="timezone-aware"):
        RECEIPT.due(calendar, datetime(2026, 6, 10, 12))


# --- the rules as data -------------------------------------------------------------------


def test_rules_can_be_configured_without_changing_the_agreed_ones(
    calendar: WorkingDayCalendar,
) -> None:
    """DOMAIN.md Time: configurable per contract, with the agreement's values as defaults."""
    shorter = VEILIGHEIDSBEOORDELING.with_term(WorkingDays(3)).with_warning(timedelta(hours=4))
    deadline = shorter.deadline(CASE, local(2026, 3, 5, 14), calendar)
    assert deadline.due == local(2026, 3, 10, 17)
    assert deadline.warn_at == local(2026, 3, 10, 13)
    assert VEILIGHEIDSBEOORDELING.term == WorkingDays(5)
    assert shorter.name == VEILIGHEIDSBEOORDELING.name


def test_every_agreed_rule_names_its_source() -> None:
    """DOMAIN.md Time: a deadline is data with a source, the rule, which cites the agreement."""
    assert set(AGREED_RULES) == {
        "veiligheidsbeoordeling",
        "onderzoek",
        "voorwaarden_en_vervolg",
        "enrichment_answer",
        "confirmation",
        "receipt",
        "monitoring_3_maanden",
        "monitoring_12_maanden",
        "vt_answer",
    }
    for rule in AGREED_RULES.values():
        assert "§" in rule.description, rule.name


def test_every_agreed_rule_warns_no_later_than_it_is_due(calendar: WorkingDayCalendar) -> None:
    """Deadlines: each agreed rule gives a warning at or before its due moment."""
    start = local(2026, 12, 23, 16, 30)
    for rule in AGREED_RULES.values():
        deadline = rule.deadline(CASE, start, calendar)
        assert deadline.warn_at <= deadline.due
        assert deadline.due >= start
