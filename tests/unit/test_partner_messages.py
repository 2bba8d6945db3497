"""The messages a partner signs: receipts, errors and answers, checked as the hub checks them."""

from __future__ import annotations

import json
from typing import Any

import pytest

from adapters.amqp.partner.messages import (
    AnswerRequest,
    Partner,
    build_answer,
    encode,
    error_for,
    parse_answer_request,
    receipt_for,
)
from gateway.bootstrap import Core
from gateway.domain.canonical import digest
from gateway.domain.contracts import Contracts
from gateway.domain.envelope import CaseRef, format_timestamp
from gateway.domain.errors import ConfigurationError, ErrorCode, PermanentError, Rejection
from gateway.domain.signatures import SigningKey
from gateway.service.pipeline import Accepted, Verifier, verify_message
from gateway.vectors import VECTOR_NOW, vector_key

NOW = VECTOR_NOW
REQUEST_ID = "881a3efd-5221-47fd-8b10-b7e872c95cf4"
CASE = CaseRef("VT-2026-000123", "GM0281")


@pytest.fixture
def partner(core: Core, keyed_contracts: Contracts) -> Partner:
    return Partner.create(
        party="jbg", contracts=keyed_contracts, validator=core.validator, key=vector_key("jbg")
    )


def at_hub(partner: Partner, raw: bytes) -> Any:
    verifier = Verifier(partner.contracts, partner.validator, "vt-gz")
    return verify_message(raw, transport_identity="jbg", now=NOW, verifier=verifier)


def answer(partner: Partner, examples: dict[str, dict[str, Any]], **changes: Any) -> Any:
    request = AnswerRequest(
        type=changes.pop("type", "enrichment.response"),
        reply_to=REQUEST_ID,
        body=changes.pop("body", examples["enrichment.response"]["body"]),
    )
    return build_answer(
        partner,
        request,
        answered_type=changes.pop("answered_type", "enrichment.request"),
        answered_thread=REQUEST_ID,
        answered_case=changes.pop("answered_case", CASE),
        now=NOW,
    )


def test_the_partner_is_refused_when_its_contract_does_not_know_its_key(
    core: Core, keyed_contracts: Contracts
) -> None:
    """A key the contract does not list would make every answer KEY_NOT_VALID: refuse to start."""
    with pytest.raises(ConfigurationError, match="no key"):
        Partner.create(
            party="jbg",
            contracts=keyed_contracts,
            validator=core.validator,
            key=SigningKey.generate("jbg-other"),
        )


def test_the_partner_is_refused_when_its_private_key_is_not_the_contracts_key(
    core: Core, keyed_contracts: Contracts
) -> None:
    """Same kid, other key pair: refused before anything is signed."""
    with pytest.raises(ConfigurationError, match="not the key"):
        Partner.create(
            party="jbg",
            contracts=keyed_contracts,
            validator=core.validator,
            key=SigningKey.generate("jbg-test-1"),
        )


def test_a_receipt_has_exactly_the_digest_and_the_moment_and_verifies_at_the_hub(
    partner: Partner,
) -> None:
    """reply_to the received id, thread the received thread, body {digest, received_at}."""
    message_digest = "sha256:" + "ab" * 32
    receipt = receipt_for(
        partner, message_id=REQUEST_ID, thread=REQUEST_ID, message_digest=message_digest, now=NOW
    )

    obj = receipt.to_json()
    assert (obj["type"], obj["sender"], obj["recipient"]) == ("receipt", "jbg", "vt-gz")
    assert (obj["reply_to"], obj["thread"]) == (REQUEST_ID, REQUEST_ID)
    assert obj["body"] == {"digest": message_digest, "received_at": format_timestamp(NOW)}
    assert "case" not in obj
    assert isinstance(at_hub(partner, encode(receipt)), Accepted)


def test_an_error_carries_code_detail_and_pointer_and_verifies_at_the_hub(
    partner: Partner,
) -> None:
    """The rejection as the error body, replying to the refused id."""
    rejection = Rejection(ErrorCode.SIGNATURE_INVALID, "signature does not verify", "/signature")
    error = error_for(
        partner, message_id=REQUEST_ID, thread=REQUEST_ID, rejection=rejection, now=NOW
    )

    assert error.body == {
        "code": "SIGNATURE_INVALID",
        "detail": "signature does not verify",
        "pointer": "/signature",
    }
    assert error.reply_to == REQUEST_ID
    assert isinstance(at_hub(partner, encode(error)), Accepted)


