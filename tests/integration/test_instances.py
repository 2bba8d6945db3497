"""Several instances: `vt-gateway run` processes on one store and one broker share the work.

Two and three processes of one gateway consume `vtgw.in` side by side, claim
the outbox and the timers with SKIP LOCKED, and answer VT's API alike, with no
leader. The partners answer what the gateway sends them, as their systems do:
the lokale teams of Nijmegen and Wijchen and Jeugdbescherming receipt and
confirm their handovers, the teams then report regie changes on their cases
and hand each back to VT; Moviera receipts its handovers but confirms none
(their terms lie in the past, so the deadline timers fire at once); the Raad
never answers (its enrichment requests go out again on one-second timers until
undeliverable). VT's case system submits the handovers and requests through
every instance's API in turn.

Afterwards every message is stored once with its final status, every timer
fired once, every receipt was sent once, every ledger entry written once, and
each instance did part of the work. Then the same with one of two instances
killed mid-stream: the survivor takes over its unacknowledged deliveries and
its claimed outbox rows, and nothing is done twice in effect. Staff see on
either instance's dashboard what the other processed; and a subject's timers
fire in their order whichever instance claims them.

The partners send $VTGW_INSTANCES_MESSAGES messages in each run (default
500, so that the suite stays short; the issue's 10,000 when run by hand:
VTGW_INSTANCES_MESSAGES=10000 .venv/bin/pytest tests/integration/test_instances.py).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from sqlalchemy import text

from adapters.store import SqlStore, open_store
from adapters.store.engine import create_engine
from gateway.bootstrap import Core, Paths, load_core
from gateway.cli import main as cli
from gateway.domain.calendar import WorkingDayCalendar
from gateway.domain.canonical import digest
from gateway.domain.contracts import Contracts, Transport
from gateway.domain.delivery import Direction, Status, StatusChange, TimerKind
from gateway.domain.envelope import CaseRef, format_timestamp
from gateway.domain.errors import TransientError
from gateway.domain.handover import OverdrachtState
from gateway.service.outgoing import Hub
from gateway.service.pipeline import Verifier
from gateway.service.ports import StoredMessage, Timer
from gateway.service.receiving import Delivery, Disposition, receive
from gateway.service.relay import Claim, relay_once
from gateway.service.submission import SubmitMessage, submit
from gateway.vectors import sign_object, signer_key, vector_key, with_test_keys
from tests.fakes.publisher import RecordingPublisher
from tests.integration.amqp_support import management
from tests.integration.exactly_once import ReceiptCollector, check_received_once, send_surely
from tests.integration.gateway_rig import GatewayProcess, GatewayRig, gateway_rig
from tests.integration.partner_side import WirePartner, example

pytestmark = pytest.mark.integration

MESSAGES = int(os.environ.get("VTGW_INSTANCES_MESSAGES", "500"))
WINDOW = 200  # the partners' messages in flight at once, as bench/throughput.py keeps them
RAAD = {
    "rvdk": {
        'receipt_timeout = "PT15M"': 'receipt_timeout = "PT1S"',
        "attempt_limit = 8": "attempt_limit = 3",
    }
}
RAAD_ATTEMPTS = 3
TEAMS = {"lt-nijmegen": "GM0268", "lt-wijchen": "GM0296"}


@dataclass(frozen=True)
class Load:
    """How many of each, so that the partners send about `messages` in all.

    A team's case costs a receipt, a confirmation and a case.return besides
    its regie changes; a Jeugdbescherming handover a receipt and a
    confirmation; a Moviera handover a receipt. (The teams also receipt the
    case.notice that tells them of a handover to another party.)
    """

    messages: int

    @property
    def team_cases(self) -> int:
        return max(4, self.messages // 50)

    @property
    def jbg_cases(self) -> int:
        return max(3, self.messages // 200)

    @property
    def moviera_cases(self) -> int:
        return max(3, self.messages // 200)

    @property
    def raad_requests(self) -> int:
        return max(3, self.messages // 200)

    def regie_changes(self) -> list[int]:
        """Regie changes per team case, adding up to what the rest leaves."""
        rest = self.messages - 3 * self.team_cases - 2 * self.jbg_cases - self.moviera_cases
        share, extra = divmod(max(rest, self.team_cases), self.team_cases)
        return [share + (1 if index < extra else 0) for index in range(self.team_cases)]


@dataclass(frozen=True)
class Case:
    ref: str
    gemeente: str
    party: str  # who VT hands it over to, or asks (the Raad)

    @property
    def json(self) -> dict[str, str]:
        return {"ref": self.ref, "gemeente": self.gemeente}


class Partner:
    """A partner's system on the wire: answers what the gateway sends, sends its own stream.

    Every message of the gateway that expects one gets a receipt (a copy of
    one already answered gets nothing: the partner dedupes on the id). A
    handover is confirmed when `confirms`; a team then sends its case's regie
    changes one by one and, once all have their receipts, a case.return.
    Messages that earn a receipt hold a place in the shared `window` until it
    comes.
    """

    def __init__(
        self, rig: GatewayRig, party: str, window: asyncio.Semaphore, *, confirms: bool
    ) -> None:
        self.party, self.window, self.confirms = party, window, confirms
        self.wire = WirePartner(party, rig.credentials[party], rig.signing_key(party))
        self.inbox = ReceiptCollector(rig.credentials[party], party, react=self.on_message)
        self.sent: dict[str, dict[str, Any]] = {}
        self.awaiting: set[str] = set()
        self.answered: set[str] = set()
        self.errors: list[dict[str, Any]] = []
        self.regie_plan: dict[str, int] = {}  # case ref -> regie changes to send
        self.regie_left: dict[str, int] = {}
        self.returned: set[str] = set()  # cases handed back, receipt in
        self.confirmed: set[str] = set()  # cases whose confirmation has its receipt
        self._tasks: set[asyncio.Task[None]] = set()
        self.failure: BaseException | None = None

    async def on_message(self, envelope: dict[str, Any]) -> None:
        kind = envelope["type"]
        if kind in {"receipt", "error"}:
            if kind == "error":
                self.errors.append(envelope)
            if envelope["reply_to"] in self.awaiting:
                self.awaiting.discard(envelope["reply_to"])
                self.window.release()
                if kind == "receipt":
                    self._receipted(self.sent[envelope["reply_to"]])
            return
        if envelope["id"] in self.answered:
            return
        self.answered.add(envelope["id"])
        self._spawn(self.send(self._receipt_for(envelope), earns_receipt=False))
        if kind == "overdracht.notice" and self.confirms:
            confirmation = self.wire.envelope(
                "overdracht.confirmation",
                reply_to=envelope["id"],
                thread=envelope["thread"],
                case=envelope["case"],
            )
            self._spawn(self.send(confirmation))

    def _receipted(self, message: dict[str, Any]) -> None:
        ref = message["case"]["ref"]
        if message["type"] == "overdracht.confirmation":
            self.confirmed.add(ref)
            if ref in self.regie_plan:
                self._spawn(self._regie_stream(message["case"]))
        elif message["type"] == "regie.change":
            self.regie_left[ref] -= 1
            if self.regie_left[ref] == 0:
                self._spawn(self.send(self.wire.envelope("case.return", case=message["case"])))
        elif message["type"] == "case.return":
            self.returned.add(ref)

    async def _regie_stream(self, case: dict[str, str]) -> None:
        count = self.regie_plan[case["ref"]]
        self.regie_left[case["ref"]] = count
        for _ in range(count):
            await self.send(self.wire.envelope("regie.change", case=case))

    def _receipt_for(self, envelope: dict[str, Any]) -> dict[str, Any]:
        return self.wire.envelope(
            "receipt",
            reply_to=envelope["id"],
            thread=envelope["thread"],
            body={"digest": digest(envelope), "received_at": envelope["sent_at"]},
        )

    async def send(self, message: dict[str, Any], *, earns_receipt: bool = True) -> None:
        if earns_receipt:
            await self.window.acquire()
            self.awaiting.add(message["id"])
        self.sent[message["id"]] = message
        await send_surely(self.wire, message)

    def _spawn(self, work: Awaitable[None]) -> None:
        async def guarded() -> None:
            try:
                await work
            except BaseException as error:  # seen by the test, not lost in a task
                self.failure = error
                raise

        task = asyncio.create_task(guarded())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def ids(self, *, earning_receipt: bool) -> set[str]:
        return {
            message_id
            for message_id, message in self.sent.items()
            if (message["type"] != "receipt") is earning_receipt
        }


@dataclass
class World:
    """The gateway's processes, the partners, and the cases VT opened through the API."""

    rig: GatewayRig
    gateways: list[GatewayProcess]
    load: Load
    partners: dict[str, Partner] = field(default_factory=dict)
    cases: dict[str, Case] = field(default_factory=dict)  # by ref
    notices: dict[str, Case] = field(default_factory=dict)  # by the notice's message id
    requests: dict[str, Case] = field(default_factory=dict)  # the Raad's, by message id

    def cases_of(self, party: str) -> list[Case]:
        return [case for case in self.cases.values() if case.party == party]


