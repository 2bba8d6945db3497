"""The verification pipeline: raw bytes in, an accepted envelope or a typed rejection out.

Every transport calls this one function with what it received and the identity
its own authentication established (the AMQP `user_id`, or the e-mail bridge's
party). No I/O happens here; the clock is passed in. The order of the checks
is the protocol's, visible below in `verify_message`:

    decode -> authenticate (sender, key, signature) -> validate -> clock -> key window
    -> authorise

The clock comes before the key's window: a message too old or too far ahead
is told so, whatever key signed it.

Checks that need the store (UNKNOWN_THREAD, INVALID_STATE, DUPLICATE_CONFLICT)
follow in the handler, inside the transaction that records the message.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from gateway.domain.canonical import CanonicalObject, digest_of
from gateway.domain.contracts import Contract, Contracts
from gateway.domain.delivery import UNANSWERED_TYPES
from gateway.domain.envelope import Envelope
from gateway.domain.errors import ErrorCode, PermanentError, Rejection
from gateway.domain.signatures import signature_verifies
from gateway.service.validation import EnvelopeValidator

MAX_MESSAGE_BYTES = 256 * 1024
MAX_NESTING = 32
MAX_CLOCK_AHEAD = timedelta(minutes=5)
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@dataclass(frozen=True, slots=True)
class Accepted:
    """A message that passed every check: its envelope and its digest."""

    envelope: Envelope
    digest: str


@dataclass(frozen=True, slots=True)
class Rejected:
    """A refused message: why, and whom to tell.

    `notify` is the party an `error` goes to, or None where the sender cannot
    be known or the message was itself a receipt or an error (never answered,
    so that no two systems can loop). `message_id` and `thread` are what the
    error replies to, where the message had readable ones.
    """

    rejection: Rejection
    notify: str | None
    message_id: str | None
    thread: str | None

    @property
    def code(self) -> ErrorCode:
        return self.rejection.code


Outcome = Accepted | Rejected


@dataclass(frozen=True, slots=True)
class Verifier:
    """What the pipeline checks against: the contracts, the compiled schema, and who we are."""

    contracts: Contracts
    validator: EnvelopeValidator
    receiving_party: str


def verify_message(
    raw: bytes, *, transport_identity: str, now: datetime, verifier: Verifier
) -> Outcome:
    """Run one received message through every check, in the protocol's order."""
    obj: dict[str, Any] | None = None
    sender: Contract | None = None
    try:
        obj = decode(raw)
        sender = authenticate_sender(obj, transport_identity, verifier.contracts)
        canonical = verify_signature(obj, sender, verifier.contracts)
        validate(obj, verifier.validator)
        envelope = Envelope.from_json(obj)
        check_clock(envelope, sender, now)
        check_key_window(envelope, sender, verifier.contracts, now)
        authorise(envelope, sender, verifier)
    except PermanentError as error:
        return _rejected(error.rejection, obj, sender, transport_identity, verifier.contracts)
    return Accepted(envelope, digest_of(canonical.whole()))


# --- decode -------------------------------------------------------------------


def decode(raw: bytes) -> dict[str, Any]:
    """A UTF-8 JSON object: I-JSON (no duplicate names), integers only, <= 256 KiB, <= 32 deep."""
    if len(raw) > MAX_MESSAGE_BYTES:
        raise PermanentError(
            ErrorCode.TOO_LARGE, f"message is {len(raw)} bytes, the limit is {MAX_MESSAGE_BYTES}"
        )
    try:
        text = raw.decode("utf-8")
        value = json.loads(
            text,
            object_pairs_hook=_object_without_duplicates,
            parse_constant=_no_constant,
            parse_float=_no_fraction,
        )
    except UnicodeDecodeError as exc:
        raise PermanentError(ErrorCode.MALFORMED, "message is not UTF-8") from exc
    except RecursionError as exc:
        raise PermanentError(ErrorCode.MALFORMED, "message is nested too deep") from exc
    except ValueError as exc:  # JSONDecodeError, duplicate names, NaN/Infinity
        raise PermanentError(ErrorCode.MALFORMED, f"message is not I-JSON: {_reason(exc)}") from exc
    if not isinstance(value, dict):
        raise PermanentError(ErrorCode.MALFORMED, "message is not a JSON object")
    # Fewer brackets than the limit cannot nest deeper than it: skip the walk.
    if raw.count(b"{") + raw.count(b"[") > MAX_NESTING and _nesting(value) > MAX_NESTING:
        raise PermanentError(ErrorCode.MALFORMED, f"message is nested deeper than {MAX_NESTING}")
    return value


