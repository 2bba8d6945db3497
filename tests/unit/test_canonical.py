"""RFC 8785 canonical form and the digest (PROTOCOL.md, "Signature", "Digest")."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import rfc8785
from hypothesis import given
from hypothesis import strategies as st

from gateway.domain.canonical import CanonicalObject, canonical_bytes, digest
from gateway.domain.errors import ErrorCode, PermanentError

CONFORMANCE = ("arrays", "french", "structures", "unicode", "values", "weird")

json_scalars = (
    st.none() | st.booleans() | st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1) | st.text()
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@pytest.mark.parametrize("name", CONFORMANCE)
def test_reference_data_canonicalises_byte_for_byte(rfc8785_dir: Path, name: str) -> None:
    """Each input of the RFC 8785 reference data gives exactly its output bytes."""
    value = json.loads((rfc8785_dir / "input" / f"{name}.json").read_bytes())
    expected = (rfc8785_dir / "output" / f"{name}.json").read_bytes()
    assert canonical_bytes(value) == expected


@pytest.mark.parametrize("name", CONFORMANCE)
def test_reference_data_matches_its_hex_form(rfc8785_dir: Path, name: str) -> None:
    """The canonical bytes equal the reference's hex listing too."""
    value = json.loads((rfc8785_dir / "input" / f"{name}.json").read_bytes())
    hex_text = (rfc8785_dir / "outhex" / f"{name}.txt").read_text()
    assert canonical_bytes(value) == bytes.fromhex("".join(hex_text.split()))


@pytest.mark.parametrize("name", ["structures", "weird", "unicode"])
def test_member_wise_assembly_equals_whole_canonicalisation(rfc8785_dir: Path, name: str) -> None:
    """Joining canonical members in UTF-16 order is the canonical object (reference data)."""
    value = json.loads((rfc8785_dir / "input" / f"{name}.json").read_bytes())
    if isinstance(value, dict):
        assert CanonicalObject(value).whole() == rfc8785.dumps(value)


@given(st.dictionaries(st.text(max_size=6), json_values, max_size=8))
def test_member_wise_assembly_equals_rfc8785_for_any_object(obj: dict[str, object]) -> None:
    """Any object: the member-wise form is byte-equal to the library's canonical form."""
    assert CanonicalObject(obj).whole() == rfc8785.dumps(obj)


@given(st.dictionaries(st.text(max_size=6), json_values, min_size=1, max_size=8))
def test_leaving_out_a_member_equals_canonicalising_without_it(obj: dict[str, object]) -> None:
    """The signed bytes (envelope without `signature`) come out as if the member were absent."""
    name = sorted(obj)[0]
    rest = {k: v for k, v in obj.items() if k != name}
    assert CanonicalObject(obj).without(name) == rfc8785.dumps(rest)


def test_digest_is_sha256_hex_over_the_canonical_form() -> None:
    """`sha256:<lowercase hex>` over the RFC 8785 bytes of the whole envelope."""
    envelope = {"b": 1, "a": "x"}
    expected = "sha256:" + hashlib.sha256(b'{"a":"x","b":1}').hexdigest()
    assert digest(envelope) == expected


def test_an_integer_beyond_i_json_has_no_canonical_form() -> None:
    """Numbers outside the IEEE 754 exact range cannot be canonicalised: rejected, typed."""
    with pytest.raises(PermanentError) as caught:
        canonical_bytes({"n": 2**64})
    assert caught.value.code is ErrorCode.SCHEMA_INVALID


@given(
    st.dictionaries(st.text(max_size=6), json_values, max_size=6),
    st.text(max_size=6),
    json_values,
)
def test_adding_a_member_equals_canonicalising_with_it(
    obj: dict[str, object], name: str, value: object
) -> None:
    """The digest of a signed envelope, built by adding `signature`, is the whole's."""
    assert CanonicalObject(obj).with_member(name, value).whole() == rfc8785.dumps(
        obj | {name: value}
    )
