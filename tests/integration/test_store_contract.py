"""The Store port's rules, one suite run against the fake, SQLite and PostgreSQL.

`StoreContract` holds the tests; each `Test...Store` class below gives it a
`store` fixture. What passes here for `MemoryStore` is what the unit tests
may rely on.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Connection

from adapters.dashboard import access_log as _access_log_table  # noqa: F401  (joins the metadata)
from adapters.dashboard import ops_queries as _dashboard_ops_tables  # noqa: F401  (0008)
from adapters.email import store as _email_tables  # noqa: F401  (the bridge's tables join the metadata)
from adapters.store import SqlStore, migrate, open_store
from adapters.store import shared_state as _shared_state_tables  # noqa: F401  (0011)
from adapters.store.engine import create_engine
from adapters.store.tables import metadata
from gateway.domain.delivery import Direction, Status, StatusChange, TimerKind
from gateway.domain.errors import TransientError
from gateway.domain.escalation import (
    Escalation,
    EscalationReason,
    EscalationState,
    Outcome,
    Route,
    propose,
    record_outcome,
)
from gateway.domain.handover import (
    Moment,
    Overdracht,
    OverdrachtState,
    on_confirmation,
    on_deferral,
    on_notice,
    on_receipt,
    on_withdrawal,
)
from gateway.domain.ledger import (
    UNLINKED,
    VEILIG_THUIS,
    EntryDraft,
    EntryKind,
    LedgerEntry,
    decided_entry,
    verify_chain,
)
from gateway.service.ports import (
    DuplicateMessageError,
    InboxEntry,
    RejectedMessage,
    Store,
    StoredMessage,
    Timer,
    UnitOfWork,
)
from tests.fakes.store import MemoryStore

NOW = datetime(2026, 11, 28, 11, 0, 0, 123456, tzinfo=UTC)
LEASE = timedelta(seconds=30)
SECOND = timedelta(seconds=1)
HUB = "vt-gz"


def message(
    message_id: str,
    *,
    sender: str = HUB,
    recipient: str = "jbg",
    thread: str = "thread-1",
    reply_to: str | None = None,
    created_at: datetime = NOW,
    status: Status = Status.QUEUED,
) -> StoredMessage:
    return StoredMessage(
        id=message_id,
        sender=sender,
        recipient=recipient,
        type="enrichment.request",
        thread=thread,
        reply_to=reply_to,
        case_ref="VT-2026-0001",
        gemeente="GM0281",
        direction=Direction.OUT if sender == HUB else Direction.IN,
        digest="sha256:" + "ab" * 32,
        raw=f'{{"id":"{message_id}"}}'.encode(),
        sent_at=created_at - SECOND,
        created_at=created_at,
        status=status,
    )


async def stored(store: Store, *messages: StoredMessage) -> None:
    async with store.transaction() as uow:
        for m in messages:
            await uow.messages.add(m, StatusChange(m.status, m.created_at, {"by": "test"}))


async def queued(store: Store, count: int, start: datetime = NOW) -> list[str]:
    """`count` stored messages in the outbox, enqueued one second apart, oldest first."""
    ids = [f"m{n}" for n in range(count)]
    async with store.transaction() as uow:
        for n, message_id in enumerate(ids):
            at = start + n * SECOND
            await uow.messages.add(
                message(message_id, created_at=at), StatusChange(Status.QUEUED, at)
            )
            await uow.outbox.enqueue(HUB, message_id, at)
    return ids


async def claim(store: Store, claimer: str, now: datetime = NOW, limit: int = 10) -> list[str]:
    async with store.transaction() as uow:
        items = await uow.outbox.claim(limit=limit, now=now, lease=LEASE, claimer=claimer)
    return [item.message_id for item in items]


ROOT = Path(__file__).resolve().parents[2]

DOOMED_CLAIMER = """
import asyncio, json, sys
from datetime import datetime, timedelta
from adapters.store import open_store

async def main(dsn: str, now: str) -> None:
    store = await open_store(dsn)
    async with store.transaction() as uow:
        timers = await uow.timers.claim_due(
            now=datetime.fromisoformat(now), limit=10, lease=timedelta(seconds=30), claimer="doomed"
        )
        print(json.dumps([t.subject_id for t in timers]), flush=True)
        await asyncio.sleep(3600)  # killed here, its claim not committed

asyncio.run(main(*sys.argv[1:]))
"""
"""An instance's timer loop cut short: it claims the due timers and is killed before it commits."""


def receipt_timer(subject_id: str, due_at: datetime, kind: TimerKind = TimerKind.RECEIPT) -> Timer:
    return Timer(kind, HUB, subject_id, due_at, "receipt within the receipt_timeout")


async def claim_timers(store: Store, now: datetime, claimer: str = "a") -> list[str]:
    async with store.transaction() as uow:
        timers = await uow.timers.claim_due(now=now, limit=10, lease=LEASE, claimer=claimer)
    return [timer.subject_id for timer in timers]


CASE_A = "VT-2026-0001"
CASE_B = "VT-2026-0002"
GEMEENTE = "GM0281"
DIGEST = "sha256:" + "cd" * 32


async def decide(uow: UnitOfWork, draft: EntryDraft) -> LedgerEntry:
    """Hold the case, decide the draft on its last entry and append it, as the service does."""
    await uow.ledger.hold([draft.case_ref])
    entry = decided_entry(draft, case_last=await uow.ledger.last_of(draft.case_ref))
    await uow.ledger.append(entry)
    return entry


async def appended(store: Store, *drafts: EntryDraft) -> list[LedgerEntry]:
    """The drafts appended one transaction each; each as its commit linked it."""
    entries = []
    for draft in drafts:
        async with store.transaction() as uow:
            await decide(uow, draft)
            entries.extend(await uow.ledger.link())
    return entries


def two_cases() -> list[EntryDraft]:
    """Case A opened, handed over to jbg and its regie moved; case B opened and closed."""
    amsterdam = timezone(timedelta(hours=1))
    return [
        EntryDraft.veiligheidsbeoordeling(CASE_A, GEMEENTE, NOW, evidence={"notitie": "één"}),
        EntryDraft.veiligheidsbeoordeling(CASE_B, GEMEENTE, NOW + SECOND),
        EntryDraft.overdracht_bevestigd(
            CASE_A,
            GEMEENTE,
            "jbg",
            (NOW + 2 * SECOND).astimezone(amsterdam),
            overdracht_id="n1",
            confirmation_id="c1",
            confirmation_digest=DIGEST,
        ),
        EntryDraft.regie_gewijzigd(
            CASE_A,
            GEMEENTE,
            "jbg",
            "wijkteam-oost",
            NOW + 3 * SECOND,
            message_id="r1",
            digest=DIGEST,
        ),
        EntryDraft.afgesloten(CASE_B, GEMEENTE, VEILIG_THUIS, NOW + 4 * SECOND),
    ]


