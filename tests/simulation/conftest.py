"""The `simulation` marker, registered here so that `--strict-markers` accepts it."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "simulation: runs a year of synthetic traffic through the real pipeline and store",
    )
