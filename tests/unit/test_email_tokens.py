"""The bridge's links, codes and handles (adapters.email.tokens)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from adapters.email.tokens import (
    LinkRefusedError,
    LinkToken,
    Purpose,
    Refusal,
    case_handle,
    codes_in,
    confirmation_code,
    csrf_token,
    issue,
    load_secret,
    new_token_id,
    read,
)

SECRET = b"s" * 32
NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def token(**changes: object) -> LinkToken:
    values: dict[str, object] = {
        "token_id": "t1",
        "message_id": "324620c9-153f-418e-afeb-fb0f603ec8eb",
        "party": "lt-tiel",
        "purpose": Purpose.RESPOND,
        "expires_at": NOW + timedelta(days=7),
    }
    values.update(changes)
    return LinkToken(**values)  # type: ignore[arg-type]


def refusal(text: str, now: datetime = NOW, secret: bytes = SECRET) -> Refusal:
    with pytest.raises(LinkRefusedError) as caught:
        read(secret, text, now)
    return caught.value.refusal


def test_a_token_reads_back_as_issued() -> None:
    """issue -> read gives the same token (expiry to the second)."""
    assert read(SECRET, issue(SECRET, token()), NOW) == token()


def test_an_expired_token_is_refused() -> None:
    """At or after its expiry a token is EXPIRED."""
    text = issue(SECRET, token(expires_at=NOW))
    assert refusal(text) is Refusal.EXPIRED
    assert read(SECRET, text, NOW - timedelta(seconds=1)) == token(expires_at=NOW)


@pytest.mark.parametrize("position", [0, 5, -1, -5])
def test_a_token_altered_anywhere_is_refused(position: int) -> None:
    """One character changed, in the payload or the mac: ALTERED."""
    text = issue(SECRET, token())
    changed = "B" if text[position] != "B" else "C"
    index = position % len(text)
    assert refusal(text[:index] + changed + text[index + 1 :]) is Refusal.ALTERED


def test_a_token_made_with_another_secret_is_refused() -> None:
    """A token is only ours when our secret made its mac."""
    assert refusal(issue(b"x" * 32, token())) is Refusal.ALTERED


def test_a_token_naming_another_party_is_another_token() -> None:
    """The party is signed: a token for Culemborg cannot be turned into one for Tiel."""
    tiel, culemborg = issue(SECRET, token()), issue(SECRET, token(party="lt-culemborg"))
    spliced = culemborg.split(".")[0] + "." + tiel.split(".")[1]
    assert refusal(spliced) is Refusal.ALTERED


@pytest.mark.parametrize("text", ["", ".", "abc", "abc.", ".abc", "é.é", "a" * 2000])
def test_nonsense_is_refused_as_altered(text: str) -> None:
    """Whatever is not a token of ours is ALTERED, never an exception."""
    assert refusal(text) is Refusal.ALTERED


def test_codes_are_per_message_and_found_in_replies() -> None:
    """A code is stable per message, differs between messages, and is found in any case."""
    code = confirmation_code(SECRET, "m1")
    assert code == confirmation_code(SECRET, "m1") != confirmation_code(SECRET, "m2")
    assert codes_in(f"> Bevestigingscode: {code.lower()}\nja, akkoord {code}") == [code]


def test_a_case_handle_does_not_show_the_reference() -> None:
    """Stable per case, short, and without the case reference's digits."""
    handle = case_handle(SECRET, "VT-2026-000123")
    assert handle == case_handle(SECRET, "VT-2026-000123") != case_handle(SECRET, "VT-2026-000124")
    assert "000123" not in handle
    assert len(handle) == 8


def test_the_csrf_token_is_bound_to_nonce_and_link() -> None:
    """Another browser (nonce) or another link gives another CSRF token."""
    assert csrf_token(SECRET, "n1", "t1") != csrf_token(SECRET, "n2", "t1")
    assert csrf_token(SECRET, "n1", "t1") != csrf_token(SECRET, "n1", "t2")


def test_the_secret_is_made_once_readable_by_its_owner_only(tmp_path: Path) -> None:
    """A missing secret file is created with 32 random bytes, mode 0600, and then kept."""
    path = tmp_path / "secret"
    first = load_secret(path)
    assert len(first) == 32
    assert path.stat().st_mode & 0o777 == 0o600
    assert load_secret(path) == first
    assert new_token_id() != new_token_id()
