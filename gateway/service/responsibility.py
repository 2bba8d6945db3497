"""The handover's effects on the store: the overdracht's lifecycle and the ledger.

Called inside the transaction that records the message that causes them, so
a confirmation and the ledger entry that moves the case are written
together or not at all. Every rule is the pure domain's
(`gateway.domain.handover`, `gateway.domain.ledger`); this module only
reads what the rules need and writes what they decide.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date, datetime
from typing import Any

from gateway.domain.calendar import WorkingDayCalendar
from gateway.domain.contracts import Role
from gateway.domain.deadlines import CONFIRMATION, VT_ANSWER
from gateway.domain.delivery import TimerKind
from gateway.domain.envelope import CaseRef, Envelope, format_timestamp
from gateway.domain.errors import ErrorCode, PermanentError
from gateway.domain.escalation import proposal_for_check
from gateway.domain.handover import (
    Moment,
    Overdracht,
    OverdrachtState,
    on_bounce,
    on_confirmation,
    on_deadline_passed,
    on_deferral,
    on_notice,
    on_receipt,
    on_undeliverable,
    on_withdrawal,
)
from gateway.domain.ledger import EntryDraft, decided_entry
from gateway.domain.monitoring import CheckState, on_request_sent, on_response, plan_of_notice
from gateway.service import case_deadlines, escalations, retention
from gateway.service.outgoing import Hub, build, send
from gateway.service.ports import StoredMessage, Timer, UnitOfWork


async def append(uow: UnitOfWork, draft: EntryDraft, vt: str) -> None:
    """Add the case's next ledger entry: decided now on the case's last (the case is held
    until the transaction ends), linked into the chain when the transaction commits."""
    await uow.ledger.hold([draft.case_ref])
    last = await uow.ledger.last_of(draft.case_ref)
    if last is not None and draft.at < last.at:  # instances' clocks differ a little
        draft = replace(draft, at=last.at)
    await uow.ledger.append(decided_entry(draft, case_last=last, vt=vt))


async def vt_sends(uow: UnitOfWork, message: StoredMessage, body: dict[str, Any], hub: Hub) -> None:
    """VT's own message: a case VT speaks of is VT's until handed over (§5, §8.1-§8.3).

    The first message about a case opens it in the ledger with VT as holder;
    an overdracht.notice starts a handover, a withdrawal ends it.
    """
    vt, calendar = hub.party, hub.calendar
    if message.case_ref is None or message.gemeente is None:
        return
    # §5.1: an overige zorgmelding is an advice, no dossier: it opens no case in the ledger.
    advice = message.type == "zorgmelding.forward"
    if not advice:
        await uow.ledger.hold([message.case_ref])  # two first messages of a case take turns
    opens_case = not advice and await uow.ledger.last_of(message.case_ref) is None
    await case_deadlines.vt_sends(
        uow, message, body, vt=vt, calendar=calendar, opens_case=opens_case
    )
    await retention.vt_sends(uow, message, body, calendar)
    if advice:
        return
    if opens_case:
        await append(
            uow,
            EntryDraft.veiligheidsbeoordeling(
                message.case_ref,
                message.gemeente,
                message.created_at,
                vt=vt,
                evidence={"message_id": message.id},
            ),
            vt,
        )
    if message.type == "overdracht.notice":
        plan_of_notice(body, recipient_is_gi=_is_gi(hub, message.recipient))  # §7.1, refused early
        overdracht = on_notice(
            id=message.id,
            case_ref=message.case_ref,
            gemeente=message.gemeente,
            moment=Moment(body["moment"]),
            recipient=message.recipient,
            advised_term=date.fromisoformat(body["geadviseerde_termijn"]["uiterlijk"]),
            at=message.created_at,
        )
        await uow.handovers.save(overdracht)
        await _set_deadline(uow, overdracht, vt, calendar)
    elif message.type == "overdracht.answer" and message.reply_to is not None:
        await _question_answered(
            uow, team=message.recipient, question_id=message.reply_to, at=message.created_at
        )
    elif message.type == "overdracht.withdrawal" and message.reply_to is not None:
        overdracht = await _overdracht(uow, message.reply_to)
        withdrawn = on_withdrawal(overdracht, message_id=message.id, at=message.created_at)
        await uow.handovers.save(withdrawn)
        await _clear_deadline(uow, withdrawn, vt, message.created_at)


async def partner_sends(
    uow: UnitOfWork,
    envelope: Envelope,
    *,
    digest: str,
    answered: StoredMessage | None,
    hub: Hub,
    at: datetime,
    opened_cases: set[str],
) -> None:
    """A partner's accepted message: its effect on the handover and the ledger.

    Raises PermanentError (INVALID_STATE, NOT_PERMITTED) when the handover's
    rules refuse it; the caller then refuses the message and writes nothing.
    `opened_cases` are the cases of the batch the ledger knows (read at once).
    """
    vt, calendar = hub.party, hub.calendar
    match envelope.type:
        case "receipt" if answered is not None and answered.type == "overdracht.notice":
            overdracht = await uow.handovers.get(answered.id)
            if overdracht is not None and not overdracht.state.final:
                await uow.handovers.save(
                    on_receipt(overdracht, sender=envelope.sender, message_id=envelope.id, at=at)
                )
        case "overdracht.confirmation" if answered is not None:
            overdracht = await _overdracht(uow, answered.id)
            confirmed = on_confirmation(
                overdracht, sender=envelope.sender, message_id=envelope.id, at=at
            )
            # The ledger's rules are checked before anything is written.
            await append(
                uow,
                EntryDraft.overdracht_bevestigd(
                    overdracht.case_ref,
                    overdracht.gemeente,
                    envelope.sender,
                    at,
                    overdracht_id=overdracht.id,
                    confirmation_id=envelope.id,
                    confirmation_digest=digest,
                ),
                vt,
            )
            await uow.handovers.save(confirmed)
            await _clear_deadline(uow, confirmed, vt, at)
            await _plan_monitoring(uow, hub, confirmed, at)
        case "overdracht.deferral" if answered is not None:
            overdracht = await _overdracht(uow, answered.id)
            deferred = on_deferral(
                overdracht,
                sender=envelope.sender,
                message_id=envelope.id,
                at=at,
                new_date=date.fromisoformat(envelope.body["nieuwe_datum"]),
                reason=str(envelope.body["beargumenteerd_besluit"]),
            )
            await uow.handovers.save(deferred)
            await _clear_deadline(uow, deferred, vt, at)
            await _set_deadline(uow, deferred, vt, calendar)
        case "overdracht.question" if answered is not None:
            await _question_asked(uow, envelope, calendar, at)
        case "enrichment.response" | "monitoring.response" if answered is not None:
            await _request_answered(uow, envelope, answered, at)
        case "case.return" | "regie.change" if (
            envelope.case is not None and envelope.case.ref not in opened_cases
        ):
            # A case the gateway never saw (handed over before it was in use, say):
            # the message is kept, but there is no chain of this case to extend.
            return
        case "case.return" if envelope.case is not None:
            await append(
                uow,
                EntryDraft.terug_naar_vt(
                    envelope.case.ref,
                    envelope.case.gemeente,
                    envelope.sender,
                    at,
                    message_id=envelope.id,
                    digest=digest,
                ),
                vt,
            )
        case "regie.change" if envelope.case is not None:
            new = envelope.body["nieuwe_regievoerder"]
            await append(
                uow,
                EntryDraft.regie_gewijzigd(
                    envelope.case.ref,
                    envelope.case.gemeente,
                    envelope.sender,
                    str(new.get("partij") or new["naam"]),
                    at,
                    message_id=envelope.id,
                    digest=digest,
                ),
                vt,
            )
        case _:
            return


async def undeliverable(uow: UnitOfWork, message: StoredMessage, at: datetime) -> None:
    """A notice that reached nobody: the handover is undeliverable, VT keeps the case."""
    if message.type != "overdracht.notice":
        return
    overdracht = await uow.handovers.get(message.id)
    if overdracht is not None and not overdracht.state.final:
        given_up = on_undeliverable(overdracht, message_id=message.id, at=at)
        await uow.handovers.save(given_up)
        await _clear_deadline(uow, given_up, message.sender, at)


async def bounced(uow: UnitOfWork, message: StoredMessage, at: datetime) -> None:
    """The mail with a notice bounced: the handover is undeliverable unless the team answered."""
    if message.type != "overdracht.notice":
        return
    overdracht = await uow.handovers.get(message.id)
    if overdracht is not None and overdracht.state in {
        OverdrachtState.NOTICE_SENT,
        OverdrachtState.DELIVERED,
    }:
        given_up = on_bounce(overdracht, message_id=message.id, at=at)
        await uow.handovers.save(given_up)
        await _clear_deadline(uow, given_up, message.sender, at)


# --- the confirmation deadline (§8.5 C) -------------------------------------------


def due_soon_alert(overdracht_id: str) -> str:
    return f"confirmation_due_soon:{overdracht_id}"


def overdue_alert(overdracht_id: str) -> str:
    return f"confirmation_overdue:{overdracht_id}"


_DEADLINE_TIMERS = (TimerKind.CONFIRMATION_WARNING, TimerKind.CONFIRMATION_DUE)


async def _set_deadline(
    uow: UnitOfWork, overdracht: Overdracht, vt: str, calendar: WorkingDayCalendar
) -> None:
    """Timers for the warning and the end of the term, with the rule that made them."""
    deadline = CONFIRMATION.deadline(overdracht.id, overdracht.deadline, calendar)
    rule = f"{CONFIRMATION.name}: {CONFIRMATION.description}"
    await uow.timers.schedule_many(
        [
            Timer(TimerKind.CONFIRMATION_WARNING, vt, overdracht.id, deadline.warn_at, rule),
            Timer(TimerKind.CONFIRMATION_DUE, vt, overdracht.id, deadline.due, rule),
        ]
    )


async def _clear_deadline(uow: UnitOfWork, overdracht: Overdracht, vt: str, at: datetime) -> None:
    """The term no longer runs (confirmed, deferred, withdrawn, undeliverable).

    Its timers are cancelled and its alerts closed.
    """
    alerts = (due_soon_alert(overdracht.id), overdue_alert(overdracht.id))
    await case_deadlines.stop_term(uow, vt, overdracht.id, _DEADLINE_TIMERS, alerts=alerts, at=at)


async def deadline_reached(uow: UnitOfWork, timer: Timer, now: datetime) -> None:
    """A confirmation term ends soon (warning) or has ended (negative evidence, one alert);
    VT's answer to a team's question, or a monitoring answer, is overdue (one alert);
    or one of VT's own terms or an enrichment answer is due (`case_deadlines`)."""
    if timer.kind is TimerKind.VT_ANSWER_DUE:
        await _answer_overdue(uow, timer, now)
        return
    if timer.kind is TimerKind.MONITORING_ANSWER_DUE:
        await _monitoring_answer_overdue(uow, timer, now)
        return
    if timer.kind not in _DEADLINE_TIMERS:
        await case_deadlines.deadline_reached(uow, timer, now)
        return
    overdracht = await uow.handovers.get(timer.subject_id)
    if overdracht is None or overdracht.state.final:
        return
    about = f"overdracht {overdracht.id} of case {overdracht.case_ref} to {overdracht.recipient}"
    if timer.kind is TimerKind.CONFIRMATION_WARNING:
        await uow.alerts.open(due_soon_alert(overdracht.id), f"{about}: term ends soon", now)
        return
    await uow.handovers.save(on_deadline_passed(overdracht, rule=timer.rule, at=now))
    await uow.alerts.close(due_soon_alert(overdracht.id), now)
    opened = await uow.alerts.open(
        overdue_alert(overdracht.id), f"{about}: not confirmed in time", now
    )
    if opened:  # §8.6: an overdue confirmation proposes route a, once
        await escalations.propose_for_overdue(uow, overdracht, now)


