"""What must have happened, from the world's plan alone (never from the gateway's store).

The model replays the plan with the agreement's rules as the world knows
them: a case is VT's from its first message; it moves to a party only on that
party's valid confirmation of an open handover; back to VT on a case.return;
a regie.change changes the regievoerder, not the holder. A confirmation term
ends at 17:00 local on the advised date (or a deferral's new date), the next
working day when that is none; an unconfirmed handover past it gets one
alert and escalation route a at that moment. Monitoring requests go out at
9:00 local on the first working day from 3 and 12 months after the
confirmation, to the party holding the case then, unless VT holds it.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from gateway.domain.escalation import EscalationReason, Outcome
from gateway.domain.report import COLUMNS
from tests.simulation import world as w
from tests.simulation.driver import escalation_steps, monitoring_answer_at, monitoring_plan

QUARTERS = ("2026Q1", "2026Q2", "2026Q3", "2026Q4", "2027Q1")
COUNTED = [c for c in COLUMNS if c not in {"gemeente", "naam"}]
CONFIRMATION_REASON = EscalationReason.CONFIRMATION_OVERDUE.value
MONITORING_REASON = EscalationReason.MONITORING_ANSWER_OVERDUE.value


def quarter_of(moment: datetime) -> str:
    day = moment.astimezone(w.ZONE)
    return f"{day.year}Q{(day.month - 1) // 3 + 1}"


def utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class ExpectedEscalation:
    case_ref: str
    party: str
    gemeente: str
    reason: str
    opened_at: datetime
    outcomes: tuple[tuple[datetime, Outcome], ...]  # recorded before the end

    @property
    def route(self) -> str:
        route = "a"
        for _, outcome in self.outcomes:
            if outcome is Outcome.SOLVED:
                break
            route = {"a": "b", "b": "c", "c": "c"}[route]
        return route

    @property
    def state(self) -> str:
        not_solved = 0
        for _, outcome in self.outcomes:
            if outcome is Outcome.SOLVED:
                return "solved"
            not_solved += 1
        return "unsolved" if not_solved == 3 else "open"


@dataclass
class Model:
    end: datetime
    timelines: dict[str, list[tuple[datetime, str | None, str | None]]] = field(
        default_factory=dict
    )
    overdue: dict[str, datetime] = field(default_factory=dict)  # handover key -> due
    overdue_closed: dict[str, bool] = field(default_factory=dict)
    escalations: dict[tuple[str, str, str, datetime], ExpectedEscalation] = field(
        default_factory=dict
    )
    monitoring_overdue: int = 0
    refusals: dict[tuple[str, str], str] = field(default_factory=dict)
    monitoring_requests: list[tuple[str, str, str, datetime]] = field(default_factory=list)
    unanswered_questions: dict[str, datetime] = field(default_factory=dict)
    rows: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)
    handovers: dict[str, str] = field(default_factory=dict)  # key -> outcome, for the summary
    informing: list[tuple[str, str, str]] = field(default_factory=list)

    def happens(self, moment: datetime | None) -> bool:
        """Whether a planned moment lies within the simulated year."""
        return moment is not None and utc(moment) <= self.end

    def escalate(self, escalation: ExpectedEscalation) -> None:
        e = escalation
        self.escalations[(e.case_ref, e.party, e.reason, e.opened_at)] = e
        row = self.rows[quarter_of(e.opened_at)][e.gemeente]
        row[f"escalaties_route_{e.route}"] += 1

    def holder_at(self, ref: str, moment: datetime) -> str | None:
        timeline = self.timelines.get(ref, [])
        index = bisect.bisect_right([at for at, _, _ in timeline], moment)
        return timeline[index - 1][1] if index else None

    def holder(self, ref: str) -> str | None:
        timeline = self.timelines.get(ref, [])
        return timeline[-1][1] if timeline else None

    def regievoerder(self, ref: str) -> str | None:
        timeline = self.timelines.get(ref, [])
        return timeline[-1][2] if timeline else None


def due_of(day: date) -> datetime:
    return utc(w.closing(w.next_working_day(day)))


def expect(world: w.World, gemeenten: dict[str, str]) -> Model:
    """The model of the world's year, up to its end."""
    model = Model(utc(world.end))
    model.rows = {q: {g: dict.fromkeys(COUNTED, 0) for g in gemeenten} for q in QUARTERS}
    for report in world.reports:
        events: list[tuple[datetime, str | None, str | None]] = []
        if report.kind is w.Kind.ZORGMELDING:  # §5.1: an advice, no dossier, no ledger case
            model.informing.append((report.ref, "zorgmelding.forward", w.POLICE[report.gemeente]))
        else:
            events.append((utc(report.received), w.VT, w.VT))
        if report.closed is not None and model.happens(report.closed[0]):
            events.append((utc(report.closed[0]), None, None))  # closed: nobody holds it
        for plan in report.handovers:
            if model.happens(plan.notice_at):
                events += _handover(model, report, plan)
        events.sort(key=lambda e: e[0])
        model.timelines[report.ref] = events
        for plan in report.handovers:
            _monitoring(model, report, plan)
    return model


