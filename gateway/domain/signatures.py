"""Ed25519 signatures over the canonical envelope (PROTOCOL.md, "Signature").

The signed bytes are the RFC 8785 form of the envelope without `signature`;
the value travels as base64url without padding. Decoding is strict: only the
one canonical encoding of 64 bytes is accepted, so a message cannot be altered
in its encoding while its signature still verifies.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from functools import lru_cache

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from gateway.domain.canonical import CanonicalObject, digest_of
from gateway.domain.envelope import SIGNATURE_ALG, Envelope, Signature

SIGNATURE_LENGTH = 64
PUBLIC_KEY_LENGTH = 32


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Strict base64url without padding; raises ValueError on any other form."""
    if "=" in text or not text.isascii():
        raise ValueError("base64url must be unpadded ASCII")
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise ValueError("not base64url") from exc
    if b64url_encode(data) != text:
        raise ValueError("not the canonical base64url encoding")
    return data


@dataclass(frozen=True, slots=True)
class SigningKey:
    """A party's private key with the `kid` its contract knows it by."""

    kid: str
    private_key: Ed25519PrivateKey

    @classmethod
    def generate(cls, kid: str) -> SigningKey:
        return cls(kid, Ed25519PrivateKey.generate())

    @classmethod
    def from_seed(cls, kid: str, seed: bytes) -> SigningKey:
        """From the 32-byte RFC 8032 secret (used by the test vectors)."""
        return cls(kid, Ed25519PrivateKey.from_private_bytes(seed))

    def public_bytes(self) -> bytes:
        return self.private_key.public_key().public_bytes_raw()

    def sign_bytes(self, message: bytes) -> str:
        return b64url_encode(self.private_key.sign(message))


def signing_bytes(envelope: Envelope) -> bytes:
    """The bytes a signature covers: the canonical envelope without `signature`."""
    return CanonicalObject(envelope.to_json()).without("signature")


def sign(envelope: Envelope, key: SigningKey) -> Envelope:
    """The envelope with its signature by `key`."""
    value = key.sign_bytes(signing_bytes(envelope))
    return envelope.with_signature(Signature(SIGNATURE_ALG, key.kid, value))


def sign_with_digest(envelope: Envelope, key: SigningKey) -> tuple[Envelope, str]:
    """The signed envelope and its digest, canonicalising the envelope once."""
    unsigned = CanonicalObject(envelope.to_json())
    signature = Signature(SIGNATURE_ALG, key.kid, key.sign_bytes(unsigned.whole()))
    member = {"alg": signature.alg, "kid": signature.kid, "value": signature.value}
    return envelope.with_signature(signature), digest_of(
        unsigned.with_member("signature", member).whole()
    )


def signature_verifies(public_key: bytes, message: bytes, value: str) -> bool:
    """Whether `value` is a valid Ed25519 signature of `message` by `public_key`."""
    try:
        signature = b64url_decode(value)
    except ValueError:
        return False
    if len(signature) != SIGNATURE_LENGTH or len(public_key) != PUBLIC_KEY_LENGTH:
        return False
    try:
        _public_key(public_key).verify(signature, message)
    except InvalidSignature:
        return False
    return True


@lru_cache(maxsize=4096)
def _public_key(raw: bytes) -> Ed25519PublicKey:
    """Loaded once per key: the contracts hold few keys, the pipeline many messages."""
    return Ed25519PublicKey.from_public_bytes(raw)
