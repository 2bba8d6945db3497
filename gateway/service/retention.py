"""The retention of overige zorgmeldingen (§5.1): kept as an advice for 2 years, then purged.

VT sets each forward's `bewaartermijn_tot`; the gateway keeps a timer for the
day after it. When it fires, the forward and the messages that answer it
(receipts, errors) are removed whole, and an audit row says what was
removed: ids, type, parties, digest, status, never content. Only final
messages are purged: a forward still waiting for its receipt is looked at
again a day later. The ledger keeps its entries (ids and parties only): a
hash chain cannot lose a link.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import date, datetime, time, timedelta
from typing import Any

from gateway.domain.calendar import WorkingDayCalendar
from gateway.domain.delivery import TimerKind
from gateway.service.ports import Purged, StoredMessage, Timer, UnitOfWork

RULE = (
    "retention: §5.1, an overige zorgmelding is recorded as an advice and kept for 2 years; "
    "purged the day after the forward's bewaartermijn_tot"
)
RETRY = timedelta(days=1)


async def vt_sends(
    uow: UnitOfWork, message: StoredMessage, body: Mapping[str, Any], calendar: WorkingDayCalendar
) -> None:
    """A forwarded zorgmelding: its purge is due the day after its retention ends."""
    if message.type != "zorgmelding.forward":
        return
    until = date.fromisoformat(str(body["bewaartermijn_tot"]))
    due = datetime.combine(until + timedelta(days=1), time(0, 0), calendar.time_zone)
    await uow.timers.schedule(
        Timer(TimerKind.RETENTION_PURGE, message.sender, message.id, due, RULE)
    )


async def purge(uow: UnitOfWork, timer: Timer, now: datetime) -> list[Purged]:
    """Remove the forward and its answers when all are final; what was removed."""
    forward = await uow.messages.get(timer.subject_sender, timer.subject_id)
    if forward is None:
        return []
    answers = await uow.messages.replies_to(forward.id)
    if not forward.status.final or any(not m.status.final for m in answers):
        await uow.timers.schedule(
            Timer(TimerKind.RETENTION_PURGE, forward.sender, forward.id, now + RETRY, timer.rule)
        )
        return []
    until = _retained_until(forward)
    removed = [_audit(m, until, now, timer.rule) for m in (forward, *answers)]
    await uow.messages.purge([(m.sender, m.id) for m in (forward, *answers)])
    await uow.retention.add_many(removed)
    return removed


def _retained_until(forward: StoredMessage) -> date:
    body: dict[str, Any] = json.loads(forward.raw)["body"]
    return date.fromisoformat(str(body["bewaartermijn_tot"]))


def _audit(message: StoredMessage, until: date, now: datetime, rule: str) -> Purged:
    return Purged(
        sender=message.sender,
        message_id=message.id,
        type=message.type,
        recipient=message.recipient,
        case_ref=message.case_ref,
        gemeente=message.gemeente,
        digest=message.digest,
        status=message.status.value,
        retained_until=until,
        purged_at=now,
        rule=rule,
    )
