"""Mail to the bridge's own address (aiosmtpd): replies that confirm, bounces, the rest.

The listener takes mail only for the bridge's address and decides before it
answers 250, so that a mail it could not store (store away) is refused with
a 4xx and retried by the sending server.

- A delivery status notification (RFC 3464) about one of the bridge's mails
  that failed: the message is recorded as undeliverable by mail and an alert
  opens for VT (`BridgeContext.undeliverable_by_mail`). A delay is noted only.
- A reply quoting the confirmation code of an overdracht.notice, with a From
  address registered in the team's contract (`[email] addresses`): the bridge
  confirms the handover for the team, as the link does, with the evidence
  (address, Message-ID, name in From). Which From can be trusted is for the MX
  in front of the listener to decide (SPF, DKIM, DMARC: docs/email-bridge.md).
- Anything else is kept whole for VT and its sender (unless a machine) gets a
  polite reply pointing to the link. Nothing is confirmed.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage

import structlog
from aiosmtpd.smtp import SMTP, Envelope, Session

from adapters.email.content import polite_reply
from adapters.email.context import BridgeContext
from adapters.email.dsn import (
    Bounce,
    auto_submitted,
    from_address,
    parse_dsn,
    parse_mail,
    plain_text,
)
from adapters.email.store import BridgeWork, InboundMail, Submission
from adapters.email.tokens import codes_in
from gateway.domain.envelope import format_timestamp
from gateway.domain.errors import TransientError
from gateway.domain.handover import OverdrachtState
from gateway.service.receiving import Disposition

log = structlog.get_logger("vtgw.email.inbound")

MAX_MAIL_BYTES = 10 * 1024 * 1024
REPLY_ROLE = "lokaal team (bevestigd per e-mail)"


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the bridge did with a mail, and whether its sender gets the polite reply."""

    kind: str
    outcome: str
    about_message_id: str | None = None
    reply_reason: str | None = None


