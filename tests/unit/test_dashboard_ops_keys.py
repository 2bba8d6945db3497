"""The partners page's key windows: a key that ends within 60 days warns (issue 6)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from adapters.dashboard.partner_keys import KeyState, key_lines, key_state, rotation_due
from gateway.cli import KEY_EXPIRY_WARNING
from gateway.domain.contracts import PublicKey

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def key(
    kid: str, *, start_days: int = -100, end_days: int | None, revoked: bool = False
) -> PublicKey:
    end = None if end_days is None else NOW + timedelta(days=end_days)
    return PublicKey(kid, b"\0" * 32, NOW + timedelta(days=start_days), end, revoked)


def test_the_warning_is_the_cli_s_sixty_days() -> None:
    assert timedelta(days=60) == KEY_EXPIRY_WARNING


def test_a_key_ending_within_sixty_days_ends_soon() -> None:
    assert key_state(key("a", end_days=59), NOW) is KeyState.ENDS_SOON
    assert key_state(key("a", end_days=60), NOW) is KeyState.ENDS_SOON  # the 60th day included
    assert key_state(key("a", end_days=61), NOW) is KeyState.VALID
    assert key_state(key("a", end_days=None), NOW) is KeyState.VALID


def test_ended_future_and_revoked_keys() -> None:
    assert key_state(key("a", end_days=0), NOW) is KeyState.ENDED
    assert key_state(key("a", end_days=-1), NOW) is KeyState.ENDED
    assert key_state(key("a", start_days=1, end_days=400), NOW) is KeyState.FUTURE
    assert key_state(key("a", end_days=400, revoked=True), NOW) is KeyState.REVOKED


def test_rotation_is_due_without_a_key_lasting_beyond_sixty_days() -> None:
    assert rotation_due([key("old", end_days=30)], NOW)
    assert rotation_due([], NOW)
    assert rotation_due([key("x", end_days=400, revoked=True)], NOW)
    # A successor (valid now or later) that lasts: no rotation due, though the old one warns.
    assert not rotation_due([key("old", end_days=30), key("new", start_days=10, end_days=400)], NOW)
    assert not rotation_due([key("only", end_days=None)], NOW)


def test_key_lines_sort_by_start_and_warn_for_ending_keys() -> None:
    lines = key_lines([key("new", start_days=-1, end_days=400), key("old", end_days=30)], NOW)
    assert [line.kid for line in lines] == ["old", "new"]
    assert [line.warns for line in lines] == [True, False]
