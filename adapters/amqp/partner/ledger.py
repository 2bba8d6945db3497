"""The partner's memory: what it received from VT, and the answers it sent.

A small SQLite file beside the partner's adapter (stdlib `sqlite3` behind
aiosqlite's own thread, so the loop never waits on the disk). It is what makes
the partner side idempotent (PROTOCOL.md, "Idempotency and replay") and its
answers reliable:

- `received`: every accepted message, by (sender, id), with its digest,
  thread, case and type, the signed receipt we answered it with (its id and
  exact bytes, so a repeat gets the same receipt again), and how far we got:
  handed over to the partner's system, receipt published.
- `answers`: every answer the partner's system gave us to send, with its exact
  signed bytes, its attempts and when the next one is due, and whether VT's
  receipt (or error) came. `source` remembers where an answer came from (an
  outbox file with its content hash, an HTTP Idempotency-Key), so that a file
  picked up twice after a crash, or a request sent twice, is one answer.

Every write is one statement, so it is atomic on its own; the file runs in WAL
mode with `synchronous=FULL`: once a call has returned, its effect survives a
power cut.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

import aiosqlite

from gateway.domain.envelope import CaseRef
from gateway.domain.errors import TransientError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS received (
    sender          TEXT NOT NULL,
    id              TEXT NOT NULL,
    type            TEXT NOT NULL,
    digest          TEXT NOT NULL,
    thread          TEXT NOT NULL,
    case_ref        TEXT,
    gemeente        TEXT,
    received_at     TEXT NOT NULL,
    handover        TEXT NOT NULL,
    handed_over_at  TEXT,
    receipt_id      TEXT,
    receipt_raw     BLOB,
    receipt_sent_at TEXT,
    PRIMARY KEY (sender, id)
);
CREATE TABLE IF NOT EXISTS answers (
    id              TEXT PRIMARY KEY,
    type            TEXT NOT NULL,
    reply_to        TEXT NOT NULL,
    thread          TEXT NOT NULL,
    digest          TEXT NOT NULL,
    raw             BLOB NOT NULL,
    sent_at         TEXT NOT NULL,
    status          TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    last_attempt_at TEXT,
    next_due_at     TEXT NOT NULL,
    outcome_id      TEXT,
    outcome_code    TEXT,
    source          TEXT UNIQUE,
    source_hash     TEXT
);
CREATE INDEX IF NOT EXISTS answers_due ON answers (status, next_due_at);
"""


class Handover(StrEnum):
    """Where a received message stands with the partner's own system."""

    PENDING = "pending"  # accepted, not yet handed over
    DONE = "done"  # the webhook answered 2xx, or the file is in place
    NOT_NEEDED = "not_needed"  # a receipt: the adapter's own business, nothing to hand over


class AnswerStatus(StrEnum):
    """An answer's way to VT: queued -> sent -> delivered | refused | undeliverable."""

    QUEUED = "queued"  # stored and signed, not yet confirmed by the broker
    SENT = "sent"  # the broker confirmed it; waiting for VT's receipt
    DELIVERED = "delivered"  # VT's receipt came, with the digest of what we sent
    REFUSED = "refused"  # VT answered with a signed error
    UNDELIVERABLE = "undeliverable"  # no receipt after the attempt limit

    @property
    def final(self) -> bool:
        return self not in (AnswerStatus.QUEUED, AnswerStatus.SENT)


@dataclass(frozen=True, slots=True)
class ReceivedMessage:
    """A message accepted from VT, and what we did about it."""

    sender: str
    id: str
    type: str
    digest: str
    thread: str
    case: CaseRef | None
    received_at: datetime
    handover: Handover
    receipt_id: str | None = None
    receipt_raw: bytes | None = None
    receipt_sent_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Answer:
    """An answer of the partner to VT: its exact signed bytes and its way there."""

    id: str
    type: str
    reply_to: str
    thread: str
    digest: str
    raw: bytes
    sent_at: datetime
    status: AnswerStatus
    next_due_at: datetime
    attempts: int = 0
    last_attempt_at: datetime | None = None
    outcome_id: str | None = None
    outcome_code: str | None = None
    source: str | None = None
    source_hash: str | None = None


class DuplicateSourceError(Exception):
    """An answer from this source was stored before (see `PartnerLedger.add_answer`)."""

    def __init__(self, existing: Answer) -> None:
        super().__init__(f"source {existing.source!r} was already sent as {existing.id}")
        self.existing = existing