def plan_cases(load: Load) -> list[Case]:
    """The cases of the run, each with a fresh ref: handovers first, then the Raad's requests."""
    parties = [list(TEAMS)[number % len(TEAMS)] for number in range(load.team_cases)]
    parties += ["jbg"] * load.jbg_cases + ["moviera"] * load.moviera_cases
    parties += ["rvdk"] * load.raad_requests
    return [
        Case(f"VT-2026-{number:06d}", TEAMS.get(party, "GM0268"), party)
        for number, party in enumerate(parties, start=100001)
    ]


def submission(case: Case, today: date, now: datetime) -> dict[str, Any]:
    """VT's case system's request: a notice (Moviera's term already past) or the Raad's request."""
    if case.party == "rvdk":
        body = example("enrichment.request")["body"]
        body["antwoord_voor"] = format_timestamp(now - timedelta(days=1))  # overdue at once
        return {
            "type": "enrichment.request",
            "case": case.json,
            "body": body,
            "recipients": ["rvdk"],
        }
    body = example("overdracht.notice")["body"]
    term = today - timedelta(days=10) if case.party == "moviera" else today + timedelta(days=14)
    body["geadviseerde_termijn"] = {"uiterlijk": term.isoformat()}
    if case.party == "jbg":  # §7.1 D: no monitoring after a handover to a GI
        body["monitoring"] = {"afgesproken": False, "reden_geen_monitoring": "overdracht_aan_gi"}
    return {
        "type": "overdracht.notice",
        "case": case.json,
        "body": body,
        "recipients": [case.party],
    }


