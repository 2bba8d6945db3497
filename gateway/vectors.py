"""Test vectors for partner implementations (`vt-gateway vectors generate`).

A partner's developer, in Java or .NET, proves an implementation against this
file: fixed test keys (seeds included: TEST ONLY, never a party's real key),
valid messages with their canonical signed bytes, signatures and digests, and
invalid messages with the error code and JSON pointer the gateway answers.
Ed25519 is deterministic, so the file is byte-stable: the tests regenerate it
and compare it with the committed copy.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from gateway import PROTOCOL_VERSION
from gateway.domain.canonical import CanonicalObject, digest_of
from gateway.domain.contracts import Contract, Contracts, PublicKey, Transport
from gateway.domain.envelope import format_timestamp
from gateway.domain.signatures import SigningKey, b64url_encode
from gateway.service.pipeline import MAX_MESSAGE_BYTES, MAX_NESTING

JsonObject = dict[str, Any]

VECTOR_NOW = datetime(2026, 11, 28, 12, 0, 0, tzinfo=UTC)
TEST_KEY_NOT_BEFORE = datetime(2026, 1, 1, tzinfo=UTC)
TEST_KEY_NOT_AFTER = datetime(2027, 7, 1, tzinfo=UTC)
VECTORS_FILE = "test-vectors.json"

# The extra keys of one partner that the invalid cases need.
KEY_CASES_PARTY = "jbg"
EXPIRED, REVOKED, NOT_YET = "expired", "revoked", "not-yet-valid"


def vector_seed(party: str, label: str) -> bytes:
    """The seed of a fixed test key: SHA-256 of a fixed text, public by design."""
    return hashlib.sha256(f"vt-gateway test vector key {party} {label}".encode()).digest()


def vector_key(party: str, label: str = "1") -> SigningKey:
    """The fixed test key of a party."""
    return SigningKey.from_seed(f"{party}-test-{label}", vector_seed(party, label))


def _test_public_keys(contract: Contract) -> tuple[PublicKey, ...]:
    def entry(
        label: str,
        *,
        not_before: datetime = TEST_KEY_NOT_BEFORE,
        not_after: datetime = TEST_KEY_NOT_AFTER,
        revoked: bool = False,
    ) -> PublicKey:
        key = vector_key(contract.party, label)
        return PublicKey(key.kid, key.public_bytes(), not_before, not_after, revoked)

    keys = [entry("1")]
    if contract.party == KEY_CASES_PARTY:
        keys += [
            entry(EXPIRED, not_after=VECTOR_NOW - timedelta(days=1)),
            entry(REVOKED, revoked=True),
            entry(NOT_YET, not_before=VECTOR_NOW + timedelta(days=30)),
        ]
    return tuple(keys)


def with_test_keys(contracts: Contracts) -> Contracts:
    """The contracts with the test keys in place of whatever keys they hold."""
    return Contracts(
        contract
        if contract.transport is Transport.EMAIL
        else replace(contract, keys=_test_public_keys(contract))
        for contract in contracts
    )


def sign_object(obj: JsonObject, key: SigningKey) -> JsonObject:
    """Sign an envelope object as it stands (any `signature` member is replaced)."""
    unsigned = {k: v for k, v in obj.items() if k != "signature"}
    value = key.sign_bytes(CanonicalObject(unsigned).whole())
    return unsigned | {"signature": {"alg": "Ed25519", "kid": key.kid, "value": value}}


def signer_key(contracts: Contracts, sender: str, label: str = "1") -> SigningKey:
    signer = contracts.signer_of(sender)
    return vector_key(signer.party if signer is not None else sender, label)


# --- valid messages -------------------------------------------------------------


def load_examples(directory: Path) -> list[JsonObject]:
    """One example envelope per message type, by type name."""
    return [json.loads(p.read_text(encoding="utf-8")) for p in sorted(directory.glob("*.json"))]


def valid_vector(example: JsonObject, contracts: Contracts, *, sent_at: datetime) -> JsonObject:
    key = signer_key(contracts, example["sender"])
    message = sign_object(example | {"sent_at": format_timestamp(sent_at)}, key)
    canonical = CanonicalObject(message)
    signer = contracts.signer_of(message["sender"])
    return {
        "name": f"valid {message['type']}",
        "transport_identity": signer.party if signer is not None else message["sender"],
        "receiving_party": message["recipient"],
        "message": message,
        "signing_bytes_hex": canonical.without("signature").hex(),
        "signature": message["signature"]["value"],
        "digest": digest_of(canonical.whole()),
    }


# --- invalid messages -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Material:
    """What an invalid case is made from: a valid signed base message and the rest."""

    base: JsonObject
    contracts: Contracts
    examples: dict[str, JsonObject]


@dataclass(frozen=True, slots=True)
class InvalidCase:
    """A message the gateway must refuse, with the code and pointer it answers."""

    name: str
    code: str
    pointer: str
    make: Callable[[Material], bytes]
    transport_identity: str | None = None  # default: the base message's signer
    receiving_party: str | None = None  # default: the base message's recipient


def _text(obj: JsonObject) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _resigned(
    change: Callable[[JsonObject], JsonObject], label: str = "1"
) -> Callable[[Material], bytes]:
    def make(material: Material) -> bytes:
        base = material.base
        changed = change(json.loads(json.dumps(base)))
        return _text(sign_object(changed, signer_key(material.contracts, base["sender"], label)))

    return make


def _as_is(transform: Callable[[JsonObject], bytes]) -> Callable[[Material], bytes]:
    return lambda material: transform(material.base)


def _other_type(message_type: str) -> Callable[[Material], bytes]:
    """The base message turned into another type, with that type's example body."""

    def make(material: Material) -> bytes:
        example = material.examples[message_type]
        changed = material.base | {"type": message_type, "body": example["body"]}
        changed.pop("reply_to", None)
        changed = changed | ({"reply_to": example["reply_to"]} if "reply_to" in example else {})
        key = signer_key(material.contracts, material.base["sender"])
        return _text(sign_object(changed, key))

    return make


