"""Messages the hub builds: signed, schema-checked, with the digest of what is sent."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import pytest

from gateway.bootstrap import Core
from gateway.domain.calendar import WorkingDayCalendar
from gateway.domain.canonical import digest
from gateway.domain.contracts import Contracts, PublicKey
from gateway.domain.envelope import CaseRef
from gateway.domain.errors import ErrorCode, PermanentError
from gateway.service.outgoing import Hub, build
from gateway.service.pipeline import Accepted, Outcome, Rejected, Verifier, verify_message
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


def test_vt_rotates_its_key_at_the_successors_not_before_and_both_verify_in_the_overlap(
    core: Core, keyed_contracts: Contracts, examples: dict[str, Any]
) -> None:
    """A rotation of VT's own key (docs/keys.md): the hub holds the old key and its successor.

    Before the switch it signs with the old key, from the successor's `not_before` on with
    the new one, without a restart. A partner accepts both during the overlap; once the
    old key's `not_after` has passed, a message it signed verifies no more.
    """
    switch = NOW + timedelta(days=10)
    old_ends = switch + timedelta(days=3)
    old, new = vector_key("vt-gz"), vector_key("vt-gz", "next")
    old_public = keyed_contracts.hub.key(old.kid)
    assert old_public is not None
    new_public = PublicKey(new.kid, new.public_bytes(), switch, None)
    contracts = Contracts(
        replace(c, keys=(replace(old_public, not_after=old_ends), new_public))
        if c.party == "vt-gz"
        else c
        for c in keyed_contracts
    )
    hub = Hub(
        Verifier(contracts, core.validator, "vt-gz"),
        old,
        WorkingDayCalendar.for_region(core.region),
        successors=(new,),
    )
    example = examples["enrichment.request"]

    def built(at: datetime) -> bytes:
        return build(
            hub,
            message_type="enrichment.request",
            recipient="jbg",
            body=example["body"],
            case=CaseRef(**example["case"]),
            now=at,
        ).raw

    def at_jbg(raw: bytes, at: datetime) -> Outcome:
        jbg = Verifier(contracts, core.validator, "jbg")
        return verify_message(raw, transport_identity="vt-gz", now=at, verifier=jbg)

    before, after = built(switch - timedelta(hours=1)), built(switch + timedelta(hours=1))
    assert json.loads(before)["signature"]["kid"] == old.kid
    assert json.loads(after)["signature"]["kid"] == new.kid
    in_overlap = switch + timedelta(days=1)
    assert isinstance(at_jbg(before, in_overlap), Accepted)
    assert isinstance(at_jbg(after, in_overlap), Accepted)
    expired = at_jbg(before, old_ends + timedelta(seconds=1))
    assert isinstance(expired, Rejected)
    assert expired.code is ErrorCode.KEY_NOT_VALID
    assert isinstance(at_jbg(after, old_ends + timedelta(seconds=1)), Accepted)


def test_a_successor_without_its_key_in_the_contract_is_never_used(
    hub: Hub, examples: dict[str, Any]
) -> None:
    """A private key the contract does not name cannot take over: the hub keeps its key."""
    stray = replace(hub, successors=(vector_key("vt-gz", "stray"),))
    assert stray.key_at(NOW + timedelta(days=400)) == hub.signing_key
