"""The step-by-step test ("Send test email") against real servers on 127.0.0.1."""

from __future__ import annotations

import socket
from collections.abc import Callable

from letterhead.smtp.client import Endpoint, Envelope, Security
from letterhead.smtp.probe import STEPS, ProbeResult, probe
from letterhead.smtp.reply import ErrorKind
from tests.support.smtpd import *  # noqa: F403  (the fixtures, until the root conftest loads the plugin)
from tests.support.smtpd import GMAIL_BAD_CREDENTIALS, RawServer, SmtpServer, run

USER, PASSWORD = "shop@acme.example", "app-password-123"
ENVELOPE = Envelope(
    "shop@acme.example",
    ("owner@acme.example",),
    b"From: shop@acme.example\r\nTo: owner@acme.example\r\nSubject: Letterhead test\r\n\r\nIt works.\r\n",
)

Factory = Callable[..., SmtpServer]
RawFactory = Callable[..., RawServer]


def run_probe(endpoint: Endpoint, envelope: Envelope = ENVELOPE, greeting_timeout: float = 0.5) -> ProbeResult:
    result: ProbeResult = run(probe(endpoint, envelope, greeting_timeout=greeting_timeout))
    return result


def names(result: ProbeResult) -> list[str]:
    return [s.name for s in result.steps]


def test_all_steps_pass_and_the_message_is_sent(smtp_server: SmtpServer) -> None:
    r = run_probe(smtp_server.endpoint())
    assert r.ok, r.steps
    assert names(r) == list(STEPS)
    assert all(s.ok for s in r.steps)
    steps = {s.name: s for s in r.steps}
    assert steps["resolve"].detail.startswith("resolved 127.0.0.1 to 127.0.0.1")
    assert "greeting: 220" in steps["connect"].detail
    assert steps["tls"].detail == "not used (security: none)"
    assert steps["auth"].detail == "no credentials"
    assert steps["data"].detail.startswith("250 2.0.0 Ok")
    assert (r.stage, r.error, r.tls_hint) == (None, None, None)
    assert r.reply is not None and r.reply.code == 250
    assert r.greeting and "PIPELINING" in r.ehlo
    assert len(smtp_server.messages) == 1
    # Step by step: the probe never pipelines, so each command is its own write.
    assert not any(b"MAIL FROM" in c and b"RCPT TO" in c for c in smtp_server.chunks)


def test_starttls_and_auth(trusted_ca: object, smtpd_factory: Factory, server_tls_context: object) -> None:
    server = smtpd_factory(
        security="starttls", ssl_context=server_tls_context, require_starttls=True, auth={USER: PASSWORD}
    )
    r = run_probe(server.endpoint(username=USER, password=PASSWORD))
    assert r.ok, r.steps
    assert names(r) == list(STEPS)
    steps = {s.name: s for s in r.steps}
    assert steps["tls"].detail.startswith("STARTTLS, TLSv1.")
    assert "certificate valid for localhost" in steps["tls"].detail
    assert steps["auth"].detail == f"authenticated as {USER} (PLAIN)"
    assert PASSWORD not in r.transcript and "AUTH PLAIN ********" in r.transcript


def test_implicit_tls(trusted_ca: object, smtpd_factory: Factory, server_tls_context: object) -> None:
    server = smtpd_factory(security="ssl", ssl_context=server_tls_context, auth={USER: PASSWORD})
    r = run_probe(server.endpoint(username=USER, password=PASSWORD))
    assert r.ok, r.steps
    assert names(r) == list(STEPS)
    assert "greeting: 220" in r.steps[2].detail


def test_ssl_on_a_plain_port(smtp_server: SmtpServer) -> None:
    """587/25 with security=ssl: our handshake is answered in plain text."""
    r = run_probe(smtp_server.endpoint(security=Security.SSL))
    assert not r.ok
    assert (r.stage, r.error, r.tls_hint) == ("tls", ErrorKind.TLS_WRONG_VERSION, "plain_port")
    assert names(r) == ["resolve", "connect", "tls"]
    assert [s.ok for s in r.steps] == [True, True, False]
    assert "220" in r.steps[-1].detail  # the plain greeting is shown as evidence


