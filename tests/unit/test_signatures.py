"""Ed25519 signatures over the canonical envelope; strict base64url (PROTOCOL.md, "Signature")."""

from __future__ import annotations

import base64
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
import rfc8785
from hypothesis import given
from hypothesis import strategies as st

from gateway.domain.envelope import CaseRef, Envelope, Signature
from gateway.domain.signatures import (
    SigningKey,
    b64url_decode,
    b64url_encode,
    sign,
    signature_verifies,
    signing_bytes,
)

# RFC 8032, section 7.1, TEST 1: the empty message.
RFC8032_SECRET = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
RFC8032_PUBLIC = bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
RFC8032_SIGNATURE = bytes.fromhex(
    "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
)

B64URL_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

# Fixed keys: Ed25519 is deterministic, so the tests are too.
KEY = SigningKey.from_seed("jbg-test-1", bytes(range(32)))
OTHER_KEY = SigningKey.from_seed("jbg-test-2", bytes(range(1, 33)))

JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1)
    | st.text(max_size=20)
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
BODIES = st.dictionaries(st.text(max_size=12), JSON_VALUES, max_size=6)


def envelope(**changes: Any) -> Envelope:
    """An enrichment.response from jbg to VT, unsigned."""
    fields: dict[str, Any] = {
        "id": "dd6a30c4-42dd-4a22-9540-f9fe5be1aed8",
        "type": "enrichment.response",
        "sender": "jbg",
        "recipient": "vt-gz",
        "sent_at": datetime(2026, 11, 28, 13, 52, 35, 123000, tzinfo=UTC),
        "thread": "881a3efd-5221-47fd-8b10-b7e872c95cf4",
        "reply_to": "881a3efd-5221-47fd-8b10-b7e872c95cf4",
        "case": CaseRef("VT-2026-000123", "GM0281"),
        "body": {"personen": [{"persoon_id": "p1", "indicatie_bekend": "N"}]},
    }
    return Envelope(**(fields | changes))


def verifies(signed: Envelope, public_key: bytes) -> bool:
    assert signed.signature is not None
    return signature_verifies(public_key, signing_bytes(signed), signed.signature.value)


# --- strict base64url ------------------------------------------------------------------


@given(st.binary(max_size=100))
def test_base64url_decoding_inverts_encoding(data: bytes) -> None:
    """Every byte string survives encode -> decode unchanged."""
    assert b64url_decode(b64url_encode(data)) == data


@given(st.binary(max_size=100))
def test_base64url_encoding_is_unpadded_and_url_safe(data: bytes) -> None:
    """The encoding uses only the URL-safe alphabet and carries no '=' padding."""
    assert set(b64url_encode(data)) <= set(B64URL_ALPHABET)


@given(st.binary(min_size=1, max_size=100).filter(lambda d: len(d) % 3 != 0))
def test_padded_base64url_is_rejected(data: bytes) -> None:
    """The padded form of an encoding is refused, though it names the same bytes."""
    padded = base64.urlsafe_b64encode(data).decode("ascii")
    assert padded.endswith("=")
    with pytest.raises(ValueError, match="unpadded"):
        b64url_decode(padded)


@given(st.binary(min_size=64, max_size=64), st.integers(min_value=1, max_value=15))
def test_a_non_canonical_final_character_of_a_signature_is_rejected(
    data: bytes, low_bits: int
) -> None:
    """Flipping the unused low bits of the last of 86 characters is refused, not decoded."""
    text = b64url_encode(data)
    assert len(text) == 86
    last = B64URL_ALPHABET.index(text[-1])
    altered = text[:-1] + B64URL_ALPHABET[last ^ low_bits]
    # A lenient decoder ignores those bits and returns the same 64 bytes: the
    # alteration would go unnoticed unless the decoder is strict.
    assert base64.urlsafe_b64decode(altered + "==") == data
    with pytest.raises(ValueError, match="canonical"):
        b64url_decode(altered)


@pytest.mark.parametrize(
    "text",
    [
        "AAAA+AAA",  # standard alphabet, not URL-safe
        "AAAA/AAA",
        "AAAA AAA",  # whitespace a lenient decoder skips
        "AAAA\nAAA",
        "A",  # no whole byte
        "AAAA.AAA",  # not in any alphabet
        "\u00c4AAAAAAA",  # not ASCII
    ],
)
def test_text_outside_the_canonical_base64url_form_is_rejected(text: str) -> None:
    """Anything but the one canonical unpadded URL-safe encoding raises ValueError."""
    with pytest.raises(ValueError):  # noqa: PT011 - each form has its own message
        b64url_decode(text)


# --- RFC 8032 -----------------------------------------------------------------------


def test_rfc8032_test_vector_1_gives_its_public_key() -> None:
    """The secret key of RFC 8032 TEST 1 yields the RFC's public key."""
    assert SigningKey.from_seed("rfc8032-1", RFC8032_SECRET).public_bytes() == RFC8032_PUBLIC


def test_rfc8032_test_vector_1_gives_its_signature_of_the_empty_message() -> None:
    """Signing the empty message with the TEST 1 key gives the RFC's signature, base64url."""
    key = SigningKey.from_seed("rfc8032-1", RFC8032_SECRET)
    assert key.sign_bytes(b"") == b64url_encode(RFC8032_SIGNATURE)


