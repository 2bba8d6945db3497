"""The gateway's settings: the committed file loads, and broker URLs are checked at start."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.domain.errors import ConfigurationError
from gateway.settings import load_settings

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "config" / "gateway.toml"


def test_the_committed_settings_load() -> None:
    settings = load_settings(CONFIG, {})
    assert settings.party == "vt-gz"
    assert settings.amqp_urls == ("amqp://guest:guest@127.0.0.1:5672/",)


def test_the_environment_lists_cluster_nodes_comma_separated_with_spaces_dropped() -> None:
    nodes = "amqp://a:5672/, amqp://b:5672/ ,amqp://c:5672/,"
    settings = load_settings(CONFIG, {"VTGW_AMQP_URL": nodes})
    assert settings.amqp_urls == ("amqp://a:5672/", "amqp://b:5672/", "amqp://c:5672/")


def test_an_amqps_url_with_its_tls_files_is_taken(tmp_path: Path) -> None:
    ca, cert, key = (tmp_path / name for name in ("ca.pem", "client.pem", "client.key"))
    for path in (ca, cert, key):
        path.write_text("synthetic")
    url = f"amqps://vtgw@mq:5671/?cafile={ca}&certfile={cert}&keyfile={key}"
    assert load_settings(CONFIG, {"VTGW_AMQP_URL": url}).amqp_urls == (url,)


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("amqp://mq:5672/?cafile={file}", "names cafile but is amqp://"),
        ("amqps://mq:5671/?cafile={missing}", "its cafile is not a file"),
        ("amqps://mq:5671/?cafile={file}&no_verify_ssl=1", "no_verify_ssl would trust any server"),
        ("amqps://mq:5671/?cafile={file}&keyfile={file}", "keyfile without certfile"),
        ("http://mq:5672/", "is not amqp(s)://"),
    ],
)
def test_a_broker_url_whose_tls_is_not_what_it_says_stops_the_start(
    tmp_path: Path, url: str, says: str
) -> None:
    """aiormq ignores TLS files on amqp:// and would connect in plain text: refused at load."""
    secret = tmp_path / "secret-folder" / "ca.pem"
    secret.parent.mkdir()
    secret.write_text("synthetic")
    bad = url.format(file=secret, missing=secret.with_name("absent.pem"))
    with pytest.raises(ConfigurationError) as refused:
        load_settings(CONFIG, {"VTGW_AMQP_URL": f"amqp://fine:5672/,{bad}"})
    assert says in str(refused.value)
    assert "broker URL 2" in str(refused.value)
    assert "secret-folder" not in str(refused.value)  # no path in the message