async def submit_all(world: World) -> None:
    """Every case through the API of each instance in turn, a few requests at a time."""
    now = datetime.now(UTC)
    today = now.date()
    lanes = asyncio.Semaphore(4)

    async def submit(index: int, case: Case) -> None:
        async with lanes:
            for _ in range(20):  # 503 says: try again (the store was busy or away)
                status, created = await asyncio.to_thread(
                    world.rig.api,
                    "POST",
                    "/messages",
                    submission(case, today, now),
                    on=index % len(world.gateways),
                )
                if status != 503:
                    break
                await asyncio.sleep(0.2)
        assert status == 201, created
        sent = created["messages"][0]
        assert sent["recipient"] == case.party
        (world.requests if case.party == "rvdk" else world.notices)[sent["id"]] = case

    await asyncio.gather(*(submit(index, case) for index, case in enumerate(world.cases.values())))


Disturbance = Callable[[World], Awaitable[None]]


async def run_world(
    rig: GatewayRig, gateways: list[GatewayProcess], load: Load, disturb: Disturbance | None = None
) -> World:
    """The partners and VT's case system at work until everything they started has ended."""
    world = World(rig, gateways, load, cases={case.ref: case for case in plan_cases(load)})
    window = asyncio.Semaphore(WINDOW)
    for party in [*TEAMS, "jbg", "moviera"]:
        world.partners[party] = Partner(rig, party, window, confirms=party != "moviera")
    team_cases = [case for case in world.cases.values() if case.party in TEAMS]
    for case, count in zip(team_cases, load.regie_changes(), strict=True):
        world.partners[case.party].regie_plan[case.ref] = count
    done = asyncio.Event()
    readers = []
    for partner in world.partners.values():
        await partner.wire.__aenter__()
        readers.append(asyncio.create_task(partner.inbox.run(done)))
    try:
        disturbing = asyncio.create_task(disturb(world)) if disturb is not None else None
        await submit_all(world)
        await until(lambda: partners_done(world), world, "the partners' work to end")
        if disturbing is not None:
            await disturbing
        await until(lambda: gateway_done(world), world, "the gateway's work to end")
    finally:
        done.set()
        await asyncio.gather(*readers, return_exceptions=True)
        for partner in world.partners.values():
            await partner.wire.__aexit__()
    return world


def patience(load: Load) -> float:
    """Seconds to wait for the work to end: generous, so that a slow machine does not fail."""
    return 180 + load.messages / 10


