"""The store on SQLAlchemy Core: SQLite by default, PostgreSQL when several instances share it.

One `transaction()` is one database transaction on one pooled connection:
committed when the block ends, rolled back when it raises. A database that is
away, busy or locked raises `TransientError`, at the start, inside and at the
commit (a commit that fails that way may or may not have happened: the inbox
makes the retry safe).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from sqlalchemy import exc
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from adapters.store.engine import create_engine, translated
from adapters.store.repositories import (
    SqlAlerts,
    SqlEscalations,
    SqlHandovers,
    SqlInbox,
    SqlLedger,
    SqlMessages,
    SqlOutbox,
    SqlRejections,
    SqlTimers,
    begin_ledger,
    end_ledger,
    link_appended,
)
from adapters.store.schema import migrate
from adapters.store.tracking import SqlMonitoringChecks, SqlRetentionLog
from gateway.service.ports import (
    Alerts,
    Escalations,
    Handovers,
    Inbox,
    LedgerRepository,
    MessageRepository,
    MonitoringChecks,
    Outbox,
    Rejections,
    RetentionLog,
    Timers,
    UnitOfWork,
)

__all__ = ["SqlStore", "SqlUnitOfWork", "migrate", "open_store"]


class SqlUnitOfWork:
    """The repositories on one transaction's connection."""

    def __init__(self, connection: AsyncConnection) -> None:
        self.messages: MessageRepository = SqlMessages(connection)
        self.inbox: Inbox = SqlInbox(connection)
        self.outbox: Outbox = SqlOutbox(connection)
        self.timers: Timers = SqlTimers(connection)
        self.alerts: Alerts = SqlAlerts(connection)
        self.rejections: Rejections = SqlRejections(connection)
        self.ledger: LedgerRepository = SqlLedger(connection)
        self.handovers: Handovers = SqlHandovers(connection)
        self.escalations: Escalations = SqlEscalations(connection)
        self.monitoring: MonitoringChecks = SqlMonitoringChecks(connection)
        self.retention: RetentionLog = SqlRetentionLog(connection)


class SqlStore:
    """The `Store` port on an async SQLAlchemy engine."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    @property
    def backend(self) -> str:
        """`sqlite` or `postgresql`."""
        return self._engine.dialect.name

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[UnitOfWork]:
        async with self.connection() as connection:
            yield SqlUnitOfWork(connection)

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[AsyncConnection]:
        """One transaction's connection, for an adapter whose own tables share the transaction
        with the gateway's repositories (the e-mail bridge): committed when the block ends,
        rolled back when it raises."""
        connection = await self._begin()
        begin_ledger(connection)
        try:
            yield connection
            await link_appended(connection)  # the ledger's new entries join the chain now
        except BaseException:
            # The error of the block is what the caller must hear; a failed rollback
            # (the connection is gone) rolls back on the server anyway.
            with contextlib.suppress(exc.SQLAlchemyError, OSError):
                await connection.rollback()
            raise
        else:
            with translated():
                await connection.commit()
        finally:
            end_ledger(connection)
            with contextlib.suppress(exc.SQLAlchemyError, OSError):
                await connection.close()

    async def _begin(self) -> AsyncConnection:
        with translated():
            connection = await self._engine.connect()
            try:
                await connection.begin()
            except BaseException:
                await connection.close()
                raise
        return connection

    async def close(self) -> None:
        await self._engine.dispose()


async def open_store(dsn: str) -> SqlStore:
    """The store at `dsn` (`sqlite+aiosqlite:///path` or `postgresql+asyncpg://...`).

    Connects lazily; the schema must be migrated (`adapters.store.migrate`).
    """
    return SqlStore(create_engine(dsn))
