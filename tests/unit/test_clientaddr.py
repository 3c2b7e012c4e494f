"""The client address and scheme believe forwarding headers only from trusted proxies."""

from __future__ import annotations

import pytest

from letterhead.clientaddr import parse_address, parse_networks, resolve
from letterhead.errors import ConfigurationError

TRUSTED = parse_networks("127.0.0.1, 10.0.0.0/8, ::1, fd00::/8")


def h(**headers: str) -> list[tuple[bytes, bytes]]:
    return [(k.replace("_", "-").lower().encode(), v.encode()) for k, v in headers.items()]


def test_untrusted_peer_headers_are_ignored() -> None:
    spoof = h(x_forwarded_for="198.51.100.1", x_real_ip="198.51.100.2", forwarded="for=198.51.100.3;proto=https",
              x_forwarded_proto="https")
    assert resolve("203.0.113.9", spoof, "http", TRUSTED) == ("203.0.113.9", "http")
    # No trusted proxies configured (the default): even loopback is not believed (uvicorn's default would).
    assert resolve("127.0.0.1", spoof, "http", ()) == ("127.0.0.1", "http")


def test_x_forwarded_for_rightmost_untrusted_hop() -> None:
    # The client prepended a fake hop; the proxy appended the real peer it saw.
    headers = h(x_forwarded_for="6.6.6.6, 198.51.100.7, 10.1.2.3", x_forwarded_proto="https")
    assert resolve("127.0.0.1", headers, "http", TRUSTED) == ("198.51.100.7", "https")
    assert resolve("127.0.0.1", h(x_forwarded_for="198.51.100.7:4711"), "http", TRUSTED) == ("198.51.100.7", "http")


def test_forwarded_and_x_real_ip_and_ipv6() -> None:
    fwd = h(forwarded='for=6.6.6.6;proto=http, for="[2001:db8::7]:4711";proto=https')
    assert resolve("::1", fwd, "http", TRUSTED) == ("2001:db8::7", "https")
    assert resolve("::ffff:127.0.0.1", h(x_real_ip="2001:db8::8"), "http", TRUSTED) == ("2001:db8::8", "http")
    assert resolve("fd00::5", h(x_forwarded_for="2001:db8::9"), "http", TRUSTED) == ("2001:db8::9", "http")
    # An obfuscated hop: nothing left of it is believed, the trusted proxy's own address is the client.
    assert resolve("127.0.0.1", h(forwarded="for=6.6.6.6, for=unknown"), "http", TRUSTED) == ("127.0.0.1", "http")


def test_parsing() -> None:
    assert str(parse_address('"[2001:db8::1]:80"')) == "2001:db8::1"
    assert parse_address("_hidden") is None
    with pytest.raises(ConfigurationError, match="LETTERHEAD_TRUSTED_PROXIES"):
        parse_networks("127.0.0.1, not-an-address")
