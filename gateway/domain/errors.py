"""One tree of errors.

Permanent errors carry a protocol error code: the message is rejected, the
sender is told (where it can be known) and the message is kept. Transient
errors are retried and never turn into a rejection.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class ErrorCode(StrEnum):
    """The error codes of wire protocol v1 (PROTOCOL.md, "Error codes")."""

    MALFORMED = "MALFORMED"
    TOO_LARGE = "TOO_LARGE"
    SCHEMA_INVALID = "SCHEMA_INVALID"
    UNKNOWN_SENDER = "UNKNOWN_SENDER"
    SENDER_MISMATCH = "SENDER_MISMATCH"
    SIGNATURE_INVALID = "SIGNATURE_INVALID"
    KEY_NOT_VALID = "KEY_NOT_VALID"
    NOT_PERMITTED = "NOT_PERMITTED"
    UNKNOWN_RECIPIENT = "UNKNOWN_RECIPIENT"
    UNKNOWN_THREAD = "UNKNOWN_THREAD"
    INVALID_STATE = "INVALID_STATE"
    DUPLICATE_CONFLICT = "DUPLICATE_CONFLICT"
    FUTURE = "FUTURE"
    STALE = "STALE"


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why a message was refused: the body of the protocol's `error` message.

    `detail` is one line without personal data; `pointer` is the RFC 6901 JSON
    pointer of the first failing place, or empty.
    """

    code: ErrorCode
    detail: str
    pointer: str = ""

    def as_body(self) -> dict[str, str]:
        """The `error` body: one line of at most 300 characters, a printable pointer or none."""
        detail = " ".join(self.detail.split())[:300] or self.code.value
        pointer = self.pointer if self.pointer.isprintable() and len(self.pointer) <= 1000 else ""
        return {"code": self.code.value, "detail": detail, "pointer": pointer}


class GatewayError(Exception):
    """Root of the gateway's own errors."""


class PermanentError(GatewayError):
    """Retrying cannot help: reject with a protocol error code."""

    def __init__(self, code: ErrorCode, detail: str, pointer: str = "") -> None:
        super().__init__(f"{code.value}: {detail}")
        self.rejection = Rejection(code, detail, pointer)

    @property
    def code(self) -> ErrorCode:
        return self.rejection.code


class TransientError(GatewayError):
    """A passing failure (database or broker away): retry, never reject."""


class ConfigurationError(GatewayError):
    """The gateway's own configuration or contracts are wrong: refuse to start."""