def _handover(
    model: Model, report: w.Report, plan: w.Handover
) -> list[tuple[datetime, str | None, str | None]]:
    """One handover's counts, deadline, refusals and question; the ledger events it causes."""
    if plan.recipient != report.team:
        model.informing.append((report.ref, "case.notice", report.team))
    row = model.rows[quarter_of(plan.notice_at)][report.gemeente]
    row[f"overdrachten_{plan.moment.lower()}"] += 1
    deferred = model.happens(plan.deferral_at)
    if deferred:
        row["uitgesteld"] += 1
    withdrawn = plan.withdraw_at if model.happens(plan.withdraw_at) else None
    confirmed = plan.confirm_at if model.happens(plan.confirm_at) else None
    if confirmed is not None and withdrawn is not None and withdrawn < confirmed:
        confirmed = None
    events = []
    due = due_of(plan.deferred_to if deferred and plan.deferred_to else plan.advised)
    if confirmed is not None:
        within = utc(confirmed) <= due  # §8.5 C: the advised term, or a deferral's new date
        row["bevestigd_binnen_termijn" if within else "bevestigd_te_laat"] += 1
        model.handovers[plan.key] = "confirmed in time" if within else "confirmed late"
        events.append((utc(confirmed), plan.recipient, plan.recipient))
        if plan.regie_change_at is not None and model.happens(plan.regie_change_at):
            events.append((utc(plan.regie_change_at), plan.recipient, "moviera"))
        if plan.return_at is not None and model.happens(plan.return_at):
            events.append((utc(plan.return_at), w.VT, w.VT))
    elif withdrawn is not None:
        row["ingetrokken"] += 1
        model.handovers[plan.key] = "withdrawn"
    else:
        row["nog_open"] += 1
        model.handovers[plan.key] = "still open"
    ended = min((utc(m) for m in (confirmed, withdrawn) if m is not None), default=None)
    if due <= model.end and (ended is None or ended > due):
        model.overdue[plan.key] = due
        model.overdue_closed[plan.key] = ended is not None
        steps = tuple((at, o) for at, o in escalation_steps(due, plan) if at <= model.end)
        model.escalate(
            ExpectedEscalation(
                report.ref, plan.recipient, report.gemeente, CONFIRMATION_REASON, due, steps
            )
        )
    for label, moment, code in (
        ("forged", plan.forged_at, "SIGNATURE_INVALID"),
        ("foreign", plan.foreign[1] if plan.foreign else None, "UNKNOWN_THREAD"),
        ("after_withdrawal", plan.confirm_after_withdrawal_at, "INVALID_STATE"),
    ):
        if model.happens(moment):
            model.refusals[(plan.key, label)] = code
    _question(model, plan)
    return events


def _question(model: Model, plan: w.Handover) -> None:
    """§8.4: a question VT leaves past its answer deadline (one working day) gets an alert."""
    if plan.question is None or not model.happens(plan.question[0]):
        return
    asked, answered = plan.question
    local = asked.astimezone(w.ZONE)
    answer_due = utc(w.local(w.add_working_days(local.date(), 1), local.hour, local.minute))
    if answer_due <= model.end and (answered is None or utc(answered) > answer_due):
        model.unanswered_questions[plan.key] = answer_due


def _monitoring(model: Model, report: w.Report, plan: w.Handover) -> None:
    """The monitoring requests of a confirmed handover: to whoever holds the case then."""
    confirmed_at = plan.confirm_at
    if not plan.monitoring or confirmed_at is None or not model.happens(confirmed_at):
        return
    if plan.withdraw_at is not None and plan.withdraw_at < confirmed_at:
        return
    for months, moment in ((3, "3_maanden"), (12, "12_maanden")):
        day = w.add_months(confirmed_at.astimezone(w.ZONE).date(), months)
        at = utc(w.local(w.next_working_day(day), 9))
        holder = model.holder_at(report.ref, at)
        if at > model.end or holder in (None, w.VT):
            continue
        model.monitoring_requests.append((report.ref, str(holder), moment, at))
        _monitoring_check(model, report, str(holder), months, at)


def _monitoring_check(
    model: Model, report: w.Report, holder: str, months: int, at: datetime
) -> None:
    """A monitoring request at `at`: its answer (on time, late, none) and its escalation."""
    answer_before = utc(w.closing(w.add_working_days(at.astimezone(w.ZONE).date(), 10)))
    plan = monitoring_plan(report, holder)
    delays = plan.monitoring_answers if plan is not None else (None, None)
    delay = delays[0] if months == 3 else delays[1]
    answered = monitoring_answer_at(at, delay) if delay is not None else None
    if answered is not None and answered > model.end:
        answered = None
    row = model.rows[quarter_of(at)][report.gemeente]
    if answered is None:
        row[f"monitoring_{months}_open"] += 1
    else:
        row[f"monitoring_{months}_{'op_tijd' if answered < answer_before else 'te_laat'}"] += 1
    if answer_before <= model.end and (answered is None or answered >= answer_before):
        model.monitoring_overdue += 1
        steps: tuple[tuple[datetime, Outcome], ...] = ()
        if plan is not None:
            steps = tuple(
                (when, outcome)
                for when, outcome in escalation_steps(answer_before, plan)
                if when <= model.end
            )
        model.escalate(
            ExpectedEscalation(
                report.ref, holder, report.gemeente, MONITORING_REASON, answer_before, steps
            )
        )
