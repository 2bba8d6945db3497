"""Publishing with confirms on a real RabbitMQ: the relay's publisher, dead letters, vtgw.in."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from aio_pika import DeliveryMode
from aio_pika.abc import AbstractChannel, AbstractRobustConnection
from aio_pika.exceptions import PublishError

from adapters.amqp.connection import BrokerRefusedError, connect
from adapters.amqp.publisher import (
    AmqpPublisher,
    dead_letter_headers,
    publish_dead_letter,
    publish_in,
)
from adapters.amqp.topology import DEAD_QUEUE, IN_QUEUE, declare_topology, inbox_queue
from gateway.domain.errors import TransientError
from gateway.service.ports import OutboxItem
from tests.integration.amqp_support import (
    amqp_url,
    dedicated_vhost,
    is_empty,
    new_party,
    next_message,
    purge,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def vhost() -> Iterator[str]:
    with dedicated_vhost() as name:
        yield name


@pytest.fixture
async def connection(vhost: str) -> AsyncIterator[AbstractRobustConnection]:
    connection = await connect([amqp_url(vhost)], name="vtgw test_publisher")
    yield connection
    await connection.close()


@pytest.fixture
async def parties(connection: AbstractRobustConnection) -> tuple[str, str]:
    """Two parties of this test with their inboxes; vtgw.in and vtgw.dead emptied."""
    pair = (new_party(), new_party())
    channel = await connection.channel()
    await declare_topology(channel, pair)
    await purge(channel, IN_QUEUE, DEAD_QUEUE)
    await channel.close()
    return pair


@pytest.fixture
async def channel(connection: AbstractRobustConnection) -> AbstractChannel:
    return await connection.channel(publisher_confirms=True)


def _item(recipient: str, message_id: str = "0b6b6f3e-5a43-4c0e-9a53-2d5f3d6f1a01") -> OutboxItem:
    return OutboxItem(
        outbox_id=1,
        sender="vt-gz",
        message_id=message_id,
        recipient=recipient,
        type="overdracht.notice",
        raw=b'{"type": "overdracht.notice"}',
    )


async def test_a_published_message_is_confirmed_and_lands_in_its_recipients_inbox(
    channel: AbstractChannel, parties: tuple[str, str]
) -> None:
    """Confirmed means queued: in vtgw.out.<recipient>, with the protocol's properties, only."""
    recipient, other = parties
    await AmqpPublisher(channel).publish(_item(recipient))

    delivered = await next_message(channel, inbox_queue(recipient), timeout=0.5)
    assert delivered.body == b'{"type": "overdracht.notice"}'
    assert delivered.message_id == "0b6b6f3e-5a43-4c0e-9a53-2d5f3d6f1a01"
    assert delivered.type == "overdracht.notice"
    assert delivered.content_type == "application/json"
    assert delivered.delivery_mode == DeliveryMode.PERSISTENT
    assert delivered.routing_key == recipient
    await delivered.ack()
    assert await is_empty(channel, inbox_queue(other))


async def test_a_message_for_a_recipient_without_an_inbox_is_a_transient_error(
    channel: AbstractChannel, parties: tuple[str, str]
) -> None:
    """No inbox bound for the recipient: returned, TransientError; the channel publishes on."""
    publisher = AmqpPublisher(channel)
    with pytest.raises(TransientError, match="unroutable"):
        await publisher.publish(_item(new_party()))

    await publisher.publish(_item(parties[0]))  # the same channel still publishes
    assert not await is_empty(channel, inbox_queue(parties[0]))


async def test_an_unroutable_message_is_a_transient_error_on_a_channel_that_raises_returns(
    connection: AbstractRobustConnection, parties: tuple[str, str]
) -> None:
    """With on_return_raises the return arrives as aio-pika's PublishError, translated the same."""
    channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
    with pytest.raises(TransientError, match="unroutable") as failed:
        await AmqpPublisher(channel).publish(_item(new_party()))
    assert isinstance(failed.value.__cause__, PublishError)


