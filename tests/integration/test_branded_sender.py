"""Branded sender end to end: verification email in the dev inbox → the link's page (GET changes nothing) → the
"Verify email" POST → mail goes out From the branded address; resends, rate limits, expired/used/unknown links,
address changes, DMARC-aware From, plan gating, tenant isolation, CSRF. Every DNS lookup goes to a local DNS
server (tests/support/dnsserver.py). Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import email
import email.policy
import re
from collections.abc import Callable
from datetime import timedelta
from email.message import EmailMessage
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from letterhead.context import Context
from letterhead.devinbox import DevInbox, InboxMessage
from letterhead.models import (
    BrandedSender,
    Message,
    SenderVerification,
    SmtpConfig,
    Tenant,
    VerificationStatus,
    utcnow,
)
from letterhead.security import sha256_hex
from letterhead.senders import branded
from letterhead.tenants import create_api_key, create_tenant
from tests.conftest import auth, deliver
from tests.support.dnsserver import LocalDnsServer
from tests.support.smtpd import SmtpServer

MX = ("MX", "10 mx.mail.example.")
ZONE: dict[str, Any] = {
    "mx.mail.example": [("A", "93.184.215.14")],
    "yamada.example": [MX],
    "_dmarc.yamada.example": [("TXT", "v=DMARC1; p=none; rua=mailto:d@yamada.example")],
    "honten.example": [MX],
    "_dmarc.honten.example": [("TXT", "v=DMARC1; p=none")],
    "strict.example": [MX],
    "_dmarc.strict.example": [("TXT", "v=DMARC1; p=reject")],
    "careful.example": [MX],
    "_dmarc.careful.example": [("TXT", "v=DMARC1; p=quarantine; pct=100")],
    "relaxed.example": [MX],  # no DMARC record at all
    "broken.example": [MX],
    "_dmarc.broken.example": [("TXT", "v=DMARC1; p=maybe")],
    "nomail.example": [("TXT", "v=spf1 ~all")],  # exists, but no MX and no A
    "dnsdown.example": "SERVFAIL",
}
PLATFORM_FROM = "notifications@letterhead.localhost"


@pytest.fixture
def dns(dns_server: LocalDnsServer) -> LocalDnsServer:
    dns_server.set_zone(ZONE)
    return dns_server


@pytest.fixture
def settings_overrides(dns: LocalDnsServer) -> dict[str, Any]:
    # Every lookup of the app (MX at entry, DMARC at send time) goes to the local server: never the internet.
    return {"dns_nameservers": dns.setting, "public_url": "http://letterhead.test"}


# --- helpers -----------------------------------------------------------------------------------------------------


def request_verification(
    client: TestClient, key: str, email_addr: str, name: str | None = "山田商店", tenant: str = "acme"
) -> Any:
    body: dict[str, Any] = {"email": email_addr}
    if name is not None:
        body["name"] = name
    return client.post(f"/v1/tenants/{tenant}/sender-verifications", json=body, headers=auth(key))


def parsed(msg: InboxMessage) -> EmailMessage:
    out = email.message_from_bytes(msg.raw, policy=email.policy.default)
    assert isinstance(out, EmailMessage)
    return out


def verification_link(inbox: DevInbox, to: str) -> str:
    """The link in the newest verification email to ``to`` (from its text part, cross-checked with HTML)."""
    for m in inbox.messages():
        if to not in m.rcpt_to:
            continue
        msg = parsed(m)
        text = msg.get_body(("plain",))
        html = msg.get_body(("html",))
        assert isinstance(text, EmailMessage) and isinstance(html, EmailMessage)
        links = re.findall(r"http://letterhead\.test/verify/[A-Za-z0-9_-]+", text.get_content())
        assert len(set(links)) == 1, text.get_content()
        assert f'href="{links[0]}"' in html.get_content()
        return links[0]
    raise AssertionError(f"no verification email to {to}")


def path_of(link: str) -> str:
    return link.removeprefix("http://letterhead.test")


def form_field(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found, page
    return found.group(1)


def settings(client: TestClient, key: str, tenant: str = "acme") -> dict[str, Any]:
    r = client.get(f"/v1/tenants/{tenant}/email-settings", headers=auth(key))
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


def press_verify(client: TestClient, link: str, lang: str | None = None) -> Any:
    page = client.get(path_of(link), params={"lang": lang} if lang else None)
    assert page.status_code == 200, page.text
    return client.post(path_of(link), data={"csrf": form_field(page.text), "lang": lang or ""})


def send_mail(client: TestClient, key: str, tenant: str = "acme", to: str = "hanako@customer.example") -> str:
    r = client.post(
        f"/v1/tenants/{tenant}/emails",
        json={"to": [to], "subject": "ご注文ありがとうございます", "text": "本文"},
        headers=auth(key),
    )
    assert r.status_code == 202, r.text
    return str(r.json()["id"])


def newest_to(inbox: DevInbox, to: str) -> EmailMessage:
    for m in inbox.messages():
        if to in m.rcpt_to:
            return parsed(m)
    raise AssertionError(f"nothing delivered to {to}")


def age_sends(ctx: Context, seconds: float, tenant: str = "acme") -> None:
    """Move the tenant's verification sends into the past (the rate limits count them from the database)."""
    with ctx.db.session() as s:
        for v in s.scalars(select(SenderVerification).where(SenderVerification.tenant_id == tenant)):
            v.created_at = v.created_at - timedelta(seconds=seconds)


