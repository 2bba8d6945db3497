"""The verification pipeline: each rule of PROTOCOL.md that needs no transport."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from gateway.domain.canonical import digest
from gateway.domain.errors import ErrorCode
from gateway.service.pipeline import MAX_MESSAGE_BYTES, Accepted, Rejected
from tests.unit.conftest import NOW, Sign, Verify


def rejected(outcome: Accepted | Rejected) -> Rejected:
    assert isinstance(outcome, Rejected), f"accepted, expected a rejection: {outcome}"
    return outcome


def test_a_valid_signed_message_is_accepted_with_its_digest(sign: Sign, verify: Verify) -> None:
    """A partner's message, signed by its key, is accepted with the sha256 of its canonical form."""
    outcome = verify(sign("enrichment.response"), identity="jbg")
    assert isinstance(outcome, Accepted)
    assert outcome.envelope.type == "enrichment.response"
    assert outcome.digest.startswith("sha256:")
    assert len(outcome.digest) == len("sha256:") + 64


def test_the_digest_covers_the_signature_too(sign: Sign, verify: Verify) -> None:
    """The digest is over the whole envelope, signature included, in RFC 8785 form."""
    raw = sign("enrichment.response")
    outcome = verify(raw, identity="jbg")
    assert isinstance(outcome, Accepted)
    whole = json.loads(raw)
    without_signature = {k: v for k, v in whole.items() if k != "signature"}
    assert outcome.digest == digest(whole)
    assert outcome.digest != digest(without_signature)


def test_the_digest_does_not_depend_on_the_bytes_as_sent(sign: Sign, verify: Verify) -> None:
    """Whitespace and member order as sent do not change the digest: it is over RFC 8785."""
    raw = sign("enrichment.response")
    reordered = json.dumps(dict(reversed(list(json.loads(raw).items()))), indent=3).encode()
    first, second = verify(raw, identity="jbg"), verify(reordered, identity="jbg")
    assert isinstance(first, Accepted)
    assert isinstance(second, Accepted)
    assert first.digest == second.digest


def test_a_message_over_256_kib_is_too_large(sign: Sign, verify: Verify) -> None:
    """At most 256 KiB as sent: TOO_LARGE, before anything is parsed."""
    raw = sign("enrichment.response")
    assert verify(raw + b" " * (MAX_MESSAGE_BYTES - len(raw)), identity="jbg") == verify(
        raw, identity="jbg"
    )
    outcome = rejected(verify(raw + b" " * (MAX_MESSAGE_BYTES + 1 - len(raw)), identity="jbg"))
    assert outcome.code is ErrorCode.TOO_LARGE


@pytest.mark.parametrize(
    "raw",
    [b"", b"{", b"[1]", b'"text"', b"\xef\xbb\xbf{}", b'{"a":NaN}', b'{"a":1,"a":2}', b"\xff"],
    ids=["empty", "truncated", "array", "string", "bom", "nan", "duplicate-name", "not-utf8"],
)
def test_what_is_not_an_i_json_object_is_malformed(verify: Verify, raw: bytes) -> None:
    """Not JSON, not UTF-8, not an object, duplicate names, NaN: MALFORMED."""
    assert rejected(verify(raw, identity="jbg")).code is ErrorCode.MALFORMED


def test_nesting_deeper_than_32_is_malformed(verify: Verify) -> None:
    """Too deep is MALFORMED, however deep (no recursion error escapes)."""
    for depth in (33, 100_000):
        raw = b'{"a":' + b"[" * depth + b"]" * depth + b"}"
        assert rejected(verify(raw, identity="jbg")).code is ErrorCode.MALFORMED


def test_an_unknown_sender_is_refused(sign: Sign, verify: Verify) -> None:
    """A sender without a contract: UNKNOWN_SENDER, pointer /sender."""
    outcome = rejected(verify(sign("enrichment.response", sender="onbekend"), identity="onbekend"))
    assert (outcome.code, outcome.rejection.pointer) == (ErrorCode.UNKNOWN_SENDER, "/sender")


def test_the_sender_must_be_the_party_the_transport_authenticated(
    sign: Sign, verify: Verify
) -> None:
    """AMQP user rvdk sending as jbg: SENDER_MISMATCH."""
    outcome = rejected(verify(sign("enrichment.response"), identity="rvdk"))
    assert outcome.code is ErrorCode.SENDER_MISMATCH


