"""The partner's agent: one running adapter beside the partner's own system.

It connects as the partner's broker user to the first node of its list that
answers, consumes the partner's inbox `vtgw.out.<party>`, and settles every
delivery here, in one place, from the inbox's typed outcome:

- ACK only after the message is handed over AND its receipt was confirmed by
  the broker (or, refused, after it is kept and the error confirmed);
- RETRY: wait `retry_delay`, then nack with requeue (the gateway's resend
  would bring the message again too).

The connection fails over (adapters/amqp/connection.py): when its node goes
away it reconnects to the next node of the list, round robin, and aio-pika
restores the consuming and publishing channels and the consumer there. The
deliveries in hand when it dropped can no longer be acked; the broker delivers
them again, and the ledger knows them (handed over once, the same receipt).

Beside the consumer it runs the answers endpoint (HTTP), the outbox folder
sweep and the resend of answers whose receipt is overdue. `stop()` (on
SIGTERM/SIGINT) stops consuming, finishes the deliveries in hand, then closes
everything; whatever was not acked returns to the queue.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from aio_pika.abc import (
    AbstractChannel,
    AbstractIncomingMessage,
    AbstractQueue,
    AbstractRobustConnection,
)
from aiohttp import web

from adapters.amqp.connection import BROKER_ERRORS, broker_error, connect
from adapters.amqp.partner.answers import AnswerSender, ResendPolicy
from adapters.amqp.partner.courier import AmqpCourier
from adapters.amqp.partner.endpoint import answers_app
from adapters.amqp.partner.handoff import FolderHandoff, Handoff, WebhookHandoff
from adapters.amqp.partner.inbox import PartnerInbox, Received, Settlement
from adapters.amqp.partner.ledger import PartnerLedger
from adapters.amqp.partner.messages import Partner
from adapters.amqp.partner.outbox import OutboxFolder
from adapters.amqp.partner.rejected import RejectedFolder
from adapters.amqp.partner.settings import AgentSettings, FolderTarget, HandoffTarget
from adapters.amqp.topology import inbox_queue
from gateway.domain.errors import GatewayError, TransientError

log = structlog.get_logger("vtgw.partner")

Clock = Callable[[], datetime]
MAX_CONNECT_BACKOFF = 30.0
BROKER_CLOSE_TIMEOUT = 5.0
"""Seconds a shutdown step on the broker may take (the broker may be away)."""


def utc_now() -> datetime:
    return datetime.now(UTC)


async def _bounded(operation: Awaitable[Any], doing: str) -> None:
    """A broker operation at shutdown: given up after a while, never raised."""
    try:
        await asyncio.wait_for(operation, BROKER_CLOSE_TIMEOUT)
    except TimeoutError:
        log.warning("shutdown_step_skipped", doing=doing, error="timed out")
    except BROKER_ERRORS as exc:
        log.warning("shutdown_step_skipped", doing=doing, error=repr(exc))


def handoff_for(target: HandoffTarget) -> Handoff:
    """The handoff a setting names: a folder or a webhook."""
    if isinstance(target, FolderTarget):
        return FolderHandoff(target.directory)
    return WebhookHandoff(target.url, timeout=target.timeout.total_seconds())


class PartnerAgent:
    """Runs the partner's side of the protocol. Use `async with` or `start()` / `stop()`."""

    def __init__(
        self,
        partner: Partner,
        settings: AgentSettings,
        *,
        clock: Clock = utc_now,
        handoff: Handoff | None = None,
    ) -> None:
        self.partner = partner
        self.settings = settings
        self._clock = clock
        self._handoff = handoff or handoff_for(settings.handoff)
        self._stopping = asyncio.Event()
        self._started = False
        self._in_hand: set[asyncio.Task[Any]] = set()
        self._loops: list[asyncio.Task[None]] = []
        self._failure: asyncio.Future[None] | None = None
        self._ledger: PartnerLedger | None = None
        self._connection: AbstractRobustConnection | None = None
        self._channel: AbstractChannel | None = None
        self._queue: AbstractQueue | None = None
        self._consumer_tag: str | None = None
        self._courier: AmqpCourier | None = None
        self._runner: web.AppRunner | None = None
        self.answers: AnswerSender | None = None
        self.inbox: PartnerInbox | None = None
        self.outbox: OutboxFolder | None = None
        self.listening: tuple[str, int] | None = None
        """The answers endpoint's address once started (the real port when 0 was asked)."""

    async def __aenter__(self) -> PartnerAgent:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # --- lifecycle ------------------------------------------------------------------

    async def start(self) -> None:
        """Open the ledger and folders, connect (retrying), consume, serve answers."""
        self._started = True
        self._failure = asyncio.get_running_loop().create_future()
        try:
            await self._start()
        except BaseException:
            await self.stop()
            raise
        log.info(
            "partner_started",
            party=self.partner.party,
            inbox=inbox_queue(self.partner.party),
            handoff=type(self._handoff).__name__,
            listen=None if self.listening is None else f"{self.listening[0]}:{self.listening[1]}",
            outbox=None if self.outbox is None else str(self.outbox.directory),
        )

    async def _start(self) -> None:
        settings, partner = self.settings, self.partner
        hub = partner.contracts.hub
        if not hub.keys:
            log.warning("hub_has_no_keys", hub=hub.party)  # every message would be KEY_NOT_VALID
        self._ledger = ledger = await PartnerLedger.open(settings.state_file)
        rejected = RejectedFolder(settings.rejected_folder)
        await rejected.start()
        await self._handoff.start()
        self._connection = await self._connect()
        self._courier = AmqpCourier(self._connection, partner.party)
        policy = ResendPolicy(
            receipt_timeout=settings.receipt_timeout or hub.receipt_timeout,
            attempt_limit=settings.attempt_limit or hub.attempt_limit,
            retry_after_failure=settings.retry_delay,
        )
        self.answers = AnswerSender(partner, ledger, self._courier, policy, self._clock)
        self.inbox = PartnerInbox(
            partner,
            ledger=ledger,
            handoff=self._handoff,
            courier=self._courier,
            rejected=rejected,
            answers=self.answers,
            clock=self._clock,
        )
        await self._consume(self._connection)
        if settings.listen is not None:
            await self._serve(self.answers, settings.listen)
        if settings.outbox_dir is not None:
            self.outbox = OutboxFolder(settings.outbox_dir, self.answers)
            await self.outbox.start()
            self._loop("outbox_sweep", self.outbox.sweep)
        self._loop("answer_resend", self.answers.resend_due)

    async def stop(self) -> None:
        """Stop consuming, finish the deliveries in hand, close everything. Idempotent."""
        if not self._started:
            return
        self._started = False
        self._stopping.set()
        if self._queue is not None and self._consumer_tag is not None:
            # Bounded: with the broker away, aio-pika would wait for the channel's return.
            await _bounded(self._queue.cancel(self._consumer_tag), "cancelling the consumer")
        self._consumer_tag = None
        if self._runner is not None:  # no new answers; those being posted are finished
            await self._runner.cleanup()
            self._runner = None
        in_hand = {t for t in self._in_hand if t is not asyncio.current_task()}
        if in_hand:
            await asyncio.wait(in_hand, timeout=self.settings.shutdown_grace.total_seconds())
        for task in self._loops:
            task.cancel()
        await asyncio.gather(*self._loops, return_exceptions=True)
        self._loops.clear()
        if self._courier is not None:
            await _bounded(self._courier.close(), "closing the publishing channel")
        if self._connection is not None:
            await _bounded(self._connection.close(), "closing the connection")
            self._connection = None
        await self._handoff.close()
        if self._ledger is not None:
            await self._ledger.close()
            self._ledger = None
        if self._failure is not None and not self._failure.done():
            self._failure.set_result(None)
        log.info("partner_stopped", party=self.partner.party)

    @property
    def ledger(self) -> PartnerLedger | None:
        """The partner's ledger of received messages and answers, while the agent runs."""
        return self._ledger

    async def wait(self) -> None:
        """Return when the agent stopped; raise what made one of its loops fail."""
        if self._failure is not None:
            await self._failure

    # --- the broker ---------------------------------------------------------------------

    async def _connect(self) -> AbstractRobustConnection:
        """The failover connection, retried with backoff while no node of the broker answers."""
        delay = 1.0
        name = f"vtgw-partner-{self.partner.party}"
        while True:
            try:
                return await connect(self.settings.amqp_urls, name=name)
            except TransientError as exc:
                log.warning("broker_unreachable", error=str(exc), retry_in=delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_CONNECT_BACKOFF)

    async def _consume(self, connection: AbstractRobustConnection) -> None:
        """Consume the inbox on a channel of its own (the courier publishes on another)."""
        name = inbox_queue(self.partner.party)
        try:
            self._channel = await connection.channel()
            await self._channel.set_qos(prefetch_count=self.settings.prefetch)
            # Passive: the partner's broker user may configure nothing, and the inbox exists.
            self._queue = await self._channel.get_queue(name, ensure=True)
            self._consumer_tag = await self._queue.consume(self._on_delivery, no_ack=False)
        except BROKER_ERRORS as exc:
            raise broker_error(exc, f"consuming the inbox {name}") from exc

    async def _on_delivery(self, message: AbstractIncomingMessage) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._in_hand.add(task)
        try:
            if self._stopping.is_set() or self.inbox is None:
                await self._settle(message, Received(Settlement.RETRY, "stopping"), pause=False)
                return
            try:
                received = await self.inbox.receive(message.body)
            except Exception:  # a bug or a failing disk: the delivery goes back, loudly
                log.exception("delivery_failed", amqp_message_id=message.message_id)
                received = Received(Settlement.RETRY, "failed")
            await self._settle(message, received, pause=True)
        finally:
            if task is not None:
                self._in_hand.discard(task)

    async def _settle(
        self, message: AbstractIncomingMessage, received: Received, *, pause: bool
    ) -> None:
        """The one place a delivery is acked or returned."""
        log.info(
            "message_settled",
            message_id=received.message_id,
            type=received.message_type,
            outcome=received.outcome,
            code=received.code,
            settlement=received.settlement.value,
            redelivered=message.redelivered,
        )
        try:
            if received.settlement is Settlement.ACK:
                await message.ack()
                return
            if pause:
                await self._pause(self.settings.retry_delay)
            await message.nack(requeue=True)
        except BROKER_ERRORS as exc:  # the channel is gone: the broker returns it by itself
            log.warning("settle_failed", message_id=received.message_id, error=str(exc))

    async def _pause(self, delay: timedelta) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), delay.total_seconds())

    # --- answers ------------------------------------------------------------------------

    async def _serve(self, answers: AnswerSender, listen: tuple[str, int]) -> None:
        self._runner = web.AppRunner(
            answers_app(answers),
            access_log=None,
            shutdown_timeout=self.settings.shutdown_grace.total_seconds(),
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, listen[0], listen[1])
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.listening = (str(host), int(port))

    def _loop(self, name: str, job: Callable[[], Awaitable[int]]) -> None:
        """Run `job` every tick until stopped; a transient failure is retried next tick."""

        async def every_tick() -> None:
            while not self._stopping.is_set():
                try:
                    await job()
                except GatewayError as exc:
                    log.warning(f"{name}_failed", error=str(exc))
                await self._pause(self.settings.tick)

        task = asyncio.create_task(every_tick(), name=f"vtgw-partner-{name}")
        task.add_done_callback(self._loop_ended)
        self._loops.append(task)

    def _loop_ended(self, task: asyncio.Task[None]) -> None:
        if task.cancelled() or self._failure is None or self._failure.done():
            return
        exc = task.exception()
        if exc is not None:
            log.error("loop_failed", loop=task.get_name(), error=repr(exc))
            self._failure.set_exception(exc)
