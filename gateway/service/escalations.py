"""Escalations (§8.6, annex 4): proposed by the gateway, followed up by VT staff.

An overdue confirmation proposes route a; staff record each route's outcome
(I solved, II not solved: the next route); every step is kept; a party with
repeated escalations within a period is flagged as a structural problem.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from gateway.domain.envelope import format_timestamp
from gateway.domain.errors import ErrorCode, PermanentError
from gateway.domain.escalation import (
    Escalation,
    EscalationReason,
    Outcome,
    propose,
    record_outcome,
    structural_problems,
)
from gateway.domain.handover import Overdracht
from gateway.service.ports import Store, UnitOfWork

STRUCTURAL_PERIOD = timedelta(days=365)  # annex 4 §5: escalations are reviewed yearly
STRUCTURAL_THRESHOLD = 3  # our default: three escalations with one party in a year


async def propose_for_overdue(uow: UnitOfWork, overdracht: Overdracht, at: datetime) -> int:
    """§8.5 C not kept: the gateway proposes route a for this handover's case and party."""
    escalation = propose(
        overdracht.case_ref, overdracht.recipient, EscalationReason.CONFIRMATION_OVERDUE, at
    )
    return await uow.escalations.add(escalation)


async def record(
    store: Store, number: int, outcome: Outcome, *, by: str, note: str, at: datetime
) -> dict[str, Any]:
    """A route's outcome as VT staff record it; INVALID_STATE once the escalation ended."""
    async with store.transaction() as uow:
        escalation = await uow.escalations.get(number)
        if escalation is None:
            raise PermanentError(ErrorCode.UNKNOWN_THREAD, "no escalation with this number", "")
        updated = record_outcome(escalation, outcome, by=by, at=at, note=note)
        await uow.escalations.save(number, updated)
    return view(number, updated)


async def overview(store: Store, now: datetime) -> dict[str, Any]:
    """The open escalations, and the parties whose escalations point at a structural problem."""
    async with store.transaction() as uow:
        still_open = await uow.escalations.still_open()
        recent = await uow.escalations.since(now - STRUCTURAL_PERIOD)
    structural = structural_problems(
        [e for _, e in recent], within=STRUCTURAL_PERIOD, threshold=STRUCTURAL_THRESHOLD, now=now
    )
    return {
        "at": format_timestamp(now),
        "open": [view(number, e) for number, e in still_open],
        "structural": structural,
    }


def view(number: int, escalation: Escalation) -> dict[str, Any]:
    return {
        "number": number,
        "case_ref": escalation.case_ref,
        "party": escalation.party,
        "reason": escalation.reason.value,
        "route": escalation.route.value,
        "state": escalation.state.value,
        "final": escalation.final,
        "opened_at": format_timestamp(escalation.opened_at),
        "history": [
            {
                "at": format_timestamp(step.at),
                "route": step.route.value,
                "by": step.by,
                "outcome": step.outcome.value if step.outcome else None,
                "note": step.note,
            }
            for step in escalation.history
        ],
    }
