"""What only the fake store does: its one-at-a-time lock and its ended units of work.

Everything it shares with the SQL store is proved in tests/integration/test_store_contract.py.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from gateway.domain.errors import TransientError
from tests.fakes.store import MemoryStore

NOW = datetime(2026, 11, 28, 11, 0, tzinfo=UTC)


async def test_a_transaction_waiting_too_long_for_another_is_transient() -> None:
    """As SQLite's busy timeout: a second transaction that cannot start raises TransientError."""
    store = MemoryStore(lock_timeout=0.01)
    async with store.transaction():
        with pytest.raises(TransientError):
            await store.transaction().__aenter__()  # entering the second one times out
    async with store.transaction() as uow:
        assert await uow.outbox.depth() == 0


async def test_a_unit_of_work_cannot_be_used_after_its_transaction() -> None:
    """Writes through a unit of work kept past its block are refused, not silently applied."""
    store = MemoryStore()
    async with store.transaction() as kept:
        assert await kept.alerts.open_alerts() == []  # usable inside its block
    with pytest.raises(RuntimeError, match="ended"):
        await kept.alerts.open("k", "d", NOW)
