"""The SMTP client against real servers on 127.0.0.1 (aiosmtpd, and raw listeners for misbehaviour)."""

from __future__ import annotations

import base64
import socket
import ssl
from collections.abc import Callable

import pytest
import trustme

from letterhead.smtp.client import Endpoint, Envelope, Outcome, Security, SendResult, SmtpClient
from letterhead.smtp.reply import ErrorKind
from tests.support.smtpd import *  # noqa: F403  (the fixtures, until the root conftest loads the plugin)
from tests.support.smtpd import GMAIL_BAD_CREDENTIALS, RawServer, SmtpServer, run

USER, PASSWORD = "shop@acme.example", "s3cret-Pässword!"
BODY = b"From: shop@acme.example\r\nTo: a@b.example\r\nSubject: Test\r\n\r\nHello\r\n"

Factory = Callable[..., SmtpServer]
RawFactory = Callable[..., RawServer]


def env(*rcpts: str, data: bytes = BODY) -> Envelope:
    return Envelope("shop@acme.example", rcpts or ("a@b.example",), data)


def send(endpoint: Endpoint, envelope: Envelope | None = None, **client_kw: bool) -> SendResult:
    async def go() -> SendResult:
        client = SmtpClient(**client_kw)
        try:
            return await client.send(endpoint, envelope or env())
        finally:
            await client.aclose()

    result: SendResult = run(go())
    return result


def assert_no_secret(transcript: str) -> None:
    assert PASSWORD not in transcript
    assert base64.b64encode(PASSWORD.encode()).decode() not in transcript
    assert base64.b64encode(f"\0{USER}\0{PASSWORD}".encode()).decode() not in transcript
    assert base64.b64encode(USER.encode()).decode() not in transcript


# ------------------------------------------------------------------------------------------- success paths


def test_plain_send_records_everything(smtp_server: SmtpServer) -> None:
    r = send(smtp_server.endpoint())
    assert r.outcome is Outcome.SENT
    assert r.stage == "done"
    assert r.reply is not None and r.reply.code == 250 and r.reply.enhanced == "2.0.0"
    assert r.error is None
    assert r.accepted == ("a@b.example",)
    assert r.greeting and "ESMTP" in r.greeting
    assert "PIPELINING" in r.ehlo
    assert f"C: <message body, {len(BODY)} bytes>" in r.transcript
    assert "Hello" not in r.transcript  # never the body
    assert [m.data for m in smtp_server.messages] == [BODY]


def test_starttls_with_auth_plain(trusted_ca: object, smtpd_factory: Factory, server_tls_context: object) -> None:
    server = smtpd_factory(
        security="starttls", ssl_context=server_tls_context, require_starttls=True, auth={USER: PASSWORD}
    )
    r = send(server.endpoint(username=USER, password=PASSWORD))
    assert r.outcome is Outcome.SENT, r.transcript
    assert "C: STARTTLS" in r.transcript
    assert "C: AUTH PLAIN ********" in r.transcript
    assert_no_secret(r.transcript)
    assert server.auth_attempts == [("PLAIN", USER)]
    assert len(server.messages) == 1


def test_implicit_tls_with_auth_login(trusted_ca: object, smtpd_factory: Factory, server_tls_context: object) -> None:
    server = smtpd_factory(
        security="ssl", ssl_context=server_tls_context, auth={USER: PASSWORD}, auth_mechanisms=("LOGIN",)
    )
    r = send(server.endpoint(username=USER, password=PASSWORD))
    assert r.outcome is Outcome.SENT, r.transcript
    assert "C: AUTH LOGIN" in r.transcript
    assert r.transcript.count("C: ********") == 2
    assert_no_secret(r.transcript)
    assert "TLSv1" in r.transcript
    assert server.auth_attempts == [("LOGIN", USER)]


def test_none_with_auth(smtpd_factory: Factory) -> None:
    server = smtpd_factory(auth={USER: PASSWORD})
    r = send(server.endpoint(username=USER, password=PASSWORD))
    assert r.outcome is Outcome.SENT
    assert_no_secret(r.transcript)


