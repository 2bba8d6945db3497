"""A real gateway for end-to-end tests: its own vhost, database, keys and port.

The gateway runs as `python -m gateway.cli run` in a subprocess, so a test
can stop it with SIGTERM or kill it with SIGKILL and start it again on the
same store. A rig can run several such processes (`instance(n)`): they share
its settings file, so its store and vhost, as instances of one deployment do;
each has its own HTTP port (VTGW_HTTP_PORT) and its own log file. Partners
connect as their provisioned broker users.
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
class GatewayProcess:
    """One `vt-gateway run` of a rig: the rig's settings file, its own HTTP port and log file."""

    config: Path
    port: int
    log_file: Path
    process: subprocess.Popen[bytes] | None = None
    _log_start: int = 0  # where this run's lines begin in the log file (it grows across runs)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def launch(self) -> None:
        """Start the process; `wait_ready` waits until it consumes and serves."""
        self._log_start = self.log_file.stat().st_size if self.log_file.exists() else 0
        with self.log_file.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "gateway.cli", "run", "--config", str(self.config)],
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                # Unbuffered: a killed process's log holds every line it wrote.
                env={**os.environ, "VTGW_HTTP_PORT": str(self.port), "PYTHONUNBUFFERED": "1"},
            )

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Until /healthz answers and the log says the consumer and the relay have started."""
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"the gateway exited at start:\n{self.log_tail()}", pytrace=False)
            if self._instance_name() is not None:
                try:
                    with urllib.request.urlopen(self.url("/healthz"), timeout=1):  # noqa: S310
                        return
                except OSError:
                    pass
            time.sleep(0.1)
        pytest.fail(
            f"the gateway did not come up in {timeout} s:\n{self.log_tail()}", pytrace=False
        )

    def start(self, timeout: float = 30.0) -> None:
        self.launch()
        self.wait_ready(timeout)

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

    def pause(self) -> None:
        """SIGSTOP: frozen where it is, its connections and transactions left open."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    @property
    def name(self) -> str:
        """The instance name this run claims outbox rows and timers with (`gateway_started`)."""
        name = self._instance_name()
        assert name is not None, "the gateway has not started"
        return name

    def _instance_name(self) -> str | None:
        for event in self.events("gateway_started"):
            return str(event["instance"])
        return None

    def events(self, name: str | None = None) -> list[dict[str, Any]]:
        """This run's JSON log events (all, or those called `name`)."""
        if not self.log_file.exists():
            return []
        with self.log_file.open("rb") as log:
            log.seek(self._log_start)
            lines = log.read().decode(errors="replace").splitlines()
        found = []
        for line in lines:
            if not line.startswith("{"):
                continue  # a traceback, a faulthandler dump
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if name is None or event.get("event") == name:
                found.append(event)
        return found

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def log_tail(self, lines: int = 40) -> str:
        if not self.log_file.exists():
            return "(no log)"
        return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])


@dataclass
class GatewayRig:
    """One gateway's world: folder, vhost, store and settings; one or more processes."""

    root: Path
    vhost: str
    dsn: str
    port: int = field(default_factory=free_port)
    lease_seconds: int = 3
    credentials: dict[str, str] = field(default_factory=dict)
    smtp_port: int | None = None  # set: the e-mail bridge runs, mailing to this SMTP server
    bridge_port: int = field(default_factory=free_port)  # the bridge's inbound SMTP listener
    link_lifetime: str = "P7D"
    amqp_urls: tuple[str, ...] = ()  # set: these nodes (a cluster), not the local broker
    management_url: str = MANAGEMENT_URL  # where the partners' broker users are provisioned
    dashboard: bool = False  # the staff dashboard at /dashboard (`dev init`'s admin)
    instances: list[GatewayProcess] = field(default_factory=list, init=False)

    def instance(self, index: int) -> GatewayProcess:
        """The `index`-th process of this gateway (0 is the one `start`, `stop`... act on)."""
        while len(self.instances) <= index:
            number = len(self.instances)
            self.instances.append(
                GatewayProcess(
                    self.root / "gateway.toml",
                    self.port if number == 0 else free_port(),
                    self.root / ("gateway.log" if number == 0 else f"gateway-{number}.log"),
                )
            )
        return self.instances[index]

    def start_instances(self, count: int, timeout: float = 60.0) -> list[GatewayProcess]:
        """Start processes 0..count-1 together (they migrate under a lock); all of them."""
        started = [self.instance(index) for index in range(count)]
        for gateway in started:
            gateway.launch()
        for gateway in started:
            gateway.wait_ready(timeout)
        return started

    @property
    def process(self) -> subprocess.Popen[bytes] | None:
        return self.instance(0).process

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
        return self.instance(0).log_file

    @property
    def dashboard_password(self) -> str:
        """The password of `dev init`'s dashboard admin, "beheerder"."""
        return (self.root / "dashboard-password.txt").read_text(encoding="utf-8").strip()

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
                "--staff",
                str(self.root / "dashboard-staff.toml"),
                "--session-secret",
                str(self.root / "dashboard-secret"),
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
{self._email_settings()}{self._dashboard_settings()}""",
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

    def _dashboard_settings(self) -> str:
        """The `[dashboard]` table when the rig serves the dashboard (plain http, quick events)."""
        if not self.dashboard:
            return ""
        return f"""
