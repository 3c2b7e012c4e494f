"""The one DNS seam of Letterhead.

Only this module imports ``dns.resolver`` (dnspython). Everything that needs DNS (the DMARC check,
sending-domain checks, address deliverability, the SMTP host check) takes a :class:`Resolver` built by its
caller from the settings (``LETTERHEAD_DNS_NAMESERVERS``), so tests can point every lookup at a local DNS
server on 127.0.0.1. There is deliberately no module-level default instance: an import-time singleton would
read the system's resolver configuration at import and could not be redirected per test or per process.

dnspython's own exceptions are translated here, once: "the name has no such record" becomes ``None`` /
``False`` / ``[]``; "we could not find out" (timeout, SERVFAIL, no reachable server) becomes
:class:`DnsUnavailable`, which the callers must not confuse with a negative answer.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

import dns.exception
import dns.message
import dns.name
import dns.nameserver
import dns.rdatatype
import dns.resolver

from letterhead.errors import ConfigurationError, LetterheadError

__all__ = ["DnsUnavailable", "Resolver", "TxtAnswer"]

DEFAULT_PORT = 53


class DnsUnavailable(LetterheadError):
    """DNS could not answer (timeout, SERVFAIL, no nameserver reachable). Not the same as "no record"."""

    code = "dns-unavailable"
    status = 503
    title = "DNS unavailable"

    def __init__(self, detail: str, *, name: str, rdtype: str) -> None:
        super().__init__(detail, name=name, rdtype=rdtype)
        self.name = name
        self.rdtype = rdtype


@dataclass(frozen=True)
class TxtAnswer:
    """The TXT records at one name.

    ``records`` holds one string per TXT record, its character-strings joined without separator (RFC 7208 §3.3
    and RFC 7489 §6.1 both say a record split into several strings is read as their concatenation). ``ttl`` is
    the lowest TTL of the answer (CNAMEs included). For a negative lookup (``records`` empty) it is the
    negative-caching TTL of RFC 2308 §5 (the SOA's MINIMUM, capped by the SOA's own TTL), so callers can cache
    "no record" too.
    """

    name: str
    records: tuple[str, ...]
    ttl: int

    def __bool__(self) -> bool:
        return bool(self.records)


def _parse_nameserver(item: str) -> tuple[str, int]:
    """``"127.0.0.1:5353"``, ``"[::1]:53"``, ``"1.2.3.4"`` or ``"::1"`` -> (address, port)."""
    text = item.strip()
    if not text:
        raise ValueError("empty entry")
    host: str
    port_text: str | None
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise ValueError(f"{item!r}: missing ']' after an IPv6 address")
        host, rest = text[1:end], text[end + 1 :]
        if rest == "":
            port_text = None
        elif rest.startswith(":"):
            port_text = rest[1:]
        else:
            raise ValueError(f"{item!r}: expected ':port' after ']'")
    elif text.count(":") > 1:
        # A bare IPv6 address (the port cannot be told apart from the last group without brackets).
        host, port_text = text, None
    elif ":" in text:
        host, port_text = text.split(":", 1)
    else:
        host, port_text = text, None
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(
            f"{item!r}: {host!r} is not an IP address (nameservers must be given by address, "
            "e.g. 127.0.0.1:5353 or [::1]:53)"
        ) from None
    if port_text is None:
        port = DEFAULT_PORT
    else:
        if not port_text.isdigit():
            raise ValueError(f"{item!r}: port {port_text!r} is not a number")
        port = int(port_text)
        if not 1 <= port <= 65535:
            raise ValueError(f"{item!r}: port {port} is out of range 1-65535")
    return str(address), port


class Resolver:
    """Synchronous DNS lookups against the system resolver or explicit nameservers.

    Calls block for at most ``timeout`` seconds each (dnspython's lifetime). In async code run them in a
    thread (``await asyncio.to_thread(resolver.txt, name)``). dnspython's resolver is safe to share between
    threads; this class adds no caching of its own (the DMARC checker has a TTL-honouring cache, and
    dnspython's cache is off).
    """

    def __init__(self, nameservers: Sequence[tuple[str, int]] | None = None, *, timeout: float = 3.0) -> None:
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        if nameservers is None:
            try:
                resolver = dns.resolver.Resolver(configure=True)
            except dns.resolver.NoResolverConfiguration as exc:
                raise ConfigurationError(
                    "No system DNS resolver is configured (/etc/resolv.conf); set LETTERHEAD_DNS_NAMESERVERS"
                ) from exc
        else:
            if not nameservers:
                raise ValueError("nameservers must not be empty (pass None for the system resolver)")
            resolver = dns.resolver.Resolver(configure=False)
            resolver.nameservers = [dns.nameserver.Do53Nameserver(host, port) for host, port in nameservers]
        # One deadline for the whole lookup, retries included; a SERVFAIL is an answer, not a reason to spin.
        resolver.lifetime = timeout
        resolver.timeout = timeout
        resolver.retry_servfail = False
        resolver.cache = None
        self._resolver = resolver
        self._nameservers = tuple(nameservers) if nameservers is not None else None
        self.timeout = timeout

    @classmethod
    def from_setting(cls, value: str | None, *, timeout: float = 3.0) -> Resolver:
        """Build from ``LETTERHEAD_DNS_NAMESERVERS``: ``"host:port,host:port"`` (IPv6 as ``[::1]:53``; a bare
        address means port 53). Empty or ``None`` means the system resolver."""
        if value is None or not value.strip():
            return cls(None, timeout=timeout)
        servers: list[tuple[str, int]] = []
        for item in value.split(","):
            try:
                servers.append(_parse_nameserver(item))
            except ValueError as exc:
                raise ConfigurationError(
                    f"LETTERHEAD_DNS_NAMESERVERS is not a comma-separated list of host:port: {exc}",
                    setting="LETTERHEAD_DNS_NAMESERVERS",
                ) from None
        return cls(servers, timeout=timeout)

    @property
    def nameservers(self) -> tuple[tuple[str, int], ...] | None:
        """The explicit nameservers, or ``None`` for the system resolver."""
        return self._nameservers

    @property
    def dnspython(self) -> dns.resolver.Resolver:
        """The underlying dnspython resolver, for libraries that take one (email-validator's
        ``dns_resolver``)."""
        return self._resolver

    def __repr__(self) -> str:
        where = "system" if self._nameservers is None else ",".join(f"{h}:{p}" for h, p in self._nameservers)
        return f"Resolver({where}, timeout={self.timeout})"

    # -- lookups ---------------------------------------------------------------------------------------------

    def _query(self, name: str, rdtype: str) -> tuple[dns.resolver.Answer | None, int]:
        """Answer (``None`` when the name or the type does not exist) and its (negative-)caching TTL."""
        qname = dns.name.from_text(name.rstrip(".") + ".")
        try:
            answer = self._resolver.resolve(qname, rdtype, search=False, raise_on_no_answer=False)
        except dns.resolver.NXDOMAIN as exc:
            return None, _negative_ttl(exc)
        except dns.resolver.NoNameservers as exc:
            # Every server answered SERVFAIL/REFUSED or could not be talked to.
            raise DnsUnavailable(
                f"No DNS server could answer for {name} ({rdtype}): {exc}", name=name, rdtype=rdtype
            ) from exc
        except dns.exception.Timeout as exc:
            raise DnsUnavailable(
                f"DNS lookup of {name} ({rdtype}) timed out after {self.timeout:g} s",
                name=name,
                rdtype=rdtype,
            ) from exc
        except dns.resolver.YXDOMAIN as exc:
            raise DnsUnavailable(
                f"DNS lookup of {name} ({rdtype}) failed: {exc}", name=name, rdtype=rdtype
            ) from exc
        ttl = int(answer.chaining_result.minimum_ttl)
        if answer.rrset is None:
            return None, ttl
        return answer, ttl

    def txt_lookup(self, name: str) -> TxtAnswer:
        """All TXT records at ``name`` (possibly none), with the TTL to cache this result for."""
        answer, ttl = self._query(name, "TXT")
        records: list[str] = []
        if answer is not None:
            for rdata in answer:
                strings: Sequence[bytes] = rdata.strings
                records.append(b"".join(strings).decode("utf-8", errors="replace"))
        return TxtAnswer(name=name.rstrip("."), records=tuple(records), ttl=ttl)

    def txt(self, name: str) -> TxtAnswer | None:
        """TXT records at ``name``; ``None`` for NXDOMAIN or no TXT record. Raises :class:`DnsUnavailable`."""
        answer = self.txt_lookup(name)
        return answer if answer.records else None

    def has_mail_host(self, domain: str) -> bool | None:
        """Whether ``domain`` can receive mail: an MX (other than RFC 7505's null MX "0 .") or, failing any
        MX,
        an A/AAAA record (the implicit MX of RFC 5321 §5.1). ``None`` when DNS could not tell."""
        try:
            mx, _ = self._query(domain, "MX")
            if mx is not None:
                # A null MX says "this domain accepts no mail" (RFC 7505 §3); then there is no A fallback.
                return any(str(rdata.exchange) != "." for rdata in mx)
            return bool(self.addresses(domain))
        except DnsUnavailable:
            return None

    def addresses(self, host: str) -> list[str]:
        """The A then AAAA addresses of ``host`` (empty when it has none). Raises :class:`DnsUnavailable`."""
        found: list[str] = []
        for rdtype in ("A", "AAAA"):
            answer, _ = self._query(host, rdtype)
            if answer is not None:
                found.extend(str(rdata.address) for rdata in answer)
        return found


def _negative_ttl(exc: dns.resolver.NXDOMAIN) -> int:
    """RFC 2308 negative-caching TTL of an NXDOMAIN (SOA minimum); dnspython's default without an SOA."""
    responses: dict[dns.name.Name, dns.message.Message] = exc.responses()  # type: ignore[no-untyped-call]
    for response in responses.values():
        try:
            if isinstance(response, dns.message.QueryMessage):
                return int(response.resolve_chaining().minimum_ttl)
        except Exception:  # a malformed response still means "does not exist"; fall through to the default
            continue
    return int(dns.message.NEGATIVE_TTL_WITHOUT_SOA)
