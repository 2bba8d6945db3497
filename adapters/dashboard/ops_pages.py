"""The dashboard's operations and report pages, and the case page's resend and no-monitoring.

- `GET /partners`: per party of the contracts: transport, last heard from,
  pending and undeliverable messages, open alerts, key windows (a key that
  ends within 60 days warns).
- `GET /dead-letters[?page=]`: the refused messages, newest first, without
  their bytes; `GET /dead-letters/{id}` one of them with what was done with
  it, and (admin only, `?inhoud=1`, logged) its raw bytes. A coordinator or
  admin `POST`s `/dead-letters/{id}/requeue` (the bytes through the receiving
  pipeline again, after a fix of a contract) or `/discard` (with a reason).
- `GET /alerts`: open alerts oldest first, the recently closed ones.
- `GET /reports[?kwartaal=]`, `/reports/{quarter}`, `/reports/{quarter}.csv`:
  the quarterly report (§7.2) per municipality with SVG charts, and as CSV.
- `POST /cases/{ref}/messages/{id}/resend`: the same stored message (same id,
  same bytes) once more into the outbox.
- `POST /cases/{ref}/overdrachten/{id}/no-monitoring`: a recorded reason not to
  monitor a confirmed handover (§7.1); its monitoring requests are cancelled.

Every page view and action is an entry of the access log; every action needs
the coordinator or admin role (a viewer's POST is refused 403).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import structlog
from aiohttp import web

from adapters.dashboard.app import CONTEXT, MEMBER, SESSION, Dashboard, _page
from adapters.dashboard.case_page import NO_MONITORING_REASONS
from adapters.dashboard.charts import Series, stacked_bars
from adapters.dashboard.ops_queries import (
    ACCEPTED,
    DISCARDED,
    NO_MONITORING,
    REQUEUED,
    AlertRow,
    DeadLetter,
    DeadLetterAction,
    add_action,
    closed_alerts,
    dead_letter,
    dead_letter_count,
    dead_letters,
    delivery_counts,
    last_heard,
    open_alerts,
)
from adapters.dashboard.partner_keys import KEY_STATE_WORDS, key_lines, rotation_due
from adapters.dashboard.queries import page_count
from adapters.dashboard.render import MOUNT, csrf_field, esc, moment_text, query
from adapters.dashboard.staff import Role, StaffMember
from adapters.store.sql import SqlUnitOfWork
from gateway.domain.contracts import Transport
from gateway.domain.delivery import Status, StatusChange, TimerKind, expects_receipt
from gateway.domain.handover import OverdrachtState
from gateway.domain.report import Quarter
from gateway.service import reporting
from gateway.service.receiving import Delivery, Disposition, Handled, receive

log = structlog.get_logger("vtgw.dashboard")

TRANSPORT_WORDS = {
    Transport.AMQP.value: "RabbitMQ",
    Transport.EMAIL.value: "e-mail (brug)",
    Transport.BRIDGE.value: "e-mailbrug",
}

QUARTER_PATTERN = r"\d{4}Q[1-4]"


def add_ops_routes(app: web.Application) -> None:
    app.router.add_get("/partners", partners_page, name="partners")
    app.router.add_get("/dead-letters", dead_letters_page, name="dead_letters")
    app.router.add_get("/dead-letters/{id:\\d+}", dead_letter_page, name="dead_letter")
    app.router.add_post("/dead-letters/{id:\\d+}/requeue", requeue, name="requeue")
    app.router.add_post("/dead-letters/{id:\\d+}/discard", discard, name="discard")
    app.router.add_get("/alerts", alerts_page, name="alerts")
    app.router.add_get("/reports", reports_index, name="reports")
    app.router.add_get(f"/reports/{{quarter:{QUARTER_PATTERN}}}.csv", report_csv, name="report_csv")
    app.router.add_get(f"/reports/{{quarter:{QUARTER_PATTERN}}}", report_page, name="report")
    app.router.add_post("/cases/{ref}/messages/{id}/resend", resend, name="resend")
    app.router.add_post(
        "/cases/{ref}/overdrachten/{id}/no-monitoring", no_monitoring, name="no_monitoring"
    )


def _csrf(request: web.Request) -> str:
    return request.app[CONTEXT].keys.csrf_token(request[SESSION].session_id)


def _show(request: web.Request, title: str, content: str, status: int = 200) -> web.Response:
    return _page(title, content, status, member=request[MEMBER], csrf=_csrf(request))


async def _refuse_role(
    request: web.Request,
    action: str,
    detail: Mapping[str, str],
    *,
    case_ref: str | None = None,
    needed: str = "Uw rol mag deze handeling niet uitvoeren.",
) -> web.Response:
    member: StaffMember = request[MEMBER]
    log.warning("dashboard_action_refused", action=action, username=member.username)
    await request.app[CONTEXT].record(
        request, action, "refused:role", case_ref=case_ref, detail=detail
    )
    return _show(request, "Niet toegestaan", f"<p>{esc(needed)} Er is niets gewijzigd.</p>", 403)


def _page_number(request: web.Request) -> int:
    try:
        return max(1, int(request.query.get("page", "1")))
    except ValueError:
        return 1


# --- partners --------------------------------------------------------------------


async def partners_page(request: web.Request) -> web.StreamResponse:
    dashboard = request.app[CONTEXT]
    now = dashboard.clock()
    contracts = list(dashboard.hub.verifier.contracts)
    async with dashboard.store.connection() as db:
        heard = await last_heard(db, [c.party for c in contracts])
        counts = await delivery_counts(db)
        alerts = await open_alerts(db, dashboard.hub.party)
    await dashboard.record(request, "view_partners", "ok")
    alerts_of = Counter(a.party for a in alerts if a.party)
    rows = []
    warnings = 0
    for contract in contracts:
        if contract.transport is Transport.EMAIL:
            keys_html = f'<span class="muted">ondertekend door {esc(contract.signed_by)}</span>'
            due = False
        else:
            lines = key_lines(contract.keys, now)
            due = rotation_due(contract.keys, now)
            keys_html = (
                "<br>".join(
                    f'<span class="key{" stand-warning" if line.warns else ""}" '
                    f'data-state="{esc(line.state.value)}">'
                    f'{"⚠ " if line.warns else ""}<span class="mono">{esc(line.kid)}</span> · '
                    f"tot {esc(moment_text(line.not_after) if line.not_after else 'geen einde')}"
                    f" · {esc(KEY_STATE_WORDS[line.state])}</span>"
                    for line in lines
                )
                or '<span class="stand-overdue">⚠ geen sleutels</span>'
            )
            if due:
                keys_html += '<br><b class="stand-warning">⚠ sleutel vervangen (docs/keys.md)</b>'
        warnings += due
        count = counts.get(contract.party)
        undeliverable = count.undeliverable if count else 0
        open_count = alerts_of.get(contract.party, 0)
        warning_class = ' class="warning"' if due else ""
        rows.append(
            f'<tr data-party="{esc(contract.party)}"{warning_class}>'
            f"<td><b>{esc(contract.name)}</b><br>"
            f'<span class="muted mono">{esc(contract.party)}</span></td>'
            f"<td>{esc(contract.role.value)}</td>"
            f"<td>{esc(TRANSPORT_WORDS.get(contract.transport.value, contract.transport.value))}"
            "</td>"
            f'<td class="heard">{esc(moment_text(heard.get(contract.party)))}</td>'
            f'<td class="pending">{count.pending if count else 0}</td>'
            f'<td class="undeliverable">'
            f'{_bad(undeliverable)}</td><td class="alerts">{_bad(open_count)}</td>'
            f'<td class="keys">{keys_html}</td></tr>'
        )
    summary = (
        f'<p class="{"error" if warnings else "notice"}" id="key-summary">'
        + (
            f"{warnings} partij(en) zonder sleutel die langer dan 60 dagen geldig blijft."
            if warnings
            else "Alle sleutels blijven langer dan 60 dagen geldig."
        )
        + "</p>"
    )
    table = (
        '<table class="partners"><thead><tr><th>Partij</th><th>Rol</th><th>Transport</th>'
        "<th>Laatst gehoord</th><th>Wachtend</th><th>Onbestelbaar</th><th>Open meldingen</th>"
        f"<th>Sleutels</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )
    legend = (
        '<p class="muted">Wachtend: in de outbox of verzonden zonder ontvangstbevestiging. '
        "Laatst gehoord: het nieuwste bericht van de partij dat de gateway bewaarde.</p>"
    )
    return _show(request, "Partners", summary + legend + table)


def _bad(count: int) -> str:
    return f'<span class="bad">{count}</span>' if count else "0"


# --- dead letters ----------------------------------------------------------------


def _handling_text(letter: DeadLetter) -> str:
    done = letter.handled
    if done is not None and done.action == DISCARDED:
        return f"afgewezen door {esc(done.by)}"
    if done is not None:
        return f'<span class="ok">opnieuw aangeboden: geaccepteerd</span> ({esc(done.by)})'
    if letter.actions:
        last = letter.actions[-1]
        return f'<span class="bad">opnieuw aangeboden: weer geweigerd ({esc(last.outcome)})</span>'
    return "open"


async def dead_letters_page(request: web.Request) -> web.StreamResponse:
    dashboard = request.app[CONTEXT]
    page = _page_number(request)
    size = dashboard.settings.page_size
    async with dashboard.store.connection() as db:
        total = await dead_letter_count(db)
        letters = await dead_letters(db, page=page, size=size)
    await dashboard.record(request, "view_dead_letters", "ok", detail={"page": str(page)})
    rows = "".join(
        f'<tr id="d-{letter.id}" data-dead-letter="{letter.id}" '
        f'data-handled="{"yes" if letter.handled else "no"}">'
        f"<td>{esc(moment_text(letter.received_at))}</td>"
        f'<td>{esc(letter.transport)}<br><span class="mono">'
        f"{esc(letter.transport_identity)}</span></td>"
        f'<td class="mono">{esc(letter.code)}</td><td class="mono">{esc(letter.pointer)}</td>'
        f"<td>{esc(letter.detail)}</td>"
        f'<td class="mono">{esc(letter.message_id or "-")}</td><td>{esc(letter.sender or "-")}</td>'
        f'<td class="handling">{_handling_text(letter)}</td>'
        f'<td><a href="{MOUNT}/dead-letters/{letter.id}">openen</a></td></tr>'
        for letter in letters
    )
    pages = page_count(total, size)
    pager = (
        '<div class="pager">'
        + (
            f'<a href="{MOUNT}/dead-letters{query({"page": page - 1})}" rel="prev">← vorige</a>'
            if page > 1
            else ""
        )
        + f"<span>Pagina {min(page, pages)} van {pages} · {total} geweigerd</span>"
        + (
            f'<a href="{MOUNT}/dead-letters{query({"page": page + 1})}" rel="next">volgende →</a>'
            if page < pages
            else ""
        )
        + "</div>"
    )
    table = (
        '<table class="dead-letters"><thead><tr><th>Ontvangen</th><th>Transport</th>'
        "<th>Code</th><th>Plaats</th><th>Toelichting</th><th>Bericht</th><th>Afzender</th>"
        f"<th>Afhandeling</th><th></th></tr></thead><tbody>{rows}</tbody></table>"
        if rows
        else '<p class="muted">Geen geweigerde berichten.</p>'
    )
    intro = (
        '<p class="muted">Berichten die de gateway weigerde, zonder hun inhoud. '
        "Na een herstel (bv. een nieuwe sleutel in het contract) kan een coördinator een "
        "bericht opnieuw aanbieden; of het afwijzen met een reden.</p>"
    )
    return _show(request, "Geweigerde berichten", intro + table + pager)


async def dead_letter_page(request: web.Request) -> web.StreamResponse:
    dashboard = request.app[CONTEXT]
    member: StaffMember = request[MEMBER]
    rejected_id = int(request.match_info["id"])
    reveal = request.query.get("inhoud") == "1"
    async with dashboard.store.connection() as db:
        letter = await dead_letter(db, rejected_id)
    detail = {"rejected": str(rejected_id)}
    if letter is None:
        await dashboard.record(request, "view_dead_letter", "not_found", detail=detail)
        return _show(request, "Onbekend", "<p>Dit geweigerde bericht bestaat niet.</p>", 404)
    detail |= {"message": letter.message_id or "", "sender": letter.sender or ""}
    if reveal and member.role is not Role.ADMIN:
        return await _refuse_role(
            request,
            "view_dead_letter_raw",
            detail,
            needed="Alleen beheerders zien de inhoud van een geweigerd bericht.",
        )
    await dashboard.record(
        request, "view_dead_letter_raw" if reveal else "view_dead_letter", "ok", detail=detail
    )
    if reveal:
        log.info("dashboard_dead_letter_revealed", rejected=rejected_id, username=member.username)
    done = {
        "requeue": _requeue_notice(letter),
        "discard": "Het bericht is afgewezen; de reden is vastgelegd.",
    }.get(request.query.get("gedaan", ""), "")
    facts = (
        '<dl class="facts">'
        f"<dt>Ontvangen</dt><dd>{esc(moment_text(letter.received_at))}</dd>"
        f"<dt>Transport</dt><dd>{esc(letter.transport)} · "
        f'<span class="mono">{esc(letter.transport_identity)}</span></dd>'
        f'<dt>Code</dt><dd class="mono" id="code">{esc(letter.code)}</dd>'
        f'<dt>Plaats</dt><dd class="mono">{esc(letter.pointer or "-")}</dd>'
        f"<dt>Toelichting</dt><dd>{esc(letter.detail)}</dd>"
        f'<dt>Bericht</dt><dd class="mono">{esc(letter.message_id or "-")}</dd>'
        f"<dt>Afzender</dt><dd>{esc(letter.sender or '-')}</dd>"
        f'<dt>Afhandeling</dt><dd id="handling">{_handling_text(letter)}</dd>'
        "</dl>"
    )
    actions_rows = "".join(
        f"<tr><td>{esc(moment_text(a.at))}</td><td>{esc(_ACTION_WORDS.get(a.action, a.action))}"
        f"</td><td>{esc(a.by)}</td><td>{esc(a.outcome)}</td><td>{esc(a.reason)}</td></tr>"
        for a in letter.actions
    )
    history = (
        "<h2>Afhandeling</h2><table><thead><tr><th>Wanneer</th><th>Wat</th><th>Door</th>"
        f"<th>Uitkomst</th><th>Reden</th></tr></thead><tbody>{actions_rows}</tbody></table>"
        if actions_rows
        else ""
    )
    csrf = _csrf(request)
    forms = ""
    if member.role.may_act and letter.handled is None:
        forms = (
            '<div class="actions">'
            f'<form method="post" class="requeue" '
            f'action="{MOUNT}/dead-letters/{letter.id}/requeue">'
            f'{csrf_field(csrf)}<button type="submit">Opnieuw aanbieden na herstel</button></form>'
            f'<form method="post" class="discard" '
            f'action="{MOUNT}/dead-letters/{letter.id}/discard">'
            f"{csrf_field(csrf)}"
            '<label>Reden <input name="reden" maxlength="500" required '
            'placeholder="zonder persoonsgegevens"></label>'
            '<button type="submit" class="danger">Afwijzen</button></form></div>'
        )
    raw = ""
    if reveal and letter.raw is not None:
        raw = (
            '<h2>Inhoud (beheerder, gelogd)</h2><pre class="raw" id="raw">'
            f"{esc(_raw_text(letter.raw))}</pre>"
        )
    elif member.role is Role.ADMIN:
        raw = (
            f'<p><a id="reveal" href="{MOUNT}/dead-letters/{letter.id}?inhoud=1">Inhoud tonen</a>'
            ' <span class="muted">(kan persoonsgegevens bevatten; het bekijken wordt gelogd)'
            "</span></p>"
        )
    content = (
        (f'<p class="notice" id="done">{done}</p>' if done else "")
        + f'<p><a href="{MOUNT}/dead-letters">← alle geweigerde berichten</a></p>'
        + f'<section class="box">{facts}{forms}</section>'
        + history
        + raw
    )
    return _show(request, f"Geweigerd bericht {letter.id}", content)


_ACTION_WORDS = {REQUEUED: "opnieuw aangeboden", DISCARDED: "afgewezen"}


def _requeue_notice(letter: DeadLetter) -> str:
    requeues = [a for a in letter.actions if a.action == REQUEUED]
    if not requeues:
        return ""
    last = requeues[-1]
    if last.outcome == ACCEPTED:
        return "Opnieuw aangeboden: het bericht is nu geaccepteerd."
    if last.outcome == "duplicate":
        return "Opnieuw aangeboden: het bericht was al ontvangen."
    return f"Opnieuw aangeboden: weer geweigerd ({esc(last.outcome.removeprefix('refused:'))})."


def _raw_text(raw: bytes) -> str:
    try:
        return json.dumps(json.loads(raw), indent=2, ensure_ascii=False)
    except ValueError:
        return raw.decode("utf-8", errors="replace")


class _RefusedAgainError(Exception):
    """Rolls the requeue's transaction back: a refusal again changes nothing in the store."""

    def __init__(self, handled: Handled) -> None:
        super().__init__("refused again")
        self.handled = handled


