"""The VT staff dashboard (aiohttp, server-rendered), mounted at /dashboard of the gateway.

- `GET /sign-in`, `POST /sign-in`, `POST /sign-out`: staff accounts from the
  staff file, argon2 passwords, a sealed session cookie with idle expiry;
  failed sign-ins are rate-limited per (username, client) and logged. The
  limit and the signed-out sessions are kept in the store, so that every
  instance on it refuses the same (`adapters.store.shared_state`).
- `GET /`: the open handovers, earliest deadline first, overdue and warning
  rows coloured, filtered and paged, with counts; `?fragment=1` is the list
  alone, which the page's script fetches when `GET /events` (server-sent
  events) says the store changed.
- `GET /cases/{ref}`: a case's handovers with their three acknowledgement
  levels and evidence, the ledger, deadlines and escalations; a coordinator or
  admin records an escalation's outcome and withdraws an open handover there.
- `GET /access-log`: the NEN 7513 access log, searched, with its chain checked
  (admin only).
- The operations and report pages (partners, dead letters, alerts, the
  quarterly report) and the case page's resend and decision not to monitor:
  `ops_pages.py`.

Every page carries strict security headers and is never cached; every form a
CSRF token bound to the session; every view of case data and every action an
entry in the access log.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

import structlog
from aiohttp import web

from adapters.dashboard.access_log import Access, AccessLog, AccessQuery
from adapters.dashboard.case_page import STATE_WORDS, URGENCY_WORDS, case_facts, render_case
from adapters.dashboard.queries import (
    OPEN_STATES,
    OpenFilter,
    OpenRow,
    change_marker,
    open_counts,
    open_page,
    page_count,
)
from adapters.dashboard.render import (
    CSS,
    JS,
    LOCAL,
    MOUNT,
    csrf_field,
    day_text,
    esc,
    layout,
    moment_text,
    options,
    query,
)
from adapters.dashboard.sessions import (
    Session,
    SessionKeys,
    SessionRefusedError,
    SignInLimiter,
    new_session,
    refused_until,
)
from adapters.dashboard.settings import DashboardSettings
from adapters.dashboard.staff import Role, StaffDirectory, StaffMember, load_staff
from adapters.dashboard.urgency import Cutoffs
from adapters.store.shared_state import SignedOutSessions
from adapters.store.sql import SqlStore
from gateway.domain.deadlines import DeadlineState
from gateway.domain.envelope import CaseRef
from gateway.domain.errors import PermanentError
from gateway.domain.escalation import Outcome
from gateway.domain.handover import Moment
from gateway.domain.region import Region
from gateway.service import escalations
from gateway.service.outgoing import Hub
from gateway.service.submission import SubmitMessage, submit

log = structlog.get_logger("vtgw.dashboard")

Clock = Callable[[], datetime]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

SESSION_COOKIE = "vtgw_dashboard_session"
SIGN_IN_COOKIE = "vtgw_dashboard_signin"
KEEPALIVE_SECONDS = 15.0
STREAM_LIFETIME = timedelta(minutes=5)  # then the browser reconnects, and the session is checked

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; "
        "object-src 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
    "Pragma": "no-cache",
    "Cross-Origin-Opener-Policy": "same-origin",
}

_PUBLIC_ROUTES = frozenset({"sign_in", "sign_in_post", "css", "js"})


@dataclass
class Dashboard:
    """What the dashboard's handlers share."""

    store: SqlStore
    hub: Hub
    region: Region
    clock: Clock
    settings: DashboardSettings
    staff: StaffDirectory
    keys: SessionKeys
    limiter: SignInLimiter
    signed_out: SignedOutSessions
    access: AccessLog

    def cookie(self, response: web.StreamResponse, name: str, value: str) -> None:
        response.set_cookie(
            name,
            value,
            path=MOUNT,
            httponly=True,
            samesite="Strict",
            secure=self.settings.secure_cookies,
        )

    async def record(
        self,
        request: web.Request,
        action: str,
        outcome: str,
        *,
        case_ref: str | None = None,
        detail: Mapping[str, str] | None = None,
        member: StaffMember | None = None,
    ) -> None:
        """One entry of the access log for this request's member."""
        who = member or request.get(MEMBER)
        await self.access.append(
            Access(
                username=who.username if who else "-",
                role=who.role.value if who else "-",
                action=action,
                outcome=outcome,
                at=self.clock(),
                case_ref=case_ref,
                detail=dict(detail or {}),
                client=(request.remote or "")[:100] or None,
            )
        )