async def _overdracht(uow: UnitOfWork, overdracht_id: str) -> Overdracht:
    overdracht = await uow.handovers.get(overdracht_id)
    if overdracht is None:
        raise PermanentError(
            ErrorCode.UNKNOWN_THREAD, "reply_to names no overdracht of the gateway", "/reply_to"
        )
    return overdracht


# --- monitoring (§7.1) -------------------------------------------------------------

MONITORING_ANSWER_DAYS = 10  # working days to answer a monitoring request: our default


def _is_gi(hub: Hub, party: str) -> bool:
    contract = hub.verifier.contracts.get(party)
    return contract is not None and contract.role is Role.GI


async def _notice_body(uow: UnitOfWork, hub: Hub, overdracht_id: str) -> dict[str, Any]:
    notice = await uow.messages.get(hub.party, overdracht_id)
    if notice is None:
        return {}
    body: dict[str, Any] = json.loads(notice.raw)["body"]
    return body


async def _plan_monitoring(uow: UnitOfWork, hub: Hub, overdracht: Overdracht, at: datetime) -> None:
    """After the confirmation: a timer for each monitoring moment the rules of §7.1 give."""
    body = await _notice_body(uow, hub, overdracht.id)
    plan = plan_of_notice(body, recipient_is_gi=_is_gi(hub, overdracht.recipient))
    if not plan.afgesproken:
        return
    handed_over_on = hub.calendar.local_day(at)
    await uow.monitoring.save_many(
        plan.checks(
            overdracht_id=overdracht.id,
            case_ref=overdracht.case_ref,
            gemeente=overdracht.gemeente,
            recipient=overdracht.recipient,
            handed_over_on=handed_over_on,
        )
    )
    await uow.timers.schedule_many(
        [
            Timer(
                TimerKind.MONITORING_REQUEST,
                hub.party,
                overdracht.id,
                hub.calendar.opening(hub.calendar.next_working_day(day)),
                f"monitoring: §7.1 B, {months} months after the handover",
                attempt=months,
            )
            for months, day in zip(plan.months, plan.moments(handed_over_on), strict=True)
        ]
    )


