"""The asyncio SMTP client: the one seam through which Letterhead speaks SMTP.

Design note
-----------
* The protocol is written here on a bare ``asyncio.Protocol`` rather than on aiosmtplib: measured on two cores
  with ~4 KB pre-rendered messages, aiosmtplib peaks around 1,500 msgs/s over 8 connections, roughly ten times
  slower than a pipelined client (DESIGN.md, performance notes). Its cost is per-line Python work, one
  ``await`` per command, and a full ``email`` round trip; we need none of it because messages arrive as bytes.
* RFC 2920 PIPELINING: MAIL FROM, every RCPT TO and DATA go out in one write, the replies are read afterwards;
  then the body and the final "." in a second write. On one connection the *next* message's MAIL/RCPT/DATA
  ride in the same write as the previous body (RFC 2920 §3.1 lets message content start a command group), so a
  message costs one round trip. A needed RSET is pipelined in front of the next group instead of costing
  its own round trip.
* Connections are pooled per endpoint (``Endpoint.pool_key``), capped by ``Endpoint.max_connections``
  (Microsoft 365 allows 3 concurrent SMTP connections per mailbox), and never reused after anything odd.
* Every foreign failure (OSError, ssl.SSLError, timeouts, garbage from the server) is translated once, here,
  into a :class:`SendResult` with an :class:`~letterhead.smtp.reply.ErrorKind` (DESIGN.md convention 2).
* Transcripts never hold credentials or the message body: AUTH payloads are replaced by ``********``.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import ipaddress
import os
import secrets
import socket
import ssl
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from functools import lru_cache
from typing import cast

from letterhead.smtp import hosts
from letterhead.smtp.reply import ErrorKind, Reply

__all__ = [
    "Connection",
    "Endpoint",
    "Envelope",
    "Outcome",
    "Security",
    "SendResult",
    "SmtpClient",
    "SmtpFailure",
    "open_connection",
]

# RFC 5321 §4.5.3.1.5 limits a reply line to 512 octets; be generous, but never buffer without bound.
_MAX_LINE = 16 * 1024
_MAX_REPLY_LINES = 512
_REDACTED = "********"

# A per-process key so that ``pool_key`` identifies a password without containing anything that could be
# brute-forced offline if the key ever ends up in a log or a crash report.
_PROCESS_KEY = secrets.token_bytes(32)

#: Failures that retrying cannot fix: the configuration (port, security, credentials, host) must change.
PERMANENT_ERRORS = frozenset(
    {
        ErrorKind.TLS_CERTIFICATE,
        ErrorKind.TLS_WRONG_VERSION,
        ErrorKind.TLS_HANDSHAKE,
        ErrorKind.STARTTLS_UNSUPPORTED,
        ErrorKind.AUTH_UNSUPPORTED,
        ErrorKind.PRIVATE_ADDRESS,
    }
)


class Security(StrEnum):
    SSL = "ssl"  # implicit TLS from the first byte (RFC 8314), usually port 465
    STARTTLS = "starttls"  # plain connection upgraded with STARTTLS (RFC 3207), usually port 587
    NONE = "none"


class Outcome(StrEnum):
    SENT = "sent"
    TRANSIENT = "transient"
    PERMANENT = "permanent"


@dataclass(frozen=True)
class Endpoint:
    """Where and how to connect. Frozen: it is the identity of a connection pool."""

    host: str
    port: int
    security: Security
    username: str | None = None
    password: str | None = field(default=None, repr=False)  # never in repr, logs, transcripts
    helo_name: str = "localhost"
    timeout: float = 30.0  # per step: connect, TLS handshake, each reply, each body write
    verify_tls: bool = True  # the default context honours SSL_CERT_FILE; False only by explicit choice
    max_connections: int = 8  # pool cap for this endpoint (Microsoft 365 needs 3)
    allow_private: bool = True  # False: refuse loopback/private/link-local/... addresses (SSRF guard)

    def pool_key(self) -> tuple[object, ...]:
        """Identity for pooling. Holds a keyed hash of the password, never the password."""
        pw = None
        if self.password is not None:
            pw = hmac.new(_PROCESS_KEY, self.password.encode("utf-8"), hashlib.sha256).hexdigest()
        return (
            self.host.lower(),
            self.port,
            str(self.security),
            self.username,
            pw,
            self.helo_name,
            self.verify_tls,
            self.allow_private,
        )


@dataclass(frozen=True)
class Envelope:
    mail_from: str
    rcpt_to: tuple[str, ...]
    data: bytes  # complete RFC 5322 message, CRLF line endings, NOT dot-stuffed (the client stuffs)
    #: True when ``data`` is known to be SMTP-canonical (only CRLF line ends, no line starting with "."), as
    #: ``notifications.compose`` guarantees: then the client skips the transparency scans, ~35 µs per 12 KB
    #: message (five passes over the bytes). Anything else is normalised and dot-stuffed.
    canonical: bool = False


@dataclass
class SendResult:
    outcome: Outcome
    reply: Reply | None  # the decisive reply (250 after DATA on success, else the failing one)
    # Where it ended: "resolve", "connect", "tls", "greeting", "ehlo", "auth", "mail_from", "rcpt_to",
    # "data" or "done".
    stage: str
    error: str | None  # an ErrorKind value when the failure was not a reply
    error_detail: str | None  # human-readable detail of that error (no secrets)
    transcript: str  # C:/S: lines, AUTH payloads redacted, body replaced by its size
    duration_ms: float
    accepted: tuple[str, ...] = ()
    rejected: dict[str, Reply] = field(default_factory=dict)  # per-recipient RCPT rejections
    greeting: str | None = None  # 220 banner text of the connection
    ehlo: tuple[str, ...] = ()  # EHLO extension lines of the connection


Trace = Callable[[str, bool, float, str], None]
"""Step callback ``(name, ok, ms, detail)`` used by the probe; the client passes none."""


class SmtpFailure(Exception):
    """A failure while opening a connection or during a transaction (internal; becomes a result)."""

    def __init__(
        self,
        stage: str,
        *,
        error: str | None = None,
        detail: str | None = None,
        reply: Reply | None = None,
        transcript: list[str] | None = None,
        greeting: str | None = None,
        ehlo: tuple[str, ...] = (),
        address: tuple[str, int] | None = None,
    ) -> None:
        super().__init__(detail or (f"{reply.code} {reply.text}" if reply else stage))
        self.address = address  # the IP and port connected to, when it got that far
        self.stage = stage
        self.error = error
        self.detail = detail
        self.reply = reply
        self.transcript = transcript if transcript is not None else []
        self.greeting = greeting
        self.ehlo = ehlo

    @property
    def outcome(self) -> Outcome:
        return _outcome_of(self.reply, self.error)


class _ConnError(Exception):
    """The connection itself failed (timeout, drop, garbage): it must not be used again."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind
        self.detail = detail


