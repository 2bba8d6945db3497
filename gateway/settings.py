"""Runtime settings: config/gateway.toml, with environment overrides for single values."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from adapters.amqp.urls import broker_urls, check_broker_url
from gateway.domain.contracts import parse_duration
from gateway.domain.errors import ConfigurationError

SMTP_SECURITY = ("starttls", "tls", "none")
"""How the bridge talks to its SMTP server: STARTTLS, implicit TLS, or plain (tests only)."""


@dataclass(frozen=True, slots=True)
class EmailSettings:
    """The e-mail bridge (`[email]`): SMTP out, the inbound listener, the links it mails.

    `smtp_password` is read from the environment variable `[email] smtp_password_env`
    names, never from the file. `inbound_port` 0 runs no listener (replies and bounces
    then go unread). `link_lifetime` is how long a mailed link stays valid.
    """

    smtp_host: str
    smtp_port: int
    smtp_security: str
    smtp_username: str
    smtp_password: str
    smtp_timeout: timedelta
    from_address: str
    from_name: str
    inbound_host: str
    inbound_port: int
    public_base_url: str
    link_lifetime: timedelta
    token_secret_file: Path
    signing_kid: str = ""
    reminder_interval: timedelta = timedelta(minutes=5)


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
    email: EmailSettings | None = None
    dashboard: DashboardSettings | None = None
    # The reverse proxies whose X-Forwarded-For/-Proto are believed (adapters/http/proxy.py).
    trusted_proxies: tuple[str, ...] = ()


def load_settings(path: Path, environ: Mapping[str, str] = os.environ) -> Settings:
    """Read the settings file; VTGW_STORE_DSN, VTGW_AMQP_URL, VTGW_HTTP_PORT override it.

    The e-mail bridge runs only when the file has an `[email]` table.
    """
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
    amqp_urls = broker_urls(urls) if urls else tuple(map(str, amqp["urls"]))
    if not amqp_urls:
        raise ValueError("[amqp] urls names no broker node")
    for number, url in enumerate(amqp_urls, 1):
        check_broker_url(url, number)
    return Settings(
        party=str(data["gateway"]["party"]),
        store_dsn=environ.get("VTGW_STORE_DSN", str(data["store"]["dsn"])),
        amqp_urls=amqp_urls,
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
        email=_email(data["email"], environ) if "email" in data else None,
        dashboard=dashboard_settings(data["dashboard"]) if "dashboard" in data else None,
        trusted_proxies=tuple(map(str, data["http"].get("trusted_proxies", ()))),
    )


def _email(table: dict[str, Any], environ: Mapping[str, str]) -> EmailSettings:
    """The `[email]` table; VTGW_SMTP_PORT and VTGW_BRIDGE_PORT override its ports."""
    security = str(table.get("smtp_security", "starttls"))
    if security not in SMTP_SECURITY:
        raise ValueError(
            f"[email] smtp_security {security!r} is none of {', '.join(SMTP_SECURITY)}"
        )
    password_env = str(table.get("smtp_password_env", ""))
    base_url = str(table["public_base_url"])
    if not base_url.startswith(("https://", "http://")):
        raise ValueError("[email] public_base_url must be an http(s) URL")
    return EmailSettings(
        smtp_host=str(table["smtp_host"]),
        smtp_port=int(environ.get("VTGW_SMTP_PORT", table["smtp_port"])),
        smtp_security=security,
        smtp_username=str(table.get("smtp_username", "")),
        smtp_password=environ.get(password_env, "") if password_env else "",
        smtp_timeout=timedelta(seconds=int(table.get("smtp_timeout_seconds", 30))),
        from_address=str(table["from_address"]),
        from_name=str(table.get("from_name", "Veilig Thuis Gelderland-Zuid")),
        inbound_host=str(table.get("inbound_host", "127.0.0.1")),
        inbound_port=int(environ.get("VTGW_BRIDGE_PORT", table.get("inbound_port", 0))),
        public_base_url=base_url.rstrip("/"),
        link_lifetime=parse_duration(str(table.get("link_lifetime", "P7D"))),
        token_secret_file=Path(table["token_secret_file"]),
        signing_kid=str(table.get("signing_kid", "")),
        reminder_interval=timedelta(seconds=int(table.get("reminder_interval_seconds", 300))),
    )


@dataclass(frozen=True, slots=True)
class DashboardSettings:
    """Where the staff accounts and the session secret are, and how long a session idles.

    `secure_cookies` is False only for a test on plain http: the session cookie
    is otherwise `Secure` (sent over https only). `events_interval` is how often
    the live-update stream looks at the store; `page_size` how many handovers a
    page of the start page lists.
    """

    staff_file: Path
    session_secret_file: Path
    session_idle: timedelta = timedelta(minutes=30)
    secure_cookies: bool = True
    events_interval: timedelta = timedelta(seconds=2)
    page_size: int = 50


def dashboard_settings(table: Mapping[str, Any]) -> DashboardSettings:
    """The `[dashboard]` table: `staff_file`, `session_secret_file`, `session_idle_minutes`,
    optional `events_interval_ms` and `page_size`."""
    try:
        settings = DashboardSettings(
            staff_file=Path(table["staff_file"]),
            session_secret_file=Path(table["session_secret_file"]),
            session_idle=timedelta(minutes=int(table.get("session_idle_minutes", 30))),
            events_interval=timedelta(milliseconds=int(table.get("events_interval_ms", 2000))),
            page_size=int(table.get("page_size", 50)),
            secure_cookies=bool(table.get("secure_cookies", True)),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigurationError(f"[dashboard]: missing or wrong value: {exc}") from exc
    if settings.session_idle <= timedelta(0) or not 1 <= settings.page_size <= 500:
        raise ConfigurationError("[dashboard]: session_idle_minutes > 0, page_size 1..500")
    return settings