def test_the_bridge_signs_only_for_parties_on_the_email_transport(
    sign: Sign, verify: Verify
) -> None:
    """The e-mail bridge may send as lt-tiel (e-mail) but not as jbg (AMQP)."""
    assert isinstance(verify(sign("overdracht.confirmation"), identity="vtgw-bridge"), Accepted)
    outcome = rejected(verify(sign("enrichment.response"), identity="vtgw-bridge"))
    assert outcome.code is ErrorCode.SENDER_MISMATCH


def test_an_email_party_cannot_send_as_itself(sign: Sign, verify: Verify) -> None:
    """A party on the e-mail transport has no keys of its own: only the bridge speaks for it."""
    outcome = rejected(verify(sign("overdracht.confirmation"), identity="lt-tiel"))
    assert outcome.code is ErrorCode.SENDER_MISMATCH


def test_a_changed_body_fails_the_signature(sign: Sign, verify: Verify) -> None:
    """One changed value after signing: SIGNATURE_INVALID."""
    obj = json.loads(sign("enrichment.response"))
    obj["thread"] = obj["thread"][:-1] + ("0" if obj["thread"][-1] != "0" else "1")
    outcome = rejected(verify(json.dumps(obj).encode(), identity="jbg"))
    assert outcome.code is ErrorCode.SIGNATURE_INVALID


@pytest.mark.parametrize(
    ("label", "why"),
    [("unknown", "unknown kid"), ("revoked", "revoked"), ("expired", "expired")],
)
def test_a_key_that_is_not_valid_does_not_verify(
    sign: Sign, verify: Verify, label: str, why: str
) -> None:
    """Unknown kid, revoked key, expired key: KEY_NOT_VALID at /signature/kid."""
    outcome = rejected(verify(sign("enrichment.response", key_label=label), identity="jbg"))
    assert (outcome.code, outcome.rejection.pointer) == (ErrorCode.KEY_NOT_VALID, "/signature/kid")


def test_a_key_is_judged_by_sent_at_for_its_start(sign: Sign, verify: Verify) -> None:
    """A key whose not_before lies after sent_at did not exist when the message was signed."""
    outcome = rejected(
        verify(sign("enrichment.response", key_label="not-yet-valid"), identity="jbg")
    )
    assert outcome.code is ErrorCode.KEY_NOT_VALID


def test_a_resend_keeps_verifying_within_the_maximum_age(sign: Sign, verify: Verify) -> None:
    """A resend keeps its sent_at: 6 days old and signed by a valid key, it still verifies."""
    raw = sign("enrichment.response", sent_at=NOW - timedelta(days=6))
    assert isinstance(verify(raw, identity="jbg"), Accepted)


def test_a_schema_error_names_its_json_pointer(sign: Sign, verify: Verify) -> None:
    """SCHEMA_INVALID carries the pointer of the first failing place."""
    outcome = rejected(
        verify(
            sign("enrichment.response", case={"ref": "VT-2026-000123", "gemeente": "GM0363"}),
            identity="jbg",
        )
    )
    assert (outcome.code, outcome.rejection.pointer) == (ErrorCode.SCHEMA_INVALID, "/case/gemeente")


def test_a_schema_error_detail_carries_no_personal_data(sign: Sign, verify: Verify) -> None:
    """The detail names the rule, never the value: a wrong BSN is not echoed back."""
    obj = json.loads(sign("overdracht.notice"))
    obj["body"]["personen"][0]["bsn"] = "123456780"
    resigned = sign("overdracht.notice", body=obj["body"])
    outcome = rejected(verify(resigned, identity="vt-gz", receiver="lt-tiel"))
    assert outcome.code is ErrorCode.SCHEMA_INVALID
    assert outcome.rejection.pointer == "/body/personen/0/bsn"
    assert "123456780" not in outcome.rejection.detail


def test_a_message_more_than_five_minutes_ahead_is_future(sign: Sign, verify: Verify) -> None:
    """sent_at more than 5 minutes in the future: FUTURE; 5 minutes exactly is accepted."""
    assert isinstance(
        verify(sign("enrichment.response", sent_at=NOW + timedelta(minutes=5)), identity="jbg"),
        Accepted,
    )
    outcome = rejected(
        verify(
            sign("enrichment.response", sent_at=NOW + timedelta(minutes=5, seconds=1)),
            identity="jbg",
        )
    )
    assert outcome.code is ErrorCode.FUTURE


