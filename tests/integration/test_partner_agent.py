"""The partner's adapter against a real RabbitMQ, with the test playing VT's side.

The partner is `jbg` (Jeugdbescherming Gelderland, which may receive
`enrichment.request`), provisioned as a broker user with PROTOCOL.md's
permissions in a vhost of this module. The test publishes VT's signed messages
into `vtgw.out` (routing key `jbg`) as the admin user, and reads what the
partner publishes from `vtgw.in`. Keys are the fixed test keys of the vectors;
the clock runs from the vectors' moment, so the keys' validity window holds
whatever the date.

Broker users are global, not per vhost: the `jbg` user's original credentials
(when it existed) are put back at the end, or the user is deleted.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aio_pika
import aiohttp
import pytest
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage
from aiohttp import web

from adapters.amqp.connection import connect
from adapters.amqp.partner import (
    AgentSettings,
    FolderTarget,
    Partner,
    PartnerAgent,
    WebhookTarget,
)
from adapters.amqp.provision import provision
from adapters.amqp.topology import IN_QUEUE, OUT_EXCHANGE, declare_topology, inbox_queue
from adapters.crypto.keyfiles import add_public_key, public_key_entry, write_private_key
from gateway.bootstrap import Core, Paths, load_core
from gateway.domain.canonical import digest
from gateway.domain.contracts import Contracts
from gateway.domain.envelope import format_timestamp, new_message_id
from gateway.resources import data_dir
from gateway.service.pipeline import Accepted, Verifier, verify_message
from gateway.vectors import VECTOR_NOW, sign_object, vector_key, with_test_keys
from tests.integration.amqp_support import (
    ADMIN_PASSWORD,
    ADMIN_USER,
    BROKER_URL,
    MANAGEMENT_URL,
    amqp_url,
    dedicated_vhost,
    management,
    purge,
    read_env_file,
)

pytestmark = pytest.mark.integration

PARTY = "jbg"
HUB = "vt-gz"
INBOX = inbox_queue(PARTY)
CONNECTION_NAME = f"vtgw-partner-{PARTY}"
WAIT = 5.0  # seconds: the longest any expected message may take
STATS_WAIT = 30.0  # seconds: the management API lists a connection only after its stats
# interval, and longer just after the broker restarted (the crash tests restart it)
ROOT = Path(__file__).resolve().parents[2]


# --- the clock, the core, the broker --------------------------------------------------

_START = time.monotonic()


def clock() -> datetime:
    """The vectors' moment, running: inside the test keys' validity window on any date."""
    return VECTOR_NOW + timedelta(seconds=time.monotonic() - _START)


@pytest.fixture(scope="module")
def core() -> Core:
    return load_core(Paths.defaults())


@pytest.fixture(scope="module")
def contracts(core: Core) -> Contracts:
    return with_test_keys(core.contracts)


@pytest.fixture(scope="module")
def examples() -> dict[str, dict[str, Any]]:
    folder = data_dir("schemas") / "examples"
    return {p.stem: json.loads(p.read_text(encoding="utf-8")) for p in folder.glob("*.json")}


@dataclass(frozen=True)
class Broker:
    vhost: str
    partner_url: str  # jbg's own URL, from its provisioned credentials file


@pytest.fixture(scope="module")
def broker(contracts: Contracts, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    """A vhost with the topology, and `jbg` provisioned in it (its own password, its rights)."""
    with dedicated_vhost() as vhost:
        asyncio.run(_declare_topology(vhost))
        status, original = management("GET", "users", PARTY)
        ours = None
        credentials = tmp_path_factory.mktemp("credentials")
        jbg = contracts.get(PARTY)
        assert jbg is not None
        try:
            report = asyncio.run(
                provision(
                    Contracts([jbg]),
                    management_url=MANAGEMENT_URL,
                    admin_user=ADMIN_USER,
                    admin_password=ADMIN_PASSWORD,
                    credentials_dir=credentials,
                    vhost=vhost,
                    broker_url=BROKER_URL,
                    reset=True,
                )
            )
            assert report.reported == (), str(report)
            url = read_env_file(credentials / f"{PARTY}.env")["VTGW_AMQP_URL"]
            ours = management("GET", "users", PARTY)[1]["password_hash"]
            yield Broker(vhost, f"{url}?reconnect_interval=0.2")
        finally:
            _restore_user(status, original, ours)


async def _declare_topology(vhost: str) -> None:
    connection = await connect([amqp_url(vhost)], name="vtgw test_partner_agent topology")
    async with connection:
        await declare_topology(await connection.channel(), [PARTY])


def _restore_user(status: int, original: Any, ours: str | None) -> None:
    """Put jbg's user back as it was, unless someone else has set it meanwhile."""
    now = management("GET", "users", PARTY)[1]
    if ours is None or not isinstance(now, dict) or now.get("password_hash") != ours:
        return
    if status != 200:
        management("DELETE", "users", PARTY)
        return
    tags = original.get("tags", "")
    management(
        "PUT",
        "users",
        PARTY,
        body={
            "password_hash": original["password_hash"],
            "hashing_algorithm": original["hashing_algorithm"],
            "tags": ",".join(tags) if isinstance(tags, list) else tags,
        },
    )


