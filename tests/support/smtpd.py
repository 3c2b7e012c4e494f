"""Real SMTP servers on 127.0.0.1 for tests: scripted aiosmtpd servers, raw misbehaving listeners, a test CA.

Use as a pytest plugin (``pytest_plugins = ["tests.support.smtpd"]`` in the root conftest) or import directly.

Fixtures
--------
``tls_ca``             session: a ``trustme.CA`` with ``.pem_path`` (str) of its certificate
``server_tls_context`` session: server ``ssl.SSLContext`` with a certificate for localhost / 127.0.0.1
``trusted_ca``         points ``SSL_CERT_FILE`` at the test CA for this test, so clients verify for real
``smtpd_factory``      ``smtpd_factory(**options) -> SmtpServer`` (see :func:`start_smtpd`), stopped after
``smtp_server``        a plain recording server (no TLS, no AUTH, PIPELINING advertised)
``raw_server_factory`` ``raw_server_factory(mode, ...) -> RawServer``: "stall" (never greets), "tls_silent"
                       (TLS handshake, then silence: an implicit-TLS port for the 465 mismatch), "script"
                       (replies from a list, counts reads; see :class:`RawServer`)

Outside pytest: ``with smtpd(security="starttls", ssl_context=ctx, auth={"u": "p"}) as server: ...``.

``SmtpServer`` records ``messages`` (``Received``: mail_from, rcpt_tos, data, peer), ``connections``
(accepted TCP connections), ``chunks`` (raw bytes per read, to observe pipelining), ``auth_attempts``, and
builds a matching client ``Endpoint``: ``server.endpoint(username=..., password=...)``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ssl
import threading
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

from letterhead.smtp.client import Endpoint, Security

__all__ = [
    "RawServer",
    "Received",
    "SmtpServer",
    "raw_server_factory",
    "server_tls_context",
    "smtp_server",
    "smtpd",
    "smtpd_factory",
    "start_raw",
    "start_smtpd",
    "tls_ca",
    "trusted_ca",
]

HOST = "127.0.0.1"

# Real provider wording (../shared/smtp-replies.json) for scripted failures.
GMAIL_BAD_CREDENTIALS = (
    "535 5.7.8 Username and Password not accepted. For more information, go to "
    "https://support.google.com/mail/?p=BadCredentials - gsmtp"
)


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    peer: Any


@dataclass
class _Script:
    """What the recording handler answers. Stages: greeting, ehlo, mail, rcpt, data (end-of-data reply)."""

    pipelining: bool = True
    replies: dict[str, str] = field(default_factory=dict)
    reject_rcpt: dict[str, str] = field(default_factory=dict)
    drop_at: str | None = None  # same stage names (plus "rset"): the server closes the connection there
    auth: dict[str, str] | None = None  # accepted user -> password
    auth_reply: str = "535 5.7.8 Authentication credentials invalid"
    data_delay: float = 0.0  # seconds before the end-of-data reply (keeps connections busy, to overlap them)
    #: A refused AUTH echoes the submitted credentials: the password and the base64 of what PLAIN/LOGIN sent.
    echo_credentials: bool = False


class _Handler:
    def __init__(self, server: SmtpServer) -> None:
        self.server = server
        self.script = server.script

    def _drop(self, stage: str) -> None:
        if self.script.drop_at == stage:
            # aiosmtpd closes the connection when a hook raises ConnectionResetError.
            raise ConnectionResetError(f"scripted drop at {stage}")

    async def handle_EHLO(
        self, server: SMTP, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        self._drop("ehlo")
        if "ehlo" in self.script.replies:
            return [self.script.replies["ehlo"]]
        session.host_name = hostname
        if not self.script.auth and "auth" not in self.script.replies:
            responses = [r for r in responses if not r[4:].upper().startswith("AUTH")]
        if self.script.pipelining:
            responses.insert(1, "250-PIPELINING")  # RFC 2920; aiosmtpd handles pipelined input fine
        return responses

    async def handle_MAIL(self, server: SMTP, session: Any, envelope: Any, address: str, options: list[str]) -> str:
        self._drop("mail")
        reply = self.script.replies.get("mail")
        if reply:
            return reply
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 2.1.0 Ok"

    async def handle_RCPT(self, server: SMTP, session: Any, envelope: Any, address: str, options: list[str]) -> str:
        self._drop("rcpt")
        reply = self.script.reject_rcpt.get(address) or self.script.replies.get("rcpt")
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 Ok"

    async def handle_RSET(self, server: SMTP, session: Any, envelope: Any) -> str:
        self._drop("rset")
        self.server.rsets += 1
        return "250 2.0.0 Ok"

    async def handle_DATA(self, server: SMTP, session: Any, envelope: Any) -> str:
        self._drop("data")
        if self.script.data_delay:
            await asyncio.sleep(self.script.data_delay)
        reply = self.script.replies.get("data")
        if reply:
            return reply
        content = envelope.original_content or b""
        self.server.messages.append(Received(envelope.mail_from, list(envelope.rcpt_tos), bytes(content), session.peer))
        return f"250 2.0.0 Ok: queued as M{len(self.server.messages)}"

    def authenticate(self, server: SMTP, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        login = data.login.decode() if isinstance(data, LoginPassword) else ""
        password = data.password.decode() if isinstance(data, LoginPassword) else ""
        self.server.auth_attempts.append((mechanism, login))
        users = self.script.auth or {}
        if "auth" not in self.script.replies and users.get(login) == password:
            return AuthResult(success=True, auth_data=data)
        if self.script.echo_credentials:
            plain = base64.b64encode(b"\0" + data.login + b"\0" + data.password).decode()
            login_b64 = base64.b64encode(data.password).decode()
            message = f"535 5.7.8 Authentication failed for {login}:{password} (PLAIN {plain}, LOGIN {login_b64})"
            return AuthResult(success=False, handled=False, message=message)
        return AuthResult(
            success=False, handled=False, message=self.script.replies.get("auth") or self.script.auth_reply
        )


class _RecordingSMTP(SMTP):
    """aiosmtpd's SMTP plus: scripted greeting, per-read chunk capture."""

    owner: SmtpServer

    def connection_made(self, transport: Any) -> None:
        # Called again with the TLS transport after STARTTLS: one connection is counted once.
        if not getattr(self, "_counted", False):
            self._counted = True
            self.owner.open_now += 1
            self.owner.max_open = max(self.owner.max_open, self.owner.open_now)
        super().connection_made(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if getattr(self, "_counted", False):
            self._counted = False
            self.owner.open_now -= 1
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        self.owner.chunks.append(bytes(data))
        super().data_received(data)

    async def push(self, status: Any) -> None:
        greeting = self.owner.script.replies.get("greeting")
        if greeting and not getattr(self, "_greeted", False):
            self._greeted = True
            await super().push(greeting)
            if not greeting.startswith("220"):
                assert self.transport is not None
                self.transport.close()
            return
        self._greeted = True
        await super().push(status)


class _Controller(Controller):
    """Controller bound to an ephemeral port (port 0), counting connections."""

    def __init__(self, owner: SmtpServer, handler: Any, **kwargs: Any) -> None:
        super().__init__(handler, hostname=HOST, port=0, ready_timeout=5.0, **kwargs)
        self.owner = owner

    def _trigger_server(self) -> None:
        # The listener exists by now (set before the ready event): learn the ephemeral port it got.
        server: Any = self.server
        self.port = server.sockets[0].getsockname()[1]
        super()._trigger_server()  # type: ignore[no-untyped-call]

    def factory(self) -> SMTP:
        smtp = _RecordingSMTP(self.handler, **self.SMTP_kwargs)
        smtp.owner = self.owner
        self.owner.connections += 1
        return smtp


class SmtpServer:
    """A running aiosmtpd server. See :func:`start_smtpd`."""

    def __init__(self, script: _Script, security: Security) -> None:
        self.script = script
        self.security = security
        self.host = HOST
        self.port = 0
        self.messages: list[Received] = []
        self.chunks: list[bytes] = []
        self.connections = 0
        #: Connections open right now, and the most ever open at once (providers cap this per account).
        self.open_now = 0
        self.max_open = 0
        self.rsets = 0
        self.auth_attempts: list[tuple[str, str]] = []
        self._controller: _Controller | None = None

    def endpoint(self, **overrides: Any) -> Endpoint:
        """A client Endpoint for this server (short timeout; override anything)."""
        values: dict[str, Any] = {
            "host": self.host,
            "port": self.port,
            "security": self.security,
            "timeout": 5.0,
        }
        values.update(overrides)
        return Endpoint(**values)

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> SmtpServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_smtpd(
    *,
    security: Security | str = Security.NONE,
    ssl_context: ssl.SSLContext | None = None,
    require_starttls: bool = False,
    auth: dict[str, str] | None = None,
    auth_required: bool = False,
    auth_mechanisms: tuple[str, ...] | None = None,
    auth_reply: str | None = None,
    pipelining: bool = True,
    replies: dict[str, str] | None = None,
    reject_rcpt: dict[str, str] | None = None,
    drop_at: str | None = None,
) -> SmtpServer:
    """Start an aiosmtpd server on 127.0.0.1 (ephemeral port) in a thread.

    security: "none", "starttls" (offers STARTTLS; ``require_starttls`` refuses mail before it) or "ssl"
    (implicit TLS); both TLS modes need ``ssl_context`` (the ``server_tls_context`` fixture).
    auth: accepted users {user: password}; AUTH is offered (PLAIN and LOGIN, or ``auth_mechanisms``) even on
    plain connections; a wrong password gets ``auth_reply`` (default aiosmtpd's 535).
    replies: scripted replies per stage, e.g. {"mail": "421 4.7.0 Try again later", "rcpt": "550 5.1.1 No such
    user", "data": "554 5.7.1 Rejected", "greeting": "554 5.7.1 Go away", "auth": GMAIL_BAD_CREDENTIALS}.
    reject_rcpt: per-address RCPT replies.
    drop_at: close the connection at "ehlo"/"mail"/"rcpt"/"data"/"rset".
    """
    sec = Security(security)
    script = _Script(
        pipelining=pipelining,
        replies=dict(replies or {}),
        reject_rcpt=dict(reject_rcpt or {}),
        drop_at=drop_at,
        auth=auth,
    )
    if auth_reply:
        script.auth_reply = auth_reply
    server = SmtpServer(script, sec)
    handler = _Handler(server)
    kwargs: dict[str, Any] = {
        "server_hostname": "mx.test",
        "ident": "ESMTP letterhead-test",
        "auth_require_tls": False,
        "auth_required": auth_required,
        "authenticator": handler.authenticate,
        "enable_SMTPUTF8": True,
    }
    if auth is None and auth_reply is None and "auth" not in script.replies:
        kwargs["auth_exclude_mechanism"] = ["PLAIN", "LOGIN"]
    elif auth_mechanisms is not None:
        kwargs["auth_exclude_mechanism"] = [m for m in ("PLAIN", "LOGIN") if m not in auth_mechanisms]
    if sec is not Security.NONE and ssl_context is None:
        raise ValueError("TLS servers need ssl_context (the server_tls_context fixture)")
    if sec is Security.SSL:
        kwargs["ssl_context"] = ssl_context
    elif sec is Security.STARTTLS:
        kwargs["tls_context"] = ssl_context
        kwargs["require_starttls"] = require_starttls
    controller = _Controller(server, handler, **kwargs)
    controller.start()
    server._controller = controller
    server.port = controller.port
    server.connections = 0  # forget the controller's own start-up probe connection
    server.max_open = 0
    server.chunks.clear()
    return server


@contextlib.contextmanager
def smtpd(**options: Any) -> Iterator[SmtpServer]:
    server = start_smtpd(**options)
    try:
        yield server
    finally:
        server.stop()


# ----------------------------------------------------------------------------------------------- raw servers


class RawServer:
    """A bare asyncio listener in its own thread, for behaviour aiosmtpd cannot produce.

    mode "stall": accepts TCP and never says anything.
    mode "tls_silent": completes a TLS handshake (``ssl_context``) and then never speaks (a 465 port for a
    client that does not start TLS).
    mode "script": sends ``greeting`` then answers every command line (EHLO with ``ehlo``) with the next entry
    of ``replies`` (a reply string; None closes the connection; "" goes silent), then "250 2.0.0 Ok" once
    the list is used up; the list restarts on each connection. A DATA answered with 354 swallows the body up
    to ".". ``reads`` holds the raw bytes of each read, ``connections`` the number of accepted connections.
    """

    def __init__(
        self,
        mode: str,
        *,
        ssl_context: ssl.SSLContext | None = None,
        greeting: str | None = "220 raw.test ESMTP",
        replies: list[str | None] | None = None,
        ehlo: list[str] | None = None,
    ) -> None:
        self.mode = mode
        self.ssl_context = ssl_context
        self.greeting = greeting
        self.replies = list(replies or [])
        self.ehlo = ehlo or ["250-raw.test", "250-PIPELINING", "250 8BITMIME"]
        self.host = HOST
        self.port = 0
        self.connections = 0
        self.reads: list[bytes] = []
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.AbstractServer | None = None
        self._writers: list[asyncio.StreamWriter] = []

    def start(self) -> RawServer:
        self._thread.start()
        ssl_ctx = self.ssl_context if self.mode == "tls_silent" else None
        fut = asyncio.run_coroutine_threadsafe(asyncio.start_server(self._client, HOST, 0, ssl=ssl_ctx), self._loop)
        self._server = fut.result(5)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def endpoint(self, security: Security | str = Security.NONE, **overrides: Any) -> Endpoint:
        values: dict[str, Any] = {"host": self.host, "port": self.port, "security": Security(security)}
        values["timeout"] = 0.5
        values.update(overrides)
        return Endpoint(**values)

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.append(writer)
        try:
            if self.mode in ("stall", "tls_silent"):
                while await reader.read(65536):
                    pass
                return
            await self._script(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def _script(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.greeting is None:
            return
        writer.write(self.greeting.encode() + b"\r\n")
        replies = iter(self.replies)
        in_data = False
        pending = b""
        while True:
            chunk = await reader.read(65536)
            if not chunk:
                return
            self.reads.append(chunk)
            pending += chunk
            while b"\n" in pending:
                line, _, pending = pending.partition(b"\n")
                if in_data:
                    if line.rstrip(b"\r") == b".":
                        in_data = False
                    else:
                        continue
                    answer: str | None = next(replies, "250 2.0.0 Ok")
                else:
                    verb = line.split(b" ", 1)[0].strip().upper()
                    if verb == b"EHLO":
                        answer = "\r\n".join(self.ehlo)
                    elif verb == b"QUIT":
                        writer.write(b"221 2.0.0 Bye\r\n")
                        return
                    else:
                        answer = next(replies, "250 2.0.0 Ok")
                        if verb == b"DATA" and answer is not None and answer.startswith("354"):
                            in_data = True
                if answer is None:
                    return
                if answer == "":
                    while await reader.read(65536):  # go silent, keep the connection open
                        pass
                    return
                writer.write(answer.encode() + b"\r\n")
            await writer.drain()

    def stop(self) -> None:
        async def _stop() -> None:
            assert self._server is not None
            self._server.close()
            for w in self._writers:
                w.close()

        if self._server is not None:
            asyncio.run_coroutine_threadsafe(_stop(), self._loop).result(5)
            self._server = None
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def __enter__(self) -> RawServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_raw(mode: str, **options: Any) -> RawServer:
    return RawServer(mode, **options).start()


# ----------------------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def tls_ca(tmp_path_factory: pytest.TempPathFactory) -> trustme.CA:
    ca = trustme.CA(organization_name="Letterhead test CA")
    path = tmp_path_factory.mktemp("tls") / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    ca.pem_path = str(path)  # type: ignore[attr-defined]
    return ca


@pytest.fixture(scope="session")
def server_tls_context(tls_ca: trustme.CA) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls_ca.issue_cert("localhost", "127.0.0.1").configure_cert(ctx)
    return ctx


@pytest.fixture
def trusted_ca(tls_ca: trustme.CA, monkeypatch: pytest.MonkeyPatch) -> trustme.CA:
    """Make the default SSL context trust the test CA (verification stays on)."""
    monkeypatch.setenv("SSL_CERT_FILE", tls_ca.pem_path)  # type: ignore[attr-defined]
    return tls_ca


@pytest.fixture
def smtpd_factory() -> Iterator[Callable[..., SmtpServer]]:
    servers: list[SmtpServer] = []

    def start(**options: Any) -> SmtpServer:
        server = start_smtpd(**options)
        servers.append(server)
        return server

    yield start
    for s in servers:
        s.stop()


@pytest.fixture
def smtp_server(smtpd_factory: Callable[..., SmtpServer]) -> SmtpServer:
    return smtpd_factory()


@pytest.fixture
def raw_server_factory() -> Iterator[Callable[..., RawServer]]:
    servers: list[RawServer] = []

    def start(mode: str, **options: Any) -> RawServer:
        server = start_raw(mode, **options)
        servers.append(server)
        return server

    yield start
    for s in servers:
        s.stop()


def run(coro: Awaitable[Any]) -> Any:
    """Run a coroutine to completion in a fresh event loop (tests are plain functions)."""

    async def main() -> Any:
        return await coro

    return asyncio.run(main())
