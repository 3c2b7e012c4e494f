"""Suspending a tenant: its API answers 403, its mail is held (not lost) and goes out after resume (issue 18,
item 7). Runs on SQLite and PostgreSQL, against real SMTP servers on loopback."""

from __future__ import annotations

import copy
import subprocess
import sys
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import func, select

from letterhead.context import Context
from letterhead.devinbox import DevInbox
from letterhead.emails import accept_email
from letterhead.models import Attempt, Message, SenderMode, SmtpConfig, Tenant
from letterhead.notifications.events import EVENTS
from letterhead.tenants import SUSPENDED_CATEGORY, create_api_key, create_tenant, set_suspended
from tests.conftest import auth, deliver
from tests.support.processes import worker_env
from tests.support.smtpd import SmtpServer


def notification(to: str = "hanako@example.com") -> dict[str, object]:
    return {"event": "order.created", "to": to, "data": copy.deepcopy(EVENTS["order.created"].example)}


def email_body() -> dict[str, object]:
    return {"to": ["hanako@example.com"], "subject": "件名", "text": "本文"}


def assert_suspended(r: Response) -> None:
    response = r.json()
    assert r.status_code == 403, response
    assert r.headers["content-type"].startswith("application/problem+json")
    assert response["title"] == "Tenant suspended" and response["type"].endswith("/tenant-suspended")
    assert "platform operator" in response["detail"] and "held" in response["detail"]


def test_a_suspended_tenants_keys_get_403(ctx: Context, app_client: TestClient, acme: str, acme_key: str,
                                          platform_key: str) -> None:
    h = auth(acme_key)
    url = "/v1/tenants/acme/notifications"
    # Warm the key cache and the notification fast path first: suspension must not wait for them.
    for _ in range(2):
        assert app_client.post(url, json=notification(), headers=h).status_code == 202
    set_suspended(ctx, tenant_id="acme", suspended=True)
    assert_suspended(app_client.post(url, json=notification(), headers=h))
    assert_suspended(app_client.post(url + "/batch", json={"notifications": [notification()]}, headers=h))
    assert_suspended(app_client.post("/v1/tenants/acme/emails", json=email_body(), headers=h))
    assert_suspended(app_client.get("/v1/tenants/acme", headers=h))
    assert_suspended(app_client.get("/v1/tenants/acme/messages", headers=h))

    # A platform key may still look at and change the tenant, but not send as it.
    p = auth(platform_key)
    got = app_client.get("/v1/tenants/acme", headers=p)
    assert got.status_code == 200 and got.json()["suspended_at"] is not None
    assert app_client.patch("/v1/tenants/acme", json={"name": "ACME"}, headers=p).status_code == 200
    assert app_client.get("/v1/tenants/acme/api-keys", headers=p).status_code == 200
    assert_suspended(app_client.post(url, json=notification(), headers=p))
    assert_suspended(app_client.post("/v1/tenants/acme/emails", json=email_body(), headers=p))
    assert_suspended(app_client.post("/v1/tenants/acme/smtp/test", headers=p, json={
        "host": "127.0.0.1", "port": 25, "security": "none", "from_email": "a@acme.example", "to": "b@example.com"}))
    with ctx.db.session() as s:
        assert s.scalar(select(func.count()).select_from(Message)) == 2  # the two before suspension only

    # Another tenant is unaffected; resuming lets acme's key in again (the row is read on each request).
    create_tenant(ctx, tenant_id="globex", name="Globex")
    other = create_api_key(ctx, tenant_id="globex").key
    assert app_client.post("/v1/tenants/globex/notifications", json=notification(), headers=auth(other)).status_code == 202
    set_suspended(ctx, tenant_id="acme", suspended=False)
    assert app_client.post("/v1/tenants/acme/emails", json=email_body(), headers=h).status_code == 202


def message(ctx: Context, mid: str) -> Message:
    with ctx.db.session() as s:
        m = s.get(Message, mid)
        assert m is not None
        s.expunge(m)
        return m


