"""Every error code of PROTOCOL.md, provoked over the wire against a running gateway.

Each refused message is answered with a signed `error` where its sender can
be known, and is found afterwards in the dead letters (with the reason in
its headers) and in the store.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aio_pika
import pytest

from adapters.amqp.topology import DEAD_QUEUE
from adapters.store import open_store
from gateway.domain.signatures import SigningKey
from tests.integration.amqp_support import amqp_url, next_message
from tests.integration.gateway_rig import GatewayRig, gateway_rig
from tests.integration.partner_side import WirePartner, example

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayRig]:
    with gateway_rig(tmp_path_factory.mktemp("wire"), "wire") as rig:
        rig.start()
        yield rig
        assert rig.stop() == 0, rig.log_tail()


def jbg(rig: GatewayRig, key: SigningKey | None = None) -> WirePartner:
    return WirePartner("jbg", rig.credentials["jbg"], key or rig.signing_key("jbg"))


async def dead_letter_of(rig: GatewayRig, body: bytes) -> dict[str, Any]:
    """The headers of the dead letter holding exactly these bytes."""
    connection = await aio_pika.connect_robust(amqp_url(rig.vhost))
    try:
        channel = await connection.channel()
        for _ in range(200):
            message = await next_message(channel, DEAD_QUEUE, timeout=10)
            await message.ack()
            if message.body == body:
                return dict(message.headers)
    finally:
        await connection.close()
    pytest.fail("the refused message is not among the dead letters")


async def kept_in_store(rig: GatewayRig, body: bytes) -> str:
    """The code the store keeps for the refused message with these bytes."""
    store = await open_store(rig.dsn)
    try:
        async with store.transaction() as uow:
            kept = await uow.rejections.recent(500)
    finally:
        await store.close()
    codes = [k.code for k in kept if k.raw == body]
    assert codes, "the refused message is not kept in the store"
    return codes[0]


async def assert_refused(
    rig: GatewayRig,
    partner: WirePartner,
    message: dict[str, Any] | bytes,
    code: str,
    *,
    answered: bool = True,
) -> None:
    raw = json.dumps(message, ensure_ascii=False).encode() if isinstance(message, dict) else message
    if isinstance(message, dict):
        await partner.send(raw, message_id=message["id"], kind=str(message["type"]))
    else:
        await partner.send(raw, message_id=str(uuid.uuid4()), kind="unknown")
    if answered:
        assert isinstance(message, dict)
        error = await partner.receive_until("error", reply_to=message["id"])
        assert error["body"]["code"] == code
        assert error["sender"] == "vt-gz"
    headers = await dead_letter_of(rig, raw)
    assert headers["x-vtgw-code"] == code
    assert await kept_in_store(rig, raw) == code


async def test_not_json_is_malformed_kept_and_dead_lettered(rig: GatewayRig) -> None:
    """MALFORMED: no id to answer, so no error; dead-lettered with the reason, kept."""
    async with jbg(rig) as partner:
        await assert_refused(rig, partner, b"{not json", "MALFORMED", answered=False)


async def test_a_message_over_256_kib_is_too_large(rig: GatewayRig) -> None:
    """TOO_LARGE, refused before parsing, kept whole."""
    async with jbg(rig) as partner:
        raw = json.dumps(partner.envelope("enrichment.response")).encode()
        await assert_refused(rig, partner, raw + b" " * (256 * 1024), "TOO_LARGE", answered=False)


@pytest.mark.parametrize(
    ("code", "change"),
    [
        ("SCHEMA_INVALID", {"body": {}}),
        ("UNKNOWN_SENDER", {"sender": "onbekend"}),
        ("SENDER_MISMATCH", {"sender": "rvdk"}),
        ("UNKNOWN_RECIPIENT", {"recipient": "onbekend"}),
        ("NOT_PERMITTED", {"recipient": "rvdk"}),
    ],
)
async def test_envelope_errors_are_answered_and_kept(
    rig: GatewayRig, code: str, change: dict[str, Any]
) -> None:
    """Schema, sender, recipient and contract errors: an error back to jbg, dead letter, store."""
    async with jbg(rig) as partner:
        message = partner.envelope("enrichment.response", **change)
        await assert_refused(rig, partner, message, code)


async def test_a_changed_byte_is_signature_invalid(rig: GatewayRig) -> None:
    """SIGNATURE_INVALID: the content changed after signing."""
    async with jbg(rig) as partner:
        message = partner.envelope("enrichment.response")
        message["thread"] = str(uuid.uuid4())
        await assert_refused(rig, partner, message, "SIGNATURE_INVALID")


async def test_a_key_the_contract_does_not_name_is_not_valid(rig: GatewayRig) -> None:
    """KEY_NOT_VALID: signed by a key jbg's contract does not list."""
    async with jbg(rig, SigningKey.generate("jbg-unlisted")) as partner:
        await assert_refused(rig, partner, partner.envelope("enrichment.response"), "KEY_NOT_VALID")


