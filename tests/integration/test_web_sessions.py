"""Sign-in limits kept in the database (per address, per account; trusted proxies only) and server-side
sessions (logout, new password, `letterhead user disable`) — through the real app, on SQLite and PostgreSQL."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from letterhead.api.app import create_app
from letterhead.context import Context
from letterhead.devinbox import DevInbox
from letterhead.models import RateHit, User
from letterhead.models import WebSession as SessionRow
from letterhead.users import reset_link
from tests.support.processes import worker_env
from tests.support.web import PASSWORD, csrf_of, make_user, sign_in

PROXY = "127.0.0.1"
CLI = [sys.executable, "-c", "from letterhead.cli import main; main()", "user"]


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"trusted_proxies": "127.0.0.1, ::1"}


def client_at(ctx: Context, host: str, inbox: DevInbox | None = None) -> TestClient:
    return TestClient(create_app(ctx, dev_inbox=inbox), client=(host, 40000), raise_server_exceptions=False)


def attempt(client: TestClient, email: str, password: str, *, via: str | None = None, lang: str = "ja") -> Any:
    headers = {"Accept-Language": lang} | ({"X-Forwarded-For": via} if via else {})
    page = client.get("/login", headers=headers)
    return client.post("/login", headers=headers, follow_redirects=False,
                       data={"csrf": csrf_of(page.text), "email": email, "password": password})


def ip_keys(ctx: Context) -> set[str]:
    with ctx.db.session() as s:
        return {k for k in s.scalars(select(RateHit.key)) if k.startswith("signin-ip:")}


def test_forwarded_for_counts_only_from_a_trusted_proxy(ctx: Context, acme: str) -> None:
    with client_at(ctx, "203.0.113.9") as direct:
        # A spoofed header per attempt from an untrusted peer: the key stays the peer's address, so the
        # per-address limit (20) answers 429 however many addresses are claimed.
        for i in range(20):
            assert attempt(direct, f"u{i}@acme.example", "wrong password!!", via=f"198.51.100.{i}").status_code == 401
        assert ip_keys(ctx) == {"signin-ip:203.0.113.9"}
        r = attempt(direct, "other@acme.example", "wrong password!!", via="198.51.100.99")
        assert r.status_code == 429 and int(r.headers["retry-after"]) > 60
    with client_at(ctx, PROXY) as proxied:
        r = attempt(proxied, "x@acme.example", "wrong password!!", via="6.6.6.6, 198.51.100.7")
        assert r.status_code == 401
        assert "signin-ip:198.51.100.7" in ip_keys(ctx) and "signin-ip:6.6.6.6" not in ip_keys(ctx)
        assert "signin-ip:127.0.0.1" not in ip_keys(ctx)


def test_account_lock_holds_across_addresses_and_restarts(ctx: Context, acme: str) -> None:
    make_user(ctx, "owner@acme.example", tenant=acme)
    with client_at(ctx, PROXY) as proxied:
        for i in range(5):  # each guess from another address
            assert attempt(proxied, "owner@acme.example", "not the password", via=f"198.51.100.{i}").status_code == 401
        # Locked: the right password is refused too, from a fresh address.
        r = attempt(proxied, "Owner@Acme.example", PASSWORD, via="192.0.2.200")
        assert r.status_code == 429
        assert "15 分後にもう一度お試しください" in r.text
        r = attempt(proxied, "owner@acme.example", PASSWORD, via="192.0.2.201", lang="en")
        assert r.status_code == 429 and "too many attempts, try again in 15 min" in r.text
        # Another account is not locked by it.
        make_user(ctx, "admin@acme.example", tenant=acme)
        assert attempt(proxied, "admin@acme.example", PASSWORD, via="192.0.2.202").status_code == 303
    restarted = Context.create(ctx.settings)  # a new process on the same database
    try:
        with client_at(restarted, "198.51.100.250") as again:
            assert attempt(again, "owner@acme.example", PASSWORD).status_code == 429
    finally:
        restarted.close()


def _session_cookie(client: TestClient) -> str:
    value = client.cookies.get("lh_session")
    assert value
    return value


def test_logout_ends_a_copied_cookie(ctx: Context, app_client: TestClient, acme: str, inbox: DevInbox) -> None:
    make_user(ctx, "owner@acme.example", tenant=acme)
    assert sign_in(app_client, "owner@acme.example").status_code == 303
    copied = _session_cookie(app_client)
    with ctx.db.session() as s:
        rows = list(s.scalars(select(SessionRow)))
    assert len(rows) == 1 and rows[0].ended_at is None and len(rows[0].id) == 64
    with client_at(ctx, "198.51.100.5", inbox) as thief:
        thief.cookies.set("lh_session", copied)
        assert thief.get("/t/acme/logs", follow_redirects=False).status_code == 200
        token = csrf_of(app_client.get("/t/acme/logs").text)
        assert app_client.post("/logout", data={"csrf": token}, follow_redirects=False).status_code == 303
        r = thief.get("/t/acme/logs", follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].startswith("/login")
    with ctx.db.session() as s:
        row = s.get(SessionRow, rows[0].id)
        assert row is not None and row.ended_at is not None


def test_new_password_ends_other_sessions(ctx: Context, app_client: TestClient, acme: str, inbox: DevInbox) -> None:
    make_user(ctx, "owner@acme.example", tenant=acme)
    with client_at(ctx, "198.51.100.6", inbox) as laptop:
        assert sign_in(laptop, "owner@acme.example").status_code == 303
        assert laptop.get("/t/acme/logs", follow_redirects=False).status_code == 200
        path = "/set-password/" + reset_link(ctx, email="owner@acme.example", tenant_id=acme).rsplit("/", 1)[1]
        token = csrf_of(app_client.get(path).text)
        new = "another long password"
        r = app_client.post(path, data={"csrf": token, "password": new, "password2": new}, follow_redirects=False)
        assert r.status_code == 303
        assert app_client.get("/t/acme/logs", follow_redirects=False).status_code == 200  # the new session
        assert laptop.get("/t/acme/logs", follow_redirects=False).status_code == 303  # the old one ended


def _cli(ctx: Context, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, env=worker_env(ctx.settings), timeout=60)


def test_user_disable_ends_sessions_and_sign_ins(ctx: Context, app_client: TestClient, acme: str) -> None:
    make_user(ctx, "owner@acme.example", tenant=acme)
    assert sign_in(app_client, "owner@acme.example").status_code == 303
    assert app_client.get("/t/acme/logs", follow_redirects=False).status_code == 200

    run = _cli(ctx, "disable", "owner@acme.example", "--tenant", "acme")
    assert run.returncode == 0, run.stderr
    assert "disabled owner@acme.example" in run.stdout and "1 signed-in session(s) ended" in run.stdout
    assert app_client.get("/t/acme/logs", follow_redirects=False).status_code == 303
    r = sign_in(app_client, "owner@acme.example")  # the right password: the same answer as a wrong one
    assert r.status_code == 401 and "無効" in r.text
    wrong = sign_in(app_client, "owner@acme.example", "wrong password!!")
    assert wrong.status_code == 401 and wrong.text.count("無効") == r.text.count("無効")
    with ctx.db.session() as s:
        user = s.scalar(select(User).where(User.email == "owner@acme.example"))
        assert user is not None and user.disabled_at is not None

    unknown = _cli(ctx, "disable", "nobody@acme.example")
    assert unknown.returncode != 0 and "No user nobody@acme.example" in unknown.stderr

    run = _cli(ctx, "enable", "owner@acme.example")
    assert run.returncode == 0 and "enabled owner@acme.example" in run.stdout
    assert sign_in(app_client, "owner@acme.example").status_code == 303



def test_session_cookie_is_secure_over_https_behind_a_trusted_proxy(ctx: Context, acme: str) -> None:
    with client_at(ctx, PROXY) as proxied:
        r = proxied.get("/login", headers={"X-Forwarded-Proto": "https", "X-Forwarded-For": "198.51.100.8"})
        assert "Secure" in r.headers["set-cookie"]
        assert "Secure" not in proxied.get("/login").headers["set-cookie"]
    with client_at(ctx, "203.0.113.9") as direct:  # an untrusted peer cannot claim https
        assert "Secure" not in direct.get("/login", headers={"X-Forwarded-Proto": "https"}).headers["set-cookie"]
