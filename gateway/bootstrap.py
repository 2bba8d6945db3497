"""The one place that reads configuration and wires the core together."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gateway.contract_files import load_contracts, load_region
from gateway.domain.contracts import Contracts
from gateway.domain.formats import protocol_formats
from gateway.domain.region import Region
from gateway.resources import data_dir
from gateway.schema_files import load_message_schemas
from gateway.service.pipeline import Verifier
from gateway.service.validation import EnvelopeValidator, ReferenceValidator

DEFAULT_RECEIVER = "vt-gz"


@dataclass(frozen=True, slots=True)
class Paths:
    """Where the gateway's data lies; each defaults to the checkout's or the wheel's copy."""

    contracts: Path
    region: Path
    schemas: Path

    @classmethod
    def defaults(cls, contracts: Path | None = None) -> Paths:
        return cls(
            contracts=contracts or data_dir("contracts"),
            region=data_dir("config") / "region.toml",
            schemas=data_dir("schemas"),
        )


@dataclass(frozen=True, slots=True)
class Core:
    """The loaded, compiled core: what every transport and command works with."""

    region: Region
    contracts: Contracts
    validator: EnvelopeValidator
    reference: ReferenceValidator

    def verifier(self, receiving_party: str = DEFAULT_RECEIVER) -> Verifier:
        return Verifier(self.contracts, self.validator, receiving_party)


def load_core(paths: Paths) -> Core:
    """Read region, contracts and schemas, and compile the validators once."""
    region = load_region(paths.region)
    contracts = load_contracts(paths.contracts, region=region, schemas=paths.schemas)
    schemas = load_message_schemas(paths.schemas)
    formats = protocol_formats(region.codes)
    return Core(
        region=region,
        contracts=contracts,
        validator=EnvelopeValidator(schemas, formats),
        reference=ReferenceValidator(schemas, formats),
    )
