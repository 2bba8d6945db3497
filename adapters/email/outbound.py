"""The outbox relay's publisher for the e-mail transport, and the receipts it earns.

`EmailPublisher.publish` mails every message for a party on the e-mail
transport to the addresses of its contract: the kind of message, a case
handle, the deadline, a confirmation code and a link (`adapters.email.content`).
Once the SMTP server has accepted the mail, the mail is recorded with its
Message-ID; `record_receipts` then (after the relay marked the message sent)
makes the team's `receipt`, signed by the bridge, and hands it to the gateway.

Why a receipt on SMTP acceptance: a team without a system cannot send one, and
waiting for a person would turn the technical receipt (level 2) into the
business answer (level 3). The receipt says what the bridge knows: the mail
left for the team's address, under this Message-ID, at this moment. A bounce
afterwards is recorded against the message and alerts VT
(`adapters.email.inbound`); the handover's own deadline still runs, so a mail
that reached nobody surfaces as an unconfirmed handover as well.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import structlog

from adapters.email.content import MailFacts, compose, deadline_of
from adapters.email.context import ACTIONABLE_TYPES, BridgeContext
from adapters.email.smtp import MailRefusedError
from adapters.email.store import MailRecord, ReceiptState, evidence_of
from adapters.email.tokens import case_handle, confirmation_code
from gateway.domain.delivery import Status, StatusChange, expects_receipt
from gateway.domain.errors import TransientError
from gateway.service.ports import OutboxItem, StoredMessage
from gateway.service.receiving import Delivery, Disposition, receive_batch

log = structlog.get_logger("vtgw.email")


def mail_facts(
    secret: bytes,
    message: StoredMessage,
    *,
    team_name: str,
    link: str | None,
    link_expires: datetime | None,
    reminder: bool = False,
) -> MailFacts:
    """What the mail of a message may say: its kind, handle, deadline, code, link; no content."""
    body: dict[str, Any] = json.loads(message.raw).get("body", {})
    actionable = message.type in ACTIONABLE_TYPES
    return MailFacts(
        team_name=team_name,
        message_type=message.type,
        case_handle=case_handle(secret, message.case_ref) if message.case_ref else None,
        deadline=deadline_of(message.type, body),
        confirmation_code=(
            confirmation_code(secret, message.id) if message.type == "overdracht.notice" else None
        ),
        link=link,
        link_expires=link_expires,
        actionable=actionable,
        reminder=reminder,
        error_code=str(body.get("code")) if message.type == "error" else None,
    )


class EmailPublisher:
    """The `Publisher` port for Transport.EMAIL."""

    def __init__(self, context: BridgeContext) -> None:
        self._context = context

    async def publish(self, item: OutboxItem) -> None:
        """Mail the message to its team; TransientError when the SMTP server is not reached.

        VT's receipts are not mailed: they acknowledge what the team sent through the
        bridge, which showed the outcome on its page (or in its reply). The bridge holds
        them for the team, as the team's inbox would; the relay marks them sent.
        """
        if item.type == "receipt":
            log.info("bridge_receipt_held", message_id=item.message_id, party=item.recipient)
            return
        context = self._context
        team = context.team(item.recipient)
        if team is None or not team.email_addresses:
            raise TransientError(f"no e-mail addresses for {item.recipient}")
        now = context.clock()
        async with context.store.transaction() as work:
            mailed = [
                m
                for m in await work.mail.mails_of(item.sender, item.message_id)
                if m.kind == "message"
            ]
            message = await work.core.messages.get(item.sender, item.message_id)
            if mailed or message is None:
                return  # a republish (crash, resend): the mail went out, its link stands
            token, link = (
                await context.issue_link(work, message, now) if message.case_ref else (None, None)
            )
        facts = mail_facts(
            context.secret,
            message,
            team_name=team.name,
            link=link,
            link_expires=token.expires_at if token else None,
        )
        mail = compose(facts, sender=context.sender, to=team.email_addresses, now=now)
        try:
            response = await context.smtp.send(
                mail, sender=context.sender.address, recipients=team.email_addresses
            )
        except MailRefusedError as refused:
            async with context.store.transaction() as work:
                await context.undeliverable_by_mail(
                    work,
                    message,
                    {"transport": "email", "smtp": "refused", "status": refused.status},
                    now,
                )
            return
        accepted_at = context.clock()
        async with context.store.transaction() as work:
            await work.mail.add_mail(
                MailRecord(
                    kind="message",
                    message_sender=item.sender,
                    message_id=item.message_id,
                    message_type=item.type,
                    party=item.recipient,
                    addresses=team.email_addresses,
                    smtp_message_id=str(mail["Message-ID"]),
                    confirmation_code=facts.confirmation_code,
                    token_id=token.token_id if token else None,
                    accepted_at=accepted_at,
                    smtp_response=response,
                    receipt_state=(
                        ReceiptState.PENDING if expects_receipt(item.type) else ReceiptState.NONE
                    ),
                )
            )
        log.info(
            "bridge_mailed",
            message_id=item.message_id,
            type=item.type,
            party=item.recipient,
            smtp_message_id=str(mail["Message-ID"]),
        )


async def record_receipts(context: BridgeContext, now: datetime) -> int:
    """The teams' receipts of the mails the SMTP server accepted; how many were recorded.

    A message the relay has not marked sent yet waits for the next round (the
    relay marks it right after the publish); one already final gets none.
    """
    async with context.store.transaction() as work:
        pending = await work.mail.receipts_pending()
        if not pending:
            return 0
        found = await work.core.messages.get_many(
            [(m.message_sender or "", m.message_id or "") for m in pending]
        )
        ready: list[tuple[MailRecord, StoredMessage]] = []
        for mail in pending:
            message = found.get((mail.message_sender or "", mail.message_id or ""))
            if message is not None and message.status is Status.QUEUED:
                continue
            if message is None or message.status is not Status.SENT or mail.row_id is None:
                if mail.row_id is not None:
                    await work.mail.set_receipt(mail.row_id, ReceiptState.NONE, None)
                continue
            ready.append((mail, message))
        made = [
            context.signer.receipt(
                team=message.recipient, original=message, received_at=mail.accepted_at
            )
            for mail, message in ready
        ]
        for mail, message in ready:
            await work.core.messages.record(
                message.sender, message.id, StatusChange(Status.SENT, now, evidence_of(mail))
            )
        handled = await receive_batch(
            work.core,
            context.hub,
            [Delivery(receipt.raw, context.bridge_party, "email") for receipt in made],
            now,
        )
        recorded = 0
        for (mail, message), receipt, outcome in zip(ready, made, handled, strict=True):
            row_id = mail.row_id or 0  # rows read from the store always have one
            if outcome.disposition is Disposition.ACK:
                await work.mail.set_receipt(row_id, ReceiptState.RECORDED, receipt.id)
                recorded += 1
            else:
                await work.mail.set_receipt(row_id, ReceiptState.NONE, None)
                log.error(
                    "bridge_receipt_refused",
                    message_id=message.id,
                    code=outcome.rejection.code.value if outcome.rejection else None,
                )
    return recorded