class _Stale(Exception):
    """A reused connection turned out to be closed before this message got any answer: retry on a new one."""


def _outcome_of(reply: Reply | None, error: str | None) -> Outcome:
    if reply is not None:
        if reply.code < 400:
            return Outcome.SENT
        return Outcome.TRANSIENT if reply.code < 500 else Outcome.PERMANENT
    if error in PERMANENT_ERRORS:
        return Outcome.PERMANENT
    return Outcome.TRANSIENT


# --------------------------------------------------------------------------------------------- protocol


#: Shorter secrets are not cut out of replies: they would match ordinary words (and are no secret anyway).
_MIN_REDACTED = 3


def secrets_of(endpoint: Endpoint) -> tuple[str, ...]:
    """The credentials a connection to ``endpoint`` may send, in every form a server could echo back: the
    password as typed, and base64 of it (AUTH LOGIN) and of the AUTH PLAIN response."""
    password = endpoint.password or ""
    if len(password) < _MIN_REDACTED:
        return ()
    user = endpoint.username or ""
    forms = {
        password,
        base64.b64encode(password.encode()).decode("ascii"),
        base64.b64encode(f"\0{user}\0{password}".encode()).decode("ascii"),
    }
    return tuple(sorted(forms, key=len, reverse=True))  # longest first: a form containing another goes whole


def _redact(line: str, secrets: tuple[str, ...]) -> str:
    """``line`` with every secret replaced. The one seam for replies: everything stored or shown about a
    reply (``Reply``, transcripts, failure details, diagnoses) is built from lines that passed through here,
    so a server that echoes the submitted password (``535 ... for user:<password>``) cannot leak it."""
    for secret in secrets:
        if secret in line:
            line = line.replace(secret, _REDACTED)
    return line


class _Raw:
    """One reply as received: code and raw lines (with codes). Parsed into a Reply only when needed."""

    __slots__ = ("code", "lines")

    def __init__(self, code: int, lines: list[str]) -> None:
        self.code = code
        self.lines = lines

    def reply(self) -> Reply:
        return Reply.from_lines(self.code, [line[4:] for line in self.lines])

    def transcript(self) -> str:
        if len(self.lines) == 1:
            return "S: " + self.lines[0]
        return "S: " + "\nS: ".join(self.lines)


def _timeout_waiter(fut: asyncio.Future[None], timeout: float) -> None:
    if not fut.done():
        fut.set_exception(_ConnError(ErrorKind.TIMEOUT, f"no answer within {timeout:g} s"))


class _SmtpProtocol(asyncio.Protocol):
    """Buffers bytes, splits complete replies (RFC 5321 §4.2: "xyz-" continues, "xyz " ends a reply)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.replies: deque[_Raw] = deque()
        self.received_any = False  # any byte ever arrived (tells "plain server" from "silent" on TLS errors)
        self.plain_head = b""  # the first bytes seen before TLS (for the "plain_port" diagnosis)
        self.lost = False
        self.exc: _ConnError | None = None
        self._buf = bytearray()
        self._lines: list[str] = []
        self._waiter: asyncio.Future[None] | None = None
        # One timer watches the reads' deadlines (see ``_watch_reads``), not one per read.
        self._read_deadline = 0.0
        self._read_timeout = 0.0
        self._read_timer: asyncio.TimerHandle | None = None
        self._paused = False
        self._drain: asyncio.Future[None] | None = None
        #: The credentials this connection sends, as sent (see ``secrets_of``): cut out of every reply line.
        self.redact: tuple[str, ...] = ()

    # -- asyncio callbacks
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without inheriting from it: no isinstance check.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if not self.received_any:
            self.received_any = True
            self.plain_head = data[:200]
        # Complete lines are decoded and split in one go (a message's four replies usually arrive together):
        # half the cost of slicing and decoding line by line. UTF-8 never has a 0x0A inside a character, so
        # cutting at the last newline cannot split one.
        buf = self._buf
        if buf:
            buf += data
            data = bytes(buf)
            buf.clear()
        end = data.rfind(b"\n") + 1
        if end < len(data):
            buf += data[end:]
        if end:
            lines = self._lines
            replies = self.replies
            redact = self.redact
            for line in data[:end].decode("utf-8", "replace").split("\n")[:-1]:
                line = line.rstrip("\r")
                if redact:
                    line = _redact(line, redact)
                n = len(line)
                if n < 3 or not line[:3].isdigit() or (n > 3 and line[3] not in " -"):
                    self._fail(_ConnError(ErrorKind.PROTOCOL, f"not an SMTP reply: {line[:80]!r}"))
                    return
                lines.append(line)
                if n == 3 or line[3] == " ":
                    replies.append(_Raw(int(line[:3]), lines))
                    lines = self._lines = []
                elif len(lines) > _MAX_REPLY_LINES:
                    self._fail(_ConnError(ErrorKind.PROTOCOL, "reply with too many lines"))
                    return
        if len(buf) > _MAX_LINE:
            self._fail(_ConnError(ErrorKind.PROTOCOL, "reply line too long"))
            return
        w = self._waiter
        if w is not None and self.replies and not w.done():
            w.set_result(None)

    def eof_received(self) -> bool | None:
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if self._read_timer is not None:
            self._read_timer.cancel()
            self._read_timer = None
        if self.exc is None:
            detail = "the server closed the connection"
            if exc is not None:
                detail += f" ({exc.__class__.__name__}: {exc})" if str(exc) else ""
            self.exc = _ConnError(ErrorKind.DROPPED, detail)
        for fut in (self._waiter, self._drain):
            if fut is not None and not fut.done():
                fut.set_result(None)

    def pause_writing(self) -> None:
        self._paused = True

    def resume_writing(self) -> None:
        self._paused = False
        if self._drain is not None and not self._drain.done():
            self._drain.set_result(None)

    # -- our side
    def _fail(self, exc: _ConnError) -> None:
        if self.exc is None:
            self.exc = exc
        if self.transport is not None:
            self.transport.abort()
        w = self._waiter
        if w is not None and not w.done():
            w.set_result(None)

    def reset_buffers(self) -> None:
        """Forget everything read so far: after STARTTLS (RFC 3207 §4.2, no plaintext may leak in)."""
        self._buf.clear()
        self._lines = []
        self.replies.clear()

    async def read(self, timeout: float) -> _Raw:
        if self.replies:
            return self.replies.popleft()
        if self.exc is not None:
            raise self.exc
        fut: asyncio.Future[None] = self.loop.create_future()
        self._waiter = fut
        self._read_deadline = deadline = self.loop.time() + timeout
        self._read_timeout = timeout
        timer = self._read_timer
        if timer is None or timer.when() > deadline:
            if timer is not None:
                timer.cancel()
            self._read_timer = self.loop.call_at(deadline, self._watch_reads)
        try:
            await fut
        finally:
            self._waiter = None
        if self.replies:
            return self.replies.popleft()
        raise self.exc or _ConnError(ErrorKind.DROPPED, "the server closed the connection")

    def _watch_reads(self) -> None:
        """Time out the read in progress once its deadline has passed; otherwise wait for the next deadline.

        A connection reads a reply or more per message, a few milliseconds apart: a timer per read (call_later,
        then cancel: ~2.4 µs with uvloop, measured) costs more than the rest of the read. This one fires at most
        once per ``timeout`` while reads go on, and stops when none is waiting."""
        self._read_timer = None
        fut = self._waiter
        if fut is None or fut.done():
            return
        if self.loop.time() >= self._read_deadline:
            _timeout_waiter(fut, self._read_timeout)
        else:
            self._read_timer = self.loop.call_at(self._read_deadline, self._watch_reads)

    async def write(self, data: bytes, timeout: float) -> None:
        if self.lost or self.transport is None:
            raise self.exc or _ConnError(ErrorKind.DROPPED, "the server closed the connection")
        self.transport.write(data)
        if self._paused:
            # Flow control: the kernel buffer is full (large message or a slow server).
            fut: asyncio.Future[None] = self.loop.create_future()
            self._drain = fut
            handle = self.loop.call_later(timeout, _timeout_waiter, fut, timeout)
            try:
                await fut
            finally:
                handle.cancel()
                self._drain = None
            if self.lost:
                raise self.exc or _ConnError(ErrorKind.DROPPED, "the server closed the connection")


# --------------------------------------------------------------------------------------------- helpers


@lru_cache(maxsize=16)
def _tls_context_cached(verify: bool, cafile: str | None, capath: str | None) -> ssl.SSLContext:
    # Keyed on the env vars so that a changed SSL_CERT_FILE (tests, operators) is honoured.
    ctx = ssl.create_default_context()
    if not verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def tls_context(verify: bool) -> ssl.SSLContext:
    """The default context (system trust store, honours SSL_CERT_FILE/SSL_CERT_DIR); cached per setting."""
    return _tls_context_cached(verify, os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR"))


def is_private_address(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Addresses a tenant-supplied host must not reach (SSRF guard): see ``letterhead.smtp.hosts``."""
    return not hosts.is_public(ip)


