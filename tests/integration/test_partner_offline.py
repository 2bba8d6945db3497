"""A partner offline: the gateway sends again, backing off; over the limit, one alert.

jbg's contract gets a receipt timeout of 1 second and 4 attempts here, so the
whole schedule (sends at 0, 1, 3 and 7 seconds) fits in a test.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from adapters.store import open_store
from gateway.domain.canonical import digest
from gateway.service.receiving import undeliverable_alert
from tests.integration.gateway_rig import GatewayRig, gateway_rig
from tests.integration.partner_side import WirePartner, example

pytestmark = pytest.mark.integration

FAST = {
    "jbg": {
        'receipt_timeout = "PT15M"': 'receipt_timeout = "PT1S"',
        "attempt_limit = 8": "attempt_limit = 4",
    }
}


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayRig]:
    with gateway_rig(tmp_path_factory.mktemp("offline"), "offline", FAST) as rig:
        rig.start()
        yield rig
        rig.stop()


def submit_request(rig: GatewayRig) -> str:
    request = example("enrichment.request")
    status, created = rig.api(
        "POST",
        "/messages",
        {
            "type": "enrichment.request",
            "case": {"ref": "VT-2026-000555", "gemeente": "GM0268"},
            "body": request["body"],
            "recipients": ["jbg"],
        },
    )
    assert status == 201, created
    message_id: str = created["messages"][0]["id"]
    return message_id


async def status_of(
    rig: GatewayRig, message_id: str, wanted: str, timeout: float = 20
) -> dict[str, Any]:
    for _ in range(int(timeout * 10)):
        status, view = rig.api("GET", f"/messages/{message_id}")
        assert status == 200, view
        if view["status"] == wanted:
            return dict(view)
        await asyncio.sleep(0.1)
    pytest.fail(
        f"{message_id} is {view['status']}, not {wanted}, after {timeout} s\n{rig.log_tail()}"
    )


async def test_a_partner_back_after_a_while_gets_the_message_and_it_is_delivered(
    rig: GatewayRig,
) -> None:
    """Offline for two attempts: the same message again; its receipt then marks it delivered."""
    message_id = submit_request(rig)
    await asyncio.sleep(2.5)  # jbg reads nothing: attempts at 0 s and 1 s go unanswered
    async with WirePartner("jbg", rig.credentials["jbg"], rig.signing_key("jbg")) as jbg:
        copies = []
        while not copies or copies[-1]["id"] != message_id:
            copies.append(await jbg.receive(timeout=10))
        copies = [c for c in copies if c["id"] == message_id]
        assert all(c == copies[0] for c in copies), "a resend must be the same message"
        receipt = jbg.envelope(
            "receipt",
            reply_to=message_id,
            thread=copies[0]["thread"],
            body={"digest": digest(copies[0]), "received_at": copies[0]["sent_at"]},
        )
        await jbg.send(receipt)
    view = await status_of(rig, message_id, "delivered")
    assert view["attempts"] >= 2
    assert [step["status"] for step in view["timeline"]].count("sent") >= 2
    assert view["timeline"][-1]["final"]


async def test_over_the_attempt_limit_the_messages_are_undeliverable_with_one_alert(
    rig: GatewayRig,
) -> None:
    """Never answered: undeliverable after 4 attempts, one alert for jbg however many messages."""
    first, second = submit_request(rig), submit_request(rig)
    for message_id in (first, second):
        view = await status_of(rig, message_id, "undeliverable", timeout=30)
        assert view["attempts"] == 4
        assert view["final"]
    store = await open_store(rig.dsn)
    try:
        async with store.transaction() as uow:
            alerts = await uow.alerts.all_alerts(undeliverable_alert("jbg"))
    finally:
        await store.close()
    assert len(alerts) == 1
    assert alerts[0].closed_at is None
