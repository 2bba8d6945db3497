"""The mails the bridge sends, in Dutch: what kind of message waits, never what it says.

NTA 7516 is the bar: no case content travels in ordinary mail. A mail names
the kind of message in words, a short case handle (derived with a secret, so
it identifies no case to anyone else), the deadline, the confirmation code and
a single-use, expiring link to the gateway's page where the team reads the
message. No name, birth date, BSN, address or free text of the case: every
value in a mail comes from `MailFacts`, which holds none of them.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import date, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from zoneinfo import ZoneInfo

from gateway.domain.envelope import parse_timestamp

ZONE = ZoneInfo("Europe/Amsterdam")

TYPE_WORDS = {
    "overdracht.notice": "Overdracht van een casus: uw bevestiging wordt gevraagd",
    "enrichment.request": "Verzoek om informatie (verrijking)",
    "case.notice": "Kennisgeving over een casus",
    "zorgmelding.forward": "Doorgestuurde zorgmelding",
    "overdracht.withdrawal": "Intrekking van een overdracht",
    "overdracht.answer": "Antwoord op uw vraag over een overdracht",
    "monitoring.request": "Verzoek om monitoring",
    "receipt": "Ontvangstbevestiging van Veilig Thuis",
    "error": "Uw bericht is door Veilig Thuis niet verwerkt",
}

_MONTHS = (
    "januari",
    "februari",
    "maart",
    "april",
    "mei",
    "juni",
    "juli",
    "augustus",
    "september",
    "oktober",
    "november",
    "december",
)
_DAYS = ("maandag", "dinsdag", "woensdag", "donderdag", "vrijdag", "zaterdag", "zondag")

_DEADLINE_WORDS = {
    "overdracht.notice": "Bevestigen uiterlijk",
    "enrichment.request": "Antwoord gevraagd voor",
    "monitoring.request": "Antwoord gevraagd voor",
}


def type_words(message_type: str) -> str:
    return TYPE_WORDS.get(message_type, "Bericht van Veilig Thuis")


def dutch_date(day: date) -> str:
    """`maandag 30 november 2026`."""
    return f"{_DAYS[day.weekday()]} {day.day} {_MONTHS[day.month - 1]} {day.year}"


def dutch_moment(moment: datetime) -> str:
    """`maandag 30 november 2026, 17:00` in Europe/Amsterdam."""
    local = moment.astimezone(ZONE)
    return f"{dutch_date(local.date())}, {local:%H:%M}"


def deadline_of(message_type: str, body: dict[str, object]) -> str | None:
    """The deadline a message sets the team, in words; None when it sets none.

    Read from the body's date fields only: the advised term of an overdracht,
    the `antwoord_voor` of a request.
    """
    if message_type == "overdracht.notice":
        term = body.get("geadviseerde_termijn")
        if isinstance(term, dict) and isinstance(term.get("uiterlijk"), str):
            return dutch_date(date.fromisoformat(term["uiterlijk"]))
    if message_type in ("enrichment.request", "monitoring.request"):
        before = body.get("antwoord_voor")
        if isinstance(before, str):
            return dutch_moment(parse_timestamp(before))
    return None


@dataclass(frozen=True, slots=True)
class MailFacts:
    """Everything a mail may say. None of it is case content."""

    team_name: str
    message_type: str
    case_handle: str | None
    deadline: str | None
    confirmation_code: str | None
    link: str | None
    link_expires: datetime | None
    actionable: bool  # the team is asked to answer (confirm, defer, respond)
    reminder: bool = False
    error_code: str | None = None


@dataclass(frozen=True, slots=True)
class Sender:
    address: str
    name: str


def subject_of(facts: MailFacts) -> str:
    handle = f" - dossier {facts.case_handle}" if facts.case_handle else ""
    prefix = "Herinnering: " if facts.reminder else ""
    return f"[Veilig Thuis] {prefix}{type_words(facts.message_type)}{handle}"


def text_lines(facts: MailFacts) -> list[str]:
    """The mail's plain text, line by line."""
    lines = [f"Beste collega's van {facts.team_name},", ""]
    if facts.reminder:
        lines += [
            "Dit is een herinnering. Veilig Thuis Gelderland-Zuid heeft nog geen bevestiging",
            "ontvangen van het volgende bericht:",
        ]
    else:
        lines += ["Veilig Thuis Gelderland-Zuid heeft een bericht voor uw team klaargezet:"]
    lines += ["", f"  {type_words(facts.message_type)}", ""]
    if facts.case_handle:
        lines.append(f"Dossier: {facts.case_handle}")
    if facts.deadline:
        words = _DEADLINE_WORDS.get(facts.message_type, "Termijn")
        lines.append(f"{words}: {facts.deadline}")
    if facts.confirmation_code:
        lines.append(f"Bevestigingscode: {facts.confirmation_code}")
    if facts.error_code:
        lines.append(f"Foutcode: {facts.error_code}")
    lines.append("")
    if facts.link:
        until = f", geldig tot {dutch_moment(facts.link_expires)}" if facts.link_expires else ""
        use = "eenmalig te gebruiken" if facts.actionable else "alleen om te lezen"
        lines += [
            f"Open het bericht via deze beveiligde link ({use}{until}):",
            facts.link,
            "",
        ]
    if facts.actionable and facts.message_type == "overdracht.notice":
        lines += [
            "Op de pagina van de link kunt u de overdracht bevestigen, of met een",
            "beargumenteerd besluit een nieuwe datum voorstellen. U kunt de overdracht",
            "ook bevestigen door deze e-mail te beantwoorden vanaf het geregistreerde",
            "adres van uw team, met de bevestigingscode in uw antwoord.",
            "",
        ]
    elif facts.actionable:
        lines += ["Op de pagina van de link kunt u het verzoek beantwoorden.", ""]
    lines += [
        "Deze e-mail bevat bewust geen gegevens over de casus of de betrokkenen:",
        "die leest u alleen via de beveiligde link (NTA 7516).",
        "Vragen? Veilig Thuis is op werkdagen van 9.00 tot 17.00 uur bereikbaar.",
        "",
        "Met vriendelijke groet,",
        "Veilig Thuis Gelderland-Zuid",
    ]
    return lines