CONTEXT = web.AppKey("dashboard", Dashboard)
MEMBER = web.RequestKey("dashboard_member", StaffMember)
SESSION = web.RequestKey("dashboard_session", Session)


def create_dashboard_app(
    *,
    store: SqlStore,
    hub: Hub,
    region: Region,
    clock: Clock,
    settings: DashboardSettings,
    limiter: SignInLimiter | None = None,
) -> web.Application:
    """The sub-application for /dashboard (mount it there: its links are absolute)."""
    app = web.Application(middlewares=[security_headers, authenticate])
    app[CONTEXT] = Dashboard(
        store=store,
        hub=hub,
        region=region,
        clock=clock,
        settings=settings,
        staff=load_staff(settings.staff_file),
        keys=SessionKeys.from_file(settings.session_secret_file),
        limiter=limiter or SignInLimiter(store),
        signed_out=SignedOutSessions(store),
        access=AccessLog(store),
    )
    app.router.add_get("/sign-in", sign_in_page, name="sign_in")
    app.router.add_post("/sign-in", sign_in, name="sign_in_post")
    app.router.add_post("/sign-out", sign_out, name="sign_out")
    app.router.add_get("/", start_page, name="start")
    app.router.add_get("/events", events, name="events")
    app.router.add_get("/cases/{ref}", case_page, name="case")
    app.router.add_post(
        "/cases/{ref}/escalations/{number:\\d+}/outcome", record_outcome, name="outcome"
    )
    app.router.add_post("/cases/{ref}/overdrachten/{id}/withdraw", withdraw, name="withdraw")
    app.router.add_get("/access-log", access_log_page, name="access_log")
    from adapters.dashboard.ops_pages import add_ops_routes  # noqa: PLC0415 - it imports this

    add_ops_routes(app)
    app.router.add_get("/static/dashboard.css", stylesheet, name="css")
    app.router.add_get("/static/dashboard.js", script, name="js")
    return app


# --- middlewares -----------------------------------------------------------------


@web.middleware
async def security_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        if 300 <= exc.status < 400:
            response = web.Response(
                status=exc.status, headers={"Location": exc.headers["Location"]}
            )
        else:
            response = _page(exc.reason or "Fout", "<p>Deze pagina bestaat niet.</p>", exc.status)
    if not response.prepared:
        response.headers.update(SECURITY_HEADERS)
    return response


