"""The partner's way to VT: publishing signed messages to `vtgw.in`, with confirms.

`Courier` is the port the rest of the partner package uses (unit tests use a
fake). `AmqpCourier` publishes with `publish_in`: persistent, `message_id` =
envelope id, `type` = envelope type, `user_id` = the partner's broker user,
which is its party id (RabbitMQ refuses any other). It holds its own channel
with publisher confirms, apart from the consuming channel, so that a channel
the broker closes on a publish never takes the deliveries in hand with it.
"""

from __future__ import annotations

import asyncio
from contextlib import suppress
from typing import Protocol

from aio_pika.abc import AbstractChannel, AbstractConnection

from adapters.amqp.connection import BROKER_ERRORS, broker_error
from adapters.amqp.publisher import DEFAULT_CONFIRM_TIMEOUT, publish_in


class Courier(Protocol):
    """Carries one signed message to VT; returns once the broker has confirmed it.

    Raises TransientError (retry later) or BrokerRefusedError (configuration).
    """

    async def send(self, raw: bytes, *, message_id: str, message_type: str) -> None: ...


class AmqpCourier:
    """Publishes to `vtgw.in` as the partner's broker user, on a channel of its own."""

    def __init__(
        self,
        connection: AbstractConnection,
        party: str,
        *,
        timeout: float = DEFAULT_CONFIRM_TIMEOUT,
    ) -> None:
        self._connection = connection
        self._party = party
        self._timeout = timeout
        self._channel: AbstractChannel | None = None
        self._opening = asyncio.Lock()

    async def send(self, raw: bytes, *, message_id: str, message_type: str) -> None:
        channel = await self._confirming_channel(message_id)
        try:
            await publish_in(
                channel,
                raw,
                message_id=message_id,
                type=message_type,
                user_id=self._party,
                timeout=self._timeout,
            )
        finally:
            if channel.is_closed:
                await self._discard(channel)

    async def close(self) -> None:
        async with self._opening:
            channel, self._channel = self._channel, None
        if channel is not None and not channel.is_closed:
            with suppress(*BROKER_ERRORS):
                await channel.close()

    async def _confirming_channel(self, message_id: str) -> AbstractChannel:
        async with self._opening:
            if self._channel is None or self._channel.is_closed:
                try:
                    self._channel = await self._connection.channel(
                        publisher_confirms=True, on_return_raises=True
                    )
                except BROKER_ERRORS as exc:
                    raise broker_error(exc, f"opening a channel to publish {message_id}") from exc
            return self._channel

    async def _discard(self, channel: AbstractChannel) -> None:
        """Forget a channel the broker closed; the next send opens a new one."""
        async with self._opening:
            if self._channel is channel:
                self._channel = None
        with suppress(*BROKER_ERRORS):
            await channel.close()