async def request_monitoring(uow: UnitOfWork, hub: Hub, timer: Timer, now: datetime) -> None:
    """Ask the party holding the case how the safety conditions stand (§7.1 B, C)."""
    overdracht = await uow.handovers.get(timer.subject_id)
    if overdracht is None or overdracht.state is not OverdrachtState.CONFIRMED:
        return
    last = await uow.ledger.last_of(overdracht.case_ref)
    if last is None or last.holder in (None, hub.party):
        return  # back with VT, or closed: nobody to ask
    notice = await _notice_body(uow, hub, overdracht.id)
    moment = {3: "3_maanden", 12: "12_maanden"}.get(timer.attempt, "extra")
    answer_before = hub.calendar.closing(hub.calendar.add_working_days(now, MONITORING_ANSWER_DAYS))
    body: dict[str, Any] = {
        "moment": moment,
        "antwoord_voor": format_timestamp(answer_before),
        "veiligheidsvoorwaarden": notice["veiligheidsvoorwaarden"],
        "vt_contact": notice["vt_contact"],
    }
    if moment == "extra":
        body["toelichting"] = f"monitoring {timer.attempt} maanden na de overdracht"
    message = build(
        hub,
        message_type="monitoring.request",
        recipient=str(last.holder),
        body=body,
        now=now,
        case=CaseRef(overdracht.case_ref, overdracht.gemeente),
    )
    await send(uow, message, now)
    check = await uow.monitoring.get(overdracht.id, timer.attempt)
    if check is None or check.state is not CheckState.PLANNED:
        return
    asked = on_request_sent(
        check,
        message_id=message.id,
        at=now,
        answer_before=answer_before,
        recipient=message.recipient,
    )
    await uow.monitoring.save_many([asked])
    await uow.timers.schedule(
        Timer(
            TimerKind.MONITORING_ANSWER_DUE,
            hub.party,
            message.id,
            answer_before,
            f"monitoring_answer: §7.1 C, the party holding the case answers within "
            f"{MONITORING_ANSWER_DAYS} working days (the gateway's default)",
            attempt=timer.attempt,
        )
    )


