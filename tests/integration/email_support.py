"""Helpers of the e-mail bridge's tests: a real SMTP server as the teams' mailbox, mail to send.

`Mailbox` is an aiosmtpd server in a thread of its own: it accepts every mail
the gateway's bridge sends (it is the bridge's SMTP server and the teams'
mailboxes at once) and keeps them for the test to read.
"""

from __future__ import annotations

import asyncio
import smtplib
import threading
import time
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from tests.integration.gateway_rig import free_port

CHROMIUM = "/usr/bin/chromium"
LINK_PREFIX = "/bridge/m/"


@dataclass(frozen=True, slots=True)
class Received:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    raw: bytes

    @property
    def message(self) -> EmailMessage:
        parsed = message_from_bytes(self.raw, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed

    def text(self) -> str:
        body = self.message.get_body(preferencelist=("plain",))
        assert body is not None
        return str(body.get_content())

    def html(self) -> str:
        body = self.message.get_body(preferencelist=("html",))
        assert body is not None
        return str(body.get_content())

    def link(self) -> str:
        for word in self.text().split():
            if LINK_PREFIX in word:
                return word
        raise AssertionError(f"no link in the mail:\n{self.text()}")

    def code(self) -> str:
        for line in self.text().splitlines():
            if line.startswith("Bevestigingscode:"):
                return line.split(":", 1)[1].strip()
        raise AssertionError("no confirmation code in the mail")


@dataclass
class _Collector:
    mails: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        raw = envelope.original_content or b""
        with self.lock:
            self.mails.append(Received(envelope.mail_from or "", tuple(envelope.rcpt_tos), raw))
        return "250 2.0.0 Ok: queued"


class Mailbox:
    """A real SMTP server on localhost that keeps what it is sent."""

    def __init__(self) -> None:
        self.port = free_port()
        self._collector = _Collector()
        self._controller = Controller(self._collector, hostname="127.0.0.1", port=self.port)

    def __enter__(self) -> Mailbox:
        self._controller.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._controller.stop()

    @property
    def mails(self) -> list[Received]:
        with self._collector.lock:
            return list(self._collector.mails)

    async def wait_for(
        self, predicate: Any, timeout: float = 20.0, what: str = "a mail"
    ) -> Received:
        """The first mail (oldest first) for which `predicate(mail)` holds, waiting for it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for mail in self.mails:
                if predicate(mail):
                    return mail
            await asyncio.sleep(0.1)
        subjects = [str(m.message["Subject"]) for m in self.mails]
        pytest.fail(f"no {what} arrived in {timeout} s; mails: {subjects}")


def send_mail(port: int, message: EmailMessage, *, mail_from: str, to: str) -> None:
    """Deliver a mail to an SMTP server (the bridge's inbound listener), as an MX would."""
    try:
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
            client.send_message(message, from_addr=mail_from, to_addrs=[to])
    except OSError as error:
        pytest.fail(f"the bridge's SMTP listener on {port} is not reachable: {error!r}")


def reply_mail(*, from_address: str, to: str, code: str, in_reply_to: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = f"Testmedewerker Team <{from_address}>"
    message["To"] = to
    message["Subject"] = "Re: [Veilig Thuis] Overdracht"
    message["Message-ID"] = make_msgid(domain="lokaalteam-tiel.example")
    message["In-Reply-To"] = in_reply_to
    message.set_content(f"Wij nemen de casus over.\n\nBevestigingscode: {code}\n")
    return message


def dsn_bytes(*, to: str, original_message_id: str, recipient: str) -> bytes:
    """A delivery status notification (RFC 3464): the original failed for `recipient`."""
    boundary = "dsn-boundary-42"
    return f"""From: Mail Delivery System <MAILER-DAEMON@mx.lokaalteam-tiel.example>
To: {to}
Subject: Undelivered Mail Returned to Sender
Message-ID: {make_msgid(domain="mx.lokaalteam-tiel.example")}
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="{boundary}"

--{boundary}
Content-Type: text/plain; charset=us-ascii

This is the mail system. Your message could not be delivered.

--{boundary}
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.lokaalteam-tiel.example

Final-Recipient: rfc822; {recipient}
Action: failed
Status: 5.1.1
Diagnostic-Code: smtp; 550 5.1.1 user unknown

--{boundary}
Content-Type: text/rfc822-headers

From: Veilig Thuis <overdracht-brug@vt-gz.example>
To: {recipient}
Subject: [Veilig Thuis] Overdracht
Message-ID: {original_message_id}

--{boundary}--
""".replace("\n", "\r\n").encode("ascii")


def send_raw(port: int, raw: bytes, *, mail_from: str, to: str) -> None:
    """Deliver raw mail bytes to an SMTP server, as an MX would."""
    try:
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
            client.sendmail(mail_from, [to], raw)
    except OSError as error:
        pytest.fail(f"the bridge's SMTP listener on {port} is not reachable: {error!r}")
