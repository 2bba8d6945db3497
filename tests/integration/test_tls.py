"""TLS to the broker and the database: verified against our CA, refused without TLS or from another.

Certificates are made for this module (tests/tls_support.py) in a temporary
folder: our CA signs the servers' certificates and the clients'; a foreign CA
signs a server and a client certificate of its own. PostgreSQL: a throwaway
server of this module that takes TLS connections only (`hostssl` lines), and
for user `vtgw` only with a client certificate of our CA whose name is `vtgw`.
RabbitMQ: a node of this module that listens for TLS only, verifies the peer
and refuses a client without a certificate.
"""

from __future__ import annotations

import asyncio
import json
import os
import pwd
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import asyncpg
import pytest
from sqlalchemy import exc, text

from adapters.amqp.connection import connect
from adapters.amqp.partner.settings import load_partner_config
from adapters.amqp.provision import provision
from adapters.amqp.publisher import publish_in
from adapters.amqp.topology import IN_QUEUE, declare_topology
from adapters.store import migrate, open_store
from adapters.store.engine import create_engine, postgres_tls, store_url
from gateway.domain.contracts import Contracts
from gateway.domain.errors import ConfigurationError, TransientError
from gateway.service.ports import InboxEntry
from tests.integration.amqp_support import contract, new_party, next_message, read_env_file
from tests.integration.gateway_rig import GatewayRig
from tests.integration.partner_side import WirePartner, notice_body
from tests.integration.rabbit_nodes import (
    GUEST,
    START_TIMEOUT,
    RabbitNode,
    free_ports,
    new_node,
    tear_down,
)
from tests.tls_support import Authority, KeyPair, TlsMaterial, tls_material

pytestmark = pytest.mark.integration

GATEWAY_ROLE = "vtgw"
"""The database user that must show a client certificate of our CA with this name."""
PARTNER = "jbg"
GATEWAY_PARTY = "vt-gz"
RIG_DATABASE = "vtgw_rig"
PG_CERTIFICATE_REFUSED = "could not accept SSL connection: certificate verify failed"
ALERT_NO_CERTIFICATE = "SERVER ALERT: Fatal - Certificate required"
ALERT_UNKNOWN_CA = "SERVER ALERT: Fatal - Unknown CA"
CASE = {"ref": "VT-2026-000443", "gemeente": "GM0268"}
NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def base() -> Iterator[Path]:
    """This module's folder in /tmp, which the servers' users may enter (0711); removed after."""
    folder = Path(tempfile.mkdtemp(prefix="vtgw-tls-"))
    folder.chmod(0o711)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def material(base: Path) -> TlsMaterial:
    """Both CAs' files; a client certificate for jbg, the gateway (vt-gz) and the database user."""
    return tls_material(base / "certificates", clients=(PARTNER, GATEWAY_PARTY, GATEWAY_ROLE))


# --- PostgreSQL ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TlsPostgres:
    """A running PostgreSQL that takes TLS connections only."""

    port: int
    log: Path

    def dsn(
        self, user: str = "postgres", host: str = "127.0.0.1", database: str = "", **query: str
    ) -> str:
        database = database or (GATEWAY_ROLE if user == GATEWAY_ROLE else "postgres")
        tail = f"?{urlencode(query, safe='/')}" if query else ""
        return f"postgresql+asyncpg://{user}@{host}:{self.port}/{quote(database)}{tail}"


def _postgres_bin() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if not found:
        pytest.fail("no PostgreSQL server binaries under /usr/lib/postgresql", pytrace=False)
    return found[-1].parent