async def test_the_future_and_the_stale_are_refused(rig: GatewayRig) -> None:
    """FUTURE beyond 5 minutes ahead, STALE beyond the maximum age."""
    now = datetime.now(UTC)
    async with jbg(rig) as partner:
        ahead = partner.envelope("enrichment.response", sent_at=now + timedelta(minutes=10))
        await assert_refused(rig, partner, ahead, "FUTURE")
        old = partner.envelope("enrichment.response", sent_at=now - timedelta(days=8))
        await assert_refused(rig, partner, old, "STALE")


async def test_an_answer_to_nothing_sent_is_an_unknown_thread(rig: GatewayRig) -> None:
    """UNKNOWN_THREAD: reply_to names no message the gateway sent to jbg."""
    async with jbg(rig) as partner:
        message = partner.envelope("enrichment.response", reply_to=str(uuid.uuid4()))
        await assert_refused(rig, partner, message, "UNKNOWN_THREAD")


async def test_state_and_duplicate_errors_over_the_wire(rig: GatewayRig) -> None:
    """INVALID_STATE for a second confirmation; DUPLICATE_CONFLICT for an id reused."""
    notice = example("overdracht.notice")
    # jbg is a GI: no monitoring after a handover to it (§7.1 D)
    notice["body"]["monitoring"] = {
        "afgesproken": False,
        "reden_geen_monitoring": "overdracht_aan_gi",
    }
    status, created = rig.api(
        "POST",
        "/messages",
        {
            "type": "overdracht.notice",
            "case": {"ref": "VT-2026-000777", "gemeente": "GM0268"},
            "body": notice["body"],
            "recipients": ["jbg"],
        },
    )
    assert status == 201, created
    sent, informing = created["messages"]  # §5.1 D: the lokaal team is told of it
    assert (sent["recipient"], informing["recipient"]) == ("jbg", "lt-nijmegen")
    async with jbg(rig) as partner:
        received = await partner.receive(timeout=15)
        while received["id"] != sent["id"]:
            received = await partner.receive(timeout=15)
        reply = {"reply_to": received["id"], "thread": received["thread"], "case": received["case"]}
        first = partner.envelope("overdracht.confirmation", **reply)
        await partner.send(first)
        receipt = await partner.receive_until("receipt", reply_to=first["id"])
        assert receipt["body"]["digest"].startswith("sha256:")
        second = partner.envelope("overdracht.confirmation", **reply)
        await assert_refused(rig, partner, second, "INVALID_STATE")
        reused = partner.envelope("overdracht.deferral", **reply, id=first["id"])
        await assert_refused(rig, partner, reused, "DUPLICATE_CONFLICT")


def test_the_gateway_logs_carry_no_personal_data(rig: GatewayRig) -> None:
    """Log lines name ids and codes, never a name or BSN of the messages sent."""
    log = rig.log_file.read_text()
    for person in example("overdracht.notice")["body"]["personen"]:
        assert person["geslachtsnaam"] not in log
        assert person.get("bsn", "-") not in log
