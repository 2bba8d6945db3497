"""A three-node RabbitMQ cluster: quorum queues on every node, and the failover of the clients.

The cluster runs beside the machine's own broker (tests/integration/rabbit_nodes.py).
First the topology: declared through the node list, every queue is a quorum
queue with a member on each node. Then a stream of handovers: a real gateway
and two partner adapters (jbg and lt-nijmegen), each given the three nodes,
while node 1 is stopped and started again, then node 2. VT's case system (the
test, over the API) submits an overdracht.notice per case; each partner's own
system (the test again, behind the adapter's webhook) confirms every notice it
is handed through the adapter's answers endpoint. While each node is down a
handover submitted after the stop must still go the whole way. Afterwards every
message is stored once with its final status, every receipt once, every notice
handed over once, and the ledger says each case moved to its partner, once,
on that partner's confirmation.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from yarl import URL

from adapters.amqp.connection import FailoverConnection, connect
from adapters.amqp.partner import AgentSettings, Partner, PartnerAgent, WebhookTarget
from adapters.amqp.partner.ledger import AnswerStatus
from adapters.amqp.topology import DEAD_QUEUE, IN_QUEUE, declare_topology, inbox_queue
from adapters.store.engine import create_engine
from gateway.bootstrap import Paths, load_core
from gateway.cli import main as cli
from gateway.service.pipeline import Verifier
from tests.integration.amqp_support import UNREACHABLE_PORT
from tests.integration.gateway_rig import GatewayRig, postgres_database
from tests.integration.partner_side import example, notice_body
from tests.integration.rabbit_nodes import RabbitNode, await_cluster, rabbit_cluster

pytestmark = pytest.mark.integration

PARTNERS = {"jbg": 0, "lt-nijmegen": 1}
"""The partners of the stream, each with the node its list of nodes starts with."""
GEMEENTE = "GM0268"  # Nijmegen: in both partners' werkgebied
HANDOVERS_AT_LEAST = 80
PACE = 0.1  # seconds between two handovers submitted: the stream outlasts both disturbances
WAIT = 120.0  # seconds: the longest the cluster or the stream may take to get somewhere


# --- the cluster ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[RabbitNode]]:
    with rabbit_cluster(tmp_path_factory.mktemp("rabbit")) as nodes:
        yield nodes


@contextmanager
def cluster_vhost(node: RabbitNode) -> Iterator[str]:
    """A new vhost on the cluster (created through `node`) that guest may use; deleted after."""
    name = f"vtgw-cluster-{secrets.token_hex(4)}"
    status, body = node.management("PUT", "vhosts", name)
    if status not in {201, 204}:
        pytest.fail(f"cannot create vhost {name} on the cluster: {status} {body}")
    permissions = {"configure": ".*", "write": ".*", "read": ".*"}
    status, body = node.management("PUT", "permissions", name, "guest", body=permissions)
    if status not in {201, 204}:
        pytest.fail(f"cannot give guest {name}: {status} {body}")
    try:
        yield name
    finally:
        node.management("DELETE", "vhosts", name)


def quorum_queues(node: RabbitNode, vhost: str) -> dict[str, dict[str, Any]]:
    """Every queue of `vhost` as `node`'s management API shows it, by name."""
    status, listed = node.management("GET", "queues", vhost)
    assert status == 200, listed
    queues = {}
    for queue in listed:
        status, body = node.management("GET", "queues", vhost, queue["name"])
        assert status == 200, body
        queues[queue["name"]] = body
    return queues


async def replicas_online(cluster: list[RabbitNode], vhost: str) -> None:
    """Wait until every queue of `vhost` has all its members online again."""
    names = {node.name for node in cluster}
    lagging: list[str] = []
    for _ in range(int(WAIT)):
        queues = await asyncio.to_thread(quorum_queues, cluster[-1], vhost)
        lagging = [name for name, q in queues.items() if set(q.get("online", ())) != names]
        if not lagging:
            return
        await asyncio.sleep(1)
    pytest.fail(f"queues without all their members online after {WAIT} s: {lagging}")


