"""A local, authoritative-looking DNS server for tests (dnslib), on 127.0.0.1, UDP and TCP on one free port.

Nothing here touches the internet: point a :class:`letterhead.dns.Resolver` at ``server.address`` (or use
``server.resolver()``, or put ``server.setting`` in ``LETTERHEAD_DNS_NAMESERVERS``).

The zone is a plain dict, name -> records::

    zone = {
        "_dmarc.example.com": [("TXT", "v=DMARC1; p=reject")],
        "_dmarc.split.example": [("TXT", ["v=DMARC1; ", "p=quarantine"], 60)],   # multi-string TXT, TTL 60
        "example.com": [("MX", "10 mx.example.com."), ("A", "93.184.215.14")],
        "www.example.com": [("CNAME", "example.com.")],
        "broken.example": "SERVFAIL",      # or "REFUSED", or "DROP" (never answers: the client times out)
    }

Each record is ``(type, value)`` or ``(type, value, ttl)``; values are zone-file RDATA text (``"10
mx.example."``) except TXT, which takes a string (split into 255-byte character-strings when longer) or a list
of strings. Semantics: a name in the zone without records of the asked type answers NOERROR with no answer
(NODATA), a name that is not in the zone (and is no parent of one) answers NXDOMAIN; both carry an SOA in the
authority section whose MINIMUM is ``negative_ttl`` (RFC 2308). UDP answers larger than 512 bytes (or the
client's EDNS size) are truncated (TC) so that the client retries over TCP, as a real server would.

Every query is recorded in ``server.queries`` as ``Query(name, qtype, protocol)``; ``server.count(...)``
counts them. Use as a context manager, or through the ``dns_server`` pytest fixture defined here (the project
registers this module as a pytest plugin; a test module may also import the fixture directly).
"""

from __future__ import annotations

import socket
import socketserver
import struct
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import TypeAlias

import pytest
from dnslib import CLASS, QTYPE, RCODE, RR, SOA, TXT, DNSRecord

from letterhead.dns import Resolver

__all__ = ["LocalDnsServer", "Query", "Record", "Zone", "dns_server", "unused_port"]

RecordValue: TypeAlias = str | Sequence[str]
Record: TypeAlias = tuple[str, RecordValue] | tuple[str, RecordValue, int]
Zone: TypeAlias = Mapping[str, Sequence[Record] | str]

_SPECIAL = {"SERVFAIL", "REFUSED", "DROP"}


@dataclass(frozen=True)
class Query:
    name: str  # lower case, no trailing dot
    qtype: str  # "TXT", "MX", ...
    protocol: str  # "udp" or "tcp"


def _norm(name: str) -> str:
    return name.strip().rstrip(".").lower()


def _txt_strings(value: RecordValue) -> list[bytes]:
    if isinstance(value, str):
        data = value.encode()
        # One TXT character-string holds at most 255 bytes (RFC 1035 §3.3); longer text is split, as zone
        # tools do.
        return [data[i : i + 255] for i in range(0, len(data), 255)] or [b""]
    return [s.encode() for s in value]