def html_of(facts: MailFacts) -> str:
    """The same text as HTML: escaped lines, the link as a link."""
    parts = []
    for line in text_lines(facts):
        if facts.link and line == facts.link:
            href = html.escape(facts.link, quote=True)
            parts.append(f'<p><a href="{href}">Open het bericht</a></p>')
        elif line:
            parts.append(f"<p>{html.escape(line.strip())}</p>")
    body = "\n".join(parts)
    return (
        '<!DOCTYPE html>\n<html lang="nl"><head><meta charset="utf-8">'
        f"<title>{html.escape(subject_of(facts))}</title></head>\n<body>\n{body}\n</body></html>\n"
    )


def compose(
    facts: MailFacts, *, sender: Sender, to: tuple[str, ...], now: datetime
) -> EmailMessage:
    """The mail: plain text and HTML, a Message-ID of the sender's domain, no case content."""
    message = EmailMessage()
    domain = sender.address.rpartition("@")[2] or "localhost"
    message["Message-ID"] = make_msgid(domain=domain)
    message["Date"] = format_datetime(now.astimezone(ZONE))
    message["From"] = Address(display_name=sender.name, addr_spec=sender.address)
    message["To"] = ", ".join(to)
    message["Subject"] = subject_of(facts)
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies to this
    message["Content-Language"] = "nl"
    message.set_content("\n".join(text_lines(facts)) + "\n", charset="utf-8")
    message.add_alternative(html_of(facts), subtype="html", charset="utf-8")
    return message


def polite_reply(
    *, sender: Sender, to: str, in_reply_to: str | None, reason: str, now: datetime
) -> EmailMessage:
    """The answer to a mail the bridge could not use: where to go instead. No content echoed."""
    message = EmailMessage()
    domain = sender.address.rpartition("@")[2] or "localhost"
    message["Message-ID"] = make_msgid(domain=domain)
    message["Date"] = format_datetime(now.astimezone(ZONE))
    message["From"] = Address(display_name=sender.name, addr_spec=sender.address)
    message["To"] = to
    message["Subject"] = "[Veilig Thuis] Uw e-mail is niet verwerkt"
    message["Auto-Submitted"] = "auto-replied"
    if in_reply_to:
        message["In-Reply-To"] = in_reply_to
        message["References"] = in_reply_to
    lines = [
        "Beste afzender,",
        "",
        "Dank voor uw e-mail. Dit adres verwerkt alleen bevestigingen van een overdracht,",
        "per antwoord op onze e-mail met de bevestigingscode erin, verstuurd vanaf het",
        "geregistreerde adres van uw team. Uw e-mail is daarom niet verwerkt",
        f"({reason}).",
        "",
        "Gebruik de beveiligde link in de e-mail van Veilig Thuis om het bericht te lezen",
        "en te beantwoorden. Uw e-mail is bewaard en Veilig Thuis kan hem inzien.",
        "Is de link verlopen of heeft u vragen? Veilig Thuis is op werkdagen van 9.00 tot",
        "17.00 uur bereikbaar.",
        "",
        "Met vriendelijke groet,",
        "Veilig Thuis Gelderland-Zuid",
    ]
    message.set_content("\n".join(lines) + "\n", charset="utf-8")
    return message
