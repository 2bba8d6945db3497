"""The start page's reads: one page of the open handovers, their counts, and a change marker.

SQLAlchemy Core on the store's tables, on a connection of the store
(`SqlStore.connection()`), because the ports' `still_open()` loads every open
handover and the start page must stay fast with 100,000 of them: a page is
one indexed query with LIMIT/OFFSET, the counts one aggregate, and the
marker of the live updates a handful of index lookups.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import and_, case, func, select
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement

from adapters.dashboard.urgency import Cutoffs
from adapters.store.tables import escalations, ledger, messages, overdrachten
from gateway.domain.deadlines import DeadlineState
from gateway.domain.handover import OverdrachtState

OPEN_STATES = (
    OverdrachtState.NOTICE_SENT.value,
    OverdrachtState.DELIVERED.value,
    OverdrachtState.DEFERRED.value,
)

_deadline = func.coalesce(overdrachten.c.deferred_to, overdrachten.c.advised_term)


@dataclass(frozen=True, slots=True)
class OpenFilter:
    """The start page's filters (query parameters); None is any."""

    gemeente: str | None = None
    recipient: str | None = None
    moment: str | None = None
    state: str | None = None
    urgency: str | None = None  # ok | warning | overdue


@dataclass(frozen=True, slots=True)
class OpenRow:
    """One open handover as the start page lists it: ids, parties, state and dates."""

    id: str
    case_ref: str
    gemeente: str
    moment: str
    recipient: str
    state: str
    deadline: date
    deferred: bool
    opened_at: datetime | None


@dataclass(frozen=True, slots=True)
class OpenCounts:
    open: int
    warning: int
    overdue: int


def _conditions(filters: OpenFilter, cutoffs: Cutoffs) -> list[ColumnElement[bool]]:
    states = [filters.state] if filters.state in OPEN_STATES else list(OPEN_STATES)
    conditions: list[ColumnElement[bool]] = [overdrachten.c.state.in_(states)]
    if filters.gemeente:
        conditions.append(overdrachten.c.gemeente == filters.gemeente)
    if filters.recipient:
        conditions.append(overdrachten.c.recipient == filters.recipient)
    if filters.moment:
        conditions.append(overdrachten.c.moment == filters.moment)
    if filters.urgency == DeadlineState.OVERDUE:
        conditions.append(_deadline <= cutoffs.overdue_through)
    elif filters.urgency == DeadlineState.WARNING:
        conditions.append(
            and_(_deadline > cutoffs.overdue_through, _deadline <= cutoffs.warning_through)
        )
    elif filters.urgency == DeadlineState.OK:
        conditions.append(_deadline > cutoffs.warning_through)
    return conditions


async def open_page(
    db: AsyncConnection, filters: OpenFilter, cutoffs: Cutoffs, *, page: int, size: int
) -> list[OpenRow]:
    """The open handovers on page `page` (from 1), earliest deadline first."""
    statement = (
        select(
            overdrachten.c.id,
            overdrachten.c.case_ref,
            overdrachten.c.gemeente,
            overdrachten.c.moment,
            overdrachten.c.recipient,
            overdrachten.c.state,
            overdrachten.c.advised_term,
            overdrachten.c.deferred_to,
            overdrachten.c.opened_at,
        )
        .where(*_conditions(filters, cutoffs))
        .order_by(_deadline, overdrachten.c.id)
        .limit(size)
        .offset((max(page, 1) - 1) * size)
    )
    return [_row(row) for row in await db.execute(statement)]


async def open_counts(db: AsyncConnection, filters: OpenFilter, cutoffs: Cutoffs) -> OpenCounts:
    """How many handovers match, and how many of them warn and are overdue."""
    overdue = _deadline <= cutoffs.overdue_through
    warning = and_(_deadline > cutoffs.overdue_through, _deadline <= cutoffs.warning_through)
    row = (
        await db.execute(
            select(
                func.count(),
                func.coalesce(func.sum(case((warning, 1), else_=0)), 0),
                func.coalesce(func.sum(case((overdue, 1), else_=0)), 0),
            ).where(*_conditions(filters, cutoffs))
        )
    ).one()
    return OpenCounts(open=int(row[0]), warning=int(row[1]), overdue=int(row[2]))


async def change_marker(db: AsyncConnection) -> str:
    """A short text that changes whenever what the start page shows may have changed.

    The open handovers per state, and the newest message, ledger entry and
    escalation: a receipt, confirmation, deferral or withdrawal each add a
    message, and each moves a count or the ledger.
    """
    counts = await db.execute(
        select(overdrachten.c.state, func.count())
        .where(overdrachten.c.state.in_(OPEN_STATES))
        .group_by(overdrachten.c.state)
    )
    newest = (
        await db.execute(
            select(
                select(func.max(messages.c.seq)).scalar_subquery(),
                select(func.max(ledger.c.sequence)).scalar_subquery(),
                select(func.max(escalations.c.number)).scalar_subquery(),
            )
        )
    ).one()
    by_state = ",".join(
        f"{state}={count}" for state, count in sorted((str(r[0]), int(r[1])) for r in counts)
    )
    return f"{by_state};{newest[0] or 0};{newest[1] or 0};{newest[2] or 0}"


def _row(row: Any) -> OpenRow:
    deadline = row.deferred_to if row.deferred_to is not None else row.advised_term
    return OpenRow(
        id=row.id,
        case_ref=row.case_ref,
        gemeente=row.gemeente,
        moment=row.moment,
        recipient=row.recipient,
        state=row.state,
        deadline=deadline,
        deferred=row.deferred_to is not None,
        opened_at=row.opened_at,
    )


def page_count(total: int, size: int) -> int:
    return max(1, -(-total // size))


__all__: Sequence[str] = (
    "OPEN_STATES",
    "OpenCounts",
    "OpenFilter",
    "OpenRow",
    "change_marker",
    "open_counts",
    "open_page",
    "page_count",
)
