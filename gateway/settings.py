"""Runtime settings: config/gateway.toml, with environment overrides for single values."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from gateway.domain.errors import ConfigurationError


@dataclass(frozen=True, slots=True)
class Settings:
    party: str
    store_dsn: str
    amqp_urls: tuple[str, ...]
    prefetch: int
    batch_size: int
    batch_wait: timedelta
    delivery_limit: int
    http_host: str
    http_port: int
    keys_dir: Path
    signing_kid: str
    contracts_dir: Path
    api_tokens_file: Path
    relay_interval: timedelta
    lease: timedelta


def load_settings(path: Path, environ: Mapping[str, str] = os.environ) -> Settings:
    """Read the settings file; VTGW_STORE_DSN, VTGW_AMQP_URL, VTGW_HTTP_PORT override it."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigurationError(f"cannot read settings {path}: {exc}") from exc
    try:
        return _settings(data, environ)
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigurationError(f"settings {path}: missing or wrong value: {exc}") from exc


def _settings(data: dict[str, Any], environ: Mapping[str, str]) -> Settings:
    amqp = data["amqp"]
    urls = environ.get("VTGW_AMQP_URL")
    return Settings(
        party=str(data["gateway"]["party"]),
        store_dsn=environ.get("VTGW_STORE_DSN", str(data["store"]["dsn"])),
        amqp_urls=tuple(urls.split(",")) if urls else tuple(map(str, amqp["urls"])),
        prefetch=int(amqp["prefetch"]),
        batch_size=int(amqp["batch_size"]),
        batch_wait=timedelta(milliseconds=int(amqp["batch_wait_ms"])),
        delivery_limit=int(amqp["delivery_limit"]),
        http_host=str(data["http"]["host"]),
        http_port=int(environ.get("VTGW_HTTP_PORT", data["http"]["port"])),
        keys_dir=Path(data["keys"]["directory"]),
        signing_kid=str(data["keys"]["signing_kid"]),
        contracts_dir=Path(data["contracts"]["directory"]),
        api_tokens_file=Path(data["api"]["tokens_file"]),
        relay_interval=timedelta(milliseconds=int(data["relay"]["interval_ms"])),
        lease=timedelta(seconds=int(data["relay"]["lease_seconds"])),
    )
