"""Publishing with publisher confirms: to a partner's inbox, to the dead letters, to `vtgw.in`.

Every publish here is persistent, `mandatory` and waits for the broker's
confirm, so "published" means the broker has the message in a queue:

- acked: done (status `sent`, PROTOCOL.md's first acknowledgement level);
- returned as unroutable (no queue bound for that routing key: a recipient
  without an inbox), nacked, timed out, connection lost: `TransientError`;
- the channel closed by the broker (access refused, no such exchange, a
  `user_id` that is not the connection's user): `BrokerRefusedError`, a
  `ConfigurationError`; retrying cannot help until the configuration changes.
  `AmqpPublisher` alone turns it into TransientError, as its port asks.

A message is matched to its return by its `message_id` (aiormq), so every
message published here has one.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Final

import aio_pika
from aio_pika import DeliveryMode
from aio_pika.abc import AbstractChannel
from aiormq import spec
from aiormq.abc import DeliveredMessage

from adapters.amqp.connection import BROKER_ERRORS, BrokerRefusedError, broker_error
from adapters.amqp.topology import DEAD_EXCHANGE, IN_EXCHANGE, OUT_EXCHANGE
from gateway.domain.errors import TransientError
from gateway.service.ports import OutboxItem

JSON: Final = "application/json"
"""The content type of every envelope (PROTOCOL.md: one JSON object, UTF-8)."""

DEFAULT_CONFIRM_TIMEOUT: Final = 30.0
"""Seconds to wait for the broker's confirm of one message."""

CODE_HEADER: Final = "x-vtgw-code"
DETAIL_HEADER: Final = "x-vtgw-detail"
POINTER_HEADER: Final = "x-vtgw-pointer"
TRANSPORT_IDENTITY_HEADER: Final = "x-vtgw-transport-identity"
DEAD_LETTER_HEADERS: Final = (
    CODE_HEADER,
    DETAIL_HEADER,
    POINTER_HEADER,
    TRANSPORT_IDENTITY_HEADER,
)
"""The headers every dead letter carries: why it was refused, and who sent it."""


class AmqpPublisher:
    """The outbox relay's `Publisher`: each message to `vtgw.out`, routed by its recipient.

    `channel` must have publisher confirms on; the caller owns it (a robust
    channel reopens itself after the broker closed it). Every failure raises
    TransientError, as the port says, the broker's refusals included (their
    BrokerRefusedError is the cause): the relay then keeps what it already
    published in this round as sent, and tries the rest again later. A
    recipient without an inbox (nothing bound to `vtgw.out` with that party
    id) makes the broker return the message: TransientError.
    """

    def __init__(
        self, channel: AbstractChannel, *, timeout: float = DEFAULT_CONFIRM_TIMEOUT
    ) -> None:
        if not channel.publisher_confirms:
            raise ValueError("AmqpPublisher needs a channel with publisher confirms on")
        self._channel = channel
        self._timeout = timeout

    async def publish(self, item: OutboxItem) -> None:
        """Publish and wait for the broker's confirm; raise TransientError when it fails."""
        doing = f"publishing {item.type} {item.message_id} to {OUT_EXCHANGE} for {item.recipient}"
        message = aio_pika.Message(
            item.raw,
            message_id=item.message_id,
            type=item.type,
            content_type=JSON,
            delivery_mode=DeliveryMode.PERSISTENT,
        )
        try:
            await _publish_confirmed(
                self._channel,
                message,
                exchange_name=OUT_EXCHANGE,
                routing_key=item.recipient,
                doing=doing,
                timeout=self._timeout,
            )
        except BrokerRefusedError as exc:
            raise TransientError(str(exc)) from exc


def dead_letter_headers(
    *, code: str, detail: str, pointer: str, transport_identity: str
) -> dict[str, str]:
    """The headers of a dead letter: the rejection (code, detail, pointer) and who sent it.

    `transport_identity` is what the transport authenticated (the AMQP
    `user_id`, or empty when there was none).
    """
    return {
        CODE_HEADER: code,
        DETAIL_HEADER: detail,
        POINTER_HEADER: pointer,
        TRANSPORT_IDENTITY_HEADER: transport_identity,
    }


async def publish_dead_letter(
    channel: AbstractChannel,
    raw: bytes,
    headers: Mapping[str, str],
    *,
    timeout: float = DEFAULT_CONFIRM_TIMEOUT,
) -> None:
    """Keep a refused message in `vtgw.dead`, exactly its bytes, with why in its headers.

    `headers` must hold the four `DEAD_LETTER_HEADERS` (see
    `dead_letter_headers`) and may hold more. `channel` must have publisher
    confirms on. Waits for the confirm.
    """
    missing = [name for name in DEAD_LETTER_HEADERS if name not in headers]
    if missing:
        raise ValueError(f"a dead letter needs the headers {', '.join(missing)}")
    message = aio_pika.Message(
        raw,
        headers=dict(headers),
        content_type="application/octet-stream",  # may be anything: it was refused
        delivery_mode=DeliveryMode.PERSISTENT,
        timestamp=datetime.now(UTC),
    )
    doing = f"dead-lettering a {headers[CODE_HEADER]} message to {DEAD_EXCHANGE}"
    await _publish_confirmed(
        channel, message, exchange_name=DEAD_EXCHANGE, routing_key="", doing=doing, timeout=timeout
    )


async def publish_in(
    channel: AbstractChannel,
    raw: bytes,
    *,
    message_id: str,
    type: str,
    user_id: str,
    timeout: float = DEFAULT_CONFIRM_TIMEOUT,
) -> None:
    """A partner's publish to `vtgw.in`, with the properties PROTOCOL.md asks for.

    `message_id` is the envelope id, `type` the envelope type (named as the
    AMQP property), `user_id` the partner's broker user (its party id):
    RabbitMQ refuses a `user_id` that is not the connection's user by closing
    the channel (PRECONDITION_FAILED), which raises BrokerRefusedError.
    `channel` must have publisher confirms on.
    """
    message = aio_pika.Message(
        raw,
        message_id=message_id,
        type=type,
        user_id=user_id,
        content_type=JSON,
        delivery_mode=DeliveryMode.PERSISTENT,
    )
    doing = f"publishing {type} {message_id} to {IN_EXCHANGE} as {user_id}"
    await _publish_confirmed(
        channel, message, exchange_name=IN_EXCHANGE, routing_key="", doing=doing, timeout=timeout
    )


async def _publish_confirmed(
    channel: AbstractChannel,
    message: aio_pika.Message,
    *,
    exchange_name: str,
    routing_key: str,
    doing: str,
    timeout: float,
) -> None:
    """Publish `mandatory` and wait for the confirm; anything but an ack raises."""
    if not channel.publisher_confirms:
        raise ValueError(f"{doing}: the channel has no publisher confirms; open it with them on")
    try:
        exchange = await channel.get_exchange(exchange_name, ensure=False)
        result = await exchange.publish(message, routing_key, mandatory=True, timeout=timeout)
    except BROKER_ERRORS as exc:
        raise broker_error(exc, doing) from exc
    if isinstance(result, DeliveredMessage):  # returned, on a channel without on_return_raises
        raise TransientError(f"{doing}: the broker returned the message as unroutable")
    if not isinstance(result, spec.Basic.Ack):
        raise TransientError(f"{doing}: the broker did not confirm the message ({result!r})")
