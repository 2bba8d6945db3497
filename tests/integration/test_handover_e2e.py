"""End to end: a handover over the wire moves the case; the ledger proves who held it.

VT's case system submits an overdracht.notice for Jeugdbescherming (jbg);
jbg confirms over AMQP; VT's API then names jbg as holder, and as holder at
no moment before the confirmation; `vt-gateway ledger verify` finds the chain
whole, and names the entry a tamperer changed in the database.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import text

from adapters.store.engine import create_engine
from gateway.cli import main as cli
from tests.integration.gateway_rig import GatewayRig, gateway_rig
from tests.integration.partner_side import WirePartner, notice_body

pytestmark = pytest.mark.integration

CASE = {"ref": "VT-2026-000888", "gemeente": "GM0268"}


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayRig]:
    with gateway_rig(tmp_path_factory.mktemp("handover"), "handover") as rig:
        rig.start()
        yield rig
        assert rig.stop() == 0, rig.log_tail()


async def test_a_confirmation_over_the_wire_moves_the_case_and_the_ledger_shows_it(
    rig: GatewayRig, capsys: pytest.CaptureFixture[str]
) -> None:
    """VT holds the case until jbg's confirmation arrives; then jbg, and the chain verifies."""
    body = notice_body("jbg")
    status, created = rig.api(
        "POST",
        "/messages",
        {"type": "overdracht.notice", "case": CASE, "body": body, "recipients": ["jbg"]},
    )
    assert status == 201, created
    notice_id = created["messages"][0]["id"]
    before = await rig.case_held_by(CASE["ref"], "vt-gz")
    status, late = rig.api("GET", "/overdue")
    assert status == 200
    assert late["handovers"] == [], "the advised term lies ahead: nothing overdue yet"
    assert before["overdrachten"][0]["id"] == notice_id
    async with WirePartner("jbg", rig.credentials["jbg"], rig.signing_key("jbg")) as jbg:
        notice = await jbg.receive(timeout=15)
        while notice["id"] != notice_id:
            notice = await jbg.receive(timeout=15)
        before_confirmation = datetime.now(UTC)
        confirmation = jbg.envelope(
            "overdracht.confirmation", reply_to=notice_id, thread=notice["thread"], case=CASE
        )
        await jbg.send(confirmation)
        await jbg.receive_until("receipt", reply_to=confirmation["id"])
    after = await rig.case_held_by(CASE["ref"], "jbg")
    assert [e["kind"] for e in after["ledger"]] == [
        "veiligheidsbeoordeling",
        "overdracht_bevestigd",
    ]
    assert after["ledger"][1]["evidence"]["confirmation_id"] == confirmation["id"]
    assert after["overdrachten"][0]["state"] == "confirmed"
    stamp = before_confirmation.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    status, then = rig.api("GET", f"/cases/{CASE['ref']}?at={stamp}")
    assert (status, then["holder"]) == (200, "vt-gz")

    assert (
        await asyncio.to_thread(
            cli, ["ledger", "verify", "--config", str(rig.root / "gateway.toml")]
        )
        == 0
    )
    assert "the chain is whole" in capsys.readouterr().out


async def test_ledger_verify_names_the_first_altered_entry(
    rig: GatewayRig, capsys: pytest.CaptureFixture[str]
) -> None:
    """A holder changed in the database breaks the chain at that entry: verify exits 1 naming it."""
    engine = create_engine(rig.dsn)
    try:
        async with engine.begin() as connection:
            await connection.execute(text("UPDATE ledger SET holder = 'rvdk' WHERE sequence = 2"))
    finally:
        await engine.dispose()
    assert (
        await asyncio.to_thread(
            cli, ["ledger", "verify", "--config", str(rig.root / "gateway.toml")]
        )
        == 1
    )
    assert "broken at entry 2" in capsys.readouterr().out
