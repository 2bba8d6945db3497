"""Schema validation of envelopes: the compiled validator, the reference, and their problems."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from gateway.bootstrap import Core, Paths, load_core
from gateway.domain.formats import is_bsn
from gateway.resources import data_dir
from gateway.service.validation import EnvelopeValidator, ReferenceValidator, json_pointer

ROOT = Path(__file__).resolve().parents[2]

Mutation = Callable[[dict[str, Any]], None]


def examples_dir() -> Path:
    """The example envelopes: schemas/examples/, or tests/fixtures/examples/ before the move."""
    moved = data_dir("schemas") / "examples"
    return moved if moved.is_dir() else ROOT / "tests" / "fixtures" / "examples"


EXAMPLES: dict[str, dict[str, Any]] = {
    example["type"]: example
    for example in (
        json.loads(path.read_text(encoding="utf-8"))
        for path in sorted(examples_dir().glob("*.json"))
    )
}


@pytest.fixture(scope="module")
def loaded_core() -> Core:
    """The core as the gateway builds it: region, contracts, both validators compiled once."""
    return load_core(Paths.defaults())


@pytest.fixture(scope="module")
def validator(loaded_core: Core) -> EnvelopeValidator:
    return loaded_core.validator


@pytest.fixture(scope="module")
def reference(loaded_core: Core) -> ReferenceValidator:
    return loaded_core.reference


def example(message_type: str) -> dict[str, Any]:
    """A deep copy of the example of a type, free to change."""
    return copy.deepcopy(EXAMPLES[message_type])


def unescape(pointer: str) -> list[str]:
    """RFC 6901 section 4: split on '/', then ~1 -> '/', then ~0 -> '~'."""
    assert pointer == "" or pointer.startswith("/")
    return [part.replace("~1", "/").replace("~0", "~") for part in pointer.split("/")[1:]]


# --- json_pointer -------------------------------------------------------------------------


def test_the_pointer_of_the_whole_document_is_empty() -> None:
    """The empty path is the empty pointer, not '/'."""
    assert json_pointer([]) == ""


def test_a_pointer_joins_member_names_and_array_indexes() -> None:
    """Each step is '/' and the member name, or the index in decimal."""
    assert json_pointer(["body", "personen", 0, "bsn"]) == "/body/personen/0/bsn"


@pytest.mark.parametrize(
    ("name", "escaped"),
    [
        ("a~b", "/a~0b"),
        ("a/b", "/a~1b"),
        ("~1", "/~01"),
        ("/0", "/~10"),
        ("~/", "/~0~1"),
        ("", "/"),
    ],
)
def test_tilde_and_slash_in_a_member_name_are_escaped(name: str, escaped: str) -> None:
    """'~' becomes ~0 and '/' becomes ~1, with '~' escaped first so ~1 stays literal."""
    assert json_pointer([name]) == escaped


@given(st.lists(st.text(alphabet="ab~/01 ", max_size=6) | st.integers(0, 99), max_size=6))
def test_a_pointer_decodes_back_to_its_path(path: list[str | int]) -> None:
    """Unescaping the pointer per RFC 6901 gives the path's parts back, in order."""
    assert unescape(json_pointer(path)) == [str(part) for part in path]


@given(st.lists(st.text(alphabet="ab~/01", min_size=1, max_size=5), min_size=1, max_size=4))
def test_a_pointer_finds_its_value_in_a_document(path: list[str]) -> None:
    """Resolving the pointer, RFC 6901 style, in a document built along the path finds the leaf."""
    document: Any = "leaf"
    for name in reversed(path):
        document = {"~": "decoy", "/": "decoy", "~1": "decoy", name: document}
    node = document
    for part in unescape(json_pointer(path)):
        node = node[part]
    assert node == "leaf"


# --- the two validators agree on the examples -----------------------------------------


def test_there_are_examples_of_every_message_type(validator: EnvelopeValidator) -> None:
    """Every type of the envelope schema's catalogue has an example to validate."""
    assert set(validator.message_types) == set(EXAMPLES)


