"""The wire protocol's JSON Schemas: valid, closed, bounded, and read alike by both validators.

The gateway compiles one validator, the envelope's, on the hot path with jsonschema-rs and
keeps jsonschema as the reference; these tests build both the way the gateway does and hold
them to the same answers, down to the JSON pointer of the failing place.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import date, datetime
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import jsonschema_rs
import pytest
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

ROOT = Path(__file__).resolve().parents[2]
SCHEMA_DIR = ROOT / "schemas"
EXAMPLE_DIR = ROOT / "schemas" / "examples"
BASE_URI = "https://vtgw.invalid/schemas/v1/"
DRAFT_URI = "https://json-schema.org/draft/2020-12/schema"

MESSAGE_TYPES = (
    "enrichment.request",
    "enrichment.response",
    "case.notice",
    "zorgmelding.forward",
    "overdracht.notice",
    "overdracht.confirmation",
    "overdracht.deferral",
    "overdracht.withdrawal",
    "overdracht.question",
    "overdracht.answer",
    "monitoring.request",
    "monitoring.response",
    "regie.change",
    "case.return",
    "receipt",
    "error",
)
ANSWERS = (
    "enrichment.response",
    "overdracht.confirmation",
    "overdracht.deferral",
    "overdracht.withdrawal",
    "overdracht.question",
    "overdracht.answer",
    "monitoring.response",
    "receipt",
    "error",
)
NOT_ANSWERS = tuple(t for t in MESSAGE_TYPES if t not in ANSWERS)
WITHOUT_CASE = ("receipt", "error")
WITH_CASE = tuple(t for t in MESSAGE_TYPES if t not in WITHOUT_CASE)

# The files of the wire protocol. schemas/ also holds contract.schema.json (the partner
# contract files, not a message): it is loaded into the registries like every schema, but the
# wire rules below (closed objects, integers only, bounded strings) are checked on these.
WIRE_SCHEMAS = (
    "common.schema.json",
    "envelope.schema.json",
    *(f"{t}.schema.json" for t in MESSAGE_TYPES),
)

# ---------------------------------------------------------------------------------------------
# The four custom formats, as the gateway registers them in both validators.

BSN_SENTINELS = frozenset({"000000000", "999999999"})  # unknown, unborn child
RIJK_VAN_NIJMEGEN = ("GM1945", "GM0209", "GM0225", "GM0252", "GM0944", "GM0268", "GM0296")
RIVIERENLAND = ("GM0214", "GM0216", "GM0263", "GM1740", "GM0281", "GM1960", "GM0668", "GM0297")
REGION_GEMEENTEN = frozenset(RIJK_VAN_NIJMEGEN + RIVIERENLAND)
UTC_MILLIS = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z")
KALENDERDATUM = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def is_bsn(value: object) -> bool:
    """Nine digits passing the 11-test, or one of the two sentinels."""
    if not isinstance(value, str):
        return True
    if value in BSN_SENTINELS:
        return True
    if re.fullmatch(r"[0-9]{9}", value) is None:
        return False
    digits = [int(c) for c in value]
    return (sum(digits[i] * (9 - i) for i in range(8)) - digits[8]) % 11 == 0


def is_gemeentecode(value: object) -> bool:
    """A municipality code of the region."""
    return not isinstance(value, str) or value in REGION_GEMEENTEN


def is_utc_millis(value: object) -> bool:
    """RFC 3339 UTC with Z and milliseconds, and a real moment."""
    if not isinstance(value, str):
        return True
    if UTC_MILLIS.fullmatch(value) is None:
        return False
    try:
        datetime.fromisoformat(value.removesuffix("Z") + "+00:00")
    except ValueError:
        return False
    return True


def is_kalenderdatum(value: object) -> bool:
    """YYYY-MM-DD, and a real date."""
    if not isinstance(value, str):
        return True
    if KALENDERDATUM.fullmatch(value) is None:
        return False
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True


FORMATS: Mapping[str, Callable[[object], bool]] = {
    "bsn": is_bsn,
    "gemeentecode": is_gemeentecode,
    "utc-millis": is_utc_millis,
    "kalenderdatum": is_kalenderdatum,
}

# ---------------------------------------------------------------------------------------------
# Building the validators.


@cache
def load_schemas() -> dict[str, dict[str, Any]]:
    """Every schemas/*.schema.json, by file name."""
    return {
        path.name: json.loads(path.read_text(encoding="utf-8"))
        for path in sorted(SCHEMA_DIR.glob("*.schema.json"))
    }


def schema_uri(name: str, schema: Mapping[str, Any]) -> str:
    """A schema's canonical URI: its $id, else where the protocol would name it."""
    return str(schema.get("$id", BASE_URI + name))


@cache
def build_validators(
    name: str = "envelope.schema.json",
) -> tuple[jsonschema.Draft202012Validator, jsonschema_rs.Draft202012Validator]:
    """The reference and the hot-path validator of one schema, every schema in their registry."""
    schemas = load_schemas()
    py_registry: Registry[Any] = Registry().with_resources(
        (schema_uri(n, s), Resource.from_contents(s, default_specification=DRAFT202012))
        for n, s in schemas.items()
    )
    format_checker = jsonschema.FormatChecker()
    for format_name, check in FORMATS.items():
        format_checker.checks(format_name)(check)
    reference = jsonschema.Draft202012Validator(
        schemas[name], registry=py_registry, format_checker=format_checker
    )
    rs_registry = jsonschema_rs.Registry([(schema_uri(n, s), s) for n, s in schemas.items()])
    hot_path = jsonschema_rs.Draft202012Validator(
        schemas[name], registry=rs_registry, formats=dict(FORMATS), validate_formats=True
    )
    return reference, hot_path


# ---------------------------------------------------------------------------------------------
# Helpers.


def pointer(path: Sequence[str | int]) -> str:
    """RFC 6901 pointer of an instance path."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in path)


def failing_places(instance: object) -> tuple[set[str], set[str]]:
    """The pointers of every error, from the reference and from the hot-path validator."""
    reference, hot_path = build_validators()
    return (
        {pointer(list(e.absolute_path)) for e in reference.iter_errors(instance)},
        {pointer(e.instance_path) for e in hot_path.iter_errors(instance)},
    )


def assert_rejected_at(envelope: object, place: str) -> None:
    """Both validators reject the envelope, at exactly this place."""
    reference_places, hot_path_places = failing_places(envelope)
    assert reference_places == {place}, reference_places
    assert hot_path_places == {place}, hot_path_places


def assert_accepted(envelope: object) -> None:
    """Both validators accept the envelope."""
    reference_places, hot_path_places = failing_places(envelope)
    assert reference_places == set(), reference_places
    assert hot_path_places == set(), hot_path_places


def example(message_type: str) -> dict[str, Any]:
    """A fresh copy of the example envelope of a message type."""
    path = EXAMPLE_DIR / f"{message_type}.json"
    envelope: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return envelope


def put(document: Any, place: str, value: object) -> None:
    """Set the value at a JSON pointer that exists (or a new member of an existing object)."""
    *parents, last = [p.replace("~1", "/").replace("~0", "~") for p in place.split("/")[1:]]
    target = document
    for part in parents:
        target = target[int(part)] if isinstance(target, list) else target[part]
    if isinstance(target, list):
        target[int(last)] = value
    else:
        target[last] = value


# Keywords whose subschemas describe a value at a new place (a member, an item): an object
# described there must be closed. Keywords whose subschemas refine the value already described
# (conditions, combinations): those may narrow members named by the object they refine.
PLACING_ONE = ("items", "additionalProperties", "unevaluatedItems", "unevaluatedProperties")
PLACING_MANY = ("properties", "patternProperties", "$defs")
PLACING_LIST = ("prefixItems",)
REFINING_ONE = ("if", "then", "else", "not", "contains", "propertyNames")
REFINING_MANY = ("dependentSchemas",)
REFINING_LIST = ("allOf", "anyOf", "oneOf")
SAME_VALUE = ("if", "then", "else", "not", "dependentSchemas", "allOf", "anyOf", "oneOf")


Located = tuple[str, dict[str, Any], bool]


def walk(node: object, where: str = "", refining: bool = False) -> Iterator[Located]:
    """Every subschema of a schema with its location, and whether it only refines its parent."""
    if not isinstance(node, dict):
        return
    yield where, node, refining
    for keyword in (*PLACING_ONE, *REFINING_ONE):
        if keyword in node:
            yield from walk(
                node[keyword], f"{where}/{keyword}", refining or keyword in REFINING_ONE
            )
    for keyword in (*PLACING_MANY, *REFINING_MANY):
        for key, sub in node.get(keyword, {}).items():
            yield from walk(sub, f"{where}/{keyword}/{key}", refining or keyword in REFINING_MANY)
    for keyword in (*PLACING_LIST, *REFINING_LIST):
        for index, sub in enumerate(node.get(keyword, [])):
            yield from walk(sub, f"{where}/{keyword}/{index}", refining or keyword in REFINING_LIST)


def types_of(node: Mapping[str, Any]) -> set[str]:
    """The JSON types a subschema names."""
    declared = node.get("type", [])
    return {declared} if isinstance(declared, str) else set(declared)


def every_subschema() -> Iterator[Located]:
    """Every subschema of every wire schema, located as file#pointer."""
    for name in WIRE_SCHEMAS:
        for where, node, refining in walk(load_schemas()[name]):
            yield f"{name}#{where}", node, refining


# ---------------------------------------------------------------------------------------------
# The schemas themselves.


@pytest.mark.parametrize("name", sorted(load_schemas()))
def test_every_schema_is_a_valid_2020_12_schema(name: str) -> None:
    """Every schema file is a valid draft 2020-12 schema, and both validators compile it."""
    schema = load_schemas()[name]
    jsonschema.Draft202012Validator.check_schema(schema)
    build_validators(name)


def test_the_wire_schemas_are_all_there() -> None:
    """There is one schema per message type, plus the envelope and the shared definitions."""
    assert set(WIRE_SCHEMAS) <= set(load_schemas())


@pytest.mark.parametrize("name", WIRE_SCHEMAS)
def test_every_wire_schema_names_its_draft_and_its_protocol_id(name: str) -> None:
    """A wire schema declares draft 2020-12 and the $id https://vtgw.invalid/schemas/v1/<file>."""
    schema = load_schemas()[name]
    assert schema["$schema"] == DRAFT_URI
    assert schema["$id"] == BASE_URI + name


def test_references_between_files_are_relative() -> None:
    """No $ref names an absolute URI: files refer to each other by relative name."""
    absolute = [
        f"{where}: {node['$ref']}"
        for where, node, _ in every_subschema()
        if "$ref" in node and re.match(r"[a-z][a-z0-9+.-]*:", node["$ref"])
    ]
    assert absolute == []


def test_every_object_is_closed() -> None:
    """Every object described anywhere has type object and additionalProperties false."""
    open_objects = []
    for where, node, refining in every_subschema():
        names_object = "object" in types_of(node)
        describes_members = "properties" in node and not refining
        if (names_object or describes_members) and not (
            types_of(node) == {"object"} and node.get("additionalProperties") is False
        ):
            open_objects.append(where)
    assert open_objects == []


def test_refinements_only_narrow_members_their_object_names() -> None:
    """A condition or combination names no member that its closed object does not declare."""
    strays = []
    for name in WIRE_SCHEMAS:
        for where, node, refining in walk(load_schemas()[name]):
            if refining or "properties" not in node:
                continue
            declared = set(node["properties"])
            conditions = {k: v for k, v in node.items() if k in SAME_VALUE}
            for sub_where, sub, _ in walk(conditions):
                if sub_where.count("/properties/") == 0 and "properties" in sub:
                    strays += [
                        f"{name}#{where}{sub_where}: {member}"
                        for member in set(sub["properties"]) - declared
                    ]
    assert strays == []


def test_no_member_is_forbidden_with_the_false_schema() -> None:
    """Members are forbidden with common's absent ({"not": {}}), never with false.

    python-jsonschema reports a false subschema's error at the parent object, jsonschema-rs at
    the member: the two validators would name different pointers for the same rejection.
    """
    false_members = [
        f"{where}/properties/{member}"
        for where, node, _ in every_subschema()
        for member, sub in node.get("properties", {}).items()
        if sub is False
    ]
    assert false_members == []


def test_no_number_type_anywhere() -> None:
    """Numbers on the wire are integers only: no schema admits type number."""
    numbers = [where for where, node, _ in every_subschema() if "number" in types_of(node)]
    assert numbers == []


def test_every_string_has_a_max_length() -> None:
    """Every string has a maxLength (an enum or const bounds it by its values)."""
    unbounded = [
        where
        for where, node, _ in every_subschema()
        if "string" in types_of(node)
        and "maxLength" not in node
        and "enum" not in node
        and "const" not in node
    ]
    assert unbounded == []


def test_every_array_has_max_items() -> None:
    """Every array has a maxItems."""
    unbounded = [
        where
        for where, node, _ in every_subschema()
        if "array" in types_of(node) and "maxItems" not in node
    ]
    assert unbounded == []


def test_only_the_four_custom_formats_are_used() -> None:
    """Formats are bsn, gemeentecode, utc-millis or kalenderdatum: no standard format."""
    others = [
        f"{where}: {node['format']}"
        for where, node, _ in every_subschema()
        if "format" in node and node["format"] not in FORMATS
    ]
    assert others == []


def test_the_envelope_dispatches_every_type_to_its_closed_body_schema() -> None:
    """The envelope's type enum is the catalogue, and each type checks its body with its file."""
    envelope = load_schemas()["envelope.schema.json"]
    assert tuple(envelope["properties"]["type"]["enum"]) == MESSAGE_TYPES
    dispatch: dict[str, list[str]] = {}
    for rule in envelope["allOf"]:
        condition = rule["if"]["properties"]["type"]
        body = rule["then"].get("properties", {}).get("body")
        if "const" in condition and body is not None:
            dispatch.setdefault(condition["const"], []).append(body["$ref"])
    assert dispatch == {t: [f"{t}.schema.json"] for t in MESSAGE_TYPES}
    for message_type in MESSAGE_TYPES:
        body_schema = load_schemas()[f"{message_type}.schema.json"]
        assert body_schema["type"] == "object"
        assert body_schema["additionalProperties"] is False


# ---------------------------------------------------------------------------------------------
# The examples.


def test_there_is_one_example_per_message_type() -> None:
    """schemas/examples holds exactly one envelope per message type."""
    assert sorted(p.stem for p in EXAMPLE_DIR.glob("*.json")) == sorted(MESSAGE_TYPES)


@pytest.mark.parametrize("message_type", MESSAGE_TYPES)
def test_every_example_passes_both_validators(message_type: str) -> None:
    """Each example envelope, and its body on its own, passes the reference and the hot path."""
    envelope = example(message_type)
    assert envelope["type"] == message_type
    assert_accepted(envelope)
    reference, hot_path = build_validators(f"{message_type}.schema.json")
    assert list(reference.iter_errors(envelope["body"])) == []
    assert hot_path.is_valid(envelope["body"])


# ---------------------------------------------------------------------------------------------
# The envelope's rules.


@pytest.mark.parametrize("message_type", ANSWERS)
def test_an_answer_without_reply_to_is_rejected(message_type: str) -> None:
    """An answer must name the message it answers."""
    envelope = example(message_type)
    del envelope["reply_to"]
    assert_rejected_at(envelope, "")


@pytest.mark.parametrize("message_type", NOT_ANSWERS)
def test_a_message_that_answers_nothing_with_reply_to_is_rejected(message_type: str) -> None:
    """A message that is no answer carries no reply_to."""
    envelope = example(message_type)
    envelope["reply_to"] = envelope["id"]
    assert_rejected_at(envelope, "/reply_to")


@pytest.mark.parametrize("message_type", WITHOUT_CASE)
def test_a_receipt_or_error_with_a_case_is_rejected(message_type: str) -> None:
    """Receipts and errors carry no case."""
    envelope = example(message_type)
    envelope["case"] = {"ref": "VT-2026-000123", "gemeente": "GM0281"}
    assert_rejected_at(envelope, "/case")


@pytest.mark.parametrize("message_type", WITH_CASE)
def test_a_case_message_without_its_case_is_rejected(message_type: str) -> None:
    """Every message other than a receipt or error names its case."""
    envelope = example(message_type)
    del envelope["case"]
    assert_rejected_at(envelope, "")


def test_an_unknown_gemeente_is_rejected() -> None:
    """A municipality outside the region fails the gemeentecode format."""
    envelope = example("overdracht.notice")
    envelope["case"]["gemeente"] = "GM0363"
    assert_rejected_at(envelope, "/case/gemeente")


def test_a_sent_at_that_is_no_real_moment_is_rejected() -> None:
    """sent_at has the right shape but names no real moment: the utc-millis format fails."""
    envelope = example("overdracht.notice")
    envelope["sent_at"] = "2026-02-30T09:15:00.000Z"
    assert_rejected_at(envelope, "/sent_at")


@pytest.mark.parametrize(
    ("message_type", "place", "value"),
    [
        ("overdracht.notice", "/body/personen/0/bsn", 111222333),
        ("overdracht.notice", "/case/gemeente", 281),
        ("overdracht.notice", "/sent_at", 1795000000000),
        ("overdracht.notice", "/body/personen/0/geboortedatum", 19900101),
    ],
)
def test_a_formatted_field_of_the_wrong_type_is_rejected(
    message_type: str, place: str, value: object
) -> None:
    """A number where a formatted string belongs is rejected there (format checks pass non-strings).

    python-jsonschema calls a format check for every type, so a check must answer True for a
    non-string and leave the rejection to `type`; one that assumes a string raises instead.
    """
    envelope = example(message_type)
    put(envelope, place, value)
    assert_rejected_at(envelope, place)


@pytest.mark.parametrize(
    ("message_type", "place"),
    [
        ("overdracht.notice", "/surplus"),
        ("overdracht.notice", "/body/surplus"),
        ("overdracht.notice", "/body/warme_overdracht/surplus"),
        ("overdracht.notice", "/body/personen/0/surplus"),
        ("receipt", "/signature/surplus"),
    ],
)
def test_an_unknown_member_is_rejected(message_type: str, place: str) -> None:
    """Nothing the contract does not name can travel, at any level."""
    envelope = example(message_type)
    put(envelope, place, "x")
    assert_rejected_at(envelope, place.rsplit("/", 1)[0])


@pytest.mark.parametrize(
    ("message_type", "place", "value"),
    [
        ("overdracht.notice", "/version", 1.5),
        ("overdracht.notice", "/body/personen/0/adres/huisnummer", 1.5),
        ("overdracht.notice", "/body/veiligheidsvoorwaarden/0/nummer", 1.25),
        ("overdracht.notice", "/body/monitoring/momenten_maanden", [3, 12, 24.5]),
        ("monitoring.response", "/body/veiligheidsscore_professional/score", 6.5),
    ],
)
def test_a_float_anywhere_is_rejected(message_type: str, place: str, value: object) -> None:
    """Numbers are integers only: a fraction fails wherever it stands."""
    envelope = example(message_type)
    put(envelope, place, value)
    expected = place + "/2" if isinstance(value, list) else place
    assert_rejected_at(envelope, expected)


@pytest.mark.parametrize(
    ("message_type", "place", "value"),
    [
        ("error", "/body/detail", "first line\nsecond line"),
        ("error", "/body/detail", "a trailing newline\n"),
        ("overdracht.notice", "/sender", "vt-gz\n"),
        ("overdracht.notice", "/body/vt_contact/naam", "Testmedewerker Vt\n"),
    ],
)
def test_a_line_break_in_a_one_line_field_is_rejected(
    message_type: str, place: str, value: str
) -> None:
    """One-line fields refuse line breaks, a trailing one too (where Python's `$` would not)."""
    envelope = example(message_type)
    put(envelope, place, value)
    assert_rejected_at(envelope, place)


# ---------------------------------------------------------------------------------------------
# The bodies' rules.


def test_moment_a_with_a_warme_overdracht_is_rejected() -> None:
    """A handover after the veiligheidsbeoordeling is written only: no warm handover."""
    envelope = example("overdracht.notice")
    envelope["body"]["moment"] = "A"
    del envelope["body"]["vermoeden_weerlegd"]
    assert_rejected_at(envelope, "/body/warme_overdracht")


def test_moment_a_without_a_warme_overdracht_is_accepted() -> None:
    """A written handover at moment A passes without a warm handover or an onderzoek outcome."""
    envelope = example("overdracht.notice")
    envelope["body"]["moment"] = "A"
    del envelope["body"]["vermoeden_weerlegd"]
    del envelope["body"]["warme_overdracht"]
    assert_accepted(envelope)


@pytest.mark.parametrize("moment", ["B", "C"])
def test_moment_b_or_c_without_a_warme_overdracht_is_rejected(moment: str) -> None:
    """After onderzoek or voorwaarden en vervolg the handover is warm, in person."""
    envelope = example("overdracht.notice")
    envelope["body"]["moment"] = moment
    if moment == "C":
        del envelope["body"]["vermoeden_weerlegd"]
    del envelope["body"]["warme_overdracht"]
    assert_rejected_at(envelope, "/body")


def test_a_warme_overdracht_elsewhere_needs_its_reason() -> None:
    """A warm handover outside the household says where and why."""
    envelope = example("overdracht.notice")
    envelope["body"]["warme_overdracht"]["plaats"] = "anders"
    assert_rejected_at(envelope, "/body/warme_overdracht")


def test_no_monitoring_after_onderzoek_needs_a_refuted_suspicion_or_a_recorded_reason() -> None:
    """After onderzoek that did not refute the suspicion, no monitoring needs another reason."""
    envelope = example("overdracht.notice")
    envelope["body"]["monitoring"] = {
        "afgesproken": False,
        "reden_geen_monitoring": "vermoeden_weerlegd",
    }
    assert_rejected_at(envelope, "/body/monitoring/reden_geen_monitoring")
    envelope["body"]["vermoeden_weerlegd"] = True
    assert_accepted(envelope)


def test_monitoring_agreed_covers_3_and_12_months() -> None:
    """VT monitors at least at 3 and at 12 months."""
    envelope = example("overdracht.notice")
    envelope["body"]["monitoring"]["momenten_maanden"] = [3, 6]
    assert_rejected_at(envelope, "/body/monitoring/momenten_maanden")


def test_a_bsn_failing_the_11_test_is_rejected() -> None:
    """A BSN must pass the 11-test."""
    envelope = example("overdracht.notice")
    envelope["body"]["personen"][0]["bsn"] = "123456789"
    assert_rejected_at(envelope, "/body/personen/0/bsn")


@pytest.mark.parametrize("sentinel", sorted(BSN_SENTINELS))
def test_the_bsn_sentinels_are_accepted(sentinel: str) -> None:
    """000000000 (unknown) and 999999999 (unborn child) are accepted as BSN."""
    envelope = example("overdracht.notice")
    envelope["body"]["personen"][0]["bsn"] = sentinel
    assert_accepted(envelope)


def test_enrichment_response_with_betrokkenheid_on_n_is_rejected() -> None:
    """Only a person known to the partner (J) has an involvement."""
    envelope = example("enrichment.response")
    known = envelope["body"]["personen"][2]
    envelope["body"]["personen"][0]["betrokkenheid"] = known["betrokkenheid"]
    assert_rejected_at(envelope, "/body/personen/0/betrokkenheid")


def test_enrichment_response_on_j_without_contact_is_rejected() -> None:
    """A person known to the partner (J) comes with a contact."""
    envelope = example("enrichment.response")
    del envelope["body"]["personen"][2]["contact"]
    assert_rejected_at(envelope, "/body/personen/2")


def test_a_zorgmelding_reported_to_the_police_carries_no_persons() -> None:
    """The police hear only that the report was forwarded, to whom and when."""
    envelope = example("zorgmelding.forward")
    envelope["recipient"] = "politie-on"
    body = envelope["body"]
    body["ontvanger_rol"] = "politie"
    body["doorgezet_aan"] = {"naam": "Wijkteam Nijmegen (voorbeeld)", "partij": "lt-nijmegen"}
    body["doorgezet_op"] = envelope["sent_at"]
    del body["zorgmelding"], body["check_directbetrokkenen_op"]
    assert_rejected_at(envelope, "/body/personen")
    del body["personen"]
    assert_accepted(envelope)


def test_a_case_notice_of_the_jeugdbeschermingstafel_names_the_subregio() -> None:
    """A request to the Jeugdbeschermingstafel names the table's sub-region, and no outcome."""
    envelope = example("case.notice")
    envelope["body"]["soort"] = "aanvraag_jeugdbeschermingstafel"
    reference_places, hot_path_places = failing_places(envelope)
    assert reference_places == hot_path_places == {"/body", "/body/uitkomst", "/body/vervolg"}
    del envelope["body"]["uitkomst"], envelope["body"]["vervolg"]
    envelope["body"]["subregio"] = "rivierenland"
    assert_accepted(envelope)


def test_stable_safety_comes_after_direct_safety() -> None:
    """Monitoring cannot report stable safety without direct safety."""
    envelope = example("monitoring.response")
    envelope["body"]["stabiele_veiligheid"] = True
    envelope["body"]["directe_veiligheid"] = False
    assert_rejected_at(envelope, "/body/directe_veiligheid")
