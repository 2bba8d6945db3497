"""Messages the hub sends: built, signed with VT's key, checked against our own schema."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from gateway.domain.calendar import WorkingDayCalendar
from gateway.domain.delivery import Direction, Status, StatusChange
from gateway.domain.envelope import CaseRef, Envelope, format_timestamp, new_message_id
from gateway.domain.errors import ErrorCode, PermanentError, Rejection
from gateway.domain.signatures import SigningKey, sign_with_digest
from gateway.service.pipeline import Verifier, authorise
from gateway.service.ports import StoredMessage, UnitOfWork


@dataclass(frozen=True, slots=True)
class Hub:
    """VT's side of the gateway: who it is, what it checks against, and the keys it signs with.

    `signing_key` is the key valid when the gateway started; `successors` are VT's
    keys whose window opens later (a rotation under way, docs/keys.md), so that
    the hub switches to the new key at its `not_before` without a restart.
    """

    verifier: Verifier
    signing_key: SigningKey
    calendar: WorkingDayCalendar  # the region's working days, for the deadlines it sets
    successors: tuple[SigningKey, ...] = ()

    @property
    def party(self) -> str:
        return self.verifier.receiving_party

    def key_at(self, now: datetime) -> SigningKey:
        """The key to sign with at `now`: the newest of the hub's keys valid then."""
        if not self.successors:
            return self.signing_key
        keys = {key.kid: key for key in (self.signing_key, *self.successors)}
        kid = self.verifier.contracts.hub.kid_to_sign_with(keys, now)
        return self.signing_key if kid is None else keys[kid]


def build(
    hub: Hub,
    *,
    message_type: str,
    recipient: str,
    body: Mapping[str, Any],
    now: datetime,
    case: CaseRef | None = None,
    thread: str | None = None,
    reply_to: str | None = None,
) -> StoredMessage:
    """A new signed message from the hub, schema-checked before anything is stored.

    A message the hub itself signs must pass the schema its partners apply:
    a wrong body from VT's case system is refused here, with the pointer.
    """
    message_id = new_message_id()
    envelope, message_digest = sign_with_digest(
        Envelope(
            id=message_id,
            type=message_type,
            sender=hub.party,
            recipient=recipient,
            sent_at=now,
            thread=thread or message_id,
            reply_to=reply_to,
            case=case,
            body=body,
        ),
        hub.key_at(now),
    )
    obj = envelope.to_json()
    problem = hub.verifier.validator.first_problem(obj)
    if problem is not None:
        raise PermanentError(ErrorCode.SCHEMA_INVALID, problem.message, problem.pointer)
    # The contracts' rules as the recipient will apply them: refused here, not there.
    contracts = hub.verifier.contracts
    authorise(envelope, contracts.hub, Verifier(contracts, hub.verifier.validator, recipient))
    return StoredMessage(
        id=message_id,
        sender=hub.party,
        recipient=recipient,
        type=message_type,
        thread=envelope.thread,
        reply_to=reply_to,
        case_ref=case.ref if case else None,
        gemeente=case.gemeente if case else None,
        direction=Direction.OUT,
        digest=message_digest,
        raw=json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8"),
        sent_at=envelope.sent_at,
        created_at=now,
        status=Status.QUEUED,
    )


async def send(uow: UnitOfWork, message: StoredMessage, now: datetime) -> None:
    """Store an outgoing message and put it in the outbox, in the caller's transaction."""
    await uow.messages.add(message, StatusChange(Status.QUEUED, now))
    await uow.outbox.enqueue(message.sender, message.id, now)


def receipt_for(
    hub: Hub, *, sender: str, message_id: str, thread: str, message_digest: str, now: datetime
) -> StoredMessage:
    """The signed receipt of an accepted message: its digest and when we received it."""
    return build(
        hub,
        message_type="receipt",
        recipient=sender,
        body={"digest": message_digest, "received_at": format_timestamp(now)},
        now=now,
        thread=thread,
        reply_to=message_id,
    )


def error_for(
    hub: Hub, *, recipient: str, message_id: str, thread: str, rejection: Rejection, now: datetime
) -> StoredMessage:
    """The signed `error` telling a sender why its message was refused."""
    return build(
        hub,
        message_type="error",
        recipient=recipient,
        body=rejection.as_body(),
        now=now,
        thread=thread,
        reply_to=message_id,
    )
