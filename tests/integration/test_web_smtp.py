"""Custom email settings in the web UI against real aiosmtpd servers: test → proof → save (with and without
JavaScript), refusals, the failing banner, quota, plan gating; the password never appears in a page."""

from __future__ import annotations

import re
import ssl
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from letterhead.context import Context
from letterhead.models import SmtpConfig, Tenant
from letterhead.senders import smtp as smtp_service
from letterhead.smtp.diagnose import Category
from letterhead.tenants import create_tenant
from tests.support.smtpd import GMAIL_BAD_CREDENTIALS, SmtpServer
from tests.support.web import csrf_of, make_user, sign_in

SMTP_PASSWORD = "abcd efgh ijkl mnop"
PAGE = "/t/acme/settings/email/smtp"


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"smtp_timeout_seconds": 2.0}


@pytest.fixture
def server(
    smtpd_factory: Callable[..., SmtpServer], server_tls_context: ssl.SSLContext, trusted_ca: Any
) -> SmtpServer:
    return smtpd_factory(security="starttls", ssl_context=server_tls_context, require_starttls=True,
                         auth={"shop@example.jp": SMTP_PASSWORD}, auth_required=True)


@pytest.fixture
def owner(ctx: Context, app_client: TestClient, acme: str) -> TestClient:
    make_user(ctx, "owner@acme.example", tenant=acme)
    sign_in(app_client, "owner@acme.example")
    return app_client


def form(server: SmtpServer, **over: str) -> dict[str, str]:
    data = {
        "preset": "custom", "driver": "smtp", "host": "127.0.0.1", "port": str(server.port),
        "security": server.security.value, "username": "shop@example.jp", "password": SMTP_PASSWORD,
        "from_email": "shop@example.jp", "from_name": "山田商店", "reply_to": "", "daily_limit": "",
        "per_minute_limit": "", "verify_tls": "1", "to": "owner@example.jp", "activate": "1",
    }
    data.update(over)
    return data


def hidden(html: str, name: str) -> str | None:
    match = re.search(rf'name="{name}" value="([^"]*)"', html)
    return match.group(1) if match else None


def test_save_is_refused_without_a_passing_test(ctx: Context, owner: TestClient, server: SmtpServer) -> None:
    page = owner.get(PAGE)
    assert page.status_code == 200
    assert re.search(r'data-role="save" disabled', page.text), "Save starts disabled"
    r = owner.post(PAGE + "/save", data={"csrf": csrf_of(page.text), **form(server), "proof": ""})
    assert r.status_code == 409
    assert "保存できませんでした" in r.text and "テストメールを送信" in r.text
    r = owner.post(PAGE + "/save", data={"csrf": csrf_of(page.text), **form(server), "proof": "forged"},
                   headers={"Accept-Language": "en"})
    assert r.status_code == 409
    with ctx.db.session() as s:
        assert s.scalar(select(SmtpConfig)) is None
    assert server.messages == []


def test_test_then_save_without_javascript(ctx: Context, owner: TestClient, server: SmtpServer) -> None:
    page = owner.get(PAGE)
    r = owner.post(PAGE + "/test", data={"csrf": csrf_of(page.text), **form(server)})
    assert r.status_code == 200, r.text
    html = r.text
    assert "テストメールを送信しました" in html
    for label in ("ホスト名の解決", "接続", "TLS 暗号化", "認証 (AUTH)", "本文 (DATA)"):
        assert label in html
    assert html.count("✓") >= 8
    proof = hidden(html, "proof")
    sealed = hidden(html, "password_sealed")
    assert proof and sealed
    assert not re.search(r'data-role="save" disabled', html), "Save is enabled after a passing test"
    assert SMTP_PASSWORD not in html and 'name="password" value=""' in html
    [received] = server.messages
    assert received.rcpt_tos == ["owner@example.jp"]

    # A field changed after the test: refused (the proof binds the values), nothing saved.
    changed = {**form(server, from_name="別の名前"), "password": "", "password_sealed": sealed, "proof": proof}
    r = owner.post(PAGE + "/save", data={"csrf": csrf_of(html), **changed})
    assert r.status_code == 409 and "保存できませんでした" in r.text

    # The same values (password kept sealed, not retyped) save, and switch the tenant to SMTP.
    same = {**form(server), "password": "", "password_sealed": sealed, "proof": proof}
    r = owner.post(PAGE + "/save", data={"csrf": csrf_of(html), **same}, follow_redirects=False)
    assert r.status_code == 303 and "notice=smtp_saved_active" in r.headers["location"]
    with ctx.db.session() as s:
        cfg = s.scalar(select(SmtpConfig))
        tenant = s.get(Tenant, "acme")
        assert cfg is not None and cfg.status == "active" and ctx.vault.decrypt(cfg.password_enc or "") == SMTP_PASSWORD
        assert tenant is not None and tenant.mode == "smtp"
    saved = owner.get(r.headers["location"])
    assert "あなたの SMTP サーバーから送信されます" in saved.text
    assert "パスワードは保存済みです。変更しない場合は空欄のままにしてください。" in saved.text
    assert 'name="host" value="127.0.0.1"' in saved.text
    for path in (PAGE, "/t/acme/settings/email", "/t/acme/logs"):
        assert SMTP_PASSWORD not in owner.get(path).text, path
    overview = owner.get("/t/acme/settings/email")
    assert "shop@example.jp" in overview.text and "使用中" in overview.text