# --- VT's side, played by the test -------------------------------------------------------


@dataclass
class VtSide:
    """Publishes VT's signed messages into jbg's inbox; reads what jbg sends to `vtgw.in`."""

    channel: AbstractChannel
    examples: dict[str, dict[str, Any]]
    key = vector_key(HUB)

    def request(self, sent_at: datetime | None = None) -> dict[str, Any]:
        """A new signed enrichment.request from VT to jbg (fresh id and thread)."""
        message_id = new_message_id()
        obj = json.loads(json.dumps(self.examples["enrichment.request"]))
        moment = format_timestamp(sent_at or clock())
        obj |= {"id": message_id, "thread": message_id, "sent_at": moment}
        return sign_object(obj, self.key)

    def receipt(self, answer: dict[str, Any]) -> dict[str, Any]:
        """VT's signed receipt of one of jbg's messages."""
        message_id = new_message_id()
        obj = {
            "version": 1,
            "id": message_id,
            "type": "receipt",
            "sender": HUB,
            "recipient": PARTY,
            "sent_at": format_timestamp(clock()),
            "thread": answer["thread"],
            "reply_to": answer["id"],
            "body": {"digest": digest(answer), "received_at": format_timestamp(clock())},
        }
        return sign_object(obj, self.key)

    async def send(self, message: dict[str, Any] | bytes, message_id: str | None = None) -> bytes:
        """Publish into `vtgw.out` with jbg's routing key, as the gateway's relay does."""
        raw = message if isinstance(message, bytes) else _bytes(message)
        exchange = await self.channel.get_exchange(OUT_EXCHANGE, ensure=False)
        await exchange.publish(
            aio_pika.Message(
                raw,
                message_id=message_id or (None if isinstance(message, bytes) else message["id"]),
                content_type="application/json",
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            ),
            routing_key=PARTY,
        )
        return raw

    async def next_in(self, timeout: float = WAIT) -> AbstractIncomingMessage:
        """The next message jbg published to `vtgw.in` (taken off the queue)."""
        queue = await self.channel.get_queue(IN_QUEUE, ensure=False)
        deadline = time.monotonic() + timeout
        while True:
            message = await queue.get(fail=False)
            if message is not None:
                await message.ack()
                return message
            if time.monotonic() > deadline:
                pytest.fail(f"nothing arrived in {IN_QUEUE} within {timeout} s", pytrace=False)
            await asyncio.sleep(0.02)

    async def nothing_in(self, seconds: float) -> None:
        """Fail when anything arrives in `vtgw.in` within `seconds`."""
        queue = await self.channel.get_queue(IN_QUEUE, ensure=False)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            message = await queue.get(fail=False)
            if message is not None:
                pytest.fail(f"unexpected {message.type} {message.message_id} in {IN_QUEUE}")
            await asyncio.sleep(0.05)


