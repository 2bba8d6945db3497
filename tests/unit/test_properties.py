"""Properties of the protocol over generated messages (hypothesis)."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.bootstrap import Paths, load_core
from gateway.domain.contracts import Contracts
from gateway.domain.envelope import Envelope, format_timestamp
from gateway.domain.signatures import sign
from gateway.service.pipeline import Accepted, Rejected, Verifier, verify_message
from gateway.vectors import VECTOR_NOW, load_examples, signer_key, with_test_keys
from tests.unit.conftest import examples_dir
from tests.unit.strategies import near_misses, valid_envelopes

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _now_text() -> str:
    return format_timestamp(VECTOR_NOW - timedelta(seconds=30))


CORE = load_core(Paths.defaults())
CONTRACTS: Contracts = with_test_keys(CORE.contracts)
EXAMPLES = {e["type"]: e for e in load_examples(examples_dir())}
VALID = valid_envelopes(EXAMPLES, CORE.reference, _now_text)


def _signed(obj: dict[str, Any]) -> tuple[bytes, Envelope]:
    envelope = sign(Envelope.from_json(obj), signer_key(CONTRACTS, obj["sender"]))
    return json.dumps(envelope.to_json(), ensure_ascii=False).encode(), envelope


def _verify(raw: bytes, obj: dict[str, Any]) -> Accepted | Rejected:
    signer = CONTRACTS.signer_of(obj["sender"])
    assert signer is not None
    return verify_message(
        raw,
        transport_identity=signer.party,
        now=VECTOR_NOW,
        verifier=Verifier(CONTRACTS, CORE.validator, obj["recipient"]),
    )


@SETTINGS
@given(VALID)
def test_any_valid_envelope_survives_serialise_parse_verify(obj: dict[str, Any]) -> None:
    """Serialise -> parse -> verify gives back the same envelope, accepted."""
    raw, envelope = _signed(obj)
    outcome = _verify(raw, obj)
    assert isinstance(outcome, Accepted), outcome
    assert outcome.envelope == envelope
    assert outcome.envelope.to_json() == envelope.to_json()


@SETTINGS
@given(VALID, st.data())
def test_any_single_changed_byte_fails_verification(
    obj: dict[str, Any], data: st.DataObject
) -> None:
    """Change any one byte of a signed message: it is never accepted."""
    raw, _ = _signed(obj)
    index = data.draw(st.integers(min_value=0, max_value=len(raw) - 1))
    replacement = data.draw(
        st.integers(min_value=0, max_value=255).filter(lambda b: b != raw[index])
    )
    changed = raw[:index] + bytes([replacement]) + raw[index + 1 :]
    assert isinstance(_verify(changed, obj), Rejected)


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=2048))
def test_random_bytes_only_ever_give_a_typed_rejection(raw: bytes) -> None:
    """Whatever arrives, the pipeline answers with a rejection, never an exception."""
    outcome = verify_message(
        raw,
        transport_identity="jbg",
        now=VECTOR_NOW,
        verifier=Verifier(CONTRACTS, CORE.validator, "vt-gz"),
    )
    assert isinstance(outcome, Rejected)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(
            [
                "version",
                "id",
                "type",
                "sender",
                "recipient",
                "sent_at",
                "thread",
                "reply_to",
                "case",
                "body",
                "signature",
                "x",
            ]
        ),
        json_values,
    )
)
def test_random_envelope_shaped_json_only_ever_gives_a_typed_rejection(obj: dict[str, Any]) -> None:
    """Objects with the envelope's member names and random values: rejected, typed, no crash."""
    raw = json.dumps(obj).encode()
    outcome = verify_message(
        raw,
        transport_identity="jbg",
        now=VECTOR_NOW,
        verifier=Verifier(CONTRACTS, CORE.validator, "vt-gz"),
    )
    assert isinstance(outcome, Rejected)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(VALID | near_misses(VALID))
def test_compiled_and_reference_validators_accept_and_reject_the_same(obj: dict[str, Any]) -> None:
    """Differential: jsonschema-rs (hot path) and jsonschema (reference) agree on every message."""
    assert (CORE.validator.first_problem(obj) is None) == CORE.reference.is_valid(obj)
