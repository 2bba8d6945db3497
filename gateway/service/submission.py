"""VT's case system submits a message: the gateway routes, signs, stores and sends it.

The caller names the type, the case and the body; the recipients follow from
the routing rules of the agreement unless the caller names them. Everything
the caller could get wrong is refused with a protocol error code and pointer
before anything is stored.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from gateway.domain import routing
from gateway.domain.envelope import CaseRef
from gateway.domain.errors import ErrorCode, PermanentError
from gateway.domain.informing import informing_messages
from gateway.domain.region import Region
from gateway.service import responsibility
from gateway.service.outgoing import Hub, build, send
from gateway.service.ports import Store, StoredMessage, UnitOfWork


@dataclass(frozen=True, slots=True)
class SubmitMessage:
    """A command from VT's case system: send this message about this case."""

    type: str
    case: CaseRef
    body: Mapping[str, Any]
    recipients: tuple[str, ...] = ()
    reply_to: str | None = None


def routed_recipients(command: SubmitMessage, region: Region, hub: Hub) -> tuple[str, ...]:
    """The recipients by the agreement's routing rules, when the caller named none."""
    contracts = hub.verifier.contracts
    gemeente = command.case.gemeente
    if command.type == "enrichment.request":
        return tuple(c.party for c in routing.enrichment_partners(region, contracts, gemeente))
    if command.type in {"case.notice", "overdracht.notice"}:
        return (routing.lokaal_team(region, contracts, gemeente).party,)
    if command.type == "zorgmelding.forward":
        role = command.body.get("ontvanger_rol")
        if role == "politie":
            return (routing.police_unit(region, contracts, gemeente).party,)
        if role == "bijzondere_zorg":
            return (routing.confused_person_recipient(region, contracts, gemeente).party,)
        return (routing.lokaal_team(region, contracts, gemeente).party,)
    raise PermanentError(
        ErrorCode.UNKNOWN_RECIPIENT,
        f"no routing rule gives the recipients of {command.type}: name them",
        "/recipients",
    )


async def submit(
    store: Store, hub: Hub, region: Region, command: SubmitMessage, now: datetime
) -> list[StoredMessage]:
    """Route, sign, store and queue; the stored messages, one per recipient."""
    if command.type == "case.notice":
        routing.check_jeugdbeschermingstafel(region, command.case.gemeente, command.body)
    async with store.transaction() as uow:
        original = await _answered(uow, hub, command)
        recipients = command.recipients or (
            (_counterpart(original, hub.party),)
            if original
            else routed_recipients(command, region, hub)
        )
        messages = [
            build(
                hub,
                message_type=command.type,
                recipient=recipient,
                body=command.body,
                now=now,
                case=command.case,
                thread=original.thread if original else None,
                reply_to=command.reply_to,
            )
            for recipient in dict.fromkeys(recipients)  # each once, in the given order
        ]
        messages += _informing(hub, region, command, messages, now)
        for message in messages:
            await send(uow, message, now)
            body = command.body if message.type == command.type else json.loads(message.raw)["body"]
            await responsibility.vt_sends(uow, message, dict(body), hub)
    return messages


def _informing(
    hub: Hub, region: Region, command: SubmitMessage, sent: list[StoredMessage], now: datetime
) -> list[StoredMessage]:
    """The messages the agreement's informing rules add (§5.1, §5.1 D, §8.1)."""
    contracts = hub.verifier.contracts
    gemeente = command.case.gemeente
    added = []
    for message in sent:
        recipient = contracts.get(message.recipient)
        if recipient is None:
            continue
        for extra in informing_messages(
            command.type,
            command.body,
            recipient,
            lokaal_team=routing.lokaal_team(region, contracts, gemeente),
            police=routing.police_unit(region, contracts, gemeente),
            today=hub.calendar.local_day(now),
            now=now,
        ):
            added.append(
                build(
                    hub,
                    message_type=extra.type,
                    recipient=extra.recipient,
                    body=extra.body,
                    now=now,
                    case=command.case,
                )
            )
    return added


async def _answered(uow: UnitOfWork, hub: Hub, command: SubmitMessage) -> StoredMessage | None:
    if command.reply_to is None:
        return None
    for message in await uow.messages.find(command.reply_to):
        if hub.party in (message.sender, message.recipient):
            return message
    raise PermanentError(ErrorCode.UNKNOWN_THREAD, "reply_to names no known message", "/reply_to")


def _counterpart(message: StoredMessage, party: str) -> str:
    """The other end of a message: whom an answer to it goes to."""
    return message.sender if message.recipient == party else message.recipient