def verify_address(
    ctx: Context, client: TestClient, key: str, inbox: DevInbox, addr: str, name: str | None = "山田商店"
) -> None:
    r = request_verification(client, key, addr, name)
    assert r.status_code == 202, r.text
    deliver(ctx)
    r = press_verify(client, verification_link(inbox, addr))
    assert r.status_code == 200, r.text
    age_sends(ctx, 3600 * 24)  # keep later sends of the test clear of the rate limits


# --- the whole flow ----------------------------------------------------------------------------------------------


def test_verify_by_link_then_mail_goes_out_from_the_branded_address(
    ctx: Context, app_client: TestClient, acme_key: str, inbox: DevInbox, dns: LocalDnsServer
) -> None:
    before = settings(app_client, acme_key)
    assert before["mode"] == "default" and before["branded"]["status"] == "none"
    assert before["effective"]["from_email"] == PLATFORM_FROM

    r = request_verification(app_client, acme_key, "shop@yamada.example")
    assert r.status_code == 202, r.text
    body = r.json()
    assert body["status"] == "pending" and body["email"] == "shop@yamada.example" and body["warnings"] == []
    assert "token" not in body  # the link only ever travels in the email

    pending = settings(app_client, acme_key)["branded"]
    assert pending["status"] == "pending" and pending["verified_at"] is None
    assert pending["pending"]["email"] == "shop@yamada.example" and pending["pending"]["name"] == "山田商店"
    assert pending["pending"]["expires_at"] and pending["pending"]["sent_at"]

    assert deliver(ctx) == 1
    [got] = inbox.messages()
    mail = parsed(got)
    assert got.rcpt_to == ("shop@yamada.example",)
    assert mail["From"].addresses[0].addr_spec == PLATFORM_FROM  # through the platform, as the platform
    assert "送信者メールアドレスの確認" in str(mail["Subject"])  # the tenant's locale (ja)
    text = mail.get_body(("plain",))
    assert isinstance(text, EmailMessage)
    assert "「メールを確認」ボタンを押してください" in text.get_content()
    assert "確認メールを再送信" in text.get_content()
    link = verification_link(inbox, "shop@yamada.example")
    token = link.rsplit("/", 1)[1]
    assert len(token) >= 22  # ≥ 128 bits of randomness, URL-safe base64

    # Only the sha256 of the token is stored.
    with ctx.db.session() as s:
        [v] = s.scalars(select(SenderVerification))
        assert v.token_hash == sha256_hex(token) and token not in (v.token_hash, v.id)
        log = s.get(Message, v.message_id)
        assert log is not None and log.kind == "verification" and log.mode == "default"

    # The GET (what a link scanner does) shows the button and changes nothing.
    page = app_client.get(path_of(link))
    assert page.status_code == 200
    assert "メールを確認" in page.text and "shop@yamada.example" in page.text and "ACME 株式会社" in page.text
    assert page.headers["referrer-policy"] == "no-referrer" and "no-store" in page.headers["cache-control"]
    assert "samesite=strict" in page.headers["set-cookie"].lower()
    for _ in range(3):
        app_client.get(path_of(link))
    assert settings(app_client, acme_key)["branded"]["status"] == "pending"
    english = app_client.get(path_of(link), headers={"Accept-Language": "en-US,en;q=0.9,ja;q=0.5"})
    assert "Verify email" in english.text and "メールを確認" not in english.text
    assert "Verify email" in app_client.get(path_of(link), params={"lang": "en"}).text

    # The button verifies.
    done = app_client.post(path_of(link), data={"csrf": form_field(page.text)})
    assert done.status_code == 200, done.text
    assert "メールアドレスを確認しました" in done.text

    after = settings(app_client, acme_key)
    assert after["mode"] == "branded"
    b = after["branded"]
    assert b["status"] == "verified" and b["email"] == "shop@yamada.example" and b["verified_at"]
    assert b["pending"] is None and b["warning"] is None
    assert b["dmarc"]["policy"] == "none" and b["dmarc"]["send_via_platform"] is False
    assert after["effective"]["from_email"] == "shop@yamada.example"

    # The next email goes out From the branded address, through the platform transport.
    msg_id = send_mail(app_client, acme_key)
    assert deliver(ctx) == 1
    out = newest_to(inbox, "hanako@customer.example")
    assert out["From"].addresses[0].addr_spec == "shop@yamada.example"
    assert out["From"].addresses[0].display_name == "山田商店"
    assert out["Reply-To"] is None
    raw = next(m for m in inbox.messages() if "hanako@customer.example" in m.rcpt_to)
    assert raw.mail_from == "shop@yamada.example"
    detail = app_client.get(f"/v1/tenants/acme/messages/{msg_id}", headers=auth(acme_key)).json()
    assert detail["mode"] == "branded" and detail["note"] is None


