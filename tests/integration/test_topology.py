"""The broker's topology on a real RabbitMQ, checked through its management API; connecting."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from aio_pika.abc import AbstractChannel, AbstractRobustConnection

from adapters.amqp.connection import BrokerRefusedError, connect
from adapters.amqp.publisher import publish_in
from adapters.amqp.topology import (
    DEAD_QUEUE,
    IN_QUEUE,
    amqp_parties,
    declare_topology,
    inbox_queue,
)
from gateway.contract_files import load_contracts
from gateway.domain.errors import TransientError
from gateway.resources import data_dir
from tests.integration.amqp_support import (
    HOST,
    UNREACHABLE_PORT,
    amqp_url,
    api_get,
    dedicated_vhost,
    new_party,
    next_message,
    purge,
)

pytestmark = pytest.mark.integration

DELIVERY_LIMIT = 5
CONSUMED_QUEUE_ARGUMENTS = {
    "x-queue-type": "quorum",
    "x-dead-letter-exchange": "vtgw.dead",
    "x-dead-letter-strategy": "at-least-once",
    "x-overflow": "reject-publish",
    "x-delivery-limit": DELIVERY_LIMIT,
}
"""PROTOCOL.md's mapping, written out: what vtgw.in and every inbox must be declared with."""


@pytest.fixture(scope="module")
def vhost() -> Iterator[str]:
    with dedicated_vhost() as name:
        yield name


@pytest.fixture
async def connection(vhost: str) -> AsyncIterator[AbstractRobustConnection]:
    connection = await connect([amqp_url(vhost)], name="vtgw test_topology")
    yield connection
    await connection.close()


@pytest.fixture
async def channel(connection: AbstractRobustConnection) -> AbstractChannel:
    """A confirm channel on a declared topology whose shared queues are empty."""
    channel = await connection.channel()
    await declare_topology(channel, [new_party()], delivery_limit=DELIVERY_LIMIT)
    await purge(channel, IN_QUEUE, DEAD_QUEUE)
    return channel


def _queue(vhost: str, name: str) -> Any:
    return api_get("queues", vhost, name)


def _snapshot(vhost: str) -> dict[str, Any]:
    """Everything declared in the vhost, as the management API describes it."""
    queues = {
        q["name"]: (q["type"], q["durable"], q["auto_delete"], q["arguments"])
        for q in api_get("queues", vhost)
    }
    exchanges = {
        e["name"]: (e["type"], e["durable"], e["auto_delete"], e["internal"], e["arguments"])
        for e in api_get("exchanges", vhost)
        if e["name"] and not e["name"].startswith("amq.")
    }
    bindings = sorted(
        (b["source"], b["destination"], b["destination_type"], b["routing_key"])
        for b in api_get("bindings", vhost)
        if b["source"]  # the default exchange's implicit bindings
    )
    return {"queues": queues, "exchanges": exchanges, "bindings": bindings}


async def test_declaring_the_topology_twice_changes_nothing(vhost: str) -> None:
    """A second declaration of the same topology succeeds and leaves every entity as it was."""
    parties = [new_party(), new_party()]
    connection = await connect([amqp_url(vhost)], name="vtgw test_topology twice")
    try:
        await declare_topology(await connection.channel(), parties)
        first = _snapshot(vhost)
        await declare_topology(await connection.channel(), parties)
        assert _snapshot(vhost) == first
    finally:
        await connection.close()


async def test_the_in_queue_is_a_quorum_queue_that_dead_letters_at_least_once(
    vhost: str, channel: AbstractChannel
) -> None:
    """vtgw.in: durable quorum queue bound to the fanout vtgw.in, dead-lettering at least once."""
    queue = _queue(vhost, "vtgw.in")
    assert queue["type"] == "quorum"
    assert queue["durable"] is True
    assert queue["auto_delete"] is False
    assert queue["arguments"] == CONSUMED_QUEUE_ARGUMENTS
    bindings = api_get("bindings", vhost, "e", "vtgw.in", "q", "vtgw.in")
    assert [b["routing_key"] for b in bindings] == [""]


async def test_the_dead_letter_queue_is_a_quorum_queue_that_dead_letters_nowhere(
    vhost: str, channel: AbstractChannel
) -> None:
    """vtgw.dead: durable quorum queue bound to the fanout vtgw.dead, without a DLX of its own."""
    queue = _queue(vhost, "vtgw.dead")
    assert queue["type"] == "quorum"
    assert queue["durable"] is True
    assert queue["arguments"] == {"x-queue-type": "quorum"}
    bindings = api_get("bindings", vhost, "e", "vtgw.dead", "q", "vtgw.dead")
    assert [b["routing_key"] for b in bindings] == [""]


async def test_the_exchanges_are_durable_and_of_the_protocols_kinds(
    vhost: str, channel: AbstractChannel
) -> None:
    """vtgw.in and vtgw.dead are fanout, vtgw.out is direct; all durable, none internal."""
    for name, kind in (("vtgw.in", "fanout"), ("vtgw.out", "direct"), ("vtgw.dead", "fanout")):
        exchange = api_get("exchanges", vhost, name)
        assert (exchange["type"], exchange["durable"]) == (kind, True), name
        assert (exchange["auto_delete"], exchange["internal"]) == (False, False), name