async def until(done: Callable[[], Awaitable[bool] | bool], world: World, what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + patience(world.load)
    while loop.time() < deadline:
        for party, partner in world.partners.items():
            if partner.failure is not None:
                raise partner.failure
            assert not partner.errors, f"the gateway refused {party}: {partner.errors[:3]}"
        outcome = done()
        if outcome if isinstance(outcome, bool) else await outcome:
            return
        await asyncio.sleep(0.25)
    progress = {
        party: (len(p.sent), len(p.awaiting), len(p.confirmed), len(p.returned), len(p.errors))
        for party, p in world.partners.items()
    }
    pytest.fail(
        f"waited {patience(world.load):.0f} s for {what}; partners (sent, awaiting, confirmed, "
        f"returned, errors): {progress}\n{world.rig.log_tail(15)}",
        pytrace=False,
    )


def partners_done(world: World) -> bool:
    """Every team case handed back, every Jeugdbescherming handover confirmed, Moviera's
    notices receipted, nothing in flight."""
    if len(world.notices) + len(world.requests) < len(world.cases):
        return False
    partners = world.partners
    teams_done = all(
        {c.ref for c in world.cases_of(team)} <= partners[team].returned for team in TEAMS
    )
    jbg_done = {c.ref for c in world.cases_of("jbg")} <= partners["jbg"].confirmed
    moviera = {notice for notice, case in world.notices.items() if case.party == "moviera"}
    moviera_done = moviera <= partners["moviera"].answered
    return (
        teams_done and jbg_done and moviera_done and not any(p.awaiting for p in partners.values())
    )


async def gateway_done(world: World) -> bool:
    """The Raad's requests given up, Moviera's terms run out, the outbox and due timers empty."""
    rows = await query(
        world.rig,
        "SELECT "
        " (SELECT count(*) FROM messages WHERE recipient = 'rvdk' AND status = 'undeliverable'),"
        " (SELECT count(*) FROM escalations WHERE party = 'moviera'),"
        " (SELECT count(*) FROM outbox WHERE published_at IS NULL),"
        " (SELECT count(*) FROM timers WHERE fired_at IS NULL AND cancelled_at IS NULL"
        "  AND due_at <= now())",
    )
    undeliverable, escalations, outbox, due = rows[0]
    return (
        undeliverable == len(world.requests)
        and escalations == world.load.moviera_cases
        and outbox == 0
        and due == 0
    )


async def query(rig: GatewayRig, sql: str, **params: Any) -> list[Any]:
    engine = create_engine(rig.dsn)
    try:
        async with engine.connect() as connection:
            return list((await connection.execute(text(sql), params)).all())
    finally:
        await engine.dispose()


# --- the checks ---------------------------------------------------------------------------


async def check_partners_messages(world: World, *, receipt_copies_once: bool) -> None:
    """Each partner's message stored once, received once; each earned one receipt, sent once."""
    for party, partner in world.partners.items():
        assert not partner.errors, f"{party} got errors: {partner.errors[:3]}"
        await check_received_once(
            world.rig.dsn,
            party,
            partner.ids(earning_receipt=True),
            partner.inbox,
            receipt_copies_once=receipt_copies_once,
        )
        rows = await query(
            world.rig,
            "SELECT m.id, count(s.seq) FILTER (WHERE s.status = 'received'), m.status "
            "FROM messages m JOIN message_status s ON s.message_seq = m.seq "
            "WHERE m.sender = :party AND m.type = 'receipt' GROUP BY m.id, m.status",
            party=party,
        )
        assert {row[0] for row in rows} == partner.ids(earning_receipt=False)
        assert all(row[1:] == (1, "received") for row in rows), "a receipt was stored twice"


async def check_gateway_messages(world: World, *, receipt_copies_once: bool) -> None:
    """What the gateway sent: each message once, with its final status, sent as often as it
    should have been (once; the Raad's requests once per attempt)."""
    rows = await query(
        world.rig,
        "SELECT m.id, m.recipient, m.type, m.status, m.attempts,"
        " (SELECT count(*) FROM outbox o WHERE o.message_seq = m.seq),"
        " (SELECT count(*) FROM message_status s WHERE s.message_seq = m.seq"
        "  AND s.status = 'sent'),"
        " (SELECT count(*) FROM message_status s WHERE s.message_seq = m.seq AND s.final)"
        " FROM messages m WHERE m.sender = 'vt-gz'",
    )
    answering = set(world.partners)
    for message_id, recipient, kind, status, attempts, queued, sent, finals in rows:
        if kind == "receipt":
            assert status == "sent"
            if receipt_copies_once:
                assert (queued, sent) == (1, 1), f"receipt {message_id} was sent {sent} times"
            else:  # a delivery taken over after a crash is answered with the same receipt again
                assert queued == sent >= 1
        elif recipient == "rvdk":
            assert (status, finals) == ("undeliverable", 1)
            assert attempts == queued == sent == RAAD_ATTEMPTS, (
                f"the Raad's request {message_id}: {attempts} attempts, "
                f"{queued} times queued, {sent} times sent"
            )
        elif recipient in answering:
            assert (status, finals, attempts, queued, sent) == ("delivered", 1, 1, 1, 1), (
                message_id,
                kind,
                status,
            )
    notices = {row[0] for row in rows if row[2] == "overdracht.notice"}
    assert notices == set(world.notices)


async def check_timers(world: World) -> None:
    """Each timer fired once in effect; each alert and escalation once."""
    raad = list(world.requests)
    moviera = [i for i, c in world.notices.items() if c.party == "moviera"]
    confirmed = [i for i, c in world.notices.items() if c.party != "moviera"]
    timers = await query(
        world.rig,
        "SELECT subject_id, kind, fired_at IS NOT NULL, cancelled_at IS NOT NULL, claimed_by"
        " FROM timers WHERE subject_sender = 'vt-gz'",
    )
    by_subject: dict[str, Counter[tuple[str, bool, bool]]] = {}
    for subject, kind, fired, cancelled, _ in timers:
        by_subject.setdefault(subject, Counter())[(kind, fired, cancelled)] += 1
    for request in raad:
        assert by_subject[request] == Counter(
            {
                ("receipt", True, False): RAAD_ATTEMPTS,
                ("enrichment_warning", True, False): 1,
                ("enrichment_due", True, False): 1,
            }
        ), f"the Raad's request {request}: {by_subject[request]}"
    for notice in moviera:
        counted = by_subject[notice]
        assert counted[("confirmation_warning", True, False)] == 1, counted
        assert counted[("confirmation_due", True, False)] == 1, counted
        assert counted[("receipt", False, True)] == 1, counted
    for notice in confirmed:  # a receipt before the relay's commit leaves no timer at all
        counted = by_subject[notice]
        assert counted[("receipt", False, True)] <= 1, counted
        assert counted[("receipt", False, False)] == 0, f"{notice}: a receipt timer still runs"
        assert counted[("confirmation_warning", False, True)] == 1, counted
        assert counted[("confirmation_due", False, True)] == 1, counted
        assert not any(fired for (_, fired, _) in counted), f"{notice}: a timer fired"
    late = await query(
        world.rig,
        "SELECT count(*) FROM timers WHERE fired_at IS NULL AND cancelled_at IS NULL"
        " AND due_at <= now()",
    )
    assert late == [(0,)], "a due timer never fired"

    alerts = await query(world.rig, "SELECT key, closed_at IS NULL FROM alerts")
    counted_alerts = Counter(alerts)
    assert counted_alerts[("undeliverable:rvdk", True)] == 1
    assert counted_alerts[("undeliverable:rvdk", False)] == 0
    for request in raad:
        assert counted_alerts[(f"enrichment_overdue:{request}", True)] == 1
        assert counted_alerts[(f"enrichment_overdue:{request}", False)] == 0
        assert counted_alerts[(f"enrichment_due_soon:{request}", True)] == 0, (
            f"the due-soon alert of {request} stayed open beside the overdue one"
        )
        assert counted_alerts[(f"enrichment_due_soon:{request}", False)] <= 1
    for notice in moviera:
        assert counted_alerts[(f"confirmation_overdue:{notice}", True)] == 1
        assert counted_alerts[(f"confirmation_overdue:{notice}", False)] == 0
        assert counted_alerts[(f"confirmation_due_soon:{notice}", True)] == 0, (
            f"the due-soon alert of {notice} stayed open beside the overdue one"
        )
        assert counted_alerts[(f"confirmation_due_soon:{notice}", False)] <= 1
    escalations = Counter(
        row[0] for row in await query(world.rig, "SELECT case_ref FROM escalations")
    )
    assert escalations == Counter(c.ref for c in world.cases_of("moviera"))


async def check_ledger_and_handovers(world: World) -> None:
    """Each case's chain as its messages made it, each entry once; the whole chain verifies."""
    entries = await query(
        world.rig, "SELECT sequence, case_ref, kind, evidence FROM ledger ORDER BY sequence"
    )
    assert [row[0] for row in entries] == list(range(1, len(entries) + 1))
    chains: dict[str, list[tuple[str, dict[str, str]]]] = {}
    for _, ref, kind, evidence in entries:
        chains.setdefault(ref, []).append((kind, json.loads(evidence)))
    sent_by_case: dict[str, dict[str, list[str]]] = {}
    for partner in world.partners.values():
        for message_id, message in partner.sent.items():
            if message["type"] != "receipt":
                per_type = sent_by_case.setdefault(message["case"]["ref"], {})
                per_type.setdefault(message["type"], []).append(message_id)
    for ref, case in world.cases.items():
        kinds = [kind for kind, _ in chains[ref]]
        sent = sent_by_case.get(ref, {})
        if case.party in TEAMS:
            regie = len(sent["regie.change"])
            assert kinds == [
                "veiligheidsbeoordeling",
                "overdracht_bevestigd",
                *["regie_gewijzigd"] * regie,
                "terug_naar_vt",
            ], f"{ref}: {Counter(kinds)}"
            recorded = [e.get("message_id") for k, e in chains[ref] if k == "regie_gewijzigd"]
            assert sorted(recorded) == sorted(sent["regie.change"])
            assert chains[ref][-1][1]["message_id"] == sent["case.return"][0]
        elif case.party == "jbg":
            assert kinds == ["veiligheidsbeoordeling", "overdracht_bevestigd"], ref
        else:
            assert kinds == ["veiligheidsbeoordeling"], ref
        if "overdracht.confirmation" in sent:
            (confirmation,) = sent["overdracht.confirmation"]
            assert chains[ref][1][1]["confirmation_id"] == confirmation
    config = str(world.rig.root / "gateway.toml")
    assert await asyncio.to_thread(cli, ["ledger", "verify", "--config", config]) == 0

    states = dict(await query(world.rig, "SELECT id, state FROM overdrachten"))
    histories = dict(await query(world.rig, "SELECT id, history FROM overdrachten"))
    for notice, case in world.notices.items():
        if case.party == "moviera":
            assert states[notice] == "delivered", (notice, states[notice])
            passed = [s for s in json.loads(histories[notice]) if "deadline_passed" in str(s)]
            assert len(passed) == 1, (
                f"{notice}: the term ran out {len(passed)} times: {histories[notice]}"
            )
        else:
            assert states[notice] == "confirmed", (
                f"handover {notice} to {case.party} is {states[notice]}, "
                "though its confirmation is in the ledger"
            )


async def check_work_shared(
    world: World, gateways: list[GatewayProcess], *, others: Sequence[GatewayProcess] = ()
) -> None:
    """Each instance consumed part of `vtgw.in`, published part of the outbox, fired timers.

    `others` (a killed instance) took part in consuming and may have done the rest too.
    """
    names = {gateway.name for gateway in [*gateways, *others]}
    published = await query(
        world.rig,
        "SELECT claimed_by, count(*) FROM outbox WHERE published_at IS NOT NULL GROUP BY 1",
    )
    fired = await query(
        world.rig,
        "SELECT claimed_by, count(*) FROM timers WHERE fired_at IS NOT NULL GROUP BY 1",
    )
    assert {row[0] for row in published} <= names
    assert {row[0] for row in fired} <= names
    everything = set().union(*(p.sent for p in world.partners.values()))
    logged: set[str] = set()
    for gateway in [*gateways, *others]:
        received = {
            e["message_id"]
            for e in gateway.events("message_received")
            if e.get("message_id") in everything
        }
        logged |= received
        assert received, f"{gateway.name} consumed nothing from vtgw.in"
    for gateway in gateways:
        assert gateway.name in dict(published), f"{gateway.name} published nothing"
        assert gateway.name in dict(fired), f"{gateway.name} fired no timer"
    assert logged == everything


async def check_everything(
    world: World, gateways: list[GatewayProcess], *, receipt_copies_once: bool
) -> None:
    await check_partners_messages(world, receipt_copies_once=receipt_copies_once)
    await check_gateway_messages(world, receipt_copies_once=receipt_copies_once)
    await check_timers(world)
    await check_ledger_and_handovers(world)
    await check_work_shared(world, gateways)


# --- the tests ----------------------------------------------------------------------------


@pytest.fixture
def rig(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[GatewayRig]:
    lease = 2 if "killed" in request.node.name else 30  # a killed one's rows return soon
    name = re.sub(r"\W+", "_", request.node.name)[-40:]  # its database's, with the parameter
    with gateway_rig(tmp_path_factory.mktemp("instances"), name, RAAD, lease=lease) as rig:
        yield rig


@pytest.mark.parametrize("instances", [2, 3])
async def test_instances_share_the_work_and_do_everything_once(
    rig: GatewayRig, instances: int
) -> None:
    """N instances, no leader: every message, timer, receipt and ledger entry once; all work."""
    gateways = rig.start_instances(instances)
    world = await run_world(rig, gateways, Load(MESSAGES))
    await check_everything(world, gateways, receipt_copies_once=True)
    for gateway in gateways:
        assert gateway.stop() == 0, gateway.log_tail()


async def held_outbox_rows(rig: GatewayRig, claimer: str) -> set[int]:
    """Outbox rows `claimer` holds: claimed, its lease running, not yet marked published."""
    rows = await query(
        rig,
        "SELECT id FROM outbox WHERE claimed_by = :claimer AND published_at IS NULL"
        " AND claimed_until > now()",
        claimer=claimer,
    )
    return {row[0] for row in rows}


def unacknowledged(rig: GatewayRig, gateway: GatewayProcess) -> int:
    """Deliveries the broker handed the instance's channels and has no ack for (management)."""
    status, connections = management("GET", "vhosts", rig.vhost, "connections")
    assert status == 200, connections
    wanted = f"vt-gateway {gateway.name}"
    names = [
        c["name"]
        for c in connections
        if c.get("client_properties", {}).get("connection_name") == wanted
    ]
    total = 0
    for name in names:
        status, channels = management("GET", "connections", name, "channels")
        assert status == 200, channels
        total += sum(int(channel.get("messages_unacknowledged", 0)) for channel in channels)
    return total


def redelivered_from_inbox(rig: GatewayRig) -> int:
    status, queue = management("GET", "queues", rig.vhost, "vtgw.in")
    assert status == 200, queue
    return int(queue.get("message_stats", {}).get("redeliver", 0))


async def test_an_instance_killed_mid_stream_leaves_its_work_to_the_other(
    rig: GatewayRig,
) -> None:
    """One of two frozen mid-stream holding claimed outbox rows and unacknowledged
    deliveries, then killed: the other publishes the rows after their lease and consumes
    the deliveries the broker returns; nothing is done twice in effect."""
    doomed, survivor = rig.start_instances(2)
    taken: dict[str, Any] = {}

    async def freeze_and_kill(world: World) -> None:
        def started() -> bool:  # VT's case system is done with the API; the stream runs
            submitted = len(world.notices) + len(world.requests) == len(world.cases)
            return submitted and len(doomed.events("message_received")) >= 20

        await until(started, world, "the doomed instance to take part")
        for _ in range(200):  # freeze it while it holds outbox rows it has claimed
            doomed.pause()
            held = await held_outbox_rows(rig, doomed.name)
            if held:
                break
            doomed.resume()
            await asyncio.sleep(random.uniform(0.01, 0.1))
        else:
            pytest.fail("the doomed instance never held an outbox row", pytrace=False)
        assert not partners_done(world), "the stream ended before the kill"

        def holding() -> bool:  # the management API's figures lag by up to 5 s
            taken["unacked"] = unacknowledged(rig, doomed)
            return taken["unacked"] > 0

        await until(holding, world, "the frozen instance to hold unacknowledged deliveries")
        doomed.kill()
        taken["held"] = held

    world = await run_world(rig, [doomed, survivor], Load(MESSAGES), freeze_and_kill)
    await check_partners_messages(world, receipt_copies_once=False)
    await check_gateway_messages(world, receipt_copies_once=False)
    await check_timers(world)
    await check_ledger_and_handovers(world)
    await check_work_shared(world, [survivor], others=[doomed])

    rows = await query(
        rig,
        "SELECT claimed_by, published_at IS NOT NULL FROM outbox WHERE id = ANY(:ids)",
        ids=sorted(taken["held"]),
    )
    assert rows, "the held rows are in the outbox"
    assert set(rows) == {(survivor.name, True)}, "the survivor took the held rows over"

    def redelivered() -> bool:
        return redelivered_from_inbox(rig) >= 1

    await until(redelivered, world, "the broker's count of deliveries it handed out again")
    assert survivor.stop() == 0, survivor.log_tail()


SIGN_IN_FORM = re.compile(r'name="csrf" value="([^"]+)"')


async def sign_in(session: aiohttp.ClientSession, gateway: GatewayProcess, password: str) -> None:
    """The development admin signs in to the dashboard of `gateway`."""
    async with session.get(gateway.url("/dashboard/sign-in")) as page:
        found = SIGN_IN_FORM.search(await page.text())
    assert found is not None, "the sign-in form carries a CSRF token"
    form = {"csrf": found.group(1), "username": "beheerder", "password": password}
    async with session.post(
        gateway.url("/dashboard/sign-in"), data=form, allow_redirects=False
    ) as answer:
        assert answer.status == 303, await answer.text()


async def change_markers(response: aiohttp.ClientResponse) -> AsyncIterator[list[int]]:
    """The store's change markers a live-update stream announces, as numbers."""
    event = ""
    while True:
        line = (await response.content.readline()).decode()
        if not line:
            return
        if line.startswith("event:"):
            event = line.removeprefix("event:").strip()
        elif line.startswith("data:") and event == "change":
            yield [int(part) for part in line.removeprefix("data:").strip().split(";")]


@pytest.fixture
def live_rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayRig]:
    with gateway_rig(tmp_path_factory.mktemp("live"), "instances_live", dashboard=True) as rig:
        yield rig


async def test_staff_on_either_instance_see_what_the_other_processed(live_rig: GatewayRig) -> None:
    """A confirmation consumed by one instance reaches the live updates of the other's dashboard."""
    rig = live_rig
    gateways = rig.start_instances(2)
    case = Case("VT-2026-200001", "GM0268", "jbg")
    now = datetime.now(UTC)
    status, created = rig.api("POST", "/messages", submission(case, now.date(), now))
    assert status == 201, created
    notice_id = created["messages"][0]["id"]
    jbg = WirePartner("jbg", rig.credentials["jbg"], rig.signing_key("jbg"))
    jar = aiohttp.CookieJar(unsafe=True)  # cookies for 127.0.0.1, whichever port
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=10)  # the streams stay open
    async with jbg, aiohttp.ClientSession(cookie_jar=jar, timeout=timeout) as staff:
        await sign_in(staff, gateways[0], rig.dashboard_password)  # one session, both
        streams = [await staff.get(g.url("/dashboard/events")) for g in gateways]
        for stream in streams:
            assert stream.status == 200
            await anext(change_markers(stream))
        notice = await jbg.receive(timeout=15)
        while notice["id"] != notice_id:
            notice = await jbg.receive(timeout=15)
        confirmation = jbg.envelope(
            "overdracht.confirmation",
            reply_to=notice_id,
            thread=notice["thread"],
            case=case.json,
        )
        await jbg.send(confirmation)
        await jbg.receive_until("receipt", reply_to=confirmation["id"], timeout=15)
        (consumer,) = [
            index
            for index, gateway in enumerate(gateways)
            if any(
                e.get("message_id") == confirmation["id"]
                for e in gateway.events("message_received")
            )
        ]
        ((seq,),) = await query(
            rig, "SELECT seq FROM messages WHERE id = :id", id=confirmation["id"]
        )
        other = streams[1 - consumer]
        async with asyncio.timeout(30):
            async for marker in change_markers(other):
                if marker[0] >= seq:  # the newest message the other's page knows of
                    break
            else:
                pytest.fail("the other instance's stream ended without the confirmation")
        for stream in streams:
            stream.close()
    for gateway in gateways:
        assert gateway.stop() == 0, gateway.log_tail()