_WRONG_VERSION_MARKERS = (
    "WRONG_VERSION_NUMBER",
    "RECORD_LAYER_FAILURE",
    "PACKET_LENGTH_TOO_LONG",
    "UNKNOWN_PROTOCOL",
    "HTTP_REQUEST",
    "RECORD LAYER FAILURE",
    "PACKET LENGTH TOO LONG",
    "WRONG VERSION NUMBER",
)


def _classify_tls(exc: BaseException, proto: _SmtpProtocol, timeout: float) -> _ConnError:
    """Translate a failed TLS handshake into an ErrorKind."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return _ConnError(ErrorKind.TLS_CERTIFICATE, f"certificate rejected: {exc.verify_message or exc}")
    plain = proto.received_any and proto.plain_head[:3].isdigit()
    if isinstance(exc, ssl.SSLError):
        text = f"{exc.reason or ''} {exc}".upper()
        if any(m in text for m in _WRONG_VERSION_MARKERS) or plain:
            return _ConnError(
                ErrorKind.TLS_WRONG_VERSION,
                "the server answered the TLS handshake in plain text: this port expects STARTTLS or no "
                "encryption, not SSL/TLS",
            )
        if isinstance(exc, ssl.SSLEOFError):
            return _ConnError(ErrorKind.DROPPED, "the server closed the connection during the TLS handshake")
        return _ConnError(ErrorKind.TLS_HANDSHAKE, f"TLS handshake failed: {exc.reason or exc}")
    if plain:
        # A plain server that waits for a command line may never answer our binary ClientHello.
        return _ConnError(
            ErrorKind.TLS_WRONG_VERSION,
            "the server spoke plain SMTP instead of TLS: this port expects STARTTLS or no encryption",
        )
    if isinstance(exc, TimeoutError) or (
        # asyncio's own handshake timer aborts with this (sslproto._check_handshake_timeout)
        isinstance(exc, ConnectionAbortedError) and "taking longer" in str(exc)
    ):
        return _ConnError(ErrorKind.TIMEOUT, f"TLS handshake did not complete within {timeout:g} s")
    if isinstance(exc, _ConnError):
        return exc
    return _ConnError(ErrorKind.DROPPED, f"connection lost during the TLS handshake ({exc!r})")


def _ms(t0: float) -> float:
    return (time.perf_counter() - t0) * 1000.0


def _stuff(data: bytes) -> bytes:
    """RFC 5321 §4.5.2 transparency plus the terminating "." line, in a handful of C-level passes."""
    # Bare CR or LF would let a body end the DATA phase early on lenient servers (SMTP smuggling,
    # CVE-2023-51764): normalise unless every line ending is already CRLF (three fast counts).
    crlf = data.count(b"\r\n")
    if data.count(b"\n") != crlf or data.count(b"\r") != crlf:
        data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n").replace(b"\n", b"\r\n")
    if data.startswith(b"."):
        data = b"." + data
    data = data.replace(b"\r\n.", b"\r\n..")
    if data and not data.endswith(b"\r\n"):
        return data + b"\r\n.\r\n"
    return data + b".\r\n"


def _describe_cert(proto: _SmtpProtocol, verified: bool) -> str:
    if proto.transport is None:
        return "TLS"
    sslobj = proto.transport.get_extra_info("ssl_object")
    if sslobj is None:
        return "TLS"
    version = sslobj.version() or "TLS"
    cipher = sslobj.cipher()
    text = f"{version} ({cipher[0]})" if cipher else version
    if not verified:
        return text + ", certificate not verified (verify_tls is off)"
    cert = sslobj.getpeercert() or {}
    names = [v for k, v in cert.get("subjectAltName", ()) if k in ("DNS", "IP Address")]
    expires = cert.get("notAfter")
    text += ", certificate valid for " + (", ".join(names[:4]) or "the host")
    if expires:
        text += f" (expires {expires})"
    return text


# --------------------------------------------------------------------------------------------- connection


class _Tx:
    """One message's transaction on some connection."""

    __slots__ = ("accepted", "env", "index", "lines", "rejected", "result", "retried", "rset", "stage", "t0")

    def __init__(self, env: Envelope, index: int = 0) -> None:
        self.env = env
        self.index = index
        self.lines: list[str] = []
        self.t0 = time.perf_counter()
        self.stage = "mail_from"
        self.accepted: list[str] = []
        self.rejected: dict[str, Reply] = {}
        self.result: SendResult | None = None
        self.retried = False
        self.rset = False  # the written group starts with RSET

    def restart(self, note: str) -> None:
        self.lines.append("* " + note)
        self.accepted = []
        self.rejected = {}
        self.stage = "mail_from"
        self.rset = False


