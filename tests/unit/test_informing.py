"""The agreement's informing rules, applied when VT submits a message (§5.1, §5.1 D, §8.1)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from gateway.bootstrap import Core
from gateway.domain.calendar import WorkingDayCalendar
from gateway.domain.contracts import Contracts
from gateway.domain.envelope import CaseRef
from gateway.service.outgoing import Hub
from gateway.service.pipeline import Verifier
from gateway.service.submission import SubmitMessage, submit
from gateway.vectors import vector_key
from tests.fakes.store import MemoryStore
from tests.unit.conftest import NOW


@pytest.fixture
def hub(core: Core, keyed_contracts: Contracts) -> Hub:
    return Hub(
        Verifier(keyed_contracts, core.validator, "vt-gz"),
        vector_key("vt-gz"),
        WorkingDayCalendar.for_region(core.region),
    )


async def submitted(
    hub: Hub,
    core: Core,
    message_type: str,
    body: dict[str, Any],
    *,
    gemeente: str,
    recipients: tuple[str, ...] = (),
) -> list[tuple[str, str]]:
    command = SubmitMessage(
        type=message_type,
        case=CaseRef("VT-2026-000321", gemeente),
        body=body,
        recipients=recipients,
    )
    messages = await submit(MemoryStore(), hub, core.region, command, NOW)
    return [(m.type, m.recipient) for m in messages]


async def test_a_handover_to_an_involved_care_provider_always_informs_the_lokaal_team(
    hub: Hub, core: Core, examples: dict[str, Any]
) -> None:
    """§5.1 D, §8.1: overdracht to Moviera in Tiel -> a case.notice to the lokaal team of Tiel."""
    body = examples["overdracht.notice"]["body"]
    sent = await submitted(
        hub, core, "overdracht.notice", body, gemeente="GM0281", recipients=("moviera",)
    )
    assert sent == [("overdracht.notice", "moviera"), ("case.notice", "lt-tiel")]


async def test_a_handover_to_the_lokaal_team_itself_adds_nothing(
    hub: Hub, core: Core, examples: dict[str, Any]
) -> None:
    """The lokaal team receiving the handover is informed by the handover itself."""
    body = examples["overdracht.notice"]["body"]
    assert await submitted(hub, core, "overdracht.notice", body, gemeente="GM0281") == [
        ("overdracht.notice", "lt-tiel")
    ]


@pytest.mark.parametrize(
    "where",
    [
        ("GM0268", "lt-nijmegen", "politie-on"),
        ("GM0944", "lt-mook-en-middelaar", "politie-lb"),  # §5.2: police region Limburg
    ],
)
async def test_an_overige_zorgmelding_to_the_wijkteam_is_reported_to_the_police(
    hub: Hub, core: Core, examples: dict[str, Any], where: tuple[str, str, str]
) -> None:
    """§5.1: the zorgmelding goes to the wijkteam, and its police unit is told it was forwarded."""
    gemeente, team, police = where
    body = examples["zorgmelding.forward"]["body"]
    command = SubmitMessage(
        type="zorgmelding.forward", case=CaseRef("VT-2026-000321", gemeente), body=body
    )
    messages = await submit(MemoryStore(), hub, core.region, command, NOW)
    assert [(m.type, m.recipient) for m in messages] == [
        ("zorgmelding.forward", team),
        ("zorgmelding.forward", police),
    ]
    police_body = json.loads(messages[1].raw)["body"]
    assert police_body["ontvanger_rol"] == "politie"
    assert "personen" not in police_body  # the police version carries no persons
    assert police_body["doorgezet_aan"]["partij"] == team