def test_english_tenant_gets_an_english_email_and_page(
    ctx: Context, app_client: TestClient, platform_key: str, inbox: DevInbox
) -> None:
    create_tenant(ctx, tenant_id="globex", name="Globex", plan="pro", locale="en")
    key = create_api_key(ctx, tenant_id="globex").key
    assert request_verification(app_client, key, "ops@honten.example", None, tenant="globex").status_code == 202
    deliver(ctx)
    mail = newest_to(inbox, "ops@honten.example")
    assert str(mail["Subject"]) == "Confirm your sender address for Globex"
    link = verification_link(inbox, "ops@honten.example")
    page = app_client.get(path_of(link))  # no Accept-Language: the tenant's locale
    assert "Verify email" in page.text
    assert "メールを確認" in app_client.get(path_of(link), headers={"Accept-Language": "ja"}).text
    assert press_verify(app_client, link).status_code == 200
    send_mail(app_client, key, tenant="globex")
    deliver(ctx)
    out = newest_to(inbox, "hanako@customer.example")
    # No name given: the tenant's name is the display name.
    assert str(out["From"]) == "Globex <ops@honten.example>"


# --- resend, rate limits, expired/used/unknown links ------------------------------------------------------------


def test_resend_voids_the_old_link(
    ctx: Context, app_client: TestClient, acme_key: str, inbox: DevInbox
) -> None:
    assert request_verification(app_client, acme_key, "shop@yamada.example").status_code == 202
    deliver(ctx)
    old = verification_link(inbox, "shop@yamada.example")
    age_sends(ctx, 61)
    r = app_client.post("/v1/tenants/acme/sender-verifications/resend", headers=auth(acme_key))
    assert r.status_code == 202, r.text
    assert r.json()["email"] == "shop@yamada.example" and r.json()["status"] == "pending"
    deliver(ctx)
    new = verification_link(inbox, "shop@yamada.example")
    assert new != old

    stale = app_client.get(path_of(old))
    assert stale.status_code == 410
    assert "このリンクは無効になりました" in stale.text and "確認メールを再送信" in stale.text
    assert "no longer valid" in app_client.get(path_of(old), params={"lang": "en"}).text
    assert press_verify(app_client, new).status_code == 200
    assert settings(app_client, acme_key)["branded"]["status"] == "verified"


