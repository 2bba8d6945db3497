"""The answers endpoint and the outbox folder: where the partner's system hands in its answers."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from adapters.amqp.partner.answers import AnswerSender, ResendPolicy
from adapters.amqp.partner.endpoint import answers_app
from adapters.amqp.partner.ledger import Handover, PartnerLedger, ReceivedMessage
from adapters.amqp.partner.messages import Partner
from adapters.amqp.partner.outbox import OutboxFolder
from gateway.bootstrap import Core
from gateway.domain.contracts import Contracts
from gateway.domain.envelope import CaseRef
from gateway.vectors import VECTOR_NOW, vector_key

REQUEST_ID = "881a3efd-5221-47fd-8b10-b7e872c95cf4"
Client = Callable[[web.Application], Awaitable[TestClient[web.Request, web.Application]]]


@dataclass
class FakeCourier:
    sent: list[bytes] = field(default_factory=list)

    async def send(self, raw: bytes, *, message_id: str, message_type: str) -> None:
        self.sent.append(raw)


@dataclass
class Setup:
    sender: AnswerSender
    courier: FakeCourier
    answer: dict[str, Any]


@pytest.fixture
async def setup(
    core: Core, keyed_contracts: Contracts, tmp_path: Path, examples: dict[str, Any]
) -> AsyncIterator[Setup]:
    partner = Partner.create(
        party="jbg", contracts=keyed_contracts, validator=core.validator, key=vector_key("jbg")
    )
    ledger = await PartnerLedger.open(tmp_path / "jbg.sqlite3")
    await ledger.add_received(
        ReceivedMessage(
            sender="vt-gz",
            id=REQUEST_ID,
            type="enrichment.request",
            digest="sha256:" + "0" * 64,
            thread=REQUEST_ID,
            case=CaseRef("VT-2026-000123", "GM0281"),
            received_at=VECTOR_NOW,
            handover=Handover.DONE,
        )
    )
    courier = FakeCourier()
    policy = ResendPolicy(timedelta(minutes=15), 3)
    sender = AnswerSender(partner, ledger, courier, policy, lambda: VECTOR_NOW)
    answer = {
        "type": "enrichment.response",
        "reply_to": REQUEST_ID,
        "body": examples["enrichment.response"]["body"],
    }
    yield Setup(sender, courier, answer)
    await ledger.close()


# --- POST /answers -------------------------------------------------------------------


async def test_a_valid_answer_is_accepted_with_its_new_id(
    setup: Setup, aiohttp_client: Client
) -> None:
    """202 with the id, status sent, and the thread of the answered request."""
    client = await aiohttp_client(answers_app(setup.sender))

    reply = await client.post("/answers", json=setup.answer)
    view = await reply.json()

    assert reply.status == 202
    assert (view["status"], view["thread"], view["attempts"]) == ("sent", REQUEST_ID, 1)
    [raw] = setup.courier.sent
    assert json.loads(raw)["id"] == view["id"]


async def test_the_state_of_an_answer_can_be_asked_by_its_id(
    setup: Setup, aiohttp_client: Client
) -> None:
    """GET /answers/{id}: its status; an unknown id is 404."""
    client = await aiohttp_client(answers_app(setup.sender))
    posted = await (await client.post("/answers", json=setup.answer)).json()

    known = await client.get(f"/answers/{posted['id']}")
    unknown = await client.get("/answers/00000000-0000-4000-8000-000000000000")

    assert (known.status, (await known.json())["status"]) == (200, "sent")
    assert unknown.status == 404


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        ({"body": {"personen": []}}, 422, "SCHEMA_INVALID"),
        ({"reply_to": "00000000-0000-4000-8000-000000000000"}, 404, "UNKNOWN_THREAD"),
        ({"type": "overdracht.confirmation"}, 409, "INVALID_STATE"),
        ({"type": "receipt"}, 422, "NOT_PERMITTED"),
        ({"case": {}}, 422, "SCHEMA_INVALID"),
    ],
)
async def test_a_refused_answer_gets_a_4xx_with_the_protocol_error_body(
    setup: Setup, aiohttp_client: Client, change: dict[str, Any], status: int, code: str
) -> None:
    """The code, a detail without personal data, the pointer; nothing sent."""
    client = await aiohttp_client(answers_app(setup.sender))

    reply = await client.post("/answers", json=setup.answer | change)
    problem = await reply.json()

    assert (reply.status, problem["code"]) == (status, code)
    assert set(problem) == {"code", "detail", "pointer"}
    assert setup.courier.sent == []


async def test_a_body_that_is_not_json_is_400(setup: Setup, aiohttp_client: Client) -> None:
    """MALFORMED, as the hub would say."""
    client = await aiohttp_client(answers_app(setup.sender))

    reply = await client.post("/answers", data=b"{not json")

    assert (reply.status, (await reply.json())["code"]) == (400, "MALFORMED")


async def test_a_repeated_request_with_its_idempotency_key_is_one_answer(
    setup: Setup, aiohttp_client: Client
) -> None:
    """Same key, same request: the same id, sent once; same key, other request: 409."""
    client = await aiohttp_client(answers_app(setup.sender))
    headers = {"Idempotency-Key": "case-123-answer"}

    first = await (await client.post("/answers", json=setup.answer, headers=headers)).json()
    second = await (await client.post("/answers", json=setup.answer, headers=headers)).json()
    other = setup.answer | {"body": setup.answer["body"] | {"personen": []}}
    conflict = await client.post("/answers", json=other, headers=headers)

    assert second["id"] == first["id"]
    assert len(setup.courier.sent) == 1
    assert conflict.status == 409


# --- the outbox folder ---------------------------------------------------------------


async def test_an_outbox_file_is_sent_and_moved_to_sent_under_its_id(
    setup: Setup, tmp_path: Path
) -> None:
    """Taken, signed, published; `sent/<stem>.<id>.json`, the original gone."""
    outbox = OutboxFolder(tmp_path / "outbox", setup.sender)
    await outbox.start()
    (tmp_path / "outbox" / "a.json").write_text(json.dumps(setup.answer), encoding="utf-8")

    assert await outbox.sweep() == 1

    [raw] = setup.courier.sent
    message_id = json.loads(raw)["id"]
    assert [p.name for p in (tmp_path / "outbox" / "sent").iterdir()] == [f"a.{message_id}.json"]
    assert not (tmp_path / "outbox" / "a.json").exists()


async def test_a_refused_outbox_file_goes_to_failed_with_its_reason(
    setup: Setup, tmp_path: Path
) -> None:
    """`failed/<name>` and `failed/<stem>.reason.json` with code and pointer; nothing sent."""
    outbox = OutboxFolder(tmp_path / "outbox", setup.sender)
    await outbox.start()
    bad = setup.answer | {"body": {"personen": "?"}}
    (tmp_path / "outbox" / "b.json").write_text(json.dumps(bad), encoding="utf-8")

    await outbox.sweep()

    failed = tmp_path / "outbox" / "failed"
    reason = json.loads((failed / "b.reason.json").read_text(encoding="utf-8"))
    assert (failed / "b.json").exists()
    assert reason["code"] == "SCHEMA_INVALID"
    assert reason["pointer"].startswith("/body")
    assert setup.courier.sent == []


async def test_files_still_being_written_are_left_alone(setup: Setup, tmp_path: Path) -> None:
    """Dot-files and names not ending in .json are not answers (yet)."""
    outbox = OutboxFolder(tmp_path / "outbox", setup.sender)
    await outbox.start()
    (tmp_path / "outbox" / ".c.json").write_text("{", encoding="utf-8")
    (tmp_path / "outbox" / "c.json.part").write_text("{", encoding="utf-8")

    assert await outbox.sweep() == 0
    assert setup.courier.sent == []


async def test_a_file_picked_up_again_after_a_crash_is_one_answer(
    setup: Setup, tmp_path: Path
) -> None:
    """Stored, then the adapter died before the move: the next sweep sends nothing new."""
    outbox = OutboxFolder(tmp_path / "outbox", setup.sender)
    await outbox.start()
    text = json.dumps(setup.answer)
    (tmp_path / "outbox" / "d.json").write_text(text, encoding="utf-8")
    await outbox.sweep()
    (tmp_path / "outbox" / "d.json").write_text(text, encoding="utf-8")  # as if never moved

    await outbox.sweep()

    assert len(setup.courier.sent) == 1
    assert len(list((tmp_path / "outbox" / "sent").iterdir())) == 1