@web.middleware
async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A session for every route but sign-in and the static files; a CSRF token on every POST."""
    route = request.match_info.route.name
    if route is None or route in _PUBLIC_ROUTES:
        return await handler(request)
    dashboard = request.app[CONTEXT]
    now = dashboard.clock()
    session, member = await _session_of(request, dashboard, now)
    if session is None or member is None:
        if request.method == "GET" and route != "events":
            response: web.StreamResponse = web.Response(
                status=303, headers={"Location": f"{MOUNT}/sign-in"}
            )
        else:
            response = _page("Niet aangemeld", _sign_in_link(), 401)
        if SESSION_COOKIE in request.cookies:
            response.del_cookie(SESSION_COOKIE, path=MOUNT)
        return response
    request[SESSION] = session
    request[MEMBER] = member
    if request.method == "POST":
        form = await request.post()
        token = form.get("csrf")
        if not isinstance(token, str) or not dashboard.keys.csrf_valid(session.session_id, token):
            log.warning("dashboard_csrf_refused", route=route, username=member.username)
            await dashboard.record(request, f"post:{route}", "refused:csrf")
            return _page(
                "Formulier niet geaccepteerd",
                "<p>Het formulier kon niet worden gecontroleerd (verlopen of niet van deze "
                "pagina). Er is niets gewijzigd. Open de pagina opnieuw.</p>",
                403,
                member=member,
                csrf=dashboard.keys.csrf_token(session.session_id),
            )
    response = await handler(request)
    if route not in ("sign_out", "events") and not response.prepared:
        fresh = Session(session.session_id, session.username, session.started_at, now)
        dashboard.cookie(response, SESSION_COOKIE, dashboard.keys.seal(fresh))
    return response


async def _session_of(
    request: web.Request, dashboard: Dashboard, now: datetime
) -> tuple[Session | None, StaffMember | None]:
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        return None, None
    try:
        session = dashboard.keys.open(cookie, now=now, idle=dashboard.settings.session_idle)
    except SessionRefusedError as refused:
        log.info("dashboard_session_refused", reason=str(refused))
        return None, None
    if await dashboard.signed_out.contains(session.session_id):
        log.info("dashboard_session_refused", reason="the session was signed out")
        return None, None
    return session, dashboard.staff.get(session.username)


# --- sign-in ---------------------------------------------------------------------


async def sign_in_page(request: web.Request) -> web.StreamResponse:
    dashboard = request.app[CONTEXT]
    nonce = request.cookies.get(SIGN_IN_COOKIE) or new_session("", dashboard.clock()).session_id
    note = '<p class="notice">U bent afgemeld.</p>' if request.query.get("afgemeld") else ""
    response = _sign_in_form(dashboard, nonce, note, 200)
    dashboard.cookie(response, SIGN_IN_COOKIE, nonce)
    return response


async def sign_in(request: web.Request) -> web.StreamResponse:
    dashboard = request.app[CONTEXT]
    form = await request.post()
    fields = {k: v for k, v in form.items() if isinstance(v, str)}
    nonce = request.cookies.get(SIGN_IN_COOKIE, "")
    if not dashboard.keys.csrf_valid("signin:" + nonce, fields.get("csrf", "")):
        log.warning("dashboard_csrf_refused", route="sign_in")
        return _page(
            "Formulier niet geaccepteerd",
            "<p>Het aanmeldformulier kon niet worden gecontroleerd. " + _sign_in_link() + "</p>",
            403,
        )
    username = fields.get("username", "").strip()[:200]
    password = fields.get("password", "")
    subject = dashboard.keys.sign_in_subject(username, request.remote or "?")
    known = dashboard.staff.get(username) is not None
    logged_name = username if known else "(onbekend)"
    if not await dashboard.limiter.attempt(subject, dashboard.clock()):
        log.warning("dashboard_sign_in_limited", username=logged_name)
        return _sign_in_form(
            dashboard,
            nonce,
            '<p class="error">Te veel mislukte pogingen. Probeer het over een kwartier opnieuw.'
            "</p>",
            429,
        )
    member = dashboard.staff.authenticate(username, password)
    if member is None:  # the attempt counted: a failure
        log.warning("dashboard_sign_in_failed", username=logged_name)
        return _sign_in_form(
            dashboard, nonce, '<p class="error">Gebruikersnaam of wachtwoord onjuist.</p>', 401
        )
    await dashboard.limiter.succeeded(subject)
    session = new_session(member.username, dashboard.clock())
    log.info("dashboard_signed_in", username=member.username, role=member.role.value)
    await dashboard.record(request, "sign_in", "ok", member=member)
    response = web.Response(status=303, headers={"Location": f"{MOUNT}/"})
    dashboard.cookie(response, SESSION_COOKIE, dashboard.keys.seal(session))
    response.del_cookie(SIGN_IN_COOKIE, path=MOUNT)
    return response


async def sign_out(request: web.Request) -> web.StreamResponse:
    dashboard = request.app[CONTEXT]
    session: Session = request[SESSION]
    now = dashboard.clock()
    until = refused_until(now, dashboard.settings.session_idle)
    await dashboard.signed_out.add(session.session_id, until, now)
    await dashboard.record(request, "sign_out", "ok")
    log.info("dashboard_signed_out", username=session.username)
    response = web.Response(status=303, headers={"Location": f"{MOUNT}/sign-in?afgemeld=1"})
    response.del_cookie(SESSION_COOKIE, path=MOUNT)
    return response


def _sign_in_form(dashboard: Dashboard, nonce: str, note: str, status: int) -> web.Response:
    token = dashboard.keys.csrf_token("signin:" + nonce)
    return _page(
        "Aanmelden",
        f'{note}<form method="post" action="{MOUNT}/sign-in" class="signin box">'
        f"{csrf_field(token)}"
        '<label>Gebruikersnaam <input name="username" autocomplete="username" required '
        "autofocus></label>"
        '<label>Wachtwoord <input name="password" type="password" '
        'autocomplete="current-password" required></label>'
        '<button type="submit">Aanmelden</button></form>',
        status,
    )


def _sign_in_link() -> str:
    return f'<a href="{MOUNT}/sign-in">Meld u (opnieuw) aan</a>.'


# --- the start page --------------------------------------------------------------


def _row_key(text: str | None) -> tuple[date, str] | None:
    """A page link's key of a row, `<deadline>_<id>`; None when absent or not of that shape."""
    day, _, overdracht_id = (text or "").partition("_")
    try:
        return (date.fromisoformat(day), overdracht_id) if overdracht_id else None
    except ValueError:
        return None