def test_resend_without_a_pending_verification_is_a_conflict(
    app_client: TestClient, acme_key: str
) -> None:
    r = app_client.post("/v1/tenants/acme/sender-verifications/resend", headers=auth(acme_key))
    assert r.status_code == 409
    assert "Send verification email" in r.json()["detail"]


def test_resends_are_rate_limited(ctx: Context, app_client: TestClient, acme_key: str) -> None:
    def resend() -> Any:
        return app_client.post("/v1/tenants/acme/sender-verifications/resend", headers=auth(acme_key))

    assert request_verification(app_client, acme_key, "shop@yamada.example").status_code == 202
    # 60 s between sends.
    r = resend()
    assert r.status_code == 429, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["type"].endswith("/rate-limited")
    assert 55 <= int(r.headers["Retry-After"]) <= 60
    # Entering the same pending address again is a resend too.
    assert request_verification(app_client, acme_key, "shop@yamada.example").status_code == 429
    age_sends(ctx, 30)
    assert 25 <= int(resend().headers["Retry-After"]) <= 30

    # 5 per hour.
    for _ in range(4):
        age_sends(ctx, 61)
        assert resend().status_code == 202
    age_sends(ctx, 61)
    r = resend()
    assert r.status_code == 429
    retry = int(r.headers["Retry-After"])
    assert 3600 - 5 * 61 - 30 - 5 <= retry <= 3600 - 5 * 61 - 30 + 5, retry
    assert "5 verification emails per hour" in r.json()["detail"]
    # A new address counts too (each send mails an unproven address).
    assert request_verification(app_client, acme_key, "info@honten.example").status_code == 429

    # 20 per day.
    for _ in range(3):
        age_sends(ctx, 3600)
        for _ in range(5):
            assert resend().status_code == 202
            age_sends(ctx, 61)
    age_sends(ctx, 3600)
    r = resend()
    assert r.status_code == 429
    assert "20 verification emails per day" in r.json()["detail"]
    assert int(r.headers["Retry-After"]) > 3600
    with ctx.db.session() as s:
        assert len(list(s.scalars(select(SenderVerification)))) == 20


def test_expired_link(ctx: Context, app_client: TestClient, acme_key: str, inbox: DevInbox) -> None:
    request_verification(app_client, acme_key, "shop@yamada.example")
    deliver(ctx)
    link = verification_link(inbox, "shop@yamada.example")
    field = form_field(app_client.get(path_of(link)).text)
    with ctx.db.session() as s:
        s.execute(update(SenderVerification).values(expires_at=utcnow() - timedelta(seconds=1)))

    page = app_client.get(path_of(link))
    assert page.status_code == 410
    assert "有効期限が切れています" in page.text and "確認メールを再送信" in page.text
    assert "expired" in app_client.get(path_of(link), params={"lang": "en"}).text
    assert app_client.post(path_of(link), data={"csrf": field}).status_code == 410
    b = settings(app_client, acme_key)["branded"]
    assert b["status"] == "pending" and b["pending"]["expired"] is True

    # The way out: resend, and the fresh link works.
    age_sends(ctx, 61)
    assert app_client.post("/v1/tenants/acme/sender-verifications/resend", headers=auth(acme_key)).status_code == 202
    deliver(ctx)
    assert press_verify(app_client, verification_link(inbox, "shop@yamada.example")).status_code == 200
    assert settings(app_client, acme_key)["branded"]["status"] == "verified"