def attempts(ctx: Context, mid: str) -> int:
    with ctx.db.session() as s:
        return int(s.scalar(select(func.count()).select_from(Attempt).where(Attempt.message_id == mid)) or 0)


def make_all_due(ctx: Context) -> None:
    """As if the recheck interval had passed (the clock is the outside world here)."""
    from letterhead.models import utcnow

    with ctx.db.session() as s:
        for m in s.scalars(select(Message)):
            m.next_attempt_at = utcnow()


def test_mail_queued_before_suspension_is_held_then_sent_after_resume(
    ctx: Context, acme: str, inbox: DevInbox
) -> None:
    """The default route (the platform transport: the development inbox, a real aiosmtpd server)."""
    mid = accept_email(ctx, tenant_id="acme", to=["hanako@example.com"], subject="held", html=None, text="t").id
    set_suspended(ctx, tenant_id="acme", suspended=True)

    assert deliver(ctx) == 1
    held = message(ctx, mid)
    assert held.status == "deferred" and held.category == SUSPENDED_CATEGORY
    assert held.remedy and "resume" in held.remedy["en"] and "再開" in held.remedy["ja"]
    assert held.note and "suspended" in held.note
    assert attempts(ctx, mid) == 0 and inbox.messages() == []
    make_all_due(ctx)  # looked at again while still suspended: still held
    assert deliver(ctx) == 1
    assert message(ctx, mid).status == "deferred" and inbox.messages() == []

    set_suspended(ctx, tenant_id="acme", suspended=False)
    assert deliver(ctx) == 1  # due at once: resume does not wait for the recheck interval
    sent = message(ctx, mid)
    assert sent.status == "sent" and sent.category is None and sent.note is None
    [got] = inbox.messages()
    assert b"held" in got.raw


def test_mail_for_a_tenants_own_smtp_server_is_held_too(ctx: Context, acme: str, inbox: DevInbox,
                                                          smtpd_factory: Callable[..., SmtpServer]) -> None:
    server = smtpd_factory()
    with ctx.db.session() as s:
        s.add(SmtpConfig(tenant_id="acme", host="127.0.0.1", port=server.port, security="none",
                         from_email="shop@acme.example"))
        tenant = s.get(Tenant, "acme")
        assert tenant is not None
        tenant.mode = SenderMode.SMTP.value
    mids = [accept_email(ctx, tenant_id="acme", to=[f"c{i}@example.com"], subject=f"#{i}", html=None,
                         text="t").id for i in range(3)]
    set_suspended(ctx, tenant_id="acme", suspended=True)
    assert deliver(ctx) == 3
    assert server.messages == [] and server.connections == 0
    assert {message(ctx, m).category for m in mids} == {SUSPENDED_CATEGORY}
    set_suspended(ctx, tenant_id="acme", suspended=False)
    assert deliver(ctx) == 3
    assert sorted(r.rcpt_tos[0] for r in server.messages) == [f"c{i}@example.com" for i in range(3)]
    assert {message(ctx, m).status for m in mids} == {"sent"}


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_cli_suspends_and_resumes(ctx: Context, acme: str) -> None:
    env = worker_env(ctx.settings)
    cli = [sys.executable, "-c", "from letterhead.cli import main; main()", "tenant"]
    done = subprocess.run([*cli, "suspend", "acme"], capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "suspended tenant acme" in done.stdout
    with ctx.db.session() as s:
        t = s.get(Tenant, "acme")
        assert t is not None and t.suspended_at is not None
    done = subprocess.run([*cli, "resume", "acme"], capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0 and "resumed tenant acme" in done.stdout
    with ctx.db.session() as s:
        t = s.get(Tenant, "acme")
        assert t is not None and t.suspended_at is None
    unknown = subprocess.run([*cli, "suspend", "nosuch"], capture_output=True, text=True, env=env, timeout=60)
    assert unknown.returncode != 0 and "No tenant 'nosuch'" in unknown.stderr