async def test_a_subjects_later_timer_waits_while_another_instance_fires_an_earlier_one(
    postgres_store: SqlStore, postgres_dsn: str
) -> None:
    """A term's warning in one instance's hands: the other leaves the term's end until it is
    fired (else the end closes the warning's alert before the warning opens it)."""
    now = datetime.now(UTC)
    lease = timedelta(seconds=30)
    async with postgres_store.transaction() as uow:
        await uow.timers.schedule_many(
            [
                Timer(TimerKind.ENRICHMENT_WARNING, "vt-gz", "request", now - timedelta(2), "t"),
                Timer(TimerKind.ENRICHMENT_DUE, "vt-gz", "request", now - timedelta(1), "t"),
                Timer(TimerKind.RECEIPT, "vt-gz", "another", now - timedelta(1), "t"),
            ]
        )
    other_instance = await open_store(postgres_dsn)
    try:
        async with postgres_store.transaction() as first:
            (warning,) = await first.timers.claim_due(now=now, limit=1, lease=lease, claimer="a")
            assert warning.kind is TimerKind.ENRICHMENT_WARNING
            async with other_instance.transaction() as second:
                meanwhile = await second.timers.claim_due(
                    now=now, limit=10, lease=lease, claimer="b"
                )
            assert [t.kind for t in meanwhile] == [TimerKind.RECEIPT]
            assert warning.timer_id is not None
            await first.timers.done(warning.timer_id, now)
        async with other_instance.transaction() as second:
            after = await second.timers.claim_due(now=now, limit=10, lease=lease, claimer="b")
        assert [t.kind for t in after] == [TimerKind.ENRICHMENT_DUE]
    finally:
        await other_instance.close()


