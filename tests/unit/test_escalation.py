"""The escalation model: routes a, b, c, outcomes I and II, structural problems (§8.6, annex 4)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from gateway.domain.errors import ErrorCode, PermanentError
from gateway.domain.escalation import (
    Escalation,
    EscalationReason,
    EscalationState,
    Outcome,
    Route,
    proposal_for_check,
    proposal_for_overdracht,
    propose,
    record_outcome,
    structural_problems,
)
from gateway.domain.handover import Moment, on_confirmation, on_notice
from gateway.domain.monitoring import MonitoringCheck, on_request_sent

T0 = datetime(2026, 5, 4, 10, 0, tzinfo=UTC)
TEAM = "lt-tiel"


def later(days: int) -> datetime:
    return T0 + timedelta(days=days)


def opened(party: str = TEAM, at: datetime = T0) -> Escalation:
    return propose("VT-2026-00042", party, EscalationReason.AGREEMENTS_NOT_KEPT, at)


def not_solved(escalation: Escalation, days: int) -> Escalation:
    return record_outcome(escalation, Outcome.NOT_SOLVED, by="u-17", at=later(days), note="stuck")


def test_an_escalation_starts_at_route_a() -> None:
    """§8.6: the first route is management: VT team leader with the wijkteam coordinator."""
    escalation = opened()
    assert escalation.route is Route.MANAGEMENT
    assert escalation.state is EscalationState.OPEN
    assert "team leader" in escalation.route.participants
    assert [(s.route, s.outcome) for s in escalation.history] == [(Route.MANAGEMENT, None)]


def test_outcome_i_closes_it_solved() -> None:
    """Annex 4 §4, outcome I: a solution is found."""
    escalation = record_outcome(
        opened(), Outcome.SOLVED, by="u-17", at=later(2), note="team starts"
    )
    assert escalation.state is EscalationState.SOLVED
    assert escalation.final
    assert escalation.route is Route.MANAGEMENT
    assert escalation.history[-1].note == "team starts"


def test_outcome_ii_at_a_goes_to_b() -> None:
    """Annex 4 §4: no adequate result at route a: escalate along route b (ambtelijk)."""
    escalation = not_solved(opened(), 2)
    assert escalation.route is Route.AMBTELIJK
    assert escalation.state is EscalationState.OPEN
    assert "policy officer" in escalation.route.participants


def test_outcome_ii_at_b_goes_to_c() -> None:
    """Annex 4 §4, route b outcome II: escalate bestuurlijk, VT director with the alderman."""
    escalation = not_solved(not_solved(opened(), 2), 9)
    assert escalation.route is Route.BESTUURLIJK
    assert escalation.state is EscalationState.OPEN


def test_outcome_ii_at_c_ends_unsolved() -> None:
    """Annex 4 §4, route c outcome II: the alderman decides the next step."""
    escalation = not_solved(not_solved(not_solved(opened(), 2), 9), 20)
    assert escalation.state is EscalationState.UNSOLVED
    assert escalation.final
    assert Route.BESTUURLIJK.next is None


def test_every_step_is_kept_in_history() -> None:
    """§8.6: VT keeps track of the escalations and their follow-up."""
    escalation = record_outcome(not_solved(opened(), 2), Outcome.SOLVED, by="u-3", at=later(9))
    assert [(s.route, s.outcome, s.at) for s in escalation.history] == [
        (Route.MANAGEMENT, None, T0),
        (Route.MANAGEMENT, Outcome.NOT_SOLVED, later(2)),
        (Route.AMBTELIJK, None, later(2)),
        (Route.AMBTELIJK, Outcome.SOLVED, later(9)),
    ]
    assert escalation.history[-1].by == "u-3"


def test_an_ended_escalation_takes_no_further_outcome() -> None:
    """An outcome after the end is INVALID_STATE."""
    solved = record_outcome(opened(), Outcome.SOLVED, by="u-17", at=later(2))
    with pytest.raises(PermanentError) as excinfo:
        record_outcome(solved, Outcome.NOT_SOLVED, by="u-17", at=later(3))
    assert excinfo.value.code is ErrorCode.INVALID_STATE


def test_an_overdue_confirmation_proposes_route_a() -> None:
    """§8.5 C: a handover not confirmed by its term proposes an escalation with its recipient."""
    overdracht = on_notice(
        id="n1",
        case_ref="VT-2026-00042",
        gemeente="GM0281",
        moment=Moment.B,
        recipient=TEAM,
        advised_term=date(2026, 5, 11),
        at=T0,
    )
    assert proposal_for_overdracht(overdracht, today=date(2026, 5, 11), at=later(7)) is None
    escalation = proposal_for_overdracht(overdracht, today=date(2026, 5, 12), at=later(8))
    assert escalation is not None
    assert (escalation.party, escalation.route) == (TEAM, Route.MANAGEMENT)
    assert escalation.reason is EscalationReason.CONFIRMATION_OVERDUE
    confirmed = on_confirmation(overdracht, sender=TEAM, message_id="c1", at=later(8))
    assert proposal_for_overdracht(confirmed, today=date(2026, 6, 1), at=later(28)) is None


def test_an_overdue_monitoring_answer_proposes_route_a() -> None:
    """§7.1 C: the team cooperates with monitoring; a missing answer proposes route a."""
    check = on_request_sent(
        MonitoringCheck("o1", "VT-2026-00042", "GM0281", TEAM, date(2026, 5, 4), 3),
        message_id="m1",
        at=T0,
        answer_before=later(10),
    )
    assert proposal_for_check(check, now=later(9)) is None
    escalation = proposal_for_check(check, now=later(10))
    assert escalation is not None
    assert escalation.reason is EscalationReason.MONITORING_ANSWER_OVERDUE
    assert escalation.route is Route.MANAGEMENT


def test_structural_flag_at_the_threshold() -> None:
    """Annex 4 §5: repeated escalations with one party point at a structural problem."""
    escalations = [opened(TEAM, later(d)) for d in (0, 10, 20)] + [opened("lt-druten", later(5))]
    now = later(30)
    assert structural_problems(escalations, within=timedelta(days=90), threshold=3, now=now) == [
        TEAM
    ]
    assert structural_problems(escalations, within=timedelta(days=90), threshold=4, now=now) == []


def test_only_escalations_within_the_period_count() -> None:
    """Annex 4 §5: the flag looks at the recent period only."""
    escalations = [opened(TEAM, later(d)) for d in (0, 10, 20)]
    assert (
        structural_problems(escalations, within=timedelta(days=15), threshold=3, now=later(25))
        == []
    )


def test_a_structural_flag_needs_a_threshold_and_a_period() -> None:
    """A threshold below 1 or an empty period flags nothing meaningful: refused."""
    with pytest.raises(ValueError, match="threshold"):
        structural_problems([], within=timedelta(days=1), threshold=0, now=T0)
