"""The broker's exchanges and queues (PROTOCOL.md, "AMQP mapping (RabbitMQ)").

```
partner --publish--> vtgw.in (fanout) --> vtgw.in (quorum queue) --> gateway
gateway --publish--> vtgw.out (direct) --<party id>--> vtgw.out.<party id> (quorum) --> partner
vtgw.in and every inbox dead-letter to vtgw.dead (fanout) --> vtgw.dead (quorum)
```

Every queue is a quorum queue. The queues that consumers take messages from
(`vtgw.in` and the inboxes) dead-letter a rejected message, and a message
delivered more than `delivery_limit` times (a poison message), to `vtgw.dead`
with the `at-least-once` strategy: the broker keeps the message in the source
queue until `vtgw.dead` has confirmed it, so a dead letter is never lost on the
way. RabbitMQ takes `at-least-once` only together with `x-overflow =
reject-publish`; with any other overflow it falls back to `at-most-once` and
only logs a warning (rabbit_quorum_queue:dlh/5), so both are always declared
together here. `vtgw.dead` itself dead-letters nowhere: no loop.

`declare_topology` is idempotent: declaring the same topology again changes
nothing. Declaring a queue that exists with other arguments (another delivery
limit, say) is refused by the broker (PRECONDITION_FAILED): such a change needs
a policy or a new queue, not a redeclaration.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Final

from aio_pika import ExchangeType
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractQueue

from adapters.amqp.connection import BROKER_ERRORS, broker_error
from gateway.domain.contracts import Contracts, Transport

IN_EXCHANGE: Final = "vtgw.in"
IN_QUEUE: Final = "vtgw.in"
OUT_EXCHANGE: Final = "vtgw.out"
DEAD_EXCHANGE: Final = "vtgw.dead"
DEAD_QUEUE: Final = "vtgw.dead"
INBOX_PREFIX: Final = "vtgw.out."

DEFAULT_DELIVERY_LIMIT: Final = 5
"""Deliveries after the first before a message counts as poison and is dead-lettered."""

PARTY_ID: Final = re.compile(r"[a-z][a-z0-9]*(?:-[a-z0-9]+)*")
"""A party id as schemas/contract.schema.json allows it (`$defs/party_id`)."""

QUORUM: Final[Mapping[str, str]] = {"x-queue-type": "quorum"}


def inbox_queue(party: str) -> str:
    """The inbox queue of a party: `vtgw.out.<party id>`."""
    if len(party) > 64 or PARTY_ID.fullmatch(party) is None:
        raise ValueError(f"{party!r} is not a party id (lowercase words joined by -)")
    return INBOX_PREFIX + party


def amqp_parties(contracts: Contracts) -> tuple[str, ...]:
    """The parties reached over AMQP, each with an inbox and a broker user, by party id."""
    return tuple(c.party for c in contracts if c.transport is Transport.AMQP)


def consumed_queue_arguments(delivery_limit: int = DEFAULT_DELIVERY_LIMIT) -> dict[str, str | int]:
    """The arguments of `vtgw.in` and of every inbox: quorum, dead-lettering at least once."""
    if delivery_limit < 1:
        raise ValueError(f"delivery limit must be at least 1, not {delivery_limit}")
    return {
        **QUORUM,
        "x-dead-letter-exchange": DEAD_EXCHANGE,
        "x-dead-letter-strategy": "at-least-once",
        "x-overflow": "reject-publish",
        "x-delivery-limit": delivery_limit,
    }


async def declare_topology(
    channel: AbstractChannel,
    parties: Iterable[str],
    *,
    delivery_limit: int = DEFAULT_DELIVERY_LIMIT,
) -> None:
    """Declare the exchanges, queues and bindings of the protocol, with an inbox per party.

    `parties` are the parties reached over AMQP (`amqp_parties`). Idempotent.
    The broker's refusal (403, 406) raises BrokerRefusedError, a lost
    connection TransientError.
    """
    arguments = consumed_queue_arguments(delivery_limit)
    inboxes = {party: inbox_queue(party) for party in sorted(set(parties))}

    # The dead-letter target first, so that nothing can dead-letter into the void.
    dead = await _exchange(channel, DEAD_EXCHANGE, ExchangeType.FANOUT)
    await _bind(await _queue(channel, DEAD_QUEUE, dict(QUORUM)), dead, "")

    incoming = await _exchange(channel, IN_EXCHANGE, ExchangeType.FANOUT)
    await _bind(await _queue(channel, IN_QUEUE, arguments), incoming, "")

    outgoing = await _exchange(channel, OUT_EXCHANGE, ExchangeType.DIRECT)
    for party, name in inboxes.items():
        await _bind(await _queue(channel, name, arguments), outgoing, party)


async def _exchange(channel: AbstractChannel, name: str, kind: ExchangeType) -> AbstractExchange:
    try:
        return await channel.declare_exchange(name, kind, durable=True)
    except BROKER_ERRORS as exc:
        raise broker_error(exc, f"declaring {kind.value} exchange {name}") from exc


async def _queue(
    channel: AbstractChannel, name: str, arguments: dict[str, str | int]
) -> AbstractQueue:
    try:
        return await channel.declare_queue(name, durable=True, arguments=dict(arguments))
    except BROKER_ERRORS as exc:
        raise broker_error(exc, f"declaring quorum queue {name}") from exc


async def _bind(queue: AbstractQueue, exchange: AbstractExchange, routing_key: str) -> None:
    try:
        await queue.bind(exchange, routing_key=routing_key)
    except BROKER_ERRORS as exc:
        raise broker_error(
            exc, f"binding queue {queue.name} to {exchange.name} with {routing_key!r}"
        ) from exc