class BridgeMailbox:
    """The aiosmtpd handler of the bridge's address."""

    def __init__(self, context: BridgeContext, addresses: frozenset[str]) -> None:
        self._context = context
        self._addresses = frozenset(a.lower() for a in addresses)

    async def handle_RCPT(  # noqa: N802 - aiosmtpd's hook name
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if address.lower() not in self._addresses:
            return "550 5.1.1 No such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(  # noqa: N802 - aiosmtpd's hook name
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        raw = envelope.original_content
        if raw is None:
            content = envelope.content
            raw = content.encode("utf-8", "surrogateescape") if isinstance(content, str) else b""
        peer = session.peer
        try:
            await self.take(
                raw or b"",
                mail_from=envelope.mail_from or "",
                rcpt_tos=tuple(envelope.rcpt_tos),
                peer=str(peer[0]) if isinstance(peer, tuple) else None,
            )
        except TransientError:
            log.warning("bridge_inbound_deferred")
            return "451 4.3.0 Temporary failure, try again later"
        return "250 2.0.0 Message accepted"

    async def take(
        self, raw: bytes, *, mail_from: str, rcpt_tos: tuple[str, ...], peer: str | None
    ) -> Outcome:
        """Decide about one mail, keep it with the decision; send the polite reply if due."""
        context = self._context
        mail = parse_mail(raw)
        now = context.clock()
        smtp_id = str(mail.get("Message-ID", "")).strip() or None
        async with context.store.transaction() as work:
            bounce = parse_dsn(mail)
            if bounce is not None:
                outcome = await _bounce(context, work, bounce.original_message_id, bounce, now)
            else:
                outcome = await _reply(context, work, mail, smtp_id, now)
            await work.mail.add_inbound(
                InboundMail(
                    received_at=now,
                    peer=peer,
                    mail_from=mail_from,
                    rcpt_to=rcpt_tos,
                    smtp_message_id=smtp_id,
                    kind=outcome.kind,
                    outcome=outcome.outcome,
                    raw=raw,
                    about_message_id=outcome.about_message_id,
                )
            )
        log.info(
            "bridge_inbound",
            kind=outcome.kind,
            outcome=outcome.outcome,
            about_message_id=outcome.about_message_id,
        )
        _, address = from_address(mail)
        if (
            outcome.reply_reason is not None
            and mail_from  # a null sender (<>) is a machine: never answered
            and address
            and not auto_submitted(mail)
        ):
            reply = polite_reply(
                sender=context.sender,
                to=address,
                in_reply_to=smtp_id,
                reason=outcome.reply_reason,
                now=now,
            )
            try:
                await context.smtp.send(reply, sender=context.sender.address, recipients=[address])
            except Exception as exc:  # the mail is kept; the reply is only a courtesy
                log.warning("bridge_polite_reply_failed", failure=type(exc).__name__)
        return outcome


async def _bounce(
    context: BridgeContext,
    work: BridgeWork,
    original: str | None,
    bounce: Bounce,
    now: datetime,
) -> Outcome:
    record = await work.mail.mail_by_smtp_id(original) if original else None
    if record is None or record.message_id is None or record.message_sender is None:
        return Outcome("bounce", "unmatched")
    if not bounce.failed:
        return Outcome("delay", f"noted:{bounce.action}", record.message_id)
    message = await work.core.messages.get(record.message_sender, record.message_id)
    if message is None or record.row_id is None:
        return Outcome("bounce", "unmatched")
    await work.mail.mark_bounced(record.row_id, now, bounce.status or "failed")
    await context.undeliverable_by_mail(
        work,
        message,
        {
            "transport": "email",
            "bounce": "dsn",
            "status": bounce.status or "failed",
            "smtp_message_id": record.smtp_message_id,
        },
        now,
    )
    return Outcome("bounce", "undeliverable", message.id)


async def _reply(
    context: BridgeContext, work: BridgeWork, mail: EmailMessage, smtp_id: str | None, now: datetime
) -> Outcome:
    name, address = from_address(mail)
    for code in codes_in(plain_text(mail)):
        for record in await work.mail.mails_with_code(code):
            if record.message_id is None or record.party is None:
                continue
            team = context.team(record.party)
            registered = {a.lower() for a in team.email_addresses} if team else set()
            if address not in registered:
                return Outcome(
                    "reply",
                    "unregistered_address",
                    record.message_id,
                    "het adres waarvan u schreef is niet geregistreerd voor uw team",
                )
            message = await work.core.messages.get(record.message_sender or "", record.message_id)
            if message is None or message.type != "overdracht.notice":
                continue
            overdracht = await work.core.handovers.get(message.id)
            if overdracht is not None and overdracht.state is OverdrachtState.CONFIRMED:
                return Outcome("reply", "already_confirmed", message.id)
            who = " ".join(name.split())[:100] or address[:100]
            _, handled = await context.answer(
                work,
                team=record.party,
                original=message,
                message_type="overdracht.confirmation",
                body={
                    "bevestigd_door": {"naam": who, "functie": REPLY_ROLE},
                    "bevestigd_op": format_timestamp(now),
                },
                evidence=Submission(
                    channel="reply",
                    party=record.party,
                    answered_id=message.id,
                    answer_type="overdracht.confirmation",
                    answer_id="",
                    outcome="",
                    at=now,
                    from_address=address,
                    smtp_message_id=smtp_id,
                    name=who,
                    role=REPLY_ROLE,
                ),
                now=now,
            )
            if handled.disposition is Disposition.ACK:
                return Outcome("reply", "confirmed", message.id)
            code_text = handled.rejection.code.value if handled.rejection else "unknown"
            return Outcome(
                "reply",
                f"refused:{code_text}",
                message.id,
                "Veilig Thuis kon de bevestiging niet verwerken",
            )
    return Outcome(
        "reply", "kept", None, "er stond geen geldige bevestigingscode van een overdracht in"
    )


class BridgeListener:
    """The SMTP listener on the running loop: start, stop."""

    def __init__(self, mailbox: BridgeMailbox, host: str, port: int, hostname: str) -> None:
        self._mailbox = mailbox
        self._host = host
        self._port = port
        self._hostname = hostname
        self._server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        """The port listened on (the one the OS chose when configured as such)."""
        if self._server is None or not self._server.sockets:
            return self._port
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: SMTP(
                self._mailbox,
                hostname=self._hostname,
                data_size_limit=MAX_MAIL_BYTES,
                enable_SMTPUTF8=True,
                loop=loop,
            ),
            host=self._host,
            port=self._port,
        )
        log.info("bridge_listening", host=self._host, port=self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
