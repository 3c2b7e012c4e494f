"""Custom SMTP through the API against real aiosmtpd servers: test → proof → save, diagnosis, live sending,
failing configurations, quotas. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import ssl
import subprocess
import sys
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from letterhead.context import Context
from letterhead.delivery import route_leases
from letterhead.delivery import worker as worker_module
from letterhead.delivery.worker import Worker
from letterhead.devinbox import DevInbox
from letterhead.models import Attempt, Message, RouteLease, SmtpConfig, utcnow
from letterhead.tenants import create_api_key, create_tenant
from tests.conftest import auth, deliver
from tests.support.smtpd import GMAIL_BAD_CREDENTIALS, SmtpServer

PASSWORD = "abcd efgh ijkl mnop"


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"smtp_timeout_seconds": 2.0}


def fields(server: SmtpServer, **over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "preset": "custom",
        "host": "127.0.0.1",
        "port": server.port,
        "security": server.security.value,
        "username": "shop@example.jp",
        "password": PASSWORD,
        "from_email": "shop@example.jp",
        "from_name": "山田商店",
    }
    body.update(over)
    return body


def smtp_test(client: TestClient, key: str, body: dict[str, Any], to: str = "owner@example.jp") -> dict[str, Any]:
    r = client.post("/v1/tenants/acme/smtp/test", json=body | {"to": to}, headers=auth(key))
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


def save(client: TestClient, key: str, body: dict[str, Any], proof: str | None) -> Any:
    return client.put("/v1/tenants/acme/smtp", json=body | {"proof": proof}, headers=auth(key))


@pytest.fixture
def starttls_server(
    smtpd_factory: Callable[..., SmtpServer], server_tls_context: ssl.SSLContext, trusted_ca: Any
) -> SmtpServer:
    return smtpd_factory(
        security="starttls", ssl_context=server_tls_context, require_starttls=True,
        auth={"shop@example.jp": PASSWORD}, auth_required=True,
    )


def test_presets_are_listed(app_client: TestClient, acme_key: str) -> None:
    presets = app_client.get("/v1/smtp/presets", headers=auth(acme_key)).json()["presets"]
    ids = [p["id"] for p in presets]
    assert ids == ["gmail", "google_workspace", "microsoft365", "outlook_com", "zoho", "yahoo", "icloud",
                   "amazon_ses", "sendgrid", "mailgun", "brevo", "custom"]
    gmail = presets[0]
    assert gmail["host"] == "smtp.gmail.com"
    assert any("apppasswords" in s for s in gmail["steps"]["en"])
    assert gmail["steps"]["ja"]


def test_save_requires_a_passing_test_with_exactly_these_values(
    ctx: Context, app_client: TestClient, acme_key: str, starttls_server: SmtpServer
) -> None:
    body = fields(starttls_server)
    assert save(app_client, acme_key, body, None).status_code == 409
    result = smtp_test(app_client, acme_key, body)
    assert result["ok"] is True, result
    assert [s["name"] for s in result["steps"]] == [
        "resolve", "connect", "tls", "ehlo", "auth", "mail_from", "rcpt_to", "data"
    ]
    assert all(s["ok"] for s in result["steps"])
    assert result["proof"] and result["category"] is None
    [received] = starttls_server.messages
    assert received.rcpt_tos == ["owner@example.jp"]

    # The proof binds every delivery field, the password included.
    for changed in ({"port": starttls_server.port + 1}, {"password": "other"}, {"from_email": "x@example.jp"}):
        r = save(app_client, acme_key, body | changed, result["proof"])
        assert r.status_code == 409, changed
        assert "test email" in r.json()["detail"]
    assert save(app_client, acme_key, body, "forged.proof").status_code == 409

    r = save(app_client, acme_key, body, result["proof"])
    assert r.status_code == 200, r.text
    saved = r.json()
    assert saved["has_password"] is True and saved["status"] == "active"
    assert PASSWORD not in r.text and "password" not in saved
    got = app_client.get("/v1/tenants/acme/smtp", headers=auth(acme_key))
    assert PASSWORD not in got.text
    with ctx.db.session() as s:
        cfg = s.scalar(select(SmtpConfig))
        assert cfg is not None and cfg.password_enc and PASSWORD not in cfg.password_enc

    # The test email is in the log, with its attempt and a transcript without the credentials.
    log = app_client.get("/v1/tenants/acme/messages", params={"kind": "test"}, headers=auth(acme_key)).json()
    [test_msg] = log["messages"]
    assert test_msg["id"] == result["message_id"] and test_msg["status"] == "sent"
    detail = app_client.get(f"/v1/tenants/acme/messages/{test_msg['id']}", headers=auth(acme_key)).json()
    transcript = detail["attempts"][0]["transcript"]
    assert "AUTH" in transcript and "STARTTLS" in transcript
    assert PASSWORD not in transcript
    import base64

    assert base64.b64encode(f"\0shop@example.jp\0{PASSWORD}".encode()).decode() not in transcript


def test_empty_password_keeps_the_stored_one_but_still_needs_a_test(
    app_client: TestClient, acme_key: str, starttls_server: SmtpServer
) -> None:
    body = fields(starttls_server)
    save(app_client, acme_key, body, smtp_test(app_client, acme_key, body)["proof"])
    blank = body | {"password": "", "from_name": "山田商店 本店"}
    assert save(app_client, acme_key, blank, None).status_code == 409
    retest = smtp_test(app_client, acme_key, blank)
    assert retest["ok"], retest  # the stored password was used
    r = save(app_client, acme_key, blank, retest["proof"])
    assert r.status_code == 200 and r.json()["has_password"] and r.json()["from_name"] == "山田商店 本店"
    # A different username does not inherit the stored password.
    other = smtp_test(app_client, acme_key, body | {"password": "", "username": "other@example.jp"})
    assert not other["ok"]


def test_gmail_bad_credentials_are_explained(
    app_client: TestClient, acme_key: str, smtpd_factory: Callable[..., SmtpServer]
) -> None:
    server = smtpd_factory(auth={"someone": "else"}, auth_reply=GMAIL_BAD_CREDENTIALS)
    result = smtp_test(app_client, acme_key, fields(server, preset="gmail"))
    assert result["ok"] is False and result["proof"] is None
    assert result["category"] == "auth_failed"
    assert result["steps"][-1]["name"] == "auth" and not result["steps"][-1]["ok"]
    assert result["reply"]["code"] == 535 and result["reply"]["enhanced"] == "5.7.8"
    assert "apppasswords" in result["remedy"]["en"] and "アプリ パスワード" in result["remedy"]["ja"]
    assert "Gmail" in result["remedy"]["en"]
    failed = app_client.get("/v1/tenants/acme/messages", params={"status": "failed"}, headers=auth(acme_key))
    assert failed.json()["messages"][0]["category"] == "auth_failed"


def test_ssl_on_a_plain_port_is_recognised(app_client: TestClient, acme_key: str, smtp_server: SmtpServer) -> None:
    result = smtp_test(app_client, acme_key, fields(smtp_server, security="ssl", username=None, password=None))
    assert result["ok"] is False
    assert result["category"] == "tls_mismatch"
    assert result["suggested"] and result["suggested"].get("security") in ("starttls", "none")


def test_plain_client_on_an_implicit_tls_port_is_recognised(
    app_client: TestClient, acme_key: str, raw_server_factory: Callable[..., Any], server_tls_context: ssl.SSLContext
) -> None:
    raw = raw_server_factory("tls_silent", ssl_context=server_tls_context)
    body = {"host": "127.0.0.1", "port": raw.port, "security": "starttls", "username": None, "password": None,
            "from_email": "shop@example.jp", "from_name": "Shop"}
    result = smtp_test(app_client, acme_key, body)
    assert result["ok"] is False and result["category"] == "tls_mismatch"
    assert result["suggested"]["security"] == "ssl"


def test_free_plan_gets_a_403_naming_the_plan(ctx: Context, app_client: TestClient, smtp_server: SmtpServer) -> None:
    create_tenant(ctx, tenant_id="freebie", name="Free shop", plan="free")
    key = create_api_key(ctx, tenant_id="freebie").key
    r = app_client.post("/v1/tenants/freebie/smtp/test", json=fields(smtp_server) | {"to": "a@example.jp"},
                        headers=auth(key))
    assert r.status_code == 403
    assert r.json()["required_plan"] == "pro"
    assert app_client.put("/v1/tenants/freebie/email-settings", json={"mode": "smtp"}, headers=auth(key)).status_code == 403


def test_private_hosts_are_refused_unless_allowed(
    ctx: Context, app_client: TestClient, acme_key: str, smtp_server: SmtpServer
) -> None:
    ctx.settings.allow_private_smtp_hosts = False
    body = fields(smtp_server, username=None, password=None) | {"to": "owner@example.jp"}
    r = app_client.post("/v1/tenants/acme/smtp/test", json=body, headers=auth(acme_key))
    assert r.status_code == 422  # refused before connecting (tests/integration/test_smtp_test_guard.py)
    assert "127.0.0.1 is the loopback address" in r.json()["detail"]
    assert smtp_server.connections == 0
    ctx.settings.allow_private_smtp_hosts = True
    assert smtp_test(app_client, acme_key, body)["ok"] is True


def _activate(client: TestClient, key: str, body: dict[str, Any]) -> None:
    assert client.put("/v1/tenants/acme/email-settings", json={"mode": "smtp"}, headers=auth(key)).status_code == 409
    result = smtp_test(client, key, body)
    assert result["ok"], result
    assert save(client, key, body, result["proof"]).status_code == 200
    r = client.put("/v1/tenants/acme/email-settings", json={"mode": "smtp"}, headers=auth(key))
    assert r.status_code == 200, r.text
    assert r.json()["effective"]["from_email"] == body["from_email"]


def _send(client: TestClient, key: str, n: int = 1) -> list[str]:
    return [
        client.post("/v1/tenants/acme/emails", json={"to": [f"c{i}@example.com"], "subject": "注文", "text": "t"},
                    headers=auth(key)).json()["id"]
        for i in range(n)
    ]


def test_live_auth_failure_holds_mail_until_the_password_is_fixed(
    ctx: Context, app_client: TestClient, acme_key: str, starttls_server: SmtpServer, inbox: DevInbox
) -> None:
    body = fields(starttls_server)
    _activate(app_client, acme_key, body)
    [first] = _send(app_client, acme_key)
    deliver(ctx)
    assert len(starttls_server.messages) == 2  # the test email, then the live one
    assert app_client.get(f"/v1/tenants/acme/messages/{first}", headers=auth(acme_key)).json()["mode"] == "smtp"

    starttls_server.script.auth = {"shop@example.jp": "the-new-app-password"}  # the user changed the password
    [second, third] = _send(app_client, acme_key, 2)
    deliver(ctx)
    cfg = app_client.get("/v1/tenants/acme/smtp", headers=auth(acme_key)).json()
    assert cfg["status"] == "failing" and cfg["last_error"]["category"] == "auth_failed"
    for mid in (second, third):
        m = app_client.get(f"/v1/tenants/acme/messages/{mid}", headers=auth(acme_key)).json()
        assert m["status"] == "deferred", m
    connections = starttls_server.connections
    with ctx.db.session() as s:  # make them due now: a failing configuration must not even be tried
        for m in s.scalars(select(Message).where(Message.status == "deferred")):
            m.next_attempt_at = utcnow() - timedelta(seconds=1)
    deliver(ctx)
    assert starttls_server.connections == connections
    assert len(inbox.messages()) == 0  # not silently sent through the platform either

    fixed = body | {"password": "the-new-app-password"}
    result = smtp_test(app_client, acme_key, fixed)
    assert save(app_client, acme_key, fixed, result["proof"]).status_code == 200
    deliver(ctx)
    for mid in (second, third):
        assert app_client.get(f"/v1/tenants/acme/messages/{mid}", headers=auth(acme_key)).json()["status"] == "sent"


def test_fallback_to_default_sends_through_the_platform(
    ctx: Context, app_client: TestClient, acme_key: str, starttls_server: SmtpServer, inbox: DevInbox
) -> None:
    body = fields(starttls_server, fallback_to_default=True)
    _activate(app_client, acme_key, body)
    starttls_server.script.auth = {"shop@example.jp": "changed"}
    [mid] = _send(app_client, acme_key)
    deliver(ctx)
    with ctx.db.session() as s:
        for m in s.scalars(select(Message).where(Message.status == "deferred")):
            m.next_attempt_at = utcnow() - timedelta(seconds=1)
    deliver(ctx)
    m = app_client.get(f"/v1/tenants/acme/messages/{mid}", headers=auth(acme_key)).json()
    assert m["status"] == "sent" and m["mode"] == "default"
    assert "failing" in m["note"]
    assert [a["mode"] for a in m["attempts"]] == ["smtp", "default"]
    assert len(inbox.messages()) == 1


def test_daily_quota_defers_instead_of_sending(
    ctx: Context, app_client: TestClient, acme_key: str, starttls_server: SmtpServer
) -> None:
    _activate(app_client, acme_key, fields(starttls_server, daily_limit=2))
    ids = _send(app_client, acme_key, 3)
    deliver(ctx)
    statuses = sorted(app_client.get(f"/v1/tenants/acme/messages/{i}", headers=auth(acme_key)).json()["status"]
                      for i in ids)
    assert statuses == ["deferred", "sent", "sent"]
    assert len(starttls_server.messages) == 3  # the test email + 2
    quota = app_client.get("/v1/tenants/acme/smtp", headers=auth(acme_key)).json()["quota"]
    assert quota["daily_limit"] == 2 and quota["daily_sent"] == 2 and quota["daily_remaining"] == 0
    deferred = app_client.get("/v1/tenants/acme/messages", params={"status": "deferred"}, headers=auth(acme_key))
    [held] = deferred.json()["messages"]
    assert held["next_attempt_at"] > (utcnow() + timedelta(hours=23)).isoformat()


def test_daily_quota_holds_across_the_parts_of_a_batch(
    ctx: Context, app_client: TestClient, acme_key: str, starttls_server: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch is prepared and sent in parts; the route's remaining quota counts them all, not each part."""
    monkeypatch.setattr(worker_module, "_PREPARE_PART", 2)
    _activate(app_client, acme_key, fields(starttls_server, daily_limit=3))
    ids = _send(app_client, acme_key, 7)
    assert deliver(ctx, rounds=1) == 7  # one batch of 7, in 4 parts
    statuses = sorted(app_client.get(f"/v1/tenants/acme/messages/{i}", headers=auth(acme_key)).json()["status"]
                      for i in ids)
    assert statuses == ["deferred"] * 4 + ["sent"] * 3
    assert len(starttls_server.messages) == 1 + 3  # the test email + 3


