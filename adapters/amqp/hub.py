"""The hub consumer: deliveries from `vtgw.in`, stored in groups, then acknowledged.

The messages in flight share one commit (a group commit): a batch closes
when it holds `batch_size` deliveries or `batch_wait` has passed since its
first. The ack decision lives here alone, from each delivery's `Handled`:
stored -> ack; refused -> the message goes to `vtgw.dead` with the reason in
its headers, then ack; the store unreachable -> nothing is acked, every
delivery of the batch is returned to the queue and tried again.

`observe`, when given, hears each delivery's `Handled` once its transaction
committed (the operations metrics count them); a failure there is logged and
changes nothing of the ack decision.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import datetime, timedelta

import structlog
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractQueue
from aio_pika.exceptions import AMQPError

from adapters.amqp.publisher import publish_dead_letter
from gateway.domain.errors import TransientError
from gateway.service.outgoing import Hub
from gateway.service.ports import Store
from gateway.service.receiving import Delivery, Disposition, Handled, receive_batch

log = structlog.get_logger("vtgw.hub")

Clock = Callable[[], datetime]

RETRY_FIRST_WAIT = 0.2  # seconds before the first retry of a batch the store refused
RETRY_LONGEST_WAIT = 10.0
BROKER_STEP_TIMEOUT = 5.0  # seconds a shutdown step may wait for the broker


class HubConsumer:
    """Consumes `vtgw.in` with group commits; one batch is stored at a time."""

    def __init__(
        self,
        channel: AbstractChannel,
        queue: AbstractQueue,
        store: Store,
        hub: Hub,
        clock: Clock,
        *,
        batch_size: int,
        batch_wait: timedelta,
        observe: Callable[[Handled], None] | None = None,
    ) -> None:
        self._channel = channel
        self._queue = queue
        self._store = store
        self._hub = hub
        self._clock = clock
        self._batch_size = batch_size
        self._batch_wait = batch_wait.total_seconds()
        self._pending: list[AbstractIncomingMessage] = []
        self._timer: asyncio.TimerHandle | None = None
        self._flushing = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()
        self._tag: str | None = None
        self._stopping = False
        self._observe = observe

    async def start(self) -> None:
        self._tag = await self._queue.consume(self._on_message, no_ack=False)

    async def stop(self) -> None:
        """Stop taking deliveries and finish the ones in hand (SIGTERM)."""
        self._stopping = True
        if self._tag is not None:
            # aio-pika waits for a cancel forever while the broker is away.
            with contextlib.suppress(TimeoutError, AMQPError, ConnectionError, RuntimeError):
                await asyncio.wait_for(self._queue.cancel(self._tag), BROKER_STEP_TIMEOUT)
            self._tag = None
        await self._flush()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        self._pending.append(message)
        if len(self._pending) >= self._batch_size:
            self._spawn_flush()
        elif self._timer is None:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(self._batch_wait, self._spawn_flush)

    def _spawn_flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        task = asyncio.create_task(self._flush())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _flush(self) -> None:
        async with self._flushing:
            batch, self._pending = self._pending, []
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            if batch:
                await self._store_batch(batch)

    async def _store_batch(self, batch: list[AbstractIncomingMessage]) -> None:
        """Store the batch, retrying in place while the store is away.

        The deliveries stay unacknowledged meanwhile (so a crash returns them
        to the queue) and are not requeued (which would count against the
        queue's delivery limit and send them to the dead letters unprocessed).
        """
        deliveries = [Delivery(m.body, m.user_id or "") for m in batch]
        wait = RETRY_FIRST_WAIT
        while True:
            try:
                async with self._store.transaction() as uow:
                    handled = await receive_batch(uow, self._hub, deliveries, self._clock())
                break
            except TransientError as exc:
                if self._stopping:
                    await self._return(batch)
                    return
                log.warning(
                    "store_unavailable", deliveries=len(batch), error=str(exc), retry_in=wait
                )
                await asyncio.sleep(wait)
                wait = min(wait * 2, RETRY_LONGEST_WAIT)
            except Exception:  # a defect, not the store: find the delivery that causes it
                log.exception("batch_failed", deliveries=len(batch))
                await self._one_by_one(batch)
                return
        self._report(handled)
        try:
            for message, outcome in zip(batch, handled, strict=True):
                await self._settle(message, outcome)
            # One ack for the whole batch: its deliveries are the oldest unacknowledged
            # ones on this channel (batches are stored one at a time, in order).
            await batch[-1].ack(multiple=True)
        except (AMQPError, ConnectionError, RuntimeError) as exc:
            # The channel went away after the commit: the broker delivers the
            # messages again and the inbox recognises them (same receipt again).
            log.warning("settle_lost", deliveries=len(batch), error=type(exc).__name__)

    async def _one_by_one(self, batch: list[AbstractIncomingMessage]) -> None:
        """Each delivery of a failed batch in a transaction of its own.

        The one that fails again is returned to the queue: the queue's delivery
        limit then sends it to the dead letters (a poison message), and the
        others are not held up by it.
        """
        for message in batch:
            delivery = Delivery(message.body, message.user_id or "")
            try:
                async with self._store.transaction() as uow:
                    (handled,) = await receive_batch(uow, self._hub, [delivery], self._clock())
            except Exception:
                log.exception("delivery_failed", message_id=message.message_id)
                with contextlib.suppress(AMQPError, ConnectionError, RuntimeError):
                    await message.nack(requeue=True)
                continue
            self._report([handled])
            try:
                await self._settle(message, handled)
                await message.ack()
            except (AMQPError, ConnectionError, RuntimeError) as exc:
                log.warning("settle_lost", message_id=handled.message_id, error=type(exc).__name__)

    def _report(self, handled: list[Handled]) -> None:
        """Tell `observe` what the committed deliveries came to."""
        if self._observe is None:
            return
        for outcome in handled:
            try:
                self._observe(outcome)
            except Exception:  # the metrics must never cost a delivery
                log.exception("observe_failed", message_id=outcome.message_id)

    async def _return(self, batch: list[AbstractIncomingMessage]) -> None:
        for message in batch:
            with contextlib.suppress(AMQPError, ConnectionError, RuntimeError):
                await message.nack(requeue=True)

    async def _settle(self, message: AbstractIncomingMessage, handled: Handled) -> None:
        """What a delivery's outcome asks of the broker once its batch is committed.

        A refused message is kept in `vtgw.dead` with the reason; the ack of the
        whole batch follows in `_store_batch`, the one place deliveries are acked.
        """
        if handled.disposition is Disposition.DEAD_LETTER and handled.rejection is not None:
            rejection = handled.rejection
            await publish_dead_letter(
                self._channel,
                message.body,
                {
                    "x-vtgw-code": rejection.code.value,
                    "x-vtgw-detail": rejection.detail,
                    "x-vtgw-pointer": rejection.pointer,
                    "x-vtgw-transport-identity": message.user_id or "",
                },
            )
            log.info(
                "message_rejected",
                message_id=handled.message_id,
                sender=handled.sender,
                code=rejection.code.value,
                pointer=rejection.pointer,
            )
        else:
            log.info(
                "message_received",
                message_id=handled.message_id,
                type=handled.message_type,
                sender=handled.sender,
                duplicate=handled.duplicate,
            )