async def requeue(request: web.Request) -> web.StreamResponse:
    """The dead letter's bytes through the receiving pipeline again, as its transport gave them.

    Accepted: stored, answered with a receipt, its effect applied, and the
    action recorded, all in one transaction. Refused again: that transaction
    is rolled back (no second `rejected` row, no second `error` to the
    sender) and only the attempt with its code is recorded.
    """
    dashboard = request.app[CONTEXT]
    member: StaffMember = request[MEMBER]
    rejected_id = int(request.match_info["id"])
    detail = {"rejected": str(rejected_id)}
    if not member.role.may_act:
        return await _refuse_role(request, "requeue_dead_letter", detail)
    async with dashboard.store.connection() as db:
        letter = await dead_letter(db, rejected_id)
    if letter is None or letter.raw is None:
        await dashboard.record(request, "requeue_dead_letter", "not_found", detail=detail)
        return _show(request, "Onbekend", "<p>Dit geweigerde bericht bestaat niet.</p>", 404)
    if letter.handled is not None:
        await dashboard.record(request, "requeue_dead_letter", "refused:handled", detail=detail)
        return _show(request, "Al afgehandeld", "<p>Dit bericht is al afgehandeld.</p>", 409)
    now = dashboard.clock()
    try:
        handled, outcome, case_ref = await _receive_again(dashboard, letter, member, now)
    except _RefusedAgainError as again:
        handled, case_ref = again.handled, None
        code = handled.rejection.code.value if handled.rejection else "UNKNOWN"
        outcome = f"refused:{code}"
        async with dashboard.store.connection() as db:
            await add_action(db, _action(letter, REQUEUED, now, member, outcome, handled=handled))
    detail |= {"message": handled.message_id or "", "sender": handled.sender or ""}
    access_outcome = "ok" if outcome in (ACCEPTED, "duplicate") else outcome
    await dashboard.record(
        request, "requeue_dead_letter", access_outcome, case_ref=case_ref, detail=detail
    )
    log.info(
        "dashboard_dead_letter_requeued",
        rejected=rejected_id,
        outcome=outcome,
        message_id=handled.message_id,
        username=member.username,
    )
    raise web.HTTPSeeOther(f"{MOUNT}/dead-letters/{rejected_id}?gedaan=requeue")


