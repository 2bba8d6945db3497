"""The partners page's key windows: which key verifies now, which ends within 60 days.

Pure functions over a contract's keys, the same judgement as `vt-gateway keys
list` (gateway/cli.py): a key that ends within `KEY_EXPIRY_WARNING` (60 days,
issue 6 and docs/keys.md) is due for rotation, and a signing party with no
key that lasts beyond it needs attention.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from gateway.cli import KEY_EXPIRY_WARNING
from gateway.domain.contracts import PublicKey


class KeyState(StrEnum):
    VALID = "valid"
    ENDS_SOON = "ends-soon"  # verifies now, ends within the warning period
    ENDED = "ended"
    FUTURE = "future"  # not valid yet
    REVOKED = "revoked"


KEY_STATE_WORDS = {
    KeyState.VALID: "geldig",
    KeyState.ENDS_SOON: "loopt binnen 60 dagen af",
    KeyState.ENDED: "verlopen",
    KeyState.FUTURE: "nog niet geldig",
    KeyState.REVOKED: "ingetrokken",
}


def key_state(key: PublicKey, now: datetime, warning: timedelta = KEY_EXPIRY_WARNING) -> KeyState:
    """Where a key stands at `now`."""
    if key.revoked:
        return KeyState.REVOKED
    if now < key.not_before:
        return KeyState.FUTURE
    if key.not_after is not None and now >= key.not_after:
        return KeyState.ENDED
    if key.not_after is not None and key.not_after - now <= warning:
        return KeyState.ENDS_SOON
    return KeyState.VALID


def rotation_due(
    keys: Iterable[PublicKey], now: datetime, warning: timedelta = KEY_EXPIRY_WARNING
) -> bool:
    """No key (valid now or later) that lasts beyond the warning period: rotate now."""
    return not any(
        key_state(key, now, warning) in (KeyState.VALID, KeyState.FUTURE)
        and (key.not_after is None or key.not_after - now > warning)
        for key in keys
    )


@dataclass(frozen=True, slots=True)
class KeyLine:
    kid: str
    not_before: datetime
    not_after: datetime | None
    state: KeyState

    @property
    def warns(self) -> bool:
        return self.state in (KeyState.ENDS_SOON, KeyState.ENDED)


def key_lines(keys: Iterable[PublicKey], now: datetime) -> list[KeyLine]:
    """The keys by start, with their state."""
    return [
        KeyLine(k.kid, k.not_before, k.not_after, key_state(k, now))
        for k in sorted(keys, key=lambda k: (k.not_before, k.kid))
    ]
