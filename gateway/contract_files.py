"""Contract files and region data on disk: read, check, load.

`check_contracts` reports every problem at once, each with its file and the
JSON pointer of the field: all schema errors of all files
(schemas/contract.schema.json), values the schema cannot judge (keys that do
not decode, office hours that end before they start), and the rules across
files:

- the file name is the party id plus .toml;
- exactly one party has role vt (the hub), serving the whole region;
- `signed_by` names a party with role bridge;
- every municipality of the region has exactly one lokaal team, exactly one
  bijzondere_zorg (confused persons, §5.1) and exactly one police unit, the one
  config/region.toml names for it;
- werkgebied codes are municipalities of the region;
- a key id (kid) is used once across all contracts;
- message types exist in the catalogue, and the hub may receive what a party
  may send and send what a party may receive;
- a party's retries fit within the hub's max_age (a resend keeps its sent_at).

`load_contracts` refuses to return contracts with any problem. Only the
`*.toml` files at the top of the folder are contracts.
"""

from __future__ import annotations

import json
import tomllib
from collections import defaultdict
from collections.abc import Generator, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import timedelta
from functools import cache
from pathlib import Path
from typing import Any

# jsonschema ships no type information; pyproject.toml's mypy overrides do not
# (yet) name it, and types-jsonschema may or may not be installed.
from jsonschema import (  # type: ignore[import-untyped, unused-ignore]
    Draft202012Validator,
    ValidationError,
)
from jsonschema.exceptions import SchemaError  # type: ignore[import-untyped, unused-ignore]

from gateway.domain.contracts import (
    Contracts,
    Role,
    Transport,
    contract_from_mapping,
    decode_public_key,
    parse_duration,
    parse_utc_moment,
)
from gateway.domain.errors import ConfigurationError
from gateway.domain.region import Region, region_from_mapping
from gateway.resources import data_dir

CONTRACT_SCHEMA = "contract.schema.json"
ENVELOPE_SCHEMA = "envelope.schema.json"
REGION_FILE = "region.toml"

# Schema keywords whose failure is a rule of the contract rather than a field's
# shape: their subschema's description says the rule, and the message says it.
_RULE_KEYWORDS = frozenset({"not", "const", "contains", "maxItems", "minItems", "anyOf"})


@dataclass(frozen=True, slots=True)
class ContractProblem:
    """One thing wrong in the contracts.

    `file` is the file name in the contracts folder ("" for a problem of the
    contracts as a whole, such as a municipality without a lokaal team);
    `field` is the RFC 6901 JSON pointer of the field ("" for the whole file).
    """

    file: str
    field: str
    message: str

    def __str__(self) -> str:
        where = self.file or "contracts"
        return f"{where}{'#' + self.field if self.field else ''}: {self.message}"