async def _receive_again(
    dashboard: Dashboard, letter: DeadLetter, member: StaffMember, now: datetime
) -> tuple[Handled, str, str | None]:
    """Accepted: what was handled, `accepted` or `duplicate`, its case; else _RefusedAgainError."""
    assert letter.raw is not None  # noqa: S101 - dead_letter() reads the bytes
    delivery = Delivery(letter.raw, letter.transport_identity, letter.transport)
    case_ref: str | None = None
    async with dashboard.store.connection() as db:
        uow = SqlUnitOfWork(db)
        handled = await receive(uow, dashboard.hub, delivery, now)
        if handled.disposition is Disposition.DEAD_LETTER:
            raise _RefusedAgainError(handled)
        outcome = "duplicate" if handled.duplicate else ACCEPTED
        if handled.sender is not None and handled.message_id is not None:
            stored = await uow.messages.get(handled.sender, handled.message_id)
            case_ref = stored.case_ref if stored is not None else None
        await add_action(db, _action(letter, REQUEUED, now, member, outcome, handled=handled))
    return handled, outcome, case_ref


def _action(
    letter: DeadLetter,
    action: str,
    now: datetime,
    member: StaffMember,
    outcome: str,
    *,
    handled: Handled | None = None,
    reason: str = "",
) -> DeadLetterAction:
    message_id = handled.message_id if handled is not None else letter.message_id
    return DeadLetterAction(letter.id, action, now, member.username, outcome, reason, message_id)


