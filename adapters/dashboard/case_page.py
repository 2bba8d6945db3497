"""The case page: every handover of a case with its evidence, the ledger, deadlines, escalations.

Read through the service layer's views and ports; no message body is ever
read or shown (the receipt's digest is the receipt body's only member read,
by `message_view`). Actions appear only for a role that may act.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from adapters.dashboard.ops_queries import MonitoringDecision, monitoring_decisions
from adapters.dashboard.render import MOUNT, csrf_field, day_text, esc, moment_text
from adapters.dashboard.urgency import confirmation_deadline
from adapters.store.sql import SqlStore
from adapters.store.tables import escalations as escalation_rows
from gateway.domain.deadlines import AGREED_RULES, CONFIRMATION, DeadlineState, deadline_state
from gateway.domain.delivery import Status, TimerKind, expects_receipt
from gateway.domain.envelope import parse_timestamp
from gateway.domain.escalation import Escalation, Outcome
from gateway.domain.handover import Overdracht, OverdrachtState
from gateway.service.outgoing import Hub
from gateway.service.ports import Timer
from gateway.service.views import MessageView, case_view, message_view

WITHDRAWAL_REASONS = (
    ("onjuiste_ontvanger", "onjuiste ontvanger"),
    ("onjuiste_gegevens", "onjuiste gegevens (correctie volgt)"),
    ("vervolg_door_veilig_thuis", "vervolg door Veilig Thuis"),
    ("overdracht_aan_andere_partij", "overdracht aan andere partij"),
    ("anders", "anders (toelichting verplicht)"),
)

STATE_WORDS = {
    "notice_sent": "verstuurd",
    "delivered": "ontvangen",
    "deferred": "uitgesteld",
    "confirmed": "bevestigd",
    "withdrawn": "ingetrokken",
    "undeliverable": "onbestelbaar",
}

URGENCY_WORDS = {
    DeadlineState.OVERDUE: "Te laat",
    DeadlineState.WARNING: "Bijna",
    DeadlineState.OK: "Op tijd",
}

# Evidence shown as it is: ids, parties, dates, digests; never a free text (a deferral's reasons).
_SHOWN_EVIDENCE = (
    "message_id",
    "sender",
    "new_date",
    "deadline_passed",
    "broker",
    "exchange",
    "routing_key",
    "transport",
    "smtp",
    "mailed_to",
    "digest",
    "receipt_id",
    "error_id",
    "code",
    "overdracht_id",
    "confirmation_id",
    "notice_id",
    "resent_by",
    "via",
)

NO_MONITORING_REASONS = (
    ("verhuisd_buiten_regio", "gezin verhuisd buiten de regio"),
    ("monitoring_elders_belegd", "monitoring elders belegd (andere VT-regio, GI)"),
    ("anders", "anders"),
)
"""§7.1: any decision not to monitor but the agreed ones needs a recorded, well-founded reason."""


@dataclass(frozen=True, slots=True)
class HandoverFacts:
    overdracht: Overdracht
    notice: MessageView | None
    timers: Sequence[Timer]


@dataclass(frozen=True, slots=True)
class CaseFacts:
    view: Mapping[str, Any]
    handovers: Sequence[HandoverFacts]
    escalations: Sequence[tuple[int, Escalation]]
    decisions: Sequence[MonitoringDecision] = ()


async def case_facts(store: SqlStore, hub: Hub, case_ref: str) -> CaseFacts | None:
    """Everything the case page shows, or None when the gateway never saw the case."""
    view = await case_view(store, case_ref)
    if view is None:
        return None
    async with store.connection() as db:
        numbers = list(
            (
                await db.execute(
                    select(escalation_rows.c.number)
                    .where(escalation_rows.c.case_ref == case_ref)
                    .order_by(escalation_rows.c.number)
                )
            ).scalars()
        )
    handovers: list[HandoverFacts] = []
    found: list[tuple[int, Escalation]] = []
    async with store.transaction() as uow:
        overdrachten = await uow.handovers.of_case(case_ref)
        timers = {o.id: await uow.timers.pending(hub.party, o.id) for o in overdrachten}
        for number in numbers:
            escalation = await uow.escalations.get(int(number))
            if escalation is not None:
                found.append((int(number), escalation))
    for o in overdrachten:
        notice = await message_view(store, o.id, hub.party)
        handovers.append(HandoverFacts(o, notice, timers[o.id]))
    async with store.connection() as db:
        decisions = await monitoring_decisions(db, case_ref)
    return CaseFacts(view, handovers, found, decisions)


def render_case(facts: CaseFacts, hub: Hub, now: datetime, *, may_act: bool, csrf: str) -> str:
    view = facts.view
    parts = [
        '<div class="box">',
        f"<p>Houder nu: <b>{esc(view['holder'])}</b>"
        f" · regievoerder: <b>{esc(view['regievoerder'] or '-')}</b></p>",
        "</div>",
    ]
    if not facts.handovers:
        parts.append('<p class="muted">Geen overdrachten in deze zaak.</p>')
    for handover in facts.handovers:
        decided = [d for d in facts.decisions if d.overdracht_id == handover.overdracht.id]
        parts.append(
            _handover(
                handover,
                facts.view["case_ref"],
                hub,
                now,
                may_act=may_act,
                csrf=csrf,
                decisions=decided,
            )
        )
    parts.append(_escalations(facts.escalations, facts.view["case_ref"], may_act, csrf))
    parts.append(_ledger(view["ledger"]))
    return "\n".join(parts)


def _handover(
    handover: HandoverFacts,
    case_ref: str,
    hub: Hub,
    now: datetime,
    *,
    may_act: bool,
    csrf: str,
    decisions: Sequence[MonitoringDecision] = (),
) -> str:
    o = handover.overdracht
    deadline = confirmation_deadline(o.id, o.deadline, hub.calendar)
    stand = deadline_state(deadline, now)
    state_class = stand.value if not o.state.final else "final"
    title = (
        f"Overdracht moment {esc(o.moment.value)} aan {esc(o.recipient)} · "
        f"{esc(STATE_WORDS.get(o.state.value, o.state.value))}"
    )
    deadline_line = (
        f"Bevestigen uiterlijk <b>{esc(moment_text(deadline.due))}</b>"
        + (f" (uitgesteld naar {esc(day_text(o.deadline))})" if o.deferred_to else "")
        + (
            f' · <span class="stand-{state_class}">{esc(URGENCY_WORDS[stand])}</span>'
            if not o.state.final
            else ""
        )
    )
    parts = [
        f'<section class="box handover" id="o-{esc(o.id)}" data-state="{esc(o.state.value)}">',
        f"<h2>{title}</h2>",
        f'<p class="muted mono">overdracht {esc(o.id)} · gemeente {esc(o.gemeente)}</p>',
        f"<p>{deadline_line}</p>",
        _levels(handover),
        _history(o),
        _deadlines(handover, deadline.due, o),
    ]
    parts.append(_monitoring(handover, decisions))
    if may_act and not o.state.final:
        parts.append(_withdraw_form(case_ref, o, csrf))
    if may_act and resendable(handover.notice):
        parts.append(_resend_form(case_ref, handover, csrf))
    if may_act and monitoring_planned(handover):
        parts.append(_no_monitoring_form(case_ref, o, csrf))
    parts.append("</section>")
    return "\n".join(parts)


def _levels(handover: HandoverFacts) -> str:
    """The three acknowledgement levels: sent (broker or SMTP), delivered (receipt), confirmed."""
    notice = handover.notice
    o = handover.overdracht
    sent = [t for t in (notice.timeline if notice else []) if t["status"] == "sent"]
    receipts = [a for a in (notice.answers if notice else []) if a["type"] == "receipt"]
    confirmations = [t for t in o.history if t.state is OverdrachtState.CONFIRMED]
    digest = notice.message.digest if notice else ""

    if sent:
        evidence = sent[-1]["evidence"]
        how = (
            "mailserver accepteerde"
            if evidence.get("transport") == "email"
            else "broker bevestigde"
        )
        level1 = (
            f"<p>{esc(how)} · {esc(moment_text(parse_timestamp(sent[0]['at'])))}"
            f"{' · ' + str(len(sent)) + ' pogingen' if len(sent) > 1 else ''}</p>"
            f'<p class="muted">{_evidence(evidence)}</p>'
        )
    else:
        level1 = '<p class="muted">nog niet verzonden</p>'
    if receipts:
        receipt = receipts[0]
        matches = receipt.get("digest") == digest
        level2 = (
            f"<p>ontvangstbevestiging van {esc(receipt['sender'])} · "
            f"{esc(moment_text(parse_timestamp(receipt['sent_at'])))}</p>"
            f'<p class="muted mono">digest {esc(receipt.get("digest", ""))[:23]}… '
            + ('<span class="ok">klopt</span>' if matches else '<span class="bad">wijkt af</span>')
            + "</p>"
        )
    else:
        level2 = '<p class="muted">nog geen ontvangstbevestiging</p>'
    if confirmations:
        step = confirmations[0]
        level3 = (
            f"<p>bevestigd door {esc(step.evidence.get('sender', o.recipient))} · "
            f"{esc(moment_text(step.at))}</p>"
            f'<p class="muted mono">bericht {esc(step.evidence.get("message_id", ""))}</p>'
        )
    else:
        level3 = '<p class="muted">nog niet bevestigd</p>'

    def level(done: bool, name: str, content: str, key: str) -> str:
        return (
            f'<div class="level{" done" if done else ""}" data-level="{key}">'
            f"<h4>{'✓ ' if done else ''}{esc(name)}</h4>{content}</div>"
        )

    return (
        '<div class="levels">'
        + level(bool(sent), "1 · Verzonden", level1, "sent")
        + level(bool(receipts), "2 · Ontvangen", level2, "delivered")
        + level(bool(confirmations), "3 · Bevestigd", level3, "confirmed")
        + "</div>"
    )


def _history(o: Overdracht) -> str:
    rows = "".join(
        f"<tr><td>{esc(moment_text(t.at))}</td>"
        f"<td>{esc(STATE_WORDS.get(t.state.value, t.state.value))}</td>"
        f'<td class="muted">{_evidence(t.evidence)}</td></tr>'
        for t in o.history
    )
    return (
        "<h3>Verloop</h3><table><thead><tr><th>Wanneer</th><th>Stand</th><th>Bewijs</th></tr>"
        f"</thead><tbody>{rows}</tbody></table>"
    )


def _deadlines(handover: HandoverFacts, due: datetime, o: Overdracht) -> str:
    rows = []
    if not o.state.final:
        rows.append(
            f"<tr><td>{esc(moment_text(due))}</td><td>{esc(CONFIRMATION.name)}</td>"
            f"<td>{esc(CONFIRMATION.description)}</td></tr>"
        )
    for timer in handover.timers:
        rule = AGREED_RULES.get(timer.rule)
        text = rule.description if rule is not None else timer.rule
        rows.append(
            f"<tr><td>{esc(moment_text(timer.due_at))}</td><td>{esc(timer.kind.value)}"
            f" ({esc(timer.rule)})</td><td>{esc(text)}</td></tr>"
        )
    if not rows:
        return '<h3>Termijnen</h3><p class="muted">Geen lopende termijnen.</p>'
    return (
        "<h3>Termijnen</h3><table><thead><tr><th>Uiterlijk</th><th>Termijn</th><th>Regel</th>"
        f"</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def _withdraw_form(case_ref: str, o: Overdracht, csrf: str) -> str:
    reasons = "".join(
        f'<option value="{esc(v)}">{esc(label)}</option>' for v, label in WITHDRAWAL_REASONS
    )
    return (
        '<div class="actions">'
        f'<form method="post" class="withdraw" action="{MOUNT}/cases/{esc(case_ref)}'
        f'/overdrachten/{esc(o.id)}/withdraw">'
        f"{csrf_field(csrf)}"
        f'<label>Reden <select name="reden" required>{reasons}</select></label>'
        '<label>Toelichting <input name="toelichting" maxlength="2000"></label>'
        '<button type="submit" class="danger">Overdracht intrekken</button></form></div>'
    )


def resendable(notice: MessageView | None) -> bool:
    """Undeliverable, or sent and still waiting for its receipt."""
    if notice is None:
        return False
    status = notice.message.status
    return status is Status.UNDELIVERABLE or (
        status is Status.SENT and expects_receipt(notice.message.type)
    )


def monitoring_planned(handover: HandoverFacts) -> bool:
    """A confirmed handover with monitoring requests still to go out (§7.1)."""
    return handover.overdracht.state is OverdrachtState.CONFIRMED and any(
        t.kind is TimerKind.MONITORING_REQUEST for t in handover.timers
    )


def _resend_form(case_ref: str, handover: HandoverFacts, csrf: str) -> str:
    notice = handover.notice
    assert notice is not None  # noqa: S101 - resendable() checked it
    status = "onbestelbaar" if notice.message.status is Status.UNDELIVERABLE else "verzonden"
    return (
        '<div class="actions">'
        f'<form method="post" class="resend" action="{MOUNT}/cases/{esc(case_ref)}'
        f'/messages/{esc(notice.message.id)}/resend">'
        f"{csrf_field(csrf)}"
        f'<span class="muted">Bericht {esc(status)}, geen ontvangstbevestiging '
        f"({notice.message.attempts} pogingen).</span>"
        '<button type="submit">Opnieuw verzenden</button></form></div>'
    )


def _no_monitoring_form(case_ref: str, o: Overdracht, csrf: str) -> str:
    reasons = "".join(
        f'<option value="{esc(v)}">{esc(label)}</option>' for v, label in NO_MONITORING_REASONS
    )
    return (
        '<div class="actions">'
        f'<form method="post" class="no-monitoring" action="{MOUNT}/cases/{esc(case_ref)}'
        f'/overdrachten/{esc(o.id)}/no-monitoring">'
        f"{csrf_field(csrf)}"
        f'<label>Niet monitoren, reden <select name="reden" required>{reasons}</select></label>'
        '<label>Onderbouwing (zonder persoonsgegevens) <input name="toelichting" '
        'maxlength="300" required></label>'
        '<button type="submit">Besluit vastleggen</button></form></div>'
    )


def _monitoring(handover: HandoverFacts, decisions: Sequence[MonitoringDecision]) -> str:
    if not decisions:
        return ""
    words = dict(NO_MONITORING_REASONS)
    rows = "".join(
        f"<tr><td>{esc(moment_text(d.at))}</td><td>{esc(d.by)}</td>"
        f"<td>{esc(words.get(d.reason, d.reason))}</td><td>{esc(d.explanation)}</td>"
        f"<td>{d.cancelled}</td></tr>"
        for d in decisions
    )
    return (
        '<h3>Besluit niet te monitoren (§7.1)</h3><table class="no-monitoring">'
        "<thead><tr><th>Wanneer</th><th>Door</th><th>Reden</th><th>Onderbouwing</th>"
        f"<th>Verzoeken geannuleerd</th></tr></thead><tbody>{rows}</tbody></table>"
    )


def _escalations(
    found: Sequence[tuple[int, Escalation]], case_ref: str, may_act: bool, csrf: str
) -> str:
    if not found:
        return '<h2>Escalaties</h2><p class="muted">Geen escalaties.</p>'
    parts = ["<h2>Escalaties</h2>"]
    for number, escalation in found:
        steps = "".join(
            f"<tr><td>{esc(moment_text(step.at))}</td><td>route {esc(step.route.value)}</td>"
            f"<td>{esc(step.by)}</td>"
            f"<td>{esc(step.outcome.value if step.outcome else 'geopend')}</td>"
            f"<td>{esc(step.note)}</td></tr>"
            for step in escalation.history
        )
        parts.append(
            f'<section class="box escalation" id="e-{number}"'
            f' data-state="{esc(escalation.state.value)}">'
            f"<h3>Escalatie {number} · {esc(escalation.party)} · {esc(escalation.reason.value)}"
            f" · {esc(escalation.state.value)} (route {esc(escalation.route.value)}:"
            f" {esc(escalation.route.participants)})</h3>"
            "<table><thead><tr><th>Wanneer</th><th>Route</th><th>Door</th><th>Uitkomst</th>"
            f"<th>Notitie</th></tr></thead><tbody>{steps}</tbody></table>"
        )
        if may_act and not escalation.final:
            parts.append(
                '<div class="actions">'
                f'<form method="post" class="outcome" action="{MOUNT}/cases/{esc(case_ref)}'
                f'/escalations/{number}/outcome">'
                f"{csrf_field(csrf)}"
                '<label>Uitkomst <select name="outcome" required>'
                f'<option value="{Outcome.SOLVED.value}">I · opgelost</option>'
                f'<option value="{Outcome.NOT_SOLVED.value}">'
                "II · niet opgelost (volgende route)</option>"
                "</select></label>"
                '<label>Notitie <input name="note" maxlength="500"></label>'
                '<button type="submit">Uitkomst vastleggen</button></form></div>'
            )
        parts.append("</section>")
    return "\n".join(parts)


def _ledger(entries: Sequence[Mapping[str, Any]]) -> str:
    rows = "".join(
        f"<tr><td>{esc(e['sequence'])}</td><td>{esc(moment_text(parse_timestamp(e['at'])))}</td>"
        f"<td>{esc(e['kind'])}</td><td>{esc(e['by'])}</td><td>{esc(e['holder'] or '-')}</td>"
        f"<td>{esc(e['regievoerder'] or '-')}</td>"
        f'<td class="mono muted">{esc(str(e["hash"])[:19])}…</td></tr>'
        for e in entries
    )
    return (
        "<h2>Verantwoordelijkheid (ledger)</h2><table><thead><tr><th>#</th><th>Wanneer</th>"
        "<th>Wat</th><th>Door</th><th>Houder</th><th>Regievoerder</th><th>Hash</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>"
    )


def _evidence(evidence: Mapping[str, str]) -> str:
    shown = [f"{esc(k)}: {esc(v)}" for k, v in evidence.items() if k in _SHOWN_EVIDENCE]
    return " · ".join(shown)