def test_used_link(ctx: Context, app_client: TestClient, acme_key: str, inbox: DevInbox) -> None:
    request_verification(app_client, acme_key, "shop@yamada.example")
    deliver(ctx)
    link = verification_link(inbox, "shop@yamada.example")
    field = form_field(app_client.get(path_of(link)).text)
    assert app_client.post(path_of(link), data={"csrf": field}).status_code == 200
    again = app_client.post(path_of(link), data={"csrf": field})
    assert again.status_code == 410 and "すでに使用されています" in again.text
    page = app_client.get(path_of(link), params={"lang": "en"})
    assert page.status_code == 410 and "already been used" in page.text and "Resend verification email" in page.text
    with ctx.db.session() as s:
        [v] = s.scalars(select(SenderVerification))
        assert v.status == VerificationStatus.VERIFIED.value and v.used_at is not None


@pytest.mark.parametrize(
    "token", ["AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "short", "x" * 300, "%3Cscript%3E"]
)
def test_unknown_link(app_client: TestClient, token: str) -> None:
    page = app_client.get(f"/verify/{token}")
    assert page.status_code == 404
    assert "このリンクは無効です" in page.text and "確認メールを再送信" in page.text
    assert "<script>" not in page.text
    assert app_client.post(f"/verify/{token}", data={"csrf": "x"}).status_code == 404
    assert "not valid" in app_client.get(f"/verify/{token}", headers={"Accept-Language": "en"}).text


# --- changing the address ----------------------------------------------------------------------------------------


def test_changing_the_address_keeps_the_verified_one_until_the_new_one_is_verified(
    ctx: Context, app_client: TestClient, acme_key: str, inbox: DevInbox
) -> None:
    verify_address(ctx, app_client, acme_key, inbox, "shop@yamada.example")
    r = request_verification(app_client, acme_key, "info@honten.example", "山田商店 本店")
    assert r.status_code == 202, r.text

    b = settings(app_client, acme_key)["branded"]
    assert b["status"] == "verified" and b["email"] == "shop@yamada.example"
    assert b["pending"]["email"] == "info@honten.example"
    # The verification email goes through the platform as the platform, not as the current branded address.
    send_mail(app_client, acme_key)
    deliver(ctx)
    check = newest_to(inbox, "info@honten.example")
    assert check["From"].addresses[0].addr_spec == PLATFORM_FROM
    # Meanwhile mail still goes out from the verified address.
    assert newest_to(inbox, "hanako@customer.example")["From"].addresses[0].addr_spec == "shop@yamada.example"

    assert press_verify(app_client, verification_link(inbox, "info@honten.example")).status_code == 200
    b = settings(app_client, acme_key)["branded"]
    assert b["email"] == "info@honten.example" and b["name"] == "山田商店 本店" and b["pending"] is None
    send_mail(app_client, acme_key)
    deliver(ctx)
    out = newest_to(inbox, "hanako@customer.example")
    assert out["From"].addresses[0].addr_spec == "info@honten.example"
    assert out["From"].addresses[0].display_name == "山田商店 本店"

    # Re-entering the verified address with only a new name needs no new proof.
    r = request_verification(app_client, acme_key, "info@honten.example", "山田商店")
    assert r.status_code == 200 and r.json()["status"] == "verified"
    assert settings(app_client, acme_key)["branded"]["name"] == "山田商店"


def test_verification_goes_through_the_platform_and_keeps_smtp_mode(
    ctx: Context, app_client: TestClient, acme_key: str, inbox: DevInbox, smtp_server: SmtpServer
) -> None:
    with ctx.db.session() as s:
        s.add(SmtpConfig(tenant_id="acme", host="127.0.0.1", port=smtp_server.port, security="none",
                         from_email="shop@yamada.example", from_name="山田商店", status="active"))
        tenant = s.get(Tenant, "acme")
        assert tenant is not None
        tenant.mode = "smtp"
    assert request_verification(app_client, acme_key, "info@honten.example").status_code == 202
    deliver(ctx)
    assert smtp_server.messages == []  # not through the tenant's own server
    assert press_verify(app_client, verification_link(inbox, "info@honten.example")).status_code == 200
    after = settings(app_client, acme_key)
    assert after["mode"] == "smtp" and after["branded"]["status"] == "verified"
    send_mail(app_client, acme_key)
    deliver(ctx)
    [received] = smtp_server.messages
    assert received.mail_from == "shop@yamada.example"


# --- DMARC-aware From --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("domain", "policy"), [("strict.example", "reject"), ("careful.example", "quarantine"),
                           ("broken.example", "invalid")]
)
def test_enforcing_or_unreadable_dmarc_sends_via_the_platform(
    ctx: Context, app_client: TestClient, acme_key: str, inbox: DevInbox, domain: str, policy: str
) -> None:
    addr = f"shop@{domain}"
    verify_address(ctx, app_client, acme_key, inbox, addr)
    b = settings(app_client, acme_key)["branded"]
    assert b["status"] == "verified"
    assert b["dmarc"]["policy"] == policy and b["dmarc"]["send_via_platform"] is True
    assert "authenticate" in b["warning"]["en"] and "SMTP" in b["warning"]["en"]
    assert "認証" in b["warning"]["ja"] and "SMTP" in b["warning"]["ja"]

    msg_id = send_mail(app_client, acme_key)
    deliver(ctx)
    out = newest_to(inbox, "hanako@customer.example")
    assert out["From"].addresses[0].display_name == "山田商店 via Letterhead"
    assert out["From"].addresses[0].addr_spec == PLATFORM_FROM
    assert str(out["Reply-To"]) == addr
    detail = app_client.get(f"/v1/tenants/acme/messages/{msg_id}", headers=auth(acme_key)).json()
    assert detail["mode"] == "branded"
    assert detail["note"] and "DMARC" in detail["note"] and domain in detail["note"]