def unused_port(host: str = "127.0.0.1") -> int:
    """A UDP port on ``host`` where nothing listens right now (for "server unreachable" tests)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
    return port


class _Handler(socketserver.BaseRequestHandler):
    server: _UDPServer | _TCPServer

    def handle(self) -> None:
        owner = self.server.owner
        if isinstance(self.server, _TCPServer):
            conn: socket.socket = self.request
            while True:
                head = self._recv_exact(conn, 2)
                if head is None:
                    return
                (length,) = struct.unpack("!H", head)
                data = self._recv_exact(conn, length)
                if data is None:
                    return
                reply = owner._answer(data, "tcp")
                if reply is None:
                    return
                conn.sendall(struct.pack("!H", len(reply)) + reply)
        else:
            data, sock = self.request
            reply = owner._answer(data, "udp")
            if reply is not None:
                sock.sendto(reply, self.client_address)

    @staticmethod
    def _recv_exact(conn: socket.socket, size: int) -> bytes | None:
        buf = b""
        while len(buf) < size:
            chunk = conn.recv(size - len(buf))
            if not chunk:
                return None
            buf += chunk
        return buf


class _UDPServer(socketserver.ThreadingUDPServer):
    daemon_threads = True
    owner: LocalDnsServer


class _TCPServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    owner: LocalDnsServer


class _UDPServer6(_UDPServer):
    address_family = socket.AF_INET6


class _TCPServer6(_TCPServer):
    address_family = socket.AF_INET6


class LocalDnsServer:
    """See the module docstring."""

    def __init__(
        self,
        zone: Zone | None = None,
        *,
        host: str = "127.0.0.1",
        default_ttl: int = 300,
        negative_ttl: int = 300,
        tcp: bool = True,
    ) -> None:
        self.host = host
        self.default_ttl = default_ttl
        self.negative_ttl = negative_ttl
        self.tcp = tcp
        self.port = 0
        self.queries: list[Query] = []
        self._lock = threading.Lock()
        self._zone: dict[str, list[RR] | str] = {}
        self._udp: _UDPServer | None = None
        self._tcp: _TCPServer | None = None
        self._threads: list[threading.Thread] = []
        if zone:
            self.set_zone(zone)

    # -- zone ------------------------------------------------------------------------------------------------

    def set_zone(self, zone: Zone) -> None:
        """Replace the whole zone."""
        compiled = {_norm(name): self._compile(name, records) for name, records in zone.items()}
        with self._lock:
            self._zone = compiled

    def add(self, name: str, *records: Record) -> None:
        """Add records to ``name`` (creating it)."""
        rrs = self._compile(name, list(records))
        assert isinstance(rrs, list)
        with self._lock:
            current = self._zone.get(_norm(name))
            self._zone[_norm(name)] = (current if isinstance(current, list) else []) + rrs

    def set(self, name: str, records: Sequence[Record] | str) -> None:
        """Replace the records of ``name`` (or make it ``"SERVFAIL"``/``"REFUSED"``/``"DROP"``)."""
        compiled = self._compile(name, records)
        with self._lock:
            self._zone[_norm(name)] = compiled

    def remove(self, name: str) -> None:
        with self._lock:
            self._zone.pop(_norm(name), None)

    def _compile(self, name: str, records: Sequence[Record] | str) -> list[RR] | str:
        if isinstance(records, str):
            if records.upper() not in _SPECIAL:
                raise ValueError(
                    f"{name}: special behaviour must be one of {sorted(_SPECIAL)}, not {records!r}"
                )
            return records.upper()
        owner = _norm(name) + "."
        out: list[RR] = []
        for record in records:
            rtype = record[0].upper()
            value = record[1]
            ttl = record[2] if len(record) == 3 else self.default_ttl
            if rtype == "TXT":
                out.append(RR(owner, QTYPE.TXT, CLASS.IN, ttl, TXT(_txt_strings(value))))
            else:
                if not isinstance(value, str):
                    raise ValueError(f"{name}: {rtype} value must be a string")
                out.extend(RR.fromZone(f"{owner} {ttl} IN {rtype} {value}"))
        return out

    # -- queries ---------------------------------------------------------------------------------------------

    def count(self, name: str | None = None, qtype: str | None = None) -> int:
        """How many queries were received (optionally only for ``name`` and/or ``qtype``)."""
        with self._lock:
            return sum(
                1
                for q in self.queries
                if (name is None or q.name == _norm(name)) and (qtype is None or q.qtype == qtype.upper())
            )

    def reset_queries(self) -> None:
        with self._lock:
            self.queries.clear()

    # -- serving ---------------------------------------------------------------------------------------------

    def _soa(self, qname: str) -> RR:
        # An SOA at the top-level label is a superdomain of every name asked, which is all that negative
        # caching (RFC 2308 §3) needs from it.
        apex = qname.rstrip(".").rsplit(".", 1)[-1] + "."
        rdata = SOA("ns.test.", "hostmaster.test.", (1, 3600, 600, 86400, self.negative_ttl))
        return RR(apex, QTYPE.SOA, CLASS.IN, self.negative_ttl, rdata)

    def _answer(self, data: bytes, protocol: str) -> bytes | None:
        try:
            request = DNSRecord.parse(data)
        except Exception:
            return None
        qname = str(request.q.qname)
        qtype = QTYPE.get(request.q.qtype, str(request.q.qtype))
        name = _norm(qname)
        with self._lock:
            self.queries.append(Query(name, str(qtype), protocol))
            zone = dict(self._zone)
        reply = request.reply()  # sets QR, AA, RD, RA and copies the question
        entry = zone.get(name)
        if entry == "DROP":
            return None
        if entry == "SERVFAIL":
            reply.header.rcode = RCODE.SERVFAIL
        elif entry == "REFUSED":
            reply.header.rcode = RCODE.REFUSED
        else:
            self._fill(reply, name, request.q.qtype, zone)
        packed: bytes = reply.pack()
        if protocol == "udp":
            limit = 512
            for rr in request.ar:
                if rr.rtype == QTYPE.OPT:
                    limit = max(512, int(rr.rclass))
            if len(packed) > limit:
                # Header with TC and the question (dnslib's truncate() drops the question, which clients
                # refuse).
                truncated = request.reply()
                truncated.header.tc = 1
                packed = truncated.pack()
        return packed

    def _fill(self, reply: DNSRecord, name: str, qtype: int, zone: Mapping[str, list[RR] | str]) -> None:
        seen: set[str] = set()
        current = name
        while True:
            entry = zone.get(current)
            if not isinstance(entry, list):
                exists = entry is not None or any(key.endswith("." + current) for key in zone)
                if not exists:
                    reply.header.rcode = RCODE.NXDOMAIN
                if not reply.rr:
                    reply.add_auth(self._soa(current))
                return
            matching = [rr for rr in entry if rr.rtype == qtype or qtype == QTYPE.ANY]
            if matching:
                for rr in matching:
                    reply.add_answer(rr)
                return
            cnames = [rr for rr in entry if rr.rtype == QTYPE.CNAME]
            if not cnames or current in seen:
                if not reply.rr:
                    reply.add_auth(self._soa(current))
                return
            seen.add(current)
            reply.add_answer(cnames[0])
            current = _norm(str(cnames[0].rdata.label))

    def start(self) -> LocalDnsServer:
        if self._udp is not None:
            return self
        last_error: OSError | None = None
        # Bind UDP on a free port, then TCP on the same number; another process may hold that TCP port, so
        # retry.
        ipv6 = ":" in self.host
        udp_class, tcp_class = (_UDPServer6, _TCPServer6) if ipv6 else (_UDPServer, _TCPServer)
        for _ in range(20):
            udp = udp_class((self.host, 0), _Handler)
            port = udp.server_address[1]
            if not self.tcp:
                tcp = None
                break
            try:
                tcp = tcp_class((self.host, port), _Handler)
                break
            except OSError as exc:
                last_error = exc
                udp.server_close()
        else:
            raise RuntimeError(f"could not bind UDP and TCP on one port: {last_error}")
        self.port = int(port)
        self._udp, self._tcp = udp, tcp
        for srv in (udp, tcp):
            if srv is None:
                continue
            srv.owner = self
            thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        for srv in (self._udp, self._tcp):
            if srv is not None:
                srv.shutdown()
                srv.server_close()
        for thread in self._threads:
            thread.join(timeout=5)
        self._udp = self._tcp = None
        self._threads.clear()

    @property
    def address(self) -> tuple[str, int]:
        return (self.host, self.port)

    @property
    def setting(self) -> str:
        """The value for ``LETTERHEAD_DNS_NAMESERVERS``."""
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def resolver(self, *, timeout: float = 2.0) -> Resolver:
        return Resolver([self.address], timeout=timeout)

    def __enter__(self) -> LocalDnsServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"LocalDnsServer({self.setting}, {len(self._zone)} names)"


@pytest.fixture
def dns_server() -> Iterator[LocalDnsServer]:
    """A started, empty :class:`LocalDnsServer`; fill it with ``dns_server.set_zone({...})``."""
    with LocalDnsServer() as server:
        yield server
