"""VT's own terms for a case and the partners' enrichment answers: timers, warnings, alerts.

Every term is a pair of timers with the rule that made it: a warning (one
"due soon" alert) and the end (one "overdue" alert, the negative evidence
that the term was not kept). Doing the deed cancels both and closes the
alerts. Which message starts and ends which term is the pure domain's
(`gateway.domain.case_terms`); this module reads and writes the store.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from gateway.domain.calendar import WorkingDayCalendar
from gateway.domain.case_terms import CASE_RULES, parse_subject, subject, terms_ended, terms_started
from gateway.domain.deadlines import ENRICHMENT_ANSWER, DeadlineRule, earlier
from gateway.domain.delivery import TimerKind
from gateway.domain.envelope import format_timestamp, parse_timestamp
from gateway.service.ports import StoredMessage, Timer, UnitOfWork

_CASE_TIMERS = (TimerKind.CASE_DEADLINE_WARNING, TimerKind.CASE_DEADLINE_DUE)
_ENRICHMENT_TIMERS = (TimerKind.ENRICHMENT_WARNING, TimerKind.ENRICHMENT_DUE)


def case_due_soon_alert(rule: DeadlineRule, case_ref: str) -> str:
    return f"case_due_soon:{subject(rule, case_ref)}"


def case_overdue_alert(rule: DeadlineRule, case_ref: str) -> str:
    return f"case_overdue:{subject(rule, case_ref)}"


def enrichment_due_soon_alert(request_id: str) -> str:
    return f"enrichment_due_soon:{request_id}"


def enrichment_overdue_alert(request_id: str) -> str:
    return f"enrichment_overdue:{request_id}"


async def vt_sends(
    uow: UnitOfWork,
    message: StoredMessage,
    body: Mapping[str, Any],
    *,
    vt: str,
    calendar: WorkingDayCalendar,
    opens_case: bool,
) -> None:
    """VT's message ends the terms whose deed it is, starts the terms it begins."""
    case_ref, at = message.case_ref, message.created_at
    if case_ref is None:
        return
    for rule in terms_ended(message.type, body):
        await _end_case_term(uow, vt, rule, case_ref, at)
    for started in terms_started(message.type, body, sent_at=at, opens_case=opens_case):
        name = subject(started.rule, case_ref)
        if any(t.kind in _CASE_TIMERS for t in await uow.timers.pending(vt, name)):
            continue  # one term per case and rule: a fan-out sends the notice more than once
        deadline = started.rule.deadline(name, started.start, calendar)
        rule_text = f"{started.rule.name}: {started.rule.description}"
        await uow.timers.schedule_many(
            [
                Timer(TimerKind.CASE_DEADLINE_WARNING, vt, name, deadline.warn_at, rule_text),
                Timer(TimerKind.CASE_DEADLINE_DUE, vt, name, deadline.due, rule_text),
            ]
        )
    if message.type == "enrichment.request":
        due = parse_timestamp(str(body["antwoord_voor"]))
        warn_at = min(due, earlier(calendar, due, ENRICHMENT_ANSWER.warn_before))
        rule_text = (
            f"{ENRICHMENT_ANSWER.name}: the answer is due at the request's antwoord_voor "
            f"({format_timestamp(due)}); {ENRICHMENT_ANSWER.description}"
        )
        await uow.timers.schedule_many(
            [
                Timer(TimerKind.ENRICHMENT_WARNING, vt, message.id, warn_at, rule_text),
                Timer(TimerKind.ENRICHMENT_DUE, vt, message.id, due, rule_text),
            ]
        )


async def enrichment_answered(uow: UnitOfWork, request: StoredMessage, at: datetime) -> None:
    """A partner's enrichment.response: its request's timers stop, its alerts close."""
    alerts = (enrichment_due_soon_alert(request.id), enrichment_overdue_alert(request.id))
    await stop_term(uow, request.sender, request.id, _ENRICHMENT_TIMERS, alerts=alerts, at=at)


async def deadline_reached(uow: UnitOfWork, timer: Timer, now: datetime) -> None:
    """A term ends soon (one warning alert) or has ended (one overdue alert)."""
    if timer.kind in _ENRICHMENT_TIMERS:
        await _enrichment_deadline(uow, timer, now)
        return
    parsed = parse_subject(timer.subject_id)
    if parsed is None:
        return
    rule, case_ref = parsed
    about = f"{rule.name} of case {case_ref}"
    if timer.kind is TimerKind.CASE_DEADLINE_WARNING:
        await uow.alerts.open(case_due_soon_alert(rule, case_ref), f"{about}: ends soon", now)
        return
    await uow.alerts.close(case_due_soon_alert(rule, case_ref), now)
    await uow.alerts.open(
        case_overdue_alert(rule, case_ref), f"{about}: term ended ({timer.rule})", now
    )


async def _enrichment_deadline(uow: UnitOfWork, timer: Timer, now: datetime) -> None:
    request = await uow.messages.get(timer.subject_sender, timer.subject_id)
    if request is None:
        return
    answers = await uow.messages.replies_to(request.id)
    if any(m.type == "enrichment.response" and m.sender == request.recipient for m in answers):
        return
    about = f"enrichment request {request.id} of case {request.case_ref} to {request.recipient}"
    if timer.kind is TimerKind.ENRICHMENT_WARNING:
        await uow.alerts.open(enrichment_due_soon_alert(request.id), f"{about}: due soon", now)
        return
    await uow.alerts.close(enrichment_due_soon_alert(request.id), now)
    await uow.alerts.open(enrichment_overdue_alert(request.id), f"{about}: not answered", now)


async def _end_case_term(
    uow: UnitOfWork, vt: str, rule: DeadlineRule, case_ref: str, at: datetime
) -> None:
    alerts = (case_due_soon_alert(rule, case_ref), case_overdue_alert(rule, case_ref))
    await stop_term(uow, vt, subject(rule, case_ref), _CASE_TIMERS, alerts=alerts, at=at)


async def stop_term(
    uow: UnitOfWork,
    sender: str,
    subject_id: str,
    kinds: tuple[TimerKind, ...],
    *,
    alerts: tuple[str, ...],
    at: datetime,
) -> None:
    """A term's deed is done: its timers (of these kinds, about this subject) are cancelled
    and its alerts closed. Every term of the gateway ends this way."""
    for kind in kinds:
        await uow.timers.cancel(kind, sender, subject_id, at)
    for key in alerts:
        await uow.alerts.close(key, at)


async def end_terms(uow: UnitOfWork, vt: str, case_ref: str, at: datetime) -> None:
    """Every one of VT's own terms for the case stops: timers cancelled, alerts closed."""
    for rule in CASE_RULES.values():
        await _end_case_term(uow, vt, rule, case_ref, at)
