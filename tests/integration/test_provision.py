"""The partners' broker users on a real RabbitMQ: provisioning, and what the broker then allows.

The security rules are checked against the broker itself, as a provisioned
partner connecting with the URL of its own credentials file.
"""

from __future__ import annotations

import stat
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import aio_pika
import pytest
from aio_pika.abc import AbstractIncomingMessage, AbstractRobustConnection
from aiormq.exceptions import ChannelAccessRefused

from adapters.amqp.connection import BrokerRefusedError, connect
from adapters.amqp.provision import Outcome, ProvisionReport, provision
from adapters.amqp.publisher import AmqpPublisher, publish_in
from adapters.amqp.topology import IN_QUEUE, declare_topology, inbox_queue
from gateway.cli import main as cli
from gateway.domain.contracts import Contracts, Transport
from gateway.domain.errors import ConfigurationError, TransientError
from gateway.service.ports import OutboxItem
from tests.integration.amqp_support import (
    ADMIN_PASSWORD,
    ADMIN_USER,
    BROKER_URL,
    HOST,
    MANAGEMENT_URL,
    UNREACHABLE_PORT,
    amqp_url,
    api_get,
    contract,
    dedicated_vhost,
    delete_users,
    is_empty,
    management,
    new_party,
    next_message,
    purge,
    read_env_file,
)

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def vhost() -> Iterator[str]:
    with dedicated_vhost() as name:
        yield name


@dataclass(frozen=True)
class Region:
    """Two AMQP parties and one on e-mail, provisioned once into `credentials`."""

    vhost: str
    first: str
    second: str
    by_email: str
    contracts: Contracts
    credentials: Path
    report: ProvisionReport

    def file(self, party: str) -> Path:
        return self.credentials / f"{party}.env"

    def url(self, party: str) -> str:
        return read_env_file(self.file(party))["VTGW_AMQP_URL"]

    async def provision(self, *, reset: bool = False) -> ProvisionReport:
        return await _provision(self.contracts, self.credentials, self.vhost, reset=reset)


async def _provision(
    contracts: Contracts, credentials: Path, vhost: str, *, reset: bool = False
) -> ProvisionReport:
    return await provision(
        contracts,
        management_url=MANAGEMENT_URL,
        admin_user=ADMIN_USER,
        admin_password=ADMIN_PASSWORD,
        credentials_dir=credentials,
        vhost=vhost,
        broker_url=BROKER_URL,
        reset=reset,
    )


@pytest.fixture
async def region(vhost: str, tmp_path: Path) -> AsyncIterator[Region]:
    first, second, by_email = new_party(), new_party(), new_party()
    contracts = Contracts([contract(first), contract(second), contract(by_email, Transport.EMAIL)])
    credentials = tmp_path / "credentials"
    try:
        report = await _provision(contracts, credentials, vhost)
        yield Region(vhost, first, second, by_email, contracts, credentials, report)
    finally:
        delete_users(first, second, by_email)


@pytest.fixture
async def gateway(region: Region) -> AsyncIterator[AbstractRobustConnection]:
    """The gateway's side (the admin user), with the topology of the region's parties."""
    connection = await connect([amqp_url(region.vhost)], name="vtgw test_provision gateway")
    channel = await connection.channel()
    await declare_topology(channel, [region.first, region.second])
    await purge(channel, IN_QUEUE)
    yield connection
    await connection.close()


@pytest.fixture
async def partner(
    region: Region, gateway: AbstractRobustConnection
) -> AsyncIterator[AbstractRobustConnection]:
    """The first party, connected with the URL of its credentials file."""
    connection = await connect([region.url(region.first)], name="vtgw test_provision partner")
    yield connection
    await connection.close()


def _password_hash(party: str) -> str:
    return str(api_get("users", party)["password_hash"])


# --- provisioning ----------------------------------------------------------------------


async def test_provisioning_creates_a_tagless_user_per_amqp_party_with_the_protocols_permissions(
    region: Region,
) -> None:
    """User = party id, no tags; configure ^$, write ^vtgw\\.in$, read its own inbox only."""
    assert region.report.created == tuple(sorted([region.first, region.second]))
    assert region.by_email not in {entry.party for entry in region.report.parties}
    assert management("GET", "users", region.by_email)[0] == 404
    for party in (region.first, region.second):
        assert api_get("users", party)["tags"] in ([], "")
        permissions = api_get("users", party, "permissions")
        assert [(p["vhost"], p["configure"], p["write"], p["read"]) for p in permissions] == [
            (region.vhost, "^$", "^vtgw\\.in$", f"^vtgw\\.out\\.{party}$")
        ]


