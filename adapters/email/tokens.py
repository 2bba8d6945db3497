"""The bridge's signed links, confirmation codes and case handles (HMAC-SHA256).

A link token is `<payload>.<mac>`: the payload is the base64url of a compact
JSON object {token id, message id, party, purpose, expires}; the mac is the
HMAC-SHA256 over the payload's text with the bridge's secret. Reading a token
checks the mac first (constant time), then the expiry. That it was issued and
is used only once is the store's to say (`adapters.email.store`): a token
proves who it was made for, the store proves what became of it.

The secret is one file of random bytes (created, mode 0600, when missing).
Codes and handles are derived from the same secret, so that nobody without it
can compute the code of a message or link a handle to a case reference.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path

from gateway.domain.errors import ConfigurationError

SECRET_BYTES = 32
_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read aloud, typed over
CODE_PATTERN = re.compile(r"\bVT-([A-HJ-NP-Z2-9]{4})-([A-HJ-NP-Z2-9]{4})\b", re.IGNORECASE)


class Purpose(StrEnum):
    """What a link lets its holder do."""

    RESPOND = "respond"  # answer the message (confirm, defer, enrichment answer): single use
    VIEW = "view"  # read an informational message until the link expires


class Refusal(StrEnum):
    """Why a link is refused; each has its own page and HTTP status."""

    ALTERED = "altered"  # the mac does not verify, or the token is not one we issued
    EXPIRED = "expired"
    USED = "used"
    FOREIGN = "foreign"  # a valid token, but of another message or party


class LinkRefusedError(Exception):
    """A link the bridge will not honour."""

    def __init__(self, refusal: Refusal) -> None:
        super().__init__(refusal.value)
        self.refusal = refusal


@dataclass(frozen=True, slots=True)
class LinkToken:
    """What a link names: which message, for which party, to do what, until when."""

    token_id: str
    message_id: str
    party: str
    purpose: Purpose
    expires_at: datetime


def load_secret(path: Path) -> bytes:
    """The bridge's secret: read from `path`, or made there (random, mode 0600) when missing."""
    try:
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(secrets.token_bytes(SECRET_BYTES))
        secret = path.read_bytes()
    except OSError as exc:
        raise ConfigurationError(f"cannot read or create the bridge's token secret {path}") from exc
    if len(secret) < SECRET_BYTES:
        raise ConfigurationError(f"the bridge's token secret {path} has fewer than 32 bytes")
    return secret


def new_token_id() -> str:
    return secrets.token_hex(16)


def issue(secret: bytes, token: LinkToken) -> str:
    """The token's text for a link: payload and mac, both base64url."""
    payload = json.dumps(
        {
            "t": token.token_id,
            "m": token.message_id,
            "p": token.party,
            "u": token.purpose.value,
            "e": int(token.expires_at.timestamp()),
        },
        separators=(",", ":"),
        sort_keys=True,
    ).encode("utf-8")
    text = _b64(payload)
    return f"{text}.{_b64(_mac(secret, text))}"


def read(secret: bytes, text: str, now: datetime) -> LinkToken:
    """The token a link carries; LinkRefusedError ALTERED or EXPIRED."""
    payload_text, dot, mac_text = text.partition(".")
    if not dot or not payload_text or len(text) > 1000:
        raise LinkRefusedError(Refusal.ALTERED)
    try:
        mac = _unb64(mac_text)
    except ValueError as exc:
        raise LinkRefusedError(Refusal.ALTERED) from exc
    if not hmac.compare_digest(mac, _mac(secret, payload_text)):
        raise LinkRefusedError(Refusal.ALTERED)
    try:
        data = json.loads(_unb64(payload_text))
        token = LinkToken(
            token_id=str(data["t"]),
            message_id=str(data["m"]),
            party=str(data["p"]),
            purpose=Purpose(data["u"]),
            expires_at=datetime.fromtimestamp(int(data["e"]), UTC),
        )
    except (ValueError, KeyError, TypeError) as exc:  # a mac that verifies over nonsense
        raise LinkRefusedError(Refusal.ALTERED) from exc
    if now >= token.expires_at:
        raise LinkRefusedError(Refusal.EXPIRED)
    return token


def confirmation_code(secret: bytes, message_id: str) -> str:
    """The code a team quotes in a reply to confirm a message: VT-XXXX-XXXX, one per message."""
    digest = hmac.new(secret, f"code:{message_id}".encode(), hashlib.sha256).digest()
    letters = "".join(_CODE_ALPHABET[byte % len(_CODE_ALPHABET)] for byte in digest[:8])
    return f"VT-{letters[:4]}-{letters[4:]}"


def codes_in(text: str) -> list[str]:
    """The confirmation codes quoted in a text, normalised, in order of appearance, once each."""
    found = [f"VT-{a.upper()}-{b.upper()}" for a, b in CODE_PATTERN.findall(text)]
    return list(dict.fromkeys(found))


def case_handle(secret: bytes, case_ref: str) -> str:
    """A short handle of a case for mail subjects: the same case, the same handle; no reference."""
    digest = hmac.new(secret, f"case:{case_ref}".encode(), hashlib.sha256).digest()
    letters = "".join(_CODE_ALPHABET[byte % len(_CODE_ALPHABET)] for byte in digest[:6])
    return f"D-{letters}"


def csrf_token(secret: bytes, nonce: str, token_id: str) -> str:
    """The form field that proves a POST comes from our page: bound to the browser's nonce."""
    return _b64(hmac.new(secret, f"csrf:{nonce}:{token_id}".encode(), hashlib.sha256).digest())


def _mac(secret: bytes, payload_text: str) -> bytes:
    return hmac.new(secret, f"link:{payload_text}".encode(), hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    if not text.isascii() or "=" in text:
        raise ValueError("not base64url")
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise ValueError("not base64url") from exc
    if _b64(data) != text:
        raise ValueError("not the canonical base64url")
    return data
