"""Monitoring after a handover: whether, when, and whether the answer came in time (§7.1)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from gateway.domain.errors import ErrorCode, PermanentError
from gateway.domain.handover import Moment
from gateway.domain.monitoring import (
    CheckState,
    MonitoringCheck,
    MonitoringPlan,
    ReasonNotToMonitor,
    add_months,
    monitoring_plan,
    on_request_sent,
    on_response,
    plan_of_notice,
)

TEAM = "lt-tiel"
HANDED_OVER = date(2026, 1, 31)
T0 = datetime(2026, 4, 30, 9, 0, tzinfo=UTC)


def plan(
    moment: Moment,
    *,
    gi: bool = False,
    decided: bool = False,
    refuted: bool | None = None,
    reason: ReasonNotToMonitor | None = None,
    toelichting: str = "",
    months: tuple[int, ...] = (3, 12),
) -> MonitoringPlan:
    return monitoring_plan(
        moment,
        recipient_is_gi=gi,
        vt_decided_to_monitor=decided,
        vermoeden_weerlegd=refuted,
        reason_not_to_monitor=reason,
        toelichting=toelichting,
        months=months,
    )


def refusal(**kwargs: object) -> PermanentError:
    with pytest.raises(PermanentError) as excinfo:
        plan(**kwargs)  # type: ignore[arg-type]
    assert excinfo.value.code is ErrorCode.SCHEMA_INVALID
    return excinfo.value


def check() -> MonitoringCheck:
    return plan(Moment.C, decided=True).checks(
        overdracht_id="o1",
        case_ref="VT-2026-00042",
        gemeente="GM0281",
        recipient=TEAM,
        handed_over_on=HANDED_OVER,
    )[0]


def requested() -> MonitoringCheck:
    return on_request_sent(check(), message_id="m1", at=T0, answer_before=T0 + timedelta(days=10))


def test_no_monitoring_after_a_handover_to_jeugdbescherming() -> None:
    """§7.1 D: VT does not monitor after a handover to a GI, whatever the moment."""
    for moment, refuted in ((Moment.A, None), (Moment.B, False), (Moment.C, None)):
        result = plan(moment, gi=True, refuted=refuted)
        assert not result.afgesproken
        assert result.reason_not_to_monitor is ReasonNotToMonitor.OVERDRACHT_AAN_GI
        assert result.moments(HANDED_OVER) == ()


def test_deciding_to_monitor_after_a_handover_to_a_gi_is_refused() -> None:
    """§7.1 D: never after a GI, even when VT's notice says it agreed monitoring."""
    error = refusal(moment=Moment.C, gi=True, decided=True)
    assert error.rejection.pointer == "/body/monitoring/afgesproken"


def test_the_gi_reason_needs_a_gi_recipient() -> None:
    """§7.1 D applies to GIs only: a lokaal team is monitored."""
    refusal(moment=Moment.C, reason=ReasonNotToMonitor.OVERDRACHT_AAN_GI)


def test_monitoring_after_c_always() -> None:
    """§7.1 A: after voorwaarden en vervolg VT always monitors."""
    result = plan(Moment.C, decided=True)
    assert result.afgesproken
    assert result.months == (3, 12)


def test_no_monitoring_after_c_needs_a_recorded_reason() -> None:
    """§7.1 A note 13: not monitoring after C needs a well-founded reason, written down."""
    error = refusal(moment=Moment.C)
    assert error.rejection.pointer == "/body/monitoring/reden_geen_monitoring"


def test_another_well_founded_reason_is_written_down() -> None:
    """§7.1 notes 12, 13: the reason is recorded; without its toelichting it is refused."""
    result = plan(
        Moment.C, reason=ReasonNotToMonitor.ANDERE_GEGRONDE_REDEN, toelichting="family moved abroad"
    )
    assert not result.afgesproken
    assert result.toelichting == "family moved abroad"
    error = refusal(moment=Moment.C, reason=ReasonNotToMonitor.ANDERE_GEGRONDE_REDEN)
    assert error.rejection.pointer == "/body/monitoring/toelichting"


