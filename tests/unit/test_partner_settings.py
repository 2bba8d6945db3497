"""The partner's config file (`vtgw-partner run --config`) and the command's refusals."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import structlog

from adapters.amqp.partner.cli import EXIT_CANNOT_RUN, main
from adapters.amqp.partner.settings import (
    AMQP_URL_VARIABLE,
    FolderTarget,
    WebhookTarget,
    load_partner_config,
)
from adapters.crypto.keyfiles import write_private_key
from gateway.domain.errors import ConfigurationError
from gateway.domain.signatures import SigningKey

FULL = """
[partner]
party = "jbg"
state_file = "var/jbg.sqlite3"
rejected_dir = "var/refused"

[amqp]
urls = ["amqp://jbg:secret@mq-1:5672/vtgw", "amqp://jbg:secret@mq-2:5672/vtgw"]
prefetch = 4

[keys]
private_key = "keys/jbg-2026.pem"
kid = "jbg-2026"

[contracts]
directory = "contracts"

[handoff]
webhook = "http://127.0.0.1:9000/vtgw"
timeout_seconds = 3
retry_delay_seconds = 2

[answers]
listen = "127.0.0.1:8081"
outbox_dir = "var/outbox"
receipt_timeout = "PT10M"
attempt_limit = 5
"""

MINIMAL = """
[partner]
party = "jbg"
state_file = "state/jbg.sqlite3"

[amqp]
urls = ["amqp://jbg:secret@mq:5672/vtgw"]

[keys]
private_key = "jbg.pem"

[handoff]
inbox_dir = "inbox"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "partner.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_every_setting_is_read_from_its_table(tmp_path: Path) -> None:
    """Party, brokers, key, contracts, webhook, endpoint, outbox, timeout and limit."""
    config = load_partner_config(write(tmp_path, FULL), environ={})

    agent = config.agent
    assert (config.party, config.kid) == ("jbg", "jbg-2026")
    assert config.private_key == Path("keys/jbg-2026.pem")
    assert config.contracts_dir == Path("contracts")
    assert len(agent.amqp_urls) == 2
    assert agent.handoff == WebhookTarget("http://127.0.0.1:9000/vtgw", timedelta(seconds=3))
    assert agent.listen == ("127.0.0.1", 8081)
    assert agent.outbox_dir == Path("var/outbox")
    assert (agent.receipt_timeout, agent.attempt_limit) == (timedelta(minutes=10), 5)
    assert (agent.prefetch, agent.retry_delay) == (4, timedelta(seconds=2))
    assert agent.rejected_folder == Path("var/refused")


def test_what_is_left_out_takes_its_default(tmp_path: Path) -> None:
    """No endpoint, no outbox; VT's contract's timeout and limit; rejected/ beside the state."""
    config = load_partner_config(write(tmp_path, MINIMAL), environ={})

    agent = config.agent
    assert agent.handoff == FolderTarget(Path("inbox"))
    assert (agent.listen, agent.outbox_dir) == (None, None)
    assert (agent.receipt_timeout, agent.attempt_limit) == (None, None)
    assert agent.rejected_folder == Path("state/rejected")
    assert (config.kid, config.contracts_dir) == (None, None)


def test_the_broker_urls_may_come_from_the_environment(tmp_path: Path) -> None:
    """VTGW_PARTNER_AMQP_URL (comma-separated) keeps the password out of the file."""
    environ = {AMQP_URL_VARIABLE: "amqp://jbg:pw@a:5672/v, amqp://jbg:pw@b:5672/v"}

    config = load_partner_config(write(tmp_path, MINIMAL), environ=environ)

    assert config.agent.amqp_urls == ("amqp://jbg:pw@a:5672/v", "amqp://jbg:pw@b:5672/v")


@pytest.mark.parametrize(
    ("listen", "expected"),
    [("8081", ("127.0.0.1", 8081)), ("0.0.0.0:80", ("0.0.0.0", 80)), ("[::1]:9", ("::1", 9))],  # noqa: S104
)
def test_the_endpoint_binds_to_localhost_unless_told_otherwise(
    tmp_path: Path, listen: str, expected: tuple[str, int]
) -> None:
    """A bare port is 127.0.0.1."""
    config = load_partner_config(
        write(tmp_path, MINIMAL + f'\n[answers]\nlisten = "{listen}"\n'), environ={}
    )

    assert config.agent.listen == expected


@pytest.mark.parametrize(
    "text",
    [
        MINIMAL.replace('inbox_dir = "inbox"', 'inbox_dir = "inbox"\nwebhook = "http://x/"'),
        MINIMAL.replace('inbox_dir = "inbox"', ""),
        MINIMAL.replace('inbox_dir = "inbox"', 'webhook = "ftp://x/"'),
        MINIMAL.replace('party = "jbg"\n', ""),
        MINIMAL + "\n[answers]\nattempt_limit = 0\n",
        MINIMAL + '\n[answers]\nreceipt_timeout = "15 minutes"\n',
        MINIMAL + '\n[answers]\nlisten = "127.0.0.1:99999"\n',
        "party = ",
    ],
    ids=[
        "two handoffs",
        "no handoff",
        "webhook not http",
        "no party",
        "attempt limit 0",
        "timeout not ISO 8601",
        "port out of range",
        "not TOML",
    ],
)
def test_a_wrong_config_is_refused_saying_what_is_wrong(tmp_path: Path, text: str) -> None:
    """ConfigurationError, before anything starts."""
    with pytest.raises(ConfigurationError, match="config"):
        load_partner_config(write(tmp_path, text), environ={})


@pytest.fixture
def logging_restored() -> Iterator[None]:
    """`main` configures structlog for the process (stdout); give the other tests theirs back."""
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)


@pytest.mark.usefixtures("logging_restored")
def test_the_command_cannot_run_without_its_config(tmp_path: Path) -> None:
    """Exit 2 and a line on stderr."""
    assert main(["run", "--config", str(tmp_path / "missing.toml")]) == EXIT_CANNOT_RUN


@pytest.mark.usefixtures("logging_restored")
def test_the_command_refuses_a_key_its_contract_does_not_know(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The committed contracts hold no keys: the partner's key is unknown, exit 2."""
    key = SigningKey.generate("jbg-2026")
    write_private_key(tmp_path / "jbg.pem", key)
    text = MINIMAL.replace('"jbg.pem"', f'"{tmp_path / "jbg.pem"}"')

    code = main(["run", "--config", str(write(tmp_path, text))])

    assert code == EXIT_CANNOT_RUN
    assert "has no key 'jbg'" in capsys.readouterr().err