def test_a_refused_login_is_tried_once_per_batch_not_once_per_part(
    ctx: Context, app_client: TestClient, acme_key: str, starttls_server: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Providers lock accounts after repeated failed logins: the later parts of a batch reuse the first failure."""
    monkeypatch.setattr(worker_module, "_PREPARE_PART", 2)
    _activate(app_client, acme_key, fields(starttls_server))
    starttls_server.script.auth = {"shop@example.jp": "changed"}
    ids = _send(app_client, acme_key, 7)
    logins = len(starttls_server.auth_attempts)
    assert deliver(ctx, rounds=1) == 7  # one batch of 7, in 4 parts
    assert len(starttls_server.auth_attempts) == logins + 1
    for i in ids:
        m = app_client.get(f"/v1/tenants/acme/messages/{i}", headers=auth(acme_key)).json()
        assert m["status"] == "deferred" and m["category"] == "auth_failed", m


def test_two_workers_together_stay_within_the_providers_connection_cap(
    ctx: Context, app_client: TestClient, acme_key: str, starttls_server: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Providers cap connections per account (Microsoft 365: 3), not per worker process: two workers sending the
    same tenant's mail side by side never have more than the configuration's cap open at once between them, and
    every message arrives once, with one attempt (waiting for the other worker is not an attempt)."""
    monkeypatch.setattr(worker_module, "_BUSY_RETRY_SECONDS", 0.0)  # claimed again at once: the test stays short
    monkeypatch.setattr(worker_module, "_BUSY_RETRY_MAX_SECONDS", 0.0)
    _activate(app_client, acme_key, fields(starttls_server))
    with ctx.db.session() as s:
        s.scalars(select(SmtpConfig)).one().max_connections = 2
    starttls_server.script.data_delay = 0.05  # each message keeps its connection busy: the workers overlap
    ids = _send(app_client, acme_key, 24)
    starttls_server.max_open = starttls_server.open_now

    def unsent() -> int:
        with ctx.db.session() as s:
            return len([m for m in s.scalars(select(Message).where(Message.id.in_(ids))) if m.status != "sent"])

    async def go() -> None:
        a, b = Worker(ctx, batch_size=6), Worker(ctx, batch_size=6)
        try:
            for _ in range(60):
                await asyncio.gather(a.run_once(), b.run_once())
                if not await asyncio.to_thread(unsent):
                    break
        finally:
            await asyncio.gather(a.client.aclose(), b.client.aclose())
            await asyncio.gather(a.route_leases.aclose(), b.route_leases.aclose())

    asyncio.run(go())
    assert unsent() == 0
    assert 1 <= starttls_server.max_open <= 2
    assert len(starttls_server.messages) == 1 + 24  # the test email + 24, none twice
    with ctx.db.session() as s:
        counts = [s.query(Attempt).filter(Attempt.message_id == i).count() for i in ids]
        assert counts == [1] * 24
        assert s.scalars(select(RouteLease)).all() == []  # a stopped worker holds nothing


def test_one_worker_keeps_its_connection_from_batch_to_batch(
    ctx: Context, app_client: TestClient, acme_key: str, starttls_server: SmtpServer
) -> None:
    """The lease (and the warm connection) outlives a batch by a grace period: a tenant sending steadily is not
    logged in again for every batch (providers throttle logins)."""
    _activate(app_client, acme_key, fields(starttls_server))
    logins: list[int] = []

    async def go() -> None:
        worker = Worker(ctx)
        try:
            for _ in range(3):
                await asyncio.to_thread(_send, app_client, acme_key, 2)
                assert await worker.run_once() == 2
                logins.append(len(starttls_server.auth_attempts))
        finally:
            await worker.client.aclose()
            await worker.route_leases.aclose()

    asyncio.run(go())
    assert len(starttls_server.messages) == 1 + 6
    assert logins[0] == logins[1] == logins[2]  # the first batch's connections serve the next two


def test_a_database_error_on_the_lease_makes_messages_wait_not_fail(
    ctx: Context, app_client: TestClient, acme_key: str, starttls_server: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    _activate(app_client, acme_key, fields(starttls_server))
    [mid] = _send(app_client, acme_key)
    real_take = route_leases.take

    def locked(*args: Any, **kwargs: Any) -> bool:
        raise OperationalError("INSERT INTO route_leases", {}, Exception("database is locked"))

    monkeypatch.setattr(route_leases, "take", locked)
    deliver(ctx, rounds=1)
    m = app_client.get(f"/v1/tenants/acme/messages/{mid}", headers=auth(acme_key)).json()
    assert m["status"] == "deferred" and m["attempts"] == [] and "Waiting for a free connection" in m["note"], m
    monkeypatch.setattr(route_leases, "take", real_take)
    with ctx.db.session() as s:
        s.get(Message, mid).next_attempt_at = utcnow()  # type: ignore[union-attr]
    deliver(ctx)
    assert app_client.get(f"/v1/tenants/acme/messages/{mid}", headers=auth(acme_key)).json()["status"] == "sent"
    assert len(starttls_server.messages) == 1 + 1


def test_the_wait_for_an_account_in_use_grows_while_it_stays_in_use(
    ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker killed while holding a lease keeps it until it runs out: the others must not re-claim (and
    re-render) that account's messages every few seconds all that time."""
    clock = [1000.0]
    monkeypatch.setattr(worker_module.time, "monotonic", lambda: clock[0])
    worker = Worker(ctx)
    waits = []
    for t in (0, 10, 40, 70, 100, 400):
        clock[0] = 1000.0 + t
        waits.append(worker._busy_wait("smtp:k"))
    # Half the time found busy, at least 2 s, at most 15 s (jitter up to twice that); busy again after a long
    # quiet while (300 s here) starts short again.
    lows = [2, 5, 15, 15, 15, 2]
    assert all(low <= w <= 2 * low for w, low in zip(waits, lows, strict=True)), waits
    assert 2 <= worker._busy_wait("smtp:other") <= 4  # another account starts short


def test_the_lease_is_per_account_not_per_configuration() -> None:
    a = route_leases.lease_key("SMTP.office365.com", 587, "shop@example.jp")
    assert a == route_leases.lease_key("smtp.office365.com", 587, "shop@example.jp")
    assert a != route_leases.lease_key("smtp.office365.com", 587, "other@example.jp")
    assert a != route_leases.lease_key("smtp.office365.com", 25, "shop@example.jp")
    assert "shop" not in a and len(a) <= 100


def test_a_route_lease_is_one_workers_until_given_back_or_expired(ctx: Context) -> None:
    t0 = utcnow()
    assert route_leases.take(ctx.db, "smtp:cfg_1", "worker-a", 300, now=t0)
    assert not route_leases.take(ctx.db, "smtp:cfg_1", "worker-b", 300, now=t0)
    assert route_leases.take(ctx.db, "smtp:cfg_2", "worker-b", 300, now=t0)  # another route: independent
    assert route_leases.take(ctx.db, "smtp:cfg_1", "worker-a", 300, now=t0 + timedelta(seconds=100))  # renewed
    route_leases.give(ctx.db, "smtp:cfg_1", "worker-b")  # not b's to give: nothing changes
    assert not route_leases.take(ctx.db, "smtp:cfg_1", "worker-b", 300, now=t0 + timedelta(seconds=350))
    # A killed worker never gives its lease back: once it runs out, another worker takes the route.
    assert route_leases.take(ctx.db, "smtp:cfg_1", "worker-b", 300, now=t0 + timedelta(seconds=401))
    assert route_leases.renew(ctx.db, "smtp:cfg_1", "worker-b", 300, now=t0 + timedelta(seconds=401))
    route_leases.give(ctx.db, "smtp:cfg_1", "worker-b")
    # A renewal that arrives after the lease was given back does not bring it back.
    assert not route_leases.renew(ctx.db, "smtp:cfg_1", "worker-b", 300, now=t0 + timedelta(seconds=401))
    assert route_leases.take(ctx.db, "smtp:cfg_1", "worker-a", 300, now=t0 + timedelta(seconds=402))
    route_leases.give_all(ctx.db, "worker-a")
    with ctx.db.session() as s:
        assert [(r.route_key, r.owner) for r in s.scalars(select(RouteLease))] == [("smtp:cfg_2", "worker-b")]


def test_a_test_email_refused_while_workers_use_the_account_says_so(
    ctx: Context, app_client: TestClient, acme_key: str, starttls_server: SmtpServer
) -> None:
    """The test email is one more connection: a provider at its cap refuses it while a worker sends through the
    same account. The tenant is told that (and to try again shortly), not given a generic rate-limit remedy."""
    starttls_server.script.replies["mail"] = "432 4.3.2 STOREDRV.ClientSubmit; sender thread limit exceeded"
    body = fields(starttls_server)
    generic = smtp_test(app_client, acme_key, body)
    assert generic["ok"] is False and generic["category"] == "rate_limited"
    assert "sending other mail through this account" not in generic["remedy"]["en"]

    key = route_leases.lease_key("127.0.0.1", starttls_server.port, "shop@example.jp")
    assert route_leases.take(ctx.db, key, "worker-elsewhere", 300)
    busy = smtp_test(app_client, acme_key, body)
    assert busy["ok"] is False and busy["category"] == "rate_limited" and busy["proof"] is None
    assert "sending other mail through this account" in busy["remedy"]["en"]
    assert "送信中" in busy["remedy"]["ja"] and "テストメール" in busy["remedy"]["ja"]
    assert "busy" in busy["summary"]["en"]
    logged = app_client.get(f"/v1/tenants/acme/messages/{busy['message_id']}", headers=auth(acme_key)).json()
    assert "sending other mail through this account" in logged["remedy"]["en"]
    # Another account's lease, or one that ran out, is not this account being busy.
    assert not route_leases.in_use(ctx.db, key, now=utcnow() + timedelta(seconds=301))
    route_leases.give(ctx.db, key, "worker-elsewhere")
    other = route_leases.lease_key("127.0.0.1", starttls_server.port, "other@example.jp")
    assert route_leases.take(ctx.db, other, "worker-elsewhere", 300)
    assert "sending other mail" not in smtp_test(app_client, acme_key, body)["remedy"]["en"]


def test_provider_quota_reply_defers_the_rest(
    ctx: Context, app_client: TestClient, acme_key: str, starttls_server: SmtpServer
) -> None:
    _activate(app_client, acme_key, fields(starttls_server, preset="gmail"))
    starttls_server.script.replies["data"] = (
        "550 5.4.5 Daily user sending limit exceeded. For more information on Gmail sending limits go to "
        "https://support.google.com/a/answer/166852 d2e1a72fcca58-76e7d551493sm9728466b3a.112 - gsmtp"
    )
    ids = _send(app_client, acme_key, 2)
    deliver(ctx)
    for i in ids:
        m = app_client.get(f"/v1/tenants/acme/messages/{i}", headers=auth(acme_key)).json()
        assert m["status"] == "deferred" and m["category"] == "quota_exceeded", m
        assert "Gmail" in m["remedy"]["en"]  # the configuration's preset names the provider
    assert app_client.get("/v1/tenants/acme/smtp", headers=auth(acme_key)).json()["quota"]["paused_until"]


def test_cli_smtp_test_exit_codes(smtpd_factory: Callable[..., SmtpServer]) -> None:
    server = smtpd_factory(auth={"u@example.jp": "pw"})
    base = [sys.executable, "-c", "from letterhead.cli import main; main()", "smtp", "test", "--host", "127.0.0.1",
            "--port", str(server.port), "--security", "none", "--username", "u@example.jp", "--password-stdin",
            "--from", "u@example.jp", "--to", "x@example.jp"]
    env = {"LETTERHEAD_ALLOW_PRIVATE_SMTP_HOSTS": "1", "LETTERHEAD_SMTP_ALLOWED_PORTS": "*", "PATH": "/usr/bin:/bin"}
    ok = subprocess.run([*base, "--json"], input="pw\n", capture_output=True, text=True, env=env, timeout=60)
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["ok"] is True
    bad = subprocess.run(base, input="wrong\n", capture_output=True, text=True, env=env, timeout=60)
    assert bad.returncode == 1
    assert "auth_failed" in bad.stdout and "pw" not in bad.stdout.replace("password", "")
    args = subprocess.run([*base[:-2]], input="pw\n", capture_output=True, text=True, env=env, timeout=60)
    assert args.returncode == 2


def test_delete_falls_back_to_the_default_sender(
    ctx: Context, app_client: TestClient, acme_key: str, starttls_server: SmtpServer, inbox: DevInbox
) -> None:
    _activate(app_client, acme_key, fields(starttls_server))
    assert app_client.delete("/v1/tenants/acme/smtp", headers=auth(acme_key)).status_code == 204
    assert app_client.get("/v1/tenants/acme/smtp", headers=auth(acme_key)).status_code == 404
    settings = app_client.get("/v1/tenants/acme/email-settings", headers=auth(acme_key)).json()
    assert settings["mode"] == "default" and settings["smtp"] == {"configured": False}
    _send(app_client, acme_key)
    deliver(ctx)
    assert len(inbox.messages()) == 1


def test_keys_rotate_reencrypts_stored_passwords(
    ctx: Context, app_client: TestClient, acme_key: str, starttls_server: SmtpServer
) -> None:
    import base64
    import os

    from letterhead.security import Vault
    from tests.support.processes import worker_env

    body = fields(starttls_server)
    save(app_client, acme_key, body, smtp_test(app_client, acme_key, body)["proof"])
    new_key = base64.urlsafe_b64encode(os.urandom(32)).decode()
    env = worker_env(ctx.settings, LETTERHEAD_ENCRYPTION_KEYS=",".join([new_key, *ctx.settings.fernet_keys()]))
    done = subprocess.run([sys.executable, "-c", "from letterhead.cli import main; main()", "keys", "rotate"],
                          env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "smtp passwords: 1" in done.stdout
    with ctx.db.session() as s:
        cfg = s.scalar(select(SmtpConfig))
        assert cfg is not None and cfg.password_enc
        assert Vault([new_key]).decrypt(cfg.password_enc) == PASSWORD  # the old key can now be dropped
