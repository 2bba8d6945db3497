"""The start page's reads: one page of the open handovers, their counts, and a change marker.

SQLAlchemy Core on the store's tables, on a connection of the store
(`SqlStore.connection()`), because the ports' `still_open()` loads every open
handover and the start page must stay fast with 100,000 of them. Every read
goes by `overdrachten.open_deadline` (the deadline while open, NULL once
final) and its partial indexes (all, by municipality, by partner; migration
0009): a page walks the index in deadline order and stops after LIMIT (or
continues after a (deadline, id) key), the counts sum the filter's rows of
`open_handover_counts` (one per deadline day, kept by triggers; migration 0010),
and the marker of the live updates is a handful of index lookups.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement

from adapters.dashboard.urgency import Cutoffs
from adapters.store.tables import (
    COUNTED_ANY,
    alerts,
    escalations,
    ledger,
    message_status,
    messages,
    open_handover_counts,
    overdrachten,
)
from gateway.domain.deadlines import DeadlineState
from gateway.domain.handover import OverdrachtState

OPEN_STATES = (
    OverdrachtState.NOTICE_SENT.value,
    OverdrachtState.DELIVERED.value,
    OverdrachtState.DEFERRED.value,
)

_deadline = overdrachten.c.open_deadline  # coalesce(deferred_to, advised_term) while open


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
    conditions: list[ColumnElement[bool]] = [_deadline.is_not(None)]  # open: the indexes' rows
    if filters.state in OPEN_STATES:
        conditions.append(overdrachten.c.state == filters.state)
    if filters.gemeente:
        conditions.append(overdrachten.c.gemeente == filters.gemeente)
    if filters.recipient:
        conditions.append(overdrachten.c.recipient == filters.recipient)
    if filters.moment:
        conditions.append(overdrachten.c.moment == filters.moment)
    return conditions + _urgency(filters, cutoffs, _deadline)


def _urgency(filters: OpenFilter, cutoffs: Cutoffs, deadline: Any) -> list[ColumnElement[bool]]:
    if filters.urgency == DeadlineState.OVERDUE:
        return [deadline <= cutoffs.overdue_through]
    if filters.urgency == DeadlineState.WARNING:
        return [and_(deadline > cutoffs.overdue_through, deadline <= cutoffs.warning_through)]
    if filters.urgency == DeadlineState.OK:
        return [deadline > cutoffs.warning_through]
    return []


async def open_page(
    db: AsyncConnection,
    filters: OpenFilter,
    cutoffs: Cutoffs,
    *,
    page: int,
    size: int,
    after: tuple[date, str] | None = None,
    before: tuple[date, str] | None = None,
) -> list[OpenRow]:
    """The open handovers on page `page` (from 1), earliest deadline first.

    With `after` (the deadline and id of the last row shown) the page is the `size`
    rows that follow it, whatever `page` says; with `before` (the first row shown)
    the `size` rows before it. A keyset is as cheap on page 2,000 as on page 1,
    where an OFFSET reads and skips every row before the page.
    """
    conditions = _conditions(filters, cutoffs)
    if after is not None:
        day, last_id = after
        conditions.append(or_(_deadline > day, and_(_deadline == day, overdrachten.c.id > last_id)))
    if before is not None:
        day, first_id = before
        conditions.append(
            or_(_deadline < day, and_(_deadline == day, overdrachten.c.id < first_id))
        )
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
        .where(*conditions)
        .limit(size)
    )
    if before is not None:  # walk the index backwards from the key, then show in order
        backwards = statement.order_by(_deadline.desc(), overdrachten.c.id.desc())
        return [_row(row) for row in reversed((await db.execute(backwards)).all())]
    statement = statement.order_by(_deadline, overdrachten.c.id)
    if after is None:
        statement = statement.offset((max(page, 1) - 1) * size)
    return [_row(row) for row in await db.execute(statement)]


async def open_counts(db: AsyncConnection, filters: OpenFilter, cutoffs: Cutoffs) -> OpenCounts:
    """How many handovers match, and how many of them warn and are overdue.

    Summed from `open_handover_counts` (kept by triggers; migration 0010): the rows of
    the filter's one combination, a filter not set being `*`, one row per deadline
    day. The cost follows the number of deadline days, not of open handovers.
    """
    counted = open_handover_counts.c
    chosen = (filters.gemeente, filters.recipient, filters.moment, filters.state)
    if COUNTED_ANY in chosen:  # not a value of any handover: the page lists none either
        return OpenCounts(open=0, warning=0, overdue=0)
    day = counted.open_deadline
    overdue = day <= cutoffs.overdue_through
    warning = and_(day > cutoffs.overdue_through, day <= cutoffs.warning_through)
    combination = [
        counted.gemeente == (filters.gemeente or COUNTED_ANY),
        counted.recipient == (filters.recipient or COUNTED_ANY),
        counted.moment == (filters.moment or COUNTED_ANY),
        counted.state == (filters.state if filters.state in OPEN_STATES else COUNTED_ANY),
        *_urgency(filters, cutoffs, day),
    ]
    row = (
        await db.execute(
            select(
                func.coalesce(func.sum(counted.n), 0),
                func.coalesce(func.sum(case((warning, counted.n), else_=0)), 0),
                func.coalesce(func.sum(case((overdue, counted.n), else_=0)), 0),
            ).where(*combination)
        )
    ).one()
    return OpenCounts(open=int(row[0]), warning=int(row[1]), overdue=int(row[2]))


async def change_marker(db: AsyncConnection) -> str:
    """A short text that changes whenever what the start page shows may have changed.

    The newest message, status change of a message, ledger entry, escalation and
    alert: a new handover, a receipt, confirmation, deferral or withdrawal each add a
    message, an undeliverable notice a status change, a bounce an alert, and each
    moves the ledger or a state. Each is the maximum of a primary key: an index
    lookup, however many handovers are open (counting them per state read them all).
    """
    newest = (
        await db.execute(
            select(
                select(func.max(messages.c.seq)).scalar_subquery(),
                select(func.max(message_status.c.seq)).scalar_subquery(),
                select(func.max(ledger.c.sequence)).scalar_subquery(),
                select(func.max(escalations.c.number)).scalar_subquery(),
                select(func.max(alerts.c.id)).scalar_subquery(),
            )
        )
    ).one()
    return ";".join(str(value or 0) for value in newest)


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
