"""Web UI sign-in, sessions, CSRF, rate limiting, roles, tenant isolation and language — through the real app
(TestClient), on SQLite and PostgreSQL."""

from __future__ import annotations

import subprocess
import sys

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from letterhead.context import Context
from letterhead.models import Message, Tenant, User, new_id, utcnow
from letterhead.tenants import create_tenant
from letterhead.users import create_user
from tests.support.processes import worker_env
from tests.support.web import PASSWORD, csrf_of, make_user, post_form, sign_in


@pytest.fixture
def beta(ctx: Context) -> str:
    create_tenant(ctx, tenant_id="beta", name="Beta Inc.", plan="pro", locale="en")
    return "beta"


def test_sign_in_redirects_back_and_sign_out(ctx: Context, app_client: TestClient, acme: str) -> None:
    make_user(ctx, "owner@acme.example", tenant=acme)
    r = app_client.get("/t/acme/logs", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login?next=%2Ft%2Facme%2Flogs")

    r = sign_in(app_client, "Owner@Acme.example", next="/t/acme/logs")
    assert r.status_code == 303 and r.headers["location"] == "/t/acme/logs"
    cookie = r.headers["set-cookie"]
    assert "lh_session=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie.replace("Lax", "lax")
    page = app_client.get("/t/acme/logs", headers={"Accept-Language": "ja"})
    assert page.status_code == 200 and "メールログ" in page.text and "ACME 株式会社" in page.text

    # An open redirect is not possible through ?next.
    r = sign_in(app_client, "owner@acme.example", next="//evil.example/")
    assert r.headers["location"] == "/t/acme/settings/email"

    # Signing in again began a new session: the old page's token is void, a fresh page's token works.
    assert app_client.post("/logout", data={"csrf": csrf_of(page.text)}).status_code == 403
    token = csrf_of(app_client.get("/t/acme/logs").text)
    r = app_client.post("/logout", data={"csrf": token}, follow_redirects=False)
    assert r.status_code == 303
    assert app_client.get("/t/acme/logs", follow_redirects=False).status_code == 303


def test_wrong_password_and_forged_cookie(ctx: Context, app_client: TestClient, acme: str) -> None:
    make_user(ctx, "owner@acme.example", tenant=acme)
    r = sign_in(app_client, "owner@acme.example", "wrong password!!")
    assert r.status_code == 401
    assert "メールアドレスまたはパスワードが正しくありません" in r.text
    r = sign_in(app_client, "nobody@acme.example", "whatever password")
    assert r.status_code == 401
    app_client.cookies.set("lh_session", "forged.value.here")
    assert app_client.get("/t/acme/logs", follow_redirects=False).status_code == 303


def test_set_password_link_is_single_use(ctx: Context, app_client: TestClient, acme: str) -> None:
    created = create_user(ctx, email="new@acme.example", tenant_id=acme, role="admin")
    assert created.link.startswith(ctx.settings.public_url + "/set-password/")
    path = "/set-password/" + created.link.rsplit("/", 1)[1]
    page = app_client.get(path)
    assert page.status_code == 200 and "new@acme.example" in page.text
    token = csrf_of(page.text)
    r = app_client.post(path, data={"csrf": token, "password": "a" * 12, "password2": "b" * 12})
    assert r.status_code == 422 and "一致しません" in r.text
    r = app_client.post(path, data={"csrf": token, "password": "short", "password2": "short"})
    assert r.status_code == 422 and "10" in r.text
    r = app_client.post(path, data={"csrf": token, "password": PASSWORD, "password2": PASSWORD},
                        follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/t/acme/settings/email"
    assert app_client.get("/t/acme/settings/email").status_code == 200
    again = app_client.get(path)
    assert again.status_code == 404 and "letterhead user reset" in again.text
    with ctx.db.session() as s:
        user = s.scalar(select(User).where(User.email == "new@acme.example"))
        assert user is not None and user.setup_token_hash is None
        assert user.password_hash and PASSWORD not in user.password_hash


def test_csrf_is_required_and_bound_to_the_session(ctx: Context, app_client: TestClient, acme: str,
                                                     inbox: object) -> None:
    from letterhead.api.app import create_app

    make_user(ctx, "owner@acme.example", tenant=acme)
    assert app_client.post("/login", data={"email": "owner@acme.example", "password": PASSWORD}).status_code == 403
    sign_in(app_client, "owner@acme.example")
    r = app_client.post("/t/acme/settings/email/mode", data={"mode": "default"})
    assert r.status_code == 403 and "フォームの有効期限が切れました" in r.text
    # A token from another browser's session is refused too.
    with TestClient(create_app(ctx)) as other:
        foreign = csrf_of(other.get("/login").text)
    r = app_client.post("/t/acme/settings/email/mode", data={"mode": "default", "csrf": foreign})
    assert r.status_code == 403


def test_sign_in_is_rate_limited(ctx: Context, app_client: TestClient, acme: str) -> None:
    make_user(ctx, "owner@acme.example", tenant=acme)
    for _ in range(5):
        assert sign_in(app_client, "owner@acme.example", "not the password").status_code == 401
    r = sign_in(app_client, "owner@acme.example")  # even the right password waits
    assert r.status_code == 429
    assert int(r.headers["retry-after"]) > 200
    assert "ログインの失敗が多すぎます" in r.text and "分" in r.text
    r = app_client.post("/login", headers={"Accept-Language": "en"}, data={
        "csrf": csrf_of(app_client.get("/login").text), "email": "owner@acme.example", "password": "x" * 12})
    assert r.status_code == 429 and "Too many failed sign-ins" in r.text and "min" in r.text


def test_viewer_can_look_but_not_change(ctx: Context, app_client: TestClient, acme: str) -> None:
    make_user(ctx, "viewer@acme.example", tenant=acme, role="viewer")
    sign_in(app_client, "viewer@acme.example")
    page = app_client.get("/t/acme/settings/email/smtp")
    assert page.status_code == 200 and "閲覧のみの権限" in page.text
    assert "<fieldset disabled>" in page.text
    r = post_form(app_client, "/t/acme/settings/email", "/t/acme/settings/email/mode", {"mode": "default"})
    assert r.status_code == 403 and "閲覧者の権限では設定を変更できない" in r.text
    r = post_form(app_client, "/t/acme/settings/email/smtp", "/t/acme/settings/email/smtp/test", {
        "host": "127.0.0.1", "port": "25", "security": "none", "from_email": "a@example.jp", "to": "b@example.jp"})
    assert r.status_code == 403


def _message(ctx: Context, tenant: str, subject: str) -> str:
    mid = new_id("msg_")
    now = utcnow()
    with ctx.db.session() as s:
        s.add(Message(id=mid, tenant_id=tenant, kind="notification", to_addrs=["x@example.com"],
                      to_first="x@example.com", subject=subject, status="sent", expires_at=now))
    return mid


def test_tenant_isolation_and_platform_admin(ctx: Context, app_client: TestClient, acme: str, beta: str) -> None:
    beta_msg = _message(ctx, beta, "Beta secret order")
    make_user(ctx, "owner@acme.example", tenant=acme)
    make_user(ctx, "ops@platform.example", tenant=None)
    sign_in(app_client, "owner@acme.example")
    for path in ("/t/beta/settings/email", "/t/beta/settings/email/smtp", "/t/beta/logs",
                 f"/t/beta/logs/{beta_msg}", "/t/nope/logs"):
        r = app_client.get(path)
        assert r.status_code == 404, path
        assert "Beta Inc." not in r.text
    r = app_client.get(f"/t/acme/logs/{beta_msg}")
    assert r.status_code == 404 and "Beta secret order" not in r.text
    assert "Beta secret order" not in app_client.get("/t/acme/logs").text
    r = post_form(app_client, "/t/acme/settings/email", "/t/beta/settings/email/mode", {"mode": "default"})
    assert r.status_code == 404
    assert app_client.get("/tenants").status_code == 403

    app_client.cookies.clear()
    r = sign_in(app_client, "ops@platform.example")
    assert r.headers["location"] == "/tenants"
    listing = app_client.get("/tenants")
    assert "ACME 株式会社" in listing.text and "Beta Inc." in listing.text
    assert "Beta secret order" in app_client.get("/t/beta/logs").text
    assert app_client.get("/t/acme/settings/email").status_code == 200


def test_language_from_accept_language_and_switch(ctx: Context, app_client: TestClient, acme: str) -> None:
    make_user(ctx, "owner@acme.example", tenant=acme)
    sign_in(app_client, "owner@acme.example")
    en = app_client.get("/t/acme/settings/email", headers={"Accept-Language": "en-US,en;q=0.9,ja;q=0.5"})
    assert '<html lang="en">' in en.text and "Email settings" in en.text and "Most preferred" in en.text
    ja = app_client.get("/t/acme/settings/email", headers={"Accept-Language": "ja,en;q=0.5"})
    assert '<html lang="ja">' in ja.text and "メール設定" in ja.text and "最も推奨" in ja.text
    r = app_client.get("/lang/en", params={"next": "/t/acme/logs"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/t/acme/logs"
    page = app_client.get("/t/acme/logs", headers={"Accept-Language": "ja"})
    assert "Email logs" in page.text
    assert app_client.get("/lang/en", params={"next": "https://evil.example"},
                          follow_redirects=False).headers["location"] == "/"


def test_mode_switch_explains_what_is_missing(ctx: Context, app_client: TestClient, acme: str) -> None:
    make_user(ctx, "owner@acme.example", tenant=acme)
    sign_in(app_client, "owner@acme.example")
    r = post_form(app_client, "/t/acme/settings/email", "/t/acme/settings/email/mode", {"mode": "smtp"})
    assert r.status_code == 409 and "カスタムメール設定" in r.text and "テストメール" in r.text
    create_tenant(ctx, tenant_id="small", name="Small shop", plan="free")
    make_user(ctx, "owner@small.example", tenant="small")
    app_client.cookies.clear()
    sign_in(app_client, "owner@small.example")
    page = app_client.get("/t/small/settings/email")
    assert "「pro」プラン以上で利用できます" in page.text
    r = post_form(app_client, "/t/small/settings/email", "/t/small/settings/email/mode", {"mode": "smtp"})
    assert r.status_code == 409 and "pro" in r.text
    with ctx.db.session() as s:
        tenant = s.get(Tenant, "small")
        assert tenant is not None and tenant.mode == "default"


def test_cli_user_create_prints_the_one_time_link(ctx: Context, acme: str) -> None:
    env = worker_env(ctx.settings, LETTERHEAD_PUBLIC_URL="https://mail.example.com")
    cli = [sys.executable, "-c", "from letterhead.cli import main; main()", "user", "create"]
    run = subprocess.run([*cli, "--tenant", "acme", "--email", "a@acme.example", "--role", "viewer"],
                         capture_output=True, text=True, env=env, timeout=60)
    assert run.returncode == 0, run.stderr
    link = run.stdout.strip().splitlines()[-1]
    assert link.startswith("https://mail.example.com/set-password/")
    with ctx.db.session() as s:
        user = s.scalar(select(User).where(User.email == "a@acme.example"))
        assert user is not None and user.role == "viewer" and user.tenant_id == "acme"
    # Neither a tenant nor --platform-admin: a usage error. The same user twice: a clear error.
    assert subprocess.run([*cli, "--email", "b@acme.example"], capture_output=True, text=True, env=env,
                          timeout=60).returncode == 2
    dup = subprocess.run([*cli, "--tenant", "acme", "--email", "a@acme.example"], capture_output=True, text=True,
                         env=env, timeout=60)
    assert dup.returncode == 1 and "already" in dup.stderr