[dashboard]
staff_file = "{self.root / "dashboard-staff.toml"}"
session_secret_file = "{self.root / "dashboard-secret"}"
session_idle_minutes = 30
secure_cookies = false
events_interval_ms = 200
"""

    def contracts(self) -> Contracts:
        return load_core(Paths.defaults(contracts=self.contracts_dir)).contracts

    def signing_key(self, party: str) -> SigningKey:
        (path,) = sorted((self.keys_dir / party).glob("*.pem"))
        return read_private_key(path)

    def start(self, timeout: float = 30.0) -> None:
        self.instance(0).start(timeout)

    def kill(self) -> None:
        """SIGKILL: no clean shutdown, nothing finished."""
        self.instance(0).kill()

    def stop(self) -> int:
        """SIGTERM: the clean shutdown; the exit code."""
        return self.instance(0).stop()

    def url(self, path: str) -> str:
        return self.instance(0).url(path)

    def api(self, method: str, path: str, body: Any = None, *, on: int = 0) -> tuple[int, Any]:
        """Call VT's API of process `on`."""
        request = urllib.request.Request(  # noqa: S310 - the rig's own port
            self.instance(on).url("/api/v1" + path),
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"null")

    async def case_held_by(self, case_ref: str, holder: str, timeout: float = 15) -> dict[str, Any]:
        """The case's view from the API once `holder` holds it; fails after `timeout` s."""
        view: dict[str, Any] = {}
        for _ in range(int(timeout * 10)):
            status, view = self.api("GET", f"/cases/{case_ref}")
            if status == 200 and view["holder"] == holder:
                return view
            await asyncio.sleep(0.1)
        pytest.fail(f"{case_ref} is not held by {holder}: {view}\n{self.log_tail()}")

    def log_tail(self, lines: int = 40) -> str:
        """The last lines of the log; of each process's log when there are several."""
        if len(self.instances) <= 1:
            return self.instance(0).log_tail(lines)
        return "\n".join(
            f"--- {gateway.log_file.name} ---\n{gateway.log_tail(lines)}"
            for gateway in self.instances
        )


@contextmanager
def gateway_rig(
    tmp_path: Path,
    name: str,
    contract_edits: dict[str, dict[str, str]] | None = None,
    smtp_port: int | None = None,
    *,
    dashboard: bool = False,
    lease: int = 3,
) -> Iterator[GatewayRig]:
    """A prepared, not yet started gateway with its own vhost and PostgreSQL database.

    `contract_edits` replaces, per party, one line of its contract by another
    (a shorter receipt timeout for a test, say) before the gateway starts.
    `smtp_port`: run the e-mail bridge, its mail going to the SMTP server there.
    `dashboard`: serve the staff dashboard. `lease`: how many seconds a claimed
    outbox row is its claimer's before another process may take it.
    """
    with dedicated_vhost() as vhost, postgres_database(f"vtgw_e2e_{name}_{os.getpid()}") as dsn:
        rig = GatewayRig(
            tmp_path, vhost, dsn, smtp_port=smtp_port, dashboard=dashboard, lease_seconds=lease
        )
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
            for gateway in rig.instances:
                if gateway.process is not None and gateway.process.poll() is None:
                    gateway.process.kill()  # a paused one too: SIGKILL needs no SIGCONT
                    gateway.process.wait(timeout=10)
