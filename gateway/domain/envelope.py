"""The envelope of wire protocol v1 (PROTOCOL.md, "Envelope").

An `Envelope` is built from a JSON object that already passed the envelope
schema; it never validates on its own. `to_json()` gives the object back, so
serialise -> parse is the identity for every valid envelope.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

from gateway import PROTOCOL_VERSION

JsonObject = dict[str, Any]

SIGNATURE_ALG = "Ed25519"


def format_timestamp(moment: datetime) -> str:
    """RFC 3339 UTC with `Z` and millisecond precision: 2026-11-28T13:52:35.123Z."""
    if moment.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware")
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_timestamp(text: str) -> datetime:
    """The inverse of `format_timestamp` (the schema checked the form)."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def new_message_id() -> str:
    """A fresh envelope id: a random UUID, lowercase and hyphenated."""
    return str(uuid4())


@dataclass(frozen=True, slots=True)
class CaseRef:
    """The VT case a message is about, and its municipality (CBS code)."""

    ref: str
    gemeente: str


@dataclass(frozen=True, slots=True)
class Signature:
    alg: str
    kid: str
    value: str


@dataclass(frozen=True, slots=True)
class Envelope:
    """One protocol message. `body` is the type's own object, as received."""

    id: str
    type: str
    sender: str
    recipient: str
    sent_at: datetime
    thread: str
    body: Mapping[str, Any]
    case: CaseRef | None = None
    reply_to: str | None = None
    signature: Signature | None = None
    version: int = PROTOCOL_VERSION

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> Envelope:
        """Build from a schema-valid envelope object."""
        case = obj.get("case")
        sig = obj.get("signature")
        return cls(
            version=obj["version"],
            id=obj["id"],
            type=obj["type"],
            sender=obj["sender"],
            recipient=obj["recipient"],
            sent_at=parse_timestamp(obj["sent_at"]),
            thread=obj["thread"],
            reply_to=obj.get("reply_to"),
            case=CaseRef(case["ref"], case["gemeente"]) if case is not None else None,
            body=obj["body"],
            signature=Signature(sig["alg"], sig["kid"], sig["value"]) if sig else None,
        )

    def to_json(self) -> JsonObject:
        """The envelope as a JSON object, members exactly as the protocol names them."""
        obj: JsonObject = {
            "version": self.version,
            "id": self.id,
            "type": self.type,
            "sender": self.sender,
            "recipient": self.recipient,
            "sent_at": format_timestamp(self.sent_at),
            "thread": self.thread,
        }
        if self.reply_to is not None:
            obj["reply_to"] = self.reply_to
        if self.case is not None:
            obj["case"] = {"ref": self.case.ref, "gemeente": self.case.gemeente}
        obj["body"] = dict(self.body)
        if self.signature is not None:
            obj["signature"] = {
                "alg": self.signature.alg,
                "kid": self.signature.kid,
                "value": self.signature.value,
            }
        return obj

    def with_signature(self, signature: Signature) -> Envelope:
        return replace(self, signature=signature)

    @property
    def is_answer(self) -> bool:
        return self.reply_to is not None
