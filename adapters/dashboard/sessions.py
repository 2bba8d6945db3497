"""Staff sessions in a sealed cookie, CSRF tokens bound to them, and the sign-in rate limit.

The cookie holds the session (its id, the username, when it began and when it
was last used) encrypted and authenticated with Fernet under a key derived
from the session secret file: a cookie altered by one bit is refused whole.
A session idle longer than the setting is over; every request that uses it
seals it again with the new moment. Signing out puts the session's id in the
store (`SignedOutSessions`), where every instance of the dashboard refuses it
until any cookie of it would have been idle too long anyway.

The CSRF token of a form is an HMAC of the session id (or, on the sign-in
page, of a random nonce in a cookie of its own) under another key derived from
the same secret: a page of another origin can neither read nor compute it.

Failed sign-ins are limited per (username, client) on the store too
(`SignInLimiter`), counted under a keyed hash of the two: whichever instance a
browser reaches, the sixth failure within the window is refused.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from adapters.store.shared_state import RateLimit, RateRule, subject_of
from adapters.store.sql import SqlStore
from gateway.domain.errors import ConfigurationError

MIN_SECRET_BYTES = 32

CLOCK_MARGIN = timedelta(minutes=5)
"""How far the clocks of two instances may differ: a signed-out session is refused this much
longer than its cookie could be fresh by the clock of the instance that signed it out."""

SIGN_IN_RULE = RateRule(limit=5, window=timedelta(minutes=15))
"""At most five failed sign-ins per (username, client) in any fifteen minutes."""


@dataclass(frozen=True, slots=True)
class Session:
    """A signed-in member's session: who, since when, last used when."""

    session_id: str
    username: str
    started_at: datetime
    seen_at: datetime


class SessionRefusedError(Exception):
    """The cookie is no session of ours (altered, foreign, expired or signed out)."""


class SessionKeys:
    """The keys of sessions and CSRF tokens, derived from one secret."""

    def __init__(self, secret: bytes) -> None:
        if len(secret) < MIN_SECRET_BYTES:
            raise ConfigurationError(
                f"the dashboard's session secret needs at least {MIN_SECRET_BYTES} bytes"
            )
        self._fernet = Fernet(base64.urlsafe_b64encode(_derive(secret, b"session")))
        self._csrf_key = _derive(secret, b"csrf")
        self._sign_in_key = _derive(secret, b"sign-in limit")

    @classmethod
    def from_file(cls, path: Path) -> SessionKeys:
        try:
            secret = path.read_bytes().strip()
        except OSError as exc:
            raise ConfigurationError(f"cannot read the session secret {path}: {exc}") from exc
        return cls(secret)

    # --- sessions --------------------------------------------------------------

    def seal(self, session: Session) -> str:
        payload = {
            "sid": session.session_id,
            "user": session.username,
            "started": session.started_at.timestamp(),
            "seen": session.seen_at.timestamp(),
        }
        return self._fernet.encrypt(json.dumps(payload).encode()).decode("ascii")

    def open(self, cookie: str, *, now: datetime, idle: timedelta) -> Session:
        """The session in a cookie, still fresh at `now`; SessionRefusedError if not."""
        try:
            payload = json.loads(self._fernet.decrypt(cookie.encode("ascii")))
            session = Session(
                session_id=str(payload["sid"]),
                username=str(payload["user"]),
                started_at=datetime.fromtimestamp(float(payload["started"]), UTC),
                seen_at=datetime.fromtimestamp(float(payload["seen"]), UTC),
            )
        except (InvalidToken, ValueError, KeyError, TypeError, UnicodeError) as exc:
            raise SessionRefusedError("not a session of this dashboard") from exc
        if now - session.seen_at > idle:
            raise SessionRefusedError("the session was idle too long")
        return session

    # --- CSRF ------------------------------------------------------------------

    def csrf_token(self, binding: str) -> str:
        """The form token bound to a session id (or a sign-in nonce)."""
        return hmac.new(self._csrf_key, binding.encode(), hashlib.sha256).hexdigest()

    def csrf_valid(self, binding: str, token: str) -> bool:
        return bool(binding) and hmac.compare_digest(self.csrf_token(binding), token)

    # --- the sign-in limit -----------------------------------------------------

    def sign_in_subject(self, username: str, client: str) -> str:
        """Whom the sign-in limit counts: a keyed hash of the username typed and the client."""
        return subject_of(self._sign_in_key, username, client)


def new_session(username: str, now: datetime) -> Session:
    return Session(secrets.token_urlsafe(18), username, now, now)


def _derive(secret: bytes, purpose: bytes) -> bytes:
    return hmac.new(secret, b"vtgw-dashboard " + purpose, hashlib.sha256).digest()


def refused_until(now: datetime, idle: timedelta) -> datetime:
    """Until when a session signed out at `now` is refused: until every cookie of it (sealed at
    `now` at the latest, by any instance's clock) has been idle too long."""
    return now + idle + CLOCK_MARGIN


class SignInLimiter:
    """The sign-in limit on the store: failures counted across every instance.

    An attempt counts before its password is checked (`attempt`), so that
    concurrent attempts cannot pass the limit together; a sign-in that
    succeeds forgets the subject's failures (`succeeded`). A refused attempt
    counts for nothing.
    """

    SCOPE = "dashboard_sign_in"

    def __init__(self, store: SqlStore, rule: RateRule = SIGN_IN_RULE) -> None:
        self._limit = RateLimit(store, self.SCOPE, rule)

    async def attempt(self, subject: str, now: datetime) -> bool:
        """Count an attempt of `subject` at `now`; False when the limit refuses it."""
        return await self._limit.take(subject, now)

    async def succeeded(self, subject: str) -> None:
        """The password was right: the subject's failures are forgotten."""
        await self._limit.clear(subject)