class Connection:
    """One SMTP session. Built by :func:`open_connection`; used by the pool and by the probe."""

    def __init__(self, endpoint: Endpoint, loop: asyncio.AbstractEventLoop, trace: Trace | None) -> None:
        self.endpoint = endpoint
        self.loop = loop
        self.trace = trace
        self.proto = _SmtpProtocol(loop)
        self.proto.redact = secrets_of(endpoint)
        self.setup_lines: list[str] | None = []  # handed to the first transaction's transcript
        self.greeting: str | None = None
        self.ehlo: tuple[str, ...] = ()
        self.ext: dict[str, str] = {}
        self.address: tuple[str, int] | None = None
        self.tls_info: str | None = None
        self.pipelining = False
        self.needs_rset = False
        self.dead = False
        self.tx_count = 0
        self.idle_since = 0.0
        self.generation = 0

    # -- low level
    def _log(self, line: str) -> None:
        if self.setup_lines is not None:
            self.setup_lines.append(line)

    async def _cmd(self, stage: str, cmd: str, shown: str | None = None, timeout: float | None = None) -> _Raw:
        """Send one command during set-up and read its reply; failures become SmtpFailure(stage)."""
        self._log("C: " + (shown if shown is not None else cmd))
        t = self.endpoint.timeout if timeout is None else timeout
        try:
            await self.proto.write(cmd.encode("utf-8") + b"\r\n", t)
            r = await self.proto.read(t)
        except _ConnError as e:
            raise self._fail(stage, e.kind, e.detail) from None
        self._log(r.transcript())
        return r

    def _fail(
        self, stage: str, error: str | None = None, detail: str | None = None, raw: _Raw | None = None
    ) -> SmtpFailure:
        self.close()
        return SmtpFailure(
            stage,
            error=error,
            detail=detail,
            reply=raw.reply() if raw is not None else None,
            transcript=self.setup_lines or [],
            greeting=self.greeting,
            ehlo=self.ehlo,
            address=self.address,
        )

    def close(self) -> None:
        self.dead = True
        t = self.proto.transport
        if t is not None and not t.is_closing():
            t.close()

    async def quit(self, timeout: float = 2.0) -> None:
        """Polite QUIT (RFC 5321 §4.1.1.10), then close; never raises."""
        if not self.dead and not self.proto.lost:
            try:
                await self.proto.write(b"QUIT\r\n", timeout)
                await self.proto.read(timeout)
            except _ConnError:
                pass
        self.close()

    @property
    def usable(self) -> bool:
        return not self.dead and not self.proto.lost

    # -- set-up
    async def setup(self, *, pipelining: bool, greeting_timeout: float | None) -> None:
        ep = self.endpoint
        trace = self.trace
        t = ep.timeout

        # Resolve. We connect to the very address we checked, so a DNS answer cannot change between the SSRF
        # check and the connect (no rebinding window).
        t0 = time.perf_counter()
        addrs = await self._resolve()
        if trace:
            shown = ", ".join(a for a, _ in addrs[:3])
            trace("resolve", True, _ms(t0), f"resolved {ep.host} to {shown} in {_ms(t0):.0f} ms")

        # Connect (TCP), trying each address in turn.
        t0 = time.perf_counter()
        last: _ConnError | None = None
        for ip, family in addrs:
            try:
                await asyncio.wait_for(self.loop.create_connection(lambda: self.proto, ip, ep.port, family=family), t)
            except TimeoutError:
                last = _ConnError(ErrorKind.TIMEOUT, f"connecting to {ip}:{ep.port} timed out after {t:g} s")
                continue
            except ConnectionRefusedError:
                last = _ConnError(ErrorKind.REFUSED, f"{ip}:{ep.port} refused the connection")
                continue
            except OSError as e:
                last = _ConnError(ErrorKind.REFUSED, f"cannot connect to {ip}:{ep.port}: {e.strerror or e}")
                continue
            self.address = (ip, ep.port)
            break
        if self.address is None:
            assert last is not None
            raise self._fail("connect", last.kind, last.detail)
        sock = self.proto.transport.get_extra_info("socket") if self.proto.transport else None
        if sock is not None:
            # Commands are small and latency-bound: never let Nagle hold a pipelined group back.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        connected = f"connected to {self.address[0]}:{ep.port} in {_ms(t0):.0f} ms"
        self._log(f"* connected to {self.address[0]}:{ep.port}")

        if ep.security is Security.SSL:
            if trace:
                trace("connect", True, _ms(t0), connected)
            t0 = time.perf_counter()
            await self._start_tls()

        greeting = await self._greeting(greeting_timeout)
        if trace:
            if ep.security is Security.SSL:
                trace("tls", True, _ms(t0), f"{self.tls_info}; greeting: {greeting}")
            else:
                trace("connect", True, _ms(t0), f"{connected}; greeting: {greeting}")

        t0 = time.perf_counter()
        await self._ehlo()
        if ep.security is Security.STARTTLS:
            if "STARTTLS" not in self.ext:
                raise self._fail(
                    "tls", ErrorKind.STARTTLS_UNSUPPORTED, "the server does not offer STARTTLS on this port"
                )
            r = await self._cmd("tls", "STARTTLS")
            if r.code != 220:
                raise self._fail("tls", raw=r)
            await self._start_tls()
            if trace:
                trace("tls", True, _ms(t0), f"STARTTLS, {self.tls_info}")
            # RFC 3207 §4.2: forget everything learned before TLS and ask again.
            t0 = time.perf_counter()
            await self._ehlo()
        elif trace and ep.security is Security.NONE:
            trace("tls", True, 0.0, "not used (security: none)")
        if trace:
            offered = ", ".join(self.ehlo) if self.ehlo else "no extensions (HELO)"
            trace("ehlo", True, _ms(t0), f"server offers {offered}")

        if ep.username:
            t0 = time.perf_counter()
            mech = await self._auth()
            if trace:
                trace("auth", True, _ms(t0), f"authenticated as {ep.username} ({mech})")
        elif trace:
            trace("auth", True, 0.0, "no credentials")

        self.pipelining = pipelining and "PIPELINING" in self.ext

    async def _greeting(self, greeting_timeout: float | None) -> str:
        # RFC 5321 §3.1. No greeting at all is the signature of an implicit-TLS port spoken to in plain text:
        # the server is waiting for our ClientHello.
        ep = self.endpoint
        gt = ep.timeout if greeting_timeout is None else greeting_timeout
        try:
            r = await self.proto.read(gt)
        except _ConnError as e:
            if e.kind == ErrorKind.TIMEOUT:
                raise self._fail(
                    "greeting", ErrorKind.GREETING_TIMEOUT, f"connected, but no greeting within {gt:g} s"
                ) from None
            raise self._fail("greeting", e.kind, e.detail) from None
        self._log(r.transcript())
        self.greeting = " ".join(line[4:] for line in r.lines)
        if r.code != 220:
            # 421/554 greeting: the server does not want us (RFC 5321 §3.1, §4.3.2).
            raise self._fail("greeting", raw=r)
        return r.lines[0]

    async def _resolve(self) -> list[tuple[str, int]]:
        ep = self.endpoint
        try:
            lit = ipaddress.ip_address(ep.host.strip("[]"))
            infos: list[tuple[str, int]] = [(str(lit), socket.AF_INET6 if lit.version == 6 else socket.AF_INET)]
        except ValueError:
            try:
                raw = await asyncio.wait_for(
                    self.loop.getaddrinfo(ep.host, ep.port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP),
                    ep.timeout,
                )
            except socket.gaierror as e:
                raise self._fail("resolve", ErrorKind.DNS, f"{ep.host} does not resolve ({e.strerror})") from None
            except TimeoutError:
                raise self._fail("resolve", ErrorKind.DNS, f"resolving {ep.host} timed out") from None
            infos = []
            for family, _t, _p, _c, sockaddr in raw:
                ip = str(sockaddr[0])
                if (ip, family) not in infos:
                    infos.append((ip, int(family)))
        if not infos:
            raise self._fail("resolve", ErrorKind.DNS, f"{ep.host} has no address")
        if not ep.allow_private:
            public = [(ip, f) for ip, f in infos if not is_private_address(ipaddress.ip_address(ip))]
            if not public:
                raise self._fail(
                    "resolve",
                    ErrorKind.PRIVATE_ADDRESS,
                    f"{ep.host} resolves to {infos[0][0]}, a private or reserved address",
                )
            infos = public
        return infos

    async def _start_tls(self) -> None:
        ep = self.endpoint
        proto = self.proto
        assert proto.transport is not None
        # RFC 3207 §4.2: anything the server sent before the handshake must not be taken for a reply after it.
        proto.reset_buffers()
        try:
            transport = await asyncio.wait_for(
                self.loop.start_tls(
                    proto.transport,
                    proto,
                    tls_context(ep.verify_tls),
                    server_hostname=ep.host,
                    ssl_handshake_timeout=ep.timeout,
                ),
                ep.timeout,
            )
        except (OSError, TimeoutError, _ConnError) as e:
            err = _classify_tls(e, proto, ep.timeout)
            raise self._fail("tls", err.kind, err.detail) from None
        if transport is None:
            raise self._fail("tls", ErrorKind.DROPPED, "connection lost during the TLS handshake")
        proto.transport = transport
        # No reset here: with implicit TLS the greeting may already have arrived through the new layer.
        self.tls_info = _describe_cert(proto, ep.verify_tls)
        self._log("* TLS " + self.tls_info)

    async def _ehlo(self) -> None:
        ep = self.endpoint
        r = await self._cmd("ehlo", f"EHLO {ep.helo_name}")
        if r.code >= 500 and r.code != 554:
            # RFC 5321 §4.1.4 / §3.2: an old server may not know EHLO; fall back to HELO (no extensions).
            r = await self._cmd("ehlo", f"HELO {ep.helo_name}")
            if r.code != 250:
                raise self._fail("ehlo", raw=r)
            self.ext = {}
            self.ehlo = ()
            return
        if r.code != 250:
            raise self._fail("ehlo", raw=r)
        lines = tuple(line[4:] for line in r.lines[1:])
        ext: dict[str, str] = {}
        for text in lines:
            key, _, rest = text.partition(" ")
            key = key.upper()
            if key.startswith("AUTH="):  # pre-RFC 4954 form some servers still send
                rest = key[5:] + " " + rest
                key = "AUTH"
                if "AUTH" in ext:
                    rest = ext["AUTH"] + " " + rest
            ext[key] = rest.strip()
        self.ext = ext
        self.ehlo = lines

    async def _auth(self) -> str:
        """RFC 4954 AUTH: PLAIN preferred (one round trip, RFC 4616), LOGIN fallback, CRAM-MD5 (RFC 2195)."""
        ep = self.endpoint
        user = ep.username or ""
        password = ep.password or ""
        offered = set(self.ext.get("AUTH", "").upper().split())
        if "PLAIN" in offered:
            token = base64.b64encode(f"\0{user}\0{password}".encode()).decode("ascii")
            r = await self._cmd("auth", f"AUTH PLAIN {token}", shown=f"AUTH PLAIN {_REDACTED}")
            mech = "PLAIN"
        elif "LOGIN" in offered:
            mech = "LOGIN"
            r = await self._cmd("auth", "AUTH LOGIN")
            if r.code == 334:
                r = await self._cmd("auth", base64.b64encode(user.encode()).decode("ascii"), shown=_REDACTED)
            if r.code == 334:
                r = await self._cmd("auth", base64.b64encode(password.encode()).decode("ascii"), shown=_REDACTED)
        elif "CRAM-MD5" in offered:
            mech = "CRAM-MD5"
            r = await self._cmd("auth", "AUTH CRAM-MD5")
            if r.code == 334:
                challenge = base64.b64decode(r.lines[0][4:].strip() or b"")
                digest = hmac.new(password.encode(), challenge, hashlib.md5).hexdigest()
                answer = base64.b64encode(f"{user} {digest}".encode()).decode("ascii")
                r = await self._cmd("auth", answer, shown=_REDACTED)
        else:
            detail = (
                f"the server offers AUTH {' '.join(sorted(offered))}, none of which Letterhead supports"
                if offered
                else "the server does not offer AUTH on this connection"
                + ("" if self.tls_info else " (many servers offer it only after STARTTLS)")
            )
            raise self._fail("auth", ErrorKind.AUTH_UNSUPPORTED, detail)
        if r.code == 334:
            # A challenge we did not expect: cancel the exchange (RFC 4954 §4) and give up on this connection.
            self._log("C: *")
            raise self._fail("auth", ErrorKind.PROTOCOL, f"unexpected AUTH {mech} challenge")
        if r.code != 235:
            raise self._fail("auth", raw=r)
        return mech

    # -- transactions
    def begin(self, tx: _Tx) -> None:
        """Attach a transaction; the first one on a connection carries the set-up transcript."""
        if self.setup_lines:
            tx.lines[:0] = self.setup_lines
        self.setup_lines = None
        tx.stage = "mail_from"

    def _group(self, tx: _Tx) -> list[str] | SendResult:
        env = tx.env
        ext = self.ext
        addrs = (env.mail_from, *env.rcpt_to)
        for a in addrs:
            if "\r" in a or "\n" in a or "<" in a or ">" in a:
                return self._local_failure(tx, f"invalid address {a!r}")
        params = ""
        if "SIZE" in ext:
            params += f" SIZE={len(env.data)}"  # RFC 1870: lets the server refuse a too-big message early
        if "8BITMIME" in ext and not env.data.isascii():
            params += " BODY=8BITMIME"  # RFC 6152
        if not all(a.isascii() for a in addrs):
            if "SMTPUTF8" not in ext:
                return self._local_failure(tx, "internationalised address, but the server lacks SMTPUTF8")
            params += " SMTPUTF8"  # RFC 6531
        cmds = [f"MAIL FROM:<{env.mail_from}>{params}"]
        cmds += [f"RCPT TO:<{r}>" for r in env.rcpt_to]
        cmds.append("DATA")
        return cmds

    def _local_failure(self, tx: _Tx, detail: str) -> SendResult:
        return self.result(tx, Outcome.PERMANENT, None, "mail_from", ErrorKind.PROTOCOL, detail)

    def group_bytes(self, tx: _Tx) -> bytes | None:
        """The pipelined command group of ``tx`` (with a pending RSET in front); None if tx failed locally."""
        cmds = self._group(tx)
        if isinstance(cmds, SendResult):
            tx.result = cmds
            return None
        tx.rset = self.needs_rset
        if self.needs_rset:
            cmds.insert(0, "RSET")
            self.needs_rset = False
        tx.lines.extend(["C: " + c for c in cmds])
        return ("\r\n".join(cmds) + "\r\n").encode("utf-8")

    def result(
        self,
        tx: _Tx,
        outcome: Outcome,
        reply: Reply | None,
        stage: str,
        error: str | None = None,
        detail: str | None = None,
    ) -> SendResult:
        res = SendResult(
            outcome=outcome,
            reply=reply,
            stage=stage,
            error=error,
            error_detail=detail,
            transcript="\n".join(tx.lines),
            duration_ms=_ms(tx.t0),
            accepted=tuple(tx.accepted),
            rejected=tx.rejected,
            greeting=self.greeting,
            ehlo=self.ehlo,
        )
        tx.result = res
        return res

    def _conn_failed(self, tx: _Tx, e: _ConnError) -> SendResult:
        self.close()
        tx.lines.append(f"* {e.detail}")
        return self.result(tx, _outcome_of(None, e.kind), None, tx.stage, e.kind, e.detail)

    def _reply_failed(self, tx: _Tx, raw: _Raw, stage: str) -> SendResult:
        reply = raw.reply()
        if raw.code == 421:
            # RFC 5321 §3.8: 421 means the server is closing the channel.
            self.close()
        return self.result(tx, _outcome_of(reply, None), reply, stage)

    async def envelope(self, tx: _Tx, *, written: bool) -> bool:
        """Run MAIL/RCPT/DATA. True when DATA got 354 and the body must follow; else ``tx.result`` is set.

        ``written``: the pipelined group was already sent (with the previous body, or by the caller).
        Raises _Stale when a reused connection died before this message got any answer.
        """
        self.tx_count += 1
        reused = self.tx_count > 1
        if self.pipelining:
            if not written:
                data = self.group_bytes(tx)
                if data is None:
                    return False
                try:
                    await self.proto.write(data, self.endpoint.timeout)
                except _ConnError as e:
                    if reused and not tx.retried:
                        self.close()
                        raise _Stale from None
                    self._conn_failed(tx, e)
                    return False
            return await self._envelope_pipelined(tx, reused)
        return await self._envelope_lockstep(tx, reused)

    async def _first(self, tx: _Tx, reused: bool) -> _Raw:
        """Read the first reply of a transaction, detecting a connection the server closed while idle."""
        try:
            r = await self.proto.read(self.endpoint.timeout)
        except _ConnError as e:
            if reused and not tx.retried and e.kind in (ErrorKind.DROPPED, ErrorKind.PROTOCOL):
                self.close()
                raise _Stale from None
            raise
        if r.code == 421 and reused and not tx.retried:
            tx.lines.append(r.transcript())
            self.close()
            raise _Stale
        return r

    async def _envelope_pipelined(self, tx: _Tx, reused: bool) -> bool:
        read = self.proto.read
        t = self.endpoint.timeout
        lines = tx.lines
        env = tx.env
        try:
            r = await self._first(tx, reused)
            lines.append(r.transcript())
            if tx.rset:
                if r.code != 250:
                    # RSET refused: the session is not what we think it is.
                    self.close()
                    if reused and not tx.retried:
                        raise _Stale
                    self._reply_failed(tx, r, "mail_from")
                    return False
                r = await read(t)
                lines.append(r.transcript())
            tx.stage = "mail_from"
            mail = r
            if mail.code == 421:
                self._reply_failed(tx, mail, "mail_from")
                return False
            tx.stage = "rcpt_to"
            first_rejection: _Raw | None = None
            for addr in env.rcpt_to:
                r = await read(t)
                lines.append(r.transcript())
                if r.code < 300:
                    tx.accepted.append(addr)
                else:
                    if r.code == 421:
                        self._reply_failed(tx, r, "rcpt_to")
                        return False
                    tx.rejected[addr] = r.reply()
                    if first_rejection is None:
                        first_rejection = r
            tx.stage = "data"
            r = await read(t)
            lines.append(r.transcript())
        except _ConnError as e:
            self._conn_failed(tx, e)
            return False
        return await self._after_data_cmd(tx, mail, first_rejection, r)

    async def _after_data_cmd(self, tx: _Tx, mail: _Raw, first_rejection: _Raw | None, r: _Raw) -> bool:
        if r.code == 354:
            if mail.code >= 300 or not tx.accepted:
                # A server that says 354 with nothing to deliver: end the empty message (RFC 2920 §3.1)
                # and do not trust this session any further.
                try:
                    await self.proto.write(b".\r\n", self.endpoint.timeout)
                    tx.lines.append("C: .")
                    tx.lines.append((await self.proto.read(self.endpoint.timeout)).transcript())
                except _ConnError:
                    pass
                self.close()
            else:
                return True
        else:
            self.needs_rset = True
            if r.code == 421:
                self.close()
        if mail.code >= 300:
            # The RCPT answers after a refused MAIL are only "503 need MAIL": not about the recipients.
            tx.accepted = []
            tx.rejected = {}
            self._reply_failed(tx, mail, "mail_from")
        elif not tx.accepted:
            assert first_rejection is not None
            self._reply_failed(tx, first_rejection, "rcpt_to")
        else:
            self._reply_failed(tx, r, "data")
        return False

    async def _envelope_lockstep(self, tx: _Tx, reused: bool) -> bool:
        """One command, one reply: for servers without PIPELINING (and for the step-by-step probe)."""
        cmds = self._group(tx)
        if isinstance(cmds, SendResult):
            return False
        p = self.proto
        t = self.endpoint.timeout
        lines = tx.lines
        trace = self.trace
        try:
            first = True
            if self.needs_rset:
                self.needs_rset = False
                lines.append("C: RSET")
                try:
                    await p.write(b"RSET\r\n", t)
                except _ConnError:
                    if reused and not tx.retried:
                        self.close()
                        raise _Stale from None
                    raise
                r = await self._first(tx, reused)
                first = False
                lines.append(r.transcript())
                if r.code != 250:
                    self.close()
                    if reused and not tx.retried:
                        raise _Stale
                    self._reply_failed(tx, r, "mail_from")
                    return False
            t0 = time.perf_counter()
            tx.stage = "mail_from"
            lines.append("C: " + cmds[0])
            try:
                await p.write(cmds[0].encode("utf-8") + b"\r\n", t)
            except _ConnError:
                if first and reused and not tx.retried:
                    self.close()
                    raise _Stale from None
                raise
            mail = await (self._first(tx, reused) if first else p.read(t))
            lines.append(mail.transcript())
            if mail.code >= 300:
                if mail.code != 421:
                    self.needs_rset = True
                self._reply_failed(tx, mail, "mail_from")
                return False
            if trace:
                trace("mail_from", True, _ms(t0), mail.lines[-1])
            t0 = time.perf_counter()
            tx.stage = "rcpt_to"
            first_rejection: _Raw | None = None
            for addr, cmd in zip(tx.env.rcpt_to, cmds[1:-1], strict=True):
                lines.append("C: " + cmd)
                await p.write(cmd.encode("utf-8") + b"\r\n", t)
                r = await p.read(t)
                lines.append(r.transcript())
                if r.code < 300:
                    tx.accepted.append(addr)
                elif r.code == 421:
                    self._reply_failed(tx, r, "rcpt_to")
                    return False
                else:
                    tx.rejected[addr] = r.reply()
                    first_rejection = first_rejection or r
            if not tx.accepted:
                self.needs_rset = True
                assert first_rejection is not None
                self._reply_failed(tx, first_rejection, "rcpt_to")
                return False
            if trace:
                n = len(tx.accepted)
                detail = f"{n} recipient{'s' if n != 1 else ''} accepted"
                if tx.rejected:
                    detail += f", {len(tx.rejected)} rejected"
                trace("rcpt_to", True, _ms(t0), detail)
            tx.stage = "data"
            lines.append("C: DATA")
            await p.write(b"DATA\r\n", t)
            r = await p.read(t)
            lines.append(r.transcript())
        except _ConnError as e:
            self._conn_failed(tx, e)
            return False
        return await self._after_data_cmd(tx, mail, first_rejection, r)

    async def body(self, tx: _Tx, trailer: bytes = b"") -> None:
        """Send body and "." (plus ``trailer``: the next message's pipelined group); read the verdict."""
        p = self.proto
        t = self.endpoint.timeout
        tx.stage = "data"
        data = tx.env.data
        tx.lines.append(f"C: <message body, {len(data)} bytes>")
        tx.lines.append("C: .")
        try:
            await p.write((data + b".\r\n" if tx.env.canonical and data.endswith(b"\r\n") else _stuff(data))
                          + trailer, t)
            r = await p.read(t)
        except _ConnError as e:
            self._conn_failed(tx, e)
            return
        tx.lines.append(r.transcript())
        if r.code < 300:
            # RFC 5321 §4.1.1.4: the transaction is over whatever the verdict; no RSET needed.
            self.result(tx, Outcome.SENT, r.reply(), "done")
        else:
            self._reply_failed(tx, r, "data")