@pytest.mark.parametrize("domain", ["yamada.example", "relaxed.example"])
def test_no_enforcing_dmarc_sends_as_the_address(
    ctx: Context, app_client: TestClient, acme_key: str, inbox: DevInbox, domain: str
) -> None:
    addr = f"shop@{domain}"
    verify_address(ctx, app_client, acme_key, inbox, addr)
    b = settings(app_client, acme_key)["branded"]
    assert b["warning"] is None and b["dmarc"]["policy"] == ("none" if domain == "yamada.example" else "missing")
    send_mail(app_client, acme_key)
    deliver(ctx)
    out = newest_to(inbox, "hanako@customer.example")
    assert out["From"].addresses[0].addr_spec == addr and out["Reply-To"] is None


def test_dmarc_lookups_are_cached_per_process(
    ctx: Context, app_client: TestClient, acme_key: str, inbox: DevInbox, dns: LocalDnsServer
) -> None:
    verify_address(ctx, app_client, acme_key, inbox, "shop@strict.example")
    dns.reset_queries()
    for _ in range(3):
        send_mail(app_client, acme_key)
        deliver(ctx)
    assert dns.count("_dmarc.strict.example") == 0  # served from the checker's TTL cache
    assert branded.dmarc_checker(ctx) is branded.dmarc_checker(ctx)
    # The record changes: once the cache is cleared (TTL), mail goes out as the address.
    dns.set("_dmarc.strict.example", [("TXT", "v=DMARC1; p=none")])
    branded.dmarc_checker(ctx).clear()
    send_mail(app_client, acme_key)
    deliver(ctx)
    assert newest_to(inbox, "hanako@customer.example")["From"].addresses[0].addr_spec == "shop@strict.example"