def hub_with_test_keys() -> tuple[Core, Contracts, Hub]:
    """VT's hub as the service layer runs it, the contracts holding the test vectors' keys."""
    core = load_core(Paths.defaults())
    contracts = with_test_keys(core.contracts)
    calendar = WorkingDayCalendar.for_region(core.region)
    verifier = Verifier(contracts, core.validator, "vt-gz")
    return core, contracts, Hub(verifier, vector_key("vt-gz"), calendar)


def answer(
    contracts: Contracts, original: StoredMessage, message_type: str, now: datetime
) -> Delivery:
    """The recipient's answer to a message of the hub (a receipt, a confirmation), signed."""
    sent = json.loads(original.raw)
    obj = example(message_type) | {
        "id": str(uuid.uuid4()),
        "sender": original.recipient,
        "recipient": original.sender,
        "sent_at": format_timestamp(now - timedelta(seconds=1)),
        "thread": original.thread,
        "reply_to": original.id,
    }
    if message_type == "receipt":
        obj["body"] = {"digest": digest(sent), "received_at": sent["sent_at"]}
    else:
        obj["case"] = sent["case"]
    raw = json.dumps(sign_object(obj, signer_key(contracts, original.recipient))).encode()
    return Delivery(raw, original.recipient)


async def test_a_receipt_that_overtakes_the_relays_commit_leaves_the_message_delivered(
    postgres_store: SqlStore,
) -> None:
    """The recipient's receipt stored (by any instance) before the relay marks the message
    sent: the message stays delivered, and no receipt timer is left to send it again."""
    core, contracts, hub = hub_with_test_keys()
    now = datetime.now(UTC)
    body = example("enrichment.request")["body"]
    body["antwoord_voor"] = format_timestamp(now + timedelta(days=5))
    command = SubmitMessage(
        "enrichment.request", CaseRef("VT-2026-300001", "GM0268"), body, ("jbg",)
    )
    (request,) = await submit(postgres_store, hub, core.region, command, now)
    async with postgres_store.transaction() as uow:
        handled = await receive(uow, hub, answer(contracts, request, "receipt", now), now)
    assert handled.disposition is Disposition.ACK, handled.rejection

    publisher = RecordingPublisher()
    claim = Claim(claimer="relay", lease=timedelta(seconds=30))
    assert await relay_once(postgres_store, {Transport.AMQP: publisher}, contracts, claim, now)
    async with postgres_store.transaction() as uow:
        stored = await uow.messages.get("vt-gz", request.id)
        pending = await uow.timers.pending("vt-gz", request.id)
    assert stored is not None
    assert stored.status is Status.DELIVERED, "the relay's SENT overwrote the receipt's DELIVERED"
    assert TimerKind.RECEIPT not in {timer.kind for timer in pending}