async def test_the_topology_on_the_cluster_is_quorum_queues_on_every_node(
    cluster: list[RabbitNode],
) -> None:
    """Declared through the node list, each queue is a quorum queue with a member on each node."""
    names = {node.name for node in cluster}
    with cluster_vhost(cluster[0]) as vhost:
        connection = await connect(
            [node.amqp_url(vhost) for node in cluster], name="vtgw test_cluster topology"
        )
        async with connection:
            await declare_topology(await connection.channel(), PARTNERS)
        queues = quorum_queues(cluster[2], vhost)  # asked of another node: the cluster's view
        expected = {IN_QUEUE, DEAD_QUEUE, *(inbox_queue(party) for party in PARTNERS)}
        assert set(queues) == expected
        for name, queue in queues.items():
            assert queue["type"] == "quorum", name
            assert set(queue["members"]) == names, name
            assert set(queue["online"]) == names, name
            assert queue["leader"] in names, name


async def test_a_node_that_does_not_answer_is_passed_over(cluster: list[RabbitNode]) -> None:
    """The first address of the list refuses: the connection is made to the next node."""
    with cluster_vhost(cluster[0]) as vhost:
        refusing = f"amqp://guest:guest@127.0.0.1:{UNREACHABLE_PORT}/{vhost}"
        connection = await connect(
            [refusing, cluster[1].amqp_url(vhost)], name="vtgw test_cluster passed over"
        )
        async with connection:
            assert isinstance(connection, FailoverConnection)
            assert connection.url.port == cluster[1].amqp_port
            channel = await connection.channel()
            await channel.declare_queue("vtgw.test.passed-over", exclusive=True)


# --- the stream: VT's case system, the partners' systems ------------------------------------


@dataclass(frozen=True)
class Submitted:
    """One handover VT's case system submitted: to whom, for which case, as which in line."""

    party: str
    case_ref: str
    number: int


@dataclass
class PartnerSystems:
    """The partners' own systems: the webhook their adapters hand over to; they confirm.

    Every hand-over is counted; each notice handed over is confirmed through
    the adapter's answers endpoint (with the notice id as idempotency key).
    """

    agents: dict[str, PartnerAgent] = field(default_factory=dict)
    handed: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    confirmations: dict[str, str] = field(default_factory=dict)  # notice id -> confirmation id
    refusals: list[str] = field(default_factory=list)
    to_confirm: asyncio.Queue[tuple[str, str]] = field(default_factory=asyncio.Queue)

    async def webhook(self, request: web.Request) -> web.Response:
        party = request.match_info["party"]
        message_id = request.headers["X-Vtgw-Message-Id"]
        self.handed[message_id].append(party)
        if request.headers["X-Vtgw-Type"] == "overdracht.notice":
            self.to_confirm.put_nowait((party, message_id))
        return web.Response(status=200)

    async def confirm(self, http: aiohttp.ClientSession) -> None:
        """Confirm each notice handed over, until cancelled; a refusal is kept for the test."""
        body = example("overdracht.confirmation")["body"]
        while True:
            party, notice_id = await self.to_confirm.get()
            host, port = self.agents[party].listening or ("", 0)
            answer = {"type": "overdracht.confirmation", "reply_to": notice_id, "body": body}
            try:
                async with http.post(
                    f"http://{host}:{port}/answers",
                    json=answer,
                    headers={"Idempotency-Key": notice_id},
                ) as response:
                    reply = await response.json()
                    if response.status == 202:
                        self.confirmations[notice_id] = reply["id"]
                        continue
                    self.refusals.append(f"{party} {notice_id}: {response.status} {reply}")
            except aiohttp.ClientError as error:
                self.refusals.append(f"{party} {notice_id}: {error!r}")