# --- bad input, plans, isolation, CSRF ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"email": "not-an-address"}, "email"),
        ({"email": "山田 <shop@yamada.example>"}, "email"),
        ({"email": "shop@yamada.exmaple"}, "email"),  # NXDOMAIN: a typo
        ({"email": "shop@yamada.example", "name": "山田\r\nBcc: victim@example.com"}, "name"),
        ({"email": "shop@yamada.example\n"}, "email"),
    ],
)
def test_bad_input_is_refused_and_changes_nothing(
    ctx: Context, app_client: TestClient, acme_key: str, body: dict[str, Any], field: str
) -> None:
    r = app_client.post("/v1/tenants/acme/sender-verifications", json=body, headers=auth(acme_key))
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["field"] == field
    if "exmaple" in body["email"]:
        assert "does not exist" in r.json()["detail"]
    with ctx.db.session() as s:
        assert list(s.scalars(select(SenderVerification))) == []
        assert list(s.scalars(select(Message))) == []


def test_domain_without_mail_server_is_accepted_with_a_warning(app_client: TestClient, acme_key: str) -> None:
    r = request_verification(app_client, acme_key, "shop@nomail.example")
    assert r.status_code == 202, r.text
    [warning] = r.json()["warnings"]
    assert warning["code"] == "no-mail-host" and "nomail.example" in warning["en"] and warning["ja"]


def test_dns_unavailable_gives_no_warning(ctx: Context, app_client: TestClient, acme_key: str) -> None:
    r = request_verification(app_client, acme_key, "shop@dnsdown.example")
    assert r.status_code == 202, r.text
    assert r.json()["warnings"] == []


def test_plan_gating(ctx: Context, app_client: TestClient) -> None:
    create_tenant(ctx, tenant_id="small", name="Small", plan="free")
    key = create_api_key(ctx, tenant_id="small").key
    r = request_verification(app_client, key, "shop@yamada.example", tenant="small")
    assert r.status_code == 403
    problem = r.json()
    assert problem["required_plan"] == "pro" and "pro" in problem["detail"]
    assert app_client.post("/v1/tenants/small/sender-verifications/resend", headers=auth(key)).status_code == 403
    with ctx.db.session() as s:
        assert list(s.scalars(select(SenderVerification))) == []