async def test_a_credentials_file_is_private_and_its_url_connects(region: Region) -> None:
    """<party>.env is mode 0600, names the party, and its AMQP URL logs in to the vhost."""
    path = region.file(region.first)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    values = read_env_file(path)
    assert values["VTGW_AMQP_USER"] == region.first
    assert values["VTGW_AMQP_URL"].startswith(f"amqp://{region.first}:")
    connection = await connect([values["VTGW_AMQP_URL"]], name="vtgw test_provision url")
    await connection.close()


async def test_provisioning_again_changes_nothing(region: Region) -> None:
    """A rerun keeps every password and file and reports every party unchanged."""
    hashes = {party: _password_hash(party) for party in (region.first, region.second)}
    files = {party: region.file(party).read_bytes() for party in hashes}

    again = await region.provision()

    assert again.unchanged == tuple(sorted(hashes))
    assert all(entry.changes == () for entry in again.parties)
    assert {party: _password_hash(party) for party in hashes} == hashes
    assert {party: region.file(party).read_bytes() for party in hashes} == files


async def test_a_user_whose_credentials_file_is_missing_is_reported_not_reset(
    region: Region,
) -> None:
    """Without its file the password is unknown here: reported, the broker's user untouched."""
    before = _password_hash(region.first)
    region.file(region.first).unlink()

    again = await region.provision()

    assert again.reported == (region.first,)
    assert "missing" in again.of(region.first).problem
    assert again.of(region.second).outcome is Outcome.UNCHANGED
    assert _password_hash(region.first) == before
    assert not region.file(region.first).exists()


async def test_reset_gives_a_new_password_only_to_users_whose_password_is_unknown(
    region: Region,
) -> None:
    """reset=True: the reported user gets a new password and file; the old one stops working."""
    old_url = region.url(region.first)
    second_hash = _password_hash(region.second)
    region.file(region.first).unlink()

    again = await region.provision(reset=True)

    assert again.of(region.first).outcome is Outcome.UPDATED
    assert again.of(region.second).outcome is Outcome.UNCHANGED
    assert _password_hash(region.second) == second_hash
    connection = await connect([region.url(region.first)], name="vtgw test_provision reset")
    await connection.close()
    with pytest.raises(TransientError):
        await connect([old_url], name="vtgw test_provision old password")


async def test_a_credentials_file_the_broker_does_not_accept_is_reported(region: Region) -> None:
    """A file whose password is not the broker's is reported, not trusted and not overwritten."""
    path = region.file(region.first)
    text = path.read_text(encoding="utf-8")
    password = read_env_file(path)["VTGW_AMQP_PASSWORD"]
    path.write_text(text.replace(password, "not-the-password"), encoding="utf-8")

    again = await region.provision()

    assert again.reported == (region.first,)
    assert "does not accept" in again.of(region.first).problem
    assert "not-the-password" in path.read_text(encoding="utf-8")


async def test_permissions_and_tags_that_drifted_are_set_back(region: Region) -> None:
    """Wider permissions or a tag given by hand are put back to exactly the protocol's."""
    party = region.first
    user = api_get("users", party)
    management(
        "PUT",
        "users",
        party,
        body={
            "password_hash": user["password_hash"],
            "hashing_algorithm": user["hashing_algorithm"],
            "tags": "administrator",
        },
    )
    wide = {"configure": ".*", "write": ".*", "read": ".*"}
    management("PUT", "permissions", region.vhost, party, body=wide)

    again = await region.provision()

    assert again.of(party).outcome is Outcome.UPDATED
    assert api_get("users", party)["tags"] in ([], "")
    permissions = api_get("permissions", region.vhost, party)
    assert (permissions["configure"], permissions["write"], permissions["read"]) == (
        "^$",
        "^vtgw\\.in$",
        f"^vtgw\\.out\\.{party}$",
    )
    assert _password_hash(party) == user["password_hash"]
    assert again.of(region.second).outcome is Outcome.UNCHANGED