def test_a_message_older_than_the_contracts_maximum_age_is_stale(
    sign: Sign, verify: Verify
) -> None:
    """Older than the sender's maximum age (7 days by default): STALE."""
    outcome = rejected(
        verify(
            sign("enrichment.response", sent_at=NOW - timedelta(days=7, seconds=1)), identity="jbg"
        )
    )
    assert outcome.code is ErrorCode.STALE


def test_an_unknown_recipient_is_refused(sign: Sign, verify: Verify) -> None:
    """A recipient without a contract: UNKNOWN_RECIPIENT."""
    outcome = rejected(verify(sign("enrichment.response", recipient="onbekend"), identity="jbg"))
    assert outcome.code is ErrorCode.UNKNOWN_RECIPIENT


def test_partner_to_partner_traffic_is_not_permitted(sign: Sign, verify: Verify) -> None:
    """v1 carries no partner-to-partner messages: jbg to rvdk is NOT_PERMITTED at the hub."""
    outcome = rejected(verify(sign("enrichment.response", recipient="rvdk"), identity="jbg"))
    assert (outcome.code, outcome.rejection.pointer) == (ErrorCode.NOT_PERMITTED, "/recipient")


def test_a_type_the_contract_does_not_allow_is_not_permitted(
    sign: Sign, verify: Verify, examples: dict[str, dict[str, object]]
) -> None:
    """A lokaal team may not send an overdracht.notice: that is VT's message."""
    raw = sign("overdracht.notice", sender="lt-tiel", recipient="vt-gz")
    outcome = rejected(verify(raw, identity="vtgw-bridge"))
    assert (outcome.code, outcome.rejection.pointer) == (ErrorCode.NOT_PERMITTED, "/type")


def test_moviera_is_not_permitted_for_maasdriel_and_zaltbommel(sign: Sign, verify: Verify) -> None:
    """Moviera is not active in Maasdriel and Zaltbommel (annex 5, note 18)."""
    for gemeente in ("GM0263", "GM0297"):
        raw = sign(
            "overdracht.notice",
            recipient="moviera",
            case={"ref": "VT-2026-000123", "gemeente": gemeente},
        )
        outcome = rejected(verify(raw, identity="vt-gz", receiver="moviera"))
        assert (outcome.code, outcome.rejection.pointer) == (
            ErrorCode.NOT_PERMITTED,
            "/case/gemeente",
        )
    raw = sign("overdracht.notice", recipient="moviera")
    assert isinstance(verify(raw, identity="vt-gz", receiver="moviera"), Accepted)


def test_a_team_may_not_send_about_another_municipalitys_case(sign: Sign, verify: Verify) -> None:
    """lt-tiel confirming a Nijmegen case: outside its werkgebied, NOT_PERMITTED."""
    raw = sign("overdracht.confirmation", case={"ref": "VT-2026-000123", "gemeente": "GM0268"})
    outcome = rejected(verify(raw, identity="vtgw-bridge"))
    assert outcome.code is ErrorCode.NOT_PERMITTED


def test_a_rejection_is_answered_to_the_authenticated_sender(sign: Sign, verify: Verify) -> None:
    """The error goes to the sender where known, replying to its id in its thread."""
    obj = json.loads(sign("enrichment.response", recipient="onbekend"))
    outcome = rejected(verify(json.dumps(obj).encode(), identity="jbg"))
    assert (outcome.notify, outcome.message_id, outcome.thread) == ("jbg", obj["id"], obj["thread"])


def test_a_receipt_or_error_is_never_answered(sign: Sign, verify: Verify) -> None:
    """No error about a receipt or an error, so that no two systems can loop."""
    for message_type in ("receipt", "error"):
        raw = sign(message_type, sender="jbg", recipient="onbekend")
        outcome = rejected(verify(raw, identity="jbg"))
        assert outcome.notify is None


def test_an_unreadable_message_is_answered_to_the_transport_identity_or_kept(
    verify: Verify,
) -> None:
    """Garbage from a known broker user gets no error (no id to reply to): kept for inspection."""
    outcome = rejected(verify(b"{not json", identity="jbg"))
    assert (outcome.notify, outcome.message_id) == (None, None)
    outcome = rejected(verify(b'{"id":"5e0f6c1e-5b7a-4c43-9d64-4f61f1a4b1a1"}', identity="jbg"))
    assert outcome.notify == "jbg"
