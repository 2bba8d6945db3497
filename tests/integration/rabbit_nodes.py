"""Extra RabbitMQ nodes on this machine for the tests: one node, or a cluster of several.

Each node is Debian's `rabbitmq-server` run as this user from
/usr/lib/rabbitmq/bin (not the wrapper in /usr/sbin, which switches to the
`rabbitmq` user and its files), under a folder of its own: its config file,
enabled plugins (the management plugin), mnesia and log folders, and a home
whose `.erlang.cookie` the node and `rabbitmqctl -n` share. Nodes of one
cluster share the cookie. Every port is free at run time and bound to
127.0.0.1: AMQP, management HTTP, Erlang distribution (and TLS when asked).
The machine's own broker (rabbit@localhost on 5672) is never touched; the
nodes register with its epmd, under names of their own.

Erlang starts slowly (several seconds a node): use these from module- or
session-scoped fixtures. A node that does not come up fails the test with the
tail of its log.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from tests.integration.amqp_support import management

RABBIT_BIN = Path("/usr/lib/rabbitmq/bin")
HOST = "127.0.0.1"
START_TIMEOUT = 120.0  # seconds for a node to boot (a node rejoining a cluster syncs first)
STOP_TIMEOUT = 90.0
CTL_TIMEOUT = 120.0
GUEST = "guest"  # RabbitMQ's default user (and password), allowed from localhost only


def free_ports(count: int) -> list[int]:
    """`count` distinct ports nothing listens on right now."""
    probes = [socket.socket() for _ in range(count)]
    try:
        for probe in probes:
            probe.bind((HOST, 0))
        return [int(probe.getsockname()[1]) for probe in probes]
    finally:
        for probe in probes:
            probe.close()


def _listening(port: int) -> bool:
    try:
        socket.create_connection((HOST, port), timeout=1).close()
    except OSError:
        return False
    return True


@dataclass
class RabbitNode:
    """One RabbitMQ node of the tests: its name, ports and folder; started and stopped here."""

    name: str  # the Erlang node name, `<name>@localhost`
    amqp_port: int
    management_port: int
    dist_port: int
    base: Path  # the node's own folder: config, home, mnesia, logs
    tls_port: int | None = None
    cookie: str = field(default_factory=lambda: secrets.token_hex(16), repr=False)
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    # --- files ---------------------------------------------------------------------------

    @property
    def home(self) -> Path:
        return self.base / "home"

    @property
    def config_file(self) -> Path:
        return self.base / "rabbitmq.conf"

    @property
    def log_file(self) -> Path:
        return self.base / "log" / f"{self.name}.log"

    @property
    def console_file(self) -> Path:
        return self.base / "console.log"

    def write_files(self, extra_config: str = "") -> None:
        """Config, enabled plugins, an empty env file (not /etc/rabbitmq's), the cookie."""
        self.home.mkdir(parents=True, exist_ok=True)
        cookie = self.home / ".erlang.cookie"
        if not cookie.exists():
            cookie.write_text(self.cookie, encoding="ascii")
            cookie.chmod(0o400)
        lines = [
            f"listeners.tcp.1 = {HOST}:{self.amqp_port}",
            f"management.tcp.ip = {HOST}",
            f"management.tcp.port = {self.management_port}",
        ]
        if self.tls_port is not None:
            lines.append(f"listeners.ssl.1 = {HOST}:{self.tls_port}")
        self.config_file.write_text("\n".join(lines) + "\n" + extra_config + "\n", "utf-8")
        (self.base / "enabled_plugins").write_text("[rabbitmq_management].\n", "utf-8")
        (self.base / "rabbitmq-env.conf").write_text("", "utf-8")

    def env(self) -> dict[str, str]:
        """The environment of the node and of `rabbitmqctl` for it."""
        inherited = {k: v for k, v in os.environ.items() if not k.startswith(("RABBITMQ_", "ERL_"))}
        return inherited | {
            "HOME": str(self.home),
            "RABBITMQ_CONF_ENV_FILE": str(self.base / "rabbitmq-env.conf"),
            "RABBITMQ_NODENAME": self.name,
            "RABBITMQ_CONFIG_FILE": str(self.config_file),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(self.base / "advanced.config"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.base / "enabled_plugins"),
            "RABBITMQ_MNESIA_BASE": str(self.base / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.base / "log"),
            "RABBITMQ_PID_FILE": str(self.base / "rabbitmq.pid"),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "ERL_EPMD_ADDRESS": HOST,
            "ERL_FLAGS": "-kernel inet_dist_use_interface {127,0,0,1}",
        }

    # --- life --------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def launch(self) -> None:
        """Start the node's process; `await_up` waits for it."""
        if self.running:
            return
        with self.console_file.open("ab") as console:
            self.process = subprocess.Popen(
                [str(RABBIT_BIN / "rabbitmq-server")],
                cwd=self.base,
                env=self.env(),
                stdout=console,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: killed as one if need be
            )

    def await_up(self, timeout: float = START_TIMEOUT) -> None:
        """Wait until the node's listeners accept and RabbitMQ says it has started."""
        ports = [self.amqp_port, self.management_port]
        if self.tls_port is not None:
            ports.append(self.tls_port)
        deadline = time.monotonic() + timeout
        while not all(_listening(port) for port in ports):
            if self.process is None or self.process.poll() is not None:
                pytest.fail(f"RabbitMQ node {self.name} exited at start:\n{self.log_tail(80)}")
            if time.monotonic() > deadline:
                pytest.fail(
                    f"RabbitMQ node {self.name} did not come up in {timeout} s:\n{self.log_tail()}"
                )
            time.sleep(0.25)
        self.ctl("await_startup", "--timeout", str(int(timeout)))

    def start(self) -> None:
        """Start the node (again, with its data) and wait until it is up."""
        self.launch()
        self.await_up()

    def stop(self) -> None:
        """Stop the node cleanly (`rabbitmqctl -n <node> stop`) and wait for its process."""
        if self.process is not None and self.process.poll() is not None:
            return
        self.ctl("stop", timeout=STOP_TIMEOUT)
        if self.process is not None:
            try:
                self.process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                pytest.fail(f"RabbitMQ node {self.name} did not stop:\n{self.log_tail()}")

    def kill(self) -> None:
        """SIGKILL to the node's whole process group (the Erlang VM and its helpers)."""
        if self.process is None or self.process.poll() is not None:
            return
        with suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def ctl(self, *arguments: str, timeout: float = CTL_TIMEOUT) -> str:
        """`rabbitmqctl -n <node> ...` as this user; its output. A failure fails the test."""
        return self._cli("rabbitmqctl", *arguments, timeout=timeout)

    def queues_cli(self, *arguments: str, timeout: float = CTL_TIMEOUT) -> str:
        """`rabbitmq-queues -n <node> ...`; its output."""
        return self._cli("rabbitmq-queues", *arguments, timeout=timeout)

    def _cli(self, tool: str, *arguments: str, timeout: float) -> str:
        command = [str(RABBIT_BIN / tool), "-n", self.name, *arguments]
        try:
            done = subprocess.run(
                command,
                env=self.env(),
                cwd=self.base,
                capture_output=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            pytest.fail(f"{tool} {' '.join(arguments)} on {self.name} timed out after {timeout} s")
        if done.returncode != 0:
            pytest.fail(
                f"{tool} {' '.join(arguments)} on {self.name} exited {done.returncode}:\n"
                f"{done.stdout.decode(errors='replace')}{done.stderr.decode(errors='replace')}\n"
                f"{self.log_tail()}"
            )
        return done.stdout.decode(errors="replace")

    # --- addresses ----------------------------------------------------------------------

    def amqp_url(self, vhost: str = "/", user: str = GUEST, password: str = GUEST) -> str:
        """The AMQP URI of this node in `vhost` (guest may connect from localhost only)."""
        return f"amqp://{user}:{password}@{HOST}:{self.amqp_port}/{quote(vhost, safe='')}"

    @property
    def management_url(self) -> str:
        return f"http://{HOST}:{self.management_port}"

    def management(
        self,
        method: str,
        *segments: str,
        body: object = None,
        user: str = GUEST,
        password: str = GUEST,
    ) -> tuple[int, Any]:
        """Call this node's management API: (HTTP status, JSON body or None)."""
        return management(
            method, *segments, body=body, user=user, password=password, base_url=self.management_url
        )

    def log_tail(self, lines: int = 40) -> str:
        """The end of the node's log and of its console output."""
        parts = []
        for path in (self.log_file, self.console_file):
            if path.exists():
                tail = path.read_text(errors="replace").splitlines()[-lines:]
                parts.append(f"--- {path.name}\n" + "\n".join(tail))
        return "\n".join(parts) or f"(no log of {self.name} yet)"


def new_node(base: Path, name: str, *, tls_port: int | None = None, cookie: str = "") -> RabbitNode:
    """A node with free ports and a folder `base/<name>`, not yet written or started."""
    full = name if "@" in name else f"{name}@localhost"
    amqp_port, management_port, dist_port = free_ports(3)
    folder = base / full.split("@", 1)[0]
    folder.mkdir(parents=True, exist_ok=True)
    node = RabbitNode(full, amqp_port, management_port, dist_port, folder, tls_port=tls_port)
    if cookie:
        node.cookie = cookie
    return node


def tear_down(node: RabbitNode) -> None:
    """Stop the node, kill it if it does not stop, remove its files."""
    if node.running:
        try:
            node.stop()
        except pytest.fail.Exception:
            node.kill()
    node.kill()
    shutil.rmtree(node.base, ignore_errors=True)


@contextmanager
def rabbit_node(
    base: Path, name: str, *, extra_config: str = "", tls_port: int | None = None
) -> Iterator[RabbitNode]:
    """One started node; `extra_config` is appended to its rabbitmq.conf (sysctl format).

    With `tls_port`, the node also listens for AMQP over TLS there
    (`listeners.ssl.1`); `extra_config` then gives its `ssl_options.*`.
    Stopped (killed if need be) and its files removed at exit.
    """
    node = new_node(base, name, tls_port=tls_port)
    try:
        node.write_files(extra_config)
        node.start()
        yield node
    finally:
        tear_down(node)


@contextmanager
def rabbit_cluster(base: Path, size: int = 3) -> Iterator[list[RabbitNode]]:
    """`size` nodes in one cluster: all started, nodes 2..n joined to node 1, all running.

    Node names are `vtgwc<i>p<pid>@localhost`, so that two test sessions on
    this machine do not meet. Torn down (stopped, killed if need be, files
    removed) at exit.
    """
    cookie = secrets.token_hex(16)
    nodes = [new_node(base, f"vtgwc{i}p{os.getpid()}", cookie=cookie) for i in range(1, size + 1)]
    try:
        for node in nodes:
            node.write_files()
            node.launch()
        with ThreadPoolExecutor(max_workers=size) as pool:  # they boot side by side
            for waited in [pool.submit(node.await_up) for node in nodes]:
                waited.result()
        first = nodes[0]
        for node in nodes[1:]:
            node.ctl("stop_app")
            node.ctl("join_cluster", first.name)
            node.ctl("start_app")
        await_cluster(nodes)
        yield nodes
    finally:  # each node takes seconds to stop: all at once
        with ThreadPoolExecutor(max_workers=size) as pool:
            list(pool.map(tear_down, nodes))


def running_nodes(node: RabbitNode) -> set[str]:
    """The cluster's running nodes as `node` sees them (`cluster_status`)."""
    status = json.loads(node.ctl("cluster_status", "--formatter", "json"))
    return set(status.get("running_nodes", []))


def await_cluster(nodes: list[RabbitNode], timeout: float = START_TIMEOUT) -> None:
    """Wait until every node of the list sees all of them running."""
    names = {node.name for node in nodes}
    deadline = time.monotonic() + timeout
    for node in nodes:
        while (seen := running_nodes(node)) != names:
            if time.monotonic() > deadline:
                pytest.fail(
                    f"the cluster did not form in {timeout} s: {node.name} sees {sorted(seen)}"
                    f"\n{node.log_tail()}"
                )
            time.sleep(0.5)
