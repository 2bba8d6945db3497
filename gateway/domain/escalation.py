"""The escalation model (§8.6, annex 4): when cooperation on a case stalls.

Criteria (annex 4 §3): the safety of a person or system is at risk, or the
agreements are not kept in a concrete case. The gateway proposes an
escalation when a handover's confirmation or a monitoring answer is overdue.

Three routes, one after another (§8.6; annex 4 §4):

    a  management: VT team leader with the coordinator of the sociaal wijkteam
    b  ambtelijk: the municipality's policy officer, who informs the alderman
    c  bestuurlijk: VT's director with the alderman

Each route ends in outcome I (a solution is found: closed, solved) or II (no
solution: on to the next route). II at route c ends the escalation unsolved:
the alderman decides the next step, with those involved. VT keeps track of
the escalations and their follow-up; repeated escalations point at a
structural problem (annex 4 §5).

Annex 4 letters its routes a, a, b where §8.6 says a, b, c; this module
follows §8.6. Annex 4 gives route a no outcomes by name ("if this gives no
adequate result, escalate along route b"): read as I and II like b and c.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from enum import StrEnum

from gateway.domain.errors import ErrorCode, PermanentError
from gateway.domain.handover import Overdracht, confirmation_overdue
from gateway.domain.monitoring import MonitoringCheck


class Route(StrEnum):
    """The three routes of escalation, in order."""

    MANAGEMENT = "a"
    AMBTELIJK = "b"
    BESTUURLIJK = "c"

    @property
    def participants(self) -> str:
        """Who meets on this route (annex 4 §4)."""
        return _PARTICIPANTS[self]

    @property
    def next(self) -> Route | None:
        """The route after this one on outcome II; None after c."""
        order = list(Route)
        index = order.index(self) + 1
        return order[index] if index < len(order) else None


_PARTICIPANTS = {
    Route.MANAGEMENT: "VT team leader with the coordinator of the sociaal wijkteam",
    Route.AMBTELIJK: "the municipality's policy officer, who informs the alderman",
    Route.BESTUURLIJK: "VT's director with the alderman",
}


class Outcome(StrEnum):
    """How a route ended (annex 4 §4)."""

    SOLVED = "I"  # a solution is found
    NOT_SOLVED = "II"  # no solution: the next route, or after c the alderman decides


class EscalationReason(StrEnum):
    """Why an escalation was opened (annex 4 §3, and the gateway's own overdue signals)."""

    SAFETY_AT_RISK = "veiligheid_in_gevaar"
    AGREEMENTS_NOT_KEPT = "afspraken_niet_nagekomen"
    CONFIRMATION_OVERDUE = "bevestiging_te_laat"  # §8.5 C: not picked up within the term
    MONITORING_ANSWER_OVERDUE = "monitoringantwoord_te_laat"  # §7.1 C: cooperation on monitoring


class EscalationState(StrEnum):
    OPEN = "open"
    SOLVED = "solved"  # outcome I on some route
    UNSOLVED = "unsolved"  # outcome II on route c: the alderman decides the next step

    @property
    def final(self) -> bool:
        return self is not EscalationState.OPEN


@dataclass(frozen=True, slots=True)
class EscalationStep:
    """One step of an escalation: a route opened (no outcome) or a route's outcome."""

    at: datetime
    route: Route
    by: str
    outcome: Outcome | None = None
    note: str = ""


@dataclass(frozen=True, slots=True)
class Escalation:
    """An escalation about one case with one party, with every step it took."""

    case_ref: str
    party: str
    reason: EscalationReason
    opened_at: datetime
    route: Route
    state: EscalationState
    history: tuple[EscalationStep, ...]

    @property
    def final(self) -> bool:
        return self.state.final


def propose(
    case_ref: str, party: str, reason: EscalationReason, at: datetime, *, by: str = "gateway"
) -> Escalation:
    """Open an escalation at route a (management), the first route (§8.6)."""
    return Escalation(
        case_ref=case_ref,
        party=party,
        reason=reason,
        opened_at=at,
        route=Route.MANAGEMENT,
        state=EscalationState.OPEN,
        history=(EscalationStep(at, Route.MANAGEMENT, by),),
    )


def record_outcome(
    escalation: Escalation, outcome: Outcome, *, by: str, at: datetime, note: str = ""
) -> Escalation:
    """The outcome of the current route: I closes it solved; II moves on, or after c ends it.

    An escalation that has ended takes no further outcome (INVALID_STATE).
    """
    if escalation.final:
        raise PermanentError(
            ErrorCode.INVALID_STATE, f"the escalation has ended ({escalation.state})"
        )
    steps = [EscalationStep(at, escalation.route, by, outcome, note)]
    if outcome is Outcome.SOLVED:
        return _with(escalation, steps, state=EscalationState.SOLVED)
    following = escalation.route.next
    if following is None:
        return _with(escalation, steps, state=EscalationState.UNSOLVED)
    steps.append(EscalationStep(at, following, by))
    return _with(escalation, steps, route=following)


def proposal_for_overdracht(
    overdracht: Overdracht, *, today: date, at: datetime
) -> Escalation | None:
    """Route a for a handover not confirmed by its deadline (§8.5 C), or None while in time."""
    if not confirmation_overdue(overdracht, today=today):
        return None
    return propose(
        overdracht.case_ref, overdracht.recipient, EscalationReason.CONFIRMATION_OVERDUE, at
    )


def proposal_for_check(check: MonitoringCheck, *, now: datetime) -> Escalation | None:
    """Route a for a monitoring answer not given in time (§7.1 C), or None while in time."""
    if not check.is_overdue(now):
        return None
    return propose(check.case_ref, check.recipient, EscalationReason.MONITORING_ANSWER_OVERDUE, now)


def structural_problems(
    escalations: Iterable[Escalation], *, within: timedelta, threshold: int, now: datetime
) -> list[str]:
    """Parties with at least `threshold` escalations opened in the `within` before `now`.

    Repeated escalation may point at a structural problem in the chain (annex 4 §5);
    the parties come sorted by id.
    """
    if threshold < 1 or within <= timedelta(0):
        raise ValueError("a structural problem needs a threshold of at least 1 and a period")
    since = now - within
    counts = Counter(e.party for e in escalations if since <= e.opened_at <= now)
    return sorted(party for party, count in counts.items() if count >= threshold)


def _with(
    escalation: Escalation,
    steps: list[EscalationStep],
    *,
    route: Route | None = None,
    state: EscalationState | None = None,
) -> Escalation:
    return replace(
        escalation,
        route=route or escalation.route,
        state=state or escalation.state,
        history=(*escalation.history, *steps),
    )
