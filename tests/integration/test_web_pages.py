"""Email authentication and notification pages through the app (TestClient), on SQLite and PostgreSQL: plan
gating, validation messages, the template editor's save / error / revert, roles."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from letterhead.context import Context
from letterhead.tenants import create_tenant
from tests.support.dnsserver import LocalDnsServer
from tests.support.web import csrf_of, make_user, post_form, sign_in

ZONE: dict[str, Any] = {
    "mx.mail.example": [("A", "93.184.215.14")],
    "yamada.example": [("MX", "10 mx.mail.example.")],
    "_dmarc.yamada.example": [("TXT", "v=DMARC1; p=reject")],
}
AUTH = "/t/acme/settings/email/authentication"


@pytest.fixture
def settings_overrides(dns_server: LocalDnsServer) -> dict[str, Any]:
    dns_server.set_zone(ZONE)
    return {"dns_nameservers": dns_server.setting}


@pytest.fixture
def owner(ctx: Context, app_client: TestClient, acme: str) -> TestClient:
    make_user(ctx, "owner@acme.example", tenant=acme)
    sign_in(app_client, "owner@acme.example")
    return app_client


def test_verification_request_pending_state_and_dmarc_warning(owner: TestClient) -> None:
    r = post_form(owner, AUTH, AUTH + "/send", {"email": "not-an-address", "name": ""})
    assert r.status_code == 422 and "印の付いた項目" in r.text and 'aria-invalid="true"' in r.text
    r = post_form(owner, AUTH, AUTH + "/send", {"email": "shop@nowhere-at-all.example", "name": ""})
    assert r.status_code == 422 and "nowhere-at-all.example は存在しません" in r.text
    r = post_form(owner, AUTH, AUTH + "/send", {"email": "shop@yamada.example", "name": "山田商店"})
    assert r.status_code == 303 and "notice=verification_sent" in r.headers["location"]
    page = owner.get(AUTH)
    assert "確認待ち" in page.text and "確認メールを再送信" in page.text and "shop@yamada.example" in page.text
    # p=reject and the domain not authenticated: the page says the mail goes "via" the platform.
    assert "DMARC" in page.text and "via" in page.text
    r = post_form(owner, AUTH, AUTH + "/resend", {})
    assert r.status_code == 429 and "後にもう一度お試しください" in r.text
    en = owner.post(AUTH + "/resend", data={"csrf": csrf_of(page.text)}, headers={"Accept-Language": "en"})
    assert en.status_code == 429 and "Wait" in en.text


def test_lower_plan_sees_upgrade_note_for_branded(ctx: Context, app_client: TestClient) -> None:
    create_tenant(ctx, tenant_id="small", name="Small shop", plan="free")
    make_user(ctx, "owner@small.example", tenant="small")
    sign_in(app_client, "owner@small.example")
    page = app_client.get("/t/small/settings/email/authentication")
    assert page.status_code == 403 and "「pro」プラン以上" in page.text and 'name="email"' not in page.text


def test_template_editor_save_error_revert(owner: TestClient) -> None:
    editor = "/t/acme/notifications/order.shipped"
    page = owner.get(editor + "?locale=en")
    assert page.status_code == 200 and 'name="subject"' in page.text and "<iframe" in page.text
    token = csrf_of(page.text)
    r = owner.post(editor + "/save", data={"csrf": token, "locale": "en", "subject": "Shipped {{ data.order_number }}",
                                           "html": "<p>{% if %}</p>", "text": ""})
    assert r.status_code == 422 and "テンプレートにエラーがあります" in r.text and "保存されていません" in r.text
    preview = owner.post(editor + "/preview", headers={"Accept": "application/json"},
                         data={"csrf": token, "locale": "en", "subject": "Shipped {{ data.order_number }}",
                               "html": "<p>Hello {{ data.customer_name }}</p>", "text": ""})
    assert preview.status_code == 200 and preview.json()["ok"] is True
    assert preview.json()["subject"].startswith("Shipped ")
    r = owner.post(editor + "/save", follow_redirects=False, data={
        "csrf": token, "locale": "en", "subject": "Shipped {{ data.order_number }}",
        "html": "<p>Hello {{ data.customer_name }}</p>", "text": ""})
    assert r.status_code == 303
    listing = owner.get("/t/acme/notifications", headers={"Accept-Language": "en"})
    assert "Customized: English" in listing.text
    r = owner.post(editor + "/revert", data={"csrf": token, "locale": "en"}, follow_redirects=False)
    assert r.status_code == 303
    assert "Customized" not in owner.get("/t/acme/notifications", headers={"Accept-Language": "en"}).text
    r = owner.post("/t/acme/notifications/order.shipped/enabled", data={"csrf": token, "enabled": "0"},
                   follow_redirects=False)
    assert r.status_code == 303
    assert 'id="ev-order.shipped"' in owner.get("/t/acme/notifications").text
    assert owner.get("/t/acme/notifications/no.such.event").status_code == 404


def test_viewer_cannot_change_templates(ctx: Context, app_client: TestClient, acme: str) -> None:
    make_user(ctx, "viewer@acme.example", tenant=acme, role="viewer")
    sign_in(app_client, "viewer@acme.example")
    editor = "/t/acme/notifications/order.shipped"
    r = post_form(app_client, editor, editor + "/save", {"locale": "ja", "subject": "x", "html": "<p>x</p>"})
    assert r.status_code == 403
    r = post_form(app_client, "/t/acme/notifications", "/t/acme/notifications/order.shipped/enabled",
                  {"enabled": "0"})
    assert r.status_code == 403
    r = post_form(app_client, AUTH, AUTH + "/send", {"email": "shop@yamada.example"})
    assert r.status_code == 403