class PartnerLedger:
    """The SQLite file of one partner adapter. Open with `await PartnerLedger.open(path)`."""

    def __init__(self, connection: aiosqlite.Connection, path: Path) -> None:
        self._db = connection
        self.path = path

    @classmethod
    async def open(cls, path: Path) -> PartnerLedger:
        """Open (and create, the first time) the ledger file."""
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            db = await aiosqlite.connect(path, isolation_level=None)
            db.row_factory = aiosqlite.Row
            await db.execute("PRAGMA journal_mode=WAL")
            await db.execute("PRAGMA synchronous=FULL")
            await db.execute("PRAGMA busy_timeout=5000")
            await db.executescript(_SCHEMA)
        except (OSError, aiosqlite.Error) as exc:
            raise TransientError(f"cannot open the partner ledger {path}: {exc}") from exc
        return cls(db, path)

    async def close(self) -> None:
        await self._db.close()

    # --- received ---------------------------------------------------------------

    async def received(self, sender: str, message_id: str) -> ReceivedMessage | None:
        """The accepted message with this id from this sender, or None."""
        row = await self._one(
            "SELECT * FROM received WHERE sender = ? AND id = ?", sender, message_id
        )
        return None if row is None else _received(row)

    async def received_by_id(self, message_id: str) -> ReceivedMessage | None:
        """The accepted message with this id (every message we receive is VT's)."""
        row = await self._one("SELECT * FROM received WHERE id = ? LIMIT 1", message_id)
        return None if row is None else _received(row)

    async def add_received(self, message: ReceivedMessage) -> ReceivedMessage:
        """Record a newly accepted message; when it is there already, the stored one."""
        await self._write(
            "INSERT INTO received (sender, id, type, digest, thread, case_ref, gemeente,"
            " received_at, handover, receipt_id, receipt_raw)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (sender, id) DO NOTHING",
            message.sender,
            message.id,
            message.type,
            message.digest,
            message.thread,
            message.case.ref if message.case else None,
            message.case.gemeente if message.case else None,
            _moment(message.received_at),
            message.handover.value,
            message.receipt_id,
            message.receipt_raw,
        )
        stored = await self.received(message.sender, message.id)
        if stored is None:  # just written, and nothing deletes: the file is not ours alone
            raise TransientError(f"partner ledger lost message {message.id} just written")
        return stored

    async def mark_handed_over(self, sender: str, message_id: str, at: datetime) -> None:
        await self._write(
            "UPDATE received SET handover = ?, handed_over_at = ? WHERE sender = ? AND id = ?",
            Handover.DONE.value,
            _moment(at),
            sender,
            message_id,
        )

    async def mark_receipt_sent(self, sender: str, message_id: str, at: datetime) -> None:
        """The broker confirmed our receipt (the first time; repeats keep that moment)."""
        await self._write(
            "UPDATE received SET receipt_sent_at = COALESCE(receipt_sent_at, ?)"
            " WHERE sender = ? AND id = ?",
            _moment(at),
            sender,
            message_id,
        )

    async def types_in_thread(self, thread: str) -> list[str]:
        """The types of the thread's messages: received from VT, and our answers not refused."""
        rows = await self._all(
            "SELECT type FROM received WHERE thread = ?"
            " UNION ALL SELECT type FROM answers WHERE thread = ? AND status != ?",
            thread,
            thread,
            AnswerStatus.REFUSED.value,
        )
        return [row["type"] for row in rows]

    # --- answers ----------------------------------------------------------------

    async def add_answer(self, answer: Answer) -> None:
        """Store a new answer; DuplicateSourceError when its source was stored before."""
        try:
            await self._db.execute(
                "INSERT INTO answers (id, type, reply_to, thread, digest, raw, sent_at, status,"
                " attempts, next_due_at, source, source_hash)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    answer.id,
                    answer.type,
                    answer.reply_to,
                    answer.thread,
                    answer.digest,
                    answer.raw,
                    _moment(answer.sent_at),
                    answer.status.value,
                    answer.attempts,
                    _moment(answer.next_due_at),
                    answer.source,
                    answer.source_hash,
                ),
            )
        except aiosqlite.IntegrityError as exc:
            existing = None if answer.source is None else await self.answer_from(answer.source)
            if existing is None:
                raise TransientError(f"cannot store answer {answer.id}: {exc}") from exc
            raise DuplicateSourceError(existing) from exc
        except aiosqlite.Error as exc:
            raise TransientError(f"cannot store answer {answer.id}: {exc}") from exc

    async def answer(self, answer_id: str) -> Answer | None:
        row = await self._one("SELECT * FROM answers WHERE id = ?", answer_id)
        return None if row is None else _answer(row)

    async def answer_from(self, source: str) -> Answer | None:
        row = await self._one("SELECT * FROM answers WHERE source = ?", source)
        return None if row is None else _answer(row)

    async def due_answers(self, now: datetime, limit: int = 100) -> list[Answer]:
        """Answers still on their way whose next attempt (or give-up) is due."""
        rows = await self._all(
            "SELECT * FROM answers WHERE status IN (?, ?) AND next_due_at <= ?"
            " ORDER BY next_due_at LIMIT ?",
            AnswerStatus.QUEUED.value,
            AnswerStatus.SENT.value,
            _moment(now),
            limit,
        )
        return [_answer(row) for row in rows]

    async def record_attempt(self, answer_id: str, at: datetime, next_due_at: datetime) -> None:
        """The broker confirmed one more send; a final status (a fast receipt) stays."""
        await self._write(
            "UPDATE answers SET attempts = attempts + 1, last_attempt_at = ?, next_due_at = ?,"
            " status = CASE WHEN status = ? THEN ? ELSE status END WHERE id = ?",
            _moment(at),
            _moment(next_due_at),
            AnswerStatus.QUEUED.value,
            AnswerStatus.SENT.value,
            answer_id,
        )

    async def postpone(self, answer_id: str, next_due_at: datetime) -> None:
        """A send failed before the broker confirmed it: try again at `next_due_at`."""
        await self._write(
            "UPDATE answers SET next_due_at = ? WHERE id = ?", _moment(next_due_at), answer_id
        )

    async def settle_answer(
        self,
        answer_id: str,
        status: AnswerStatus,
        *,
        outcome_id: str | None = None,
        outcome_code: str | None = None,
    ) -> bool:
        """Give an answer its final status; False when it had one already (or is unknown)."""
        cursor = await self._write(
            "UPDATE answers SET status = ?, outcome_id = ?, outcome_code = ?"
            " WHERE id = ? AND status IN (?, ?)",
            status.value,
            outcome_id,
            outcome_code,
            answer_id,
            AnswerStatus.QUEUED.value,
            AnswerStatus.SENT.value,
        )
        return cursor > 0

    # --- plumbing -----------------------------------------------------------------

    async def _one(self, sql: str, *params: Any) -> aiosqlite.Row | None:
        try:
            async with self._db.execute(sql, params) as cursor:
                return await cursor.fetchone()
        except aiosqlite.Error as exc:
            raise TransientError(f"partner ledger: {exc}") from exc

    async def _all(self, sql: str, *params: Any) -> list[aiosqlite.Row]:
        try:
            async with self._db.execute(sql, params) as cursor:
                return list(await cursor.fetchall())
        except aiosqlite.Error as exc:
            raise TransientError(f"partner ledger: {exc}") from exc

    async def _write(self, sql: str, *params: Any) -> int:
        try:
            async with self._db.execute(sql, params) as cursor:
                return cursor.rowcount
        except aiosqlite.Error as exc:
            raise TransientError(f"partner ledger: {exc}") from exc