def test_monitoring_after_b_unless_refuted() -> None:
    """§7.1 A: after onderzoek VT monitors, unless the suspicion was refuted."""
    assert plan(Moment.B, decided=True, refuted=False).afgesproken
    refusal(moment=Moment.B, refuted=False)
    result = plan(Moment.B, refuted=True)
    assert not result.afgesproken
    assert result.reason_not_to_monitor is ReasonNotToMonitor.VERMOEDEN_WEERLEGD


def test_a_refuted_suspicion_is_no_reason_when_it_was_not_refuted() -> None:
    """§7.1 A: vermoeden_weerlegd only excuses B when the onderzoek refuted it."""
    refusal(moment=Moment.B, refuted=False, reason=ReasonNotToMonitor.VERMOEDEN_WEERLEGD)


def test_after_b_the_notice_says_whether_the_suspicion_was_refuted() -> None:
    """§7.1 A: the rule for B turns on the refutation, so it must be stated."""
    error = refusal(moment=Moment.B, decided=True)
    assert error.rejection.pointer == "/body/vermoeden_weerlegd"


def test_only_an_onderzoek_refutes_a_suspicion() -> None:
    """§8.1: moment A has no onderzoek, so nothing was refuted."""
    refusal(moment=Moment.A, refuted=True)


def test_monitoring_after_a_only_when_decided() -> None:
    """§7.1 A: after the veiligheidsbeoordeling only when VT decided so."""
    assert plan(Moment.A, decided=True).afgesproken
    result = plan(Moment.A)
    assert not result.afgesproken
    assert result.reason_not_to_monitor is ReasonNotToMonitor.GEEN_BESLUIT_TOT_MONITORING


def test_a_reason_not_to_monitor_contradicts_agreed_monitoring() -> None:
    """Notice schema: monitoring agreed carries no reason not to monitor."""
    refusal(moment=Moment.A, decided=True, reason=ReasonNotToMonitor.GEEN_BESLUIT_TOT_MONITORING)


def test_monitoring_is_at_least_at_3_and_12_months() -> None:
    """§7.1 B: at least after 3 and 12 months, more often where needed."""
    assert plan(Moment.C, decided=True, months=(12, 6, 3)).months == (3, 6, 12)
    error = refusal(moment=Moment.C, decided=True, months=(3, 6))
    assert error.rejection.pointer == "/body/monitoring/momenten_maanden"
    refusal(moment=Moment.C, decided=True, months=(3, 3, 12))


def test_the_moments_count_from_the_confirmation_date() -> None:
    """§7.1 B: the months run from the handover; a short month ends on its last day."""
    result = plan(Moment.C, decided=True, months=(1, 3, 12))
    assert result.moments(HANDED_OVER) == (date(2026, 2, 28), date(2026, 4, 30), date(2027, 1, 31))
    assert add_months(date(2027, 11, 30), 3) == date(2028, 2, 29)


def test_the_plan_of_a_notice_reads_its_monitoring() -> None:
    """Notice schema: moment, vermoeden_weerlegd and monitoring make the plan."""
    body = {
        "moment": "B",
        "vermoeden_weerlegd": False,
        "veiligheidsvoorwaarden": [{"id": "v1", "omschrijving": "synthetisch"}],
        "monitoring": {"afgesproken": True, "momenten_maanden": [3, 12, 24]},
    }
    assert plan_of_notice(body, recipient_is_gi=False).months == (3, 12, 24)


def test_a_check_is_planned_until_its_day_comes() -> None:
    """§7.1 B: VT asks for the check on its moment."""
    planned = check()
    assert planned.state is CheckState.PLANNED
    assert planned.due_on == date(2026, 4, 30)
    assert planned.request_moment == "3_maanden"
    assert not planned.is_due(date(2026, 4, 29))
    assert planned.is_due(date(2026, 4, 30))


