"""Fixtures of the unit tests: the shared reference data, schemas, contracts and keys."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from gateway.bootstrap import Core, Paths, load_core
from gateway.domain.contracts import Contracts
from gateway.domain.envelope import format_timestamp
from gateway.resources import data_dir
from gateway.service.pipeline import Outcome, Verifier, verify_message
from gateway.vectors import VECTOR_NOW, load_examples, sign_object, signer_key
from gateway.vectors import with_test_keys as _with_test_keys

ROOT = Path(__file__).resolve().parents[2]


def shared_dir() -> Path:
    """`../shared` beside the checkout (CI lays a copy there), or $VTGW_SHARED."""
    path = Path(os.environ.get("VTGW_SHARED", ROOT.parent / "shared"))
    if not path.is_dir():
        pytest.fail(f"the shared reference data is missing: {path} (set VTGW_SHARED)")
    return path


@pytest.fixture(scope="session")
def rfc8785_dir() -> Path:
    return shared_dir() / "conformance" / "rfc8785"


# --- the core, with the fixed test keys of the vectors --------------------------
NOW = VECTOR_NOW


def examples_dir() -> Path:
    return data_dir("schemas") / "examples"


@pytest.fixture(scope="session")
def core() -> Core:
    """Region, contracts and compiled validators, loaded once."""
    return load_core(Paths.defaults())


@pytest.fixture(scope="session")
def keyed_contracts(core: Core) -> Contracts:
    """The committed contracts with the fixed test keys of the vectors."""
    return _with_test_keys(core.contracts)


@pytest.fixture(scope="session")
def examples() -> dict[str, dict[str, Any]]:
    """One valid example envelope per message type."""
    return {e["type"]: e for e in load_examples(examples_dir())}


Sign = Callable[..., bytes]
Verify = Callable[..., Outcome]


@pytest.fixture(scope="session")
def sign(keyed_contracts: Contracts, examples: dict[str, dict[str, Any]]) -> Sign:
    """Bytes of the example of a type, changed as asked, signed by its sender's signer."""

    def make(
        message_type: str, *, sent_at: datetime | None = None, key_label: str = "1", **changes: Any
    ) -> bytes:
        obj = json.loads(json.dumps(examples[message_type]))
        obj["sent_at"] = format_timestamp(sent_at or NOW - timedelta(minutes=1))
        obj.update(changes)
        key = signer_key(keyed_contracts, obj["sender"], key_label)
        return json.dumps(sign_object(obj, key), ensure_ascii=False).encode()

    return make


@pytest.fixture(scope="session")
def verify(core: Core, keyed_contracts: Contracts) -> Verify:
    """The pipeline as the hub (or `receiver`) runs it, at the vectors' clock."""

    def run(raw: bytes, *, identity: str, receiver: str = "vt-gz", now: datetime = NOW) -> Outcome:
        verifier = Verifier(keyed_contracts, core.validator, receiver)
        return verify_message(raw, transport_identity=identity, now=now, verifier=verifier)

    return run