def test_an_answer_takes_thread_and_case_of_the_answered_message_and_goes_to_vt(
    partner: Partner, examples: dict[str, dict[str, Any]]
) -> None:
    """The partner's system gives type, reply_to and body; the adapter fills in the rest."""
    envelope = answer(partner, examples)

    assert (envelope.sender, envelope.recipient) == ("jbg", "vt-gz")
    assert (envelope.thread, envelope.reply_to, envelope.case) == (REQUEST_ID, REQUEST_ID, CASE)
    assert envelope.id != REQUEST_ID
    outcome = at_hub(partner, encode(envelope))
    assert isinstance(outcome, Accepted)
    assert outcome.digest == digest(envelope.to_json())


def test_an_answer_body_that_breaks_the_schema_is_refused_with_its_pointer(
    partner: Partner, examples: dict[str, dict[str, Any]]
) -> None:
    """SCHEMA_INVALID with the pointer into the body, before anything is stored or sent."""
    with pytest.raises(PermanentError) as refused:
        answer(partner, examples, body={"personen": [{"persoon_id": "p1"}]})

    assert refused.value.code is ErrorCode.SCHEMA_INVALID
    assert refused.value.rejection.pointer.startswith("/body/personen/0")


@pytest.mark.parametrize("message_type", ["receipt", "error"])
def test_receipts_and_errors_are_the_adapters_own_and_cannot_be_posted(
    partner: Partner, examples: dict[str, dict[str, Any]], message_type: str
) -> None:
    """The partner's system never sends a receipt or an error itself: NOT_PERMITTED."""
    with pytest.raises(PermanentError) as refused:
        answer(partner, examples, type=message_type)

    assert refused.value.code is ErrorCode.NOT_PERMITTED


def test_an_answer_of_a_type_the_contract_does_not_allow_is_refused(
    partner: Partner, examples: dict[str, dict[str, Any]]
) -> None:
    """jbg may not send monitoring.response (no monitoring after a handover to a GI)."""
    with pytest.raises(PermanentError) as refused:
        answer(
            partner,
            examples,
            type="monitoring.response",
            body=examples["monitoring.response"]["body"],
            answered_type="monitoring.request",
        )

    assert refused.value.code is ErrorCode.NOT_PERMITTED


def test_an_answer_that_does_not_answer_the_answered_type_is_refused(
    partner: Partner, examples: dict[str, dict[str, Any]]
) -> None:
    """An enrichment.response to an overdracht.notice: INVALID_STATE."""
    with pytest.raises(PermanentError) as refused:
        answer(partner, examples, answered_type="overdracht.notice")

    assert refused.value.code is ErrorCode.INVALID_STATE


def test_an_answer_request_is_exactly_type_reply_to_and_body() -> None:
    """Parsed from I-JSON; any other member is refused."""
    raw = json.dumps({"type": "enrichment.response", "reply_to": REQUEST_ID, "body": {}}).encode()

    assert parse_answer_request(raw) == AnswerRequest("enrichment.response", REQUEST_ID, {})
    with pytest.raises(PermanentError) as refused:
        parse_answer_request(raw[:-1] + b',"case":{}}')
    assert refused.value.code is ErrorCode.SCHEMA_INVALID


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (b"{not json", ErrorCode.MALFORMED),
        (b'{"type":"x","reply_to":"y","body":{"n":1.5}}', ErrorCode.MALFORMED),
        (b'{"type":"x","reply_to":"y","body":[]}', ErrorCode.SCHEMA_INVALID),
        (b'{"type":"x","body":{}}', ErrorCode.SCHEMA_INVALID),
    ],
)
def test_an_answer_request_that_is_not_i_json_or_misses_a_member_is_refused(
    raw: bytes, code: ErrorCode
) -> None:
    """Fractions are refused as the hub refuses them; members must have their kinds."""
    with pytest.raises(PermanentError) as refused:
        parse_answer_request(raw)

    assert refused.value.code is code


def test_every_answer_gets_a_new_id_and_the_moment_it_was_built(
    partner: Partner, examples: dict[str, dict[str, Any]]
) -> None:
    """Two answers are two messages; sent_at is the adapter's clock."""
    first, second = answer(partner, examples), answer(partner, examples)

    assert first.id != second.id
    assert first.sent_at == second.sent_at == NOW
