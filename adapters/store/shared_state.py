"""What the instances on one store must agree on besides the cases: signed-out sessions, rates.

Several `vt-gateway run` processes share one PostgreSQL store. A dashboard
session signed out on one of them is refused by all; a rate limit counts the
requests that reached any of them. Two tables (migration 0011) on the store's
metadata:

- `signed_out_sessions`: the id of each dashboard session signed out and until
  when a cookie of it could still be fresh; those past it are pruned at the
  next sign-out.
- `rate_events`: one row per request a rate limit admitted: the limit's scope,
  the subject (a keyed hash of who asked: never a name or an address), when.
  Rows older than their scope's window count no longer and are pruned, at most
  once per window by each instance.

A rate limit takes a request in one statement: its event is inserted only when
fewer than `limit` events of the subject lie within the window, so a refused
request counts for nothing. On PostgreSQL a transaction-scoped advisory lock on
the subject comes first, so that concurrent requests (on any instance) take
their turn; on SQLite every transaction is a writer already (BEGIN IMMEDIATE).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Column, Index, String, Table, delete, exists, func, literal, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from adapters.store.engine import translated
from adapters.store.sql import SqlStore
from adapters.store.tables import RowId, UtcDateTime, as_utc, metadata

SUBJECT_LENGTH = 64  # hex of HMAC-SHA256

signed_out_sessions = Table(
    "signed_out_sessions",
    metadata,
    Column("session_id", String(64), primary_key=True),
    Column("refused_until", UtcDateTime, nullable=False),
    Index("ix_signed_out_sessions_refused_until", "refused_until"),
)

rate_events = Table(
    "rate_events",
    metadata,
    Column("id", RowId, primary_key=True),
    Column("scope", String(32), nullable=False),
    Column("subject", String(SUBJECT_LENGTH), nullable=False),
    Column("at", UtcDateTime, nullable=False),
    Index("ix_rate_events_scope_subject_at", "scope", "subject", "at"),
    Index("ix_rate_events_scope_at", "scope", "at"),
)


# --- the rules (pure) ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RateRule:
    """At most `limit` events per subject in any `window`.

    An event counts while it is younger than the window: one at `at` counts at
    `now` when `at > now - window`. A request is admitted (and becomes an event)
    when fewer than `limit` events count; a refused one is no event.
    """

    limit: int
    window: timedelta

    def counts_after(self, now: datetime) -> datetime:
        """Events after this moment count at `now`; older ones never count again."""
        return now - self.window

    def admits(self, events: Iterable[datetime], now: datetime) -> bool:
        """Whether a request at `now` is admitted, given the subject's earlier events."""
        since = self.counts_after(now)
        return sum(1 for at in events if at > since) < self.limit


def subject_of(key: bytes, *parts: str) -> str:
    """Who a rate limit counts, as a keyed hash: the store holds no name or address."""
    return hmac.new(key, "\x00".join(parts).encode(), hashlib.sha256).hexdigest()


# --- on the store ----------------------------------------------------------------


class RateLimit:
    """A `RateRule` for one scope, counted on the store: across every instance that shares it."""

    def __init__(self, store: SqlStore, scope: str, rule: RateRule) -> None:
        self._store = store
        self.scope = scope
        self.rule = rule
        self._prune_due: datetime | None = None  # housekeeping of this instance only

    async def take(self, subject: str, now: datetime) -> bool:
        """Count a request of `subject` at `now` if the rule admits it; whether it did."""
        since = as_utc(self.rule.counts_after(now))
        events = rate_events.c
        counted = (
            select(func.count())
            .select_from(rate_events)
            .where(events.scope == self.scope, events.subject == subject, events.at > since)
            .scalar_subquery()
        )
        admitted = (
            rate_events.insert()
            .from_select(
                ["scope", "subject", "at"],
                select(
                    literal(self.scope, String(32)),
                    literal(subject, String(SUBJECT_LENGTH)),
                    literal(as_utc(now), UtcDateTime()),
                ).where(counted < self.rule.limit),
            )
            .returning(events.id)
        )
        async with self._store.connection() as db:
            with translated():
                await _take_turn(db, self.scope, subject)
                if self._prune_due is None or now >= self._prune_due:
                    await db.execute(
                        delete(rate_events).where(events.scope == self.scope, events.at <= since)
                    )
                    self._prune_due = now + self.rule.window
                taken = (await db.execute(admitted)).first()
        return taken is not None

    async def clear(self, subject: str) -> None:
        """Forget the subject's events (a sign-in that succeeded)."""
        events = rate_events.c
        async with self._store.connection() as db:
            with translated():
                await db.execute(
                    delete(rate_events).where(events.scope == self.scope, events.subject == subject)
                )


async def _take_turn(db: AsyncConnection, scope: str, subject: str) -> None:
    """On PostgreSQL: wait for the other transactions on this subject (until this one ends)."""
    if db.dialect.name != "postgresql":
        return
    digest = hashlib.sha256(f"vtgw-rate {scope} {subject}".encode()).digest()
    await db.execute(select(func.pg_advisory_xact_lock(int.from_bytes(digest[:8], signed=True))))


class SignedOutSessions:
    """The dashboard sessions signed out, on the store: refused by every instance."""

    def __init__(self, store: SqlStore) -> None:
        self._store = store

    async def add(self, session_id: str, until: datetime, now: datetime) -> None:
        """Refuse `session_id` until `until`; forget the ones whose time is over at `now`."""
        insert = (
            postgresql.insert(signed_out_sessions)
            if self._store.backend == "postgresql"
            else sqlite.insert(signed_out_sessions)
        )
        row = {"session_id": session_id, "refused_until": as_utc(until)}
        async with self._store.connection() as db:
            with translated():
                await db.execute(
                    delete(signed_out_sessions).where(
                        signed_out_sessions.c.refused_until < as_utc(now)
                    )
                )
                await db.execute(insert.values(**row).on_conflict_do_nothing())

    async def contains(self, session_id: str) -> bool:
        """Whether the session was signed out (on any instance)."""
        async with self._store.connection() as db:
            with translated():
                found = await db.scalar(
                    select(exists().where(signed_out_sessions.c.session_id == session_id))
                )
        return bool(found)


@contextlib.asynccontextmanager
async def sole_round(store: SqlStore, name: str) -> AsyncIterator[bool]:
    """Whether this instance may do the round `name` now: no other is doing it.

    For work whose effect lies outside the store (a mail sent) and so cannot be
    claimed row by row. On PostgreSQL a transaction-scoped try-lock, held on a
    connection of its own until the block ends: another instance that asks
    meanwhile gets False and skips its round. On SQLite, True: one instance
    writes to the file (and opening a second writer here would wait on the first).
    """
    if store.backend != "postgresql":
        yield True
        return
    digest = hashlib.sha256(f"vtgw-round {name}".encode()).digest()
    async with store.connection() as db:
        with translated():
            held = await db.scalar(
                select(func.pg_try_advisory_xact_lock(int.from_bytes(digest[:8], signed=True)))
            )
        yield bool(held)
