"""The bridge's own tables and its transaction over them and the gateway's store.

Four tables (migration 0006), SQLAlchemy Core on the store's metadata:

- `email_mails`: every mail the bridge had accepted by its SMTP server, with
  its Message-ID (replies and bounces are matched by it), the confirmation
  code, the link's token id, and what became of the receipt the bridge records
  for the team.
- `email_tokens`: the links issued: until when, and when used (single use).
- `email_submissions`: the evidence of every answer made through the bridge:
  token id or replying address, time, client address, user agent, the name and
  role given, the message it made and the gateway's verdict.
- `email_inbound`: every mail that came in to the bridge's address and what
  was done with it; the unmatched ones are kept whole for VT.

`BridgeStore.transaction()` is one database transaction holding both the
gateway's unit of work (`work.core`, the same repositories as the gateway's
own store) and these tables (`work.mail`), so that a link used, the message it
made and the evidence are written together or not at all. It has its own
engine on the store's DSN; no transaction of it is ever opened inside one of
the gateway's store (SQLite has one writer).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Column,
    Index,
    LargeBinary,
    Row,
    String,
    Table,
    Text,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from adapters.email.tokens import LinkToken, Purpose
from adapters.store.engine import translating
from adapters.store.sql import SqlStore, SqlUnitOfWork
from adapters.store.tables import Ident, RowId, UtcDateTime, as_utc, metadata
from gateway.service.ports import UnitOfWork


class ReceiptState:
    """What the bridge does about the team's receipt of a mailed message."""

    PENDING = "pending"  # to record once the relay has marked the message sent
    RECORDED = "recorded"
    NONE = "none"  # a receipt or error (never answered), a reminder, or already final


email_mails = Table(
    "email_mails",
    metadata,
    Column("id", RowId, primary_key=True),
    Column("kind", String(16), nullable=False),  # message | reminder | reply
    Column("message_sender", Ident),
    Column("message_id", Ident),
    Column("message_type", String(64)),
    Column("party", Ident),
    Column("addresses", Text, nullable=False),  # JSON array of the RCPT TO addresses
    Column("smtp_message_id", String(300), nullable=False),
    Column("confirmation_code", String(16)),
    Column("token_id", String(64)),
    Column("about", String(64)),  # a reminder: the deadline it reminds of
    Column("accepted_at", UtcDateTime, nullable=False),
    Column("smtp_response", Text, nullable=False),
    Column("receipt_state", String(16), nullable=False),
    Column("receipt_id", Ident),
    Column("bounced_at", UtcDateTime),
    Column("bounce_status", String(32)),
    Index("uq_email_mails_smtp_message_id", "smtp_message_id", unique=True),
    Index("ix_email_mails_message_sender_message_id", "message_sender", "message_id"),
    Index("ix_email_mails_confirmation_code", "confirmation_code"),
    Index("ix_email_mails_receipt_state", "receipt_state"),
)