_MOMENT = "%Y-%m-%dT%H:%M:%S.%fZ"


def _moment(moment: datetime) -> str:
    """Sortable text in UTC, microseconds kept (SQLite compares the text)."""
    return moment.astimezone(UTC).strftime(_MOMENT)


def _parse(text: str | None) -> datetime | None:
    if text is None:
        return None
    return datetime.strptime(text, _MOMENT).replace(tzinfo=UTC)


def _required(text: str) -> datetime:
    return datetime.strptime(text, _MOMENT).replace(tzinfo=UTC)


def _received(row: aiosqlite.Row) -> ReceivedMessage:
    case = CaseRef(row["case_ref"], row["gemeente"]) if row["case_ref"] is not None else None
    return ReceivedMessage(
        sender=row["sender"],
        id=row["id"],
        type=row["type"],
        digest=row["digest"],
        thread=row["thread"],
        case=case,
        received_at=_required(row["received_at"]),
        handover=Handover(row["handover"]),
        receipt_id=row["receipt_id"],
        receipt_raw=row["receipt_raw"],
        receipt_sent_at=_parse(row["receipt_sent_at"]),
    )


def _answer(row: aiosqlite.Row) -> Answer:
    return Answer(
        id=row["id"],
        type=row["type"],
        reply_to=row["reply_to"],
        thread=row["thread"],
        digest=row["digest"],
        raw=row["raw"],
        sent_at=_required(row["sent_at"]),
        status=AnswerStatus(row["status"]),
        next_due_at=_required(row["next_due_at"]),
        attempts=row["attempts"],
        last_attempt_at=_parse(row["last_attempt_at"]),
        outcome_id=row["outcome_id"],
        outcome_code=row["outcome_code"],
        source=row["source"],
        source_hash=row["source_hash"],
    )