@dataclass
class Stream:
    """The handovers submitted so far, and the engine that reads the gateway's store."""

    rig: GatewayRig
    engine: AsyncEngine
    systems: PartnerSystems
    notices: dict[str, Submitted] = field(default_factory=dict)
    disturbed: asyncio.Event = field(default_factory=asyncio.Event)
    submitting: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.submitting = asyncio.create_task(self.submit())

    async def stop(self) -> None:
        """Wait for the last handover once disturbed; cancel the stream if it is still going."""
        if self.submitting is None:
            return
        if not self.disturbed.is_set():
            self.submitting.cancel()
        await asyncio.gather(self.submitting, return_exceptions=True)

    def check_submitting(self) -> None:
        """Raise what made the stream fail: a notice or a confirmation refused."""
        assert not self.systems.refusals, self.systems.refusals
        done = self.submitting is not None and self.submitting.done()
        if done and self.submitting is not None and not self.submitting.cancelled():
            self.submitting.result()

    async def submit(self) -> None:
        """One handover after another, paced, until both disturbances are over."""
        bodies = {party: notice_body(party) for party in PARTNERS}
        parties = list(PARTNERS)
        number = 0
        while not self.disturbed.is_set() or number < HANDOVERS_AT_LEAST:
            party = parties[number % len(parties)]
            case_ref = f"VT-2026-{700000 + number:06d}"
            status, created = await self.post_notice(
                {
                    "type": "overdracht.notice",
                    "case": {"ref": case_ref, "gemeente": GEMEENTE},
                    "body": bodies[party],
                    "recipients": [party],
                }
            )
            assert status == 201, f"{created}\n{self.rig.log_tail()}"
            self.notices[created["messages"][0]["id"]] = Submitted(party, case_ref, number)
            number += 1
            await asyncio.sleep(PACE)

    async def post_notice(self, request: dict[str, Any]) -> tuple[int, Any]:
        """POST it as VT's case system does: again after a 503 (nothing was stored then)."""
        for _ in range(20):
            status, created = await asyncio.to_thread(self.rig.api, "POST", "/messages", request)
            if status != 503:
                break
            await asyncio.sleep(0.2)
        return status, created

    async def confirmed(self) -> set[str]:
        """The notices whose handover the gateway holds as confirmed."""
        async with self.engine.connect() as db:
            rows = await db.execute(text("SELECT id FROM overdrachten WHERE state = 'confirmed'"))
            return {row[0] for row in rows}

    async def goes_through_while(self, what: str) -> None:
        """For each partner, a handover submitted from now on is confirmed end to end."""
        mark = len(self.notices)
        waiting = set(PARTNERS)
        for _ in range(int(WAIT * 2)):
            self.check_submitting()
            confirmed = await self.confirmed()
            waiting -= {
                s.party for i, s in self.notices.items() if s.number >= mark and i in confirmed
            }
            if not waiting:
                return
            await asyncio.sleep(0.5)
        pytest.fail(f"no handover to {sorted(waiting)} went through while {what}")

    async def all_confirmed(self) -> None:
        """Wait until every notice is confirmed and every confirmation receipted at the partner."""
        systems = self.systems
        left: set[str] = set()
        for _ in range(int(WAIT * 2)):
            self.check_submitting()
            left = set(self.notices) - await self.confirmed()
            if not left:
                left = {
                    notice
                    for notice, confirmation in systems.confirmations.items()
                    if not await delivered(systems.agents[self.notices[notice].party], confirmation)
                }
                if not left and len(systems.confirmations) == len(self.notices):
                    return
            await asyncio.sleep(0.5)
        pytest.fail(
            f"{len(left)} of {len(self.notices)} handovers not through after {WAIT} s"
            f"\n{self.rig.log_tail()}"
        )


async def delivered(agent: PartnerAgent, answer_id: str) -> bool:
    assert agent.answers is not None
    answer = await agent.answers.status(answer_id)
    return answer is not None and answer.status is AnswerStatus.DELIVERED


def node_urls(cluster: list[RabbitNode], url: str, start: int) -> tuple[str, ...]:
    """A partner's URL (user, password, vhost) for each node, the list starting at `start`."""
    base = URL(url)
    ordered = cluster[start:] + cluster[:start]
    return tuple(str(base.with_port(node.amqp_port)) for node in ordered)


@pytest.fixture
def rig(cluster: list[RabbitNode], tmp_path: Path) -> Iterator[GatewayRig]:
    """A gateway on PostgreSQL whose broker is the cluster, partners provisioned through node 1."""
    with (
        cluster_vhost(cluster[0]) as vhost,
        postgres_database(f"vtgw_e2e_cluster_{os.getpid()}") as dsn,
    ):
        rig = GatewayRig(
            tmp_path / "gateway",
            vhost,
            dsn,
            amqp_urls=tuple(node.amqp_url(vhost) for node in cluster),
            management_url=cluster[0].management_url,
        )
        rig.root.mkdir()
        rig.prepare()
        rig.start()
        try:
            yield rig
        finally:
            if rig.process is not None and rig.process.poll() is None:
                rig.process.kill()
                rig.process.wait(timeout=10)