email_tokens = Table(
    "email_tokens",
    metadata,
    Column("token_id", String(64), primary_key=True),
    Column("message_sender", Ident, nullable=False),
    Column("message_id", Ident, nullable=False),
    Column("party", Ident, nullable=False),
    Column("purpose", String(16), nullable=False),
    Column("issued_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),
    Column("used_at", UtcDateTime),
    Index("ix_email_tokens_message_id", "message_id"),
)

email_submissions = Table(
    "email_submissions",
    metadata,
    Column("id", RowId, primary_key=True),
    Column("channel", String(16), nullable=False),  # link | reply
    Column("token_id", String(64)),
    Column("from_address", String(300)),
    Column("smtp_message_id", String(300)),
    Column("party", Ident, nullable=False),
    Column("answered_id", Ident, nullable=False),
    Column("answer_type", String(64), nullable=False),
    Column("answer_id", Ident, nullable=False),
    Column("outcome", String(64), nullable=False),  # accepted | refused:<CODE>
    Column("at", UtcDateTime, nullable=False),
    Column("client_address", String(100)),
    Column("user_agent", Text),
    Column("name", Text),
    Column("role", Text),
    Index("ix_email_submissions_answered_id", "answered_id"),
)

email_inbound = Table(
    "email_inbound",
    metadata,
    Column("id", RowId, primary_key=True),
    Column("received_at", UtcDateTime, nullable=False),
    Column("peer", String(100)),
    Column("mail_from", String(300), nullable=False),
    Column("rcpt_to", Text, nullable=False),  # JSON array
    Column("smtp_message_id", String(300)),
    Column("kind", String(32), nullable=False),  # reply | bounce | delay | other
    Column("outcome", String(64), nullable=False),
    Column("about_message_id", Ident),
    Column("raw", LargeBinary, nullable=False),
    Index("ix_email_inbound_received_at", "received_at"),
)


@dataclass(frozen=True, slots=True)
class MailRecord:
    """One mail the bridge's SMTP server accepted."""

    kind: str
    message_sender: str | None
    message_id: str | None
    message_type: str | None
    party: str | None
    addresses: tuple[str, ...]
    smtp_message_id: str
    confirmation_code: str | None
    token_id: str | None
    accepted_at: datetime
    smtp_response: str
    receipt_state: str
    about: str | None = None
    receipt_id: str | None = None
    bounced_at: datetime | None = None
    bounce_status: str | None = None
    row_id: int | None = None


@dataclass(frozen=True, slots=True)
class IssuedToken:
    token: LinkToken
    message_sender: str
    issued_at: datetime
    used_at: datetime | None


@dataclass(frozen=True, slots=True)
class Submission:
    """The evidence of one answer made through the bridge."""

    channel: str
    party: str
    answered_id: str
    answer_type: str
    answer_id: str
    outcome: str
    at: datetime
    token_id: str | None = None
    from_address: str | None = None
    smtp_message_id: str | None = None
    client_address: str | None = None
    user_agent: str | None = None
    name: str | None = None
    role: str | None = None


@dataclass(frozen=True, slots=True)
class InboundMail:
    """A mail to the bridge's address, and what the bridge did with it."""

    received_at: datetime
    peer: str | None
    mail_from: str
    rcpt_to: tuple[str, ...]
    smtp_message_id: str | None
    kind: str
    outcome: str
    raw: bytes
    about_message_id: str | None = None


class MailRecords:
    """The bridge's tables on one transaction's connection."""

    def __init__(self, connection: AsyncConnection) -> None:
        self._db = connection

    # --- mails -----------------------------------------------------------------

    @translating
    async def add_mail(self, mail: MailRecord) -> int:
        row_id = (
            await self._db.execute(
                email_mails.insert()
                .values(
                    kind=mail.kind,
                    message_sender=mail.message_sender,
                    message_id=mail.message_id,
                    message_type=mail.message_type,
                    party=mail.party,
                    addresses=json.dumps(list(mail.addresses)),
                    smtp_message_id=mail.smtp_message_id,
                    confirmation_code=mail.confirmation_code,
                    token_id=mail.token_id,
                    about=mail.about,
                    accepted_at=as_utc(mail.accepted_at),
                    smtp_response=mail.smtp_response,
                    receipt_state=mail.receipt_state,
                    receipt_id=mail.receipt_id,
                )
                .returning(email_mails.c.id)
            )
        ).scalar_one()
        return int(row_id)

    @translating
    async def mails_of(self, message_sender: str, message_id: str) -> Sequence[MailRecord]:
        return await self._mails(
            (email_mails.c.message_sender == message_sender)
            & (email_mails.c.message_id == message_id)
        )

    @translating
    async def mail_by_smtp_id(self, smtp_message_id: str) -> MailRecord | None:
        found = await self._mails(email_mails.c.smtp_message_id == smtp_message_id)
        return found[0] if found else None

    @translating
    async def mails_with_code(self, code: str) -> Sequence[MailRecord]:
        return await self._mails(email_mails.c.confirmation_code == code)

    @translating
    async def receipts_pending(self, limit: int = 100) -> Sequence[MailRecord]:
        """Mails whose receipt is still to be recorded, held for this transaction: another
        instance's round skips them (SKIP LOCKED), so each receipt is recorded once."""
        query = (
            select(email_mails)
            .where(email_mails.c.receipt_state == ReceiptState.PENDING)
            .order_by(email_mails.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True)  # nothing on SQLite: one writer
        )
        return [_mail(row) for row in await self._db.execute(query)]

    @translating
    async def reminded(self, message_id: str, about: str) -> bool:
        row = await self._db.scalar(
            select(email_mails.c.id).where(
                email_mails.c.kind == "reminder",
                email_mails.c.message_id == message_id,
                email_mails.c.about == about,
            )
        )
        return row is not None

    @translating
    async def set_receipt(self, row_id: int, state: str, receipt_id: str | None) -> None:
        await self._db.execute(
            update(email_mails)
            .where(email_mails.c.id == row_id)
            .values(receipt_state=state, receipt_id=receipt_id)
        )

    @translating
    async def mark_bounced(self, row_id: int, at: datetime, status: str) -> None:
        await self._db.execute(
            update(email_mails)
            .where(email_mails.c.id == row_id)
            .values(bounced_at=as_utc(at), bounce_status=status[:32])
        )

    async def _mails(self, condition: Any, limit: int | None = None) -> list[MailRecord]:
        query = select(email_mails).where(condition).order_by(email_mails.c.id)
        if limit is not None:
            query = query.limit(limit)
        return [_mail(row) for row in await self._db.execute(query)]

    # --- tokens ----------------------------------------------------------------

    @translating
    async def issue_token(self, token: LinkToken, message_sender: str, at: datetime) -> None:
        await self._db.execute(
            email_tokens.insert().values(
                token_id=token.token_id,
                message_sender=message_sender,
                message_id=token.message_id,
                party=token.party,
                purpose=token.purpose.value,
                issued_at=as_utc(at),
                expires_at=as_utc(token.expires_at),
            )
        )

    @translating
    async def token(self, token_id: str) -> IssuedToken | None:
        row = (
            await self._db.execute(select(email_tokens).where(email_tokens.c.token_id == token_id))
        ).one_or_none()
        if row is None:
            return None
        return IssuedToken(
            token=LinkToken(
                token_id=row.token_id,
                message_id=row.message_id,
                party=row.party,
                purpose=Purpose(row.purpose),
                expires_at=row.expires_at,
            ),
            message_sender=row.message_sender,
            issued_at=row.issued_at,
            used_at=row.used_at,
        )

    @translating
    async def use_token(self, token_id: str, at: datetime) -> bool:
        """Mark the token used; False when it was used already (or never issued).

        An UPDATE, so that on PostgreSQL a second use waits for the first's
        transaction and then finds the token used.
        """
        used = (
            await self._db.execute(
                update(email_tokens)
                .where(email_tokens.c.token_id == token_id, email_tokens.c.used_at.is_(None))
                .values(used_at=as_utc(at))
                .returning(email_tokens.c.token_id)
            )
        ).all()
        return bool(used)

    @translating
    async def release_token(self, token_id: str) -> None:
        """Undo `use_token` in the same transaction: the answer was refused, the link stays."""
        await self._db.execute(
            update(email_tokens).where(email_tokens.c.token_id == token_id).values(used_at=None)
        )

    # --- evidence --------------------------------------------------------------

    @translating
    async def add_submission(self, submission: Submission) -> None:
        s = submission
        await self._db.execute(
            email_submissions.insert().values(
                channel=s.channel,
                token_id=s.token_id,
                from_address=s.from_address,
                smtp_message_id=s.smtp_message_id,
                party=s.party,
                answered_id=s.answered_id,
                answer_type=s.answer_type,
                answer_id=s.answer_id,
                outcome=s.outcome[:64],
                at=as_utc(s.at),
                client_address=s.client_address,
                user_agent=s.user_agent,
                name=s.name,
                role=s.role,
            )
        )

    @translating
    async def submissions(self, answered_id: str) -> Sequence[Submission]:
        rows = await self._db.execute(
            select(email_submissions)
            .where(email_submissions.c.answered_id == answered_id)
            .order_by(email_submissions.c.id)
        )
        return [
            Submission(
                channel=r.channel,
                party=r.party,
                answered_id=r.answered_id,
                answer_type=r.answer_type,
                answer_id=r.answer_id,
                outcome=r.outcome,
                at=r.at,
                token_id=r.token_id,
                from_address=r.from_address,
                smtp_message_id=r.smtp_message_id,
                client_address=r.client_address,
                user_agent=r.user_agent,
                name=r.name,
                role=r.role,
            )
            for r in rows
        ]

    @translating
    async def add_inbound(self, mail: InboundMail) -> None:
        await self._db.execute(
            email_inbound.insert().values(
                received_at=as_utc(mail.received_at),
                peer=mail.peer,
                mail_from=mail.mail_from[:300],
                rcpt_to=json.dumps(list(mail.rcpt_to)),
                smtp_message_id=None
                if mail.smtp_message_id is None
                else mail.smtp_message_id[:300],
                kind=mail.kind,
                outcome=mail.outcome[:64],
                about_message_id=mail.about_message_id,
                raw=mail.raw,
            )
        )

    @translating
    async def inbound(self, limit: int = 100) -> Sequence[InboundMail]:
        rows = await self._db.execute(
            select(email_inbound).order_by(email_inbound.c.id.desc()).limit(limit)
        )
        return [
            InboundMail(
                received_at=r.received_at,
                peer=r.peer,
                mail_from=r.mail_from,
                rcpt_to=tuple(json.loads(r.rcpt_to)),
                smtp_message_id=r.smtp_message_id,
                kind=r.kind,
                outcome=r.outcome,
                raw=bytes(r.raw),
                about_message_id=r.about_message_id,
            )
            for r in rows
        ]


def _mail(row: Row[Any]) -> MailRecord:
    return MailRecord(
        kind=row.kind,
        message_sender=row.message_sender,
        message_id=row.message_id,
        message_type=row.message_type,
        party=row.party,
        addresses=tuple(json.loads(row.addresses)),
        smtp_message_id=row.smtp_message_id,
        confirmation_code=row.confirmation_code,
        token_id=row.token_id,
        accepted_at=row.accepted_at,
        smtp_response=row.smtp_response,
        receipt_state=row.receipt_state,
        about=row.about,
        receipt_id=row.receipt_id,
        bounced_at=row.bounced_at,
        bounce_status=row.bounce_status,
        row_id=row.id,
    )


@dataclass(frozen=True, slots=True)
class BridgeWork:
    """One transaction: the gateway's repositories and the bridge's tables."""

    core: UnitOfWork
    mail: MailRecords


class BridgeStore:
    """The bridge's transactions: the store's repositories and the bridge's tables together."""

    def __init__(self, store: SqlStore) -> None:
        self._sql = store  # the gateway's own store: one pool, shared transactions

    @property
    def sql(self) -> SqlStore:
        """The gateway's store that the bridge's transactions work on."""
        return self._sql

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[BridgeWork]:
        async with self._sql.connection() as connection:
            yield BridgeWork(SqlUnitOfWork(connection), MailRecords(connection))

    async def close(self) -> None:
        """Nothing of its own to close: the store is the gateway's, closed with it."""


def evidence_of(mail: MailRecord) -> Mapping[str, str]:
    """What a mail proves, as status evidence: accepted by SMTP, under this Message-ID."""
    return {
        "transport": "email",
        "smtp": "accepted",
        "smtp_response": mail.smtp_response[:200],
        "smtp_message_id": mail.smtp_message_id,
        "accepted_at": mail.accepted_at.isoformat(),
    }
