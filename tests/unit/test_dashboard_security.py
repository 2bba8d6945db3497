"""The dashboard's sign-in pieces: argon2 passwords, sealed sessions, CSRF, the rate limit's rule.

What the store keeps (signed-out sessions, counted failures) is tested on
SQLite and PostgreSQL in tests/integration/test_shared_state.py.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from adapters.dashboard.sessions import (
    SIGN_IN_RULE,
    SessionKeys,
    SessionRefusedError,
    new_session,
    refused_until,
)
from adapters.dashboard.staff import Role, hash_password, load_staff, verify_password
from gateway.domain.errors import ConfigurationError

NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
IDLE = timedelta(minutes=30)
SECRET = b"s" * 32


def test_a_password_verifies_against_its_own_hash_only() -> None:
    """argon2id: the right password verifies, another does not, and the hash is no plain text."""
    hashed = hash_password("correct horse battery staple")
    assert hashed.startswith("$argon2id$")
    assert "correct horse" not in hashed
    assert verify_password(hashed, "correct horse battery staple")
    assert not verify_password(hashed, "Correct horse battery staple")
    assert not verify_password("not a hash", "anything")


def test_the_staff_file_gives_each_member_a_role(tmp_path: Path) -> None:
    """A member signs in with their password and gets the role of the file; others do not."""
    path = tmp_path / "staff.toml"
    path.write_text(
        "[[staff]]\n"
        'username = "coord"\ndisplay_name = "Coördinator"\nrole = "coordinator"\n'
        f'password_hash = "{hash_password("pw-coord")}"\n',
        encoding="utf-8",
    )
    staff = load_staff(path)
    member = staff.authenticate("coord", "pw-coord")
    assert member is not None
    assert member.role is Role.COORDINATOR
    assert member.role.may_act
    assert not member.role.may_audit
    assert staff.authenticate("coord", "wrong") is None
    assert staff.authenticate("nobody", "pw-coord") is None


def test_a_staff_file_with_a_plain_password_is_refused(tmp_path: Path) -> None:
    """Only argon2 hashes belong in the staff file."""
    path = tmp_path / "staff.toml"
    path.write_text(
        '[[staff]]\nusername = "x"\nrole = "viewer"\npassword_hash = "geheim"\n', encoding="utf-8"
    )
    with pytest.raises(ConfigurationError):
        load_staff(path)


def test_a_sealed_session_opens_again_while_fresh() -> None:
    """The cookie carries the session: the same member and id come back."""
    keys = SessionKeys(SECRET)
    session = new_session("coord", NOW)
    opened = keys.open(keys.seal(session), now=NOW + timedelta(minutes=5), idle=IDLE)
    assert opened.username == "coord"
    assert opened.session_id == session.session_id


def test_a_tampered_session_cookie_is_refused() -> None:
    """One character changed anywhere in the cookie, and it is no session."""
    keys = SessionKeys(SECRET)
    cookie = keys.seal(new_session("viewer1", NOW))
    for index in (10, len(cookie) // 2, len(cookie) - 5):
        changed = cookie[:index] + ("A" if cookie[index] != "A" else "B") + cookie[index + 1 :]
        with pytest.raises(SessionRefusedError):
            keys.open(changed, now=NOW, idle=IDLE)


def test_a_cookie_sealed_with_another_secret_is_refused() -> None:
    """Another installation's (or an attacker's) key makes no session here."""
    cookie = SessionKeys(b"o" * 32).seal(new_session("admin", NOW))
    with pytest.raises(SessionRefusedError):
        SessionKeys(SECRET).open(cookie, now=NOW, idle=IDLE)


def test_an_idle_session_expires() -> None:
    """Longer than the idle time since last use: signed out."""
    keys = SessionKeys(SECRET)
    cookie = keys.seal(new_session("coord", NOW))
    with pytest.raises(SessionRefusedError):
        keys.open(cookie, now=NOW + IDLE + timedelta(seconds=1), idle=IDLE)


def test_a_signed_out_session_is_refused_as_long_as_its_cookie_could_open() -> None:
    """Signed out now: refused past the last moment a cookie of it (sealed by then) still opens."""
    keys = SessionKeys(SECRET)
    cookie = keys.seal(new_session("coord", NOW))
    last_fresh = NOW + IDLE
    assert keys.open(cookie, now=last_fresh, idle=IDLE).username == "coord"
    with pytest.raises(SessionRefusedError):
        keys.open(cookie, now=last_fresh + timedelta(microseconds=1), idle=IDLE)
    assert refused_until(NOW, IDLE) > last_fresh  # with room for another instance's clock


def test_the_csrf_token_is_bound_to_its_session() -> None:
    """A form token of one session is no good for another, and an empty one never is."""
    keys = SessionKeys(SECRET)
    token = keys.csrf_token("session-a")
    assert keys.csrf_valid("session-a", token)
    assert not keys.csrf_valid("session-b", token)
    assert not keys.csrf_valid("session-a", "")
    assert not keys.csrf_valid("", keys.csrf_token(""))


def test_a_short_secret_is_refused() -> None:
    """The session secret needs 32 bytes at least."""
    with pytest.raises(ConfigurationError):
        SessionKeys(b"short")


def test_five_failed_sign_ins_in_fifteen_minutes_refuse_the_sixth() -> None:
    """The rule: five failures within the window refuse the next, until the first is older."""
    failures = [NOW + timedelta(seconds=second) for second in range(5)]
    for count, at in enumerate(failures):
        assert SIGN_IN_RULE.admits(failures[:count], at)
    assert not SIGN_IN_RULE.admits(failures, NOW + timedelta(seconds=10))
    assert not SIGN_IN_RULE.admits(failures, NOW + timedelta(minutes=15, microseconds=-1))
    assert SIGN_IN_RULE.admits(failures, NOW + timedelta(minutes=15))


def test_failed_sign_ins_are_counted_per_username_and_client_under_a_keyed_hash() -> None:
    """Each (username, client) is its own subject; the store sees neither, nor can it guess them."""
    keys = SessionKeys(SECRET)
    subject = keys.sign_in_subject("coord", "10.0.0.1")
    assert subject == keys.sign_in_subject("coord", "10.0.0.1")
    assert len(subject) == 64
    assert "coord" not in subject
    others = {
        keys.sign_in_subject("coord", "10.0.0.2"),
        keys.sign_in_subject("admin", "10.0.0.1"),
        keys.sign_in_subject("coord10.0.0.1", ""),
        SessionKeys(b"o" * 32).sign_in_subject("coord", "10.0.0.1"),
    }
    assert subject not in others
    assert len(others) == 4