def _object_without_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise ValueError("duplicate member name")
    return obj


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _no_fraction(text: str) -> Any:
    # Numbers are integers only (PROTOCOL.md); `1.0` would pass a schema's
    # "integer", so the decoder refuses any number with a fraction or exponent.
    raise ValueError("numbers must be integers")


def _reason(exc: ValueError) -> str:
    # json's own messages carry a position, never a value; ours are fixed texts.
    return str(exc).splitlines()[0][:120]


def _nesting(value: dict[str, Any]) -> int:
    """Depth of containers, walking containers only (leaves cost nothing)."""
    deepest = 1
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        children = node.values() if isinstance(node, dict) else node
        stack.extend((c, depth + 1) for c in children if isinstance(c, dict | list))
    return deepest


# --- authenticate -------------------------------------------------------------


def authenticate_sender(
    obj: dict[str, Any], transport_identity: str, contracts: Contracts
) -> Contract:
    """The sender's contract, when the transport authenticated that sender (or its signer)."""
    sender_id = obj.get("sender")
    if not isinstance(sender_id, str):
        raise PermanentError(ErrorCode.SCHEMA_INVALID, "sender is missing", "/sender")
    sender = contracts.get(sender_id)
    if sender is None:
        raise PermanentError(ErrorCode.UNKNOWN_SENDER, "sender has no contract", "/sender")
    signer = contracts.signer_of(sender_id)
    if signer is None or transport_identity != signer.party:
        raise PermanentError(
            ErrorCode.SENDER_MISMATCH,
            f"transport authenticated '{transport_identity}', not the sender '{sender_id}'",
            "/sender",
        )
    return sender


def verify_signature(
    obj: dict[str, Any], sender: Contract, contracts: Contracts
) -> CanonicalObject:
    """The Ed25519 signature over the canonical envelope, by a known, unrevoked key."""
    signature = obj.get("signature")
    if not isinstance(signature, dict) or not isinstance(signature.get("kid"), str):
        raise PermanentError(ErrorCode.SCHEMA_INVALID, "signature is missing", "/signature")
    value = signature.get("value")
    if signature.get("alg") != "Ed25519" or not isinstance(value, str):
        raise PermanentError(
            ErrorCode.SCHEMA_INVALID, "signature must be Ed25519 with a value", "/signature"
        )
    signer = contracts.signer_of(sender.party) or sender
    key = signer.key(signature["kid"])
    if key is None:
        raise PermanentError(
            ErrorCode.KEY_NOT_VALID, f"kid is not a key of '{signer.party}'", "/signature/kid"
        )
    if key.revoked:
        raise PermanentError(ErrorCode.KEY_NOT_VALID, "key is revoked", "/signature/kid")
    try:
        canonical = CanonicalObject(obj)
        signed = canonical.without("signature")
    except (PermanentError, UnicodeEncodeError) as exc:
        raise PermanentError(ErrorCode.MALFORMED, "message has no RFC 8785 form") from exc
    if not signature_verifies(key.key, signed, value):
        raise PermanentError(
            ErrorCode.SIGNATURE_INVALID, "signature does not verify", "/signature/value"
        )
    return canonical


# --- validate -----------------------------------------------------------------


