"""Reminders to the teams on e-mail, within office hours, before the confirmation deadline.

An overdracht.notice to a team on the e-mail transport that is still open
(not confirmed, withdrawn or undeliverable) gets one reminder mail on the
working day before its deadline's day (the advised term, or a deferral's new
date; a deadline on a day off falls due on the next working day), sent within
office hours (9:00-17:00, §8.4). A deadline moved by a deferral earns a new
reminder. The mail has a fresh link; the first mail's link keeps working
until it expires. VT's own warning alert (the handover's deadline rules)
runs beside this for every partner.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

import structlog

from adapters.email.content import compose
from adapters.email.context import BridgeContext
from adapters.email.outbound import mail_facts
from adapters.email.smtp import MailRefusedError
from adapters.email.store import MailRecord, ReceiptState
from adapters.email.tokens import LinkToken
from adapters.store.shared_state import sole_round
from gateway.domain.contracts import Contract
from gateway.domain.errors import TransientError
from gateway.domain.handover import OverdrachtState
from gateway.service.ports import StoredMessage

log = structlog.get_logger("vtgw.email.reminders")

_REMINDED_STATES = frozenset(
    {OverdrachtState.NOTICE_SENT, OverdrachtState.DELIVERED, OverdrachtState.DEFERRED}
)


async def send_reminders(context: BridgeContext, now: datetime) -> int:
    """Mail the reminders due now; how many were accepted by the SMTP server.

    One instance at a time does the round (`sole_round`): a reminder is recorded
    after the SMTP server took it, so two rounds at once would both mail it.
    """
    if not context.calendar.within_office_hours(now):
        return 0
    async with sole_round(context.store.sql, "bridge-reminders") as mine:
        return await _remind(context, now) if mine else 0


async def _remind(context: BridgeContext, now: datetime) -> int:
    calendar = context.calendar
    today = calendar.local_day(now)
    due: list[tuple[StoredMessage, Contract, str, str, LinkToken]] = []
    async with context.store.transaction() as work:
        for overdracht in await work.core.handovers.still_open():
            team = context.team(overdracht.recipient)
            if team is None or overdracht.state not in _REMINDED_STATES:
                continue
            due_day = calendar.next_working_day(overdracht.deadline)
            remind_day = calendar.add_working_days(due_day, -1)
            if not remind_day <= today <= due_day:
                continue
            about = due_day.isoformat()
            if await work.mail.reminded(overdracht.id, about):
                continue
            message = await work.core.messages.get(context.hub.party, overdracht.id)
            mailed = await work.mail.mails_of(context.hub.party, overdracht.id)
            if message is None or not mailed:
                continue  # never mailed (yet): the first mail comes from the relay
            if any(calendar.local_day(m.accepted_at) == today for m in mailed):
                continue  # mailed today already
            token, link = await context.issue_link(work, message, now)
            due.append((message, team, about, link, token))
    sent = 0
    for message, team, about, link, token in due:
        facts = replace(
            mail_facts(
                context.secret,
                message,
                team_name=team.name,
                link=link,
                link_expires=token.expires_at,
            ),
            reminder=True,
        )
        mail = compose(facts, sender=context.sender, to=team.email_addresses, now=now)
        try:
            response = await context.smtp.send(
                mail, sender=context.sender.address, recipients=team.email_addresses
            )
        except (TransientError, MailRefusedError) as exc:
            log.warning("bridge_reminder_failed", message_id=message.id, failure=type(exc).__name__)
            continue
        async with context.store.transaction() as work:
            await work.mail.add_mail(
                MailRecord(
                    kind="reminder",
                    message_sender=message.sender,
                    message_id=message.id,
                    message_type=message.type,
                    party=message.recipient,
                    addresses=team.email_addresses,
                    smtp_message_id=str(mail["Message-ID"]),
                    confirmation_code=facts.confirmation_code,
                    token_id=token.token_id,
                    about=about,
                    accepted_at=context.clock(),
                    smtp_response=response,
                    receipt_state=ReceiptState.NONE,
                )
            )
        log.info("bridge_reminded", message_id=message.id, party=message.recipient, due=about)
        sent += 1
    return sent
