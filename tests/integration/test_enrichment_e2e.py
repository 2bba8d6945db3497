"""End to end: an enrichment request through VT's API fans out, the partners' adapters answer.

VT's case system (the test, over HTTP) submits one enrichment.request for a
Nijmegen case; the gateway routes it to the enrichment partners of §5.1
(Jeugdbescherming, the lokaal team, the Veiligheidshuis, the Raad), each
running the partner adapter with a folder hand-off. Each partner's system
(the test again) answers through its adapter's local endpoint. VT's case
system then sees, for every request, the partner's receipt and its answer in
the timeline, and each answer received and receipted.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from adapters.amqp.partner import AgentSettings, FolderTarget, Partner, PartnerAgent
from gateway.bootstrap import Paths, load_core
from gateway.service.pipeline import Verifier
from tests.integration.gateway_rig import GatewayRig, gateway_rig
from tests.integration.partner_side import example

pytestmark = pytest.mark.integration

NIJMEGEN_CASE = {"ref": "VT-2026-000444", "gemeente": "GM0268"}
PARTNERS = ("jbg", "lt-nijmegen", "rvdk", "vhh-gz")


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayRig]:
    with gateway_rig(tmp_path_factory.mktemp("enrichment"), "enrichment") as rig:
        rig.start()
        yield rig
        assert rig.stop() == 0, rig.log_tail()


@pytest.fixture
async def agents(rig: GatewayRig, tmp_path: Path) -> AsyncIterator[dict[str, PartnerAgent]]:
    """The partner adapter of each enrichment partner, handing over into a folder."""
    core = load_core(Paths.defaults(contracts=rig.contracts_dir))
    async with AsyncExitStack() as stack:
        running = {}
        for party in PARTNERS:
            partner = Partner(
                Verifier(core.contracts, core.validator, party), rig.signing_key(party)
            )
            settings = AgentSettings(
                amqp_urls=(rig.credentials[party],),
                state_file=tmp_path / party / "state.db",
                handoff=FolderTarget(tmp_path / party / "inbox"),
                listen=("127.0.0.1", 0),
            )
            running[party] = await stack.enter_async_context(PartnerAgent(partner, settings))
        yield running


async def handed_over(folder: Path, message_id: str, timeout: float = 20) -> dict[str, Any]:
    path = folder / f"{message_id}.json"
    for _ in range(int(timeout * 10)):
        if path.exists():
            value: dict[str, Any] = json.loads(path.read_bytes())
            return value
        await asyncio.sleep(0.1)
    pytest.fail(f"{message_id} was not handed over into {folder}")


async def view_until(
    rig: GatewayRig, message_id: str, done: Any, timeout: float = 20
) -> dict[str, Any]:
    view: dict[str, Any] = {}
    for _ in range(int(timeout * 10)):
        status, view = rig.api("GET", f"/messages/{message_id}")
        assert status == 200, view
        if done(view):
            return view
        await asyncio.sleep(0.1)
    pytest.fail(f"{message_id} did not get there: {json.dumps(view)[:800]}\n{rig.log_tail()}")


async def test_an_enrichment_request_fans_out_and_every_answer_comes_back(
    rig: GatewayRig, agents: dict[str, PartnerAgent], tmp_path: Path
) -> None:
    """§5.1: one request, four partners, four receipts and four answers in VT's timelines."""
    status, created = rig.api(
        "POST",
        "/messages",
        {
            "type": "enrichment.request",
            "case": NIJMEGEN_CASE,
            "body": example("enrichment.request")["body"],
        },
    )
    assert status == 201, created
    sent = {m["recipient"]: m["id"] for m in created["messages"]}
    assert set(sent) == set(PARTNERS)

    answer_body = example("enrichment.response")["body"]
    answers = {}
    async with aiohttp.ClientSession() as http:
        for party, message_id in sent.items():
            handed = await handed_over(tmp_path / party / "inbox", message_id)
            assert handed["type"] == "enrichment.request"
            assert handed["sender"] == "vt-gz"
            host, port = agents[party].listening or ("", 0)
            async with http.post(
                f"http://{host}:{port}/answers",
                json={
                    "type": "enrichment.response",
                    "reply_to": message_id,
                    "body": answer_body,
                },
            ) as response:
                assert response.status == 202, await response.text()
                answers[party] = (await response.json())["id"]

    for party, message_id in sent.items():
        view = await view_until(
            rig,
            message_id,
            lambda v: (
                v["status"] == "delivered"
                and any(a["type"] == "enrichment.response" for a in v["answers"])
            ),
        )
        statuses = [step["status"] for step in view["timeline"]]
        assert statuses[:3] == ["queued", "sent", "delivered"]
        assert view["timeline"][2]["evidence"]["digest"] == view["digest"]
        kinds = {(a["type"], a["sender"]) for a in view["answers"]}
        assert kinds == {("receipt", party), ("enrichment.response", party)}

        answer = await view_until(
            rig, answers[party], lambda v: any(a["type"] == "receipt" for a in v["answers"])
        )
        assert (answer["sender"], answer["status"], answer["final"]) == (party, "received", True)
