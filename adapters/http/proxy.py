"""The client behind a TLS reverse proxy: `X-Forwarded-For` and `-Proto`, from trusted proxies only.

Behind nginx every request comes from the proxy's address, so the dashboard's
sign-in limiter would count everyone as one client and the NEN 7513 access
log would name the proxy. This middleware, on the root application, hands the
handlers a request whose `remote` is the client and whose `scheme` is the one
the client used, when (and only when) the peer is one of the configured
proxies (`[http] trusted_proxies`: addresses or networks).

- From a trusted proxy: `X-Forwarded-For` is read right to left, skipping the
  trusted proxies' own addresses (a chain of proxies); the first other address
  is the client. `X-Forwarded-Proto`'s last value is the scheme.
- From anyone else the headers are ignored (they would be the client's own
  word), and the peer is the client: a health probe or a scraper inside the
  network keeps working without a proxy.
- From a trusted proxy with a header that is not a list of addresses: 400.

(aiohttp-remotes' `XForwardedStrict` refuses every request that does not come
through the proxy, and its `XForwardedFiltered` believes the headers from any
peer; neither is this rule.)
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from ipaddress import IPv4Network, IPv6Network, ip_address, ip_network

from aiohttp import hdrs, web
from aiohttp.typedefs import Middleware

from gateway.domain.errors import ConfigurationError

Network = IPv4Network | IPv6Network
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def trusted_networks(entries: Iterable[str]) -> tuple[Network, ...]:
    """The proxies of the settings (`10.0.0.5`, `10.0.0.0/24`, `::1`); ConfigurationError if not."""
    try:
        return tuple(ip_network(entry.strip(), strict=False) for entry in entries)
    except ValueError as exc:
        raise ConfigurationError(f"[http] trusted_proxies: {exc}") from exc


def client_address(peer: str, forwarded_for: str, trusted: Sequence[Network]) -> str:
    """The client's address: the peer, or (the peer being a trusted proxy) the header's.

    ValueError when a trusted proxy sent a header that is not a list of addresses.
    """
    if not _is_trusted(peer, trusted) or not forwarded_for.strip():
        return peer
    hops = [ip_address(hop.strip()) for hop in forwarded_for.split(",")]
    for hop in reversed(hops):
        if not any(hop in network for network in trusted):
            return str(hop)
    return str(hops[0])  # every hop is a proxy of ours: the first one asked


def forwarding_middleware(trusted: Sequence[Network]) -> Middleware:
    """The root application's middleware; with no trusted proxy it changes nothing."""

    @web.middleware
    async def forwarded(request: web.Request, handler: Handler) -> web.StreamResponse:
        peer = request.remote or ""
        if not trusted or not _is_trusted(peer, trusted):
            return await handler(request)
        try:
            client = client_address(peer, request.headers.get(hdrs.X_FORWARDED_FOR, ""), trusted)
        except ValueError:
            raise web.HTTPBadRequest(text="X-Forwarded-For is not a list of addresses") from None
        proto = request.headers.get(hdrs.X_FORWARDED_PROTO, "").rsplit(",", 1)[-1].strip()
        changes: dict[str, str] = {"remote": client}
        if proto in ("http", "https"):
            changes["scheme"] = proto
        return await handler(request.clone(**changes))  # type: ignore[arg-type]

    return forwarded


def _is_trusted(peer: str, trusted: Sequence[Network]) -> bool:
    try:
        address = ip_address(peer)
    except ValueError:
        return False
    return any(address in network for network in trusted)