@pytest.fixture
async def systems(
    rig: GatewayRig, cluster: list[RabbitNode], tmp_path: Path
) -> AsyncIterator[PartnerSystems]:
    """The partners' systems behind a webhook, and each partner's adapter given the node list."""
    systems = PartnerSystems()
    app = web.Application()
    app.router.add_post("/hook/{party}", systems.webhook)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    core = load_core(Paths.defaults(contracts=rig.contracts_dir))
    async with AsyncExitStack() as stack, aiohttp.ClientSession() as http:
        stack.push_async_callback(runner.cleanup)
        for party, start in PARTNERS.items():
            partner = Partner(
                Verifier(core.contracts, core.validator, party), rig.signing_key(party)
            )
            settings = AgentSettings(
                amqp_urls=node_urls(cluster, rig.credentials[party], start),
                state_file=tmp_path / party / "state.db",
                handoff=WebhookTarget(f"http://{host}:{port}/hook/{party}"),
                listen=("127.0.0.1", 0),
                retry_delay=timedelta(milliseconds=500),
            )
            agent = PartnerAgent(partner, settings)
            systems.agents[party] = await stack.enter_async_context(agent)
        confirming = [asyncio.create_task(systems.confirm(http)) for _ in range(4)]
        try:
            yield systems
        finally:
            for task in confirming:
                task.cancel()
            await asyncio.gather(*confirming, return_exceptions=True)


async def test_two_nodes_stopped_in_turn_mid_stream_lose_nothing_and_do_nothing_twice(
    cluster: list[RabbitNode], rig: GatewayRig, systems: PartnerSystems
) -> None:
    """Node 1 stopped and started mid-stream, then node 2: everything once, and all the way."""
    engine = create_engine(rig.dsn)
    stream = Stream(rig, engine, systems)
    stream.start()
    try:
        await stream.goes_through_while("the cluster is whole")
        for node in cluster[:2]:
            await asyncio.to_thread(node.stop)
            await stream.goes_through_while(f"{node.name} is down")
            await asyncio.to_thread(node.start)
            await asyncio.to_thread(await_cluster, cluster)
            await replicas_online(cluster, rig.vhost)  # a majority again, on every queue
        stream.disturbed.set()
        await stream.stop()
        stream.check_submitting()
        await stream.all_confirmed()
        await check_everything_once(stream, systems)
    finally:
        await stream.stop()
        await engine.dispose()
    await check_still_running(rig, systems)
    verified = await asyncio.to_thread(
        cli, ["ledger", "verify", "--config", str(rig.root / "gateway.toml")]
    )
    assert verified == 0, "the ledger's chain is broken"


