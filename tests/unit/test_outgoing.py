"""Messages the hub builds: signed, schema-checked, with the digest of what is sent."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from gateway.bootstrap import Core
from gateway.domain.calendar import WorkingDayCalendar
from gateway.domain.canonical import digest
from gateway.domain.contracts import Contracts
from gateway.domain.envelope import CaseRef
from gateway.domain.errors import ErrorCode, PermanentError
from gateway.service.outgoing import Hub, build
from gateway.service.pipeline import Accepted, Verifier, verify_message
from gateway.vectors import vector_key
from tests.unit.conftest import NOW


@pytest.fixture
def hub(core: Core, keyed_contracts: Contracts) -> Hub:
    return Hub(
        Verifier(keyed_contracts, core.validator, "vt-gz"),
        vector_key("vt-gz"),
        WorkingDayCalendar.for_region(core.region),
    )


def test_a_built_message_carries_the_digest_of_its_bytes_and_verifies(
    hub: Hub, core: Core, keyed_contracts: Contracts, examples: dict[str, Any]
) -> None:
    """The stored digest is sha256 of the canonical sent envelope; the recipient accepts it."""
    example = examples["enrichment.request"]
    message = build(
        hub,
        message_type="enrichment.request",
        recipient="jbg",
        body=example["body"],
        case=CaseRef(**example["case"]),
        now=NOW,
    )
    assert message.digest == digest(json.loads(message.raw))
    outcome = verify_message(
        message.raw,
        transport_identity="vt-gz",
        now=NOW + timedelta(seconds=1),
        verifier=Verifier(keyed_contracts, core.validator, "jbg"),
    )
    assert isinstance(outcome, Accepted)
    assert outcome.digest == message.digest


def test_a_wrong_body_from_the_case_system_is_refused_with_its_pointer(
    hub: Hub, examples: dict[str, Any]
) -> None:
    """VT's own messages pass the same schema: a bad BSN is SCHEMA_INVALID before storing."""
    body = json.loads(json.dumps(examples["enrichment.request"]["body"]))
    body["personen"][0]["bsn"] = "123456780"
    with pytest.raises(PermanentError) as refused:
        build(
            hub,
            message_type="enrichment.request",
            recipient="jbg",
            body=body,
            case=CaseRef("VT-2026-000123", "GM0281"),
            now=NOW,
        )
    assert refused.value.code is ErrorCode.SCHEMA_INVALID
    assert refused.value.rejection.pointer == "/body/personen/0/bsn"


def test_the_contracts_apply_to_what_the_hub_sends(hub: Hub, examples: dict[str, Any]) -> None:
    """Moviera for Zaltbommel is refused by the hub itself: NOT_PERMITTED (annex 5, note 18)."""
    example = examples["overdracht.notice"]
    with pytest.raises(PermanentError) as refused:
        build(
            hub,
            message_type="overdracht.notice",
            recipient="moviera",
            body=example["body"],
            case=CaseRef("VT-2026-000123", "GM0297"),
            now=NOW,
        )
    assert refused.value.code is ErrorCode.NOT_PERMITTED
