"""Who calls VT's API: one bearer token per calling system, kept only as its SHA-256.

The tokens file (settings `api.tokens_file`) names each calling system with
the hash of its token, never the token itself:

    zaaksysteem = "sha256:<64 lowercase hex digits>"

`hash_token` gives that line's value for a token that `new_token` made. A
presented token is hashed and compared with every configured hash in constant
time (`hmac.compare_digest`), all of them every time, so neither the timing
nor the order of the file tells which one matched or how close a guess came.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from gateway.domain.errors import ConfigurationError

HASH_PREFIX = "sha256:"
_HASH = re.compile(r"sha256:[0-9a-f]{64}")
_CALLER = re.compile(r"[a-z][a-z0-9_-]{0,63}")
_BEARER = re.compile(r"bearer +([A-Za-z0-9._~+/-]+=*) *", re.IGNORECASE)


def new_token() -> str:
    """A fresh token for a calling system: 32 random bytes, URL-safe base64."""
    return secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """What the tokens file keeps of a token: `sha256:<lowercase hex>`."""
    return HASH_PREFIX + hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def bearer_token(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header (RFC 6750), or None."""
    if authorization is None:
        return None
    match = _BEARER.fullmatch(authorization)
    return match.group(1) if match else None


@dataclass(frozen=True, slots=True)
class ApiTokens:
    """The calling systems and the SHA-256 of each one's token."""

    digests: Mapping[str, bytes]

    @classmethod
    def from_mapping(cls, data: Mapping[str, object], *, source: str = "tokens") -> ApiTokens:
        """From `name = "sha256:<hex>"` pairs; ConfigurationError naming the bad entry."""
        digests: dict[str, bytes] = {}
        for name, value in data.items():
            if not _CALLER.fullmatch(name):
                raise ConfigurationError(
                    f"{source}: caller name {name!r} must be lowercase letters, digits, - or _"
                )
            if not isinstance(value, str) or not _HASH.fullmatch(value):
                raise ConfigurationError(
                    f'{source}: {name} must be "sha256:<64 lowercase hex digits>", '
                    "the hash of the token (never the token itself)"
                )
            digest = bytes.fromhex(value.removeprefix(HASH_PREFIX))
            if digest in digests.values():
                raise ConfigurationError(f"{source}: {name} has the token of another caller")
            digests[name] = digest
        return cls(digests)

    @property
    def callers(self) -> frozenset[str]:
        return frozenset(self.digests)

    def authenticate(self, presented: str | None) -> str | None:
        """The name of the caller whose token this is, or None.

        Every configured hash is compared, in constant time, whatever matched
        before: no early exit tells an attacker which entry a guess hit.
        """
        if presented is None:
            return None
        candidate = hashlib.sha256(presented.encode("utf-8", "surrogatepass")).digest()
        caller: str | None = None
        for name, expected in self.digests.items():
            matched = hmac.compare_digest(candidate, expected)
            caller = name if matched else caller
        return caller


def load_api_tokens(path: Path) -> ApiTokens:
    """Read the tokens file; ConfigurationError when it is missing or wrong."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigurationError(f"cannot read API tokens {path}: {exc}") from exc
    return ApiTokens.from_mapping(data, source=str(path))
