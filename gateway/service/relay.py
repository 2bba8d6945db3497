"""The outbox relay and the receipt timers: nothing sent is forgotten.

The relay publishes outbox rows with the broker's confirm and only then marks
them sent. A crash between the two publishes the row again after its lease:
harmless, since the recipient dedupes on (sender, id). Every message that
expects a receipt gets a timer; a timer that fires without a receipt sends
the same bytes again (same id, same sent_at), backing off, until the
recipient's attempt limit; then the message is undeliverable and one alert
opens for the recipient (it closes when the recipient is heard from again).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog

from gateway.domain.contracts import Contracts, Transport
from gateway.domain.delivery import (
    Status,
    StatusChange,
    TimerKind,
    expects_receipt,
    next_attempt_due,
    sent,
)
from gateway.domain.errors import TransientError
from gateway.service.ports import OutboxItem, Publisher, Store, Timer
from gateway.service.receiving import undeliverable_alert

log = structlog.get_logger("vtgw.relay")

RECEIPT_RULE = "receipt within the recipient's receipt_timeout (PROTOCOL.md, level 2)"


@dataclass(frozen=True, slots=True)
class Claim:
    """Who claims work, for how long, how much at once."""

    claimer: str
    lease: timedelta
    limit: int = 100


async def relay_once(
    store: Store,
    publishers: Mapping[Transport, Publisher],
    contracts: Contracts,
    claim: Claim,
    now: datetime,
) -> int:
    """Publish what the outbox holds; how many rows were published.

    Each row goes to the publisher of its recipient's transport. A row whose
    publish fails stays claimed until its lease ends and is tried again then;
    the others go on. A recipient whose transport has no publisher in this
    process keeps its rows in the outbox.
    """
    async with store.transaction() as uow:
        items = await uow.outbox.claim(
            limit=claim.limit, now=now, lease=claim.lease, claimer=claim.claimer
        )
    published: list[OutboxItem] = []
    failure: TransientError | None = None
    for item in items:
        recipient = contracts.get(item.recipient)
        publisher = publishers.get(recipient.transport) if recipient is not None else None
        if publisher is None:
            continue
        try:
            await publisher.publish(item)
        except TransientError as exc:
            failure = exc
            log.warning("publish_failed", message_id=item.message_id, recipient=item.recipient)
            continue
        published.append(item)
    if published:
        await _mark_sent(store, contracts, published, now)
    elif failure is not None:
        raise failure
    return len(published)


async def _mark_sent(
    store: Store, contracts: Contracts, items: list[OutboxItem], now: datetime
) -> None:
    async with store.transaction() as uow:
        await uow.outbox.published([item.outbox_id for item in items], now)
        for item in items:
            evidence = {
                "broker": "confirmed",
                "exchange": "vtgw.out",
                "routing_key": item.recipient,
            }
            await uow.messages.record(item.sender, item.message_id, sent(item.type, now, evidence))
            if not expects_receipt(item.type):
                continue
            attempt = await uow.messages.count_attempt(item.sender, item.message_id)
            recipient = contracts.get(item.recipient)
            if recipient is None:
                continue
            await uow.timers.schedule(
                Timer(
                    kind=TimerKind.RECEIPT,
                    subject_sender=item.sender,
                    subject_id=item.message_id,
                    due_at=next_attempt_due(now, recipient.receipt_timeout, attempt),
                    rule=RECEIPT_RULE,
                    attempt=attempt,
                )
            )


async def fire_due_timers(store: Store, contracts: Contracts, claim: Claim, now: datetime) -> int:
    """Resend or give up on messages whose receipt is overdue; how many timers fired."""
    async with store.transaction() as uow:
        timers = await uow.timers.claim_due(
            now=now, limit=claim.limit, lease=claim.lease, claimer=claim.claimer
        )
        for timer in timers:
            if timer.timer_id is not None:
                await uow.timers.done(timer.timer_id, now)
            message = await uow.messages.get(timer.subject_sender, timer.subject_id)
            if message is None or message.status is not Status.SENT:
                continue  # delivered, refused, or already given up: nothing to do
            recipient = contracts.get(message.recipient)
            limit = recipient.attempt_limit if recipient is not None else 1
            if message.attempts < limit:
                await uow.outbox.enqueue(message.sender, message.id, now)
                continue
            evidence = {"attempts": str(message.attempts), "rule": timer.rule}
            await uow.messages.record(
                message.sender, message.id, StatusChange(Status.UNDELIVERABLE, now, evidence)
            )
            await uow.alerts.open(
                undeliverable_alert(message.recipient),
                f"no receipt from {message.recipient} after {message.attempts} attempts",
                now,
            )
    return len(timers)