def _bytes(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()


def _json(message: AbstractIncomingMessage) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(message.body)
    return value


@pytest.fixture
async def vt(broker: Broker, examples: dict[str, dict[str, Any]]) -> AsyncIterator[VtSide]:
    connection = await connect([amqp_url(broker.vhost)], name="vtgw test_partner_agent vt")
    async with connection:
        channel = await connection.channel()
        await purge(channel, IN_QUEUE, INBOX)
        yield VtSide(channel, examples)


# --- the partner's agent, and its system's webhook ---------------------------------------

StartAgent = Callable[..., Awaitable[PartnerAgent]]


@pytest.fixture
async def start_agent(
    broker: Broker, core: Core, contracts: Contracts, tmp_path: Path
) -> AsyncIterator[StartAgent]:
    """Start jbg's agent (folder handoff unless told otherwise); stopped after the test."""
    agents: list[PartnerAgent] = []
    partner = Partner.create(
        party=PARTY, contracts=contracts, validator=core.validator, key=vector_key(PARTY)
    )

    async def start(**overrides: Any) -> PartnerAgent:
        settings = replace(
            AgentSettings(
                amqp_urls=(broker.partner_url,),
                state_file=tmp_path / "state" / "jbg.sqlite3",
                handoff=FolderTarget(tmp_path / "inbox"),
                listen=("127.0.0.1", 0),
                retry_delay=timedelta(milliseconds=200),
                tick=timedelta(milliseconds=100),
                shutdown_grace=timedelta(seconds=5),
            ),
            **overrides,
        )
        agent = PartnerAgent(partner, settings, clock=clock)
        await agent.start()
        agents.append(agent)
        return agent

    yield start
    for agent in agents:
        await agent.stop()


@dataclass
class Webhook:
    """The partner's system: records every call, answers with the next queued status (200)."""

    calls: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    delay: float = 0.0
    url: str = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.calls.append((dict(request.headers), await request.read()))
        await asyncio.sleep(self.delay)
        return web.Response(status=self.statuses.pop(0) if self.statuses else 200)

    async def called(self) -> bool:
        return bool(self.calls)


@pytest.fixture
async def webhook() -> AsyncIterator[Webhook]:
    hook = Webhook()
    app = web.Application()
    app.router.add_post("/vtgw", hook.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    hook.url = f"http://{host}:{port}/vtgw"
    yield hook
    await runner.cleanup()


async def post_answer(agent: PartnerAgent, answer: dict[str, Any]) -> tuple[int, Any]:
    assert agent.listening is not None
    host, port = agent.listening
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"http://{host}:{port}/answers", json=answer) as reply,
    ):
        return reply.status, await reply.json()


async def answer_status(agent: PartnerAgent, answer_id: str) -> str:
    assert agent.listening is not None
    host, port = agent.listening
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://{host}:{port}/answers/{answer_id}") as reply,
    ):
        view: dict[str, Any] = await reply.json()
        return str(view["status"])


def assert_receipt_of(
    message: AbstractIncomingMessage, received: dict[str, Any], verify_at_hub: Callable[..., Any]
) -> dict[str, Any]:
    """A signed receipt of `received` from jbg, exactly as PROTOCOL.md says, that VT accepts."""
    receipt = _json(message)
    assert (message.type, message.user_id, message.message_id) == ("receipt", PARTY, receipt["id"])
    assert receipt["reply_to"] == received["id"]
    assert receipt["thread"] == received["thread"]
    assert set(receipt["body"]) == {"digest", "received_at"}
    assert receipt["body"]["digest"] == digest(received)
    assert isinstance(verify_at_hub(message.body), Accepted)
    return receipt


@pytest.fixture
def verify_at_hub(core: Core, contracts: Contracts) -> Callable[[bytes], Any]:
    """What the gateway's own pipeline says of bytes jbg published."""

    def verify(raw: bytes) -> Any:
        verifier = Verifier(contracts, core.validator, HUB)
        return verify_message(raw, transport_identity=PARTY, now=clock(), verifier=verifier)

    return verify


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            pytest.fail("the condition did not hold in time", pytrace=False)
        await asyncio.sleep(0.05)


# --- receiving -----------------------------------------------------------------------------


async def test_a_valid_request_is_written_to_the_inbox_folder_and_receipted(
    vt: VtSide, start_agent: StartAgent, tmp_path: Path, verify_at_hub: Callable[..., Any]
) -> None:
    """Handed over as `<id>.json` (exactly the bytes VT sent), then a receipt with its digest."""
    await start_agent()
    request = vt.request()
    raw = await vt.send(request)

    receipt = await vt.next_in()

    assert_receipt_of(receipt, request, verify_at_hub)
    assert (tmp_path / "inbox" / f"{request['id']}.json").read_bytes() == raw
    assert [p.name for p in (tmp_path / "inbox").iterdir()] == [f"{request['id']}.json"]