def test_verify_tls_false_is_an_explicit_choice(
    smtpd_factory: Factory, server_tls_context: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)  # the test CA is not trusted here
    server = smtpd_factory(security="ssl", ssl_context=server_tls_context)
    r = send(server.endpoint())
    assert r.outcome is Outcome.PERMANENT
    assert (r.stage, r.error) == ("tls", ErrorKind.TLS_CERTIFICATE)
    assert r.error_detail and "certificate" in r.error_detail
    assert send(server.endpoint(verify_tls=False)).outcome is Outcome.SENT


def test_certificate_for_another_host_is_refused(
    trusted_ca: object, tls_ca: trustme.CA, smtpd_factory: Factory
) -> None:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls_ca.issue_cert("mail.other.example").configure_cert(ctx)  # trusted CA, wrong name
    server = smtpd_factory(security="starttls", ssl_context=ctx)
    r = send(server.endpoint())
    assert r.outcome is Outcome.PERMANENT
    assert (r.stage, r.error) == ("tls", ErrorKind.TLS_CERTIFICATE)
    assert r.error_detail and "mismatch" in r.error_detail.lower()


# ------------------------------------------------------------------------------------------- pipelining


def _single_write_groups(server: SmtpServer) -> list[bytes]:
    return [c for c in server.chunks if b"MAIL FROM" in c and b"RCPT TO" in c and b"DATA\r\n" in c]


def test_pipelining_sends_the_envelope_in_one_write(smtp_server: SmtpServer) -> None:
    r = send(smtp_server.endpoint(), env("a@b.example", "c@d.example"))
    assert r.outcome is Outcome.SENT
    assert len(_single_write_groups(smtp_server)) == 1


def test_pipelining_across_messages(smtp_server: SmtpServer) -> None:
    async def go() -> list[SendResult]:
        client = SmtpClient()
        ep = smtp_server.endpoint(max_connections=1)
        try:
            return await client.send_batch(ep, [env(data=BODY + b"n%d\r\n" % i) for i in range(20)])
        finally:
            await client.aclose()

    results = run(go())
    assert [r.outcome for r in results] == [Outcome.SENT] * 20
    assert len(smtp_server.messages) == 20
    # The next message's MAIL/RCPT/DATA rode in the same write as the previous body's final ".".
    assert any(b"\r\n.\r\nMAIL FROM:" in c for c in smtp_server.chunks)
    assert sorted(m.data for m in smtp_server.messages) == sorted(BODY + b"n%d\r\n" % i for i in range(20))


@pytest.mark.parametrize("where", ["server", "client"])
def test_without_pipelining_one_command_per_write(smtpd_factory: Factory, where: str) -> None:
    server = smtpd_factory(pipelining=where == "client")

    async def go() -> list[SendResult]:
        client = SmtpClient(pipelining=where == "server")
        try:
            return await client.send_batch(server.endpoint(), [env("a@b.example", "c@d.example")] * 10)
        finally:
            await client.aclose()

    results = run(go())
    assert [r.outcome for r in results] == [Outcome.SENT] * 10
    assert len(server.messages) == 10
    assert _single_write_groups(server) == []
    assert not any(b"MAIL FROM" in c and b"RCPT TO" in c for c in server.chunks)


# ------------------------------------------------------------------------------------------- failures


