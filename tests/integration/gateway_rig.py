"""A real gateway process for end-to-end tests: its own vhost, database, keys and port.

The gateway runs as `python -m gateway.cli run` in a subprocess, so a test
can stop it with SIGTERM or kill it with SIGKILL and start it again on the
same store. Partners connect as their provisioned broker users.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from adapters.amqp.provision import provision
from adapters.crypto.keyfiles import read_private_key
from gateway.bootstrap import Paths, load_core
from gateway.cli import main as cli
from gateway.domain.contracts import Contracts
from gateway.domain.signatures import SigningKey
from tests.integration.amqp_support import (
    ADMIN_PASSWORD,
    ADMIN_USER,
    MANAGEMENT_URL,
    amqp_url,
    dedicated_vhost,
    read_env_file,
)

ROOT = Path(__file__).resolve().parents[2]
POSTGRES_ADMIN = os.environ.get(
    "VTGW_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def _admin(*statements: str) -> None:
    try:
        connection = await asyncpg.connect(POSTGRES_ADMIN, timeout=5)
    except (OSError, asyncpg.PostgresError) as error:
        pytest.fail(f"PostgreSQL is not reachable at {POSTGRES_ADMIN}: {error!r}", pytrace=False)
    try:
        for statement in statements:
            await connection.execute(statement)
    finally:
        await connection.close()


@contextmanager
def postgres_database(name: str) -> Iterator[str]:
    """A new empty PostgreSQL database for one rig; its asyncpg DSN."""
    asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}"', f'CREATE DATABASE "{name}"'))
    url = make_url(POSTGRES_ADMIN).set(drivername="postgresql+asyncpg", database=name)
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@dataclass
class GatewayRig:
    """One gateway's world: folder, vhost, store and settings."""

    root: Path
    vhost: str
    dsn: str
    port: int = field(default_factory=free_port)
    lease_seconds: int = 3
    process: subprocess.Popen[bytes] | None = None
    credentials: dict[str, str] = field(default_factory=dict)
    smtp_port: int | None = None  # set: the e-mail bridge runs, mailing to this SMTP server
    bridge_port: int = field(default_factory=free_port)  # the bridge's inbound SMTP listener
    link_lifetime: str = "P7D"
    amqp_urls: tuple[str, ...] = ()  # set: these nodes (a cluster), not the local broker
    management_url: str = MANAGEMENT_URL  # where the partners' broker users are provisioned

    @property
    def bridge_secret_file(self) -> Path:
        return self.root / "bridge-token-secret"

    @property
    def contracts_dir(self) -> Path:
        return self.root / "contracts"

    @property
    def keys_dir(self) -> Path:
        return self.root / "keys"

    @property
    def log_file(self) -> Path:
        return self.root / "gateway.log"

    def prepare(self) -> None:
        """Development keys and token for every party, settings, partners' broker users."""
        tokens = self.root / "api-tokens.toml"
        code = cli(
            [
                "dev",
                "init",
                "--contracts",
                str(self.contracts_dir),
                "--keys",
                str(self.keys_dir),
                "--tokens",
                str(tokens),
            ]
        )
        assert code == 0
        self.token = (self.root / "api-token.txt").read_text().strip()
        self.write_settings()
        asyncio.run(
            provision(
                self.contracts(),
                management_url=self.management_url,
                admin_user=ADMIN_USER,
                admin_password=ADMIN_PASSWORD,
                credentials_dir=self.root / "credentials",
                vhost=self.vhost,
                reset=True,
            )
        )
        for env in (self.root / "credentials").glob("*.env"):
            self.credentials[env.stem] = read_env_file(env)["VTGW_AMQP_URL"]

    def write_settings(self) -> None:
        """The gateway's settings file, from this rig's store, vhost, folders and port."""
        tokens = self.root / "api-tokens.toml"
        (self.root / "gateway.toml").write_text(
            f"""
[gateway]
party = "vt-gz"
[store]
dsn = "{self.dsn}"
[amqp]
urls = {json.dumps(list(self.amqp_urls or (amqp_url(self.vhost),)))}
prefetch = 200
batch_size = 100
batch_wait_ms = 5
delivery_limit = 20
[http]
host = "127.0.0.1"
port = {self.port}
[keys]
directory = "{self.keys_dir}"
signing_kid = ""
[contracts]
directory = "{self.contracts_dir}"
[api]
tokens_file = "{tokens}"
[relay]
interval_ms = 20
lease_seconds = {self.lease_seconds}
{self._email_settings()}""",
            encoding="utf-8",
        )

    def _email_settings(self) -> str:
        """The `[email]` table when the rig runs the e-mail bridge (plain SMTP on localhost)."""
        if self.smtp_port is None:
            return ""
        return f"""
[email]
smtp_host = "127.0.0.1"
smtp_port = {self.smtp_port}
smtp_security = "none"
from_address = "overdracht-brug@vt-gz.example"
inbound_host = "127.0.0.1"
inbound_port = {self.bridge_port}
public_base_url = "http://127.0.0.1:{self.port}"
link_lifetime = "{self.link_lifetime}"
token_secret_file = "{self.bridge_secret_file}"
reminder_interval_seconds = 1
"""

    def contracts(self) -> Contracts:
        return load_core(Paths.defaults(contracts=self.contracts_dir)).contracts

    def signing_key(self, party: str) -> SigningKey:
        (path,) = sorted((self.keys_dir / party).glob("*.pem"))
        return read_private_key(path)

    def start(self, timeout: float = 30.0) -> None:
        with self.log_file.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "gateway.cli",
                    "run",
                    "--config",
                    str(self.root / "gateway.toml"),
                ],
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"the gateway exited at start:\n{self.log_tail()}", pytrace=False)
            try:
                with urllib.request.urlopen(self.url("/healthz"), timeout=1):  # noqa: S310
                    return
            except OSError:
                time.sleep(0.1)
        pytest.fail(
            f"the gateway did not come up in {timeout} s:\n{self.log_tail()}", pytrace=False
        )

    def kill(self) -> None:
        """SIGKILL: no clean shutdown, nothing finished."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> int:
        """SIGTERM: the clean shutdown; the exit code."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=60)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def api(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        request = urllib.request.Request(  # noqa: S310 - the rig's own port
            self.url("/api/v1" + path),
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"null")

    def log_tail(self, lines: int = 40) -> str:
        if not self.log_file.exists():
            return "(no log)"
        return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])


@contextmanager
def gateway_rig(
    tmp_path: Path,
    name: str,
    contract_edits: dict[str, dict[str, str]] | None = None,
    smtp_port: int | None = None,
) -> Iterator[GatewayRig]:
    """A prepared, not yet started gateway with its own vhost and PostgreSQL database.

    `contract_edits` replaces, per party, one line of its contract by another
    (a shorter receipt timeout for a test, say) before the gateway starts.
    `smtp_port`: run the e-mail bridge, its mail going to the SMTP server there.
    """
    with dedicated_vhost() as vhost, postgres_database(f"vtgw_e2e_{name}_{os.getpid()}") as dsn:
        rig = GatewayRig(tmp_path, vhost, dsn, smtp_port=smtp_port)
        rig.prepare()
        for party, edits in (contract_edits or {}).items():
            path = rig.contracts_dir / f"{party}.toml"
            text = path.read_text(encoding="utf-8")
            for old, new in edits.items():
                assert old in text, f"{party}.toml has no line {old!r}"
                text = text.replace(old, new)
            path.write_text(text, encoding="utf-8")
        try:
            yield rig
        finally:
            if rig.process is not None and rig.process.poll() is None:
                rig.process.kill()
                rig.process.wait(timeout=10)