async def test_a_valid_request_is_posted_to_the_webhook_and_receipted(
    vt: VtSide, start_agent: StartAgent, webhook: Webhook, verify_at_hub: Callable[..., Any]
) -> None:
    """The webhook gets the signed envelope with its id, type and digest; then the receipt."""
    await start_agent(handoff=WebhookTarget(webhook.url))
    request = vt.request()
    raw = await vt.send(request)

    receipt = await vt.next_in()

    assert_receipt_of(receipt, request, verify_at_hub)
    [(headers, body)] = webhook.calls
    assert body == raw
    assert headers["X-Vtgw-Message-Id"] == request["id"]
    assert headers["X-Vtgw-Type"] == "enrichment.request"
    assert headers["X-Vtgw-Digest"] == digest(request)


async def test_the_same_message_again_gets_the_same_receipt_and_is_handed_over_once(
    vt: VtSide, start_agent: StartAgent, webhook: Webhook
) -> None:
    """VT's resend (same id, same bytes): the very same receipt again, no second handover."""
    await start_agent(handoff=WebhookTarget(webhook.url))
    request = vt.request()
    await vt.send(request)
    first = await vt.next_in()

    await vt.send(request)
    second = await vt.next_in()

    assert second.body == first.body
    assert second.message_id == first.message_id
    assert len(webhook.calls) == 1


async def test_the_same_id_with_another_body_is_refused_as_a_duplicate_conflict(
    vt: VtSide, start_agent: StartAgent, tmp_path: Path, verify_at_hub: Callable[..., Any]
) -> None:
    """Same id, other digest: a signed error DUPLICATE_CONFLICT; the first stays handed over."""
    await start_agent()
    request = vt.request()
    first_raw = await vt.send(request)
    await vt.next_in()
    other = sign_object(
        request | {"body": request["body"] | {"antwoord_voor": "2026-12-01T16:00:00.000Z"}},
        vt.key,
    )

    other_raw = await vt.send(other)
    message = await vt.next_in()

    error = _json(message)
    assert (message.type, message.user_id) == ("error", PARTY)
    assert error["reply_to"] == request["id"]
    assert error["body"]["code"] == "DUPLICATE_CONFLICT"
    assert isinstance(verify_at_hub(message.body), Accepted)
    assert (tmp_path / "inbox" / f"{request['id']}.json").read_bytes() == first_raw
    kept = list((tmp_path / "state" / "rejected").glob(f"{request['id']}.*.raw"))
    assert [p.read_bytes() for p in kept] == [other_raw]


async def test_a_message_with_a_bad_signature_is_refused_and_kept_in_rejected(
    vt: VtSide, start_agent: StartAgent, tmp_path: Path
) -> None:
    """A body changed after signing: error SIGNATURE_INVALID, the bytes kept with their reason."""
    await start_agent()
    request = vt.request()
    forged = request | {"body": request["body"] | {"reden": "verrijking_anders"}}

    raw = await vt.send(_bytes(forged), message_id=request["id"])
    message = await vt.next_in()

    error = _json(message)
    assert message.type == "error"
    assert error["reply_to"] == request["id"]
    assert error["body"] == {
        "code": "SIGNATURE_INVALID",
        "detail": "signature does not verify",
        "pointer": "/signature/value",
    }
    [kept] = (tmp_path / "state" / "rejected").glob(f"{request['id']}.*.raw")
    assert kept.read_bytes() == raw
    reason = json.loads(kept.with_suffix(".json").read_text(encoding="utf-8"))
    assert (reason["code"], reason["error_sent"]) == ("SIGNATURE_INVALID", error["id"])
    assert not (tmp_path / "inbox").exists() or not any((tmp_path / "inbox").iterdir())


async def test_a_failing_webhook_gets_the_message_again_until_it_takes_it(
    vt: VtSide, start_agent: StartAgent, webhook: Webhook, verify_at_hub: Callable[..., Any]
) -> None:
    """503 from the partner's system: no receipt, the delivery returns; the receipt after a 2xx."""
    webhook.statuses = [503, 503]
    await start_agent(handoff=WebhookTarget(webhook.url))
    request = vt.request()
    await vt.send(request)

    receipt = await vt.next_in()

    assert_receipt_of(receipt, request, verify_at_hub)
    assert [headers["X-Vtgw-Message-Id"] for headers, _ in webhook.calls] == [request["id"]] * 3