async def lock_awaited(dsn: str) -> None:
    """Until a transaction of this database waits for a lock another one holds."""
    engine = create_engine(dsn)
    try:
        async with engine.connect() as connection:
            for _ in range(200):
                waiting = await connection.scalar(
                    text(
                        "SELECT count(*) FROM pg_stat_activity "
                        "WHERE datname = current_database() AND wait_event_type = 'Lock'"
                    )
                )
                if waiting:
                    return
                await asyncio.sleep(0.05)
    finally:
        await engine.dispose()
    pytest.fail("no transaction came to wait for the lock", pytrace=False)


async def test_a_final_status_stays_when_another_instance_decided_its_change_earlier(
    postgres_store: SqlStore, postgres_dsn: str
) -> None:
    """One instance records the receipt's DELIVERED while another's relay, which read the
    message before that commit, records SENT: the final DELIVERED stays the status."""
    now = datetime.now(UTC)
    message = StoredMessage(
        id="4d1c2b8e-5a6f-4e0b-9c3d-2a1b0c9d8e7f",
        sender="vt-gz",
        recipient="jbg",
        type="enrichment.request",
        thread="4d1c2b8e-5a6f-4e0b-9c3d-2a1b0c9d8e7f",
        reply_to=None,
        case_ref="VT-2026-300002",
        gemeente="GM0268",
        direction=Direction.OUT,
        digest="sha256:" + "0" * 64,
        raw=b"{}",
        sent_at=now,
        created_at=now,
        status=Status.QUEUED,
    )
    async with postgres_store.transaction() as uow:
        await uow.messages.add(message, StatusChange(Status.QUEUED, now))
    key = (message.sender, message.id)
    other_instance = await open_store(postgres_dsn)

    async def relay_marks_sent() -> None:
        async with other_instance.transaction() as relay:
            await relay.messages.record_many([(*key, StatusChange(Status.SENT, now))])

    try:
        async with postgres_store.transaction() as consumer:
            delivered = StatusChange(Status.DELIVERED, now, {"receipt": "r"})
            await consumer.messages.record_many([(*key, delivered)])
            marking = asyncio.create_task(relay_marks_sent())
            await lock_awaited(postgres_dsn)  # the relay read QUEUED, waits for the row
        await marking
        async with postgres_store.transaction() as uow:
            stored = await uow.messages.get(*key)
            history = await uow.messages.history(*key)
    finally:
        await other_instance.close()
    assert stored is not None
    assert stored.status is Status.DELIVERED
    assert [change.status for change in history] == [Status.QUEUED, Status.DELIVERED, Status.SENT]