async def open_connection(
    endpoint: Endpoint,
    *,
    pipelining: bool = True,
    greeting_timeout: float | None = None,
    trace: Trace | None = None,
) -> Connection:
    """Resolve, connect, TLS, greeting, EHLO, STARTTLS, AUTH. Raises :class:`SmtpFailure`."""
    conn = Connection(endpoint, asyncio.get_running_loop(), trace)
    try:
        await conn.setup(pipelining=pipelining, greeting_timeout=greeting_timeout)
    except SmtpFailure:
        raise
    except BaseException:
        conn.close()
        raise
    return conn


# --------------------------------------------------------------------------------------------- pool / client


def _no_recipients() -> SendResult:
    return SendResult(Outcome.PERMANENT, None, "rcpt_to", ErrorKind.PROTOCOL, "no recipients", "", 0.0)


class _Pool:
    def __init__(self, cap: int) -> None:
        self.cap = max(1, cap)
        self.idle: list[Connection] = []
        self.open = 0
        self.generation = 0
        self.waiters: deque[asyncio.Future[None]] = deque()

    def wake(self) -> None:
        while self.waiters:
            w = self.waiters.popleft()
            if not w.done():
                w.set_result(None)
                return


@dataclass
class _BatchState:
    alive: int
    failure: SmtpFailure | None = None


