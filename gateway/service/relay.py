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

import asyncio
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
from gateway.service import responsibility, retention
from gateway.service.outgoing import Hub
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

    Each row goes to the publisher of its recipient's transport; the rows of
    a round are published together, their confirms awaited together. A row
    whose publish fails stays claimed until its lease ends and is tried
    again then; the others go on. A recipient whose transport has no publisher in this
    process keeps its rows in the outbox.
    """
    async with store.transaction() as uow:
        items = await uow.outbox.claim(
            limit=claim.limit, now=now, lease=claim.lease, claimer=claim.claimer
        )
    routed = [(item, _publisher_for(item, publishers, contracts)) for item in items]
    outcomes = await asyncio.gather(
        *(publisher.publish(item) for item, publisher in routed if publisher is not None),
        return_exceptions=True,
    )
    published: list[OutboxItem] = []
    failure: TransientError | None = None
    attempted = [item for item, publisher in routed if publisher is not None]
    for item, outcome in zip(attempted, outcomes, strict=True):
        if isinstance(outcome, TransientError):
            failure = outcome
            log.warning("publish_failed", message_id=item.message_id, recipient=item.recipient)
        elif isinstance(outcome, BaseException):
            raise outcome
        else:
            published.append(item)
    if published:
        await _mark_sent(store, contracts, published, now)
    elif failure is not None:
        raise failure
    return len(published)


def _publisher_for(
    item: OutboxItem, publishers: Mapping[Transport, Publisher], contracts: Contracts
) -> Publisher | None:
    recipient = contracts.get(item.recipient)
    return publishers.get(recipient.transport) if recipient is not None else None


async def _mark_sent(
    store: Store, contracts: Contracts, items: list[OutboxItem], now: datetime
) -> None:
    """SENT for each published row, with the broker's evidence; a receipt timer where due."""
    async with store.transaction() as uow:
        await uow.outbox.published([item.outbox_id for item in items], now)
        await uow.messages.record_many(
            [
                (item.sender, item.message_id, sent(item.type, now, _evidence(item, contracts)))
                for item in items
            ]
        )
        awaited = [
            (item, recipient)
            for item in items
            if expects_receipt(item.type) and (recipient := contracts.get(item.recipient))
        ]
        # The recipient may have answered before this commit (a fast partner, another
        # instance's consumer): a message whose receipt is in needs no receipt timer.
        current = await uow.messages.get_many([(i.sender, i.message_id) for i, _ in awaited])
        timers = []
        for item, recipient in awaited:
            attempt = await uow.messages.count_attempt(item.sender, item.message_id)
            stored = current.get((item.sender, item.message_id))
            if stored is not None and stored.status.final:
                continue
            timers.append(
                Timer(
                    kind=TimerKind.RECEIPT,
                    subject_sender=item.sender,
                    subject_id=item.message_id,
                    due_at=next_attempt_due(now, recipient.receipt_timeout, attempt),
                    rule=RECEIPT_RULE,
                    attempt=attempt,
                )
            )
        await uow.timers.schedule_many(timers)


def _evidence(item: OutboxItem, contracts: Contracts) -> dict[str, str]:
    """What the publisher's success proves: the broker's confirm, or the mail server's accept."""
    recipient = contracts.get(item.recipient)
    if recipient is not None and recipient.transport is Transport.EMAIL:
        return {"transport": "email", "smtp": "accepted", "mailed_to": item.recipient}
    return {"broker": "confirmed", "exchange": "vtgw.out", "routing_key": item.recipient}


async def fire_due_timers(store: Store, hub: Hub, claim: Claim, now: datetime) -> int:
    """Due timers: resend or give up on overdue receipts; warn of or record ended terms.

    How many timers fired.
    """
    async with store.transaction() as uow:
        timers = await uow.timers.claim_due(
            now=now, limit=claim.limit, lease=claim.lease, claimer=claim.claimer
        )
        # The handovers these timers are about (by their notice's id), their cases all held
        # at once in the store's one order, as a batch of deliveries holds its cases.
        await uow.handovers.hold_cases_of({timer.subject_id for timer in timers})
        for timer in timers:
            if timer.timer_id is not None:
                await uow.timers.done(timer.timer_id, now)
            if timer.kind is TimerKind.MONITORING_REQUEST:
                await responsibility.request_monitoring(uow, hub, timer, now)
                continue
            if timer.kind is TimerKind.RETENTION_PURGE:
                await retention.purge(uow, timer, now)
                continue
            if timer.kind is not TimerKind.RECEIPT:
                await responsibility.deadline_reached(uow, timer, now)
                continue
            message = await uow.messages.get(timer.subject_sender, timer.subject_id)
            if message is None or message.status is not Status.SENT:
                continue  # delivered, refused, or already given up: nothing to do
            recipient = hub.verifier.contracts.get(message.recipient)
            limit = recipient.attempt_limit if recipient is not None else 1
            if message.attempts < limit:
                await uow.outbox.enqueue(message.sender, message.id, now)
                continue
            evidence = {"attempts": str(message.attempts), "rule": timer.rule}
            await uow.messages.record(
                message.sender, message.id, StatusChange(Status.UNDELIVERABLE, now, evidence)
            )
            await responsibility.undeliverable(uow, message, now)
            await uow.alerts.open(
                undeliverable_alert(message.recipient),
                f"no receipt from {message.recipient} after {message.attempts} attempts",
                now,
            )
    return len(timers)
