"""The foundation's newcomer path through the API: send, deliver, read the log. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import email
import email.policy
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from letterhead.context import Context
from letterhead.devinbox import DevInbox
from letterhead.models import Attempt, Message
from tests.conftest import auth, deliver


def post_email(client: TestClient, key: str, tenant: str = "acme", **body: Any) -> Any:
    payload = {"to": ["hanako@example.com"], "subject": "ご注文ありがとうございます", "text": "本文", "html": "<p>本文</p>"}
    payload.update(body)
    return client.post(f"/v1/tenants/{tenant}/emails", json=payload, headers=auth(key))


def count_messages(ctx: Context) -> int:
    with ctx.db.session() as s:
        return int(s.scalar(select(func.count()).select_from(Message)) or 0)


def test_email_is_queued_then_delivered_from_the_default_sender(
    ctx: Context, app_client: TestClient, acme_key: str, inbox: DevInbox
) -> None:
    r = post_email(app_client, acme_key, idempotency_key="order-1")
    assert r.status_code == 202, r.text
    body = r.json()
    assert body["status"] == "queued" and body["id"].startswith("msg_")

    assert deliver(ctx) == 1
    [got] = inbox.messages()
    parsed = email.message_from_bytes(got.raw, policy=email.policy.default)
    assert str(parsed["Subject"]) == "ご注文ありがとうございます"
    assert parsed["From"].addresses[0].display_name == "ACME 株式会社 via Letterhead"
    assert parsed["From"].addresses[0].addr_spec == "notifications@letterhead.localhost"
    assert str(parsed["Reply-To"]) == "support@acme.example"
    assert parsed.get_body(("plain",)).get_content().strip() == "本文"
    assert b"=?utf-8?" in got.raw  # RFC 2047 encoded words, not raw 8-bit headers
    assert got.rcpt_to == ("hanako@example.com",)

    detail = app_client.get(f"/v1/tenants/acme/messages/{body['id']}", headers=auth(acme_key)).json()
    assert detail["status"] == "sent"
    assert detail["mode"] == "default"
    [attempt] = detail["attempts"]
    assert attempt["outcome"] == "sent"
    assert attempt["reply"]["code"] == 250
    assert attempt["duration_ms"] >= 0
    assert "MAIL FROM:<notifications@letterhead.localhost>" in attempt["transcript"]
    assert detail["message_id"] == str(parsed["Message-ID"])


def test_dev_inbox_json_shape(ctx: Context, app_client: TestClient, acme_key: str) -> None:
    post_email(app_client, acme_key, subject="first")
    deliver(ctx)
    post_email(app_client, acme_key, subject="second")
    deliver(ctx)
    data = app_client.get("/dev/inbox.json").json()
    subjects = [m["subject"] for m in data["messages"]]
    assert subjects == ["second", "first"]  # newest first
    m = data["messages"][0]
    assert set(m) >= {"id", "from", "to", "subject", "date", "text", "html", "raw"}
    assert m["html"].strip() == "<p>本文</p>"
    assert "Subject: second" in m["raw"]
    page = app_client.get("/dev/inbox")
    assert page.status_code == 200 and "second" in page.text


def test_idempotency_returns_the_first_message(ctx: Context, app_client: TestClient, acme_key: str) -> None:
    first = post_email(app_client, acme_key, idempotency_key="k-1").json()
    again = post_email(app_client, acme_key, idempotency_key="k-1")
    assert again.status_code == 202
    assert again.json()["id"] == first["id"]
    assert again.headers.get("Idempotent-Replayed") == "true"
    # The header form is equivalent.
    r = app_client.post(
        "/v1/tenants/acme/emails",
        json={"to": ["hanako@example.com"], "subject": "ご注文ありがとうございます", "text": "本文", "html": "<p>本文</p>"},
        headers=auth(acme_key) | {"Idempotency-Key": "k-1"},
    )
    assert r.json()["id"] == first["id"]
    conflict = post_email(app_client, acme_key, idempotency_key="k-1", subject="something else")
    assert conflict.status_code == 409
    assert conflict.headers["content-type"].startswith("application/problem+json")
    assert count_messages(ctx) == 1
    deliver(ctx)
    assert count_messages(ctx) == 1


def test_log_filters_and_cursor_pagination(ctx: Context, app_client: TestClient, acme_key: str) -> None:
    ids = [post_email(app_client, acme_key, to=[f"user{i}@example.com"]).json()["id"] for i in range(7)]
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 3}
        if cursor:
            params["cursor"] = cursor
        page = app_client.get("/v1/tenants/acme/messages", params=params, headers=auth(acme_key)).json()
        seen += [m["id"] for m in page["messages"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == list(reversed(ids))
    only = app_client.get("/v1/tenants/acme/messages", params={"to": "user3@"}, headers=auth(acme_key)).json()
    assert [m["id"] for m in only["messages"]] == [ids[3]]
    queued = app_client.get("/v1/tenants/acme/messages", params={"status": "queued"}, headers=auth(acme_key)).json()
    assert len(queued["messages"]) == 7
    deliver(ctx)
    sent = app_client.get("/v1/tenants/acme/messages", params={"status": "sent", "kind": "email"}, headers=auth(acme_key))
    assert len(sent.json()["messages"]) == 7
    future = app_client.get(
        "/v1/tenants/acme/messages", params={"since": "2999-01-01T00:00:00Z"}, headers=auth(acme_key)
    ).json()
    assert future["messages"] == []
    bad = app_client.get("/v1/tenants/acme/messages", params={"status": "lost"}, headers=auth(acme_key))
    assert bad.status_code == 422


def test_tenant_keys_see_only_their_tenant(ctx: Context, app_client: TestClient, acme_key: str, platform_key: str) -> None:
    r = app_client.post(
        "/v1/tenants", json={"id": "globex", "name": "Globex", "plan": "free"}, headers=auth(platform_key)
    )
    assert r.status_code == 201, r.text
    globex_key = app_client.post("/v1/tenants/globex/api-keys", json={}, headers=auth(platform_key)).json()["key"]
    mine = post_email(app_client, acme_key).json()["id"]
    # Another tenant's key: 404 for the tenant and for its message, never 200.
    assert post_email(app_client, globex_key, tenant="acme").status_code == 404
    assert app_client.get(f"/v1/tenants/acme/messages/{mine}", headers=auth(globex_key)).status_code == 404
    assert app_client.get(f"/v1/tenants/globex/messages/{mine}", headers=auth(globex_key)).status_code == 404
    assert app_client.get("/v1/tenants/acme/messages", headers=auth(globex_key)).status_code == 404
    # Platform keys act on any tenant.
    assert app_client.get(f"/v1/tenants/acme/messages/{mine}", headers=auth(platform_key)).status_code == 200
    # A tenant key cannot do platform things.
    r = app_client.post("/v1/tenants", json={"id": "evil", "name": "Evil"}, headers=auth(acme_key))
    assert r.status_code == 403
    assert r.json()["type"].endswith("/forbidden")


def test_bad_input_is_refused_and_changes_nothing(ctx: Context, app_client: TestClient, acme_key: str) -> None:
    cases = [
        ({"to": ["not-an-address"]}, 422, "to"),
        ({"to": ["a@b@c.example"]}, 422, "to"),
        ({"to": []}, 422, "to"),
        ({"subject": "Hello\r\nBcc: victim@example.com"}, 422, "subject"),
        ({"subject": "Hi\nX-Injected: 1"}, 422, "subject"),
        ({"html": "", "text": ""}, 422, "html"),
        ({"html": None, "text": "   "}, 422, "html"),
    ]
    for body, status, field in cases:
        r = post_email(app_client, acme_key, **body)
        assert r.status_code == status, (body, r.text)
        problem = r.json()
        assert r.headers["content-type"].startswith("application/problem+json")
        assert problem["status"] == status and problem["detail"]
        assert any(e["field"].startswith(field) for e in problem.get("errors", [])), problem
    big = post_email(app_client, acme_key, text="x" * (ctx.settings.max_payload_bytes * 5))
    assert big.status_code == 413
    unknown = post_email(app_client, acme_key, tenant="nobody")
    assert unknown.status_code == 404
    assert app_client.post("/v1/tenants/acme/emails", json={}).status_code == 401
    assert (
        app_client.post("/v1/tenants/acme/emails", json={}, headers=auth("lh_000000000000_nope")).status_code == 401
    )
    assert count_messages(ctx) == 0
    with ctx.db.session() as s:
        assert s.scalar(select(func.count()).select_from(Attempt)) == 0


def test_openapi_lists_the_api(app_client: TestClient) -> None:
    doc = app_client.get("/openapi.json").json()
    assert "/v1/tenants/{tenant_id}/emails" in doc["paths"]
    assert "/v1/tenants/{tenant_id}/messages/{message_id}" in doc["paths"]


def test_tenant_profile_update_changes_reply_to(
    ctx: Context, app_client: TestClient, acme_key: str, platform_key: str, inbox: DevInbox
) -> None:
    r = app_client.patch("/v1/tenants/acme", json={"contact_email": "help@acme.example", "locale": "en"},
                         headers=auth(acme_key))
    assert r.status_code == 200 and r.json()["contact_email"] == "help@acme.example"
    assert app_client.patch("/v1/tenants/acme", json={"plan": "enterprise"}, headers=auth(acme_key)).status_code == 422
    assert app_client.patch("/v1/tenants/acme", json={"locale": "fr"}, headers=auth(acme_key)).status_code == 422
    assert app_client.patch("/v1/tenants/acme", json={"name": "A\r\nB"}, headers=auth(acme_key)).status_code == 422
    r = app_client.patch("/v1/tenants/acme", json={"plan": "enterprise"}, headers=auth(platform_key))
    assert r.status_code == 200 and r.json()["plan"] == "enterprise"
    post_email(app_client, acme_key)
    deliver(ctx)
    [got] = inbox.messages()
    assert "Reply-To: help@acme.example" in got.raw.decode()