async def discard(request: web.Request) -> web.StreamResponse:
    dashboard = request.app[CONTEXT]
    member: StaffMember = request[MEMBER]
    rejected_id = int(request.match_info["id"])
    detail = {"rejected": str(rejected_id)}
    if not member.role.may_act:
        return await _refuse_role(request, "discard_dead_letter", detail)
    form = await request.post()
    reason = str(form.get("reden", "")).strip()[:500]
    async with dashboard.store.connection() as db:
        letter = await dead_letter(db, rejected_id)
    if letter is None:
        await dashboard.record(request, "discard_dead_letter", "not_found", detail=detail)
        return _show(request, "Onbekend", "<p>Dit geweigerde bericht bestaat niet.</p>", 404)
    if not reason:
        await dashboard.record(request, "discard_dead_letter", "refused:input", detail=detail)
        return _show(request, "Reden ontbreekt", "<p>Geef een reden om af te wijzen.</p>", 400)
    if letter.handled is not None:
        await dashboard.record(request, "discard_dead_letter", "refused:handled", detail=detail)
        return _show(request, "Al afgehandeld", "<p>Dit bericht is al afgehandeld.</p>", 409)
    now = dashboard.clock()
    async with dashboard.store.connection() as db:
        await add_action(db, _action(letter, DISCARDED, now, member, "-", reason=reason))
    detail |= {"message": letter.message_id or "", "sender": letter.sender or ""}
    await dashboard.record(request, "discard_dead_letter", "ok", detail=detail)
    log.info("dashboard_dead_letter_discarded", rejected=rejected_id, username=member.username)
    raise web.HTTPSeeOther(f"{MOUNT}/dead-letters/{rejected_id}?gedaan=discard")