async def test_a_publish_the_broker_refuses_is_a_transient_error_with_the_refusal_as_cause(
    channel: AbstractChannel,
) -> None:
    """No vtgw.out in the vhost (404): TransientError, as the port says; the cause says why."""
    with dedicated_vhost() as empty:
        connection = await connect([amqp_url(empty)], name="vtgw test_publisher empty")
        try:
            publisher = AmqpPublisher(await connection.channel())
            with pytest.raises(TransientError) as failed:
                await publisher.publish(_item(new_party()))
        finally:
            await connection.close()
    refusal = failed.value.__cause__
    assert isinstance(refusal, BrokerRefusedError)
    assert refusal.reply_code == 404
    assert "vtgw.out" in refusal.reply_text


async def test_a_publisher_needs_a_channel_with_publisher_confirms(
    connection: AbstractRobustConnection,
) -> None:
    """Without confirms nothing proves the broker took the message: refused at once."""
    unconfirmed = await connection.channel(publisher_confirms=False)
    with pytest.raises(ValueError, match="publisher confirms"):
        AmqpPublisher(unconfirmed)
    with pytest.raises(ValueError, match="publisher confirms"):
        await publish_in(unconfirmed, b"{}", message_id="m", type="t", user_id="guest")


async def test_a_dead_letter_carries_the_rejection_in_its_headers(
    channel: AbstractChannel, parties: tuple[str, str]
) -> None:
    """vtgw.dead keeps the exact bytes, persistent, with code, detail, pointer and identity."""
    headers = dead_letter_headers(
        code="SCHEMA_INVALID",
        detail="body.moment is not one of A, B, C",
        pointer="/body/moment",
        transport_identity=parties[0],
    )
    await publish_dead_letter(channel, b"\x00not json", headers)

    dead = await next_message(channel, DEAD_QUEUE, timeout=0.5)
    assert dead.body == b"\x00not json"
    assert dead.delivery_mode == DeliveryMode.PERSISTENT
    reason = {name: value for name, value in dead.headers.items() if name.startswith("x-vtgw-")}
    assert reason == {
        "x-vtgw-code": "SCHEMA_INVALID",
        "x-vtgw-detail": "body.moment is not one of A, B, C",
        "x-vtgw-pointer": "/body/moment",
        "x-vtgw-transport-identity": parties[0],
    }
    await dead.ack()


async def test_a_dead_letter_without_its_reason_is_refused_before_publishing(
    channel: AbstractChannel, parties: tuple[str, str]
) -> None:
    """Every dead letter says why: a missing reason header is a ValueError and nothing is sent."""
    with pytest.raises(ValueError, match="x-vtgw-pointer"):
        await publish_dead_letter(
            channel, b"{}", {"x-vtgw-code": "MALFORMED", "x-vtgw-detail": "not JSON"}
        )
    assert await is_empty(channel, DEAD_QUEUE)


async def test_a_partners_publish_to_vtgw_in_has_the_protocols_properties(
    channel: AbstractChannel, parties: tuple[str, str]
) -> None:
    """publish_in: message_id, type, user_id, application/json, persistent; into vtgw.in."""
    await publish_in(
        channel,
        b'{"id": "7f1c"}',
        message_id="7f1c0d1e-1111-4c0e-9a53-2d5f3d6f1a02",
        type="overdracht.confirmation",
        user_id="guest",  # the user of this connection
    )
    delivered = await next_message(channel, IN_QUEUE, timeout=0.5)
    assert delivered.body == b'{"id": "7f1c"}'
    assert delivered.message_id == "7f1c0d1e-1111-4c0e-9a53-2d5f3d6f1a02"
    assert delivered.type == "overdracht.confirmation"
    assert delivered.user_id == "guest"
    assert delivered.content_type == "application/json"
    assert delivered.delivery_mode == DeliveryMode.PERSISTENT
    await delivered.ack()