def load_region(path: Path) -> Region:
    """The region from config/region.toml."""
    try:
        with path.open("rb") as stream:
            data = tomllib.load(stream)
    except OSError as exc:
        raise ConfigurationError(f"cannot read region file {path}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"region file {path} is not valid TOML: {exc}") from exc
    return region_from_mapping(data)


def message_catalogue(schemas: Path) -> frozenset[str]:
    """The message types: `properties.type.enum` of the envelope schema, the one list."""
    path = schemas / ENVELOPE_SCHEMA
    try:
        envelope = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigurationError(f"cannot read the envelope schema {path}: {exc}") from exc
    enum = _resolve(envelope, _resolve(envelope, envelope.get("properties", {})).get("type", {}))
    types = enum.get("enum") if isinstance(enum, Mapping) else None
    if not isinstance(types, list) or not all(isinstance(t, str) for t in types):
        raise ConfigurationError(f"{path} has no properties.type.enum listing the message types")
    return frozenset(types)


def check_contracts(
    directory: Path, *, region: Region | None = None, schemas: Path | None = None
) -> list[ContractProblem]:
    """Every problem of the contracts in `directory`; empty when they are sound.

    The region and the schemas folder default to the gateway's own
    (config/region.toml, schemas/).
    """
    return _Check.run(directory, region, schemas).problems


def load_contracts(
    directory: Path, *, region: Region | None = None, schemas: Path | None = None
) -> Contracts:
    """The contracts in `directory`; ConfigurationError listing every problem, if any."""
    check = _Check.run(directory, region, schemas)
    if check.problems:
        lines = "\n".join(f"  {problem}" for problem in check.problems)
        raise ConfigurationError(
            f"{len(check.problems)} problem(s) in the contracts in {directory}:\n{lines}"
        )
    try:
        return Contracts(contract_from_mapping(data) for data in check.files.values())
    except (KeyError, ValueError) as exc:  # the check lets no such file through
        raise ConfigurationError(f"contracts in {directory}: {exc}") from exc


# --- reading and the schema ---------------------------------------------------


@dataclass(slots=True)
class _Check:
    files: dict[str, Mapping[str, Any]]
    problems: list[ContractProblem]

    @classmethod
    def run(cls, directory: Path, region: Region | None, schemas: Path | None) -> _Check:
        schemas = data_dir("schemas") if schemas is None else schemas
        region = load_region(data_dir("config") / REGION_FILE) if region is None else region
        validator = _validator(schemas / CONTRACT_SCHEMA)
        catalogue = message_catalogue(schemas)
        check = cls(files={}, problems=[])
        for path in _contract_paths(directory):
            data = check._read(path)
            if data is None:
                continue
            check.files[path.name] = data
            check.problems.extend(_schema_problems(path.name, data, validator))
        # A field the schema already refused is not reported again by the
        # checks that read it leniently.
        refused = {(problem.file, problem.field) for problem in check.problems}
        later = [
            *(p for name, data in check.files.items() for p in _value_problems(name, data)),
            *_cross_file_problems(
                [_Facts.of(name, data) for name, data in check.files.items()], region, catalogue
            ),
        ]
        check.problems.extend(p for p in later if (p.file, p.field) not in refused)
        return check

    def _read(self, path: Path) -> Mapping[str, Any] | None:
        try:
            with path.open("rb") as stream:
                return tomllib.load(stream)
        except OSError as exc:
            self.problems.append(ContractProblem(path.name, "", f"cannot be read: {exc.strerror}"))
        except tomllib.TOMLDecodeError as exc:
            self.problems.append(ContractProblem(path.name, "", f"not valid TOML: {exc}"))
        return None


def _contract_paths(directory: Path) -> list[Path]:
    if not directory.is_dir():
        raise ConfigurationError(f"contracts folder {directory} does not exist")
    return sorted(p for p in directory.glob("*.toml") if p.is_file())


@cache
def _validator(path: Path) -> Draft202012Validator:
    try:
        schema = json.loads(path.read_text(encoding="utf-8"))
        Draft202012Validator.check_schema(schema)
    except (OSError, ValueError, SchemaError) as exc:
        raise ConfigurationError(f"contract schema {path} is unusable: {exc}") from exc
    return Draft202012Validator(schema)


def _schema_problems(
    file: str, data: Mapping[str, Any], validator: Draft202012Validator
) -> Iterator[ContractProblem]:
    errors = sorted(validator.iter_errors(data), key=lambda e: _pointer(e.absolute_path))
    for error in errors:
        yield from _problems_of(file, error)


def _problems_of(file: str, error: ValidationError) -> Iterator[ContractProblem]:
    pointer = _pointer(error.absolute_path)
    instance, schema = error.instance, error.schema
    if error.validator == "additionalProperties" and isinstance(instance, Mapping):
        known = schema.get("properties", {}) if isinstance(schema, Mapping) else {}
        for name in sorted(set(instance) - set(known)):
            yield ContractProblem(file, _pointer([*error.absolute_path, name]), "unknown field")
        return
    required = error.validator_value if error.validator == "required" else None
    if isinstance(required, list) and isinstance(instance, Mapping):
        for name in required:
            if name not in instance and repr(name) in error.message:
                yield ContractProblem(file, _pointer([*error.absolute_path, name]), "missing")
                return
    description = schema.get("description") if isinstance(schema, Mapping) else None
    message = str(error.message)
    if description and error.validator in _RULE_KEYWORDS:
        message = "not allowed: " + description if error.validator == "not" else description
    elif description and error.validator == "pattern":
        message = f"{instance!r} is not {description[:1].lower()}{description[1:]}"
    yield ContractProblem(file, pointer, message)


def _pointer(path: Iterable[object]) -> str:
    return "".join("/" + str(part).replace("~", "~0").replace("/", "~1") for part in path)


def _value_problems(file: str, data: Mapping[str, Any]) -> Iterator[ContractProblem]:
    """What the schema cannot judge: decoding, order, arithmetic."""
    keys = data.get("keys")
    for index, key in enumerate(keys if isinstance(keys, list) else []):
        if isinstance(key, Mapping):
            yield from _key_problems(file, f"/keys/{index}", key)
    office = data.get("office_hours")
    if isinstance(office, Mapping):
        start, end = office.get("start"), office.get("end")
        if isinstance(start, str) and isinstance(end, str) and not start < end:
            yield ContractProblem(file, "/office_hours/end", f"ends at {end}, not after {start}")


def _key_problems(file: str, where: str, key: Mapping[str, Any]) -> Iterator[ContractProblem]:
    public_key = key.get("public_key")
    if isinstance(public_key, str):
        try:
            decode_public_key(public_key)
        except ValueError as exc:
            yield ContractProblem(file, f"{where}/public_key", str(exc))
    moments = {}
    for name in ("not_before", "not_after"):
        value = key.get(name)
        if isinstance(value, str):
            try:
                moments[name] = parse_utc_moment(value)
            except ValueError:
                yield ContractProblem(file, f"{where}/{name}", f"{value!r} is not a UTC moment")
    if len(moments) == 2 and not moments["not_before"] < moments["not_after"]:
        yield ContractProblem(file, f"{where}/not_after", "is not after not_before")


# --- across files ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Facts:
    """What the rules across files need from one file, read leniently: a file
    that failed its schema still takes part with whatever it does say."""

    file: str
    party: str | None
    role: str | None
    transport: str | None
    werkgebied: tuple[str, ...]
    signed_by: str | None
    may_send: tuple[str, ...]
    may_receive: tuple[str, ...]
    kids: tuple[str | None, ...]
    retry_window: timedelta | None
    max_age: timedelta | None

    @classmethod
    def of(cls, file: str, data: Mapping[str, Any]) -> _Facts:
        keys = data.get("keys")
        return cls(
            file=file,
            party=_text(data.get("party")),
            role=_text(data.get("role")),
            transport=_text(data.get("transport")),
            werkgebied=_texts(data.get("werkgebied")),
            signed_by=_text(data.get("signed_by")),
            may_send=_texts(data.get("may_send")),
            may_receive=_texts(data.get("may_receive")),
            kids=tuple(
                _text(k.get("kid")) if isinstance(k, Mapping) else None
                for k in (keys if isinstance(keys, list) else [])
            ),
            retry_window=_retry_window(data),
            max_age=_duration(data.get("max_age", "P7D")),
        )


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _texts(value: object) -> tuple[str, ...]:
    return tuple(v if isinstance(v, str) else "" for v in value) if isinstance(value, list) else ()


def _duration(value: object) -> timedelta | None:
    try:
        return parse_duration(value) if isinstance(value, str) else None
    except ValueError:
        return None


def _retry_window(data: Mapping[str, Any]) -> timedelta | None:
    timeout, limit = _duration(data.get("receipt_timeout")), data.get("attempt_limit")
    if timeout is None or not isinstance(limit, int) or isinstance(limit, bool):
        return None
    # Waits double (PROTOCOL.md): attempt n goes out t * (2^(n-1) - 1) after the first.
    return timeout * ((1 << (max(limit, 1) - 1)) - 1)


def _cross_file_problems(
    facts: list[_Facts], region: Region, catalogue: frozenset[str]
) -> Iterator[ContractProblem]:
    yield from _file_name_problems(facts)
    hub = yield from _hub_problems(facts, region)
    yield from _signer_problems(facts)
    yield from _werkgebied_problems(facts, region)
    yield from _coverage_problems(facts, region)
    yield from _kid_problems(facts)
    yield from _message_type_problems(facts, catalogue, hub)
    if hub is not None:
        yield from _retry_problems(facts, hub)


def _file_name_problems(facts: list[_Facts]) -> Iterator[ContractProblem]:
    for fact in facts:
        if fact.party is not None and f"{fact.party}.toml" != fact.file:
            expected = f"{fact.party}.toml"
            yield ContractProblem(
                fact.file, "/party", f"party {fact.party!r} must be in a file named {expected}"
            )


def _hub_problems(
    facts: list[_Facts], region: Region
) -> Generator[ContractProblem, None, _Facts | None]:
    """Exactly one hub, serving the whole region; returns it when there is one."""
    hubs = [f for f in facts if f.role == Role.VT]
    if not hubs:
        yield ContractProblem("", "", "no contract has role vt: the hub, Veilig Thuis, is missing")
        return None
    if len(hubs) > 1:
        files = ", ".join(f.file for f in hubs)
        for fact in hubs:
            yield ContractProblem(fact.file, "/role", f"exactly one hub has role vt, not {files}")
        return None
    hub = hubs[0]
    for code in sorted(region.codes - set(hub.werkgebied)):
        place = region.municipality(code)
        name = place.name if place else code
        yield ContractProblem(
            hub.file, "/werkgebied", f"the hub must serve the whole region: {name} ({code}) missing"
        )
    return hub


def _signer_problems(facts: list[_Facts]) -> Iterator[ContractProblem]:
    by_party = {f.party: f for f in facts if f.party is not None}
    for fact in facts:
        if fact.transport != Transport.EMAIL or fact.signed_by is None:
            continue
        signer = by_party.get(fact.signed_by)
        if signer is None:
            yield ContractProblem(fact.file, "/signed_by", f"no contract for {fact.signed_by!r}")
        elif signer.role != Role.BRIDGE:
            yield ContractProblem(
                fact.file,
                "/signed_by",
                f"{fact.signed_by!r} has role {signer.role}, not bridge: only the e-mail bridge "
                "signs for a party on the e-mail transport",
            )


def _werkgebied_problems(facts: list[_Facts], region: Region) -> Iterator[ContractProblem]:
    for fact in facts:
        for index, code in enumerate(fact.werkgebied):
            if code and code not in region:
                yield ContractProblem(
                    fact.file, f"/werkgebied/{index}", f"{code} is not a municipality of the region"
                )


def _coverage_problems(facts: list[_Facts], region: Region) -> Iterator[ContractProblem]:
    """Each municipality has its one lokaal team, bijzondere_zorg and police unit."""
    serving: dict[tuple[str, str], list[_Facts]] = defaultdict(list)
    for fact in facts:
        for code in set(fact.werkgebied):
            if fact.role is not None:
                serving[fact.role, code].append(fact)
    for place in region:
        for role, rule in ((Role.LOKAAL_TEAM, "§8"), (Role.BIJZONDERE_ZORG, "§5.1")):
            found = serving[role, place.code]
            if not found:
                yield ContractProblem(
                    "", "", f"{place.name} ({place.code}) has no {role} contract ({rule})"
                )
            for fact in found if len(found) > 1 else ():
                yield ContractProblem(
                    fact.file,
                    "/werkgebied",
                    f"{place.name} ({place.code}) has more than one {role}: "
                    + ", ".join(f.file for f in found),
                )
        for fact in serving[Role.POLITIE, place.code]:
            if fact.party != place.police:
                yield ContractProblem(
                    fact.file,
                    "/werkgebied",
                    f"{place.name} ({place.code}) is served by police unit {place.police} "
                    f"(config/{REGION_FILE}), not by {fact.party}",
                )
        if not any(f.party == place.police for f in serving[Role.POLITIE, place.code]):
            yield ContractProblem(
                "",
                "",
                f"{place.name} ({place.code}) needs a politie contract {place.police!r} "
                f"serving it, as config/{REGION_FILE} says",
            )


def _kid_problems(facts: list[_Facts]) -> Iterator[ContractProblem]:
    first: dict[str, str] = {}
    for fact in facts:
        for index, kid in enumerate(fact.kids):
            if kid is None:
                continue
            if kid in first:
                yield ContractProblem(
                    fact.file, f"/keys/{index}/kid", f"kid {kid!r} is already used in {first[kid]}"
                )
            else:
                first[kid] = fact.file


def _message_type_problems(
    facts: list[_Facts], catalogue: frozenset[str], hub: _Facts | None
) -> Iterator[ContractProblem]:
    for fact in facts:
        for field, types in (("may_send", fact.may_send), ("may_receive", fact.may_receive)):
            for index, message_type in enumerate(types):
                if message_type and message_type not in catalogue:
                    yield ContractProblem(
                        fact.file,
                        f"/{field}/{index}",
                        f"{message_type!r} is not a message type of the catalogue",
                    )
        if hub is None or fact is hub:
            continue
        # Every message has VT at one end: the hub's contract is the other half.
        for index, message_type in enumerate(fact.may_send):
            if message_type in catalogue and message_type not in hub.may_receive:
                yield ContractProblem(
                    fact.file,
                    f"/may_send/{index}",
                    f"{message_type!r} is not in the hub's may_receive ({hub.file})",
                )
        for index, message_type in enumerate(fact.may_receive):
            if message_type in catalogue and message_type not in hub.may_send:
                yield ContractProblem(
                    fact.file,
                    f"/may_receive/{index}",
                    f"{message_type!r} is not in the hub's may_send ({hub.file})",
                )


def _retry_problems(facts: list[_Facts], hub: _Facts) -> Iterator[ContractProblem]:
    """A resend keeps its sent_at: the hub's messages to a party must still be
    fresh (hub's max_age) at the last attempt, or the party refuses it as STALE."""
    if hub.max_age is None:
        return
    for fact in facts:
        if fact.retry_window is not None and fact.retry_window > hub.max_age:
            yield ContractProblem(
                fact.file,
                "/attempt_limit",
                f"the last resend goes out {fact.retry_window} after the first (waits double), "
                f"beyond the hub's max_age ({hub.max_age}): it would be STALE",
            )


def _resolve(root: Mapping[str, Any], node: object) -> Mapping[str, Any]:
    """Follow local $refs ("#/$defs/...") in the envelope schema."""
    for _ in range(10):
        if not isinstance(node, Mapping):
            return {}
        ref = node.get("$ref")
        if not isinstance(ref, str) or not ref.startswith("#/"):
            return node
        target: object = root
        for escaped in ref[2:].split("/"):
            part = escaped.replace("~1", "/").replace("~0", "~")
            target = target.get(part) if isinstance(target, Mapping) else None
        node = target
    return {}
