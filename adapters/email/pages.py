"""The bridge's pages (aiohttp, server-rendered, Dutch), mounted at /bridge/ of the gateway.

`GET /bridge/m/{message id}/{token}` shows the message to its team: an
overdracht with its veiligheidsvoorwaarden, advised term and the persons
informed, or an enrichment request with its persons; other types read only.
The form asks who answers (name, role) and what: confirm, or defer with a
reasoned decision and a new date; per person known / not known. `POST` to the
same address makes the team's message, signed by the bridge, hands it to the
gateway and keeps the evidence (token id, time, client address, user agent,
name and role) in the same transaction, with the token marked used.

A link that was altered, has expired, was used, or belongs to another
message or party gets a page that says so, a 4xx status, and changes nothing.
Every form carries a CSRF token bound to a cookie; every answer has strict
security headers and is never cached; the link routes are rate-limited per
client address, counted in the store (`adapters.store.shared_state`), so that
the limit holds across every instance that serves the pages.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import json
import re
import secrets
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import structlog
from aiohttp import web

from adapters.email.content import dutch_date, dutch_moment, type_words
from adapters.email.context import BridgeContext
from adapters.email.store import BridgeWork, Submission
from adapters.email.tokens import (
    LinkRefusedError,
    LinkToken,
    Purpose,
    Refusal,
    case_handle,
    csrf_token,
    read,
)
from adapters.store.shared_state import RateLimit, RateRule, subject_of
from adapters.store.sql import SqlStore
from gateway.domain.envelope import format_timestamp, parse_timestamp
from gateway.domain.handover import OverdrachtState
from gateway.service.ports import StoredMessage
from gateway.service.receiving import Disposition

log = structlog.get_logger("vtgw.email.pages")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

CONTEXT = web.AppKey("bridge_context", BridgeContext)
CSRF_COOKIE = "vtgw_bridge_csrf"
LINK_ROUTE = "/m/{message_id}/{token}"

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",  # the link holds the token: never pass it on
    "Cache-Control": "no-store",
    "Pragma": "no-cache",
}

_REFUSALS: Mapping[Refusal, tuple[int, str, str]] = {
    Refusal.ALTERED: (
        403,
        "Deze link is ongeldig",
        "De link is niet (meer) zoals Veilig Thuis hem verstuurde. Gebruik de link precies "
        "zoals hij in de e-mail staat.",
    ),
    Refusal.EXPIRED: (
        410,
        "Deze link is verlopen",
        "De link in de e-mail is niet meer geldig. Neem contact op met Veilig Thuis voor "
        "een nieuwe link.",
    ),
    Refusal.USED: (
        410,
        "Deze link is al gebruikt",
        "Met deze link is al geantwoord; een link werkt maar één keer. Er is niets gewijzigd.",
    ),
    Refusal.FOREIGN: (
        403,
        "Deze link hoort niet bij dit bericht",
        "De link is gemaakt voor een ander bericht of een ander team. Er is niets gewijzigd.",
    ),
}

_REFUSED_ANSWER = {
    "INVALID_STATE": "de overdracht is al bevestigd of ingetrokken",
    "SCHEMA_INVALID": "een van de ingevulde gegevens voldoet niet",
    "NOT_PERMITTED": "uw team mag dit bericht niet beantwoorden",
    "UNKNOWN_THREAD": "het bericht is niet (meer) bekend",
}

_LINE = re.compile(r"^[^\x00-\x1f\x7f]{1,100}$")

POSITIES = {"slachtoffer": "slachtoffer", "pleger": "pleger", "slachtoffer_en_pleger": "beide"}
INFORMED_ROLES = {
    "ouder_met_gezag": "ouder met gezag",
    "biologische_vader": "biologische vader",
    "directbetrokkene": "directbetrokkene",
    "professional": "professional",
}


LINK_RULE = RateRule(limit=60, window=timedelta(minutes=1))
"""At most sixty requests to the link routes per client address in any minute."""


class RateLimiter:
    """The link routes' rate limit per client address, counted on the store (all instances).

    The client's address is counted as a hash keyed with (a key derived from)
    the bridge's secret: the store holds no address.
    """

    SCOPE = "bridge_link"

    def __init__(self, store: SqlStore, secret: bytes, rule: RateRule = LINK_RULE) -> None:
        self._limit = RateLimit(store, self.SCOPE, rule)
        self._key = hmac.new(secret, b"vtgw-bridge rate limit", hashlib.sha256).digest()

    async def allow(self, client: str, now: datetime) -> bool:
        """Count a request of `client` at `now`; False when the limit refuses it."""
        return await self._limit.take(subject_of(self._key, client), now)


LIMITER = web.AppKey("bridge_rate_limiter", RateLimiter)


def create_pages_app(context: BridgeContext, limiter: RateLimiter | None = None) -> web.Application:
    """The sub-application for /bridge/ (by default limited on the bridge's own store)."""
    app = web.Application(middlewares=[security_headers, rate_limit])
    app[CONTEXT] = context
    app[LIMITER] = limiter or RateLimiter(context.store.sql, context.secret)
    app.router.add_get(LINK_ROUTE, show_message, name="link")
    app.router.add_post(LINK_ROUTE, submit_answer, name="link_post")
    app.router.add_get("/static/bridge.css", stylesheet, name="css")
    return app


# --- middlewares -----------------------------------------------------------------


@web.middleware
async def security_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        response = _page(exc.reason or "Fout", "<p>Deze pagina bestaat niet.</p>", exc.status)
    response.headers.update(SECURITY_HEADERS)
    if request.app[CONTEXT].public_base_url.startswith("https://"):
        response.headers["Strict-Transport-Security"] = "max-age=31536000"
    return response


@web.middleware
async def rate_limit(request: web.Request, handler: Handler) -> web.StreamResponse:
    route = request.match_info.route.name
    if route in ("link", "link_post") and not await request.app[LIMITER].allow(
        request.remote or "?", request.app[CONTEXT].clock()
    ):
        log.warning("bridge_rate_limited", route=route)
        return _page(
            "Te veel verzoeken",
            "<p>U heeft in korte tijd te veel verzoeken gedaan. Probeer het over een minuut "
            "opnieuw.</p>",
            429,
        )
    return await handler(request)


# --- handlers --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Opened:
    """A link that holds: its token, the message, the team's name."""

    token: LinkToken
    message: StoredMessage
    team_name: str
    body: dict[str, Any]
    handover_state: OverdrachtState | None


async def show_message(request: web.Request) -> web.StreamResponse:
    context = request.app[CONTEXT]
    now = context.clock()
    try:
        async with context.store.transaction() as work:
            opened = await _open(context, work, request, now)
    except LinkRefusedError as refused:
        return _refused(refused.refusal, request)
    nonce = request.cookies.get(CSRF_COOKIE) or secrets.token_urlsafe(24)
    response = _page(
        type_words(opened.message.type),
        _message_html(context, opened)
        + _form_html(opened, csrf_token(context.secret, nonce, opened.token.token_id)),
    )
    response.set_cookie(
        CSRF_COOKIE,
        nonce,
        path="/bridge/",
        httponly=True,
        samesite="Strict",
        secure=context.public_base_url.startswith("https://"),
    )
    return response


async def submit_answer(request: web.Request) -> web.StreamResponse:  # noqa: PLR0911 - a page per refusal
    context = request.app[CONTEXT]
    form = await request.post()
    fields = {key: str(value) for key, value in form.items() if isinstance(value, str)}
    now = context.clock()
    try:
        token = _read_link(context, request, now)
    except LinkRefusedError as refused:
        return _refused(refused.refusal, request)
    nonce = request.cookies.get(CSRF_COOKIE, "")
    expected = csrf_token(context.secret, nonce, token.token_id)
    if not nonce or not secrets.compare_digest(fields.get("csrf", ""), expected):
        log.warning("bridge_csrf_refused", token_id=token.token_id)
        return _page(
            "Formulier niet geaccepteerd",
            "<p>Het formulier kon niet worden gecontroleerd (het is verlopen of niet van deze "
            "pagina). Open de link uit de e-mail opnieuw. Er is niets gewijzigd.</p>",
            403,
        )
    async with context.store.transaction() as work:
        try:
            opened = await _open(context, work, request, now)
        except LinkRefusedError as refused:
            return _refused(refused.refusal, request)
        if opened.token.purpose is not Purpose.RESPOND:
            return _page("Alleen lezen", "<p>Dit bericht hoeft u niet te beantwoorden.</p>", 405)
        try:
            answer_type, body, name, role = _answer_of(opened, fields, now)
        except ValueError as problem:
            nonce_field = csrf_token(context.secret, nonce, opened.token.token_id)
            return _page(
                type_words(opened.message.type),
                f'<p class="fout">{html.escape(str(problem))}</p>'
                + _message_html(context, opened)
                + _form_html(opened, nonce_field, fields),
                400,
            )
        if not await work.mail.use_token(opened.token.token_id, now):
            return _refused(Refusal.USED, request)
        _, handled = await context.answer(
            work,
            team=opened.token.party,
            original=opened.message,
            message_type=answer_type,
            body=body,
            evidence=Submission(
                channel="link",
                party=opened.token.party,
                answered_id=opened.message.id,
                answer_type=answer_type,
                answer_id="",
                outcome="",
                at=now,
                token_id=opened.token.token_id,
                client_address=request.remote,
                user_agent=request.headers.get("User-Agent", "")[:500],
                name=name,
                role=role,
            ),
            now=now,
        )
        if handled.disposition is not Disposition.ACK:
            await work.mail.release_token(opened.token.token_id)
    if handled.disposition is not Disposition.ACK:
        code = handled.rejection.code.value if handled.rejection else ""
        reason = _REFUSED_ANSWER.get(code, "het antwoord voldoet niet aan de afspraken")
        return _page(
            "Antwoord niet verwerkt",
            f"<p>Veilig Thuis kon uw antwoord niet verwerken: {html.escape(reason)}.</p>"
            "<p>U kunt de link opnieuw openen en het nog eens proberen, of contact opnemen "
            "met Veilig Thuis.</p>",
            409,
        )
    return _page("Dank u wel", f"<p>{html.escape(_thanks(answer_type))}</p>")


async def stylesheet(_request: web.Request) -> web.StreamResponse:
    return web.Response(text=_CSS, content_type="text/css")


# --- the link ------------------------------------------------------------------


def _read_link(context: BridgeContext, request: web.Request, now: datetime) -> LinkToken:
    token = read(context.secret, request.match_info["token"], now)
    if token.message_id != request.match_info["message_id"]:
        raise LinkRefusedError(Refusal.FOREIGN)
    return token


async def _open(
    context: BridgeContext, work: BridgeWork, request: web.Request, now: datetime
) -> Opened:
    """The link's token checked against the store and its message; LinkRefusedError if not."""
    token = _read_link(context, request, now)
    issued = await work.mail.token(token.token_id)
    if issued is None:
        raise LinkRefusedError(Refusal.ALTERED)  # signed with our secret, but never issued
    if issued.token.message_id != token.message_id or issued.token.party != token.party:
        raise LinkRefusedError(Refusal.FOREIGN)
    message = await work.core.messages.get(issued.message_sender, token.message_id)
    team = context.team(token.party)
    if message is None or team is None or message.recipient != token.party:
        raise LinkRefusedError(Refusal.FOREIGN)
    if token.purpose is Purpose.RESPOND and issued.used_at is not None:
        raise LinkRefusedError(Refusal.USED)
    overdracht = (
        await work.core.handovers.get(message.id) if message.type == "overdracht.notice" else None
    )
    body: dict[str, Any] = json.loads(message.raw).get("body", {})
    return Opened(token, message, team.name, body, overdracht.state if overdracht else None)


def _refused(refusal: Refusal, request: web.Request) -> web.Response:
    status, title, text = _REFUSALS[refusal]
    log.info("bridge_link_refused", refusal=refusal.value, method=request.method)
    return _page(title, f"<p>{html.escape(text)}</p>" + _CONTACT, status)


# --- reading the form ------------------------------------------------------------


def _line(fields: Mapping[str, str], name: str, label: str) -> str:
    value = " ".join(fields.get(name, "").split())
    if not _LINE.fullmatch(value):
        raise ValueError(f"Vul {label} in (hoogstens 100 tekens).")
    return value


def _text(fields: Mapping[str, str], name: str, label: str, limit: int = 2000) -> str:
    value = fields.get(name, "").strip().replace("\r\n", "\n")
    if not value or len(value) > limit:
        raise ValueError(f"Vul {label} in (hoogstens {limit} tekens).")
    return value


def _answer_of(
    opened: Opened, fields: Mapping[str, str], now: datetime
) -> tuple[str, dict[str, Any], str, str]:
    """The message type and body the form asks for, and the name and role given."""
    name = _line(fields, "naam", "uw naam")
    role = _line(fields, "functie", "uw functie")
    who = {"naam": name, "functie": role}
    if opened.message.type == "enrichment.request":
        return "enrichment.response", _enrichment_body(opened, fields, who), name, role
    if opened.message.type == "monitoring.request":
        return "monitoring.response", _monitoring_body(opened, fields, who), name, role
    choice = fields.get("keuze")
    if choice == "bevestigen":
        body: dict[str, Any] = {"bevestigd_door": who, "bevestigd_op": format_timestamp(now)}
        remark = fields.get("opmerking", "").strip()
        if remark:
            body["opmerking"] = _text(fields, "opmerking", "de opmerking")
        return "overdracht.confirmation", body, name, role
    if choice == "uitstellen":
        reasons = _text(fields, "beargumenteerd_besluit", "het beargumenteerde besluit")
        try:
            new_date = date.fromisoformat(fields.get("nieuwe_datum", ""))
        except ValueError as exc:
            raise ValueError("Vul een geldige nieuwe datum in.") from exc
        body = {
            "beargumenteerd_besluit": reasons,
            "nieuwe_datum": new_date.isoformat(),
            "besloten_door": who,
        }
        return "overdracht.deferral", body, name, role
    raise ValueError("Kies: de overdracht bevestigen, of uitstellen met een nieuwe datum.")


def _enrichment_body(
    opened: Opened, fields: Mapping[str, str], who: Mapping[str, str]
) -> dict[str, Any]:
    answers = []
    for person in opened.body.get("personen", []):
        pid = str(person.get("persoon_id"))
        known = fields.get(f"bekend_{pid}")
        if known not in ("J", "N"):
            raise ValueError("Geef per persoon aan of die bij uw team bekend is.")
        answer: dict[str, Any] = {"persoon_id": pid, "indicatie_bekend": known}
        if known == "J":
            status = fields.get(f"status_{pid}")
            if status not in ("actief", "afgesloten"):
                raise ValueError("Kies per bekende persoon of de hulp actief of afgesloten is.")
            try:
                since = date.fromisoformat(fields.get(f"sinds_{pid}", "")).isoformat()
            except ValueError as exc:
                raise ValueError("Vul per bekende persoon in sinds wanneer.") from exc
            reach = " ".join(fields.get("bereikbaar", "").split())
            if not reach:
                raise ValueError("Vul een telefoonnummer of e-mailadres in waarop VT u bereikt.")
            contact = {**who, "organisatie": opened.team_name[:100]}
            contact["email" if "@" in reach else "telefoon"] = reach
            answer["betrokkenheid"] = {
                "soort_hulp": _line(fields, f"soort_{pid}", "de soort hulp"),
                "sinds": since,
                "status": status,
            }
            answer["contact"] = contact
        answers.append(answer)
    return {"personen": answers}


def _yes_no(fields: Mapping[str, str], name: str, label: str) -> bool:
    answer = fields.get(name)
    if answer not in ("ja", "nee"):
        raise ValueError(f"Geef aan of {label} (ja of nee).")
    return answer == "ja"


def _monitoring_body(
    opened: Opened, fields: Mapping[str, str], who: Mapping[str, str]
) -> dict[str, Any]:
    """§7.1 B: per safety condition met, not met or partly; the safety score; the phases."""
    conditions = []
    for condition in opened.body.get("veiligheidsvoorwaarden", []):
        number = int(condition["nummer"])
        met = fields.get(f"voldaan_{number}")
        if met not in ("ja", "nee", "deels"):
            raise ValueError(f"Geef bij voorwaarde {number} aan of die is nageleefd.")
        answer: dict[str, Any] = {"nummer": number, "voldaan": met}
        note = fields.get(f"toelichting_{number}", "").strip()
        if note:
            answer["toelichting"] = _text(fields, f"toelichting_{number}", "de toelichting")
        conditions.append(answer)
    try:
        score = int(fields.get("score", ""))
    except ValueError as exc:
        raise ValueError("Geef een veiligheidsscore van 0 tot en met 10.") from exc
    if not 0 <= score <= 10:
        raise ValueError("Geef een veiligheidsscore van 0 tot en met 10.")
    direct = _yes_no(fields, "directe_veiligheid", "directe veiligheid is bereikt")
    stable = _yes_no(fields, "stabiele_veiligheid", "stabiele veiligheid is bereikt")
    if stable and not direct:
        raise ValueError("Stabiele veiligheid komt na directe veiligheid: controleer uw antwoord.")
    body: dict[str, Any] = {
        "veiligheidsvoorwaarden": conditions,
        "veiligheidsscore_professional": {
            "score": score,
            "onderbouwing": _text(fields, "onderbouwing", "de onderbouwing van de score"),
        },
        "directe_veiligheid": direct,
        "stabiele_veiligheid": stable,
        "herstel_schade_aandacht": _yes_no(
            fields, "herstel_schade_aandacht", "er aandacht is voor herstel van de schade"
        ),
        "ingevuld_door": dict(who),
    }
    if fields.get("opmerkingen", "").strip():
        body["opmerkingen"] = _text(fields, "opmerkingen", "de opmerkingen")
    return body


def _thanks(answer_type: str) -> str:
    return {
        "overdracht.confirmation": "Uw bevestiging is ontvangen. Uw team heeft de casus nu "
        "overgenomen; Veilig Thuis krijgt hiervan bericht.",
        "overdracht.deferral": "Uw besluit en de nieuwe datum zijn ontvangen. Veilig Thuis "
        "blijft verantwoordelijk tot u de overdracht bevestigt.",
        "enrichment.response": "Uw antwoord is ontvangen door Veilig Thuis.",
        "monitoring.response": "Uw antwoord op het monitoringsverzoek is ontvangen door "
        "Veilig Thuis.",
    }.get(answer_type, "Uw antwoord is ontvangen.")


# --- rendering -----------------------------------------------------------------------

_CONTACT = (
    "<p>Vragen? Veilig Thuis Gelderland-Zuid is op werkdagen van 9.00 tot 17.00 uur bereikbaar.</p>"
)


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _page(title: str, content: str, status: int = 200) -> web.Response:
    document = (
        '<!DOCTYPE html>\n<html lang="nl"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="robots" content="noindex, nofollow">'
        f'<title>{_e(title)} - Veilig Thuis</title><link rel="stylesheet" '
        'href="/bridge/static/bridge.css"></head>\n<body><main>'
        f"<header>Veilig Thuis Gelderland-Zuid</header><h1>{_e(title)}</h1>\n"
        f"{content}\n</main></body></html>\n"
    )
    return web.Response(text=document, status=status, content_type="text/html", charset="utf-8")


def _person_name(person: Mapping[str, Any]) -> str:
    parts = [person.get("voornamen"), person.get("voorvoegsel"), person.get("geslachtsnaam")]
    return " ".join(str(p) for p in parts if p)


def _persons_html(persons: Iterable[Mapping[str, Any]]) -> str:
    rows = []
    for person in persons:
        details = [
            str(person.get("rol", "")),
            POSITIES.get(str(person.get("positie", "")), ""),
            f"geboren {dutch_date(date.fromisoformat(person['geboortedatum']))}"
            if person.get("geboortedatum")
            else "",
            f"BSN {person['bsn']}" if person.get("bsn") else "",
        ]
        rows.append(
            f"<li><strong>{_e(_person_name(person))}</strong> "
            f"({_e(', '.join(d for d in details if d))})</li>"
        )
    return "<ul>" + "".join(rows) + "</ul>"


def _message_html(context: BridgeContext, opened: Opened) -> str:
    message, body = opened.message, opened.body
    facts = [f"<dt>Team</dt><dd>{_e(opened.team_name)}</dd>"]
    if message.case_ref:
        handle = case_handle(context.secret, message.case_ref)
        facts.append(f"<dt>Dossier</dt><dd>{_e(handle)} (casus {_e(message.case_ref)})</dd>")
    parts = ["<dl>" + "".join(facts) + "</dl>"]
    if message.type == "overdracht.notice":
        parts.append(_notice_html(body, opened.handover_state))
    elif message.type == "enrichment.request":
        parts.append("<h2>Personen</h2>" + _persons_html(body.get("personen", [])))
        if body.get("antwoord_voor"):
            moment = dutch_moment(parse_timestamp(body["antwoord_voor"]))
            parts.append(f"<p>Antwoord gevraagd voor {_e(moment)}.</p>")
    elif message.type == "monitoring.request":
        parts.append(_monitoring_html(body))
    else:
        parts.append("<h2>Inhoud</h2>" + _generic_html(body))
    contact = body.get("vt_contact")
    if isinstance(contact, dict):
        parts.append(
            "<h2>Contactpersoon Veilig Thuis</h2><p>"
            + _e(
                ", ".join(
                    str(contact.get(k))
                    for k in ("naam", "functie", "telefoon", "email")
                    if contact.get(k)
                )
            )
            + "</p>"
        )
    return "\n".join(parts)


def _monitoring_html(body: Mapping[str, Any]) -> str:
    moment = {"3_maanden": "3 maanden", "12_maanden": "12 maanden"}.get(
        str(body.get("moment")), "een extra moment"
    )
    parts = [
        f"<p>Veilig Thuis monitort de veiligheid {_e(moment)} na de overdracht (§7.1) en vraagt "
        "u hoe het staat met de veiligheidsvoorwaarden.</p>",
        "<h2>Veiligheidsvoorwaarden</h2><ol>",
    ]
    for condition in body.get("veiligheidsvoorwaarden", []):
        parts.append(
            f'<li value="{_e(condition.get("nummer"))}">{_e(condition.get("omschrijving"))}</li>'
        )
    parts.append("</ol>")
    if body.get("antwoord_voor"):
        deadline = dutch_moment(parse_timestamp(body["antwoord_voor"]))
        parts.append(f"<p>Antwoord gevraagd voor {_e(deadline)}.</p>")
    return "".join(parts)


def _notice_html(body: Mapping[str, Any], state: OverdrachtState | None) -> str:
    parts = [f"<p>Moment van overdracht: {_e(body.get('moment', ''))}</p>"]
    if state in (OverdrachtState.CONFIRMED, OverdrachtState.WITHDRAWN):
        parts.append(f'<p class="fout">Deze overdracht is al {_e(_STATE_WORDS[state])}.</p>')
    parts.append("<h2>Overdrachtsinformatie</h2>" + _paragraphs(body.get("overdrachtsinformatie")))
    parts.append("<h2>Advies</h2>" + _paragraphs(body.get("advies")))
    conditions = body.get("veiligheidsvoorwaarden") or []
    if conditions:
        items = "".join(
            f"<li>{_e(c.get('nummer'))}. {_e(c.get('omschrijving'))}</li>" for c in conditions
        )
        parts.append(f"<h2>Veiligheidsvoorwaarden</h2><ol class='vv'>{items}</ol>")
    term = body.get("geadviseerde_termijn", {}).get("uiterlijk")
    if term:
        parts.append(
            f"<h2>Geadviseerde termijn</h2><p>Uiterlijk {_e(dutch_date(date.fromisoformat(term)))}"
            "</p>"
        )
    warm = body.get("warme_overdracht")
    if isinstance(warm, dict):
        where = "in het huishouden" if warm.get("plaats") == "huishouden" else warm.get("locatie")
        moment = dutch_moment(parse_timestamp(warm["afspraak_op"]))
        parts.append(f"<h2>Warme overdracht</h2><p>{_e(moment)}, {_e(where)}</p>")
    persons = {p.get("persoon_id"): p for p in body.get("personen", [])}
    parts.append("<h2>Cliëntsysteem</h2>" + _persons_html(persons.values()))
    informed = []
    for entry in body.get("geinformeerde_personen", []):
        if entry.get("professional"):
            pro = entry["professional"]
            who = f"{pro.get('naam')} ({pro.get('organisatie')})"
        else:
            who = _person_name(persons.get(entry.get("persoon_id"), {}))
        when = entry.get("geinformeerd_op")
        on = f", op {dutch_date(date.fromisoformat(when))}" if when else ""
        informed.append(
            f"<li>{_e(who)}: {_e(INFORMED_ROLES.get(entry.get('rol'), ''))}{_e(on)}</li>"
        )
    parts.append("<h2>Geïnformeerde personen</h2><ul>" + "".join(informed) + "</ul>")
    monitoring = body.get("monitoring", {})
    if monitoring.get("afgesproken"):
        months = ", ".join(str(m) for m in monitoring.get("momenten_maanden", []))
        parts.append(f"<h2>Monitoring</h2><p>Na {_e(months)} maanden.</p>")
    return "\n".join(parts)


_STATE_WORDS = {OverdrachtState.CONFIRMED: "bevestigd", OverdrachtState.WITHDRAWN: "ingetrokken"}


def _paragraphs(text: object) -> str:
    if not text:
        return ""
    return "".join(f"<p>{_e(line)}</p>" for line in str(text).splitlines() if line.strip())


def _generic_html(value: object) -> str:
    if isinstance(value, dict):
        items = "".join(f"<dt>{_e(k)}</dt><dd>{_generic_html(v)}</dd>" for k, v in value.items())
        return f"<dl>{items}</dl>"
    if isinstance(value, list):
        return "<ul>" + "".join(f"<li>{_generic_html(v)}</li>" for v in value) + "</ul>"
    return _e(value)


def _form_html(opened: Opened, csrf: str, fields: Mapping[str, str] | None = None) -> str:
    if opened.token.purpose is not Purpose.RESPOND:
        return "<p>Dit bericht is ter informatie; u hoeft niets te doen.</p>" + _CONTACT
    if opened.handover_state in (OverdrachtState.CONFIRMED, OverdrachtState.WITHDRAWN):
        return _CONTACT
    given = fields or {}

    def value(name: str) -> str:
        return _e(given.get(name, ""))

    who = (
        "<fieldset><legend>Wie antwoordt?</legend>"
        f'<label>Naam <input name="naam" required maxlength="100" value="{value("naam")}"></label>'
        f'<label>Functie <input name="functie" required maxlength="100" '
        f'value="{value("functie")}"></label></fieldset>'
    )
    if opened.message.type == "enrichment.request":
        rows = []
        for person in opened.body.get("personen", []):
            pid = _e(person.get("persoon_id"))
            rows.append(
                f"<fieldset><legend>{_e(_person_name(person))}</legend>"
                f'<label><input type="radio" name="bekend_{pid}" value="N" required> '
                "Niet bekend</label>"
                f'<label><input type="radio" name="bekend_{pid}" value="J"> Bekend</label>'
                f'<label>Soort hulp <input name="soort_{pid}" maxlength="100"></label>'
                f'<label>Sinds <input type="date" name="sinds_{pid}"></label>'
                f'<label>Status <select name="status_{pid}"><option value="">-</option>'
                '<option value="actief">actief</option>'
                '<option value="afgesloten">afgesloten</option></select></label>'
                "</fieldset>"
            )
        what = (
            "".join(rows) + "<label>Telefoon of e-mail voor Veilig Thuis (bij een bekende persoon) "
            f'<input name="bereikbaar" maxlength="100" value="{value("bereikbaar")}"></label>'
        )
        button = "Antwoord versturen"
    elif opened.message.type == "monitoring.request":
        what = _monitoring_form(opened.body, value)
        button = "Antwoord versturen"
    else:
        what = (
            "<fieldset><legend>Uw besluit</legend>"
            '<label><input type="radio" name="keuze" value="bevestigen" required> '
            "Wij nemen de casus over (bevestigen)</label>"
            '<label>Opmerking (niet verplicht) <textarea name="opmerking" maxlength="2000">'
            f"{value('opmerking')}</textarea></label>"
            '<label><input type="radio" name="keuze" value="uitstellen"> '
            "Wij kunnen de casus niet binnen de termijn oppakken (beargumenteerd besluit)</label>"
            '<label>Beargumenteerd besluit <textarea name="beargumenteerd_besluit" '
            f'maxlength="2000">{value("beargumenteerd_besluit")}</textarea></label>'
            '<label>Nieuwe datum <input type="date" name="nieuwe_datum" '
            f'value="{value("nieuwe_datum")}"></label></fieldset>'
        )
        button = "Besluit versturen"
    return (
        '<form method="post">'
        f'<input type="hidden" name="csrf" value="{_e(csrf)}">'
        f"{who}{what}"
        f'<button type="submit">{button}</button></form>'
    )


def _monitoring_form(body: Mapping[str, Any], value: Callable[[str], str]) -> str:
    def choice(name: str, options: tuple[str, ...]) -> str:
        return "".join(
            f'<label><input type="radio" name="{name}" value="{option}" required> {option}</label>'
            for option in options
        )

    rows = []
    for condition in body.get("veiligheidsvoorwaarden", []):
        number = _e(condition.get("nummer"))
        rows.append(
            f"<fieldset><legend>Voorwaarde {number}: nageleefd?</legend>"
            + choice(f"voldaan_{number}", ("ja", "nee", "deels"))
            + f'<label>Toelichting (niet verplicht) <textarea name="toelichting_{number}" '
            + f'maxlength="2000">{value("toelichting_" + number)}</textarea></label></fieldset>'
        )
    return (
        "".join(rows)
        + "<fieldset><legend>Veiligheid</legend>"
        + '<label>Veiligheidsscore (0-10) <input type="number" name="score" min="0" max="10" '
        + f'required value="{value("score")}"></label>'
        + '<label>Onderbouwing <textarea name="onderbouwing" maxlength="2000" required>'
        + f"{value('onderbouwing')}</textarea></label>"
        + "<p>Directe veiligheid bereikt?</p>"
        + choice("directe_veiligheid", ("ja", "nee"))
        + "<p>Stabiele veiligheid bereikt?</p>"
        + choice("stabiele_veiligheid", ("ja", "nee"))
        + "<p>Aandacht voor herstel van de schade?</p>"
        + choice("herstel_schade_aandacht", ("ja", "nee"))
        + '<label>Opmerkingen (niet verplicht) <textarea name="opmerkingen" maxlength="2000">'
        + f"{value('opmerkingen')}</textarea></label></fieldset>"
    )


_CSS = """
body { font-family: sans-serif; margin: 0; background: #f6f6f6; color: #1a1a1a; }
main { max-width: 46rem; margin: 0 auto; padding: 1rem 1.5rem; background: #fff; }
header { font-weight: bold; color: #6b2c91; }
fieldset { margin: 1rem 0; border: 1px solid #ccc; }
label { display: block; margin: 0.5rem 0; }
input, textarea, select { font: inherit; }
textarea { width: 100%; min-height: 5rem; }
.fout { color: #a00; font-weight: bold; }
dt { font-weight: bold; }
"""
