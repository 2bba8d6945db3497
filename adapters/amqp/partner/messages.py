"""The messages a partner signs: receipts, errors, and the answers of its own system.

Pure: no I/O, the clock is passed in. Every message is built as an `Envelope`,
signed with the partner's key and checked against the same compiled schema and
the same contract rules the hub will apply, so that what we send is refused
here, with its pointer, rather than there.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from gateway.domain.contracts import Contract, Contracts
from gateway.domain.delivery import UNANSWERED_TYPES
from gateway.domain.envelope import CaseRef, Envelope, format_timestamp, new_message_id
from gateway.domain.errors import ConfigurationError, ErrorCode, PermanentError, Rejection
from gateway.domain.signatures import SigningKey, sign
from gateway.domain.threads import answer_problem
from gateway.service.pipeline import Verifier, authorise, decode
from gateway.service.validation import EnvelopeValidator

ANSWER_MEMBERS = frozenset({"type", "reply_to", "body"})


@dataclass(frozen=True, slots=True)
class Partner:
    """Who the adapter speaks for: the partner's party, its key, and what it checks against.

    `verifier` is the pipeline's verifier with the partner as receiving party.
    """

    verifier: Verifier
    signing_key: SigningKey

    @property
    def party(self) -> str:
        return self.verifier.receiving_party

    @property
    def contracts(self) -> Contracts:
        return self.verifier.contracts

    @property
    def validator(self) -> EnvelopeValidator:
        return self.verifier.validator

    @property
    def hub(self) -> str:
        """VT's party id: the sender of everything in the inbox, the recipient of every answer."""
        return self.contracts.hub.party

    @property
    def contract(self) -> Contract:
        contract = self.contracts.get(self.party)
        if contract is None:
            raise ConfigurationError(f"no contract for party '{self.party}'")
        return contract

    @classmethod
    def create(
        cls, *, party: str, contracts: Contracts, validator: EnvelopeValidator, key: SigningKey
    ) -> Partner:
        """The partner, after checking that its contract knows its key (or nothing would verify)."""
        partner = cls(Verifier(contracts, validator, party), key)
        public = partner.contract.key(key.kid)
        if public is None:
            raise ConfigurationError(f"the contract of '{party}' has no key '{key.kid}'")
        if public.key != key.public_bytes():
            raise ConfigurationError(
                f"the private key is not the key '{key.kid}' in the contract of '{party}'"
            )
        if public.revoked:
            raise ConfigurationError(f"key '{key.kid}' of '{party}' is revoked")
        return partner


@dataclass(frozen=True, slots=True)
class AnswerRequest:
    """What the partner's system asks us to send: a type, the message it answers, a body."""

    type: str
    reply_to: str
    body: Mapping[str, Any]


def encode(envelope: Envelope) -> bytes:
    """The bytes that travel: compact JSON, UTF-8."""
    return json.dumps(envelope.to_json(), ensure_ascii=False, separators=(",", ":")).encode()


def receipt_for(
    partner: Partner, *, message_id: str, thread: str, message_digest: str, now: datetime
) -> Envelope:
    """The signed receipt of an accepted message: exactly its digest and when we received it."""
    return _checked(
        partner,
        sign(
            Envelope(
                id=new_message_id(),
                type="receipt",
                sender=partner.party,
                recipient=partner.hub,
                sent_at=now,
                thread=thread,
                reply_to=message_id,
                body={"digest": message_digest, "received_at": format_timestamp(now)},
            ),
            partner.signing_key,
        ),
    )


def error_for(
    partner: Partner, *, message_id: str, thread: str, rejection: Rejection, now: datetime
) -> Envelope:
    """The signed `error` telling VT why its message was refused here."""
    return _checked(
        partner,
        sign(
            Envelope(
                id=new_message_id(),
                type="error",
                sender=partner.party,
                recipient=partner.hub,
                sent_at=now,
                thread=thread,
                reply_to=message_id,
                body=rejection.as_body(),
            ),
            partner.signing_key,
        ),
    )


def parse_answer_request(raw: bytes) -> AnswerRequest:
    """`{"type", "reply_to", "body"}` as I-JSON (integers only), or PermanentError."""
    obj = decode(raw)  # the pipeline's own decoder: what the hub would refuse, we refuse
    extra = sorted(set(obj) - ANSWER_MEMBERS)
    if extra:
        raise PermanentError(ErrorCode.SCHEMA_INVALID, f"member '{extra[0]}' is not allowed", "")
    for name, kind in (("type", str), ("reply_to", str), ("body", dict)):
        if not isinstance(obj.get(name), kind):
            expected = "an object" if kind is dict else "a string"
            raise PermanentError(
                ErrorCode.SCHEMA_INVALID, f"'{name}' must be {expected}", f"/{name}"
            )
    return AnswerRequest(obj["type"], obj["reply_to"], obj["body"])


def build_answer(
    partner: Partner,
    request: AnswerRequest,
    *,
    answered_type: str,
    answered_thread: str,
    answered_case: CaseRef | None,
    now: datetime,
    thread_types: Sequence[str] = (),
) -> Envelope:
    """The signed answer: case and thread of the answered message, VT as recipient.

    Refused (PermanentError) when it is a type the adapter sends itself, when
    it does not answer the answered type or fit the thread (`thread_types`:
    a handover confirmed already, or withdrawn), or when the hub's schema or
    the contracts would refuse it.
    """
    if request.type in UNANSWERED_TYPES:
        raise PermanentError(
            ErrorCode.NOT_PERMITTED, f"the adapter sends every {request.type} itself", "/type"
        )
    if request.type not in partner.validator.message_types:
        raise PermanentError(ErrorCode.SCHEMA_INVALID, "type is not a message type", "/type")
    problem = answer_problem(request.type, answered_type, thread_types)
    if problem is not None:
        raise PermanentError(problem.code, problem.detail, problem.pointer)
    if answered_case is None:
        raise PermanentError(
            ErrorCode.INVALID_STATE, "the answered message has no case", "/reply_to"
        )
    message_id = new_message_id()
    envelope = sign(
        Envelope(
            id=message_id,
            type=request.type,
            sender=partner.party,
            recipient=partner.hub,
            sent_at=now,
            thread=answered_thread,
            reply_to=request.reply_to,
            case=answered_case,
            body=request.body,
        ),
        partner.signing_key,
    )
    return _checked(partner, envelope)


def _checked(partner: Partner, envelope: Envelope) -> Envelope:
    """Our own message through the hub's schema and contract rules, before it leaves."""
    problem = partner.validator.first_problem(envelope.to_json())
    if problem is not None:
        raise PermanentError(ErrorCode.SCHEMA_INVALID, problem.message, problem.pointer)
    hub = Verifier(partner.contracts, partner.validator, partner.hub)
    authorise(envelope, partner.contract, hub)
    return envelope