@pytest.mark.parametrize("message_type", sorted(EXAMPLES))
def test_both_validators_accept_every_example(
    message_type: str, validator: EnvelopeValidator, reference: ReferenceValidator
) -> None:
    """The compiled validator finds no problem and the reference lists none."""
    obj = example(message_type)
    assert validator.first_problem(obj) is None
    assert reference.problems(obj) == []
    assert reference.is_valid(obj)


MUTATIONS: dict[str, Mutation] = {
    "unknown top-level member": lambda o: o.update(extra=True),
    "unknown body member": lambda o: o["body"].update(extra=True),
    "body missing": lambda o: o.pop("body"),
    "signature missing": lambda o: o.pop("signature"),
    "version 2": lambda o: o.update(version=2),
    "id in capitals": lambda o: o.update(id=o["id"].upper()),
    "sent_at without millis": lambda o: o.update(sent_at=o["sent_at"][:19] + "Z"),
    "sent_at on Feb 30": lambda o: o.update(sent_at="2026-02-30T12:00:00.000Z"),
    "type not in the catalogue": lambda o: o.update(type="overdracht.unknown"),
    "signature padded": lambda o: o["signature"].update(value=o["signature"]["value"] + "=="),
    "body not an object": lambda o: o.update(body=[]),
}


@pytest.mark.parametrize("message_type", sorted(EXAMPLES))
@pytest.mark.parametrize("mutation", sorted(MUTATIONS))
def test_both_validators_reject_a_broken_example_at_the_same_place(
    message_type: str,
    mutation: str,
    validator: EnvelopeValidator,
    reference: ReferenceValidator,
) -> None:
    """Where the compiled validator finds the first problem, the reference lists one too."""
    obj = example(message_type)
    MUTATIONS[mutation](obj)
    problem = validator.first_problem(obj)
    problems = reference.problems(obj)
    assert problem is not None
    assert not reference.is_valid(obj)
    assert problem.pointer in {p.pointer for p in problems}


def test_a_format_applies_to_strings_only(reference: ReferenceValidator) -> None:
    """A BSN given as a number fails `type`, not the bsn format (JSON Schema 2020-12)."""
    obj = example("enrichment.request")
    obj["body"]["personen"][0]["bsn"] = 111222333
    keywords = {p.message for p in reference.problems(obj)}
    assert keywords == {"fails schema keyword 'type'"}


def test_the_reference_lists_every_problem_in_path_order(reference: ReferenceValidator) -> None:
    """Two wrong fields give two pointers, ordered by their path."""
    obj = example("enrichment.request")
    obj["body"]["personen"][2]["bsn"] = "111222334"
    obj["body"]["personen"][0]["rol"] = "onbekende-rol"
    pointers = [p.pointer for p in reference.problems(obj)]
    assert pointers == ["/body/personen/0/rol", "/body/personen/2/bsn"]


# --- first_problem ----------------------------------------------------------------------


def test_first_problem_points_at_a_wrong_bsn_in_the_body(validator: EnvelopeValidator) -> None:
    """A BSN failing the 11-test is reported at its own pointer, naming the format."""
    obj = example("enrichment.request")
    obj["body"]["personen"][1]["bsn"] = "111222334"
    problem = validator.first_problem(obj)
    assert problem is not None
    assert problem.pointer == "/body/personen/1/bsn"
    assert problem.message == "does not match format 'bsn'"


def test_first_problem_points_at_the_object_missing_a_member(validator: EnvelopeValidator) -> None:
    """A missing body member is reported at the body, naming the member the schema requires."""
    obj = example("enrichment.request")
    del obj["body"]["reden"]
    problem = validator.first_problem(obj)
    assert problem is not None
    assert problem.pointer == "/body"
    assert problem.message == "misses required member 'reden'"


def test_first_problem_points_at_a_municipality_outside_the_region(
    validator: EnvelopeValidator,
) -> None:
    """A real CBS code outside the region fails the gemeentecode format at /case/gemeente."""
    obj = example("overdracht.notice")
    obj["case"]["gemeente"] = "GM0363"
    problem = validator.first_problem(obj)
    assert problem is not None
    assert problem.pointer == "/case/gemeente"
    assert problem.message == "does not match format 'gemeentecode'"