class SmtpClient:
    """Pooled client. One instance per process (worker); thread-unsafe, asyncio only."""

    def __init__(self, *, pipelining: bool = True, max_idle: float = 60.0) -> None:
        self.pipelining = pipelining
        # Servers drop idle sessions (Postfix after 300 s, many providers sooner); do not bet on old ones.
        self.max_idle = max_idle
        self._pools: dict[tuple[object, ...], _Pool] = {}
        self._closed = False

    def _pool(self, endpoint: Endpoint) -> tuple[tuple[object, ...], _Pool]:
        key = endpoint.pool_key()
        pool = self._pools.get(key)
        if pool is None:
            pool = self._pools[key] = _Pool(endpoint.max_connections)
        else:
            pool.cap = max(1, endpoint.max_connections)
        return key, pool

    async def _acquire(self, endpoint: Endpoint, pool: _Pool) -> Connection:
        loop = asyncio.get_running_loop()
        while True:
            now = loop.time()
            while pool.idle:
                conn = pool.idle.pop()  # LIFO: keep few connections warm
                fresh = now - conn.idle_since < self.max_idle
                if conn.usable and conn.generation == pool.generation and fresh:
                    return conn
                pool.open -= 1
                conn.close()
            if pool.open < pool.cap:
                pool.open += 1
                try:
                    conn = await open_connection(endpoint, pipelining=self.pipelining)
                except BaseException:
                    pool.open -= 1
                    pool.wake()
                    raise
                conn.generation = pool.generation
                return conn
            fut: asyncio.Future[None] = loop.create_future()
            pool.waiters.append(fut)
            try:
                await fut
            except BaseException:
                if fut.done() and not fut.cancelled():
                    pool.wake()  # pass the wake-up on
                raise

    def _release(self, pool: _Pool, conn: Connection) -> None:
        if conn.usable and not self._closed and conn.generation == pool.generation:
            conn.idle_since = conn.loop.time()
            pool.idle.append(conn)
        else:
            conn.close()
            pool.open -= 1
        pool.wake()

    @staticmethod
    def _setup_result(f: SmtpFailure, t0: float) -> SendResult:
        return SendResult(
            outcome=f.outcome,
            reply=f.reply,
            stage=f.stage,
            error=f.error,
            error_detail=f.detail,
            transcript="\n".join(f.transcript),
            duration_ms=_ms(t0),
            greeting=f.greeting,
            ehlo=f.ehlo,
        )

    async def send(self, endpoint: Endpoint, envelope: Envelope) -> SendResult:
        t0 = time.perf_counter()
        if not envelope.rcpt_to:
            return _no_recipients()
        _key, pool = self._pool(endpoint)
        tx = _Tx(envelope)
        while True:
            try:
                conn = await self._acquire(endpoint, pool)
            except SmtpFailure as f:
                f.transcript[:0] = tx.lines
                return self._setup_result(f, t0)
            done = False
            try:
                conn.begin(tx)
                if await conn.envelope(tx, written=False):
                    await conn.body(tx)
                done = True
            except _Stale:
                tx.retried = True
                tx.restart("the reused connection had been closed by the server; retrying on a new one")
                continue
            finally:
                if not done:
                    conn.close()
                self._release(pool, conn)
            assert tx.result is not None
            tx.result.duration_ms = _ms(t0)
            return tx.result

    async def send_batch(self, endpoint: Endpoint, envelopes: Sequence[Envelope]) -> list[SendResult]:
        """Send many messages; results in order. Uses up to ``endpoint.max_connections`` connections.

        The first connection is opened alone: if it fails (wrong password, TLS problem, refused), every
        message gets that failure instead of hammering the server with parallel failing logins (Gmail and
        Microsoft lock accounts after repeated failures).
        """
        n = len(envelopes)
        if n == 0:
            return []
        t0 = time.perf_counter()
        _key, pool = self._pool(endpoint)
        txs = [_Tx(env, i) for i, env in enumerate(envelopes)]
        queue: deque[int] = deque()
        for tx in txs:
            if tx.env.rcpt_to:
                queue.append(tx.index)
            else:
                tx.result = _no_recipients()
        if queue:
            try:
                first = await self._acquire(endpoint, pool)
            except SmtpFailure as f:
                res = self._setup_result(f, t0)
                for i in queue:
                    txs[i].result = res if i == queue[0] else SendResult(**{**res.__dict__, "rejected": {}})
                queue.clear()
            else:
                k = min(pool.cap, len(queue))
                state = _BatchState(alive=k)
                workers = [self._worker(endpoint, pool, first, queue, txs, state)]
                workers += [self._worker(endpoint, pool, None, queue, txs, state) for _ in range(k - 1)]
                await asyncio.gather(*workers)
        out: list[SendResult] = []
        for tx in txs:
            assert tx.result is not None
            out.append(tx.result)
        return out

    async def _worker(
        self,
        endpoint: Endpoint,
        pool: _Pool,
        conn: Connection | None,
        queue: deque[int],
        txs: list[_Tx],
        state: _BatchState,
    ) -> None:
        try:
            while queue:
                if conn is None:
                    try:
                        conn = await self._acquire(endpoint, pool)
                    except SmtpFailure as f:
                        state.failure = f
                        return
                if not await self._run_queue(conn, queue, txs):
                    self._release(pool, conn)
                    conn = None
        finally:
            if conn is not None:
                self._release(pool, conn)
            state.alive -= 1
            if state.alive == 0 and queue:
                # Nobody can deliver the rest: they share the last set-up failure.
                last = state.failure or SmtpFailure("connect", error=ErrorKind.DROPPED, detail="no connection")
                for i in queue:
                    txs[i].result = self._setup_result(last, txs[i].t0)
                queue.clear()

    async def _run_queue(self, conn: Connection, queue: deque[int], txs: list[_Tx]) -> bool:
        """Deliver from the shared queue on one connection. False when the connection died."""
        tx: _Tx | None = None  # a transaction whose group is already written
        try:
            while True:
                if tx is None:
                    if not queue:
                        return True
                    tx = txs[queue.popleft()]
                    tx.t0 = time.perf_counter()
                    conn.begin(tx)
                    written = False
                else:
                    written = True
                try:
                    go = await conn.envelope(tx, written=written)
                except _Stale:
                    tx.retried = True
                    tx.restart("the reused connection had been closed by the server; retrying on a new one")
                    queue.appendleft(tx.index)
                    tx = None
                    return False
                if not go:
                    tx = None
                    if not conn.usable:
                        return False
                    continue
                nxt: _Tx | None = None
                trailer = b""
                if conn.pipelining:
                    # RFC 2920 §3.1: the next group may follow the body in the same write.
                    while queue and nxt is None:
                        cand = txs[queue.popleft()]
                        cand.t0 = time.perf_counter()
                        conn.begin(cand)
                        data = conn.group_bytes(cand)
                        if data is None:
                            continue  # a local failure (bad address): result already set
                        nxt, trailer = cand, data
                await conn.body(tx, trailer)
                tx = nxt
                if not conn.usable:
                    if tx is not None:
                        tx.restart("the connection failed before this message was answered; retrying")
                        queue.appendleft(tx.index)
                        tx = None
                    return False
        except BaseException:
            conn.close()
            if tx is not None and tx.result is None:
                queue.appendleft(tx.index)
            raise

    async def close_endpoint(self, endpoint: Endpoint) -> None:
        """Close this endpoint's idle connections; busy ones close when released (e.g. new password)."""
        pool = self._pools.get(endpoint.pool_key())
        if pool is None:
            return
        pool.generation += 1
        idle, pool.idle = pool.idle, []
        pool.open -= len(idle)
        await asyncio.gather(*(c.quit() for c in idle))

    async def aclose(self) -> None:
        """QUIT and close every idle connection; busy ones close when released."""
        self._closed = True
        conns: list[Connection] = []
        for pool in self._pools.values():
            conns += pool.idle
            pool.open -= len(pool.idle)
            pool.idle = []
            pool.generation += 1
        await asyncio.gather(*(c.quit() for c in conns))