async def _request_answered(
    uow: UnitOfWork, answer: Envelope, request: StoredMessage, at: datetime
) -> None:
    """A partner answers VT's request: the term it had to answer in stops running."""
    if answer.type == "enrichment.response" and request.type == "enrichment.request":
        await case_deadlines.enrichment_answered(uow, request, at)
    elif answer.type == "monitoring.response" and request.type == "monitoring.request":
        await _monitoring_answered(uow, answer, request, at)


def monitoring_overdue_alert(request_id: str) -> str:
    return f"monitoring_answer_overdue:{request_id}"


async def _monitoring_answered(
    uow: UnitOfWork, response: Envelope, request: StoredMessage, at: datetime
) -> None:
    """§7.1 C: the answer to a monitoring request, on time or late; once, by the party asked."""
    check = await uow.monitoring.by_request(request.id)
    if check is None:
        return  # an extra check VT asked for by hand: kept as a message only
    answered = on_response(check, sender=response.sender, message_id=response.id, at=at)
    await uow.monitoring.save_many([answered])
    alerts = (monitoring_overdue_alert(request.id),)
    kinds = (TimerKind.MONITORING_ANSWER_DUE,)
    await case_deadlines.stop_term(uow, request.sender, request.id, kinds, alerts=alerts, at=at)