@pytest.mark.parametrize(
    ("stage", "reply", "outcome", "result_stage"),
    [
        ("mail", "421 4.7.0 Try again later, closing connection.", Outcome.TRANSIENT, "mail_from"),
        (
            "mail",
            "450 4.2.1 The user you are trying to contact is receiving mail too quickly",
            Outcome.TRANSIENT,
            "mail_from",
        ),
        ("mail", "530 5.7.0 Authentication Required", Outcome.PERMANENT, "mail_from"),
        (
            "rcpt",
            "550 5.1.1 The email account that you tried to reach does not exist.",
            Outcome.PERMANENT,
            "rcpt_to",
        ),
        ("rcpt", "452 4.5.3 Too many recipients", Outcome.TRANSIENT, "rcpt_to"),
        ("data", "554 5.7.1 Message rejected", Outcome.PERMANENT, "data"),
        ("data", "451 4.3.0 Mail server temporarily rejected message", Outcome.TRANSIENT, "data"),
        ("greeting", "421 4.3.2 Service not available", Outcome.TRANSIENT, "greeting"),
        ("greeting", "554 5.7.1 No SMTP service here", Outcome.PERMANENT, "greeting"),
    ],
)
@pytest.mark.parametrize("pipelining", [True, False])
def test_reply_classes(
    smtpd_factory: Factory, stage: str, reply: str, outcome: Outcome, result_stage: str, pipelining: bool
) -> None:
    server = smtpd_factory(replies={stage: reply}, pipelining=pipelining)
    r = send(server.endpoint())
    assert r.outcome is outcome
    assert r.stage == result_stage
    assert r.reply is not None and r.reply.code == int(reply[:3])
    assert r.reply.enhanced == reply.split()[1]
    assert r.error is None
    assert server.messages == []


def test_partial_recipient_rejection(smtpd_factory: Factory) -> None:
    server = smtpd_factory(reject_rcpt={"gone@b.example": "550 5.1.1 User unknown"})
    r = send(server.endpoint(), env("a@b.example", "gone@b.example", "c@b.example"))
    assert r.outcome is Outcome.SENT
    assert r.accepted == ("a@b.example", "c@b.example")
    assert list(r.rejected) == ["gone@b.example"]
    assert r.rejected["gone@b.example"].code == 550
    assert server.messages[0].rcpt_tos == ["a@b.example", "c@b.example"]


def test_all_recipients_rejected_then_rset_and_reuse(smtpd_factory: Factory) -> None:
    server = smtpd_factory(reject_rcpt={"gone@b.example": "550 5.1.1 User unknown"})

    async def go() -> list[SendResult]:
        client = SmtpClient()
        ep = server.endpoint(max_connections=1)
        try:
            first = await client.send(ep, env("gone@b.example"))
            second = await client.send(ep, env("a@b.example"))
            return [first, second]
        finally:
            await client.aclose()

    first, second = run(go())
    assert first.outcome is Outcome.PERMANENT and first.stage == "rcpt_to"
    assert first.reply is not None and first.reply.code == 550
    assert second.outcome is Outcome.SENT
    assert server.connections == 1  # the session stayed consistent: RSET, same connection
    assert server.rsets == 1
    assert any(c.startswith(b"RSET\r\nMAIL FROM:") for c in server.chunks)  # RSET pipelined with the next group


def test_batch_results_in_order_with_mixed_outcomes(smtpd_factory: Factory) -> None:
    server = smtpd_factory(reject_rcpt={"gone@b.example": "550 5.1.1 User unknown"})
    envs = [env("gone@b.example" if i % 3 == 0 else f"u{i}@b.example") for i in range(30)]

    async def go() -> list[SendResult]:
        client = SmtpClient()
        try:
            return await client.send_batch(server.endpoint(max_connections=2), envs)
        finally:
            await client.aclose()

    results = run(go())
    for i, r in enumerate(results):
        if i % 3 == 0:
            assert (r.outcome, r.stage) == (Outcome.PERMANENT, "rcpt_to")
        else:
            assert r.outcome is Outcome.SENT and r.accepted == (f"u{i}@b.example",)
    assert len(server.messages) == 20
    assert server.connections <= 2


def test_drop_is_transient(smtpd_factory: Factory) -> None:
    server = smtpd_factory(drop_at="rcpt")
    r = send(server.endpoint())
    assert r.outcome is Outcome.TRANSIENT
    assert (r.stage, r.error) == ("rcpt_to", ErrorKind.DROPPED)