def _deep(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


def _body(**members: Any) -> Callable[[JsonObject], JsonObject]:
    return lambda obj: obj | {"body": obj["body"] | members}


def _sent(delta: timedelta) -> Callable[[JsonObject], JsonObject]:
    return lambda obj: obj | {"sent_at": format_timestamp(VECTOR_NOW + delta)}


def _flip_byte_in_body(obj: JsonObject) -> bytes:
    text = _text(obj)
    at = text.index(b'"body":') + len(b'"body":{"') + 1
    return text[:at] + bytes([text[at] ^ 0x01]) + text[at + 1 :]


def invalid_cases() -> Iterator[InvalidCase]:
    """Every error code the verification pipeline gives, at least once."""
    yield InvalidCase("not JSON", "MALFORMED", "", _as_is(lambda o: b"{not json"))
    yield InvalidCase("not UTF-8", "MALFORMED", "", _as_is(lambda o: b'{"a":"\xff"}'))
    yield InvalidCase("a JSON array", "MALFORMED", "", _as_is(lambda o: b"[]"))
    yield InvalidCase(
        "duplicate member name",
        "MALFORMED",
        "",
        _as_is(lambda o: _text(o)[:-1] + b',"id":"' + o["id"].encode() + b'"}'),
    )
    yield InvalidCase(
        f"nested deeper than {MAX_NESTING}",
        "MALFORMED",
        "",
        _resigned(_body(toelichting=_deep(MAX_NESTING))),
    )
    yield InvalidCase(
        f"larger than {MAX_MESSAGE_BYTES} bytes",
        "TOO_LARGE",
        "",
        _as_is(lambda o: _text(o) + b" " * (MAX_MESSAGE_BYTES + 1 - len(_text(o)))),
    )
    yield InvalidCase(
        "sender unknown",
        "UNKNOWN_SENDER",
        "/sender",
        _resigned(lambda o: o | {"sender": "onbekend"}),
        transport_identity="onbekend",
    )
    yield InvalidCase(
        "sender is not the authenticated party",
        "SENDER_MISMATCH",
        "/sender",
        _resigned(lambda o: o),
        transport_identity="rvdk",
    )
    yield InvalidCase(
        "one byte changed after signing",
        "SIGNATURE_INVALID",
        "/signature/value",
        _as_is(_flip_byte_in_body),
    )
    yield InvalidCase(
        "kid unknown for the sender",
        "KEY_NOT_VALID",
        "/signature/kid",
        _resigned(lambda o: o, label="unknown"),
    )
    yield InvalidCase(
        "key revoked", "KEY_NOT_VALID", "/signature/kid", _resigned(lambda o: o, label=REVOKED)
    )
    yield InvalidCase(
        "key expired", "KEY_NOT_VALID", "/signature/kid", _resigned(lambda o: o, label=EXPIRED)
    )
    yield InvalidCase(
        "key not yet valid when signed",
        "KEY_NOT_VALID",
        "/signature/kid",
        _resigned(lambda o: o, label=NOT_YET),
    )
    yield InvalidCase(
        "body member missing", "SCHEMA_INVALID", "/body", _resigned(lambda o: o | {"body": {}})
    )
    yield InvalidCase(
        "member the schema does not name",
        "SCHEMA_INVALID",
        "",
        _resigned(lambda o: o | {"extra": True}),
    )
    yield InvalidCase(
        "municipality not in the region",
        "SCHEMA_INVALID",
        "/case/gemeente",
        _resigned(lambda o: o | {"case": o["case"] | {"gemeente": "GM0363"}}),
    )
    yield InvalidCase(
        "sent more than 5 minutes ahead",
        "FUTURE",
        "/sent_at",
        _resigned(_sent(timedelta(minutes=6))),
    )
    yield InvalidCase(
        "older than the maximum age", "STALE", "/sent_at", _resigned(_sent(-timedelta(days=8)))
    )
    yield InvalidCase(
        "recipient unknown",
        "UNKNOWN_RECIPIENT",
        "/recipient",
        _resigned(lambda o: o | {"recipient": "onbekend"}),
    )
    yield InvalidCase(
        "addressed to another partner (partner to partner is not in v1)",
        "NOT_PERMITTED",
        "/recipient",
        _resigned(lambda o: o | {"recipient": "rvdk"}),
    )
    yield InvalidCase(
        "the e-mail bridge signing for a party on AMQP",
        "SENDER_MISMATCH",
        "/sender",
        _resigned(lambda o: o),
        transport_identity="vtgw-bridge",
    )
    yield InvalidCase(
        "municipality outside the recipient's werkgebied (Moviera, Zaltbommel)",
        "NOT_PERMITTED",
        "/case/gemeente",
        _hub_to("moviera", "overdracht.notice", gemeente="GM0297"),
        transport_identity="vt-gz",
        receiving_party="moviera",
    )
    yield InvalidCase(
        "type the sender may not send", "NOT_PERMITTED", "/type", _other_type("case.return")
    )


def _hub_to(recipient: str, message_type: str, *, gemeente: str) -> Callable[[Material], bytes]:
    """VT's example of a type, addressed to another recipient and municipality."""

    def make(material: Material) -> bytes:
        example = material.examples[message_type]
        changed = example | {
            "recipient": recipient,
            "sent_at": material.base["sent_at"],
            "case": example["case"] | {"gemeente": gemeente},
        }
        return _text(sign_object(changed, signer_key(material.contracts, example["sender"])))

    return make


def invalid_vector(case: InvalidCase, material: Material) -> JsonObject:
    raw = case.make(material)
    base = material.base
    signer = material.contracts.signer_of(base["sender"])
    entry: JsonObject = {
        "name": case.name,
        "transport_identity": case.transport_identity or (signer.party if signer else ""),
        "receiving_party": case.receiving_party or base["recipient"],
    }
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        entry["message_hex"] = raw.hex()
    else:
        if len(raw) > MAX_MESSAGE_BYTES:
            stripped = text.rstrip(" ")
            entry |= {"message_text": stripped, "pad_with_spaces_to_bytes": len(raw)}
        else:
            entry["message_text"] = text
    return entry | {"expected": {"code": case.code, "pointer": case.pointer}}


def message_bytes(entry: JsonObject) -> bytes:
    """The raw bytes of a vector entry, as a partner would send them."""
    if "message_hex" in entry:
        return bytes.fromhex(entry["message_hex"])
    if "message" in entry:
        return _text(entry["message"])
    raw = str(entry["message_text"]).encode("utf-8")
    return raw + b" " * (int(entry.get("pad_with_spaces_to_bytes", len(raw))) - len(raw))


# --- the file ---------------------------------------------------------------------


def generate(contracts: Contracts, examples_dir: Path) -> JsonObject:
    """The whole vectors document."""
    contracts = with_test_keys(contracts)
    examples = {e["type"]: e for e in load_examples(examples_dir)}
    sent_at = VECTOR_NOW - timedelta(minutes=1)
    base = examples["enrichment.response"] | {"sent_at": format_timestamp(sent_at)}
    base = sign_object(base, signer_key(contracts, base["sender"]))
    material = Material(base, contracts, examples)
    return {
        "protocol_version": PROTOCOL_VERSION,
        "about": (
            "Test vectors of wire protocol v1. TEST KEYS ONLY: the seeds below are public. "
            "Verify each message as the gateway does, with clock `now`, the message's "
            "transport identity and receiving party; valid messages must give the signing "
            "bytes, signature and digest listed; invalid ones the error code and pointer."
        ),
        "now": format_timestamp(VECTOR_NOW),
        "keys": [_key_entry(c, k) for c in contracts for k in c.keys],
        "valid": [valid_vector(examples[t], contracts, sent_at=sent_at) for t in sorted(examples)],
        "invalid": [invalid_vector(case, material) for case in invalid_cases()],
    }


def _key_entry(contract: Contract, key: PublicKey) -> JsonObject:
    label = key.kid.removeprefix(f"{contract.party}-test-")
    return {
        "party": contract.party,
        "kid": key.kid,
        "seed_hex": vector_seed(contract.party, label).hex(),
        "public_key": b64url_encode(key.key),
        "not_before": format_timestamp(key.not_before),
        "not_after": format_timestamp(key.not_after) if key.not_after else None,
        "revoked": key.revoked,
    }


def render(document: JsonObject) -> str:
    return json.dumps(document, ensure_ascii=False, indent=2) + "\n"