def test_tenants_are_isolated(
    ctx: Context, app_client: TestClient, acme_key: str, inbox: DevInbox
) -> None:
    create_tenant(ctx, tenant_id="beta", name="Beta", plan="pro", locale="en")
    beta_key = create_api_key(ctx, tenant_id="beta").key
    # Another tenant's key cannot touch acme's sender.
    assert request_verification(app_client, beta_key, "x@yamada.example", tenant="beta").status_code == 202
    assert request_verification(app_client, beta_key, "x@yamada.example", tenant="acme").status_code == 404
    assert app_client.post("/v1/tenants/acme/sender-verifications/resend", headers=auth(beta_key)).status_code == 404
    assert app_client.get("/v1/tenants/acme/email-settings", headers=auth(beta_key)).status_code == 404

    # The same address verified by acme is not verified for beta.
    assert request_verification(app_client, acme_key, "x@yamada.example").status_code == 202
    deliver(ctx)
    links = _all_links(inbox, "x@yamada.example")
    assert len(links) == 2
    with ctx.db.session() as s:
        rows = {v.tenant_id: v for v in s.scalars(select(SenderVerification))}
    link_of = {
        tenant: next(link for link in links if sha256_hex(link.rsplit("/", 1)[1]) == row.token_hash)
        for tenant, row in rows.items()
    }
    assert press_verify(app_client, link_of["acme"]).status_code == 200
    assert settings(app_client, acme_key)["branded"]["status"] == "verified"
    beta = settings(app_client, beta_key, tenant="beta")
    assert beta["branded"]["status"] == "pending" and beta["mode"] == "default"
    assert beta["effective"]["from_email"] == PLATFORM_FROM
    with ctx.db.session() as s:
        assert s.get(BrandedSender, "beta") is None

    # A form field signed for acme's verification does not work on beta's link.
    beta_page = app_client.get(path_of(link_of["beta"]))
    assert beta_page.status_code == 200 and "Beta" in beta_page.text
    r = app_client.post(path_of(link_of["beta"]), data={"csrf": _field_for(ctx, rows["acme"].id, app_client)})
    assert r.status_code == 403
    assert settings(app_client, beta_key, tenant="beta")["branded"]["status"] == "pending"
    # beta's own link verifies beta only.
    assert app_client.post(path_of(link_of["beta"]), data={"csrf": form_field(beta_page.text)}).status_code == 200
    assert settings(app_client, beta_key, tenant="beta")["branded"]["status"] == "verified"
    with ctx.db.session() as s:
        senders = {b.tenant_id: b.email for b in s.scalars(select(BrandedSender))}
    assert senders == {"acme": "x@yamada.example", "beta": "x@yamada.example"}


def _all_links(inbox: DevInbox, to: str) -> list[str]:
    out = []
    for m in inbox.messages():
        if to in m.rcpt_to:
            text = parsed(m).get_body(("plain",))
            assert isinstance(text, EmailMessage)
            out += re.findall(r"http://letterhead\.test/verify/[A-Za-z0-9_-]+", text.get_content())
    return out


def _field_for(ctx: Context, verification_id: str, client: TestClient) -> str:
    """A correctly signed form field, but for another verification (with this client's cookie nonce)."""
    from letterhead.web.verify import COOKIE, FORM_PURPOSE

    nonce = client.cookies.get(COOKIE)
    assert nonce
    return ctx.signer.sign(FORM_PURPOSE, {"v": verification_id, "n": nonce})


def test_csrf(
    ctx: Context, app_client: TestClient, acme_key: str, inbox: DevInbox, make_client: Callable[[], TestClient]
) -> None:
    request_verification(app_client, acme_key, "shop@yamada.example")
    deliver(ctx)
    link = verification_link(inbox, "shop@yamada.example")
    page = app_client.get(path_of(link))
    field = form_field(page.text)

    def refused(r: Any) -> None:
        assert r.status_code == 403, r.text
        assert "確認できませんでした" in r.text
        assert settings(app_client, acme_key)["branded"]["status"] == "pending"

    refused(app_client.post(path_of(link)))  # no field
    refused(app_client.post(path_of(link), data={"csrf": field + "x"}))  # forged
    refused(app_client.post(path_of(link), data={"csrf": ctx.signer.sign("other", {"v": "x"})}))
    # Posted from another site: the browser marks it, and a SameSite=Strict cookie would not be sent anyway.
    refused(app_client.post(path_of(link), data={"csrf": field}, headers={"Sec-Fetch-Site": "cross-site"}))
    # The right field without the page's cookie (a form copied to another browser or site).
    other = make_client()
    refused(other.post(path_of(link), data={"csrf": field}))
    assert app_client.post(path_of(link), data={"csrf": field}).status_code == 200


@pytest.fixture
def make_client(ctx: Context, inbox: DevInbox) -> Any:
    from letterhead.api.app import create_app

    clients: list[TestClient] = []

    def make() -> TestClient:
        client = TestClient(create_app(ctx, dev_inbox=inbox), raise_server_exceptions=False)
        clients.append(client)
        return client

    yield make
    for c in clients:
        c.close()
