"""Schema validation of envelopes, compiled once.

The hot path uses the compiled `jsonschema-rs` validator; `jsonschema` is the
reference implementation, kept for full error listings and for the
differential test that proves both accept and reject the same messages. Both
are built from the same schema documents and the same format functions.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import jsonschema
import jsonschema_rs
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

ENVELOPE_SCHEMA = "envelope.schema.json"

FormatChecker = Callable[[str], bool]


def json_pointer(path: Iterable[str | int]) -> str:
    """RFC 6901 pointer of a path of member names and array indexes."""
    return "".join("/" + str(part).replace("~", "~0").replace("/", "~1") for part in path)


@dataclass(frozen=True, slots=True)
class SchemaProblem:
    pointer: str
    message: str


class EnvelopeValidator:
    """The compiled validator of the whole envelope, body included."""

    def __init__(
        self, schemas: Mapping[str, Mapping[str, Any]], formats: Mapping[str, FormatChecker]
    ) -> None:
        root = schemas[ENVELOPE_SCHEMA]
        registry = jsonschema_rs.Registry(
            [(schema["$id"], dict(schema)) for schema in schemas.values()]
        )
        self._compiled = jsonschema_rs.Draft202012Validator(
            dict(root), registry=registry, formats=dict(formats), validate_formats=True
        )
        self.message_types: tuple[str, ...] = tuple(root["properties"]["type"]["enum"])

    def first_problem(self, instance: Any) -> SchemaProblem | None:
        """The first failing place, or None when the envelope is valid."""
        if self._compiled.is_valid(instance):
            return None
        error = next(iter(self._compiled.iter_errors(instance)))
        keyword = str(error.schema_path[-1]) if error.schema_path else "schema"
        return SchemaProblem(json_pointer(error.instance_path), _detail(keyword, error.kind))


class ReferenceValidator:
    """The pure-Python `jsonschema` validator of the same schemas: the reference."""

    def __init__(
        self,
        schemas: Mapping[str, Mapping[str, Any]],
        formats: Mapping[str, FormatChecker],
        root: str = ENVELOPE_SCHEMA,
    ) -> None:
        registry: Registry[Any] = Registry().with_resources(
            (schema["$id"], Resource.from_contents(dict(schema), default_specification=DRAFT202012))
            for schema in schemas.values()
        )
        checker = jsonschema.FormatChecker(formats=())
        for name, function in formats.items():
            checker.checks(name)(_on_strings(function))
        self._validator = jsonschema.Draft202012Validator(
            dict(schemas[root]), registry=registry, format_checker=checker
        )

    def problems(self, instance: Any) -> list[SchemaProblem]:
        """Every failing place, deepest first within each branch, in a stable order."""
        return [
            SchemaProblem(json_pointer(error.absolute_path), _detail(str(error.validator), None))
            for error in sorted(
                self._validator.iter_errors(instance), key=lambda e: list(map(str, e.path))
            )
        ]

    def is_valid(self, instance: Any) -> bool:
        return bool(self._validator.is_valid(instance))


def _on_strings(function: FormatChecker) -> Callable[[object], bool]:
    """A format applies to strings only; any other instance passes it (JSON Schema 2020-12)."""

    def check(instance: object) -> bool:
        return not isinstance(instance, str) or function(instance)

    return check


def _detail(keyword: str, kind: Any) -> str:
    """What failed, from the schema's side only: never a value of the message.

    A detail travels back to the sender and into logs, so it must not echo
    the instance (a name, a BSN). It names the keyword and, where the schema
    itself says it, the format or the missing member.
    """
    if keyword == "format" and kind is not None:
        return f"does not match format '{kind.format}'"
    if keyword == "required" and kind is not None:
        return f"misses required member '{kind.property}'"
    return f"fails schema keyword '{keyword}'"