async def test_a_user_deleted_from_the_broker_is_created_again_with_its_files_password(
    region: Region,
) -> None:
    """The file is the party's configuration: the user comes back with the same password."""
    url = region.url(region.first)
    delete_users(region.first)

    again = await region.provision()

    assert again.of(region.first).outcome is Outcome.CREATED
    assert region.url(region.first) == url
    connection = await connect([url], name="vtgw test_provision recreated")
    await connection.close()


async def test_provisioning_into_a_vhost_that_does_not_exist_is_a_configuration_error(
    tmp_path: Path,
) -> None:
    """No vhost, no users: refused before anything is created."""
    party = new_party()
    with pytest.raises(ConfigurationError, match="no vhost"):
        await _provision(Contracts([contract(party)]), tmp_path, "vtgw-test-no-such-vhost")
    assert management("GET", "users", party)[0] == 404


async def test_refused_admin_credentials_are_a_configuration_error(
    vhost: str, tmp_path: Path
) -> None:
    """A wrong admin password is the operator's to fix: ConfigurationError, not a retry."""
    with pytest.raises(ConfigurationError, match="refused user"):
        await provision(
            Contracts([contract(new_party())]),
            management_url=MANAGEMENT_URL,
            admin_user=ADMIN_USER,
            admin_password="wrong",  # noqa: S106 - deliberately wrong
            credentials_dir=tmp_path,
            vhost=vhost,
        )


async def test_an_unreachable_management_api_is_a_transient_error(tmp_path: Path) -> None:
    """Nothing listening: TransientError."""
    with pytest.raises(TransientError, match="unreachable"):
        await provision(
            Contracts([contract(new_party())]),
            management_url=f"http://{HOST}:{UNREACHABLE_PORT}",
            admin_user=ADMIN_USER,
            admin_password=ADMIN_PASSWORD,
            credentials_dir=tmp_path,
        )


# --- what the broker allows a provisioned partner ---------------------------------------


async def test_a_partner_can_publish_to_vtgw_in_with_its_own_user_id(
    region: Region, gateway: AbstractRobustConnection, partner: AbstractRobustConnection
) -> None:
    """Write on vtgw.in with user_id = its party id: confirmed, and the gateway sees who sent it."""
    await publish_in(
        await partner.channel(), b"{}", message_id="m-own", type="receipt", user_id=region.first
    )
    delivered = await next_message(await gateway.channel(), IN_QUEUE, timeout=0.5)
    assert (delivered.message_id, delivered.user_id) == ("m-own", region.first)
    await delivered.ack()


async def test_a_partner_can_read_its_own_inbox(
    region: Region, gateway: AbstractRobustConnection, partner: AbstractRobustConnection
) -> None:
    """What the gateway publishes for the party, the party reads (passive declare included)."""
    item = OutboxItem(1, "vt-gz", "m-for-first", region.first, "case.notice", b"{}")
    await AmqpPublisher(await gateway.channel()).publish(item)

    channel = await partner.channel()
    inbox = await channel.get_queue(inbox_queue(region.first), ensure=True)
    delivered = await inbox.get(timeout=5)
    assert delivered.message_id == "m-for-first"
    await delivered.ack()


async def test_a_partner_cannot_read_another_partys_inbox(
    region: Region, partner: AbstractRobustConnection
) -> None:
    """Neither basic.get nor basic.consume on another inbox: ACCESS_REFUSED."""
    other = inbox_queue(region.second)
    with pytest.raises(ChannelAccessRefused, match="ACCESS_REFUSED"):
        await (await (await partner.channel()).get_queue(other, ensure=False)).get(fail=False)
    queue = await (await partner.channel()).get_queue(other, ensure=False)
    with pytest.raises(ChannelAccessRefused, match="ACCESS_REFUSED"):
        await queue.consume(_ack)


async def _ack(message: AbstractIncomingMessage) -> None:
    await message.ack()


async def test_a_partner_cannot_publish_with_another_user_id(
    region: Region, gateway: AbstractRobustConnection, partner: AbstractRobustConnection
) -> None:
    """user_id of another party: PRECONDITION_FAILED, the channel is closed, nothing arrives."""
    channel = await partner.channel()
    with pytest.raises(BrokerRefusedError) as refused:
        await publish_in(channel, b"{}", message_id="m-forged", type="t", user_id=region.second)
    assert refused.value.reply_code == 406
    assert "user_id" in refused.value.reply_text
    assert await is_empty(await gateway.channel(), IN_QUEUE)


