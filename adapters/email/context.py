"""What every part of the bridge works with, and the steps they share.

`BridgeContext` holds the bridge's store, the hub it hands messages to, the
key it signs with for the teams, its secret and its SMTP side. The shared
steps: issue a link for a message, hand a team's answer to the gateway
(`receive`, transport identity `vtgw-bridge`) with its evidence, and record
that a mail could not be delivered.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog

from adapters.email.content import Sender
from adapters.email.signing import Made, TeamSigner
from adapters.email.smtp import SmtpOut
from adapters.email.store import BridgeStore, BridgeWork, Submission
from adapters.email.tokens import LinkToken, Purpose, issue, new_token_id
from gateway.domain.calendar import WorkingDayCalendar
from gateway.domain.contracts import Contract, Contracts, Transport
from gateway.domain.delivery import Status, StatusChange
from gateway.service import responsibility
from gateway.service.outgoing import Hub
from gateway.service.ports import StoredMessage
from gateway.service.receiving import Delivery, Disposition, Handled, receive

log = structlog.get_logger("vtgw.email")

ACTIONABLE_TYPES = frozenset({"overdracht.notice", "enrichment.request", "monitoring.request"})
"""What a team answers on the bridge's page; other types are mailed for information."""


def bounce_alert(party: str, message_id: str) -> str:
    return f"email_undeliverable:{party}:{message_id}"


@dataclass(frozen=True, slots=True)
class BridgeContext:
    store: BridgeStore
    hub: Hub
    signer: TeamSigner
    bridge_party: str
    secret: bytes
    smtp: SmtpOut
    sender: Sender
    public_base_url: str
    link_lifetime: timedelta
    calendar: WorkingDayCalendar
    clock: Callable[[], datetime]

    @property
    def contracts(self) -> Contracts:
        return self.hub.verifier.contracts

    def team(self, party: str) -> Contract | None:
        """The contract of a party on the e-mail transport, or None."""
        contract = self.contracts.get(party)
        if contract is None or contract.transport is not Transport.EMAIL:
            return None
        return contract

    def link(self, message_id: str, token_text: str) -> str:
        return f"{self.public_base_url}/bridge/m/{message_id}/{token_text}"

    async def issue_link(
        self, work: BridgeWork, message: StoredMessage, now: datetime
    ) -> tuple[LinkToken, str]:
        """A new token for the message's recipient, kept in the store; the link's URL."""
        purpose = Purpose.RESPOND if message.type in ACTIONABLE_TYPES else Purpose.VIEW
        token = LinkToken(
            token_id=new_token_id(),
            message_id=message.id,
            party=message.recipient,
            purpose=purpose,
            expires_at=now + self.link_lifetime,
        )
        await work.mail.issue_token(token, message.sender, now)
        return token, self.link(message.id, issue(self.secret, token))

    async def answer(
        self,
        work: BridgeWork,
        *,
        team: str,
        original: StoredMessage,
        message_type: str,
        body: Mapping[str, Any],
        evidence: Submission,
        now: datetime,
    ) -> tuple[Made, Handled]:
        """Make the team's answer, hand it to the gateway, keep the evidence with the verdict."""
        made = self.signer.answer(
            team=team, message_type=message_type, original=original, body=body, now=now
        )
        handled = await receive(
            work.core, self.hub, Delivery(made.raw, self.bridge_party, "email"), now
        )
        outcome = (
            "accepted"
            if handled.disposition is Disposition.ACK
            else f"refused:{handled.rejection.code.value if handled.rejection else 'unknown'}"
        )
        await work.mail.add_submission(
            Submission(
                channel=evidence.channel,
                party=team,
                answered_id=original.id,
                answer_type=message_type,
                answer_id=made.id,
                outcome=outcome,
                at=now,
                token_id=evidence.token_id,
                from_address=evidence.from_address,
                smtp_message_id=evidence.smtp_message_id,
                client_address=evidence.client_address,
                user_agent=evidence.user_agent,
                name=evidence.name,
                role=evidence.role,
            )
        )
        log.info(
            "bridge_answer",
            channel=evidence.channel,
            party=team,
            answered_id=original.id,
            answer_type=message_type,
            answer_id=made.id,
            outcome=outcome,
        )
        return made, handled

    async def undeliverable_by_mail(
        self,
        work: BridgeWork,
        message: StoredMessage,
        evidence: Mapping[str, str],
        now: datetime,
    ) -> None:
        """A mail that did not reach the team: say so in the message's history, alert VT.

        The status UNDELIVERABLE joins the history with the evidence (a message
        the bridge's receipt made `delivered` keeps that final status: the
        history shows both). A handover the team has not answered is given up
        as undeliverable (the receipt only said the mail server took it); VT
        keeps the case either way.
        """
        await work.core.messages.record(
            message.sender, message.id, StatusChange(Status.UNDELIVERABLE, now, evidence)
        )
        await responsibility.bounced(work.core, message, now)
        await work.core.alerts.open(
            bounce_alert(message.recipient, message.id),
            f"mail for message {message.id} ({message.type}) to {message.recipient} was not "
            f"delivered ({evidence.get('status', 'no status')}); check the team's address",
            now,
        )
        log.warning(
            "bridge_mail_undeliverable",
            message_id=message.id,
            party=message.recipient,
            status=evidence.get("status"),
        )