def validate(obj: dict[str, Any], validator: EnvelopeValidator) -> None:
    """The envelope schema, with the type's body schema, in one compiled validation."""
    problem = validator.first_problem(obj)
    if problem is not None:
        raise PermanentError(ErrorCode.SCHEMA_INVALID, problem.message, problem.pointer)


def check_key_window(
    envelope: Envelope, sender: Contract, contracts: Contracts, now: datetime
) -> None:
    """The key existed when the message was signed and has not expired since."""
    signer = contracts.signer_of(sender.party) or sender
    key = signer.key(envelope.signature.kid) if envelope.signature is not None else None
    if key is None or not key.valid_for(signed_at=envelope.sent_at, now=now):
        raise PermanentError(
            ErrorCode.KEY_NOT_VALID,
            "key is outside its validity window",
            "/signature/kid",
        )


def check_clock(envelope: Envelope, sender: Contract, now: datetime) -> None:
    """`sent_at` at most 5 minutes ahead, and no older than the sender's maximum age."""
    if envelope.sent_at > now + MAX_CLOCK_AHEAD:
        raise PermanentError(ErrorCode.FUTURE, "sent_at is more than 5 minutes ahead", "/sent_at")
    if now - envelope.sent_at > sender.max_age:
        raise PermanentError(
            ErrorCode.STALE,
            f"sent_at is older than the sender's maximum age of {_hours(sender.max_age)} hours",
            "/sent_at",
        )


def _hours(duration: timedelta) -> str:
    return f"{duration.total_seconds() / 3600:g}"


# --- authorise ----------------------------------------------------------------


def authorise(envelope: Envelope, sender: Contract, verifier: Verifier) -> None:
    """The contracts allow this type, between these parties, for this municipality."""
    recipient = verifier.contracts.get(envelope.recipient)
    if recipient is None:
        raise PermanentError(ErrorCode.UNKNOWN_RECIPIENT, "recipient has no contract", "/recipient")
    if envelope.recipient != verifier.receiving_party:
        raise PermanentError(
            ErrorCode.NOT_PERMITTED,
            f"messages here are for '{verifier.receiving_party}' only",
            "/recipient",
        )
    if envelope.type not in sender.may_send:
        raise PermanentError(
            ErrorCode.NOT_PERMITTED, f"'{sender.party}' may not send {envelope.type}", "/type"
        )
    if envelope.type not in recipient.may_receive:
        raise PermanentError(
            ErrorCode.NOT_PERMITTED,
            f"'{recipient.party}' may not receive {envelope.type}",
            "/type",
        )
    if envelope.case is not None:
        for party in (sender, recipient):
            if envelope.case.gemeente not in party.werkgebied:
                raise PermanentError(
                    ErrorCode.NOT_PERMITTED,
                    f"{envelope.case.gemeente} is outside the werkgebied of '{party.party}'",
                    "/case/gemeente",
                )


# --- rejection ----------------------------------------------------------------


def _rejected(
    rejection: Rejection,
    obj: dict[str, Any] | None,
    sender: Contract | None,
    transport_identity: str,
    contracts: Contracts,
) -> Rejected:
    message_id = _uuid_member(obj, "id")
    thread = _uuid_member(obj, "thread")
    if sender is not None:
        notify: str | None = sender.party
    elif contracts.get(transport_identity) is not None:
        notify = transport_identity
    else:
        notify = None
    message_type = None if obj is None else obj.get("type")
    if isinstance(message_type, str) and message_type in UNANSWERED_TYPES:
        notify = None
    if message_id is None:
        notify = None  # an error must reply to an id; without one, the dead letters keep it
    return Rejected(rejection, notify, message_id, thread or message_id)


def _uuid_member(obj: dict[str, Any] | None, name: str) -> str | None:
    value = None if obj is None else obj.get(name)
    return value if isinstance(value, str) and _UUID.fullmatch(value) else None
