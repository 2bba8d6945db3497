"""Reading delivery status notifications (RFC 3464) and replies that reach the bridge.

A bounce is a `multipart/report; report-type=delivery-status` whose
`message/delivery-status` part says, per recipient, an `Action` (`failed`,
`delayed`, ...) and a `Status` (`5.1.1`). The mail it is about is named by
the `Message-ID` in the returned headers (`text/rfc822-headers`) or returned
message (`message/rfc822`); failing both, by `In-Reply-To`/`References`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage, Message
from email.parser import HeaderParser
from email.utils import getaddresses

_MSGID = re.compile(r"<[^<>\s]+>")


@dataclass(frozen=True, slots=True)
class Bounce:
    """What a DSN says: about which of our mails, failed or only delayed, with which status."""

    original_message_id: str | None
    action: str  # failed | delayed | delivered | relayed | expanded
    status: str  # e.g. 5.1.1
    recipient: str | None

    @property
    def failed(self) -> bool:
        return self.action == "failed"


def parse_mail(raw: bytes) -> EmailMessage:
    parsed = message_from_bytes(raw, policy=policy.default)
    if not isinstance(parsed, EmailMessage):  # the default policy makes EmailMessage
        raise TypeError("the mail parser made no EmailMessage")
    return parsed


def is_dsn(mail: Message) -> bool:
    return (
        mail.get_content_type() == "multipart/report"
        and str(mail.get_param("report-type", "")).lower() == "delivery-status"
    )


def parse_dsn(mail: Message) -> Bounce | None:
    """The bounce a DSN reports; None when the mail is no DSN."""
    if not is_dsn(mail):
        return None
    action, status, recipient = "failed", "", None
    original: str | None = None
    for part in mail.walk():
        kind = part.get_content_type()
        if kind == "message/delivery-status":
            action, status, recipient = _recipient_fields(part)
        elif kind == "text/rfc822-headers" and original is None:
            original = _message_id(HeaderParser().parsestr(_text(part)).get("Message-ID"))
        elif kind == "message/rfc822" and original is None:
            payload = part.get_payload()
            inner = payload[0] if isinstance(payload, list) and payload else None
            if isinstance(inner, Message):
                original = _message_id(inner.get("Message-ID"))
    if original is None:
        original = _message_id(mail.get("In-Reply-To")) or _first_reference(mail)
    return Bounce(original, action, status, recipient)


def _recipient_fields(part: Message) -> tuple[str, str, str | None]:
    """Action, Status and Final-Recipient of the first recipient block that has an Action."""
    payload = part.get_payload()
    blocks: list[Message] = []
    if isinstance(payload, list):
        blocks = [block for block in payload if isinstance(block, Message)]
    else:  # some parsers leave it as text: read the header blocks ourselves
        text = part.get_payload(decode=True)
        raw = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(payload)
        blocks = [HeaderParser().parsestr(block) for block in re.split(r"\r?\n\r?\n", raw)]
    for block in blocks:
        action = block.get("Action")
        if action:
            final = block.get("Final-Recipient") or block.get("Original-Recipient") or ""
            recipient = final.partition(";")[2].strip() or None
            return str(action).strip().lower(), str(block.get("Status", "")).strip(), recipient
    return "failed", "", None


def _text(part: Message) -> str:
    payload = part.get_payload(decode=True)
    if isinstance(payload, bytes):
        return payload.decode("utf-8", "replace")
    raw = part.get_payload()
    return raw if isinstance(raw, str) else ""


def _message_id(value: object) -> str | None:
    if value is None:
        return None
    found = _MSGID.search(str(value))
    return found.group(0) if found else None


def _first_reference(mail: Message) -> str | None:
    references = mail.get("References")
    if references is None:
        return None
    found = _MSGID.findall(str(references))
    return found[-1] if found else None


def referenced_ids(mail: Message) -> list[str]:
    """The Message-IDs a reply names (In-Reply-To, then References, newest first)."""
    ids = []
    for header in ("In-Reply-To", "References"):
        value = mail.get(header)
        if value is not None:
            ids += _MSGID.findall(str(value))
    return list(dict.fromkeys(ids))


def from_address(mail: Message) -> tuple[str, str]:
    """The From header's (display name, address), address lowercased; empty when missing."""
    pairs = getaddresses([str(mail.get("From", ""))])
    if not pairs:
        return "", ""
    name, address = pairs[0]
    return name.strip(), address.strip().lower()


def plain_text(mail: EmailMessage) -> str:
    """The text a person wrote: the plain part (or the HTML part's text), and the subject."""
    subject = str(mail.get("Subject", ""))
    body = mail.get_body(preferencelist=("plain", "html"))
    content = ""
    if body is not None:
        try:
            content = body.get_content()
        except (LookupError, ValueError):  # an unknown charset: read what we can
            payload = body.get_payload(decode=True)
            content = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""
    return f"{subject}\n{content}"


def auto_submitted(mail: Message) -> bool:
    """A mail from a machine (RFC 3834), which must not be answered."""
    value = str(mail.get("Auto-Submitted", "no")).strip().lower()
    return (
        value != "no"
        or mail.get("List-Id") is not None
        or mail.get("Precedence")
        in (
            "bulk",
            "junk",
            "list",
        )
    )