async def check_everything_once(stream: Stream, systems: PartnerSystems) -> None:
    """Each message once with its final status, each receipt once, the ledger as sent."""
    notices = stream.notices
    confirmations = systems.confirmations
    partners = tuple(PARTNERS)
    async with stream.engine.connect() as db:
        sent = (
            await db.execute(
                text(
                    "SELECT m.id, m.recipient, m.status, m.final, "
                    "count(*) FILTER (WHERE s.status = 'delivered') "
                    "FROM messages m JOIN message_status s ON s.message_seq = m.seq "
                    "WHERE m.sender = 'vt-gz' AND m.type = 'overdracht.notice' "
                    "GROUP BY m.id, m.recipient, m.status, m.final"
                )
            )
        ).all()
        answered = (
            await db.execute(
                text(
                    "SELECT m.id, m.sender, m.reply_to, m.status, "
                    "count(*) FILTER (WHERE s.status = 'received') "
                    "FROM messages m JOIN message_status s ON s.message_seq = m.seq "
                    "WHERE m.type = 'overdracht.confirmation' "
                    "GROUP BY m.id, m.sender, m.reply_to, m.status"
                )
            )
        ).all()
        receipts = (
            await db.execute(
                text(
                    "SELECT reply_to, sender, id FROM messages "
                    "WHERE type = 'receipt' AND sender = ANY(:partners)"
                ),
                {"partners": list(partners)},
            )
        ).all()
        inbox: dict[str, str] = dict(
            (
                await db.execute(
                    text(
                        "SELECT message_id, receipt_id FROM inbox "
                        "WHERE sender = ANY(:partners) AND receipt_id IS NOT NULL"
                    ),
                    {"partners": list(partners)},
                )
            ).all()
        )
        ledger = (
            await db.execute(
                text("SELECT case_ref, kind, holder, evidence FROM ledger ORDER BY sequence")
            )
        ).all()

    # Every notice stored once, delivered to its partner once (one receipt), final.
    assert {row[0] for row in sent} == set(notices)
    for notice_id, recipient, status, final, deliveries in sent:
        assert (recipient, status, final) == (notices[notice_id].party, "delivered", True)
        assert deliveries == 1, f"{notice_id} was delivered {deliveries} times"
    by_notice: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for reply_to, sender, receipt_id in receipts:
        by_notice[reply_to].append((sender, receipt_id))
    for notice_id, submitted in notices.items():
        assert len(by_notice[notice_id]) == 1, f"{notice_id}: receipts {by_notice[notice_id]}"
        sender, receipt_id = by_notice[notice_id][0]
        assert sender == submitted.party
        held = await agent_received(systems.agents[submitted.party], notice_id)
        assert held == receipt_id, f"{notice_id}: the partner sent another receipt"

    # Every notice handed over once, to its partner only.
    handed_notices = {m: parties for m, parties in systems.handed.items() if m in notices}
    assert set(handed_notices) == set(notices)
    for notice_id, parties in handed_notices.items():
        assert parties == [notices[notice_id].party], f"{notice_id} handed over {parties}"

    # Every confirmation stored once, received once, receipted once with the receipt the
    # partner's adapter holds.
    assert {row[0] for row in answered} == set(confirmations.values())
    for confirmation_id, sender, reply_to, status, received in answered:
        assert confirmations[reply_to] == confirmation_id
        assert (sender, status) == (notices[reply_to].party, "received")
        assert received == 1, f"{confirmation_id} was received {received} times"
        answers = systems.agents[sender].answers
        assert answers is not None
        answer = await answers.status(confirmation_id)
        assert answer is not None
        assert answer.status is AnswerStatus.DELIVERED
        assert answer.outcome_id == inbox[confirmation_id], "another receipt was sent"

    # The ledger: per case the safety assessment, then the partner holds it on its confirmation.
    entries: dict[str, list[tuple[str, str | None, dict[str, str]]]] = defaultdict(list)
    for case_ref, kind, holder, evidence in ledger:
        entries[case_ref].append((kind, holder, json.loads(evidence)))
    assert len(ledger) == 2 * len(notices)
    assert set(entries) == {s.case_ref for s in notices.values()}
    for notice_id, submitted in notices.items():
        (first, _, _), (kind, holder, evidence) = entries[submitted.case_ref]
        assert (first, kind, holder) == (
            "veiligheidsbeoordeling",
            "overdracht_bevestigd",
            submitted.party,
        )
        assert evidence["confirmation_id"] == confirmations[notice_id]


async def agent_received(agent: PartnerAgent, notice_id: str) -> str | None:
    """The receipt id the partner's adapter holds for a notice it received."""
    assert agent.ledger is not None
    received = await agent.ledger.received_by_id(notice_id)
    return None if received is None else received.receipt_id


async def check_still_running(rig: GatewayRig, systems: PartnerSystems) -> None:
    """The gateway is up and ready (its broker connection open); the adapters answer."""
    assert rig.process is not None
    assert rig.process.poll() is None, "the gateway died"
    async with aiohttp.ClientSession() as http:
        async with http.get(rig.url("/readyz")) as response:
            assert response.status == 200, await response.text()
        for party, agent in systems.agents.items():
            host, port = agent.listening or ("", 0)
            async with http.get(f"http://{host}:{port}/healthz") as response:
                assert response.status == 200, party