def _key_text(row: OpenRow) -> str:
    return f"{row.deadline.isoformat()}_{row.id}"


def _filters(request: web.Request) -> tuple[OpenFilter, int]:
    q = request.query
    try:
        page = max(1, int(q.get("page", "1")))
    except ValueError:
        page = 1
    return (
        OpenFilter(
            gemeente=q.get("gemeente") or None,
            recipient=q.get("partner") or None,
            moment=q.get("moment") or None,
            state=q.get("state") or None,
            urgency=q.get("stand") or None,
        ),
        page,
    )


def _filter_params(filters: OpenFilter) -> dict[str, str | int | None]:
    return {
        "gemeente": filters.gemeente,
        "partner": filters.recipient,
        "moment": filters.moment,
        "state": filters.state,
        "stand": filters.urgency,
    }


async def start_page(request: web.Request) -> web.StreamResponse:
    dashboard = request.app[CONTEXT]
    member: StaffMember = request[MEMBER]
    filters, page = _filters(request)
    fragment = request.query.get("fragment") == "1"
    now = dashboard.clock()
    cutoffs = Cutoffs.at(now, dashboard.hub.calendar)
    size = dashboard.settings.page_size
    async with dashboard.store.connection() as db:
        counts = await open_counts(db, filters, cutoffs)
        after, before = _row_key(request.query.get("na")), _row_key(request.query.get("voor"))
        rows = await open_page(
            db,
            filters,
            cutoffs,
            page=page,
            size=size,
            after=after,
            before=None if after else before,
        )
        marker = await change_marker(db)
    await dashboard.record(
        request,
        "view_open_handovers",
        "ok",
        detail={k: str(v) for k, v in (_filter_params(filters) | {"page": page}).items() if v},
    )
    names = {m.code: m.name for m in dashboard.region}
    pages = page_count(counts.open, size)
    body_rows = []
    for row in rows:
        stand = cutoffs.state_of(row.deadline)
        body_rows.append(
            f'<tr class="{stand.value}" data-overdracht="{esc(row.id)}">'
            f'<td class="stand">{esc(URGENCY_WORDS[stand])}</td>'
            f"<td>{esc(day_text(row.deadline))}"
            f"{' <small>(uitgesteld)</small>' if row.deferred else ''}</td>"
            f'<td><a href="{MOUNT}/cases/{esc(row.case_ref)}">{esc(row.case_ref)}</a></td>'
            f"<td>{esc(names.get(row.gemeente, row.gemeente))}</td>"
            f"<td>{esc(row.recipient)}</td><td>{esc(row.moment)}</td>"
            f"<td>{esc(STATE_WORDS.get(row.state, row.state))}</td>"
            f"<td>{esc(moment_text(row.opened_at))}</td></tr>"
        )
    table = (
        '<table class="open"><thead><tr><th>Stand</th><th>Termijn</th><th>Zaak</th>'
        "<th>Gemeente</th><th>Ontvanger</th><th>Moment</th><th>Status</th><th>Verstuurd</th>"
        f"</tr></thead><tbody>{''.join(body_rows)}</tbody></table>"
        if body_rows
        else '<p class="muted">Geen open overdrachten bij deze selectie.</p>'
    )
    params = _filter_params(filters)
    # The links carry the key of the first or last row shown (a keyset: as cheap deep in
    # the list as at its top); the page number only names the page.
    pager = (
        '<div class="pager">'
        + (
            f'<a href="{MOUNT}/{query(params | {"page": page - 1, "voor": _key_text(rows[0])})}"'
            ' rel="prev">← vorige</a>'
            if page > 1 and rows
            else ""
        )
        + f"<span>Pagina {min(page, pages)} van {pages}</span>"
        + (
            f'<a href="{MOUNT}/{query(params | {"page": page + 1, "na": _key_text(rows[-1])})}"'
            ' rel="next">volgende →</a>'
            if page < pages and rows
            else ""
        )
        + "</div>"
    )
    counts_html = (
        '<div class="counts">'
        f'<div class="count" id="count-open">Open<b>{counts.open}</b></div>'
        f'<div class="count warning" id="count-warning">Bijna te laat<b>{counts.warning}</b></div>'
        f'<div class="count overdue" id="count-overdue">Te laat<b>{counts.overdue}</b></div>'
        "</div>"
    )
    inner = counts_html + table + pager
    if fragment:
        return web.Response(text=inner, content_type="text/html")
    content = (
        _filter_form(dashboard, filters)
        + '<p class="live" id="live-status">Live</p>'
        + f'<div id="open-list" data-marker="{esc(marker)}" data-events="{MOUNT}/events">'
        + inner
        + "</div>"
    )
    return _page(
        "Onbevestigde overdrachten",
        content,
        member=member,
        csrf=dashboard.keys.csrf_token(request[SESSION].session_id),
        script=True,
    )


