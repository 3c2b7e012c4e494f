"""The SMTP test is not a scanner: private or reserved hosts and ports the operator did not allow answer 422
problem+json saying why, and nothing is connected to or logged; at most 10 tests a minute per tenant (429 with
Retry-After, counted in the database); saving applies the same checks; the web UI words the refusals."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from letterhead.context import Context
from letterhead.models import Message, RateHit
from letterhead.tenants import create_tenant
from tests.conftest import auth
from tests.support.smtpd import SmtpServer
from tests.support.web import csrf_of, make_user, sign_in

TEST_URL = "/v1/tenants/acme/smtp/test"


def body(port: int, **over: Any) -> dict[str, Any]:
    values: dict[str, Any] = {"host": "127.0.0.1", "port": port, "security": "none", "from_email": "shop@example.jp",
                              "to": "owner@example.jp"}
    values.update(over)
    return values


def messages(ctx: Context) -> int:
    with ctx.db.session() as s:
        return int(s.scalar(select(func.count()).select_from(Message)) or 0)


def test_private_hosts_answer_422_and_log_nothing(
    ctx: Context, app_client: TestClient, acme_key: str, smtp_server: SmtpServer
) -> None:
    ctx.settings.allow_private_smtp_hosts = False
    cases = {
        "127.0.0.1": "127.0.0.1 is the loopback address.",
        "127.1": "127.1 is the loopback address 127.0.0.1 written short.",
        "2130706433": "written as a single number",
        "0177.0.0.1": "written in octal",
        "0x7f.0.0.1": "written in hexadecimal",
        "0.0.0.0": "the unspecified address",
        "169.254.169.254": "cloud metadata",
        "[::1]": "the loopback address",
        "::ffff:127.0.0.1": "IPv4-mapped address of 127.0.0.1",
        "2002:7f00:1::": "6to4 address embedding 127.0.0.1",
        "64:ff9b::a00:1": "NAT64 address embedding 10.0.0.1",
        "fec0::1": "site-local",
        "fd12:3456::1": "unique local",
        "fe80::1": "link-local",
        "localhost": "localhost resolves to",
    }
    for host, words in cases.items():
        r = app_client.post(TEST_URL, json=body(smtp_server.port, host=host), headers=auth(acme_key))
        assert r.status_code == 422, (host, r.text)
        assert r.headers["content-type"] == "application/problem+json"
        assert words in r.json()["detail"], (host, r.json())
        assert r.json()["errors"][0]["field"] == "host"
    assert smtp_server.connections == 0
    assert messages(ctx) == 0
    # Saving applies the same checks.
    r = app_client.put("/v1/tenants/acme/smtp", json=body(smtp_server.port, host="127.1") | {"proof": "x"},
                       headers=auth(acme_key))
    assert r.status_code == 422 and "written short" in r.json()["detail"]


def test_only_allowed_ports_are_tried(
    ctx: Context, app_client: TestClient, acme_key: str, smtp_server: SmtpServer
) -> None:
    ctx.settings.smtp_allowed_ports = "25,465,587,2525"
    r = app_client.post(TEST_URL, json=body(smtp_server.port), headers=auth(acme_key))
    assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json"
    assert f"Port {smtp_server.port} is not one Letterhead connects to" in r.json()["detail"]
    assert r.json()["errors"][0]["field"] == "port"
    assert smtp_server.connections == 0 and messages(ctx) == 0
    ctx.settings.smtp_allowed_ports = f"587,{smtp_server.port}"
    r = app_client.post(TEST_URL, json=body(smtp_server.port), headers=auth(acme_key))
    assert r.status_code == 200 and r.json()["ok"], r.text
    assert messages(ctx) == 1


def test_at_most_ten_tests_a_minute_per_tenant(
    ctx: Context, app_client: TestClient, acme_key: str, smtp_server: SmtpServer
) -> None:
    for _ in range(10):
        r = app_client.post(TEST_URL, json=body(smtp_server.port), headers=auth(acme_key))
        assert r.status_code == 200 and r.json()["ok"], r.text
    r = app_client.post(TEST_URL, json=body(smtp_server.port), headers=auth(acme_key))
    assert r.status_code == 429, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert 1 <= int(r.headers["Retry-After"]) <= 60
    assert "At most 10 SMTP tests a minute" in r.json()["detail"]
    assert messages(ctx) == 10 and len(smtp_server.messages) == 10
    with ctx.db.session() as s:  # kept in the database: every process sees the same count
        assert s.scalar(select(func.count()).where(RateHit.key == "smtp-test:acme")) == 10
    # Another tenant has its own allowance.
    create_tenant(ctx, tenant_id="other", name="Other", plan="pro")
    from letterhead.tenants import create_api_key

    other = create_api_key(ctx, tenant_id="other").key
    r = app_client.post("/v1/tenants/other/smtp/test", json=body(smtp_server.port), headers=auth(other))
    assert r.status_code == 200, r.text


@pytest.mark.parametrize(("lang", "words"), [
    ("ja", "127.0.0.1 はループバックアドレス（このサーバー自身）です。Letterhead は公開されたメールサーバーにのみ接続します"),
    ("en", "127.1 is the loopback address 127.0.0.1 written short."),
])
def test_web_ui_words_the_refusals(
    ctx: Context, app_client: TestClient, acme: str, smtp_server: SmtpServer, lang: str, words: str
) -> None:
    ctx.settings.allow_private_smtp_hosts = False
    make_user(ctx, "owner@acme.example", tenant=acme)
    sign_in(app_client, "owner@acme.example")
    app_client.cookies.set("lh_lang", lang)
    page = "/t/acme/settings/email/smtp"
    data = {"preset": "custom", "host": "127.1", "port": str(smtp_server.port), "security": "none", "username": "",
            "password": "", "from_email": "shop@example.jp", "from_name": "", "reply_to": "", "daily_limit": "",
            "per_minute_limit": "", "verify_tls": "1", "to": "owner@example.jp"}
    r = app_client.post(page + "/test", data={"csrf": csrf_of(app_client.get(page).text), **data})
    assert r.status_code == 422
    assert words in r.text
    ctx.settings.allow_private_smtp_hosts = True
    ctx.settings.smtp_allowed_ports = "587"
    r = app_client.post(page + "/test", data={"csrf": csrf_of(app_client.get(page).text), **data})
    assert r.status_code == 422
    assert {"ja": f"ポート {smtp_server.port} には接続できません。587 のいずれか", "en": f"Port {smtp_server.port} is not one"}[lang] in r.text
    ctx.settings.smtp_allowed_ports = "*"
    for _ in range(10):
        assert app_client.post(page + "/test", data={"csrf": csrf_of(app_client.get(page).text), **data}).status_code == 200
    r = app_client.post(page + "/test", data={"csrf": csrf_of(app_client.get(page).text), **data})
    assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1
    assert {"ja": "テストメールの送信回数が多すぎます", "en": "Too many test emails: at most 10 a minute."}[lang] in r.text
    assert messages(ctx) == 10