def test_timeout_after_greeting(raw_server_factory: RawFactory) -> None:
    server = raw_server_factory("script", replies=[""])  # MAIL FROM is never answered
    r = send(server.endpoint(timeout=0.5))
    assert r.outcome is Outcome.TRANSIENT
    assert (r.stage, r.error) == ("mail_from", ErrorKind.TIMEOUT)


def test_stall_before_greeting(raw_server_factory: RawFactory) -> None:
    server = raw_server_factory("stall")
    r = send(server.endpoint(timeout=0.5))
    assert r.outcome is Outcome.TRANSIENT
    assert (r.stage, r.error) == ("greeting", ErrorKind.GREETING_TIMEOUT)


def test_refused_is_transient() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    r = send(Endpoint("127.0.0.1", port, Security.NONE, timeout=0.5))
    assert r.outcome is Outcome.TRANSIENT
    assert (r.stage, r.error) == ("connect", ErrorKind.REFUSED)


def test_dns_failure_is_transient() -> None:
    r = send(Endpoint("no-such-host.invalid", 25, Security.NONE, timeout=2.0))
    assert r.outcome is Outcome.TRANSIENT
    assert (r.stage, r.error) == ("resolve", ErrorKind.DNS)


def test_connection_not_reused_after_error(smtpd_factory: Factory) -> None:
    server = smtpd_factory(replies={"mail": "421 4.7.0 Closing"})

    async def go() -> list[SendResult]:
        client = SmtpClient()
        ep = server.endpoint(max_connections=1)
        try:
            first = await client.send(ep, env())
            server.script.replies.clear()
            second = await client.send(ep, env())
            return [first, second]
        finally:
            await client.aclose()

    first, second = run(go())
    assert first.outcome is Outcome.TRANSIENT
    assert second.outcome is Outcome.SENT
    assert server.connections == 2
    assert "* connected to" in second.transcript  # a fresh connection, with its set-up in the transcript


def test_connection_closed_while_idle_is_retried_transparently(raw_server_factory: RawFactory) -> None:
    # Each connection accepts one message, then closes on the next command (like a per-connection limit).
    server = raw_server_factory("script", replies=["250 2.1.0 Ok", "250 2.1.5 Ok", "354 Go", "250 2.0.0 Ok", None])

    async def go() -> list[SendResult]:
        client = SmtpClient()
        ep = server.endpoint(timeout=2.0, max_connections=1)
        try:
            return [await client.send(ep, env()), await client.send(ep, env())]
        finally:
            await client.aclose()

    first, second = run(go())
    assert first.outcome is Outcome.SENT
    assert second.outcome is Outcome.SENT, second.transcript
    assert server.connections == 2
    assert "retrying on a new one" in second.transcript


def test_auth_failure_is_permanent_and_closes(smtpd_factory: Factory) -> None:
    server = smtpd_factory(auth={USER: "another"}, auth_reply=GMAIL_BAD_CREDENTIALS)

    async def go() -> list[SendResult]:
        client = SmtpClient()
        ep = server.endpoint(username=USER, password=PASSWORD)
        try:
            return await client.send_batch(ep, [env()] * 5)
        finally:
            await client.aclose()

    results = run(go())
    assert {(r.outcome, r.stage) for r in results} == {(Outcome.PERMANENT, "auth")}
    r = results[0]
    assert r.reply is not None and (r.reply.code, r.reply.enhanced) == (535, "5.7.8")
    assert "Username and Password not accepted" in r.reply.text
    assert_no_secret(r.transcript)
    assert server.connections == 1  # one failed login for the whole batch, not one per message
    assert server.messages == []


def test_auth_unsupported(smtp_server: SmtpServer) -> None:
    r = send(smtp_server.endpoint(username=USER, password=PASSWORD))
    assert r.outcome is Outcome.PERMANENT
    assert (r.stage, r.error) == ("auth", ErrorKind.AUTH_UNSUPPORTED)


def test_starttls_unsupported(smtp_server: SmtpServer) -> None:
    r = send(smtp_server.endpoint(security=Security.STARTTLS))
    assert r.outcome is Outcome.PERMANENT
    assert (r.stage, r.error) == ("tls", ErrorKind.STARTTLS_UNSUPPORTED)


