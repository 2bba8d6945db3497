"""A partner as the tests play it over the wire: signs, publishes to vtgw.in, reads its inbox."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractRobustConnection

from adapters.amqp.publisher import publish_in
from adapters.amqp.topology import inbox_queue
from gateway.domain.envelope import format_timestamp
from gateway.domain.signatures import SigningKey
from gateway.resources import data_dir
from gateway.vectors import sign_object
from tests.integration.amqp_support import next_message


def example(message_type: str) -> dict[str, Any]:
    path = data_dir("schemas") / "examples" / f"{message_type}.json"
    value: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return value


def notice_body(party: str) -> dict[str, Any]:
    """The example notice's body, its advised term two weeks ahead (whenever this runs);
    to the GI without monitoring (§7.1 D)."""
    body = example("overdracht.notice")["body"]
    in_two_weeks = (datetime.now(UTC) + timedelta(days=14)).date().isoformat()
    body["geadviseerde_termijn"] = {"uiterlijk": in_two_weeks}
    if party == "jbg":
        body["monitoring"] = {"afgesproken": False, "reden_geen_monitoring": "overdracht_aan_gi"}
    return body


class WirePartner:
    """One party's broker connection and key, as a test drives it."""

    def __init__(self, party: str, url: str, key: SigningKey) -> None:
        self.party, self.url, self.key = party, url, key
        self.connection: AbstractRobustConnection | None = None
        self.channel: AbstractChannel | None = None

    async def __aenter__(self) -> WirePartner:
        self.connection = await aio_pika.connect_robust(self.url)
        self.channel = await self.connection.channel(publisher_confirms=True)
        return self

    async def __aexit__(self, *_: object) -> None:
        if self.connection is not None:
            await self.connection.close()

    def envelope(
        self, message_type: str, *, sent_at: datetime | None = None, **changes: Any
    ) -> dict[str, Any]:
        """The example of a type, from this party to VT, fresh id, signed."""
        obj = example(message_type) | {
            "id": str(uuid.uuid4()),
            "sender": self.party,
            "recipient": "vt-gz",
            "sent_at": format_timestamp(sent_at or datetime.now(UTC) - timedelta(seconds=1)),
        }
        obj["thread"] = obj["id"] if "reply_to" not in obj else obj["thread"]
        obj.update(changes)
        return sign_object(obj, self.key)

    async def send(
        self, message: dict[str, Any] | bytes, *, message_id: str = "", kind: str = ""
    ) -> None:
        """Publish to vtgw.in as this party's broker user."""
        assert self.channel is not None
        if isinstance(message, dict):
            raw = json.dumps(message, ensure_ascii=False).encode()
            message_id, kind = message["id"], message["type"]
        else:
            raw = message
        await publish_in(self.channel, raw, message_id=message_id, type=kind, user_id=self.party)

    async def receive(self, *, timeout: float = 10.0) -> dict[str, Any]:
        """The next message in this party's inbox, acknowledged, as JSON."""
        assert self.channel is not None
        message: AbstractIncomingMessage = await next_message(
            self.channel, inbox_queue(self.party), timeout=timeout
        )
        await message.ack()
        value: dict[str, Any] = json.loads(message.body)
        return value

    async def receive_until(
        self, message_type: str, *, reply_to: str, timeout: float = 10.0
    ) -> dict[str, Any]:
        """The next message of a type answering `reply_to`, skipping others."""
        while True:
            message = await self.receive(timeout=timeout)
            if message["type"] == message_type and message.get("reply_to") == reply_to:
                return message
