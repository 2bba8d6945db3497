"""Settings of the partner's adapter: `vtgw-partner run --config partner.toml`.

```toml
[partner]
party = "jbg"                                  # the partner's party id = its broker user
state_file = "var/vtgw-partner/jbg.sqlite3"    # the ledger (received ids, answers)
rejected_dir = "var/vtgw-partner/rejected"     # optional; default: rejected/ beside state_file

[amqp]
urls = ["amqps://jbg:PASSWORD@mq.vt-gz.example:5671/vtgw"]   # several: tried in turn
prefetch = 10                                  # optional: deliveries in hand at once

[keys]
private_key = "/etc/vtgw-partner/jbg-2026.pem" # PKCS#8 PEM, Ed25519, mode 0600
kid = "jbg-2026"                               # optional; default: the file's stem

[contracts]
directory = "/etc/vtgw-partner/contracts"      # optional; VT's public keys are in vt-gz.toml

[handoff]                                      # exactly one of webhook / inbox_dir
webhook = "http://127.0.0.1:9000/vtgw"
# inbox_dir = "var/vtgw-partner/inbox"
timeout_seconds = 10                           # optional: one webhook call
retry_delay_seconds = 5                        # optional: pause before a failed delivery returns

[answers]                                      # listen and/or outbox_dir
listen = "127.0.0.1:8081"
outbox_dir = "var/vtgw-partner/outbox"
receipt_timeout = "PT15M"                      # optional; default: VT's contract's
attempt_limit = 8                              # optional; default: VT's contract's
```

Relative paths are relative to the working directory. `VTGW_PARTNER_AMQP_URL`
(comma-separated) overrides `[amqp] urls`, so the password need not be in the
file; without it `VTGW_AMQP_URL`, the variable of the credentials file VT's
operator hands over (`vt-gateway provision`), does.

Over TLS each URL is `amqps://` with the files as its query:
`amqps://jbg:PASSWORD@mq.vt-gz.example:5671/vtgw?cafile=/etc/vtgw-partner/ca.pem&certfile=/etc/vtgw-partner/client.pem&keyfile=/etc/vtgw-partner/client.key`
(`cafile`: VT's CA, the only one trusted for the broker; `certfile` and
`keyfile`: the partner's client certificate and its key, mode 0600). A URL
that names TLS files but is not `amqps://` (it would connect in plain text), a
file that does not exist, or `no_verify_ssl` are refused at start.
"""

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

AMQP_URL_VARIABLE = "VTGW_PARTNER_AMQP_URL"
CREDENTIALS_URL_VARIABLE = "VTGW_AMQP_URL"
"""The URL's variable in the credentials file VT hands over; AMQP_URL_VARIABLE comes first."""
DEFAULT_LISTEN_HOST = "127.0.0.1"


@dataclass(frozen=True, slots=True)
class WebhookTarget:
    """Hand each message over by POSTing it to the partner's webhook."""

    url: str
    timeout: timedelta = timedelta(seconds=10)


@dataclass(frozen=True, slots=True)
class FolderTarget:
    """Hand each message over as a file `<id>.json` in a folder."""

    directory: Path


HandoffTarget = WebhookTarget | FolderTarget


@dataclass(frozen=True, slots=True)
class AgentSettings:
    """What the running agent needs (the key and the contracts are loaded beside it).

    `receipt_timeout` / `attempt_limit` None: those of VT's contract.
    `rejected_dir` None: `rejected/` beside the state file.
    """

    amqp_urls: tuple[str, ...]
    state_file: Path
    handoff: HandoffTarget
    listen: tuple[str, int] | None = None
    outbox_dir: Path | None = None
    rejected_dir: Path | None = None
    receipt_timeout: timedelta | None = None
    attempt_limit: int | None = None
    prefetch: int = 10
    retry_delay: timedelta = timedelta(seconds=5)
    tick: timedelta = timedelta(seconds=1)
    shutdown_grace: timedelta = timedelta(seconds=30)

    @property
    def rejected_folder(self) -> Path:
        return self.rejected_dir or self.state_file.parent / "rejected"