def test_rfc8032_test_vector_1_signature_verifies() -> None:
    """The RFC's signature of the empty message verifies under the RFC's public key."""
    assert signature_verifies(RFC8032_PUBLIC, b"", b64url_encode(RFC8032_SIGNATURE))


def test_rfc8032_test_vector_1_signature_does_not_verify_another_message() -> None:
    """The RFC's signature of the empty message does not verify a one-byte message."""
    assert not signature_verifies(RFC8032_PUBLIC, b"\x00", b64url_encode(RFC8032_SIGNATURE))


# --- signing and verifying envelopes ------------------------------------------------------


@given(BODIES)
def test_signing_bytes_are_rfc8785_of_the_envelope_without_signature(
    body: dict[str, Any],
) -> None:
    """The signed bytes are exactly the RFC 8785 form of the envelope minus `signature`."""
    signed = sign(envelope(body=body), KEY)
    unsigned = {k: v for k, v in signed.to_json().items() if k != "signature"}
    assert signing_bytes(signed) == rfc8785.dumps(unsigned)


def test_signing_bytes_do_not_depend_on_the_signature() -> None:
    """An envelope has the same signed bytes unsigned, signed, and signed by another key."""
    unsigned = envelope()
    assert signing_bytes(unsigned) == signing_bytes(sign(unsigned, KEY))
    assert signing_bytes(unsigned) == signing_bytes(sign(unsigned, OTHER_KEY))


def test_sign_adds_an_ed25519_signature_with_the_keys_kid() -> None:
    """`sign` sets alg Ed25519, the key's kid and a 64-byte unpadded base64url value."""
    signature = sign(envelope(), KEY).signature
    assert signature is not None
    assert (signature.alg, signature.kid) == ("Ed25519", "jbg-test-1")
    assert len(b64url_decode(signature.value)) == 64


@given(BODIES)
def test_a_signed_envelope_verifies_with_the_signers_public_key(body: dict[str, Any]) -> None:
    """sign -> verify round trip: the signature verifies with the signer's public key."""
    assert verifies(sign(envelope(body=body), KEY), KEY.public_bytes())


def test_a_signed_envelope_survives_json_serialisation() -> None:
    """Rebuilt from its JSON object, a signed envelope still verifies: it signs the wire form."""
    signed = sign(envelope(), KEY)
    assert verifies(Envelope.from_json(signed.to_json()), KEY.public_bytes())


@pytest.mark.parametrize(
    "change",
    [
        {"body": {"personen": [{"persoon_id": "p1", "indicatie_bekend": "J"}]}},
        {"recipient": "rvdk"},
        {"sent_at": datetime(2026, 11, 28, 13, 52, 35, 124000, tzinfo=UTC)},
        {"case": CaseRef("VT-2026-000123", "GM0268")},
        {"reply_to": None},
    ],
    ids=["body", "recipient", "sent_at", "case", "reply_to"],
)
def test_a_changed_message_does_not_verify(change: dict[str, Any]) -> None:
    """Changing any member after signing makes the signature fail."""
    signed = sign(envelope(), KEY)
    assert not verifies(replace(signed, **change), KEY.public_bytes())


def test_a_signature_does_not_verify_under_another_key() -> None:
    """A signature by one key fails under another party's public key."""
    assert not verifies(sign(envelope(), KEY), OTHER_KEY.public_bytes())


@pytest.mark.parametrize("length", [0, 32, 63, 65, 128])
def test_a_signature_of_the_wrong_length_does_not_verify(length: int) -> None:
    """A signature value that does not decode to 64 bytes fails, without raising."""
    message = signing_bytes(envelope())
    real = b64url_decode(KEY.sign_bytes(message))
    value = b64url_encode((real * 3)[:length])
    assert not signature_verifies(KEY.public_bytes(), message, value)


def test_a_signature_with_padding_does_not_verify() -> None:
    """A valid signature written with '=' padding is not accepted as the same signature."""
    message = signing_bytes(envelope())
    padded = base64.urlsafe_b64encode(b64url_decode(KEY.sign_bytes(message))).decode("ascii")
    assert padded.endswith("==")
    assert not signature_verifies(KEY.public_bytes(), message, padded)


def test_a_signature_with_a_non_canonical_last_character_does_not_verify() -> None:
    """The same signature bytes, encoded with altered spare bits, fail verification."""
    message = signing_bytes(envelope())
    value = KEY.sign_bytes(message)
    last = B64URL_ALPHABET.index(value[-1])
    altered = value[:-1] + B64URL_ALPHABET[last ^ 0b0001]
    assert signature_verifies(KEY.public_bytes(), message, value)
    assert not signature_verifies(KEY.public_bytes(), message, altered)


@pytest.mark.parametrize("length", [0, 31, 33, 64])
def test_a_public_key_of_the_wrong_length_verifies_nothing(length: int) -> None:
    """A public key that is not 32 bytes gives False, never an exception."""
    message = signing_bytes(envelope())
    public_key = (KEY.public_bytes() * 2)[:length]
    assert not signature_verifies(public_key, message, KEY.sign_bytes(message))


def test_with_signature_replaces_only_the_signature() -> None:
    """Re-signing replaces the previous signature and leaves every other member alone."""
    first = sign(envelope(), KEY)
    second = sign(first, OTHER_KEY)
    assert second.signature == Signature(
        "Ed25519", "jbg-test-2", OTHER_KEY.sign_bytes(signing_bytes(first))
    )
    assert replace(second, signature=None) == replace(first, signature=None)