async def test_a_partner_cannot_declare_a_queue(
    region: Region, partner: AbstractRobustConnection
) -> None:
    """Configure is ^$: not even its own inbox may be declared (actively), nor any other queue."""
    for name in (inbox_queue(region.first), "vtgw.partner-own"):
        with pytest.raises(ChannelAccessRefused, match="ACCESS_REFUSED"):
            await (await partner.channel()).declare_queue(
                name, durable=True, arguments={"x-queue-type": "quorum"}
            )


async def test_a_partner_cannot_declare_an_exchange(partner: AbstractRobustConnection) -> None:
    """Configure is ^$: no exchange of its own either."""
    with pytest.raises(ChannelAccessRefused, match="ACCESS_REFUSED"):
        await (await partner.channel()).declare_exchange(
            "vtgw.partner-own", aio_pika.ExchangeType.FANOUT
        )


async def test_a_partner_cannot_publish_to_vtgw_out_or_straight_into_an_inbox(
    region: Region, partner: AbstractRobustConnection
) -> None:
    """Write is ^vtgw\\.in$ only: vtgw.out and the default exchange are ACCESS_REFUSED."""
    item = OutboxItem(1, region.first, "m-posing", region.second, "case.notice", b"{}")
    with pytest.raises(TransientError) as refused:
        await AmqpPublisher(await partner.channel()).publish(item)
    assert isinstance(refused.value.__cause__, BrokerRefusedError)
    assert refused.value.__cause__.reply_code == 403

    channel = await partner.channel()
    with pytest.raises(ChannelAccessRefused, match="ACCESS_REFUSED"):
        await channel.default_exchange.publish(
            aio_pika.Message(b"{}", message_id="m-direct"), routing_key=inbox_queue(region.second)
        )


async def test_a_partner_has_no_access_to_the_management_api(region: Region) -> None:
    """No tags: the management API refuses the partner's own credentials."""
    password = read_env_file(region.file(region.first))["VTGW_AMQP_PASSWORD"]
    status, _ = management("GET", "whoami", user=region.first, password=password)
    assert status == 401


def test_the_cli_provisions_into_a_vhost_with_the_partners_tls_url(
    vhost: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`vt-gateway provision --broker-url amqps://...?cafile=... --vhost V` on the real broker.

    The region's committed contracts and one extra party (a copy of moviera's); the
    committed parties' users are left as the other tests' rigs provision them. The
    partners' credentials files carry the amqps URL with its TLS files as they are on
    the partner's machine, and the vhost of the gateway's topology.
    """
    party = new_party()
    contracts = tmp_path / "contracts"
    contracts.mkdir()
    for committed in (ROOT / "contracts").glob("*.toml"):  # a complete region, plus one party
        (contracts / committed.name).write_bytes(committed.read_bytes())
    moviera = (ROOT / "contracts" / "moviera.toml").read_text(encoding="utf-8")
    assert 'party = "moviera"' in moviera
    (contracts / f"{party}.toml").write_text(
        moviera.replace('party = "moviera"', f'party = "{party}"'), encoding="utf-8"
    )
    config = tmp_path / "gateway.toml"
    config.write_text(
        (ROOT / "config" / "gateway.toml")
        .read_text(encoding="utf-8")
        .replace('directory = "var/contracts"', f'directory = "{contracts}"'),
        encoding="utf-8",
    )
    monkeypatch.setenv("VTGW_BROKER_ADMIN_PASSWORD", ADMIN_PASSWORD)
    partner_tls = "cafile=/etc/vtgw-partner/ca.pem&certfile=/etc/vtgw-partner/client.pem"
    try:
        code = cli(
            [
                "provision",
                "--config",
                str(config),
                "--management-url",
                MANAGEMENT_URL,
                "--admin-user",
                ADMIN_USER,
                "--credentials",
                str(tmp_path / "credentials"),
                "--broker-url",
                f"amqps://mq.vt-gz.example:5671?{partner_tls}",
                "--vhost",
                vhost,
            ]
        )
        assert code == 0
        url = read_env_file(tmp_path / "credentials" / f"{party}.env")["VTGW_AMQP_URL"]
        assert url.startswith(f"amqps://{party}:")
        assert url.endswith(f"@mq.vt-gz.example:5671/{vhost}?{partner_tls}")
        permissions = api_get("users", party, "permissions")
        assert [p["vhost"] for p in permissions] == [vhost]
    finally:
        delete_users(party)