def notice(overdracht_id: str, case_ref: str = CASE_A, at: datetime = NOW) -> Overdracht:
    return on_notice(
        id=overdracht_id,
        case_ref=case_ref,
        gemeente=GEMEENTE,
        moment=Moment.B,
        recipient="jbg",
        advised_term=date(2026, 12, 12),
        at=at,
    )


def escalation(case_ref: str = CASE_A, at: datetime = NOW, party: str = "jbg") -> Escalation:
    return propose(case_ref, party, EscalationReason.CONFIRMATION_OVERDUE, at)


class RolledBackError(Exception):
    """Raised inside a transaction to roll it back."""


class StoreContract:
    """The rules every Store keeps; subclasses provide the `store` fixture."""

    # --- the batch operations (one statement per table for a batch) -----------

    async def test_add_many_equals_add_one_by_one(self, store: Store) -> None:
        """add_many stores each message with its first status; get_many finds them."""
        items = [
            (message(f"b{n}"), StatusChange(Status.QUEUED, NOW, {"n": str(n)})) for n in range(3)
        ]
        async with store.transaction() as uow:
            await uow.messages.add_many(items)
        async with store.transaction() as uow:
            found = await uow.messages.get_many([(HUB, "b0"), (HUB, "b2"), (HUB, "absent")])
            history = await uow.messages.history(HUB, "b1")
        assert found == {(HUB, "b0"): message("b0"), (HUB, "b2"): message("b2")}
        assert history == [items[1][1]]

    async def test_add_many_refuses_a_message_stored_already(self, store: Store) -> None:
        """A (sender, id) stored before makes add_many raise DuplicateMessageError."""
        await stored(store, message("b0"))
        with pytest.raises(DuplicateMessageError):
            async with store.transaction() as uow:
                await uow.messages.add_many([(message("b0"), StatusChange(Status.QUEUED, NOW))])

    async def test_record_many_keeps_order_and_finality(self, store: Store) -> None:
        """Changes apply in order; after a final one the rest is evidence only."""
        await stored(store, message("b0"))
        sent = StatusChange(Status.SENT, NOW + SECOND)
        delivered = StatusChange(Status.DELIVERED, NOW + 2 * SECOND)
        late = StatusChange(Status.SENT, NOW + 3 * SECOND)
        async with store.transaction() as uow:
            await uow.messages.record_many(
                [(HUB, "b0", sent), (HUB, "b0", delivered), (HUB, "b0", late)]
            )
        async with store.transaction() as uow:
            got = await uow.messages.get(HUB, "b0")
            history = await uow.messages.history(HUB, "b0")
        assert got is not None
        assert got.status is Status.DELIVERED
        assert [c.status for c in history] == [
            Status.QUEUED,
            Status.SENT,
            Status.DELIVERED,
            Status.SENT,
        ]

    async def test_inbox_many_finds_and_refuses_as_one_by_one(self, store: Store) -> None:
        """get_many returns what is held; add_many refuses a (sender, id) held already."""
        entry = InboxEntry("jbg", "i1", "sha256:" + "cd" * 32, "r1", NOW)
        async with store.transaction() as uow:
            await uow.inbox.add_many([entry])
        async with store.transaction() as uow:
            assert await uow.inbox.get_many([("jbg", "i1"), ("jbg", "i2")]) == {
                ("jbg", "i1"): entry
            }
        with pytest.raises(DuplicateMessageError):
            async with store.transaction() as uow:
                await uow.inbox.add_many([entry])

    async def test_enqueue_many_keeps_the_given_order(self, store: Store) -> None:
        """Rows enqueued together are claimed in the order given."""
        await stored(store, message("b0"), message("b1"))
        async with store.transaction() as uow:
            await uow.outbox.enqueue_many([(HUB, "b1"), (HUB, "b0")], NOW)
        assert await claim(store, "a") == ["b1", "b0"]

    async def test_timers_many_schedule_and_cancel(self, store: Store) -> None:
        """schedule_many sets timers; cancel_many cancels those of the messages named."""
        await stored(store, message("b0"), message("b1"))
        async with store.transaction() as uow:
            await uow.timers.schedule_many([receipt_timer("b0", NOW), receipt_timer("b1", NOW)])
            await uow.timers.cancel_many(TimerKind.RECEIPT, [(HUB, "b0")], NOW)
        assert await claim_timers(store, NOW + SECOND) == ["b1"]

    # --- messages and their status history ------------------------------------

    async def test_a_message_is_stored_with_its_first_status_and_its_history_grows(
        self, store: Store
    ) -> None:
        """add() keeps the message and its first status; record() appends and moves the status."""
        first = StatusChange(Status.QUEUED, NOW, {"by": "api"})
        sent = StatusChange(Status.SENT, NOW + SECOND, {"broker": "confirmed"})
        async with store.transaction() as uow:
            await uow.messages.add(message("m1"), first)
        async with store.transaction() as uow:
            await uow.messages.record(HUB, "m1", sent)
        async with store.transaction() as uow:
            got = await uow.messages.get(HUB, "m1")
            history = await uow.messages.history(HUB, "m1")
        assert got == message("m1", status=Status.SENT)
        assert history == [first, sent]

    async def test_a_final_status_is_reported_final(self, store: Store) -> None:
        """A final status comes back final, in the history and as the current status."""
        await stored(store, message("m1"))
        async with store.transaction() as uow:
            await uow.messages.record(HUB, "m1", StatusChange(Status.DELIVERED, NOW, {"r": "x"}))
        async with store.transaction() as uow:
            got = await uow.messages.get(HUB, "m1")
            history = await uow.messages.history(HUB, "m1")
        assert got is not None
        assert got.status is Status.DELIVERED
        assert got.status.final
        assert [change.final for change in history] == [False, True]

    async def test_a_change_that_closes_the_message_comes_back_final(self, store: Store) -> None:
        """SENT that closes (a receipt expects no receipt) is kept final with its `closes`."""
        await stored(store, message("r1"))
        closing = StatusChange(Status.SENT, NOW, {"broker": "confirmed"}, closes=True)
        async with store.transaction() as uow:
            await uow.messages.record(HUB, "r1", closing)
        async with store.transaction() as uow:
            history = await uow.messages.history(HUB, "r1")
        assert history[-1] == closing
        assert history[-1].final

    async def test_a_final_status_never_changes_again_but_later_evidence_is_kept(
        self, store: Store
    ) -> None:
        """After a final status, record() only appends to the history; the status stays."""
        await stored(store, message("m1"))
        delivered = StatusChange(Status.DELIVERED, NOW, {"receipt": "r1"})
        late = StatusChange(Status.SENT, NOW + SECOND, {"broker": "confirmed"})
        async with store.transaction() as uow:
            await uow.messages.record(HUB, "m1", delivered)
            await uow.messages.record(HUB, "m1", late)
        async with store.transaction() as uow:
            got = await uow.messages.get(HUB, "m1")
            history = await uow.messages.history(HUB, "m1")
        assert got is not None
        assert got.status is Status.DELIVERED
        assert history[1:] == [delivered, late]

    async def test_a_message_whose_status_is_not_its_first_change_is_refused(
        self, store: Store
    ) -> None:
        """add() with StoredMessage.status unlike the first change's status is a ValueError."""
        with pytest.raises(ValueError, match="first status"):
            async with store.transaction() as uow:
                await uow.messages.add(message("m1"), StatusChange(Status.SENT, NOW))

    async def test_an_unknown_message_is_a_lookup_error(self, store: Store) -> None:
        """record, count_attempt and enqueue on a message never stored raise LookupError."""
        async with store.transaction() as uow:
            with pytest.raises(LookupError):
                await uow.messages.record(HUB, "nope", StatusChange(Status.SENT, NOW))
            with pytest.raises(LookupError):
                await uow.messages.count_attempt(HUB, "nope")
            with pytest.raises(LookupError):
                await uow.outbox.enqueue(HUB, "nope", NOW)
            assert await uow.messages.get(HUB, "nope") is None
            assert await uow.messages.history(HUB, "nope") == []

    async def test_a_message_is_stored_once_per_sender_and_id(self, store: Store) -> None:
        """A second add() of (sender, id) is a DuplicateMessageError; the transaction goes on."""
        await stored(store, message("m1"))
        async with store.transaction() as uow:
            with pytest.raises(DuplicateMessageError):
                await uow.messages.add(message("m1"), StatusChange(Status.QUEUED, NOW))
            await uow.messages.add(message("m2"), StatusChange(Status.QUEUED, NOW))
        async with store.transaction() as uow:
            assert await uow.messages.get(HUB, "m2") is not None

    async def test_count_attempt_increments(self, store: Store) -> None:
        """Each count_attempt() adds one and returns the new count; get() shows it."""
        await stored(store, message("m1"))
        async with store.transaction() as uow:
            assert await uow.messages.count_attempt(HUB, "m1") == 1
        async with store.transaction() as uow:
            assert await uow.messages.count_attempt(HUB, "m1") == 2
            got = await uow.messages.get(HUB, "m1")
        assert got is not None
        assert got.attempts == 2

    async def test_find_in_thread_and_replies_to_list_oldest_first(self, store: Store) -> None:
        """find() by id over senders, in_thread() and replies_to() give messages oldest first."""
        await stored(
            store,
            message("q1", created_at=NOW + 2 * SECOND),
            message("q1", sender="jbg", recipient=HUB, created_at=NOW),
            message("a1", sender="jbg", recipient=HUB, reply_to="q1", created_at=NOW + SECOND),
            message("a2", sender="lt-tiel", reply_to="q1", created_at=NOW + 3 * SECOND),
            message("x1", thread="thread-2", reply_to="other"),
        )
        async with store.transaction() as uow:
            found = await uow.messages.find("q1")
            thread = await uow.messages.in_thread("thread-1")
            replies = await uow.messages.replies_to("q1")
            assert await uow.messages.find("absent") == []
        assert [(m.sender, m.id) for m in found] == [("jbg", "q1"), (HUB, "q1")]
        assert [m.id for m in thread] == ["q1", "a1", "q1", "a2"]
        assert [m.id for m in replies] == ["a1", "a2"]

    # --- inbox and transactions -------------------------------------------------

    async def test_the_inbox_refuses_a_second_sender_and_id(self, store: Store) -> None:
        """A second (sender, id) is a DuplicateMessageError; the first entry is unchanged."""
        entry = InboxEntry("jbg", "m1", "sha256:1", "receipt-1", NOW)
        async with store.transaction() as uow:
            await uow.inbox.add(entry)
        async with store.transaction() as uow:
            with pytest.raises(DuplicateMessageError):
                await uow.inbox.add(InboxEntry("jbg", "m1", "sha256:2", None, NOW + SECOND))
            assert await uow.inbox.get("jbg", "m1") == entry

    async def test_the_transaction_goes_on_after_a_refused_inbox_entry(self, store: Store) -> None:
        """After DuplicateMessageError the unit of work still writes and commits."""
        await stored(store, message("m1"))
        async with store.transaction() as uow:
            await uow.inbox.add(InboxEntry("jbg", "m1", "sha256:1", None, NOW))
        async with store.transaction() as uow:
            with pytest.raises(DuplicateMessageError):
                await uow.inbox.add(InboxEntry("jbg", "m1", "sha256:1", None, NOW))
            await uow.outbox.enqueue(HUB, "m1", NOW)
        async with store.transaction() as uow:
            assert await uow.outbox.depth() == 1

    async def test_the_same_id_from_two_senders_is_fine(self, store: Store) -> None:
        """The inbox is unique on (sender, id), not on id."""
        async with store.transaction() as uow:
            await uow.inbox.add(InboxEntry("jbg", "m1", "sha256:1", None, NOW))
            await uow.inbox.add(InboxEntry("lt-tiel", "m1", "sha256:2", None, NOW))
        async with store.transaction() as uow:
            first = await uow.inbox.get("jbg", "m1")
            second = await uow.inbox.get("lt-tiel", "m1")
            assert await uow.inbox.get("lt-ede", "m1") is None
        assert first is not None
        assert second is not None
        assert (first.digest, second.digest) == ("sha256:1", "sha256:2")

    async def test_a_rolled_back_transaction_leaves_nothing(self, store: Store) -> None:
        """An exception discards all the block wrote: message, inbox, outbox, timer, alert."""

        async def everything_then_fail() -> None:
            async with store.transaction() as uow:
                await uow.messages.add(message("m1"), StatusChange(Status.QUEUED, NOW))
                await uow.inbox.add(InboxEntry(HUB, "m1", "sha256:1", None, NOW))
                await uow.outbox.enqueue(HUB, "m1", NOW)
                await uow.timers.schedule(receipt_timer("m1", NOW))
                await uow.alerts.open("jbg", "down", NOW)
                assert await uow.outbox.depth() == 1  # a transaction reads its own writes
                raise RolledBackError

        with pytest.raises(RolledBackError):
            await everything_then_fail()
        async with store.transaction() as uow:
            assert await uow.messages.get(HUB, "m1") is None
            assert await uow.messages.history(HUB, "m1") == []
            assert await uow.inbox.get(HUB, "m1") is None
            assert await uow.outbox.depth() == 0
            assert await uow.timers.pending(HUB, "m1") == []
            assert await uow.alerts.open_alerts() == []

    async def test_a_rolled_back_change_leaves_the_committed_state_as_it_was(
        self, store: Store
    ) -> None:
        """Rolling back a status change and a claim restores what was committed before."""
        await queued(store, 1)

        async def send_claim_then_fail() -> None:
            async with store.transaction() as uow:
                await uow.messages.record(HUB, "m0", StatusChange(Status.SENT, NOW))
                await uow.outbox.claim(limit=1, now=NOW, lease=LEASE, claimer="a")
                raise RolledBackError

        with pytest.raises(RolledBackError):
            await send_claim_then_fail()
        async with store.transaction() as uow:
            got = await uow.messages.get(HUB, "m0")
            assert len(await uow.messages.history(HUB, "m0")) == 1
        assert got is not None
        assert got.status is Status.QUEUED
        assert await claim(store, "b") == ["m0"]

    # --- outbox ---------------------------------------------------------------------

    async def test_outbox_claim_returns_rows_oldest_first_and_not_those_another_holds(
        self, store: Store
    ) -> None:
        """claim() gives the oldest rows with their bytes; a second claimer gets only the rest."""
        ids = await queued(store, 5)
        async with store.transaction() as uow:
            items = await uow.outbox.claim(limit=2, now=NOW + 9 * SECOND, lease=LEASE, claimer="a")
        assert [item.message_id for item in items] == ids[:2]
        assert [(i.sender, i.recipient, i.type) for i in items] == [
            (HUB, "jbg", "enrichment.request")
        ] * 2
        assert items[0].raw == message(ids[0]).raw
        assert await claim(store, "b", NOW + 10 * SECOND) == ids[2:]
        assert await claim(store, "c", NOW + 11 * SECOND) == []

    async def test_an_expired_lease_can_be_claimed_again(self, store: Store) -> None:
        """A claimer that never published loses its rows when the lease ends."""
        ids = await queued(store, 2)
        assert await claim(store, "a", NOW + 2 * SECOND) == ids
        assert await claim(store, "b", NOW + 2 * SECOND + LEASE - SECOND) == []
        assert await claim(store, "b", NOW + 2 * SECOND + LEASE) == ids

    async def test_published_rows_are_not_claimed_again(self, store: Store) -> None:
        """published() takes rows out of line for good, even after their lease."""
        ids = await queued(store, 3)
        async with store.transaction() as uow:
            items = await uow.outbox.claim(limit=2, now=NOW + 3 * SECOND, lease=LEASE, claimer="a")
            await uow.outbox.published([item.outbox_id for item in items], NOW + 3 * SECOND)
            await uow.outbox.published([], NOW + 3 * SECOND)
        assert await claim(store, "b", NOW + 3 * SECOND + 2 * LEASE) == ids[2:]

    async def test_depth_counts_unpublished_rows(self, store: Store) -> None:
        """depth() counts rows not published, claimed or not."""
        await queued(store, 3)
        async with store.transaction() as uow:
            assert await uow.outbox.depth() == 3
            assert await uow.outbox.claim(limit=0, now=NOW, lease=LEASE, claimer="a") == []
            items = await uow.outbox.claim(limit=2, now=NOW + 3 * SECOND, lease=LEASE, claimer="a")
            assert await uow.outbox.depth() == 3
            await uow.outbox.published([items[0].outbox_id], NOW + 4 * SECOND)
            assert await uow.outbox.depth() == 2

    async def test_a_resend_is_another_outbox_row_with_the_same_bytes(self, store: Store) -> None:
        """enqueue() of a stored message again puts its same bytes in line again."""
        await queued(store, 1)
        async with store.transaction() as uow:
            await uow.outbox.enqueue(HUB, "m0", NOW + SECOND)
            items = await uow.outbox.claim(limit=5, now=NOW + SECOND, lease=LEASE, claimer="a")
        assert [item.message_id for item in items] == ["m0", "m0"]
        assert items[0].outbox_id != items[1].outbox_id
        assert items[0].raw == items[1].raw

    # --- timers ---------------------------------------------------------------------

    async def test_due_timers_are_claimed_earliest_first_and_future_ones_not(
        self, store: Store
    ) -> None:
        """claim_due() gives timers due at or before now, earliest first, with their ids."""
        async with store.transaction() as uow:
            await uow.timers.schedule(receipt_timer("late", NOW))
            await uow.timers.schedule(receipt_timer("future", NOW + SECOND))
            await uow.timers.schedule(receipt_timer("early", NOW - 60 * SECOND))
        async with store.transaction() as uow:
            due = await uow.timers.claim_due(now=NOW, limit=10, lease=LEASE, claimer="a")
        assert [t.subject_id for t in due] == ["early", "late"]
        assert all(t.timer_id is not None for t in due)
        assert due[0] == Timer(
            TimerKind.RECEIPT,
            HUB,
            "early",
            NOW - 60 * SECOND,
            "receipt within the receipt_timeout",
            attempt=1,
            timer_id=due[0].timer_id,
        )

    async def test_a_claimed_timer_is_held_until_its_lease_expires(self, store: Store) -> None:
        """Another claimer does not get a held timer; after the lease it does."""
        async with store.transaction() as uow:
            await uow.timers.schedule(receipt_timer("m1", NOW))
        assert await claim_timers(store, NOW, "a") == ["m1"]
        assert await claim_timers(store, NOW + LEASE - SECOND, "b") == []
        assert await claim_timers(store, NOW + LEASE, "b") == ["m1"]

    async def test_cancelled_and_done_timers_are_not_claimed(self, store: Store) -> None:
        """done() and cancel() end a timer: not pending, never claimed, however late."""
        async with store.transaction() as uow:
            await uow.timers.schedule(receipt_timer("m1", NOW))
            await uow.timers.schedule(receipt_timer("m1", NOW + SECOND))
            await uow.timers.schedule(receipt_timer("m2", NOW))
            await uow.timers.schedule(receipt_timer("m3", NOW))
        async with store.transaction() as uow:
            (fired,) = await uow.timers.pending(HUB, "m2")
            assert fired.timer_id is not None
            await uow.timers.done(fired.timer_id, NOW)
            assert await uow.timers.cancel(TimerKind.RECEIPT, HUB, "m1", NOW) == 2
            assert await uow.timers.cancel(TimerKind.RECEIPT, HUB, "m1", NOW) == 0
            assert await uow.timers.pending(HUB, "m1") == []
            assert await uow.timers.pending(HUB, "m2") == []
            assert [t.subject_id for t in await uow.timers.pending(HUB, "m3")] == ["m3"]
        assert await claim_timers(store, NOW + 3600 * SECOND) == ["m3"]

    async def test_pending_lists_a_subjects_timers_by_due_time(self, store: Store) -> None:
        """pending() gives the subject's open timers, earliest first, claimed ones included."""
        async with store.transaction() as uow:
            await uow.timers.schedule(receipt_timer("m1", NOW + 2 * SECOND))
            await uow.timers.schedule(receipt_timer("m1", NOW))
            await uow.timers.schedule(receipt_timer("other", NOW))
        await claim_timers(store, NOW)
        async with store.transaction() as uow:
            pending = await uow.timers.pending(HUB, "m1")
        assert [t.due_at for t in pending] == [NOW, NOW + 2 * SECOND]

    async def test_done_for_an_unknown_timer_is_a_lookup_error(self, store: Store) -> None:
        """done() names a timer that must exist."""
        async with store.transaction() as uow:
            with pytest.raises(LookupError):
                await uow.timers.done(987654, NOW)

    # --- alerts ---------------------------------------------------------------------

    async def test_an_alert_opens_once_and_closes_once(self, store: Store) -> None:
        """A second open() of an open key is False; a second close() is False."""
        async with store.transaction() as uow:
            assert await uow.alerts.open("undeliverable:jbg", "no receipt", NOW)
        async with store.transaction() as uow:
            assert not await uow.alerts.open("undeliverable:jbg", "again", NOW + SECOND)
            assert await uow.alerts.open("undeliverable:lt-tiel", "no receipt", NOW + SECOND)
            opened = await uow.alerts.open_alerts()
        assert [(a.key, a.detail, a.opened_at) for a in opened] == [
            ("undeliverable:jbg", "no receipt", NOW),
            ("undeliverable:lt-tiel", "no receipt", NOW + SECOND),
        ]
        async with store.transaction() as uow:
            assert await uow.alerts.close("undeliverable:jbg", NOW + 2 * SECOND)
            assert not await uow.alerts.close("undeliverable:jbg", NOW + 3 * SECOND)
            assert not await uow.alerts.close("never-opened", NOW)
            assert [a.key for a in await uow.alerts.open_alerts()] == ["undeliverable:lt-tiel"]

    async def test_an_alert_opens_again_after_closing_and_all_alerts_lists_its_history(
        self, store: Store
    ) -> None:
        """After close() the key opens anew; all_alerts() gives every one, oldest first."""
        key = "undeliverable:jbg"
        async with store.transaction() as uow:
            assert await uow.alerts.open(key, "first", NOW)
            assert await uow.alerts.close(key, NOW + SECOND)
            assert await uow.alerts.open(key, "second", NOW + 2 * SECOND)
            await uow.alerts.open("other", "x", NOW)
        async with store.transaction() as uow:
            history = await uow.alerts.all_alerts(key)
        assert [(a.detail, a.opened_at, a.closed_at) for a in history] == [
            ("first", NOW, NOW + SECOND),
            ("second", NOW + 2 * SECOND, None),
        ]
        assert history[0].alert_id is not None
        assert history[0].alert_id != history[1].alert_id

    # --- rejections -----------------------------------------------------------------

    async def test_a_rejection_keeps_the_raw_bytes_exactly(self, store: Store) -> None:
        """Every byte value, NUL and invalid UTF-8 included, comes back as it went in."""
        raw = bytes(range(256)) + b"\xff\xfe{not json"
        rejected = RejectedMessage(
            received_at=NOW,
            transport="amqp",
            transport_identity="jbg",
            code="MALFORMED",
            detail="not JSON",
            pointer="",
            raw=raw,
            headers={"content-type": "application/json", "x-délivery": "1"},
        )
        async with store.transaction() as uow:
            row_id = await uow.rejections.add(rejected)
        async with store.transaction() as uow:
            (kept,) = await uow.rejections.recent(10)
        assert isinstance(row_id, int)
        assert kept == rejected
        assert kept.raw == raw

    async def test_recent_rejections_come_newest_first(self, store: Store) -> None:
        """recent(n) gives the n newest, newest first."""
        async with store.transaction() as uow:
            for n in range(3):
                await uow.rejections.add(
                    RejectedMessage(
                        NOW + n * SECOND,
                        "http",
                        "vt",
                        "SCHEMA_INVALID",
                        f"d{n}",
                        "/body",
                        b"{}",
                        message_id=f"m{n}",
                        sender="vt-gz",
                        error_id=f"e{n}",
                    )
                )
        async with store.transaction() as uow:
            recent = await uow.rejections.recent(2)
        assert [(r.detail, r.message_id, r.error_id) for r in recent] == [
            ("d2", "m2", "e2"),
            ("d1", "m1", "e1"),
        ]

    # --- the responsibility ledger ---------------------------------------------------

    async def test_ledger_entries_come_back_equal_and_their_chain_verifies(
        self, store: Store
    ) -> None:
        """Every appended entry is read back equal, its hash recomputes and the chain is whole."""
        written = await appended(store, *two_cases())
        async with store.transaction() as uow:
            kept = await uow.ledger.entries(after=0, limit=100)
        assert list(kept) == written
        for entry in kept:
            assert entry.recomputed_hash() == entry.hash
            assert entry.at.tzinfo is UTC
        assert verify_chain(kept) is None
        assert kept[0].evidence == {"notitie": "één"}
        assert kept[2].kind is EntryKind.OVERDRACHT_BEVESTIGD
        assert (kept[3].holder, kept[3].regievoerder) == ("jbg", "wijkteam-oost")

    async def test_the_ledger_head_is_the_last_appended_entry(self, store: Store) -> None:
        """head() is None for an empty ledger, then always the entry appended last."""
        async with store.transaction() as uow:
            assert await uow.ledger.head() is None
        drafts = two_cases()
        for draft in drafts:
            (entry,) = await appended(store, draft)
            async with store.transaction() as uow:
                assert await uow.ledger.head() == entry

    async def test_last_of_and_history_give_one_cases_entries(self, store: Store) -> None:
        """last_of() is a case's latest entry, history() its entries oldest first; others none."""
        written = await appended(store, *two_cases())
        async with store.transaction() as uow:
            history_a = await uow.ledger.history(CASE_A)
            history_b = await uow.ledger.history(CASE_B)
            last_a = await uow.ledger.last_of(CASE_A)
            last_b = await uow.ledger.last_of(CASE_B)
            assert await uow.ledger.last_of("VT-2026-9999") is None
            assert list(await uow.ledger.history("VT-2026-9999")) == []
        assert list(history_a) == [written[0], written[2], written[3]]
        assert list(history_b) == [written[1], written[4]]
        assert last_a == written[3]
        assert last_b == written[4]
        assert last_b.holder is None

    async def test_appended_entries_are_linked_in_order_when_the_transaction_commits(
        self, store: Store
    ) -> None:
        """Until the commit an appended entry is unlinked, yet its case's last; then it is
        chained after the head in the order appended, with nothing left to link."""
        (first,) = await appended(store, two_cases()[0])
        drafts = two_cases()
        async with store.transaction() as uow:
            opened_b = await decide(uow, drafts[1])
            confirmed_a = await decide(uow, drafts[2])
            assert (opened_b.sequence, opened_b.hash) == (UNLINKED, "")
            assert await uow.ledger.last_of(CASE_B) == opened_b
            assert await uow.ledger.last_of(CASE_A) == confirmed_a
            assert [e.kind for e in await uow.ledger.history(CASE_A)] == [
                EntryKind.VEILIGHEIDSBEOORDELING,
                EntryKind.OVERDRACHT_BEVESTIGD,
            ]
            assert await uow.ledger.opened([CASE_B, "VT-2026-9999"]) == {CASE_B}
            assert await uow.ledger.head() == first  # not linked yet
        async with store.transaction() as uow:
            entries = list(await uow.ledger.entries(after=0, limit=10))
            assert await uow.ledger.link() == []
        assert verify_chain(entries) is None
        assert [(e.case_ref, e.kind) for e in entries] == [
            (CASE_A, EntryKind.VEILIGHEIDSBEOORDELING),
            (CASE_B, EntryKind.VEILIGHEIDSBEOORDELING),
            (CASE_A, EntryKind.OVERDRACHT_BEVESTIGD),
        ]
        assert entries[2].holder == "jbg"

    async def test_a_rolled_back_transaction_links_nothing(self, store: Store) -> None:
        """Entries appended in a transaction that raises are gone; the next one starts clean."""
        (first,) = await appended(store, two_cases()[0])

        async def append_then_fail() -> None:
            async with store.transaction() as uow:
                await decide(uow, two_cases()[1])
                raise RolledBackError

        with pytest.raises(RolledBackError):
            await append_then_fail()
        async with store.transaction() as uow:
            assert await uow.ledger.last_of(CASE_B) is None
            assert await uow.ledger.link() == []
        (second,) = await appended(store, two_cases()[1])
        assert (second.sequence, second.previous_hash) == (first.sequence + 1, first.hash)

    async def test_ledger_entries_page_in_order(self, store: Store) -> None:
        """entries(after, limit) gives the next `limit` entries by sequence, page by page."""
        written = await appended(store, *two_cases())
        pages = []
        after = 0
        async with store.transaction() as uow:
            while page := await uow.ledger.entries(after=after, limit=2):
                pages.append([entry.sequence for entry in page])
                assert verify_chain(page, after=written[after - 1] if after else None) is None
                after = page[-1].sequence
            assert list(await uow.ledger.entries(after=1, limit=0)) == []
        assert pages == [[1, 2], [3, 4], [5]]

    # --- overdrachten ---------------------------------------------------------------

    async def test_an_overdracht_saved_twice_keeps_its_latest_state_and_whole_history(
        self, store: Store
    ) -> None:
        """save() replaces: the latest state, its dates and every transition come back equal."""
        sent = notice("n1")
        async with store.transaction() as uow:
            await uow.handovers.save(sent)
        delivered = on_receipt(sent, sender="jbg", message_id="rc1", at=NOW + SECOND)
        deferred = on_deferral(
            delivered,
            sender="jbg",
            message_id="d1",
            at=NOW + SECOND,
            new_date=date(2026, 12, 19),
            reason="capaciteit",
        )
        confirmed = on_confirmation(deferred, sender="jbg", message_id="c1", at=NOW + 2 * SECOND)
        async with store.transaction() as uow:
            await uow.handovers.save(delivered)
            await uow.handovers.save(deferred)
            await uow.handovers.save(confirmed)
        async with store.transaction() as uow:
            kept = await uow.handovers.get("n1")
            assert await uow.handovers.get("absent") is None
        assert kept == confirmed
        assert kept is not None
        assert kept.state is OverdrachtState.CONFIRMED
        assert [step.state for step in kept.history] == [
            OverdrachtState.NOTICE_SENT,
            OverdrachtState.DELIVERED,
            OverdrachtState.DEFERRED,
            OverdrachtState.CONFIRMED,
        ]
        assert kept.deferred_to == date(2026, 12, 19)
        assert kept.advised_term == date(2026, 12, 12)
        assert kept.confirmed_at == NOW + 2 * SECOND
        assert all(step.at.tzinfo is UTC for step in kept.history)

    async def test_of_case_lists_a_cases_overdrachten(self, store: Store) -> None:
        """of_case() gives the case's overdrachten, by their notice's moment; no other case's."""
        later = notice("a-later", at=NOW + SECOND)
        first = notice("z-first")
        async with store.transaction() as uow:
            await uow.handovers.save(later)
            await uow.handovers.save(first)
            await uow.handovers.save(notice("other", case_ref=CASE_B))
        async with store.transaction() as uow:
            found = await uow.handovers.of_case(CASE_A)
            assert list(await uow.handovers.of_case("VT-2026-9999")) == []
        assert list(found) == [first, later]

    async def test_still_open_lists_only_handovers_in_no_final_state(self, store: Store) -> None:
        """still_open() gives the sent, delivered and deferred ones; not confirmed or withdrawn."""
        waiting = notice("n-open")
        withdrawn = on_withdrawal(notice("n-withdrawn"), message_id="w1", at=NOW + SECOND)
        async with store.transaction() as uow:
            await uow.handovers.save(waiting)
            await uow.handovers.save(withdrawn)
        async with store.transaction() as uow:
            assert list(await uow.handovers.still_open()) == [waiting]

    async def test_open_due_through_pages_open_handovers_by_deadline(self, store: Store) -> None:
        """open_due_through() gives the open ones due on or before a day, by deadline then id,
        at most `limit`, after a (deadline, id) key; a deferral's date counts, a final one not."""
        early = notice("n-early")  # advised 12 December
        same_day = notice("a-same-day")
        advised_first = replace(notice("n-deferred"), advised_term=date(2026, 12, 1))
        deferred = on_deferral(
            on_receipt(advised_first, sender="jbg", message_id="r1", at=NOW),
            sender="jbg",
            message_id="d1",
            at=NOW + SECOND,
            new_date=date(2026, 12, 20),
            reason="capaciteit",
        )
        late = on_deferral(
            notice("n-late"),
            sender="jbg",
            message_id="d2",
            at=NOW + SECOND,
            new_date=date(2027, 1, 20),
            reason="capaciteit",
        )
        confirmed = on_confirmation(notice("n-confirmed"), sender="jbg", message_id="c1", at=NOW)
        async with store.transaction() as uow:
            for overdracht in (early, same_day, late, confirmed, advised_first):
                await uow.handovers.save(overdracht)
            await uow.handovers.save(deferred)  # its deadline moved past the others'
        day = date(2026, 12, 31)
        async with store.transaction() as uow:
            everything = await uow.handovers.open_due_through(day, limit=10)
            first_two = await uow.handovers.open_due_through(day, limit=2)
            rest = await uow.handovers.open_due_through(
                day, limit=10, after=(first_two[-1].deadline, first_two[-1].id)
            )
            none_yet = await uow.handovers.open_due_through(date(2026, 12, 11), limit=10)
            nothing = await uow.handovers.open_due_through(day, limit=0)
        assert list(everything) == [same_day, early, deferred]
        assert list(first_two) + list(rest) == list(everything)
        assert list(none_yet) == []
        assert list(nothing) == []

    # --- escalations -----------------------------------------------------------------

    async def test_an_escalation_comes_back_equal_with_its_number(self, store: Store) -> None:
        """add() gives each escalation a number under which get() returns it equal."""
        amsterdam = timezone(timedelta(hours=1))
        first = escalation()
        second = propose(
            CASE_B, "wijkteam", EscalationReason.SAFETY_AT_RISK, NOW.astimezone(amsterdam)
        )
        async with store.transaction() as uow:
            one = await uow.escalations.add(first)
            two = await uow.escalations.add(second)
        async with store.transaction() as uow:
            kept_one = await uow.escalations.get(one)
            kept_two = await uow.escalations.get(two)
            assert await uow.escalations.get(max(one, two) + 1000) is None
        assert one != two
        assert kept_one == first
        assert kept_two == second
        assert kept_two is not None
        assert kept_two.opened_at.tzinfo is UTC
        assert all(step.at.tzinfo is UTC for step in kept_two.history)

    async def test_save_replaces_an_escalations_state_and_history(self, store: Store) -> None:
        """save() keeps the latest route, state and every step, outcomes and notes included."""
        opened = escalation()
        async with store.transaction() as uow:
            number = await uow.escalations.add(opened)
        moved_on = record_outcome(
            opened, Outcome.NOT_SOLVED, by="teamleider", at=NOW + SECOND, note="geen plek"
        )
        solved = record_outcome(moved_on, Outcome.SOLVED, by="beleid", at=NOW + 2 * SECOND)
        async with store.transaction() as uow:
            await uow.escalations.save(number, moved_on)
        async with store.transaction() as uow:
            assert await uow.escalations.get(number) == moved_on
            await uow.escalations.save(number, solved)
        async with store.transaction() as uow:
            kept = await uow.escalations.get(number)
        assert kept == solved
        assert kept is not None
        assert kept.state is EscalationState.SOLVED
        assert kept.route is Route.AMBTELIJK
        assert [(s.route, s.outcome) for s in kept.history] == [
            (Route.MANAGEMENT, None),
            (Route.MANAGEMENT, Outcome.NOT_SOLVED),
            (Route.AMBTELIJK, None),
            (Route.AMBTELIJK, Outcome.SOLVED),
        ]
        assert kept.history[1].note == "geen plek"

    async def test_since_lists_only_escalations_opened_at_or_after_the_moment(
        self, store: Store
    ) -> None:
        """since() gives those opened at or after the moment, oldest first, then by number."""
        before = escalation(at=NOW - SECOND)
        later = escalation(CASE_B, at=NOW + SECOND)
        at_moment = escalation(at=NOW)
        also_at_moment = escalation(CASE_B, at=NOW, party="wijkteam")
        async with store.transaction() as uow:
            await uow.escalations.add(before)
            n_later = await uow.escalations.add(later)
            n_at = await uow.escalations.add(at_moment)
            n_also = await uow.escalations.add(also_at_moment)
        async with store.transaction() as uow:
            found = await uow.escalations.since(NOW)
            assert list(await uow.escalations.since(NOW + 2 * SECOND)) == []
        assert list(found) == [(n_at, at_moment), (n_also, also_at_moment), (n_later, later)]

    async def test_still_open_leaves_out_solved_and_unsolved_escalations(
        self, store: Store
    ) -> None:
        """still_open() gives the open ones, oldest first; not those solved or ended unsolved."""
        waiting = escalation(at=NOW + SECOND)
        moved_on = record_outcome(escalation(at=NOW), Outcome.NOT_SOLVED, by="tl", at=NOW)
        solved = record_outcome(escalation(), Outcome.SOLVED, by="tl", at=NOW + SECOND)
        unsolved = escalation(CASE_B)
        for _ in Route:
            unsolved = record_outcome(unsolved, Outcome.NOT_SOLVED, by="wethouder", at=NOW)
        assert unsolved.state is EscalationState.UNSOLVED
        async with store.transaction() as uow:
            n_waiting = await uow.escalations.add(waiting)
            await uow.escalations.add(solved)
            await uow.escalations.add(unsolved)
            n_moved_on = await uow.escalations.add(moved_on)
        async with store.transaction() as uow:
            found = await uow.escalations.still_open()
        assert list(found) == [(n_moved_on, moved_on), (n_waiting, waiting)]

    # --- time -----------------------------------------------------------------------

    async def test_times_come_back_timezone_aware_utc_equal_to_what_went_in(
        self, store: Store
    ) -> None:
        """A time in any offset is kept to the microsecond and comes back as the same UTC moment."""
        amsterdam = timezone(timedelta(hours=1))
        local = datetime(2026, 11, 28, 12, 0, 0, 654321, tzinfo=amsterdam)
        async with store.transaction() as uow:
            await uow.messages.add(
                message("m1", created_at=local), StatusChange(Status.QUEUED, local)
            )
            await uow.inbox.add(InboxEntry("jbg", "m1", "sha256:1", None, local))
            await uow.timers.schedule(receipt_timer("m1", local))
            await uow.alerts.open("k", "d", local)
        async with store.transaction() as uow:
            got = await uow.messages.get(HUB, "m1")
            (change,) = await uow.messages.history(HUB, "m1")
            entry = await uow.inbox.get("jbg", "m1")
            (timer,) = await uow.timers.pending(HUB, "m1")
            (alert,) = await uow.alerts.open_alerts()
        assert got is not None
        assert entry is not None
        times = [got.created_at, got.sent_at + SECOND, change.at, entry.received_at]
        times += [timer.due_at, alert.opened_at]
        for moment in times:
            assert moment == local
            assert moment.tzinfo is UTC
            assert moment.microsecond == 654321

    async def test_a_naive_time_is_refused(self, store: Store) -> None:
        """A datetime without an offset is a ValueError, not a guess."""
        naive = datetime(2026, 11, 28, 12, 0)  # naive: the point of the test
        with pytest.raises(ValueError, match="naive"):
            async with store.transaction() as uow:
                await uow.alerts.open("k", "d", naive)