async def test_stopping_finishes_the_delivery_in_hand_before_closing(
    vt: VtSide, start_agent: StartAgent, webhook: Webhook, verify_at_hub: Callable[..., Any]
) -> None:
    """Stopped while the partner's system takes a message: handed over, receipted, acked."""
    webhook.delay = 0.5
    agent = await start_agent(handoff=WebhookTarget(webhook.url))
    request = vt.request()
    await vt.send(request)
    await eventually(webhook.called)

    await agent.stop()

    assert_receipt_of(await vt.next_in(), request, verify_at_hub)
    inbox = await vt.channel.get_queue(INBOX, ensure=False)
    assert await inbox.get(fail=False) is None  # acked: not returned to the queue


async def test_the_consumer_resumes_after_the_broker_drops_its_connection(
    vt: VtSide, start_agent: StartAgent, broker: Broker, verify_at_hub: Callable[..., Any]
) -> None:
    """The broker closes jbg's connection: the robust connection comes back and consumes again."""
    await start_agent()
    closed = await _close_connections(broker.vhost, CONNECTION_NAME)
    assert closed >= 1

    request = vt.request()
    await vt.send(request)

    assert_receipt_of(await vt.next_in(timeout=10), request, verify_at_hub)


async def _close_connections(vhost: str, connection_name: str) -> int:
    """Force-close (management API) the connections of `vhost` with this client name."""
    deadline = time.monotonic() + STATS_WAIT
    while time.monotonic() < deadline:
        status, connections = management("GET", "vhosts", vhost, "connections")
        names = [
            c["name"]
            for c in (connections if status == 200 else [])
            if c.get("client_properties", {}).get("connection_name") == connection_name
        ]
        if names:
            for name in names:
                management("DELETE", "connections", name)
            return len(names)
        await asyncio.sleep(0.1)
    return 0


# --- answers -----------------------------------------------------------------------------


async def test_an_answer_posted_to_the_endpoint_is_signed_by_jbg_and_accepted_by_the_hub(
    vt: VtSide,
    start_agent: StartAgent,
    examples: dict[str, dict[str, Any]],
    verify_at_hub: Callable[..., Any],
) -> None:
    """POST /answers: on `vtgw.in` as jbg, thread and case of the request, valid at the hub."""
    agent = await start_agent()
    request = vt.request()
    await vt.send(request)
    await vt.next_in()
    body = examples["enrichment.response"]["body"]

    status, view = await post_answer(
        agent, {"type": "enrichment.response", "reply_to": request["id"], "body": body}
    )
    message = await vt.next_in()

    assert status == 202
    answer = _json(message)
    assert (message.type, message.user_id, message.message_id) == (
        "enrichment.response",
        PARTY,
        view["id"],
    )
    assert answer["id"] == view["id"]
    assert (answer["sender"], answer["recipient"]) == (PARTY, HUB)
    assert (answer["thread"], answer["reply_to"]) == (request["thread"], request["id"])
    assert answer["case"] == request["case"]
    assert answer["body"] == body
    outcome = verify_at_hub(message.body)
    assert isinstance(outcome, Accepted), outcome


async def test_an_answer_that_breaks_the_schema_is_refused_with_its_pointer(
    vt: VtSide, start_agent: StartAgent
) -> None:
    """422 with the first failing place, and nothing is sent."""
    agent = await start_agent()
    request = vt.request()
    await vt.send(request)
    await vt.next_in()

    status, problem = await post_answer(
        agent,
        {"type": "enrichment.response", "reply_to": request["id"], "body": {"personen": "?"}},
    )

    assert status == 422
    assert problem["code"] == "SCHEMA_INVALID"
    assert problem["pointer"].startswith("/body")
    await vt.nothing_in(0.3)


