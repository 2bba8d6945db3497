"""Connecting to RabbitMQ, and translating aio-pika's errors at the edge.

`connect` tries each node of the broker in turn and returns the first
`FailoverConnection`: aio-pika's robust connection, which reopens its channels
and redeclares its exchanges, queues, bindings and consumers after a reconnect,
but which reconnects round robin: when the connection to one node drops, or an
attempt to reconnect fails, the next attempt goes to the next node of the list.
A cluster's nodes share users, vhosts and (quorum) queues, so the same
topology and consumers come back on whichever node answers.

Every other module of this package translates aio-pika/aiormq errors with
`broker_error`, so the rest of the gateway sees only its own error tree:

- `BrokerRefusedError` (a `ConfigurationError`): the broker closed the channel
  because the operation can never succeed as configured: access refused (403),
  no such exchange or queue (404), a failed precondition (406: a queue declared
  with other arguments, or a `user_id` that is not the connection's user).
- `TransientError`: everything that may pass (connection lost, timeout, a
  message nacked or returned as unroutable).
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Sequence
from contextlib import suppress
from typing import Any, Final

import structlog
from aio_pika import RobustConnection
from aio_pika.abc import AbstractRobustConnection
from aio_pika.exceptions import (
    CONNECTION_EXCEPTIONS,
    ChannelNotFoundEntity,
    ChannelPreconditionFailed,
    DeliveryError,
    PublishError,
)
from aiormq.exceptions import ChannelAccessRefused
from yarl import URL

from adapters.amqp.urls import redact
from gateway.domain.errors import ConfigurationError, GatewayError, TransientError

log = structlog.get_logger("vtgw.amqp")

DEFAULT_CONNECT_TIMEOUT: Final = 10.0
"""Seconds to wait for one node to accept the connection."""

BROKER_ERRORS: Final[tuple[type[BaseException], ...]] = CONNECTION_EXCEPTIONS
"""What aio-pika raises when the broker or the connection fails (aiormq errors,
OSError and TimeoutError, RuntimeError for a closed channel)."""

_REFUSALS: Final[tuple[tuple[type[BaseException], int], ...]] = (
    (ChannelAccessRefused, 403),
    (ChannelNotFoundEntity, 404),
    (ChannelPreconditionFailed, 406),
)


class BrokerRefusedError(ConfigurationError):
    """The broker closed the channel: this operation cannot succeed as configured.

    `reply_code` is the AMQP reply code (403 ACCESS_REFUSED, 404 NOT_FOUND,
    406 PRECONDITION_FAILED), `reply_text` the broker's own words.
    """

    def __init__(self, reply_code: int, reply_text: str, doing: str) -> None:
        super().__init__(f"the broker refused {doing}: {reply_text}")
        self.reply_code = reply_code
        self.reply_text = reply_text


def broker_error(exc: BaseException, doing: str) -> GatewayError:
    """The gateway's error for an aio-pika/aiormq failure while `doing` something.

    Use as `raise broker_error(exc, "publishing ...") from exc`; `doing` says
    what was attempted ("declaring queue vtgw.in").
    """
    for kind, code in _REFUSALS:
        if isinstance(exc, kind):
            return BrokerRefusedError(code, _reply_text(exc), doing)
    if isinstance(exc, PublishError):
        return TransientError(f"{doing}: the broker returned the message as unroutable")
    if isinstance(exc, DeliveryError):
        return TransientError(f"{doing}: the broker did not accept the message ({exc.frame.name})")
    if isinstance(exc, TimeoutError):
        return TransientError(f"{doing}: timed out waiting for the broker")
    return TransientError(f"{doing}: {describe(exc)}")


class NodeList:
    """The broker's nodes in turn: the one to connect to now, and the next one after it.

    `start` is the index of the first node to use. `advance` moves on round
    robin, so that every node is tried before the first one again.
    """

    def __init__(self, urls: Sequence[str], start: int = 0) -> None:
        if not urls:
            raise ConfigurationError("no broker URL to connect to")
        self.urls = tuple(urls)
        self.index = start % len(self.urls)

    def __len__(self) -> int:
        return len(self.urls)

    @property
    def current(self) -> str:
        return self.urls[self.index]

    def advance(self) -> str:
        """Move on to the next node (the first after the last); its URL."""
        self.index = (self.index + 1) % len(self.urls)
        return self.current


class FailoverConnection(RobustConnection):
    """A robust connection that reconnects to the next node of the list, round robin.

    aio-pika calls `_on_connection_close` both when an open connection drops
    and when an attempt to (re)connect fails; each time, the URL of the next
    attempt becomes the next node's. Everything else (the reconnect loop and
    its `reconnect_interval`, the channels, queues and consumers restored) is
    aio-pika's. aio-pika's own URL parameters (`reconnect_interval`,
    `fail_fast`) are read from the first node's URL; the rest of each URL's
    query (TLS files, heartbeat) is read for that node at each attempt.
    """

    def __init__(self, nodes: NodeList, **kwargs: Any) -> None:
        self.nodes = nodes
        super().__init__(URL(nodes.current), **kwargs)

    async def _on_connection_close(self, closing: asyncio.Future[Any]) -> None:
        await super()._on_connection_close(closing)
        if self.close_called or self.is_closed or len(self.nodes) == 1:
            return
        lost = self.nodes.current
        self.url = URL(self.nodes.advance())
        if self.connection_attempt:  # not the first attempt, which `connect` reports itself
            log.warning("broker_node_lost", node=redact(lost), next_node=redact(self.nodes.current))


async def connect(
    urls: Sequence[str], *, name: str, timeout: float = DEFAULT_CONNECT_TIMEOUT
) -> AbstractRobustConnection:
    """A `FailoverConnection` over `urls`, connected to the first of them that accepts.

    `name` is the client-provided connection name, shown in the management UI.
    Each URL is an AMQP URI (`amqp://user:password@host:5672/%2F`) of one node
    of the broker; a single string is taken as one URL. When no node accepts,
    TransientError says why for each (passwords left out).
    """
    candidates = (urls,) if isinstance(urls, str) else tuple(urls)
    if not candidates:
        raise ConfigurationError("no broker URL to connect to")
    failures: list[str] = []
    refusals: list[BaseException] = []
    last: BaseException | None = None
    for start, url in enumerate(candidates):
        connection = FailoverConnection(
            NodeList(candidates, start), client_properties={"connection_name": name}
        )
        try:
            await connection.connect(timeout=timeout)
        except BROKER_ERRORS as exc:
            failures.append(f"{redact(url)}: {describe(exc)}")
            refusals.append(exc)
            last = exc
            with suppress(*BROKER_ERRORS):
                await connection.close()
            continue
        return connection
    reasons = "; ".join(failures)
    if any(_certificate_refused(exc) for exc in refusals):
        # Not a passing trouble: the node's certificate is not of the CA we trust (or
        # not for its name). Retrying would not help; the settings or the node must change.
        raise ConfigurationError(
            f"cannot connect to the broker as {name!r}: a node's TLS certificate does not"
            f" verify against the URL's cafile: {reasons}"
        ) from last
    raise TransientError(f"cannot connect to the broker as {name!r}: {reasons}") from last


def _certificate_refused(exc: BaseException) -> bool:
    """Did the TLS handshake refuse the server's certificate, anywhere in the error's chain?"""
    seen: set[int] = set()
    todo: list[object] = [exc]
    while todo:
        current = todo.pop()
        if not isinstance(current, BaseException) or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, ssl.SSLCertVerificationError):
            return True
        todo += [current.__cause__, current.__context__, *current.args]
    return False


def describe(exc: BaseException) -> str:
    """One line about a library error: its kind and what it says."""
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _reply_text(exc: BaseException) -> str:
    """The broker's reply text of a channel error (aiormq keeps it as the only arg)."""
    if exc.args and isinstance(exc.args[0], str):
        return exc.args[0]
    return describe(exc)
