"""Helpers of the AMQP integration tests: the local RabbitMQ, a vhost per module, test parties.

RabbitMQ runs on this machine (README: 127.0.0.1:5672, guest/guest, the
management plugin on 15672; $VTGW_TEST_RABBITMQ_HOST and
$VTGW_TEST_MANAGEMENT_URL point elsewhere). When the broker or its management
API cannot be reached the tests fail at setup and say so: they are never skipped.

Each test module works in a vhost of its own (`dedicated_vhost`), deleted with
everything in it at the end. Broker users are not per vhost: tests name their
parties `vtgwtest-<random>` (never a real party id) and delete the users they
made.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import secrets
import socket
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage

from gateway.domain.contracts import Contract, Role, Transport

HOST = os.environ.get("VTGW_TEST_RABBITMQ_HOST", "127.0.0.1")
AMQP_PORT = 5672
MANAGEMENT_URL = os.environ.get("VTGW_TEST_MANAGEMENT_URL", f"http://{HOST}:15672")
ADMIN_USER = "guest"
ADMIN_PASSWORD = "guest"  # noqa: S105 - RabbitMQ's local default, as the README says
BROKER_URL = f"amqp://{HOST}:{AMQP_PORT}"
"""Where partners connect, without user and vhost (for the credentials files)."""

UNREACHABLE_PORT = 1
"""A port nothing listens on: connections to it are refused at once."""


def amqp_url(vhost: str, user: str = ADMIN_USER, password: str = ADMIN_PASSWORD) -> str:
    """The AMQP URI of the local broker in `vhost`."""
    return f"amqp://{user}:{password}@{HOST}:{AMQP_PORT}/{quote(vhost, safe='')}"


def management(
    method: str,
    *segments: str,
    body: object = None,
    user: str = ADMIN_USER,
    password: str = ADMIN_PASSWORD,
    base_url: str = MANAGEMENT_URL,
) -> tuple[int, Any]:
    """Call a management API (the test broker's, or a node's at `base_url`):
    (HTTP status, JSON body or None)."""
    path = "/".join(quote(segment, safe="") for segment in segments)
    request = urllib.request.Request(  # noqa: S310 - the test broker's http URL
        f"{base_url}/api/{path}",
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={
            "Authorization": "Basic "
            + base64.b64encode(f"{user}:{password}".encode()).decode("ascii"),
            "Content-Type": "application/json",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            raw = response.read()
            return response.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as error:
        raw = error.read()
        try:
            return error.code, json.loads(raw) if raw else None
        except ValueError:
            return error.code, raw.decode(errors="replace")


def api_get(*segments: str) -> Any:
    """A management API resource that must exist."""
    status, body = management("GET", *segments)
    if status != 200:
        pytest.fail(f"GET /api/{'/'.join(segments)}: {status} {body}", pytrace=False)
    return body


def require_rabbitmq() -> None:
    """Fail (never skip) unless the broker and its management API answer."""
    try:
        socket.create_connection((HOST, AMQP_PORT), timeout=3).close()
        status, body = management("GET", "overview")
    except OSError as error:
        pytest.fail(
            f"RabbitMQ is not reachable (AMQP {HOST}:{AMQP_PORT}, management "
            f"{MANAGEMENT_URL}): {error!r}; start it with its management plugin "
            "(.ci/run does)",
            pytrace=False,
        )
    if status != 200:
        pytest.fail(
            f"RabbitMQ's management API at {MANAGEMENT_URL} answered {status} to "
            f"{ADMIN_USER}: {body}",
            pytrace=False,
        )


@contextmanager
def dedicated_vhost() -> Iterator[str]:
    """A new vhost `vtgw-test-<random>` (the admin user may use it), deleted afterwards."""
    require_rabbitmq()
    name = f"vtgw-test-{secrets.token_hex(4)}"
    status, body = management("PUT", "vhosts", name)
    if status not in {201, 204}:
        pytest.fail(f"cannot create vhost {name}: {status} {body}", pytrace=False)
    permissions = {"configure": ".*", "write": ".*", "read": ".*"}
    management("PUT", "permissions", name, ADMIN_USER, body=permissions)
    try:
        yield name
    finally:
        management("DELETE", "vhosts", name)


def delete_users(*names: str) -> None:
    """Delete these broker users, if they exist."""
    for name in names:
        management("DELETE", "users", name)


def new_party() -> str:
    """A party id no real party has: `vtgwtest-<random>`."""
    return f"vtgwtest-{secrets.token_hex(4)}"


def contract(party: str, transport: Transport = Transport.AMQP) -> Contract:
    """A minimal contract of a care provider on `transport`."""
    return Contract(
        party=party,
        name=f"Test party {party}",
        role=Role.GI,
        transport=transport,
        werkgebied=frozenset(),
        signed_by=None,
        may_send=frozenset(),
        may_receive=frozenset(),
        keys=(),
        receipt_timeout=timedelta(hours=4),
        attempt_limit=3,
    )


def read_env_file(path: Path) -> dict[str, str]:
    """The KEY=value lines of a credentials file."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return dict(line.split("=", 1) for line in lines if "=" in line and not line.startswith("#"))


async def next_message(
    channel: AbstractChannel, queue: str, *, timeout: float = 5.0
) -> AbstractIncomingMessage:
    """The next message of `queue` (basic.get, not yet acknowledged); fail after `timeout`."""
    source = await channel.get_queue(queue, ensure=False)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        message = await source.get(fail=False)
        if message is not None:
            return message
        if loop.time() > deadline:
            pytest.fail(f"no message arrived in {queue} within {timeout} s", pytrace=False)
        await asyncio.sleep(0.02)


async def is_empty(channel: AbstractChannel, queue: str) -> bool:
    """Does `queue` hold no ready message right now?"""
    source = await channel.get_queue(queue, ensure=False)
    message = await source.get(fail=False)
    if message is None:
        return True
    await message.nack(requeue=True)
    return False


async def purge(channel: AbstractChannel, *queues: str) -> None:
    """Empty these queues (those a test module's tests share)."""
    for name in queues:
        await (await channel.get_queue(name, ensure=False)).purge()