async def test_a_receipt_and_a_confirmation_in_two_instances_at_once_both_take_effect(
    postgres_store: SqlStore, postgres_dsn: str
) -> None:
    """One instance stores the confirmation of a handover while another stores the notice's
    receipt, read before that commit: the handover ends confirmed, not set back to delivered."""
    core, contracts, hub = hub_with_test_keys()
    now = datetime.now(UTC)
    body = submission(Case("VT-2026-300003", "GM0268", "jbg"), now.date(), now)["body"]
    command = SubmitMessage(
        "overdracht.notice", CaseRef("VT-2026-300003", "GM0268"), body, ("jbg",)
    )
    sent = await submit(postgres_store, hub, core.region, command, now)
    (notice,) = [message for message in sent if message.type == "overdracht.notice"]
    other_instance = await open_store(postgres_dsn)

    async def consume(store: SqlStore, delivery: Delivery) -> None:
        """As the hub consumer does: the transaction again while the store says "transient"."""
        for _ in range(20):
            try:
                async with store.transaction() as uow:
                    handled = await receive(uow, hub, delivery, datetime.now(UTC))
            except TransientError:
                await asyncio.sleep(0.1)
            else:
                assert handled.disposition is Disposition.ACK, handled.rejection
                return
        pytest.fail("the store stayed busy", pytrace=False)

    try:
        async with postgres_store.transaction() as first:
            confirmation = answer(contracts, notice, "overdracht.confirmation", now)
            handled = await receive(first, hub, confirmation, now)
            assert handled.disposition is Disposition.ACK, handled.rejection
            receipting = asyncio.create_task(
                consume(other_instance, answer(contracts, notice, "receipt", now))
            )
            await lock_awaited(postgres_dsn)  # the receipt waits for the handover's row
        await receipting
        async with postgres_store.transaction() as uow:
            overdracht = await uow.handovers.get(notice.id)
    finally:
        await other_instance.close()
    assert overdracht is not None
    assert overdracht.state is OverdrachtState.CONFIRMED