def _filter_form(dashboard: Dashboard, filters: OpenFilter) -> str:
    gemeenten = sorted(((m.code, m.name) for m in dashboard.region), key=lambda c: c[1])
    partners = sorted(
        (c.party, c.name)
        for c in dashboard.hub.verifier.contracts
        if "overdracht.notice" in c.may_receive
    )
    moments = [(m.value, f"moment {m.value}") for m in Moment]
    states = [(s, STATE_WORDS[s]) for s in OPEN_STATES]
    stands = [(s.value, URGENCY_WORDS[s]) for s in DeadlineState]
    selects = (
        ("Gemeente", "gemeente", gemeenten, filters.gemeente, "alle"),
        ("Partner", "partner", partners, filters.recipient, "alle"),
        ("Moment", "moment", moments, filters.moment, "alle"),
        ("Status", "state", states, filters.state, "alle open"),
        ("Stand", "stand", stands, filters.urgency, "alle"),
    )
    return (
        f'<form method="get" action="{MOUNT}/" class="filters">'
        + "".join(
            f'<label>{label} <select name="{name}">'
            f"{options(choices, chosen, anything=anything)}</select></label>"
            for label, name, choices, chosen, anything in selects
        )
        + '<button type="submit">Filteren</button>'
        + f'<a href="{MOUNT}/">wissen</a></form>'
    )


async def events(request: web.Request) -> web.StreamResponse:
    """Server-sent events: `change` with the store's change marker whenever it moves."""
    dashboard = request.app[CONTEXT]
    response = web.StreamResponse(
        headers={
            **SECURITY_HEADERS,
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-store",
            "X-Accel-Buffering": "no",
        }
    )
    await response.prepare(request)
    loop = asyncio.get_running_loop()
    ends = loop.time() + STREAM_LIFETIME.total_seconds()
    interval = dashboard.settings.events_interval.total_seconds()
    last: str | None = None
    quiet_since = loop.time()
    with contextlib.suppress(ConnectionResetError, asyncio.CancelledError):
        await response.write(b"retry: 3000\n\n")
        while loop.time() < ends:
            async with dashboard.store.connection() as db:
                marker = await change_marker(db)
            if marker != last:
                await response.write(f"event: change\ndata: {marker}\n\n".encode())
                last, quiet_since = marker, loop.time()
            elif loop.time() - quiet_since > KEEPALIVE_SECONDS:
                await response.write(b": keepalive\n\n")
                quiet_since = loop.time()
            await asyncio.sleep(interval)
    return response


# --- the case page and its actions -----------------------------------------------


async def case_page(request: web.Request) -> web.StreamResponse:
    dashboard = request.app[CONTEXT]
    member: StaffMember = request[MEMBER]
    ref = request.match_info["ref"]
    facts = await case_facts(dashboard.store, dashboard.hub, ref)
    if facts is None:
        await dashboard.record(request, "view_case", "not_found", case_ref=ref)
        return _page("Zaak onbekend", "<p>De gateway kent deze zaak niet.</p>", 404, member=member)
    await dashboard.record(request, "view_case", "ok", case_ref=ref)
    csrf = dashboard.keys.csrf_token(request[SESSION].session_id)
    done = {
        "outcome": "De uitkomst van de escalatie is vastgelegd.",
        "withdrawn": "De intrekking is verstuurd.",
        "resent": "Het bericht staat opnieuw in de wachtrij om te verzenden.",
        "no_monitoring": "Het besluit om niet te monitoren is met reden vastgelegd.",
    }.get(request.query.get("gedaan", ""), "")
    content = (f'<p class="notice">{esc(done)}</p>' if done else "") + render_case(
        facts, dashboard.hub, dashboard.clock(), may_act=member.role.may_act, csrf=csrf
    )
    return _page(f"Zaak {ref}", content, member=member, csrf=csrf)


