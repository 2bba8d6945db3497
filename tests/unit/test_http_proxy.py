"""Behind the TLS reverse proxy: the client's address and scheme, believed from our proxies only."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from adapters.http.proxy import client_address, forwarding_middleware, trusted_networks
from gateway.domain.errors import ConfigurationError

PROXIES = trusted_networks(["10.0.0.5", "10.1.0.0/16"])


@pytest.mark.parametrize(
    ("peer", "header", "client"),
    [
        ("10.0.0.5", "203.0.113.7", "203.0.113.7"),  # one proxy
        ("10.0.0.5", "198.51.100.1, 203.0.113.7", "203.0.113.7"),  # the client's own claim first
        ("10.0.0.5", "203.0.113.7, 10.1.2.3", "203.0.113.7"),  # two proxies of ours
        ("10.0.0.5", "10.1.2.3", "10.1.2.3"),  # only proxies: the first one asked
        ("192.0.2.9", "203.0.113.7", "192.0.2.9"),  # not our proxy: its header is not believed
        ("10.0.0.5", "", "10.0.0.5"),  # our proxy itself (a health probe)
        ("10.0.0.5", "2001:db8::7", "2001:db8::7"),
    ],
)
def test_the_client_is_the_first_address_from_the_right_that_is_not_our_proxy(
    peer: str, header: str, client: str
) -> None:
    assert client_address(peer, header, PROXIES) == client


def test_a_trusted_proxys_header_that_is_not_addresses_is_an_error() -> None:
    with pytest.raises(ValueError, match="does not appear to be an IPv4 or IPv6 address"):
        client_address("10.0.0.5", "203.0.113.7, unknown", PROXIES)


def test_a_proxy_setting_that_is_not_an_address_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="trusted_proxies"):
        trusted_networks(["10.0.0.300"])


async def _echo(request: web.Request) -> web.Response:
    return web.json_response({"remote": request.remote, "scheme": request.scheme})


async def _client(trusted: list[str]) -> TestClient[web.Request, web.Application]:
    """A root app with the middleware and a mounted sub-app, as the runtime builds them."""
    app = web.Application(middlewares=[forwarding_middleware(trusted_networks(trusted))])
    sub = web.Application()
    sub.router.add_get("/echo", _echo)
    app.add_subapp("/dashboard", sub)
    client = TestClient(TestServer(app))
    await client.start_server()
    return client


@pytest.fixture
async def behind_proxy() -> AsyncIterator[TestClient[web.Request, web.Application]]:
    client = await _client(["127.0.0.1"])  # the test's own connection plays the proxy
    yield client
    await client.close()


async def test_a_mounted_handler_sees_the_client_and_the_scheme_the_proxy_names(
    behind_proxy: TestClient[web.Request, web.Application],
) -> None:
    headers = {"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https"}
    response = await behind_proxy.get("/dashboard/echo", headers=headers)
    assert await response.json() == {"remote": "203.0.113.7", "scheme": "https"}


async def test_a_garbled_header_from_the_proxy_is_400(
    behind_proxy: TestClient[web.Request, web.Application],
) -> None:
    response = await behind_proxy.get("/dashboard/echo", headers={"X-Forwarded-For": "nobody"})
    assert response.status == 400


async def test_headers_from_a_peer_that_is_not_our_proxy_change_nothing() -> None:
    client = await _client(["10.0.0.5"])
    try:
        headers = {"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https"}
        response = await client.get("/dashboard/echo", headers=headers)
        assert await response.json() == {"remote": "127.0.0.1", "scheme": "http"}
    finally:
        await client.close()
