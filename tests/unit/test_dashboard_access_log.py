"""The access log's hash chain (NEN 7513): each entry proves the ones before it."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from adapters.dashboard.access_log import GENESIS_HASH, Access, AccessEntry, chained, first_broken

NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


def log_of(count: int) -> list[AccessEntry]:
    entries: list[AccessEntry] = []
    for index in range(count):
        access = Access(
            username="coord",
            role="coordinator",
            action="view_case",
            outcome="ok",
            at=NOW + timedelta(seconds=index),
            case_ref=f"VT-2026-{index:06d}",
            detail={"page": str(index)},
            client="127.0.0.1",
        )
        entries.append(chained(access, entries[-1] if entries else None))
    return entries


def test_an_untouched_chain_verifies() -> None:
    """Numbered from 1, each entry names the hash of the one before."""
    entries = log_of(5)
    assert entries[0].previous_hash == GENESIS_HASH
    assert [e.sequence for e in entries] == [1, 2, 3, 4, 5]
    assert entries[3].previous_hash == entries[2].hash
    assert first_broken(entries) is None


def test_an_altered_entry_breaks_the_chain_at_itself() -> None:
    """Changing who, what or which case of an entry shows at that entry."""
    entries = log_of(5)
    for change in (
        {"username": "admin"},
        {"case_ref": "VT-2026-999999"},
        {"outcome": "refused:role"},
        {"at": NOW - timedelta(days=1)},
    ):
        tampered = list(entries)
        tampered[2] = replace(entries[2], access=replace(entries[2].access, **change))
        assert first_broken(tampered) == 3


def test_a_removed_entry_breaks_the_chain() -> None:
    """Leaving an entry out shows at the one after it."""
    entries = log_of(5)
    assert first_broken(entries[:2] + entries[3:]) == 4


def test_a_rehashed_forgery_still_breaks_the_chain() -> None:
    """Whoever alters an entry and recomputes its hash breaks the link of the next one."""
    entries = log_of(4)
    forged = replace(entries[1], access=replace(entries[1].access, username="someone"))
    forged = replace(forged, hash=forged.recomputed_hash())
    assert first_broken([entries[0], forged, *entries[2:]]) == 3


def test_verification_continues_after_a_checked_entry() -> None:
    """The chain is verified in batches: a batch follows the last entry of the one before."""
    entries = log_of(6)
    assert first_broken(entries[3:], after=entries[2]) is None
    assert first_broken(entries[4:], after=entries[2]) == 5