async def _may_act(
    request: web.Request, action: str, ref: str, detail: Mapping[str, str]
) -> web.Response | None:
    dashboard = request.app[CONTEXT]
    member: StaffMember = request[MEMBER]
    if member.role.may_act:
        return None
    log.warning("dashboard_action_refused", action=action, username=member.username, case_ref=ref)
    await dashboard.record(request, action, "refused:role", case_ref=ref, detail=detail)
    return _page(
        "Niet toegestaan",
        "<p>Uw rol mag deze handeling niet uitvoeren. Er is niets gewijzigd.</p>",
        403,
        member=member,
        csrf=dashboard.keys.csrf_token(request[SESSION].session_id),
    )


async def record_outcome(request: web.Request) -> web.StreamResponse:
    dashboard = request.app[CONTEXT]
    member: StaffMember = request[MEMBER]
    ref = request.match_info["ref"]
    number = int(request.match_info["number"])
    form = await request.post()
    detail = {"escalation": str(number), "outcome": str(form.get("outcome", ""))[:8]}
    refused = await _may_act(request, "record_outcome", ref, detail)
    if refused is not None:
        return refused
    async with dashboard.store.transaction() as uow:
        escalation = await uow.escalations.get(number)
    if escalation is None or escalation.case_ref != ref:
        await dashboard.record(request, "record_outcome", "not_found", case_ref=ref, detail=detail)
        return _page(
            "Escalatie onbekend", "<p>Deze zaak heeft die escalatie niet.</p>", 404, member=member
        )
    try:
        outcome = Outcome(str(form.get("outcome", "")))
    except ValueError:
        await dashboard.record(
            request, "record_outcome", "refused:input", case_ref=ref, detail=detail
        )
        return _page("Ongeldige uitkomst", "<p>Kies uitkomst I of II.</p>", 400, member=member)
    note = str(form.get("note", "")).strip()[:500]
    try:
        await escalations.record(
            dashboard.store, number, outcome, by=member.username, note=note, at=dashboard.clock()
        )
    except PermanentError as error:
        await dashboard.record(
            request, "record_outcome", f"refused:{error.code.value}", case_ref=ref, detail=detail
        )
        return _page(
            "Niet vastgelegd",
            f"<p>De uitkomst kon niet worden vastgelegd: {esc(error.rejection.detail)}.</p>",
            409,
            member=member,
        )
    await dashboard.record(request, "record_outcome", "ok", case_ref=ref, detail=detail)
    log.info("dashboard_outcome_recorded", escalation=number, username=member.username)
    raise web.HTTPSeeOther(f"{MOUNT}/cases/{ref}?gedaan=outcome#e-{number}")


async def withdraw(request: web.Request) -> web.StreamResponse:
    dashboard = request.app[CONTEXT]
    member: StaffMember = request[MEMBER]
    ref = request.match_info["ref"]
    overdracht_id = request.match_info["id"]
    form = await request.post()
    reason = str(form.get("reden", ""))
    detail = {"overdracht": overdracht_id, "reden": reason[:40]}
    refused = await _may_act(request, "withdraw", ref, detail)
    if refused is not None:
        return refused
    async with dashboard.store.transaction() as uow:
        overdracht = await uow.handovers.get(overdracht_id)
    if overdracht is None or overdracht.case_ref != ref:
        await dashboard.record(request, "withdraw", "not_found", case_ref=ref, detail=detail)
        return _page(
            "Overdracht onbekend", "<p>Deze zaak heeft die overdracht niet.</p>", 404, member=member
        )
    body: dict[str, Any] = {"reden": reason}
    explanation = str(form.get("toelichting", "")).strip()
    if explanation:
        body["toelichting"] = explanation
    command = SubmitMessage(
        type="overdracht.withdrawal",
        case=CaseRef(overdracht.case_ref, overdracht.gemeente),
        body=body,
        reply_to=overdracht.id,
    )
    try:
        sent = await submit(
            dashboard.store, dashboard.hub, dashboard.region, command, dashboard.clock()
        )
    except PermanentError as error:
        await dashboard.record(
            request, "withdraw", f"refused:{error.code.value}", case_ref=ref, detail=detail
        )
        return _page(
            "Niet ingetrokken",
            f"<p>De overdracht kon niet worden ingetrokken: {esc(error.rejection.detail)}.</p>",
            409,
            member=member,
        )
    detail = detail | {"message": sent[0].id if sent else ""}
    await dashboard.record(request, "withdraw", "ok", case_ref=ref, detail=detail)
    log.info("dashboard_withdrawn", overdracht_id=overdracht_id, username=member.username)
    raise web.HTTPSeeOther(f"{MOUNT}/cases/{ref}?gedaan=withdrawn#o-{overdracht_id}")


