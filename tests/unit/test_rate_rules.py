"""The rate rules of the shared state, pure: what a window admits, and whom it counts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from adapters.dashboard.sessions import SIGN_IN_RULE
from adapters.email.pages import LINK_RULE
from adapters.store.shared_state import RateRule, subject_of

T0 = datetime(2026, 12, 9, 9, 0, tzinfo=UTC)


def admitted_of(rule: RateRule, requests: list[datetime]) -> list[datetime]:
    """The requests the rule admits, in order: a refused one is no event."""
    admitted: list[datetime] = []
    for at in requests:
        if rule.admits(admitted, at):
            admitted.append(at)
    return admitted


@given(
    limit=st.integers(min_value=1, max_value=6),
    window_s=st.integers(min_value=1, max_value=120),
    gaps_ms=st.lists(st.integers(min_value=0, max_value=30_000), max_size=60),
)
def test_no_window_ever_holds_more_than_the_limit(
    limit: int, window_s: int, gaps_ms: list[int]
) -> None:
    """Whatever the requests, at most `limit` admitted ones lie within any one window."""
    rule = RateRule(limit, timedelta(seconds=window_s))
    requests, now = [], T0
    for gap in gaps_ms:
        now += timedelta(milliseconds=gap)
        requests.append(now)
    admitted = admitted_of(rule, requests)
    for at in admitted:
        assert sum(1 for other in admitted if at - rule.window < other <= at) <= limit


def test_an_event_counts_until_it_is_exactly_one_window_old() -> None:
    """Sixty links a minute: a request at 0 s still counts at 59.999 s, no longer at 60 s."""
    events = [T0 + timedelta(milliseconds=500 * n) for n in range(60)]
    assert not LINK_RULE.admits(events, T0 + timedelta(seconds=59, milliseconds=999))
    assert LINK_RULE.admits(events, T0 + timedelta(seconds=60))
    assert LINK_RULE.admits(events[1:], T0 + timedelta(seconds=30))


def test_the_limits_are_those_documented() -> None:
    """Five failed sign-ins in fifteen minutes; sixty link requests a minute."""
    assert (SIGN_IN_RULE.limit, SIGN_IN_RULE.window) == (5, timedelta(minutes=15))
    assert (LINK_RULE.limit, LINK_RULE.window) == (60, timedelta(minutes=1))


def test_a_subject_is_a_keyed_hash_of_its_parts() -> None:
    """The same parts give the same subject; other parts, their split or another key do not."""
    subject = subject_of(b"k" * 32, "coord", "10.0.0.1")
    assert subject == subject_of(b"k" * 32, "coord", "10.0.0.1")
    assert len(subject) == 64
    assert subject != subject_of(b"k" * 32, "coord1", "0.0.0.1")
    assert subject != subject_of(b"x" * 32, "coord", "10.0.0.1")
