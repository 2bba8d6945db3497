"""Staff sessions in a sealed cookie, CSRF tokens bound to them, and the sign-in rate limit.

The cookie holds the session (its id, the username, when it began and when it
was last used) encrypted and authenticated with Fernet under a key derived
from the session secret file: a cookie altered by one bit is refused whole.
A session idle longer than the setting is over; every request that uses it
seals it again with the new moment. Signing out revokes the session's id in
this process.

The CSRF token of a form is an HMAC of the session id (or, on the sign-in
page, of a random nonce in a cookie of its own) under another key derived from
the same secret: a page of another origin can neither read nor compute it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from gateway.domain.errors import ConfigurationError

MIN_SECRET_BYTES = 32


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
        self._revoked: dict[str, datetime] = {}

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
        if session.session_id in self._revoked:
            raise SessionRefusedError("the session was signed out")
        return session

    def revoke(self, session: Session, *, now: datetime, idle: timedelta) -> None:
        """Sign out: the session's id is refused from now on (kept until it would expire)."""
        self._revoked[session.session_id] = now + idle
        for sid in [s for s, until in self._revoked.items() if until < now]:
            del self._revoked[sid]

    # --- CSRF ------------------------------------------------------------------

    def csrf_token(self, binding: str) -> str:
        """The form token bound to a session id (or a sign-in nonce)."""
        return hmac.new(self._csrf_key, binding.encode(), hashlib.sha256).hexdigest()

    def csrf_valid(self, binding: str, token: str) -> bool:
        return bool(binding) and hmac.compare_digest(self.csrf_token(binding), token)


def new_session(username: str, now: datetime) -> Session:
    return Session(secrets.token_urlsafe(18), username, now, now)


def _derive(secret: bytes, purpose: bytes) -> bytes:
    return hmac.new(secret, b"vtgw-dashboard " + purpose, hashlib.sha256).digest()


class SignInLimiter:
    """At most `limit` failed sign-ins per (username, client) in any `window` (in memory)."""

    def __init__(self, limit: int = 5, window: timedelta = timedelta(minutes=15)) -> None:
        self.limit = limit
        self.window = window.total_seconds()
        self._failures: dict[tuple[str, str], deque[float]] = {}

    def blocked(self, username: str, client: str, now: float | None = None) -> bool:
        moment = time.monotonic() if now is None else now
        failures = self._failures.get((username, client))
        if failures is None:
            return False
        while failures and failures[0] <= moment - self.window:
            failures.popleft()
        return len(failures) >= self.limit

    def failed(self, username: str, client: str, now: float | None = None) -> None:
        moment = time.monotonic() if now is None else now
        self._failures.setdefault((username, client), deque()).append(moment)
        if len(self._failures) > 10_000:  # forget the idle ones
            cutoff = moment - self.window
            for key in [k for k, v in self._failures.items() if not v or v[-1] <= cutoff]:
                del self._failures[key]

    def succeeded(self, username: str, client: str) -> None:
        self._failures.pop((username, client), None)