async def _monitoring_answer_overdue(uow: UnitOfWork, timer: Timer, now: datetime) -> None:
    check = await uow.monitoring.by_request(timer.subject_id)
    if check is None:
        return
    escalation = proposal_for_check(check, now=now)
    if escalation is None:
        return
    detail = (
        f"monitoring request {timer.subject_id} of case {check.case_ref} to {check.recipient}: "
        "not answered in time"
    )
    if await uow.alerts.open(monitoring_overdue_alert(timer.subject_id), detail, now):
        await uow.escalations.add(escalation)  # §8.6: route a, once


# --- questions about a handover (§8.4) ---------------------------------------------


def answer_overdue_alert(question_id: str) -> str:
    return f"vt_answer_overdue:{question_id}"


async def _question_asked(
    uow: UnitOfWork, question: Envelope, calendar: WorkingDayCalendar, at: datetime
) -> None:
    """A team asks about a handover: VT's own answer deadline starts running."""
    deadline = VT_ANSWER.deadline(question.id, at, calendar)
    rule = f"{VT_ANSWER.name}: {VT_ANSWER.description}"
    await uow.timers.schedule(
        Timer(TimerKind.VT_ANSWER_DUE, question.sender, question.id, deadline.due, rule)
    )


async def _question_answered(uow: UnitOfWork, *, team: str, question_id: str, at: datetime) -> None:
    alerts = (answer_overdue_alert(question_id),)
    kinds = (TimerKind.VT_ANSWER_DUE,)
    await case_deadlines.stop_term(uow, team, question_id, kinds, alerts=alerts, at=at)


async def _answer_overdue(uow: UnitOfWork, timer: Timer, now: datetime) -> None:
    answers = await uow.messages.replies_to(timer.subject_id)
    if any(m.type == "overdracht.answer" for m in answers):
        return
    detail = f"question {timer.subject_id} of {timer.subject_sender}: VT has not answered in time"
    await uow.alerts.open(answer_overdue_alert(timer.subject_id), detail, now)