def test_live_test_returns_json_and_a_failure_names_cause_and_remedy(
    ctx: Context, owner: TestClient, smtpd_factory: Callable[..., SmtpServer]
) -> None:
    bad = smtpd_factory(auth={"shop@example.jp": "other"}, auth_required=True, auth_reply=GMAIL_BAD_CREDENTIALS)
    token = csrf_of(owner.get(PAGE).text)
    r = owner.post(PAGE + "/test", data={"csrf": token, **form(bad, preset="gmail")},
                   headers={"Accept": "application/json"})
    assert r.status_code == 200
    out = r.json()
    assert out["ok"] is False and out["proof"] is None
    assert "✗" in out["html"] and "認証 (AUTH)" in out["html"]
    assert re.search(r'class="category">(auth_failed|app_password_required)<', out["html"])
    assert "対処方法" in out["html"] and "アプリ" in out["html"]  # the Japanese remedy: an app password
    assert "535" in out["html"]  # the server's reply
    assert SMTP_PASSWORD not in out["html"]

    r = owner.post(PAGE + "/test", data={"csrf": token, **form(bad, port="abc", from_email="not an address")},
                   headers={"Accept": "application/json", "Accept-Language": "en"})
    assert r.status_code == 422
    fields = r.json()["fields"]
    assert set(fields) >= {"port"} and "465" in fields["port"]

    r = owner.post(PAGE + "/test", data={"csrf": "nope", **form(bad)}, headers={"Accept": "application/json"})
    assert r.status_code == 403 and "フォームの有効期限" in r.json()["error"]


def test_json_test_proof_saves(ctx: Context, owner: TestClient, server: SmtpServer) -> None:
    token = csrf_of(owner.get(PAGE).text)
    out = owner.post(PAGE + "/test", data={"csrf": token, **form(server)},
                     headers={"Accept": "application/json"}).json()
    assert out["ok"] is True and out["proof"]
    r = owner.post(PAGE + "/save", data={"csrf": token, **form(server, activate=""), "proof": out["proof"]},
                   follow_redirects=False)
    assert r.status_code == 303 and "notice=smtp_saved" in r.headers["location"]
    with ctx.db.session() as s:
        tenant = s.get(Tenant, "acme")
        assert tenant is not None and tenant.mode == "default"  # not activated: the box was unticked


def test_failing_banner_quota_and_removal(ctx: Context, owner: TestClient, server: SmtpServer) -> None:
    token = csrf_of(owner.get(PAGE).text)
    out = owner.post(PAGE + "/test", data={"csrf": token, **form(server, daily_limit="100")},
                     headers={"Accept": "application/json"}).json()
    owner.post(PAGE + "/save", data={"csrf": token, **form(server, daily_limit="100"), "proof": out["proof"]})
    page = owner.get(PAGE)
    assert "本日の残り送信数" in page.text and "100 通中 100 通" in page.text
    with ctx.db.session() as s:
        cfg = s.scalar(select(SmtpConfig))
        assert cfg is not None
        config_id = cfg.id
    smtp_service.note_live_failure(
        ctx, config_id=config_id, category=Category.AUTH_FAILED,
        remedy={"en": "Enter the current app password.", "ja": "現在のアプリパスワードを入力してください。"},
        retry_after_seconds=None,
    )
    page = owner.get(PAGE)
    assert "あなたのサーバーからの送信が停止しています" in page.text
    assert "現在のアプリパスワードを入力してください。" in page.text and "保留されています" in page.text
    en = owner.get(PAGE, headers={"Accept-Language": "en"})
    assert "Sending through your server has stopped" in en.text and "Enter the current app password." in en.text
    assert "送信エラー" in owner.get("/t/acme/settings/email").text

    r = owner.post(PAGE + "/remove", data={"csrf": token}, follow_redirects=False)
    assert r.status_code == 303
    with ctx.db.session() as s:
        assert s.scalar(select(SmtpConfig)) is None
        tenant = s.get(Tenant, "acme")
        assert tenant is not None and tenant.mode == "default"


def test_lower_plan_sees_an_upgrade_note(ctx: Context, app_client: TestClient) -> None:
    create_tenant(ctx, tenant_id="small", name="Small shop", plan="free")
    make_user(ctx, "owner@small.example", tenant="small")
    sign_in(app_client, "owner@small.example")
    page = app_client.get("/t/small/settings/email/smtp")
    assert page.status_code == 403
    assert "上位プランで利用できます" in page.text and "「pro」プラン以上" in page.text
    assert 'name="host"' not in page.text
    r = app_client.post("/t/small/settings/email/smtp/test", data={
        "csrf": csrf_of(page.text), "host": "127.0.0.1", "port": "25", "security": "none",
        "from_email": "a@example.jp", "to": "b@example.jp"})
    assert r.status_code == 403 and 'name="host"' not in r.text


def test_preset_without_javascript_fills_the_form(ctx: Context, owner: TestClient) -> None:
    page = owner.get(PAGE + "?preset=microsoft365", headers={"Accept-Language": "en"})
    assert 'name="host" value="smtp.office365.com"' in page.text
    assert 'name="port" value="587"' in page.text
    assert re.search(r'<option value="starttls" selected>', page.text)
    assert "Authenticated SMTP" in page.text
    ja = owner.get(PAGE + "?preset=gmail")
    assert "アプリ パスワード" in ja.text and 'name="host" value="smtp.gmail.com"' in ja.text
