"""Which SMTP hosts and ports a tenant may point Letterhead at (the SSRF guard of tests and saved settings).

A tenant-supplied host is refused when it is, or resolves only to, an address that is not globally routable:
loopback, private, link-local (the cloud metadata service 169.254.169.254 among them), unspecified, shared,
multicast, reserved, and the IPv6 forms that hide an IPv4 address (IPv4-mapped, 6to4, NAT64) when the hidden
address is one of those. Python's ``is_global`` alone is not enough: it calls 6to4 and site-local (fec0::/10)
addresses global. IPv4 written in the forms only ``inet_aton`` reads (``127.1``, ``2130706433``,
``0177.0.0.1``, ``0x7f.0.0.1``) is what the C resolver connects to, so it is read the same way here.

Every refusal carries a code (for the UI's words) and an English sentence saying why.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from dataclasses import dataclass

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_METADATA = ipaddress.IPv4Address("169.254.169.254")
_SHARED = ipaddress.IPv4Network("100.64.0.0/10")  # RFC 6598, carrier-grade NAT
_RFC1918 = tuple(ipaddress.IPv4Network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"))
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")  # RFC 6052's well-known prefix
_SITE_LOCAL = ipaddress.IPv6Network("fec0::/10")  # RFC 3879 deprecated it; never routed publicly
_ULA = ipaddress.IPv6Network("fc00::/7")  # RFC 4193

#: code → how the address is described in a sentence
KINDS = {
    "unspecified": "the unspecified address",
    "loopback": "the loopback address",
    "metadata": "the cloud metadata service's link-local address",
    "link_local": "a link-local address",
    "private": "a private network address",
    "shared": "a carrier-grade NAT address (RFC 6598)",
    "site_local": "a site-local address (fec0::/10)",
    "unique_local": "a unique local address (ULA, fc00::/7)",
    "multicast": "a multicast address",
    "reserved": "a reserved address that is not publicly routable",
}

_NUMERIC_V4 = re.compile(r"(0x[0-9a-f]*|[0-9]+)(\.(0x[0-9a-f]*|[0-9]+)){0,3}", re.IGNORECASE)


@dataclass(frozen=True)
class Refusal:
    """Why a host may not be used: ``code`` is one of ``KINDS``; ``detail`` says it in a sentence."""

    code: str
    address: str
    detail: str


def _kind(ip: IPAddress) -> str | None:
    """The ``KINDS`` code of an address that is not public, None for a public one (embedded forms excluded)."""
    if ip.is_unspecified:
        return "unspecified"
    if ip.is_loopback:
        return "loopback"
    if ip == _METADATA:
        return "metadata"
    if ip.is_link_local:
        return "link_local"
    if ip.is_multicast:
        return "multicast"
    if isinstance(ip, ipaddress.IPv4Address):
        if ip in _SHARED:
            return "shared"
        if any(ip in n for n in _RFC1918):
            return "private"
    else:
        if ip in _SITE_LOCAL:
            return "site_local"
        if ip in _ULA:
            return "unique_local"
    if ip.is_private or ip.is_reserved or not ip.is_global:
        return "reserved"
    return None


def _embedded(ip: ipaddress.IPv6Address) -> tuple[str, ipaddress.IPv4Address] | None:
    if ip.ipv4_mapped is not None:
        return "an IPv4-mapped address of", ip.ipv4_mapped
    if ip.sixtofour is not None:
        return "a 6to4 address embedding", ip.sixtofour
    if ip in _NAT64:
        return "a NAT64 address embedding", ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def address_refusal(ip: IPAddress, *, given: str | None = None) -> Refusal | None:
    """Why ``ip`` may not be connected to, or None when it is public. ``given`` is how the caller wrote it."""
    shown = given or str(ip)
    if isinstance(ip, ipaddress.IPv6Address):
        inner = _embedded(ip)
        if inner is not None:
            how, v4 = inner
            kind = _kind(v4)
            if kind is None:
                return None  # the IPv4 address it stands for is public
            return Refusal(kind, str(v4), f"{shown} is {how} {v4}, {KINDS[kind]}.")
    kind = _kind(ip)
    if kind is None:
        return None
    return Refusal(kind, str(ip), f"{shown} is {KINDS[kind]}.")


def is_public(ip: IPAddress) -> bool:
    return address_refusal(ip) is None


def _odd_form(parts: list[str]) -> str:
    if any(p.lower().startswith("0x") for p in parts):
        return "in hexadecimal"
    if any(len(p) > 1 and p.startswith("0") for p in parts):
        return "in octal"
    if len(parts) == 1:
        return "as a single number"
    return "short"


def literal(host: str) -> tuple[IPAddress, str | None] | None:
    """``host`` read as an IP address the way the resolver would connect to it: (address, how it was written
    when not in the usual form), or None for a host name. IPv6 may come in brackets."""
    text = host.strip()
    try:
        return ipaddress.ip_address(text[1:-1] if text.startswith("[") and text.endswith("]") else text), None
    except ValueError:
        pass
    if _NUMERIC_V4.fullmatch(text) is None:
        return None
    try:
        packed = socket.inet_aton(text)
    except OSError:
        return None
    return ipaddress.IPv4Address(packed), _odd_form(text.split("."))


def host_refusal(host: str, *, resolve: bool = True) -> Refusal | None:
    """Why ``host`` (a literal or a name) may not be used, or None. A name is refused when every address it
    resolves to is refused (the client connects only to the public ones); a name that does not resolve is let
    through, for the SMTP test to report as a DNS failure."""
    lit = literal(host)
    if lit is not None:
        ip, form = lit
        refusal = address_refusal(ip)
        if refusal is None:
            return None
        if form is not None:
            article = KINDS[refusal.code].removeprefix("a ").removeprefix("an ").removeprefix("the ")
            return Refusal(refusal.code, refusal.address, f"{host} is the {article} {ip} written {form}.")
        return address_refusal(ip, given=host)
    if not resolve:
        return None
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return None
    refusals = []
    for *_, sockaddr in infos:
        ip = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        refusal = address_refusal(ip)
        if refusal is None:
            return None
        refusals.append(refusal)
    if not refusals:
        return None
    first = refusals[0]
    return Refusal(first.code, first.address, f"{host} resolves to {first.address}, {KINDS[first.code]}.")


def normalise(host: str) -> str:
    """The host as the client should be given it: IP literals in their usual form (no brackets, dotted IPv4)."""
    lit = literal(host)
    return str(lit[0]) if lit is not None else host


def parse_ports(value: str) -> frozenset[int] | None:
    """``LETTERHEAD_SMTP_ALLOWED_PORTS``: comma-separated ports, or ``*`` for any (None)."""
    text = value.strip()
    if text == "*":
        return None
    ports = set()
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        if not part.isdigit() or not 1 <= int(part) <= 65535:
            raise ValueError(f"not a port: {part!r}")
        ports.add(int(part))
    return frozenset(ports)