def test_first_problem_points_at_a_wrong_enum_value(validator: EnvelopeValidator) -> None:
    """A value outside a body field's enumeration is reported at that field."""
    obj = example("enrichment.response")
    obj["body"]["personen"][0]["indicatie_bekend"] = "misschien"
    problem = validator.first_problem(obj)
    assert problem is not None
    assert problem.pointer == "/body/personen/0/indicatie_bekend"


# --- a detail never echoes the message ------------------------------------------------------


def valid_bsns() -> st.SearchStrategy[str]:
    def complete(first_eight: str) -> str:
        check = sum(int(d) * (9 - i) for i, d in enumerate(first_eight)) % 11
        return first_eight + str(check)

    return (
        st.text(alphabet="123456789", min_size=8, max_size=8)
        .map(complete)
        .filter(lambda bsn: len(bsn) == 9)
    )


def broken_bsns() -> st.SearchStrategy[str]:
    """Nine digits that fail the 11-test: a valid BSN with its check digit moved on."""
    return valid_bsns().map(lambda bsn: bsn[:8] + str((int(bsn[8]) + 1) % 10))


SYNTHETIC_NAMES = st.builds(
    lambda first, last: f"{first} Zwanenburg-{last}",
    st.sampled_from(["Annelies", "Bartholomeus", "Cornelia", "Dirkje"]),
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=4, max_size=10),
)

# Places where a value does not belong, each with how to put it there.
MISPLACED: dict[str, Callable[[dict[str, Any], str], None]] = {
    "in the bsn field": lambda o, v: o["body"]["personen"][0].update(bsn=v),
    "in an enum field": lambda o, v: o["body"]["personen"][0].update(rol=v),
    "in a const field": lambda o, v: o["body"].update(reden=v),
    "as the municipality": lambda o, v: o["case"].update(gemeente=v),
    "as the sender": lambda o, v: o.update(sender=v),
    "as the message type": lambda o, v: o.update(type=v),
    "as the sent_at": lambda o, v: o.update(sent_at=v),
    "as a birth date": lambda o, v: o["body"]["personen"][0].update(geboortedatum=v),
    "as an unknown member's value": lambda o, v: o["body"]["personen"][0].update(notitie=v),
    "as an unknown member's name": lambda o, v: o["body"]["personen"][0].update({v: "x"}),
    "as a too long surname": lambda o, v: o["body"]["personen"][0].update(
        geslachtsnaam=(v + " ") * 40
    ),
    "in a list where a name goes": lambda o, v: o["body"]["personen"][0].update(geslachtsnaam=[v]),
}


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    value=valid_bsns() | broken_bsns() | SYNTHETIC_NAMES, place=st.sampled_from(sorted(MISPLACED))
)
def test_a_problems_detail_never_contains_the_misplaced_value(
    value: str, place: str, validator: EnvelopeValidator, reference: ReferenceValidator
) -> None:
    """A BSN or a name in the wrong place is reported without being echoed in the detail."""
    assume(place != "in the bsn field" or not is_bsn(value))  # a BSN belongs there
    obj = example("enrichment.request")
    MISPLACED[place](obj, value)
    problem = validator.first_problem(obj)
    assert problem is not None
    problems = reference.problems(obj)
    assert problems
    for detail in [problem.message, *(p.message for p in problems)]:
        assert value not in detail
        assert "Zwanenburg" not in detail
        assert "\n" not in detail


def test_a_detail_does_not_echo_a_bsn_placed_in_a_name_field(
    validator: EnvelopeValidator, reference: ReferenceValidator
) -> None:
    """A valid BSN in a field that must not hold one does not come back in any detail."""
    obj = example("enrichment.request")
    obj["body"]["personen"][0]["voornamen"] = ["123456782"]
    problem = validator.first_problem(obj)
    assert problem is not None
    assert problem.pointer == "/body/personen/0/voornamen"
    assert "123456782" not in problem.message
    assert all("123456782" not in p.message for p in reference.problems(obj))