async def test_an_answer_without_receipt_is_sent_again_with_the_same_id_and_sent_at(
    vt: VtSide, start_agent: StartAgent, examples: dict[str, dict[str, Any]]
) -> None:
    """No receipt within the timeout: the same bytes again; VT's receipt then ends the resends."""
    agent = await start_agent(receipt_timeout=timedelta(milliseconds=400))
    request = vt.request()
    await vt.send(request)
    await vt.next_in()
    body = examples["enrichment.response"]["body"]
    status, view = await post_answer(
        agent, {"type": "enrichment.response", "reply_to": request["id"], "body": body}
    )
    assert status == 202
    first = await vt.next_in()

    again = await vt.next_in()

    assert again.body == first.body  # the same id, the same sent_at, the same signature
    assert _json(again)["id"] == view["id"]
    await vt.send(vt.receipt(_json(first)))
    await eventually(lambda: _is(agent, view["id"], "delivered"))
    await vt.nothing_in(1.0)  # no more resends, and VT's receipt is not answered


async def _is(agent: PartnerAgent, answer_id: str, status: str) -> bool:
    return await answer_status(agent, answer_id) == status


async def test_an_answer_file_in_the_outbox_is_sent_and_moved_to_sent(
    vt: VtSide,
    start_agent: StartAgent,
    examples: dict[str, dict[str, Any]],
    tmp_path: Path,
    verify_at_hub: Callable[..., Any],
) -> None:
    """A file in outbox/ is signed, published, and moved to outbox/sent/ under its new id."""
    outbox = tmp_path / "outbox"
    await start_agent(outbox_dir=outbox, listen=None)
    request = vt.request()
    await vt.send(request)
    await vt.next_in()
    answer = {
        "type": "enrichment.response",
        "reply_to": request["id"],
        "body": examples["enrichment.response"]["body"],
    }
    (outbox / ".answer.json.tmp").write_text(json.dumps(answer), encoding="utf-8")
    (outbox / ".answer.json.tmp").rename(outbox / "answer.json")

    message = await vt.next_in()

    assert isinstance(verify_at_hub(message.body), Accepted)
    sent = outbox / "sent" / f"answer.{message.message_id}.json"
    await eventually(lambda: _exists(sent))
    assert json.loads(sent.read_text(encoding="utf-8")) == answer
    assert not (outbox / "answer.json").exists()


async def _exists(path: Path) -> bool:
    return path.exists()


# --- the command -----------------------------------------------------------------------------


async def test_the_command_runs_the_agent_and_stops_cleanly_on_sigterm(
    vt: VtSide, broker: Broker, tmp_path: Path
) -> None:
    """`vtgw-partner run --config`: the partner's own key and contracts; SIGTERM exits 0."""
    config = _command_config(tmp_path, broker)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "adapters.amqp.partner.cli",
        "run",
        "--config",
        str(config),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        cwd=tmp_path,
        env=os.environ | {"PYTHONPATH": str(ROOT)},
    )
    try:
        request = vt.request(sent_at=datetime.now(UTC))
        await vt.send(request)
        message = await vt.next_in(timeout=15)
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = await asyncio.wait_for(process.communicate(), timeout=15)

    assert process.returncode == 0, output.decode()
    receipt = _json(message)
    assert (message.type, message.user_id) == ("receipt", PARTY)
    assert receipt["body"]["digest"] == digest(request)
    assert (tmp_path / "inbox" / f"{request['id']}.json").exists()
    events = [json.loads(line)["event"] for line in output.decode().splitlines()]
    assert "partner_started" in events
    assert events[-1] == "partner_stopped"


def _command_config(tmp_path: Path, broker: Broker) -> Path:
    """A partner's installation: contracts with jbg's and VT's public keys, jbg's key file."""
    contracts = tmp_path / "contracts"
    shutil.copytree(data_dir("contracts"), contracts)
    since = datetime.now(UTC) - timedelta(days=1)
    for party in (PARTY, HUB):
        entry = public_key_entry(vector_key(party), not_before=since, not_after=None)
        add_public_key(contracts / f"{party}.toml", entry)
    write_private_key(tmp_path / "jbg.pem", vector_key(PARTY))
    config = tmp_path / "partner.toml"
    config.write_text(
        f"""
[partner]
party = "{PARTY}"
state_file = "state/jbg.sqlite3"

[amqp]
urls = ["{broker.partner_url}"]

[keys]
private_key = "jbg.pem"
kid = "{vector_key(PARTY).kid}"

[contracts]
directory = "contracts"

[handoff]
inbox_dir = "inbox"

[answers]
listen = "127.0.0.1:0"
""",
        encoding="utf-8",
    )
    return config
