"""The monitoring checks (§7.1) and the retention purge's audit (§5.1) in SQL."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from adapters.store.engine import translating
from adapters.store.tables import as_utc, monitoring_checks, retention_purges
from gateway.domain.monitoring import MonitoringCheck
from gateway.service.ports import Purged


class SqlMonitoringChecks:
    """One row per (overdracht, month)."""

    def __init__(self, connection: AsyncConnection) -> None:
        self._db = connection

    @translating
    async def save_many(self, checks: Sequence[MonitoringCheck]) -> None:
        rows = [_check_values(check) for check in checks if check.month is not None]
        if not rows:
            return
        insert = (
            postgresql.insert(monitoring_checks)
            if self._db.dialect.name == "postgresql"
            else sqlite.insert(monitoring_checks)
        )
        keys = {"overdracht_id", "month"}
        for row in rows:
            await self._db.execute(
                insert.values(**row).on_conflict_do_update(
                    index_elements=[monitoring_checks.c.overdracht_id, monitoring_checks.c.month],
                    set_={k: v for k, v in row.items() if k not in keys},
                )
            )

    @translating
    async def get(self, overdracht_id: str, month: int) -> MonitoringCheck | None:
        return await self._one(
            (monitoring_checks.c.overdracht_id == overdracht_id)
            & (monitoring_checks.c.month == month)
        )

    @translating
    async def by_request(self, request_id: str) -> MonitoringCheck | None:
        return await self._one(monitoring_checks.c.request_id == request_id)

    @translating
    async def of_overdracht(self, overdracht_id: str) -> Sequence[MonitoringCheck]:
        rows = await self._db.execute(
            select(monitoring_checks)
            .where(monitoring_checks.c.overdracht_id == overdracht_id)
            .order_by(monitoring_checks.c.month)
        )
        return [_check(row) for row in rows]

    @translating
    async def requested_between(self, start: datetime, end: datetime) -> Sequence[MonitoringCheck]:
        rows = await self._db.execute(
            select(monitoring_checks)
            .where(
                monitoring_checks.c.requested_at >= as_utc(start),
                monitoring_checks.c.requested_at < as_utc(end),
            )
            .order_by(monitoring_checks.c.requested_at, monitoring_checks.c.request_id)
        )
        return [_check(row) for row in rows]

    async def _one(self, condition: Any) -> MonitoringCheck | None:
        row = (await self._db.execute(select(monitoring_checks).where(condition))).one_or_none()
        return None if row is None else _check(row)


def _check_values(check: MonitoringCheck) -> dict[str, Any]:
    return {
        "overdracht_id": check.overdracht_id,
        "month": check.month,
        "case_ref": check.case_ref,
        "gemeente": check.gemeente,
        "recipient": check.recipient,
        "due_on": check.due_on,
        "request_id": check.request_id,
        "requested_at": check.requested_at,
        "answer_before": check.answer_before,
        "response_id": check.response_id,
        "answered_at": check.answered_at,
    }


def _check(row: Row[Any]) -> MonitoringCheck:
    return MonitoringCheck(
        overdracht_id=row.overdracht_id,
        case_ref=row.case_ref,
        gemeente=row.gemeente,
        recipient=row.recipient,
        due_on=row.due_on,
        month=row.month,
        request_id=row.request_id,
        requested_at=row.requested_at,
        answer_before=row.answer_before,
        response_id=row.response_id,
        answered_at=row.answered_at,
    )


class SqlRetentionLog:
    """Append-only: rows are inserted, never changed."""

    def __init__(self, connection: AsyncConnection) -> None:
        self._db = connection

    @translating
    async def add_many(self, purged: Sequence[Purged]) -> None:
        if not purged:
            return
        await self._db.execute(
            retention_purges.insert(),
            [
                {
                    "sender": p.sender,
                    "message_id": p.message_id,
                    "type": p.type,
                    "recipient": p.recipient,
                    "case_ref": p.case_ref,
                    "gemeente": p.gemeente,
                    "digest": p.digest,
                    "status": p.status,
                    "retained_until": p.retained_until,
                    "purged_at": p.purged_at,
                    "rule": p.rule,
                }
                for p in purged
            ],
        )

    @translating
    async def recent(self, limit: int) -> Sequence[Purged]:
        rows = await self._db.execute(
            select(retention_purges).order_by(retention_purges.c.id.desc()).limit(max(limit, 0))
        )
        return [
            Purged(
                sender=row.sender,
                message_id=row.message_id,
                type=row.type,
                recipient=row.recipient,
                case_ref=row.case_ref,
                gemeente=row.gemeente,
                digest=row.digest,
                status=row.status,
                retained_until=row.retained_until,
                purged_at=row.purged_at,
                rule=row.rule,
            )
            for row in rows
        ]
