"""What VT's case system and staff may read about a message: status and evidence.

A view names parties, types, times, digests and ids: the evidence of what
happened. It never carries a body; the case system has its own copy.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from gateway.domain.calendar import WorkingDayCalendar
from gateway.domain.case_terms import parse_subject
from gateway.domain.deadlines import CONFIRMATION, DeadlineState, deadline_state
from gateway.domain.envelope import format_timestamp
from gateway.service.ports import Store, StoredMessage


@dataclass(frozen=True, slots=True)
class MessageView:
    """A message, its status history, and the messages that answer it."""

    message: StoredMessage
    timeline: list[dict[str, Any]]
    answers: list[dict[str, Any]]

    def as_json(self) -> dict[str, Any]:
        m = self.message
        return {
            "id": m.id,
            "type": m.type,
            "sender": m.sender,
            "recipient": m.recipient,
            "thread": m.thread,
            "reply_to": m.reply_to,
            "case": {"ref": m.case_ref, "gemeente": m.gemeente} if m.case_ref else None,
            "direction": m.direction.value,
            "status": m.status.value,
            "final": self.timeline[-1]["final"] if self.timeline else False,
            "digest": m.digest,
            "sent_at": format_timestamp(m.sent_at),
            "attempts": m.attempts,
            "timeline": self.timeline,
            "answers": self.answers,
        }


async def message_view(store: Store, message_id: str, party: str) -> MessageView | None:
    """The hub's view of a message it sent or received, by id."""
    async with store.transaction() as uow:
        candidates = [
            m for m in await uow.messages.find(message_id) if party in (m.sender, m.recipient)
        ]
        if not candidates:
            return None
        message = candidates[0]
        history = await uow.messages.history(message.sender, message.id)
        replies = await uow.messages.replies_to(message.id)
    timeline = [
        {
            "status": change.status.value,
            "at": format_timestamp(change.at),
            "final": change.final,
            "evidence": dict(change.evidence),
        }
        for change in history
    ]
    answers = [
        {
            "id": reply.id,
            "type": reply.type,
            "sender": reply.sender,
            "status": reply.status.value,
            "sent_at": format_timestamp(reply.sent_at),
            **({"digest": _receipt_digest(reply)} if reply.type == "receipt" else {}),
        }
        for reply in replies
    ]
    return MessageView(message, timeline, answers)


def _receipt_digest(receipt: StoredMessage) -> str:
    """The digest a receipt acknowledges: proof of what exactly the recipient got."""
    body = json.loads(receipt.raw).get("body", {})
    return str(body.get("digest", ""))


async def case_view(
    store: Store, case_ref: str, at: datetime | None = None
) -> dict[str, Any] | None:
    """Who holds a case (now, or at `at`), its ledger entries and its overdrachten.

    None when the gateway has never seen the case.
    """
    async with store.transaction() as uow:
        entries = await uow.ledger.history(case_ref)
        overdrachten = await uow.handovers.of_case(case_ref)
        threads = {o.id: await uow.messages.in_thread(o.id) for o in overdrachten}
    if not entries:
        return None
    in_force = [e for e in entries if at is None or e.at <= at]
    current = in_force[-1] if in_force else None
    return {
        "case_ref": case_ref,
        "at": format_timestamp(at) if at is not None else None,
        "holder": current.holder if current else None,
        "regievoerder": current.regievoerder if current else None,
        "ledger": [
            {
                "sequence": e.sequence,
                "kind": e.kind.value,
                "by": e.by,
                "holder": e.holder,
                "regievoerder": e.regievoerder,
                "at": format_timestamp(e.at),
                "evidence": dict(e.evidence),
                "hash": e.hash,
            }
            for e in entries
        ],
        "overdrachten": [
            {
                "id": o.id,
                "moment": o.moment.value,
                "recipient": o.recipient,
                "state": o.state.value,
                "final": o.state.final,
                "deadline": o.deadline.isoformat(),
                "history": [
                    {"state": t.state.value, "at": format_timestamp(t.at)} for t in o.history
                ],
                "questions": _questions(threads[o.id]),
            }
            for o in overdrachten
        ],
    }


async def held_past_deadline(
    store: Store, calendar: WorkingDayCalendar, now: datetime, vt: str, *, limit: int = 100
) -> list[dict[str, Any]]:
    """The handovers VT still holds after the confirmation deadline passed (§8.5 C, D).

    A handover's deadline is its advised term, or the new date of a deferral,
    at 17:00 local (the next working day's when it is none): the rule
    `deadlines.CONFIRMATION`. Earliest deadline first, at most `limit` (read from the
    index of open deadlines: what is due by today, never all open handovers).
    """
    late = []
    async with store.transaction() as uow:
        for overdracht in await uow.handovers.open_due_through(
            calendar.local_day(now), limit=limit
        ):
            deadline = CONFIRMATION.deadline(overdracht.id, overdracht.deadline, calendar)
            if deadline_state(deadline, now) != DeadlineState.OVERDUE:
                continue
            last = await uow.ledger.last_of(overdracht.case_ref)
            if last is None or last.holder != vt:
                continue
            late.append((deadline.due, overdracht))
    return [
        {
            "case_ref": o.case_ref,
            "overdracht_id": o.id,
            "recipient": o.recipient,
            "moment": o.moment.value,
            "state": o.state.value,
            "due": format_timestamp(due),
        }
        for due, o in sorted(late, key=lambda pair: pair[0])
    ]


async def overdue_terms(store: Store) -> list[dict[str, Any]]:
    """VT's own terms for a case that ended before VT did what they ask, oldest first.

    Read from the open "overdue" alerts the term timers opened (`case_deadlines`):
    an alert closes when the deed is done, so what is open is still late.
    """
    async with store.transaction() as uow:
        alerts = await uow.alerts.open_alerts()
    found = []
    for alert in alerts:
        kind, _, subject = alert.key.partition(":")
        parsed = parse_subject(subject) if kind == "case_overdue" else None
        if parsed is not None:
            rule, case_ref = parsed
            found.append((alert.opened_at, case_ref, rule.name))
    return [
        {"case_ref": case_ref, "rule": rule, "overdue_since": format_timestamp(since)}
        for since, case_ref, rule in sorted(found)
    ]


def _questions(thread: Sequence[StoredMessage]) -> list[dict[str, Any]]:
    """The team's questions in a handover's thread (§8.4), and whether VT answered each."""
    answered = {m.reply_to for m in thread if m.type == "overdracht.answer"}
    return [
        {
            "id": m.id,
            "from": m.sender,
            "asked_at": format_timestamp(m.sent_at),
            "answered": m.id in answered,
        }
        for m in thread
        if m.type == "overdracht.question"
    ]
