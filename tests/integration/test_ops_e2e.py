"""End to end: the operations endpoints of a real `vt-gateway run` process.

`/healthz` and `/readyz` answer 200 on a gateway with its store and broker;
`/metrics` is the Prometheus text format, and after VT's case system submits
an overdracht.notice for Jeugdbescherming (jbg) and jbg answers with a receipt
and a confirmation over the wire, its counters and histograms have moved:
the notice published over AMQP, the receipt and confirmation received, the
receipt's and the confirmation's latency observed.
"""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.parser import text_string_to_metric_families

from gateway.domain.canonical import digest
from gateway.domain.envelope import format_timestamp
from tests.integration.gateway_rig import GatewayRig, gateway_rig
from tests.integration.partner_side import WirePartner, notice_body

pytestmark = pytest.mark.integration

CASE = {"ref": "VT-2026-000777", "gemeente": "GM0268"}

Samples = dict[str, float]


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayRig]:
    with gateway_rig(tmp_path_factory.mktemp("ops"), "ops") as rig:
        rig.start()
        yield rig
        assert rig.stop() == 0, rig.log_tail()


def get(rig: GatewayRig, path: str) -> tuple[int, str, bytes]:
    """Status, content type and body of a GET on the gateway's port."""
    try:
        with urllib.request.urlopen(rig.url(path), timeout=10) as response:  # noqa: S310
            return response.status, response.headers["Content-Type"], response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers["Content-Type"], error.read()


def scrape(rig: GatewayRig) -> Samples:
    """Every sample of `/metrics`, by name and sorted labels: `name{a=x,b=y}` -> value."""
    status, content_type, body = get(rig, "/metrics")
    assert status == 200
    assert content_type == CONTENT_TYPE_LATEST  # the Prometheus text format
    samples = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            samples[f"{sample.name}{{{labels}}}"] = sample.value
    return samples


async def scrape_until(
    rig: GatewayRig, ready: Callable[[Samples], bool], timeout: float = 15
) -> Samples:
    samples: Samples = {}
    for _ in range(int(timeout * 10)):
        samples = scrape(rig)
        if ready(samples):
            return samples
        await asyncio.sleep(0.1)
    found = {k: v for k, v in samples.items() if not k.endswith("_created")}
    pytest.fail(f"the metrics did not move: {found}\n{rig.log_tail()}")


def test_healthz_and_readyz_answer_200(rig: GatewayRig) -> None:
    status, _, body = get(rig, "/healthz")
    assert (status, json.loads(body)) == (200, {"status": "alive"})
    status, content_type, body = get(rig, "/readyz")
    assert (status, content_type.split(";")[0]) == (200, "application/json")
    assert json.loads(body) == {
        "status": "ready",
        "checks": {"store": "ok", "broker": "ok"},
        "not_ready": [],
    }


async def test_a_handover_over_the_wire_moves_the_counters_and_histograms(
    rig: GatewayRig,
) -> None:
    before = scrape(rig)
    assert before["vtgw_store_scrape_ok{}"] == 1
    assert before["vtgw_handovers_overdue{}"] == 0

    body = notice_body("jbg")
    status, created = rig.api(
        "POST",
        "/messages",
        {"type": "overdracht.notice", "case": CASE, "body": body, "recipients": ["jbg"]},
    )
    assert status == 201, created
    notice_id = created["messages"][0]["id"]
    moment = body["moment"]

    published = "vtgw_messages_published_total{transport=amqp,type=overdracht.notice}"
    opened = await scrape_until(rig, lambda s: s.get(published, 0) >= 1)
    assert opened["vtgw_handovers_open{state=notice_sent}"] >= 1

    async with WirePartner("jbg", rig.credentials["jbg"], rig.signing_key("jbg")) as jbg:
        notice = await jbg.receive(timeout=15)
        while notice["id"] != notice_id:
            notice = await jbg.receive(timeout=15)
        receipt = jbg.envelope(
            "receipt",
            reply_to=notice_id,
            thread=notice["thread"],
            body={
                "digest": digest(notice),
                "received_at": format_timestamp(datetime.now(UTC) - timedelta(seconds=1)),
            },
        )
        await jbg.send(receipt)
        confirmation = jbg.envelope(
            "overdracht.confirmation", reply_to=notice_id, thread=notice["thread"], case=CASE
        )
        await jbg.send(confirmation)
        await jbg.receive_until("receipt", reply_to=confirmation["id"])

    received = "vtgw_messages_received_total"
    confirmed = f"vtgw_confirmation_latency_seconds_count{{moment={moment}}}"
    delivered = "vtgw_receipt_latency_seconds_count{recipient=jbg}"
    after = await scrape_until(
        rig,
        lambda s: (
            s.get(confirmed, 0) >= 1
            and s.get(delivered, 0) >= 1
            and s.get(f"{received}{{outcome=accepted,type=overdracht.confirmation}}", 0) >= 1
        ),
    )
    assert after[f"{received}{{outcome=accepted,type=receipt}}"] >= 1
    assert after[f"vtgw_confirmation_latency_seconds_sum{{moment={moment}}}"] > 0
    assert after["vtgw_receipt_latency_seconds_sum{recipient=jbg}"] >= 0
    # The gateway's receipt of the confirmation went out to jbg: published, by type.
    assert after["vtgw_messages_published_total{transport=amqp,type=receipt}"] >= 1
    assert after.get("vtgw_handovers_open{state=notice_sent}", 0) == 0
    assert after["vtgw_outbox_depth{}"] >= 0
    assert after["vtgw_alerts_open{}"] == 0
    assert after["vtgw_dead_letters{}"] == 0
