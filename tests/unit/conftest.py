"""Fixtures of the unit tests: the shared reference data, schemas, contracts and keys."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

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
