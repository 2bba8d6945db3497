"""RabbitMQ: the broker side of wire protocol v1 (PROTOCOL.md, "AMQP mapping").

- `connection`: connect to one of the broker's nodes; translate aio-pika's errors.
- `topology`: the exchanges and quorum queues, declared idempotently.
- `publisher`: publish with confirms (the outbox relay's `Publisher`, dead letters,
  and a partner's publish to `vtgw.in`).
- `provision`: the partners' broker users and their permissions, over the
  management HTTP API.

Nothing here connects at import time: connections are made inside the running loop.
"""
