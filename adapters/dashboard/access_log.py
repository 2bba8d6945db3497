"""The dashboard's access log (NEN 7513): who looked at which case data or acted, and how it went.

Every view of case data and every action through the dashboard is one entry:
who (the username), on whose behalf (the role they acted in), which case,
what (the action, with its ids in `detail`), when, from which client address,
and the outcome. Append-only and hash-chained like the responsibility ledger:
an entry's hash is `sha256:` over the RFC 8785 form of all its other fields,
the previous entry's hash included, so an altered, inserted or removed entry
shows. The table `access_log` (migration 0007) sits on the store's metadata;
`detail` holds ids only (filters, escalation numbers, message ids), never
personal data.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Column, Index, String, Table, Text, UniqueConstraint, exc, select
from sqlalchemy.ext.asyncio import AsyncConnection

from adapters.store.sql import SqlStore
from adapters.store.tables import Ident, RowId, UtcDateTime, as_utc, metadata
from gateway.domain.canonical import canonical_bytes, digest_of
from gateway.domain.errors import TransientError

GENESIS_HASH = "sha256:" + "0" * 64
"""The previous hash of the log's first entry."""

APPEND_ATTEMPTS = 5
VERIFY_BATCH = 1000

access_log = Table(
    "access_log",
    metadata,
    Column("sequence", RowId, primary_key=True, autoincrement=False),
    Column("at", UtcDateTime, nullable=False),
    Column("username", Ident, nullable=False),
    Column("role", String(16), nullable=False),
    Column("action", String(64), nullable=False),
    Column("case_ref", Ident),
    Column("detail", Text, nullable=False),  # JSON object of strings: ids only
    Column("outcome", String(64), nullable=False),
    Column("client", String(100)),
    Column("previous_hash", String(128), nullable=False),
    Column("hash", String(128), nullable=False),
    UniqueConstraint("hash"),
    Index("ix_access_log_username_at", "username", "at"),
    Index("ix_access_log_case_ref_at", "case_ref", "at"),
    Index("ix_access_log_at", "at"),
)


@dataclass(frozen=True, slots=True)
class Access:
    """What to log: one view or action, before it has its place in the chain."""

    username: str
    role: str
    action: str
    outcome: str
    at: datetime
    case_ref: str | None = None
    detail: Mapping[str, str] = field(default_factory=dict)
    client: str | None = None


@dataclass(frozen=True, slots=True)
class AccessEntry:
    """One entry of the chain: an `Access` with its sequence number and hashes."""

    sequence: int
    access: Access
    previous_hash: str
    hash: str

    def hashed_fields(self) -> dict[str, Any]:
        a = self.access
        return {
            "sequence": self.sequence,
            "at": _moment_text(a.at),
            "username": a.username,
            "role": a.role,
            "action": a.action,
            "case_ref": a.case_ref,
            "detail": dict(a.detail),
            "outcome": a.outcome,
            "client": a.client,
            "previous_hash": self.previous_hash,
        }

    def recomputed_hash(self) -> str:
        return digest_of(canonical_bytes(self.hashed_fields()))


def chained(access: Access, head: AccessEntry | None) -> AccessEntry:
    """The entry that follows `head` (or starts the log)."""
    unhashed = AccessEntry(
        sequence=head.sequence + 1 if head is not None else 1,
        access=replace(access, at=as_utc(access.at), detail=dict(access.detail)),
        previous_hash=head.hash if head is not None else GENESIS_HASH,
        hash="",
    )
    return replace(unhashed, hash=unhashed.recomputed_hash())


def first_broken(entries: Sequence[AccessEntry], *, after: AccessEntry | None = None) -> int | None:
    """The sequence of the first entry that breaks the chain, or None when it holds.

    Broken: its fields no longer give its hash, or it does not follow the one
    before (a number skipped or repeated, another previous hash).
    """
    expected = after.sequence + 1 if after is not None else 1
    previous = after.hash if after is not None else GENESIS_HASH
    for entry in entries:
        if (
            entry.sequence != expected
            or entry.previous_hash != previous
            or entry.recomputed_hash() != entry.hash
        ):
            return entry.sequence
        expected, previous = expected + 1, entry.hash
    return None