async def test_every_amqp_party_of_the_region_gets_a_quorum_inbox_bound_by_its_party_id() -> None:
    """Each AMQP party of contracts/ has vtgw.out.<party>, bound by its id; no one else has."""
    parties = amqp_parties(load_contracts(data_dir("contracts")))
    assert parties, "the region's contracts name no AMQP party"
    with dedicated_vhost() as vhost:
        connection = await connect([amqp_url(vhost)], name="vtgw test_topology region")
        try:
            await declare_topology(await connection.channel(), parties)
        finally:
            await connection.close()
        inboxes = {q["name"] for q in api_get("queues", vhost)} - {"vtgw.in", "vtgw.dead"}
        assert inboxes == {f"vtgw.out.{party}" for party in parties}
        for party in parties:
            queue = _queue(vhost, f"vtgw.out.{party}")
            assert (queue["type"], queue["durable"]) == ("quorum", True), party
            assert queue["arguments"] == CONSUMED_QUEUE_ARGUMENTS, party
            bindings = api_get("bindings", vhost, "e", "vtgw.out", "q", f"vtgw.out.{party}")
            assert [b["routing_key"] for b in bindings] == [party]


async def test_a_queue_declared_with_another_delivery_limit_is_refused_by_the_broker(
    connection: AbstractRobustConnection, channel: AbstractChannel
) -> None:
    """Redeclaring with another x-delivery-limit is PRECONDITION_FAILED, not a silent change."""
    with pytest.raises(BrokerRefusedError) as refused:
        await declare_topology(await connection.channel(), [], delivery_limit=DELIVERY_LIMIT + 1)
    assert refused.value.reply_code == 406
    assert "x-delivery-limit" in refused.value.reply_text


async def test_a_party_id_that_is_no_party_id_gets_no_inbox(channel: AbstractChannel) -> None:
    """A name with dots or capitals is refused before anything is declared."""
    for bad in ("vtgw.in", "LT-Tiel", "", "lt-"):
        with pytest.raises(ValueError, match="not a party id"):
            inbox_queue(bad)
    with pytest.raises(ValueError, match="not a party id"):
        await declare_topology(channel, ["lt-tiel.extra"])


async def test_a_message_rejected_from_the_in_queue_is_dead_lettered(
    channel: AbstractChannel,
) -> None:
    """A delivery rejected without requeue moves to vtgw.dead, with x-death naming vtgw.in."""
    await publish_in(channel, b'{"n": 1}', message_id="m-rejected", type="t", user_id="guest")
    delivered = await next_message(channel, IN_QUEUE)
    await delivered.reject(requeue=False)

    dead = await next_message(channel, DEAD_QUEUE)
    assert (dead.body, dead.message_id) == (b'{"n": 1}', "m-rejected")
    deaths = dead.headers["x-death"]
    assert isinstance(deaths, list)
    assert isinstance(deaths[0], dict)
    assert (deaths[0]["reason"], deaths[0]["queue"]) == ("rejected", "vtgw.in")
    await dead.ack()


async def test_a_poison_message_is_dead_lettered_after_the_delivery_limit(
    channel: AbstractChannel,
) -> None:
    """A message returned again and again is delivered delivery_limit + 1 times, then dead."""
    await publish_in(channel, b"{}", message_id="m-poison", type="t", user_id="guest")
    deliveries = 0
    while deliveries <= 2 * DELIVERY_LIMIT:
        queue = await channel.get_queue(IN_QUEUE, ensure=False)
        delivered = await queue.get(fail=False)
        if delivered is None:
            break
        deliveries += 1
        await delivered.reject(requeue=True)

    dead = await next_message(channel, DEAD_QUEUE)
    assert deliveries == DELIVERY_LIMIT + 1
    assert dead.message_id == "m-poison"
    assert dead.headers["x-first-death-reason"] == "delivery_limit"
    await dead.ack()


async def test_connect_takes_the_next_node_when_one_is_down(vhost: str) -> None:
    """A node that refuses the connection is skipped for the next URL."""
    down = f"amqp://guest:guest@{HOST}:{UNREACHABLE_PORT}/"
    connection = await connect([down, amqp_url(vhost)], name="vtgw test_topology fallback")
    try:
        assert not connection.is_closed
    finally:
        await connection.close()


async def test_connect_to_no_reachable_node_is_a_transient_error_without_passwords() -> None:
    """When no node answers: TransientError naming each URL, the password left out."""
    urls = [f"amqp://guest:s3cret-pw@{HOST}:{UNREACHABLE_PORT}/", f"amqp://{HOST}:1/%2F"]
    with pytest.raises(TransientError) as failed:
        await connect(urls, name="vtgw test_topology down")
    assert "s3cret-pw" not in str(failed.value)
    assert str(failed.value).count(f"{HOST}:{UNREACHABLE_PORT}") == 2
    assert failed.value.__cause__ is not None