# --- alerts ----------------------------------------------------------------------


async def alerts_page(request: web.Request) -> web.StreamResponse:
    dashboard = request.app[CONTEXT]
    async with dashboard.store.connection() as db:
        still_open = await open_alerts(db, dashboard.hub.party)
        closed = await closed_alerts(db, dashboard.hub.party)
    await dashboard.record(request, "view_alerts", "ok")
    now = dashboard.clock()

    def rows(found: list[AlertRow], *, show_closed: bool) -> str:
        return "".join(
            f'<tr data-alert="{a.id}" data-key="{esc(a.key)}">'
            f"<td>{esc(moment_text(a.opened_at))}</td>"
            + (f"<td>{esc(moment_text(a.closed_at))}</td>" if show_closed else "")
            + f"<td>{esc(_duration((a.closed_at or now) - a.opened_at))}</td>"
            f'<td class="mono">{esc(a.key)}</td><td>{esc(a.party or "-")}</td>'
            f"<td>{esc(a.detail)}</td></tr>"
            for a in found
        )

    open_table = (
        '<table class="alerts open-alerts"><thead><tr><th>Geopend</th><th>Open sinds</th>'
        "<th>Sleutel</th><th>Partij</th><th>Omschrijving</th></tr></thead>"
        f"<tbody>{rows(still_open, show_closed=False)}</tbody></table>"
        if still_open
        else '<p class="muted">Geen open meldingen.</p>'
    )
    closed_table = (
        '<table class="alerts closed-alerts"><thead><tr><th>Geopend</th><th>Gesloten</th>'
        "<th>Duur</th><th>Sleutel</th><th>Partij</th><th>Omschrijving</th></tr></thead>"
        f"<tbody>{rows(closed, show_closed=True)}</tbody></table>"
        if closed
        else '<p class="muted">Nog geen gesloten meldingen.</p>'
    )
    content = (
        f'<div class="counts"><div class="count overdue" id="count-alerts">Open meldingen'
        f"<b>{len(still_open)}</b></div></div>"
        '<p class="muted">Een melding gaat één keer open en één keer dicht (bv. onbestelbaar: '
        "dicht zodra de partij weer van zich laat horen).</p>"
        f"<h2>Open (oudste eerst)</h2>{open_table}<h2>Recent gesloten</h2>{closed_table}"
    )
    return _show(request, "Meldingen", content)