@dataclass(frozen=True, slots=True)
class PartnerConfig:
    """The whole config file: the partner, its key, its contracts, and the agent's settings."""

    party: str
    private_key: Path
    kid: str | None
    contracts_dir: Path | None
    agent: AgentSettings


def load_partner_config(path: Path, environ: Mapping[str, str] = os.environ) -> PartnerConfig:
    """Read the config file; ConfigurationError saying what is missing or wrong."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigurationError(f"cannot read config {path}: {exc}") from exc
    try:
        return partner_config(data, environ)
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigurationError(f"config {path}: missing or wrong value: {exc}") from exc


def partner_config(data: Mapping[str, Any], environ: Mapping[str, str]) -> PartnerConfig:
    partner = _table(data, "partner")
    amqp = _table(data, "amqp")
    keys = _table(data, "keys")
    answers = data.get("answers", {})
    urls = environ.get(AMQP_URL_VARIABLE) or environ.get(CREDENTIALS_URL_VARIABLE)
    amqp_urls = broker_urls(urls) if urls else _strings(amqp["urls"])
    if not amqp_urls:
        raise ValueError("[amqp] urls names no broker")
    for number, url in enumerate(amqp_urls, start=1):
        check_broker_url(url, number)
    listen = _listen(answers["listen"]) if "listen" in answers else None
    outbox = Path(answers["outbox_dir"]) if "outbox_dir" in answers else None
    handoff = _table(data, "handoff")
    contracts = data.get("contracts", {})
    return PartnerConfig(
        party=str(partner["party"]),
        private_key=Path(keys["private_key"]),
        kid=str(keys["kid"]) if "kid" in keys else None,
        contracts_dir=Path(contracts["directory"]) if "directory" in contracts else None,
        agent=AgentSettings(
            amqp_urls=amqp_urls,
            state_file=Path(partner["state_file"]),
            rejected_dir=Path(partner["rejected_dir"]) if "rejected_dir" in partner else None,
            handoff=_handoff(handoff),
            listen=listen,
            outbox_dir=outbox,
            receipt_timeout=(
                parse_duration(answers["receipt_timeout"]) if "receipt_timeout" in answers else None
            ),
            attempt_limit=_positive(answers.get("attempt_limit"), "attempt_limit"),
            prefetch=_positive(amqp.get("prefetch", 10), "prefetch") or 10,
            retry_delay=timedelta(seconds=float(handoff.get("retry_delay_seconds", 5))),
        ),
    )


def _table(data: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    table = data[name]
    if not isinstance(table, dict):
        raise TypeError(f"[{name}] must be a table")
    return table


def _strings(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise TypeError("[amqp] urls must be a list of strings")
    return tuple(value)


def _handoff(table: Mapping[str, Any]) -> HandoffTarget:
    webhook, folder = table.get("webhook"), table.get("inbox_dir")
    if (webhook is None) == (folder is None):
        raise ValueError("[handoff] needs exactly one of webhook and inbox_dir")
    if webhook is not None:
        if not str(webhook).startswith(("http://", "https://")):
            raise ValueError("[handoff] webhook must be an http:// or https:// URL")
        timeout = timedelta(seconds=float(table.get("timeout_seconds", 10)))
        return WebhookTarget(str(webhook), timeout)
    return FolderTarget(Path(str(folder)))


def _listen(text: Any) -> tuple[str, int]:
    """`"127.0.0.1:8081"`, `"8081"` (on 127.0.0.1) or `"[::1]:8081"`."""
    host, _, port = str(text).rpartition(":")
    number = int(port)
    if not 0 <= number <= 65535:
        raise ValueError(f"[answers] listen port {number} is out of range")
    return (host.strip("[]") or DEFAULT_LISTEN_HOST, number)


def _positive(value: Any, name: str) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a whole number of at least 1")
    return value