def test_an_agreed_moment_besides_3_and_12_is_asked_as_extra() -> None:
    """monitoring.request schema: its moment is 3_maanden, 12_maanden or extra."""
    checks = plan(Moment.C, decided=True, months=(3, 6, 12)).checks(
        overdracht_id="o1",
        case_ref="VT-1",
        gemeente="GM0281",
        recipient=TEAM,
        handed_over_on=HANDED_OVER,
    )
    assert [c.request_moment for c in checks] == ["3_maanden", "extra", "12_maanden"]


def test_an_answer_before_its_moment_is_on_time() -> None:
    """§7.1 C: the team cooperates by answering the monitoring request."""
    answered = on_response(requested(), sender=TEAM, message_id="a1", at=T0 + timedelta(days=3))
    assert answered.state is CheckState.ANSWERED
    assert answered.answered_on_time is True
    assert not answered.is_overdue(T0 + timedelta(days=30))


def test_an_unanswered_request_becomes_overdue_at_its_moment() -> None:
    """monitoring.request: the answer is needed before `antwoord_voor`."""
    waiting = requested()
    assert not waiting.is_overdue(T0 + timedelta(days=9))
    assert waiting.is_overdue(T0 + timedelta(days=10))


def test_a_late_answer_is_kept_but_not_on_time() -> None:
    """A late answer still counts as the answer; it is recorded as late."""
    answered = on_response(requested(), sender=TEAM, message_id="a1", at=T0 + timedelta(days=11))
    assert answered.answered_on_time is False


def test_an_answer_from_another_party_is_not_permitted() -> None:
    """PROTOCOL.md: only the party asked answers its monitoring request."""
    with pytest.raises(PermanentError) as excinfo:
        on_response(requested(), sender="lt-nijmegen", message_id="a1", at=T0)
    assert excinfo.value.code is ErrorCode.NOT_PERMITTED


def test_a_second_answer_is_invalid_state() -> None:
    """A check is answered once."""
    answered = on_response(requested(), sender=TEAM, message_id="a1", at=T0)
    with pytest.raises(PermanentError) as excinfo:
        on_response(answered, sender=TEAM, message_id="a2", at=T0)
    assert excinfo.value.code is ErrorCode.INVALID_STATE


def test_an_answer_before_the_request_is_invalid_state() -> None:
    """monitoring.response answers a monitoring.request."""
    with pytest.raises(PermanentError) as excinfo:
        on_response(check(), sender=TEAM, message_id="a1", at=T0)
    assert excinfo.value.code is ErrorCode.INVALID_STATE


def test_the_request_goes_to_the_current_regievoerder() -> None:
    """§7.1 C: when case management moved, the new party is asked and answers."""
    moved = on_request_sent(
        check(), message_id="m1", at=T0, answer_before=T0 + timedelta(days=10), recipient="moviera"
    )
    assert moved.recipient == "moviera"
    assert on_response(moved, sender="moviera", message_id="a1", at=T0).state is CheckState.ANSWERED


def test_a_check_is_requested_once() -> None:
    """A second request for the same check is INVALID_STATE; an extra check is its own."""
    with pytest.raises(PermanentError) as excinfo:
        on_request_sent(requested(), message_id="m2", at=T0, answer_before=T0 + timedelta(days=1))
    assert excinfo.value.code is ErrorCode.INVALID_STATE


def test_monitoring_agreed_without_veiligheidsvoorwaarden_is_refused() -> None:
    """§7.1 B: monitoring checks how the safety conditions stand, so a notice that agrees
    monitoring must name them (else the gateway would have nothing to ask about)."""
    body = {
        "moment": "A",
        "monitoring": {"afgesproken": True},
    }
    with pytest.raises(PermanentError) as refused:
        plan_of_notice(body, recipient_is_gi=False)
    assert refused.value.code is ErrorCode.SCHEMA_INVALID
    assert refused.value.rejection.pointer == "/body/veiligheidsvoorwaarden"