# --- the access log --------------------------------------------------------------


def _local_day(text: str) -> date | None:
    try:
        return date.fromisoformat(text) if text else None
    except ValueError:
        return None


async def access_log_page(request: web.Request) -> web.StreamResponse:
    dashboard = request.app[CONTEXT]
    member: StaffMember = request[MEMBER]
    q = request.query
    detail = {k: q.get(k, "")[:200] for k in ("user", "case", "from", "to") if q.get(k)}
    if member.role is not Role.ADMIN:
        await dashboard.record(request, "search_access_log", "refused:role", detail=detail)
        return _page(
            "Niet toegestaan", "<p>Alleen beheerders zien het toegangslog.</p>", 403, member=member
        )
    since, until = _local_day(q.get("from", "")), _local_day(q.get("to", ""))
    search = AccessQuery(
        username=q.get("user") or None,
        case_ref=q.get("case") or None,
        since=datetime.combine(since, time(0), LOCAL) if since else None,
        until=datetime.combine(until + timedelta(days=1), time(0), LOCAL) if until else None,
    )
    found = await dashboard.access.search(search)
    check = await dashboard.access.verify()
    await dashboard.record(request, "search_access_log", "ok", detail=detail)
    chain = (
        f'<p class="notice" id="chain">Keten intact: {check.entries} regels geverifieerd.</p>'
        if check.intact
        else f'<p class="error" id="chain">Keten verbroken bij regel {check.broken_at}.</p>'
    )
    rows = "".join(
        f"<tr><td>{e.sequence}</td><td>{esc(moment_text(e.access.at))}</td>"
        f"<td>{esc(e.access.username)}</td><td>{esc(e.access.role)}</td>"
        f"<td>{esc(e.access.action)}</td><td>{esc(e.access.case_ref or '')}</td>"
        f"<td>{esc(e.access.outcome)}</td>"
        f'<td class="muted">{esc(", ".join(f"{k}={v}" for k, v in e.access.detail.items()))}</td>'
        f"<td>{esc(e.access.client or '')}</td></tr>"
        for e in found
    )
    form = (
        f'<form method="get" action="{MOUNT}/access-log" class="filters">'
        f'<label>Gebruiker <input name="user" value="{esc(q.get("user", ""))}"></label>'
        f'<label>Zaak <input name="case" value="{esc(q.get("case", ""))}"></label>'
        f'<label>Van <input name="from" type="date" value="{esc(q.get("from", ""))}"></label>'
        f'<label>Tot en met <input name="to" type="date" value="{esc(q.get("to", ""))}"></label>'
        '<button type="submit">Zoeken</button></form>'
    )
    table = (
        "<table><thead><tr><th>#</th><th>Wanneer</th><th>Wie</th><th>Rol</th><th>Wat</th>"
        "<th>Zaak</th><th>Uitkomst</th><th>Details</th><th>Client</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>"
        if rows
        else '<p class="muted">Niets gevonden.</p>'
    )
    return _page(
        "Toegangslog (NEN 7513)",
        chain + form + table,
        member=member,
        csrf=dashboard.keys.csrf_token(request[SESSION].session_id),
    )


# --- static files and the page ---------------------------------------------------


async def stylesheet(_request: web.Request) -> web.StreamResponse:
    return web.Response(text=CSS, content_type="text/css")


async def script(_request: web.Request) -> web.StreamResponse:
    return web.Response(text=JS, content_type="application/javascript")


def _page(
    title: str,
    content: str,
    status: int = 200,
    *,
    member: StaffMember | None = None,
    csrf: str = "",
    script: bool = False,
) -> web.Response:
    return web.Response(
        text=layout(
            title,
            content,
            user=member.display_name if member else None,
            role=member.role.value if member else None,
            csrf=csrf,
            admin=member.role.may_audit if member else False,
            script=script,
        ),
        status=status,
        content_type="text/html",
    )
