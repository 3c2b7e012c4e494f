"""The client's address and scheme, believing forwarding headers only from trusted proxies.

uvicorn's own ``proxy_headers`` trusts ``X-Forwarded-For`` from 127.0.0.1 by default, so anything on the same
machine (or a proxy that passes the header through) could name any address per request and walk around the
per-address sign-in limit. ``serve`` turns that off and this middleware decides instead: only when the direct peer
is in ``LETTERHEAD_TRUSTED_PROXIES`` are ``Forwarded`` (RFC 7239), ``X-Forwarded-For`` and ``X-Real-IP`` read
(in that order of preference), and so are ``Forwarded: proto=`` / ``X-Forwarded-Proto`` for the scheme.

In a forwarding chain every proxy appends the address it received the request from, so the client is the
rightmost hop that is not itself a trusted proxy; the hops left of it were written by the client and prove
nothing. The result replaces ``scope["client"]`` and ``scope["scheme"]``, so ``request.client.host`` and
``request.url.scheme`` are what every route sees.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

from starlette.types import ASGIApp, Receive, Scope, Send

from letterhead.errors import ConfigurationError

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def parse_networks(value: str | None) -> tuple[Network, ...]:
    """``"127.0.0.1, 10.0.0.0/8, ::1"`` → networks; an unparsable entry is a configuration error."""
    out: list[Network] = []
    for item in (value or "").split(","):
        item = item.strip()
        if not item:
            continue
        try:
            out.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ConfigurationError(
                f"LETTERHEAD_TRUSTED_PROXIES: {item!r} is not an IP address or network (e.g. 127.0.0.1, "
                "10.0.0.0/8, ::1)."
            ) from None
    return tuple(out)


def parse_address(value: str) -> Address | None:
    """An address from a header value or a peer: ``192.0.2.1``, ``192.0.2.1:4711``, ``[2001:db8::1]:80``,
    ``"[2001:db8::1]"``; IPv4-mapped IPv6 becomes IPv4. None for anything else (``unknown``, ``_hidden``)."""
    text = value.strip().strip('"').strip()
    if text.startswith("["):
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


def _trusted(addr: Address | None, networks: Sequence[Network]) -> bool:
    return addr is not None and any(addr.version == n.version and addr in n for n in networks)


def _forwarded_elements(values: Iterable[str]) -> list[dict[str, str]]:
    """RFC 7239 ``Forwarded`` header values → one dict of parameters per element (lower-case names)."""
    elements: list[dict[str, str]] = []
    for value in values:
        for element in value.split(","):
            params: dict[str, str] = {}
            for pair in element.split(";"):
                name, sep, val = pair.partition("=")
                if sep:
                    params[name.strip().lower()] = val.strip().strip('"')
            elements.append(params)
    return elements


def resolve(
    peer: str | None, headers: Sequence[tuple[bytes, bytes]], scheme: str, networks: Sequence[Network]
) -> tuple[str | None, str]:
    """(client address, scheme) of a request whose direct peer is ``peer``."""
    peer_addr = parse_address(peer) if peer else None
    if not networks or not _trusted(peer_addr, networks):
        return peer, scheme
    values: dict[bytes, list[str]] = {}
    for name, raw in headers:
        if name in (b"forwarded", b"x-forwarded-for", b"x-real-ip", b"x-forwarded-proto"):
            values.setdefault(name, []).append(raw.decode("latin-1"))
    hops: list[str]
    protos: list[str]
    if b"forwarded" in values:
        elements = _forwarded_elements(values[b"forwarded"])
        hops = [e.get("for", "") for e in elements]
        protos = [e.get("proto", "") for e in elements]
    elif b"x-forwarded-for" in values:
        hops = [h for v in values[b"x-forwarded-for"] for h in v.split(",")]
        protos = [p for v in values.get(b"x-forwarded-proto", []) for p in v.split(",")]
    else:
        hops = values.get(b"x-real-ip", [])[-1:]
        protos = [p for v in values.get(b"x-forwarded-proto", []) for p in v.split(",")]
    client = str(peer_addr)
    index = len(hops)
    for index in range(len(hops) - 1, -1, -1):
        addr = parse_address(hops[index])
        if addr is None:  # an obfuscated or broken hop: nothing left of it can be believed either
            index += 1
            break
        client = str(addr)
        if not _trusted(addr, networks):
            break
    # The scheme the client used is the one recorded by the proxy that received it: the proto of the same hop
    # when each hop has one, else the one nearest to us.
    proto = ""
    if protos:
        proto = protos[index] if len(protos) == len(hops) and index < len(protos) else protos[-1]
    proto = proto.strip().lower()
    return client, proto if proto in ("http", "https") else scheme


class ClientAddress:
    """Pure ASGI middleware (see ``BodyLimit`` for why not ``BaseHTTPMiddleware``) setting ``scope["client"]``
    and ``scope["scheme"]`` from trusted proxies' headers."""

    def __init__(self, app: ASGIApp, networks: Sequence[Network]) -> None:
        self.app = app
        self.networks = tuple(networks)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.networks:
            client = scope.get("client")
            host, scheme = resolve(client[0] if client else None, scope["headers"], scope.get("scheme", "http"),
                                   self.networks)
            if host is not None:
                scope = dict(scope, client=(host, client[1] if client else 0), scheme=scheme)
        await self.app(scope, receive, send)