def test_ssl_against_plain_port(smtp_server: SmtpServer) -> None:
    r = send(smtp_server.endpoint(security=Security.SSL))
    assert r.outcome is Outcome.PERMANENT
    assert (r.stage, r.error) == ("tls", ErrorKind.TLS_WRONG_VERSION)


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_auth_required_without_credentials_fails_at_mail_from(smtpd_factory: Factory) -> None:
    server = smtpd_factory(auth={USER: PASSWORD}, auth_required=True)
    r = send(server.endpoint())
    assert r.outcome is Outcome.PERMANENT
    assert r.stage == "mail_from"
    assert r.reply is not None and r.reply.code == 530


# ------------------------------------------------------------------------------------- pool, guard, data


def test_pool_reuses_few_connections(smtp_server: SmtpServer) -> None:
    async def go() -> tuple[list[SendResult], list[SendResult]]:
        import asyncio

        client = SmtpClient()
        ep = smtp_server.endpoint(max_connections=3)
        try:
            batch = await client.send_batch(ep, [env()] * 150)
            singles = await asyncio.gather(*(client.send(ep, env()) for _ in range(30)))
            return batch, list(singles)
        finally:
            await client.aclose()

    batch, singles = run(go())
    assert all(r.outcome is Outcome.SENT for r in batch + singles)
    assert len(smtp_server.messages) == 180
    assert 1 <= smtp_server.connections <= 3
    assert len({m.peer for m in smtp_server.messages}) <= 3


def test_close_endpoint_forces_a_new_connection(smtp_server: SmtpServer) -> None:
    async def go() -> None:
        client = SmtpClient()
        ep = smtp_server.endpoint()
        try:
            await client.send(ep, env())
            await client.send(ep, env())
            assert smtp_server.connections == 1
            await client.close_endpoint(ep)
            await client.send(ep, env())
            assert smtp_server.connections == 2
        finally:
            await client.aclose()

    run(go())


def test_dot_stuffing_round_trip(smtp_server: SmtpServer) -> None:
    data = b"Subject: dots\r\n\r\n.leading dot\r\n.\r\n..two dots\r\nmiddle . dot\r\n.\r\nlast line without CRLF"
    r = send(smtp_server.endpoint(), env(data=data))
    assert r.outcome is Outcome.SENT
    assert smtp_server.messages[0].data == data + b"\r\n"


def test_bare_line_feeds_are_normalised(smtp_server: SmtpServer) -> None:
    data = b"Subject: lf\n\nline one\n.\nline two\r\n"  # a bare "\n.\n" must not end the message early
    r = send(smtp_server.endpoint(), env(data=data))
    assert r.outcome is Outcome.SENT
    assert smtp_server.messages[0].data == b"Subject: lf\r\n\r\nline one\r\n.\r\nline two\r\n"


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "169.254.169.254", "10.1.2.3", "::1"])
def test_private_address_guard(smtp_server: SmtpServer, host: str) -> None:
    r = send(smtp_server.endpoint(host=host, allow_private=False))
    assert r.outcome is Outcome.PERMANENT
    assert (r.stage, r.error) == ("resolve", ErrorKind.PRIVATE_ADDRESS)
    assert smtp_server.connections == 0


def test_password_never_in_repr_or_pool_key() -> None:
    ep = Endpoint("smtp.example.com", 587, Security.STARTTLS, username=USER, password=PASSWORD)
    assert PASSWORD not in repr(ep)
    assert PASSWORD not in repr(ep.pool_key())
    other = Endpoint("smtp.example.com", 587, Security.STARTTLS, username=USER, password="changed")
    assert ep.pool_key() != other.pool_key()


def test_stored_values_are_pinned() -> None:
    assert [s.value for s in Security] == ["ssl", "starttls", "none"]
    assert [o.value for o in Outcome] == ["sent", "transient", "permanent"]