def _duration(span: Any) -> str:
    seconds = max(0, int(span.total_seconds()))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    if days:
        return f"{days} d {hours} u"
    return f"{hours} u {rest // 60} min"


# --- the quarterly report --------------------------------------------------------


def current_quarter(moment: datetime, time_zone: str) -> Quarter:
    local = moment.astimezone(ZoneInfo(time_zone))
    return Quarter(local.year, (local.month - 1) // 3 + 1)


def recent_quarters(latest: Quarter, count: int = 8) -> list[Quarter]:
    found = []
    year, number = latest.year, latest.number
    for _ in range(count):
        found.append(Quarter(year, number))
        year, number = (year, number - 1) if number > 1 else (year - 1, 4)
    return found


async def reports_index(request: web.Request) -> web.StreamResponse:
    dashboard = request.app[CONTEXT]
    chosen = request.query.get("kwartaal", "")
    try:
        quarter = Quarter.parse(chosen)
    except ValueError:
        quarter = current_quarter(dashboard.clock(), dashboard.region.time_zone)
    raise web.HTTPSeeOther(f"{MOUNT}/reports/{quarter}")


@dataclass(frozen=True, slots=True)
class _Report:
    quarter: Quarter
    rows: list[dict[str, Any]]
    document: dict[str, Any]


async def _report(dashboard: Dashboard, text: str) -> _Report:
    quarter = Quarter.parse(text)
    document = await reporting.report(
        dashboard.store, dashboard.region, dashboard.hub.calendar, quarter
    )
    return _Report(quarter, list(document["rows"]), document)


_HANDOVER_COLUMNS = (
    ("overdrachten_a", "A"),
    ("overdrachten_b", "B"),
    ("overdrachten_c", "C"),
    ("bevestigd_binnen_termijn", "Op tijd bevestigd"),
    ("bevestigd_te_laat", "Te laat bevestigd"),
    ("uitgesteld", "Uitgesteld"),
    ("nog_open", "Nog open"),
    ("ingetrokken", "Ingetrokken"),
    ("onbestelbaar", "Onbestelbaar"),
)
_FOLLOW_UP_COLUMNS = (
    ("monitoring_3_op_tijd", "3 mnd op tijd"),
    ("monitoring_3_te_laat", "3 mnd te laat"),
    ("monitoring_3_open", "3 mnd open"),
    ("monitoring_12_op_tijd", "12 mnd op tijd"),
    ("monitoring_12_te_laat", "12 mnd te laat"),
    ("monitoring_12_open", "12 mnd open"),
    ("escalaties_route_a", "Route a"),
    ("escalaties_route_b", "Route b"),
    ("escalaties_route_c", "Route c"),
)


def _table(rows: list[dict[str, Any]], columns: tuple[tuple[str, str], ...], css: str) -> str:
    head = "".join(f"<th>{esc(label)}</th>" for _, label in columns)
    body = "".join(
        f'<tr data-gemeente="{esc(row["gemeente"])}"><td>{esc(row["naam"])}</td>'
        + "".join(f"<td>{esc(row[key])}</td>" for key, _ in columns)
        + "</tr>"
        for row in rows
    )
    totals = "".join(f"<td><b>{sum(int(row[key]) for row in rows)}</b></td>" for key, _ in columns)
    return (
        f'<table class="report {css}"><thead><tr><th>Gemeente</th>{head}</tr></thead>'
        f'<tbody>{body}</tbody><tfoot><tr class="total"><td><b>Regio</b></td>{totals}</tr>'
        "</tfoot></table>"
    )


def report_charts(rows: list[dict[str, Any]]) -> str:
    """The report's four charts; the per-municipality ones leave out municipalities with zeros."""

    def per_gemeente(chart_id: str, title: str, series: list[tuple[str, str, str]]) -> str:
        kept = [r for r in rows if any(int(r[key]) for key, _, _ in series)]
        chart = stacked_bars(
            chart_id,
            title,
            [str(r["naam"]) for r in kept],
            [Series(name, short, [int(r[key]) for r in kept]) for key, name, short in series],
        )
        note = (
            '<p class="muted small">Gemeenten zonder aantallen zijn weggelaten.</p>'
            if len(kept) < len(rows)
            else ""
        )
        return f'<figure class="chart"><figcaption>{esc(title)}</figcaption>{chart}{note}</figure>'

    def total(key: str) -> int:
        return sum(int(r[key]) for r in rows)

    monitoring = stacked_bars(
        "chart-monitoring",
        "Monitoring op tijd (3 en 12 maanden)",
        ["na 3 maanden", "na 12 maanden"],
        [
            Series(
                "op tijd",
                "op tijd",
                [total("monitoring_3_op_tijd"), total("monitoring_12_op_tijd")],
            ),
            Series(
                "te laat",
                "te laat",
                [total("monitoring_3_te_laat"), total("monitoring_12_te_laat")],
            ),
            Series("open", "open", [total("monitoring_3_open"), total("monitoring_12_open")]),
        ],
    )
    return "".join(
        (
            per_gemeente(
                "chart-moments",
                "Overdrachten per moment",
                [
                    ("overdrachten_a", "moment A", "A"),
                    ("overdrachten_b", "moment B", "B"),
                    ("overdrachten_c", "moment C", "C"),
                ],
            ),
            per_gemeente(
                "chart-confirmed",
                "Bevestigd binnen termijn en te laat",
                [
                    ("bevestigd_binnen_termijn", "op tijd", "op tijd"),
                    ("bevestigd_te_laat", "te laat", "te laat"),
                ],
            ),
            '<figure class="chart"><figcaption>Monitoring op tijd (3 en 12 maanden)'
            f"</figcaption>{monitoring}</figure>",
            per_gemeente(
                "chart-escalations",
                "Escalaties per route",
                [
                    ("escalaties_route_a", "route a", "a"),
                    ("escalaties_route_b", "route b", "b"),
                    ("escalaties_route_c", "route c", "c"),
                ],
            ),
        )
    )


async def report_page(request: web.Request) -> web.StreamResponse:
    dashboard = request.app[CONTEXT]
    found = await _report(dashboard, request.match_info["quarter"])
    await dashboard.record(request, "view_report", "ok", detail={"quarter": str(found.quarter)})
    latest = current_quarter(dashboard.clock(), dashboard.region.time_zone)
    choices = recent_quarters(max(latest, found.quarter, key=lambda q: (q.year, q.number)))
    picker = (
        f'<form method="get" action="{MOUNT}/reports" class="filters" id="quarter-picker">'
        '<label>Kwartaal <select name="kwartaal">'
        + "".join(
            f'<option value="{q}"{" selected" if q == found.quarter else ""}>{q}</option>'
            for q in choices
        )
        + '</select></label><button type="submit">Tonen</button>'
        f'<a id="csv" href="{MOUNT}/reports/{found.quarter}.csv" download>CSV downloaden</a>'
        "</form>"
    )
    content = (
        picker
        + '<p class="muted">Per gemeente: de overdrachten waarvan de melding in het kwartaal '
        "uitging, de monitoringverzoeken van het kwartaal en de escalaties die erin opengingen "
        "(§7.2).</p>"
        + "<h2>Overdrachten</h2>"
        + _table(found.rows, _HANDOVER_COLUMNS, "handovers")
        + "<h2>Monitoring en escalaties</h2>"
        + _table(found.rows, _FOLLOW_UP_COLUMNS, "follow-up")
        + '<h2>Grafieken</h2><div class="charts">'
        + report_charts(found.rows)
        + "</div>"
    )
    return _show(request, f"Kwartaalrapportage {found.quarter}", content)


async def report_csv(request: web.Request) -> web.StreamResponse:
    dashboard = request.app[CONTEXT]
    found = await _report(dashboard, request.match_info["quarter"])
    await dashboard.record(request, "download_report", "ok", detail={"quarter": str(found.quarter)})
    return web.Response(
        text=reporting.as_csv(found.document),
        content_type="text/csv",
        charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="rapportage-{found.quarter}.csv"'},
    )


# --- the case page's resend and decision not to monitor --------------------------


async def resend(request: web.Request) -> web.StreamResponse:
    """The same stored message (same id, same bytes) once more into the outbox.

    For a message `sent` without a receipt: its receipt timer is cancelled (the
    relay sets a new one when it publishes) and a `queued` step with who asked
    joins its history. For an `undeliverable` one, whose final status never
    changes again (gateway/domain/delivery.py), nothing is added to its
    history here: the access log entry is the evidence of the request (the
    relay's publish adds its `sent` evidence later).
    """
    dashboard = request.app[CONTEXT]
    member: StaffMember = request[MEMBER]
    ref = request.match_info["ref"]
    message_id = request.match_info["id"]
    detail = {"message": message_id}
    if not member.role.may_act:
        return await _refuse_role(request, "resend", detail, case_ref=ref)
    now = dashboard.clock()
    party = dashboard.hub.party
    async with dashboard.store.transaction() as uow:
        message = await uow.messages.get(party, message_id)
        if message is None or message.case_ref != ref:
            problem = "not_found"
        elif message.status is Status.UNDELIVERABLE:
            problem = ""
            await uow.outbox.enqueue(party, message_id, now)
        elif message.status is Status.SENT and expects_receipt(message.type):
            problem = ""
            await uow.timers.cancel(TimerKind.RECEIPT, party, message_id, now)
            await uow.outbox.enqueue(party, message_id, now)
            evidence = {"resent_by": member.username, "via": "dashboard"}
            await uow.messages.record(party, message_id, StatusChange(Status.QUEUED, now, evidence))
        else:
            problem = "refused:state"
    if problem == "not_found":
        await dashboard.record(request, "resend", problem, case_ref=ref, detail=detail)
        return _show(request, "Bericht onbekend", "<p>Deze zaak heeft dat bericht niet.</p>", 404)
    assert message is not None  # noqa: S101 - found above
    detail |= {"status": message.status.value, "recipient": message.recipient}
    if problem:
        await dashboard.record(request, "resend", problem, case_ref=ref, detail=detail)
        return _show(
            request,
            "Niet opnieuw verzonden",
            "<p>Alleen een onbestelbaar bericht, of een verzonden bericht zonder "
            "ontvangstbevestiging, kan opnieuw worden verzonden.</p>",
            409,
        )
    detail["history"] = "no" if message.status.final else "yes"
    await dashboard.record(request, "resend", "ok", case_ref=ref, detail=detail)
    log.info("dashboard_resent", message_id=message_id, username=member.username)
    raise web.HTTPSeeOther(f"{MOUNT}/cases/{ref}?gedaan=resent#o-{message_id}")


async def no_monitoring(request: web.Request) -> web.StreamResponse:
    """A recorded decision not to monitor a confirmed handover (§7.1): its requests are cancelled.

    The reason lives in the access log entry (and shows on the case page from
    there); monitoring requests already sent keep their answer deadline.
    """
    dashboard = request.app[CONTEXT]
    member: StaffMember = request[MEMBER]
    ref = request.match_info["ref"]
    overdracht_id = request.match_info["id"]
    form = await request.post()
    reason = str(form.get("reden", ""))
    explanation = " ".join(str(form.get("toelichting", "")).split())[:300]
    detail = {"overdracht": overdracht_id, "reden": reason[:40], "toelichting": explanation}
    if not member.role.may_act:
        return await _refuse_role(request, NO_MONITORING, detail, case_ref=ref)
    if reason not in dict(NO_MONITORING_REASONS) or not explanation:
        await dashboard.record(request, NO_MONITORING, "refused:input", case_ref=ref, detail=detail)
        return _show(
            request,
            "Reden ontbreekt",
            "<p>Kies een reden en licht die toe (§7.1: een besluit om niet te monitoren wordt "
            "altijd met reden vastgelegd).</p>",
            400,
        )
    now = dashboard.clock()
    async with dashboard.store.transaction() as uow:
        overdracht = await uow.handovers.get(overdracht_id)
        cancelled = 0
        if (
            overdracht is not None
            and overdracht.case_ref == ref
            and overdracht.state is OverdrachtState.CONFIRMED
        ):
            cancelled = await uow.timers.cancel(
                TimerKind.MONITORING_REQUEST, dashboard.hub.party, overdracht_id, now
            )
    if overdracht is None or overdracht.case_ref != ref:
        await dashboard.record(request, NO_MONITORING, "not_found", case_ref=ref, detail=detail)
        return _show(request, "Onbekend", "<p>Deze zaak heeft die overdracht niet.</p>", 404)
    if cancelled == 0:
        await dashboard.record(request, NO_MONITORING, "refused:state", case_ref=ref, detail=detail)
        return _show(
            request,
            "Geen monitoring gepland",
            "<p>Voor deze overdracht staat geen monitoringverzoek meer gepland.</p>",
            409,
        )
    detail["geannuleerd"] = str(cancelled)
    await dashboard.record(request, NO_MONITORING, "ok", case_ref=ref, detail=detail)
    log.info("dashboard_no_monitoring", overdracht_id=overdracht_id, username=member.username)
    raise web.HTTPSeeOther(f"{MOUNT}/cases/{ref}?gedaan=no_monitoring#o-{overdracht_id}")
