"""RFC 8785 canonical bytes and the digest (PROTOCOL.md, "Signature", "Digest").

The signed bytes are the canonical form of the envelope without `signature`;
the digest is over the canonical form of the whole envelope. Both are built
from the same per-member canonical pieces, so each message is canonicalised
once: RFC 8785 serialises an object as its members sorted by the UTF-16 code
units of their names, each as `name:value` in canonical form, so joining the
canonical members in that order is the canonical form of the object.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import rfc8785

from gateway.domain.errors import ErrorCode, PermanentError

DIGEST_PREFIX = "sha256:"


def canonical_bytes(value: Any) -> bytes:
    """The RFC 8785 form of a JSON value."""
    try:
        return rfc8785.dumps(value)
    except rfc8785.CanonicalizationError as exc:
        # The library's message quotes the value; a detail must not.
        raise PermanentError(
            ErrorCode.SCHEMA_INVALID, f"a value has no canonical JSON form ({type(exc).__name__})"
        ) from exc


def _member_order(name: str) -> bytes:
    return name.encode("utf-16-be")


@lru_cache(maxsize=256)
def _canonical_name(name: str) -> bytes:
    """Member names repeat on every message (the envelope's own): canonicalised once each."""
    return canonical_bytes(name)


class CanonicalObject:
    """A JSON object canonicalised member by member, once."""

    __slots__ = ("_members",)

    def __init__(self, obj: Mapping[str, Any]) -> None:
        self._members = {
            name: _canonical_name(name) + b":" + canonical_bytes(value)
            for name, value in sorted(obj.items(), key=lambda item: _member_order(item[0]))
        }

    def with_member(self, name: str, value: Any) -> CanonicalObject:
        """This object with one more member, canonicalising only that member."""
        extended = CanonicalObject({})
        members = dict(self._members)
        members[name] = _canonical_name(name) + b":" + canonical_bytes(value)
        extended._members = {k: members[k] for k in sorted(members, key=_member_order)}
        return extended

    def without(self, *names: str) -> bytes:
        """The canonical form of the object with the named members left out."""
        return b"{" + b",".join(v for k, v in self._members.items() if k not in names) + b"}"

    def whole(self) -> bytes:
        return b"{" + b",".join(self._members.values()) + b"}"


def digest_of(canonical: bytes) -> str:
    """`sha256:<lowercase hex>` of canonical bytes."""
    return DIGEST_PREFIX + hashlib.sha256(canonical).hexdigest()


def digest(envelope: Mapping[str, Any]) -> str:
    """The digest of a whole envelope, signature included."""
    return digest_of(canonical_bytes(envelope))
