"""VT's key rotation as `vt-gateway run` sets it up: the operator's commands, then the hub.

The operator generates VT's next key with a future `not_before` (docs/keys.md); the
gateway, started before that moment, signs with the current key and holds the next
one, and signs with it from its `not_before` on, without a restart.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from gateway.bootstrap import Paths, load_core
from gateway.cli import main as cli
from gateway.domain.calendar import WorkingDayCalendar
from gateway.domain.envelope import CaseRef, format_timestamp
from gateway.runtime import hub_signing_key, hub_successor_keys
from gateway.service.outgoing import Hub, build
from gateway.settings import load_settings

ROOT = Path(__file__).resolve().parents[2]


def test_the_hub_takes_over_vts_next_key_at_its_not_before(tmp_path: Path) -> None:
    contracts, keys = tmp_path / "contracts", tmp_path / "keys"
    dev = ["--contracts", str(contracts), "--keys", str(keys)]
    assert cli(["dev", "init", *dev, "--tokens", str(tmp_path / "tokens.toml")]) == 0
    switch = (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0)
    next_key = ["--kid", "vt-gz-next", "--not-before", format_timestamp(switch)]
    assert cli(["keys", "generate", "vt-gz", *dev, *next_key]) == 0
    settings = replace(
        load_settings(ROOT / "config" / "gateway.toml", {}), keys_dir=keys, contracts_dir=contracts
    )
    core = load_core(Paths.defaults(contracts=contracts))
    now = datetime.now(UTC)

    current = hub_signing_key(core, settings, now)
    successors = hub_successor_keys(core, settings, now)
    assert current.kid != "vt-gz-next"
    assert [key.kid for key in successors] == ["vt-gz-next"]
    pinned = replace(settings, signing_kid=current.kid)
    assert hub_successor_keys(core, pinned, now) == ()  # a pinned kid never moves

    hub = Hub(
        core.verifier("vt-gz"),
        current,
        WorkingDayCalendar.for_region(core.region),
        successors=successors,
    )
    body = json.loads((ROOT / "schemas" / "examples" / "enrichment.request.json").read_text())

    def kid_at(moment: datetime) -> str:
        message = build(
            hub,
            message_type="enrichment.request",
            recipient="jbg",
            body=body["body"],
            case=CaseRef(**body["case"]),
            now=moment,
        )
        return str(json.loads(message.raw)["signature"]["kid"])

    assert kid_at(switch - timedelta(seconds=1)) == current.kid
    assert kid_at(switch) == "vt-gz-next"
