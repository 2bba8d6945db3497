"""The protocol's schema documents, read from the `schemas/` folder."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from gateway.domain.errors import ConfigurationError
from gateway.resources import data_dir

MESSAGE_SCHEMA_SUFFIX = ".schema.json"
CONTRACT_SCHEMA = "contract.schema.json"


def load_message_schemas(directory: Path | None = None) -> dict[str, dict[str, Any]]:
    """Every message schema by file name (the contract files' schema is not one)."""
    folder = directory or data_dir("schemas")
    schemas: dict[str, dict[str, Any]] = {}
    for path in sorted(folder.glob(f"*{MESSAGE_SCHEMA_SUFFIX}")):
        if path.name == CONTRACT_SCHEMA:
            continue
        try:
            schemas[path.name] = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ConfigurationError(f"cannot read schema {path}: {exc}") from exc
    if not schemas:
        raise ConfigurationError(f"no schemas in {folder}")
    return schemas