def _moment_text(moment: datetime) -> str:
    return as_utc(moment).isoformat(timespec="microseconds").replace("+00:00", "Z")


# --- the table -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AccessQuery:
    """A search of the log: by username, case and a range of days (all optional)."""

    username: str | None = None
    case_ref: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 200


@dataclass(frozen=True, slots=True)
class ChainCheck:
    """The outcome of verifying the whole chain."""

    entries: int
    broken_at: int | None

    @property
    def intact(self) -> bool:
        return self.broken_at is None


class AccessLog:
    """The access log on the store's database."""

    def __init__(self, store: SqlStore) -> None:
        self._store = store

    async def append(self, access: Access) -> AccessEntry:
        """Chain and keep one entry; retried when another writer took the sequence meanwhile."""
        for attempt in range(APPEND_ATTEMPTS):
            try:
                async with self._store.connection() as db:
                    head = await _head(db)
                    entry = chained(access, head)
                    await db.execute(access_log.insert().values(**_row(entry)))
            except exc.IntegrityError:
                if attempt == APPEND_ATTEMPTS - 1:
                    raise
            else:
                return entry
        raise TransientError("the access log is busy")  # pragma: no cover - loop returns or raises

    async def search(self, query: AccessQuery) -> list[AccessEntry]:
        """The matching entries, newest first."""
        statement = select(access_log).order_by(access_log.c.sequence.desc()).limit(query.limit)
        if query.username:
            statement = statement.where(access_log.c.username == query.username)
        if query.case_ref:
            statement = statement.where(access_log.c.case_ref == query.case_ref)
        if query.since is not None:
            statement = statement.where(access_log.c.at >= as_utc(query.since))
        if query.until is not None:
            statement = statement.where(access_log.c.at < as_utc(query.until))
        async with self._store.connection() as db:
            return [_entry(row) for row in await db.execute(statement)]

    async def verify(self) -> ChainCheck:
        """Walk the whole chain in order; where it first breaks, if it does."""
        count = 0
        last: AccessEntry | None = None
        while True:
            after = last.sequence if last is not None else 0
            async with self._store.connection() as db:
                rows = await db.execute(
                    select(access_log)
                    .where(access_log.c.sequence > after)
                    .order_by(access_log.c.sequence)
                    .limit(VERIFY_BATCH)
                )
                batch = [_entry(row) for row in rows]
            if not batch:
                return ChainCheck(count, None)
            broken = first_broken(batch, after=last)
            if broken is not None:
                return ChainCheck(count, broken)
            count += len(batch)
            last = batch[-1]


async def _head(db: AsyncConnection) -> AccessEntry | None:
    statement = select(access_log).order_by(access_log.c.sequence.desc()).limit(1)
    if db.dialect.name == "postgresql":
        statement = statement.with_for_update()
    row = (await db.execute(statement)).one_or_none()
    return _entry(row) if row is not None else None


def _row(entry: AccessEntry) -> dict[str, Any]:
    a = entry.access
    return {
        "sequence": entry.sequence,
        "at": a.at,
        "username": a.username,
        "role": a.role,
        "action": a.action,
        "case_ref": a.case_ref,
        "detail": json.dumps(dict(a.detail), sort_keys=True),
        "outcome": a.outcome,
        "client": a.client,
        "previous_hash": entry.previous_hash,
        "hash": entry.hash,
    }


def _entry(row: Any) -> AccessEntry:
    return AccessEntry(
        sequence=int(row.sequence),
        access=Access(
            username=row.username,
            role=row.role,
            action=row.action,
            outcome=row.outcome,
            at=row.at.astimezone(UTC),
            case_ref=row.case_ref,
            detail=json.loads(row.detail),
            client=row.client,
        ),
        previous_hash=row.previous_hash,
        hash=row.hash,
    )