class SqlStoreContract(StoreContract):
    """What the SQL store adds: its schema comes from the migrations."""

    async def test_migrating_again_changes_nothing(self, store: Store, dsn: str) -> None:
        """migrate() on a store at the newest revision keeps it and its rows."""
        await stored(store, message("m1"))
        await migrate(dsn)
        async with store.transaction() as uow:
            assert await uow.messages.get(HUB, "m1") is not None

    async def test_the_migrations_create_the_schema_of_the_tables(self, dsn: str) -> None:
        """Alembic finds no difference between the migrated database and tables.py."""

        def differences(connection: Connection) -> list[object]:
            return list(compare_metadata(MigrationContext.configure(connection), metadata))

        engine = create_engine(dsn)
        try:
            async with engine.connect() as connection:
                diff = await connection.run_sync(differences)
        finally:
            await engine.dispose()
        assert diff == []


class TestMemoryStore(StoreContract):
    @pytest.fixture
    def store(self) -> Store:
        return MemoryStore()


class TestSqliteStore(SqlStoreContract):
    @pytest.fixture
    def dsn(self, sqlite_dsn: str) -> str:
        return sqlite_dsn

    @pytest.fixture
    def store(self, sqlite_store: SqlStore) -> Store:
        return sqlite_store


class TestPostgresStore(SqlStoreContract):
    @pytest.fixture
    def dsn(self, postgres_dsn: str) -> str:
        return postgres_dsn

    @pytest.fixture
    def store(self, postgres_store: SqlStore) -> Store:
        return postgres_store

    @pytest.fixture
    async def other_instance(self, postgres_dsn: str) -> AsyncIterator[Store]:
        """A second store on the same database: another gateway instance, its own connections."""
        other = await open_store(postgres_dsn)
        yield other
        await other.close()

    async def test_two_instances_claim_disjoint_outbox_rows(
        self, store: Store, other_instance: Store
    ) -> None:
        """While one transaction holds its claim, another skips those rows (SKIP LOCKED)."""
        ids = await queued(store, 6)
        later = NOW + 10 * SECOND
        async with store.transaction() as first:
            mine = await first.outbox.claim(limit=3, now=later, lease=LEASE, claimer="a")
            async with other_instance.transaction() as second:
                theirs = await asyncio.wait_for(
                    second.outbox.claim(limit=10, now=later, lease=LEASE, claimer="b"), 5
                )
        assert [i.message_id for i in mine] == ids[:3]
        assert [i.message_id for i in theirs] == ids[3:]

    async def test_two_instances_claim_disjoint_timers(
        self, store: Store, other_instance: Store
    ) -> None:
        """Due timers held by one uncommitted claim are skipped by the other instance."""
        async with store.transaction() as uow:
            for n in range(4):
                await uow.timers.schedule(receipt_timer(f"m{n}", NOW + n * SECOND))
        later = NOW + 10 * SECOND
        async with store.transaction() as first:
            mine = await first.timers.claim_due(now=later, limit=2, lease=LEASE, claimer="a")
            async with other_instance.transaction() as second:
                theirs = await asyncio.wait_for(
                    second.timers.claim_due(now=later, limit=10, lease=LEASE, claimer="b"), 5
                )
        assert [t.subject_id for t in mine] == ["m0", "m1"]
        assert [t.subject_id for t in theirs] == ["m2", "m3"]

    async def test_timers_claimed_by_a_killed_instance_go_to_the_other_at_once(
        self, store: Store, other_instance: Store, postgres_dsn: str
    ) -> None:
        """A process that claimed due timers is killed (SIGKILL) before it commits: the other
        instance skips them while it lives, and takes them as soon as it is dead, at the same
        moment, not after the lease: the claim was never committed, and PostgreSQL ends the
        dead process's transaction when its connection drops."""
        async with store.transaction() as uow:
            for n in range(3):
                await uow.timers.schedule(receipt_timer(f"m{n}", NOW + n * SECOND))
        later = NOW + 10 * SECOND
        claimer = subprocess.Popen(
            [sys.executable, "-c", DOOMED_CLAIMER, postgres_dsn, later.isoformat()],
            cwd=ROOT,
            stdout=subprocess.PIPE,
        )
        try:
            assert claimer.stdout is not None
            line = await asyncio.wait_for(asyncio.to_thread(claimer.stdout.readline), 30)
            assert json.loads(line) == ["m0", "m1", "m2"]
            assert await claim_timers(other_instance, later, "b") == []  # held by a live one
        finally:
            claimer.kill()
            claimer.wait()
        theirs: list[str] = []
        for _ in range(50):  # the server notices the closed connection at once, or nearly
            theirs = await claim_timers(other_instance, later, "b")
            if theirs:
                break
            await asyncio.sleep(0.1)
        assert theirs == ["m0", "m1", "m2"]

    async def test_two_instances_open_one_alert(self, store: Store, other_instance: Store) -> None:
        """Concurrent open() of one key: one wins, the other waits and gets False."""

        async def open_alert(instance: Store) -> bool:
            async with instance.transaction() as uow:
                return await uow.alerts.open("undeliverable:jbg", "no receipt", NOW)

        results = await asyncio.gather(open_alert(store), open_alert(other_instance))
        assert sorted(results) == [False, True]

    async def test_two_instances_on_different_cases_do_not_wait_for_each_other(
        self, store: Store, other_instance: Store
    ) -> None:
        """The chain is taken only at commit: while one transaction holds case A with an
        entry appended, another instance appends to case B and commits; A's entry then
        follows B's in one unbroken chain."""
        (first,) = await appended(store, two_cases()[0])
        drafts = two_cases()
        async with store.transaction() as holding:
            await decide(holding, drafts[2])  # A confirmed, not committed
            (theirs,) = await asyncio.wait_for(appended(other_instance, drafts[1]), 5)
        async with store.transaction() as uow:
            entries = list(await uow.ledger.entries(after=0, limit=10))
        assert verify_chain(entries) is None
        assert entries[:2] == [first, theirs]
        assert (entries[2].case_ref, entries[2].kind) == (CASE_A, EntryKind.OVERDRACHT_BEVESTIGD)

    async def test_two_instances_on_one_case_take_turns(
        self, store: Store, other_instance: Store
    ) -> None:
        """A second transaction on a held case waits for the first to commit, then decides on
        the first's entry: the regie change follows the confirmation it needs."""
        await appended(store, two_cases()[0])
        drafts = two_cases()
        async with store.transaction() as holding:
            await decide(holding, drafts[2])  # A confirmed to jbg, not committed
            waiting = asyncio.create_task(appended(other_instance, drafts[3]))
            await asyncio.sleep(0.3)
            assert not waiting.done()  # held until the first commits
        (theirs,) = await asyncio.wait_for(waiting, 5)
        assert (theirs.holder, theirs.regievoerder) == ("jbg", "wijkteam-oost")
        async with store.transaction() as uow:
            entries = list(await uow.ledger.entries(after=0, limit=10))
        assert verify_chain(entries) is None
        assert [e.kind for e in entries] == [
            EntryKind.VEILIGHEIDSBEOORDELING,
            EntryKind.OVERDRACHT_BEVESTIGD,
            EntryKind.REGIE_GEWIJZIGD,
        ]

    async def test_a_handover_row_waits_for_the_transaction_holding_its_case(
        self, store: Store, other_instance: Store
    ) -> None:
        """Case, then row: reading a handover to change it holds its case first, so it waits
        for a transaction that extends that case's ledger (and none waits in a cycle)."""
        async with store.transaction() as uow:
            await uow.handovers.save(notice("n1"))
        await appended(store, two_cases()[0])
        async with store.transaction() as holding:
            await decide(holding, two_cases()[2])

            async def read_handover() -> Overdracht | None:
                async with other_instance.transaction() as uow:
                    return await uow.handovers.get("n1")

            waiting = asyncio.create_task(read_handover())
            await asyncio.sleep(0.3)
            assert not waiting.done()
        assert await asyncio.wait_for(waiting, 5) is not None

    async def test_an_unreachable_database_is_a_transient_error(self) -> None:
        """Nothing listening: TransientError, so the caller retries instead of rejecting."""
        unreachable = await open_store("postgresql+asyncpg://postgres@127.0.0.1:1/none")
        try:
            with pytest.raises(TransientError):
                async with unreachable.transaction() as uow:
                    await uow.outbox.depth()
        finally:
            await unreachable.close()