def test_starttls_on_an_implicit_tls_port(
    trusted_ca: object, smtpd_factory: Factory, server_tls_context: object
) -> None:
    """465 with security=starttls: no greeting, but the port completes a TLS handshake."""
    server = smtpd_factory(security="ssl", ssl_context=server_tls_context)
    r = run_probe(server.endpoint(security=Security.STARTTLS))
    assert not r.ok
    assert (r.stage, r.error, r.tls_hint) == ("connect", ErrorKind.GREETING_TIMEOUT, "implicit_tls_port")
    assert names(r) == ["resolve", "connect"]
    assert "implicit TLS" in r.steps[-1].detail


def test_none_on_an_implicit_tls_port_with_an_untrusted_certificate(
    raw_server_factory: RawFactory, server_tls_context: object
) -> None:
    # The certificate is not trusted here (no trusted_ca): irrelevant for recognising the port.
    server = raw_server_factory("tls_silent", ssl_context=server_tls_context)
    r = run_probe(server.endpoint(security=Security.NONE))
    assert (r.stage, r.error, r.tls_hint) == ("connect", ErrorKind.GREETING_TIMEOUT, "implicit_tls_port")


def test_silent_server_is_not_called_a_tls_port(raw_server_factory: RawFactory) -> None:
    server = raw_server_factory("stall")
    r = run_probe(server.endpoint(security=Security.STARTTLS))
    assert (r.stage, r.error, r.tls_hint) == ("connect", ErrorKind.GREETING_TIMEOUT, None)


def test_starttls_not_offered(smtp_server: SmtpServer) -> None:
    r = run_probe(smtp_server.endpoint(security=Security.STARTTLS))
    assert (r.stage, r.error) == ("tls", ErrorKind.STARTTLS_UNSUPPORTED)
    assert names(r) == ["resolve", "connect", "tls"]


def test_auth_failure_stage(smtpd_factory: Factory) -> None:
    server = smtpd_factory(auth={USER: "other"}, auth_reply=GMAIL_BAD_CREDENTIALS)
    r = run_probe(server.endpoint(username=USER, password=PASSWORD))
    assert not r.ok
    assert (r.stage, r.error) == ("auth", None)
    assert r.reply is not None and (r.reply.code, r.reply.enhanced) == (535, "5.7.8")
    assert names(r) == ["resolve", "connect", "tls", "ehlo", "auth"]
    assert r.steps[-1].detail.startswith("535 5.7.8 Username and Password not accepted")
    assert PASSWORD not in r.transcript
    assert server.messages == []


def test_recipient_rejected(smtpd_factory: Factory) -> None:
    server = smtpd_factory(reject_rcpt={"owner@acme.example": "550 5.1.1 User unknown"})
    r = run_probe(server.endpoint())
    assert (r.stage, r.ok) == ("rcpt_to", False)
    assert names(r) == ["resolve", "connect", "tls", "ehlo", "auth", "mail_from", "rcpt_to"]
    assert r.steps[-1].detail == "owner@acme.example: 550 5.1.1 User unknown"


def test_data_rejected(smtpd_factory: Factory) -> None:
    server = smtpd_factory(replies={"data": "554 5.7.1 Message rejected as spam"})
    r = run_probe(server.endpoint())
    assert (r.stage, r.ok) == ("data", False)
    assert names(r) == list(STEPS)
    assert r.steps[-1].detail == "554 5.7.1 Message rejected as spam"


def test_private_address_is_refused_before_connecting(smtp_server: SmtpServer) -> None:
    r = run_probe(smtp_server.endpoint(allow_private=False))
    assert (r.stage, r.error) == ("resolve", ErrorKind.PRIVATE_ADDRESS)
    assert names(r) == ["resolve"]
    assert smtp_server.connections == 0


def test_refused() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    r = run_probe(Endpoint("127.0.0.1", port, Security.STARTTLS, timeout=0.5))
    assert (r.stage, r.error) == ("connect", ErrorKind.REFUSED)
    assert names(r) == ["resolve", "connect"]


def test_unknown_host() -> None:
    r = run_probe(Endpoint("no-such-host.invalid", 587, Security.STARTTLS, timeout=2.0))
    assert (r.stage, r.error) == ("resolve", ErrorKind.DNS)
    assert names(r) == ["resolve"]