class _ServerUser:
    """Runs the server's commands as `postgres` when this process is root (initdb refuses root)."""

    def __init__(self) -> None:
        self.root = os.geteuid() == 0
        try:
            self.account = pwd.getpwnam("postgres") if self.root else None
        except KeyError:
            pytest.fail("running as root, and there is no user postgres to run initdb as")

    def own(self, *paths: Path) -> None:
        if self.account is not None:
            for path in paths:
                os.chown(path, self.account.pw_uid, self.account.pw_gid)

    def run(self, *command: str | Path) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if self.root else []
        done = subprocess.run(
            [*prefix, *map(str, command)], capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            pytest.fail(f"{command[0]} failed: {done.stdout}{done.stderr}", pytrace=False)


@contextmanager
def tls_postgres(base: Path, authority: Authority) -> Iterator[TlsPostgres]:
    """A new PostgreSQL cluster in `base`: TLS only (`hostssl`), the server's files of
    `authority` (key 0600, owned by the server's user), role `vtgw` owning databases `vtgw`
    and `vtgw_rig`."""
    binaries = _postgres_bin()
    server = _ServerUser()
    home = base / "postgres"
    home.mkdir(mode=0o700)
    sockets = home / "sockets"
    sockets.mkdir(mode=0o700)
    files = {
        "server.pem": authority.server.certificate,
        "server.key": authority.server.key,
        "ca.pem": authority.certificate,
    }
    for name, source in files.items():
        shutil.copyfile(source, home / name)
    (home / "server.key").chmod(0o600)
    server.own(home, sockets, *(home / name for name in files))
    data = home / "data"
    server.run(binaries / "initdb", "-D", data, "-U", "postgres", "-A", "trust", "--no-sync")
    (data / "pg_hba.conf").write_text(
        f"hostssl all {GATEWAY_ROLE} 127.0.0.0/8 trust clientcert=verify-full\n"
        "hostssl all all 127.0.0.0/8 trust\n",
        encoding="utf-8",
    )
    (port,) = free_ports(1)
    options = " ".join(
        [
            f"-p {port} -k {sockets}",
            "-c listen_addresses=127.0.0.1,127.0.0.2",
            "-c ssl=on -c fsync=off",
            f"-c ssl_cert_file={home / 'server.pem'}",
            f"-c ssl_key_file={home / 'server.key'}",
            f"-c ssl_ca_file={home / 'ca.pem'}",
        ]
    )
    server.run(
        binaries / "pg_ctl", "-D", data, "-l", home / "server.log", "-w", "-o", options, "start"
    )
    try:
        running = TlsPostgres(port, home / "server.log")
        asyncio.run(_create_gateway_role(running, authority))
        yield running
    finally:
        server.run(binaries / "pg_ctl", "-D", data, "-m", "immediate", "-w", "stop")


async def _create_gateway_role(running: TlsPostgres, authority: Authority) -> None:
    connection = await asyncpg.connect(
        host="127.0.0.1",
        port=running.port,
        user="postgres",
        database="postgres",
        ssl=postgres_tls(store_url(running.dsn(**_verified(authority))))[1],
    )
    try:
        await connection.execute(f"CREATE ROLE {GATEWAY_ROLE} LOGIN")
        for database in (GATEWAY_ROLE, RIG_DATABASE):
            await connection.execute(f"CREATE DATABASE {database} OWNER {GATEWAY_ROLE}")
    finally:
        await connection.close()


def _verified(authority: Authority, mode: str = "verify-full") -> dict[str, str]:
    return {"sslmode": mode, "sslrootcert": str(authority.certificate)}


def _with_client(authority: Authority, ca: Authority, mode: str = "verify-full") -> dict[str, str]:
    """Verify the server against `ca`; show the client certificate `vtgw` of `authority`."""
    client = authority.client(GATEWAY_ROLE)
    return _verified(ca, mode) | {"sslcert": str(client.certificate), "sslkey": str(client.key)}


@pytest.fixture(scope="module")
def postgres(base: Path, material: TlsMaterial) -> Iterator[TlsPostgres]:
    with tls_postgres(base, material.ours) as running:
        yield running


async def test_the_store_over_verified_tls_with_a_client_certificate_migrates_writes_and_reads(
    postgres: TlsPostgres, material: TlsMaterial
) -> None:
    """verify-full against our CA, our client certificate: the store works, and over TLS."""
    dsn = postgres.dsn(GATEWAY_ROLE, **_with_client(material.ours, material.ours))
    await migrate(dsn)
    store = await open_store(dsn)
    try:
        entry = InboxEntry(PARTNER, "tls-1", "sha256:00", None, NOW)
        async with store.transaction() as uow:
            await uow.inbox.add(entry)
        async with store.transaction() as uow:
            assert await uow.inbox.get(PARTNER, "tls-1") == entry
        async with store.connection() as connection:
            row = (
                await connection.execute(
                    text("SELECT ssl, client_dn FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
                )
            ).one()
        assert (row.ssl, row.client_dn) == (True, f"/CN={GATEWAY_ROLE}")
    finally:
        await store.close()


async def test_a_dsn_without_tls_is_refused_by_the_server(postgres: TlsPostgres) -> None:
    """sslmode=disable: the server has no line for a connection without encryption."""
    with pytest.raises(exc.DBAPIError, match="no encryption"):
        await migrate(postgres.dsn(sslmode="disable"))


async def test_a_server_certificate_of_another_ca_is_refused_by_the_store(
    postgres: TlsPostgres, material: TlsMaterial
) -> None:
    """Trusting only the foreign CA, the store refuses the server: a ConfigurationError."""
    with pytest.raises(ConfigurationError, match="does not verify"):
        await migrate(postgres.dsn(**_verified(material.foreign)))


async def test_verify_full_refuses_a_server_reached_by_a_name_its_certificate_lacks(
    postgres: TlsPostgres, material: TlsMaterial
) -> None:
    """127.0.0.2 is not in the certificate: verify-full refuses it, verify-ca does not."""
    with pytest.raises(ConfigurationError, match="does not verify"):
        await migrate(postgres.dsn(host="127.0.0.2", **_verified(material.ours)))
    engine = create_engine(postgres.dsn(host="127.0.0.2", **_verified(material.ours, "verify-ca")))
    try:
        async with engine.connect() as connection:
            assert (await connection.execute(text("SELECT 1"))).scalar_one() == 1
    finally:
        await engine.dispose()


async def test_the_gateway_role_without_a_client_certificate_is_refused(
    postgres: TlsPostgres, material: TlsMaterial
) -> None:
    """User vtgw shows no certificate: the server refuses it."""
    with pytest.raises(exc.DBAPIError, match="requires a valid client certificate"):
        await migrate(postgres.dsn(GATEWAY_ROLE, **_verified(material.ours)))


async def test_a_client_certificate_of_another_ca_is_refused_by_the_server(
    postgres: TlsPostgres, material: TlsMaterial
) -> None:
    """The foreign CA's `vtgw` certificate: the server ends the handshake; its log says why."""
    seen = _count(postgres.log, PG_CERTIFICATE_REFUSED)
    with pytest.raises((TransientError, exc.DBAPIError)):
        await migrate(postgres.dsn(GATEWAY_ROLE, **_with_client(material.foreign, material.ours)))
    await logged(postgres.log, PG_CERTIFICATE_REFUSED, after=seen)


def _count(log: Path, text: str) -> int:
    if not log.exists():
        return 0
    return log.read_text(encoding="utf-8", errors="replace").count(text)


async def logged(log: Path, text: str, *, after: int, timeout: float = 10) -> None:
    """Wait until a server's log holds `text` once more than `after` times.

    Under TLS 1.3 the client's handshake is done before the server has judged the
    client's certificate, so the client sees an alert or only a closed connection:
    the server's log is where the reason is certain.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while _count(log, text) <= after:
        if loop.time() > deadline:
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else "(no log)"
            pytest.fail(f"{log.name} does not say {text!r}:\n{tail}", pytrace=False)
        await asyncio.sleep(0.1)


# --- the store DSN's TLS parameters --------------------------------------------------------


def test_the_tls_parameters_leave_the_dsn_and_become_a_verifying_context(
    material: TlsMaterial,
) -> None:
    """sslmode and sslrootcert are not passed on to asyncpg as such: a context verifies."""
    url, context = postgres_tls(store_url(postgres_dsn_of(**_verified(material.ours))))
    assert dict(url.query) == {}
    assert isinstance(context, ssl.SSLContext)
    assert (context.verify_mode, context.check_hostname) == (ssl.CERT_REQUIRED, True)


def test_a_mode_alone_goes_to_asyncpg_as_it_is() -> None:
    """Without files, asyncpg applies the mode as libpq would."""
    url, mode = postgres_tls(store_url(postgres_dsn_of(sslmode="verify-full")))
    assert (dict(url.query), mode) == ({}, "verify-full")


@pytest.mark.parametrize(
    "query",
    [
        {"sslmode": "maybe"},
        {"sslrootcert": "/etc/ca.pem"},
        {"sslmode": "prefer", "sslrootcert": "/etc/ca.pem"},
        {"sslmode": "require", "ssl": "disable"},
    ],
    ids=["unknown mode", "files without a mode", "files with prefer", "two modes"],
)
def test_tls_parameters_that_would_not_protect_are_refused(query: dict[str, str]) -> None:
    """A DSN whose TLS is not what it seems is a configuration error, not a quiet downgrade."""
    with pytest.raises(ConfigurationError):
        create_engine(postgres_dsn_of(**query))


def test_an_unreadable_client_key_is_reported_without_its_path(
    material: TlsMaterial, tmp_path: Path
) -> None:
    """The error names the parameter; the key's path is never in a message."""
    missing = tmp_path / "secret-client-key.pem"
    query = _verified(material.ours) | {
        "sslcert": str(material.ours.client(GATEWAY_ROLE).certificate),
        "sslkey": str(missing),
    }
    with pytest.raises(ConfigurationError, match="sslcert/sslkey") as caught:
        create_engine(postgres_dsn_of(**query))
    assert missing.name not in str(caught.value)


def postgres_dsn_of(**query: str) -> str:
    return TlsPostgres(5432, Path("server.log")).dsn(**query)


# --- RabbitMQ ------------------------------------------------------------------------------


@contextmanager
def tls_only_node(base: Path, authority: Authority) -> Iterator[RabbitNode]:
    """A started node that listens for AMQP over TLS only (no plain listener), verifies
    the peer against `authority` and refuses a client without a certificate.

    rabbit_node() waits for the plain AMQP port, which this node never opens: the
    same steps, waiting for the TLS port instead.
    """
    (tls_port,) = free_ports(1)
    node = new_node(base, f"vtgwtls{os.getpid()}", tls_port=tls_port)
    try:
        node.write_files(
            "\n".join(
                [
                    "listeners.tcp = none",
                    f"ssl_options.cacertfile = {authority.certificate}",
                    f"ssl_options.certfile = {authority.server.certificate}",
                    f"ssl_options.keyfile = {authority.server.key}",
                    "ssl_options.verify = verify_peer",
                    "ssl_options.fail_if_no_peer_cert = true",
                ]
            )
        )
        node.launch()
        deadline = time.monotonic() + START_TIMEOUT
        while not (_accepts(tls_port) and _accepts(node.management_port)):
            if node.process is None or node.process.poll() is not None:
                pytest.fail(f"the TLS node exited at start:\n{node.log_tail()}", pytrace=False)
            if time.monotonic() > deadline:
                pytest.fail(f"the TLS node did not come up:\n{node.log_tail()}", pytrace=False)
            time.sleep(0.25)
        node.ctl("await_startup")
        yield node
    finally:
        node.kill()  # a throwaway node: no clean stop needed (it takes seconds)
        tear_down(node)


def _accepts(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


def amqps_url(
    node: RabbitNode,
    ca: Authority,
    client: KeyPair | None,
    *,
    vhost: str = "/",
    user: str = GUEST,
    password: str = GUEST,
) -> str:
    """The node's TLS address, trusting `ca`, showing `client`'s certificate (if any)."""
    return (
        f"amqps://{user}:{password}@127.0.0.1:{node.tls_port}/{quote(vhost, safe='')}"
        f"?{tls_query(ca, client)}"
    )


def tls_query(ca: Authority, client: KeyPair | None) -> str:
    """An AMQP URL's TLS query as aiormq reads it: `cafile`, `certfile`, `keyfile`."""
    query = {"cafile": str(ca.certificate)}
    if client is not None:
        query |= {"certfile": str(client.certificate), "keyfile": str(client.key)}
    return urlencode(query, safe="/")


@pytest.fixture(scope="module")
def node(base: Path, material: TlsMaterial) -> Iterator[RabbitNode]:
    with tls_only_node(base / "nodes", material.ours) as started:
        yield started


@pytest.fixture(scope="module")
def vhost(node: RabbitNode) -> str:
    """A vhost of the topology tests on the TLS node (the gateway rig uses `/`)."""
    name = "vtgw-tls"
    assert node.management("PUT", "vhosts", name)[0] in {201, 204}
    everything = {"configure": ".*", "write": ".*", "read": ".*"}
    assert node.management("PUT", "permissions", name, GUEST, body=everything)[0] in {201, 204}
    return name


async def test_a_partner_over_tls_with_our_client_certificate_publishes_into_vtgw_in(
    node: RabbitNode, material: TlsMaterial, vhost: str, tmp_path: Path
) -> None:
    """The gateway's connect() over amqps declares the topology; a partner provisioned with
    an amqps URL (our CA, its client certificate) publishes, and the message is in vtgw.in."""
    party = new_party()
    gateway = await connect(
        [amqps_url(node, material.ours, material.ours.client(GATEWAY_PARTY), vhost=vhost)],
        name="vtgw test_tls gateway",
    )
    try:
        channel = await gateway.channel()
        await declare_topology(channel, [party])
        client = material.ours.client(PARTNER)
        query = tls_query(material.ours, client)
        report = await provision(
            Contracts([contract(party)]),
            management_url=node.management_url,
            admin_user=GUEST,
            admin_password=GUEST,
            credentials_dir=tmp_path / "credentials",
            vhost=vhost,
            broker_url=f"amqps://127.0.0.1:{node.tls_port}?{query}",
        )
        assert report.created == (party,)
        url = read_env_file(tmp_path / "credentials" / f"{party}.env")["VTGW_AMQP_URL"]
        assert url.startswith(f"amqps://{party}:")
        assert url.endswith(f"?{query}")
        partner = await connect([url], name=f"vtgw test_tls {party}")
        try:
            partner_channel = await partner.channel(publisher_confirms=True)
            await publish_in(
                partner_channel, b'{"tls": true}', message_id="tls-1", type="test", user_id=party
            )
        finally:
            await partner.close()
        message = await next_message(channel, IN_QUEUE)
        assert (message.body, message.user_id, message.message_id) == (
            b'{"tls": true}',
            party,
            "tls-1",
        )
        await message.ack()
    finally:
        await gateway.close()


async def test_plain_amqp_to_the_tls_only_node_is_refused(node: RabbitNode) -> None:
    """No plain listener: its port refuses the connection; plain AMQP to the TLS port is cut."""
    with pytest.raises(TransientError, match="Connect call failed"):
        await connect([node.amqp_url()], name="vtgw test_tls plain", timeout=5)
    plain_to_tls = f"amqp://{GUEST}:{GUEST}@127.0.0.1:{node.tls_port}/%2F"
    with pytest.raises(TransientError, match="cannot connect"):
        await connect([plain_to_tls], name="vtgw test_tls plain to tls", timeout=5)


async def test_a_client_without_a_certificate_is_refused_by_the_broker(
    node: RabbitNode, material: TlsMaterial
) -> None:
    """fail_if_no_peer_cert: TLS without a client certificate is refused; the node's log says
    why (see `logged`)."""
    seen = _count(node.log_file, ALERT_NO_CERTIFICATE)
    with pytest.raises(TransientError, match="cannot connect"):
        await connect([amqps_url(node, material.ours, None)], name="vtgw test_tls", timeout=5)
    await logged(node.log_file, ALERT_NO_CERTIFICATE, after=seen)


async def test_a_client_certificate_of_another_ca_is_refused_by_the_broker(
    node: RabbitNode, material: TlsMaterial
) -> None:
    """The foreign CA's client certificate: refused, the node's alert is `Unknown CA`."""
    seen = _count(node.log_file, ALERT_UNKNOWN_CA)
    url = amqps_url(node, material.ours, material.foreign.client(PARTNER))
    with pytest.raises(TransientError, match="cannot connect"):
        await connect([url], name="vtgw test_tls foreign client", timeout=5)
    await logged(node.log_file, ALERT_UNKNOWN_CA, after=seen)


async def test_a_broker_with_a_certificate_of_another_ca_is_refused_by_the_client(
    material: TlsMaterial,
) -> None:
    """A TLS server with the foreign CA's certificate: connect() refuses it before any AMQP."""
    received: list[bytes] = []

    async def impostor(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        received.append(await reader.read(8))
        writer.close()

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(material.foreign.server.certificate, material.foreign.server.key)
    server = await asyncio.start_server(impostor, "127.0.0.1", 0, ssl=context)
    port = server.sockets[0].getsockname()[1]
    client = material.ours.client(PARTNER)
    url = f"amqps://{GUEST}:{GUEST}@127.0.0.1:{port}/%2F?{tls_query(material.ours, client)}"
    try:
        with pytest.raises(ConfigurationError, match="CERTIFICATE_VERIFY_FAILED") as refused:
            await connect([url], name="vtgw test_tls impostor", timeout=5)
        assert "does not verify against the URL's cafile" in str(refused.value)
        assert str(material.ours.certificate) not in str(refused.value)  # no path in the message
    finally:
        server.close()
        await server.wait_closed()
    assert received == [], "the client sent the impostor AMQP"


# --- a whole gateway over TLS --------------------------------------------------------------


@pytest.fixture(scope="module")
def rig(
    node: RabbitNode,
    postgres: TlsPostgres,
    material: TlsMaterial,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[GatewayRig]:
    """`vt-gateway run` on the TLS-only node (amqps, its client certificate) and the TLS-only
    PostgreSQL (verify-full, client certificate `vtgw`); the partners' users provisioned there."""
    rig = GatewayRig(
        tmp_path_factory.mktemp("tls-gateway"),
        "/",
        postgres.dsn(
            GATEWAY_ROLE, database=RIG_DATABASE, **_with_client(material.ours, material.ours)
        ),
        amqp_urls=(amqps_url(node, material.ours, material.ours.client(GATEWAY_PARTY)),),
        management_url=node.management_url,
    )
    try:
        rig.prepare()
        rig.start()
        yield rig
        assert rig.stop() == 0, rig.log_tail()
    finally:
        if rig.process is not None and rig.process.poll() is None:
            rig.process.kill()
            rig.process.wait(timeout=10)


async def test_a_handover_goes_through_a_gateway_that_speaks_tls_only(
    rig: GatewayRig, node: RabbitNode, material: TlsMaterial
) -> None:
    """VT submits a notice; jbg, on its amqps URL from provisioning, receives it and confirms;
    the case moves to jbg. The gateway's log holds no key and no key's path."""
    client = material.ours.client(PARTNER)
    query = tls_query(material.ours, client)
    partners = rig.root / "partners-tls"
    await provision(
        rig.contracts(),
        management_url=node.management_url,
        admin_user=GUEST,
        admin_password=GUEST,
        credentials_dir=partners,
        vhost="/",
        broker_url=f"amqps://127.0.0.1:{node.tls_port}?{query}",
        reset=True,  # the rig's own provisioning wrote plain URLs elsewhere
    )
    jbg_url = read_env_file(partners / f"{PARTNER}.env")["VTGW_AMQP_URL"]
    assert jbg_url.startswith("amqps://")

    body = notice_body(PARTNER)
    status, created = rig.api(
        "POST",
        "/messages",
        {"type": "overdracht.notice", "case": CASE, "body": body, "recipients": [PARTNER]},
    )
    assert status == 201, created
    notice_id = created["messages"][0]["id"]
    async with WirePartner(PARTNER, jbg_url, rig.signing_key(PARTNER)) as jbg:
        notice = await jbg.receive(timeout=15)
        while notice["id"] != notice_id:
            notice = await jbg.receive(timeout=15)
        confirmation = jbg.envelope(
            "overdracht.confirmation", reply_to=notice_id, thread=notice["thread"], case=CASE
        )
        await jbg.send(confirmation)
        await jbg.receive_until("receipt", reply_to=confirmation["id"], timeout=15)
    view = await rig.case_held_by(CASE["ref"], PARTNER)
    assert [entry["kind"] for entry in view["ledger"]][-1] == "overdracht_bevestigd"
    log = rig.log_file.read_text(encoding="utf-8", errors="replace")
    assert "PRIVATE KEY" not in log
    assert all(str(pair.key) not in log for pair in material.ours.clients.values())


# --- the partner's settings ----------------------------------------------------------------

PARTNER_CONFIG = """
[partner]
party = "jbg"
state_file = "state/jbg.sqlite3"
[amqp]
urls = [{url}]
[keys]
private_key = "keys/jbg.pem"
[handoff]
inbox_dir = "inbox"
"""


def partner_config_with(tmp_path: Path, url: str, environ: dict[str, str] | None = None) -> Any:
    path = tmp_path / "partner.toml"
    path.write_text(PARTNER_CONFIG.format(url=json.dumps(url)), encoding="utf-8")
    return load_partner_config(path, environ=environ or {})


def test_the_partner_takes_an_amqps_url_with_its_tls_files(
    material: TlsMaterial, tmp_path: Path
) -> None:
    """cafile, certfile and keyfile ride in the URL as they are."""
    url = amqps_url_of(material, material.ours.client(PARTNER))
    assert partner_config_with(tmp_path, url).agent.amqp_urls == (url,)


def test_the_partner_takes_the_url_of_the_credentials_file_vt_hands_over(
    material: TlsMaterial, tmp_path: Path
) -> None:
    """VTGW_AMQP_URL, the variable provisioning writes, overrides the file's URLs."""
    handed = amqps_url_of(material, material.ours.client(PARTNER))
    config = partner_config_with(tmp_path, "amqp://jbg@mq/v", {"VTGW_AMQP_URL": handed})
    assert config.agent.amqp_urls == (handed,)


@pytest.mark.parametrize(
    "change",
    ["amqp", "no_verify_ssl", "keyfile without certfile", "missing keyfile"],
)
def test_the_partner_refuses_a_url_whose_tls_is_not_what_it_says(
    material: TlsMaterial, tmp_path: Path, change: str
) -> None:
    """TLS files on amqp:// (plain!), no_verify_ssl, a lone or missing key: refused at
    start, and the message never holds the key's path."""
    client = material.ours.client(PARTNER)
    url = amqps_url_of(material, client)
    missing = tmp_path / "secret-partner-key.pem"
    url = {
        "amqp": url.replace("amqps://", "amqp://"),
        "no_verify_ssl": url + "&no_verify_ssl=1",
        "keyfile without certfile": url.replace(f"certfile={client.certificate}&", ""),
        "missing keyfile": url.replace(str(client.key), str(missing)),
    }[change]
    with pytest.raises(ConfigurationError) as caught:
        partner_config_with(tmp_path, url)
    assert str(client.key) not in str(caught.value)
    assert missing.name not in str(caught.value)


async def test_provisioning_refuses_tls_files_on_a_plain_broker_url(tmp_path: Path) -> None:
    """An amqp:// broker URL with cafile would hand partners a URL without TLS."""
    with pytest.raises(ConfigurationError, match="not amqps"):
        await provision(
            Contracts([contract(new_party())]),
            management_url="http://127.0.0.1:15672",
            admin_user=GUEST,
            admin_password=GUEST,
            credentials_dir=tmp_path,
            broker_url="amqp://127.0.0.1:5672?cafile=/etc/vtgw-partner/ca.pem",
        )


def amqps_url_of(material: TlsMaterial, client: KeyPair) -> str:
    return f"amqps://jbg:pw@mq.example:5671/vtgw?{tls_query(material.ours, client)}"
