"""Notifications through the API: events, validation, locales, templates, preview, batch, idempotency, and a
delivered message parsed back with the stdlib parser. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import copy
import email
import email.policy
from email.message import EmailMessage
from typing import Any

from fastapi.testclient import TestClient

from letterhead.context import Context
from letterhead.devinbox import DevInbox
from letterhead.notifications.events import EVENTS
from tests.conftest import auth, deliver


def example(event: str = "order.created") -> dict[str, Any]:
    return copy.deepcopy(EVENTS[event].example)


def parsed(inbox: DevInbox) -> list[EmailMessage]:
    out = []
    for m in inbox.messages():
        msg = email.message_from_bytes(m.raw, policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        out.append(msg)
    return out


def test_event_catalogue(app_client: TestClient, acme_key: str) -> None:
    events = app_client.get("/v1/events", headers=auth(acme_key)).json()["events"]
    names = {e["name"] for e in events}
    assert names >= {"order.created", "order.shipped", "order.delivered", "order.cancelled", "refund.issued",
                     "vendor.approved", "vendor.order_received", "payout.sent", "password.reset", "account.invited"}
    for e in events:
        assert e["schema"]["type"] == "object" and e["example"] and e["description"]


def test_notification_is_rendered_in_the_recipients_locale_and_delivered(
    ctx: Context, app_client: TestClient, acme_key: str, inbox: DevInbox
) -> None:
    data = example()
    data["customer_name"] = "<script>alert(1)</script> 花子"
    r = app_client.post("/v1/tenants/acme/notifications",
                        json={"event": "order.created", "to": "hanako@example.com", "data": data}, headers=auth(acme_key))
    assert r.status_code == 202, r.text
    r2 = app_client.post("/v1/tenants/acme/notifications",
                         json={"event": "order.created", "to": {"email": "bob@example.com", "locale": "en"},
                               "data": example()}, headers=auth(acme_key))
    assert r2.status_code == 202
    deliver(ctx)
    by_to = {str(m["To"]): m for m in parsed(inbox)}
    ja, en = by_to["hanako@example.com"], by_to["bob@example.com"]
    # What the API's preview renders is what was delivered (decoded by the stdlib parser).
    preview = app_client.post("/v1/tenants/acme/templates/order.created/ja/preview", json={"data": data},
                              headers=auth(acme_key)).json()
    assert str(ja["Subject"]) == preview["subject"]
    assert data["order_number"] in preview["subject"]
    assert ja["From"].addresses[0].display_name == "ACME 株式会社 via Letterhead"
    html = ja.get_body(("html",)).get_content()
    text = ja.get_body(("plain",)).get_content()
    assert html.strip() == preview["html"].strip()
    assert text.strip() == preview["text"].strip()
    assert "&lt;script&gt;" in html and "<script>alert" not in html
    assert "<script>alert(1)</script>" in text  # the text part shows data raw
    assert "<" not in text.replace("<script>alert(1)</script>", "")  # and is otherwise tag-free
    assert "ご注文" in str(ja["Subject"]) or "注文" in html
    assert "order" in str(en["Subject"]).lower() or "Order" in en.get_body(("html",)).get_content()
    assert ja["List-Unsubscribe"] is None
    assert "style=" in html  # CSS inlined
    msg = app_client.get("/v1/tenants/acme/messages", params={"kind": "notification"}, headers=auth(acme_key)).json()
    assert {m["event"] for m in msg["messages"]} == {"order.created"}


def test_bad_data_names_each_field_and_changes_nothing(ctx: Context, app_client: TestClient, acme_key: str) -> None:
    data = example()
    data["items"][0]["quantity"] = "two"
    del data["order_number"]
    r = app_client.post("/v1/tenants/acme/notifications",
                        json={"event": "order.created", "to": "a@example.com", "data": data}, headers=auth(acme_key))
    assert r.status_code == 422
    fields = {e["field"] for e in r.json()["errors"]}
    assert "data.items[0].quantity" in fields and any("order_number" in f for f in fields)
    unknown = app_client.post("/v1/tenants/acme/notifications",
                              json={"event": "order.teleported", "to": "a@example.com", "data": {}},
                              headers=auth(acme_key))
    assert unknown.status_code in (404, 422)
    bad_locale = app_client.post("/v1/tenants/acme/notifications",
                                 json={"event": "order.created", "to": "a@example.com", "locale": "fr",
                                       "data": example()}, headers=auth(acme_key))
    assert bad_locale.status_code == 422
    log = app_client.get("/v1/tenants/acme/messages", headers=auth(acme_key)).json()
    assert log["messages"] == []


def test_disabled_event_is_skipped(ctx: Context, app_client: TestClient, acme_key: str, inbox: DevInbox) -> None:
    r = app_client.put("/v1/tenants/acme/templates/order.shipped", json={"enabled": False}, headers=auth(acme_key))
    assert r.status_code == 200
    skipped = app_client.post("/v1/tenants/acme/notifications",
                              json={"event": "order.shipped", "to": "a@example.com", "data": example("order.shipped")},
                              headers=auth(acme_key))
    assert skipped.status_code == 200 and skipped.json() == {"skipped": "event disabled"}
    deliver(ctx)
    assert inbox.messages() == []
    events = app_client.get("/v1/tenants/acme/templates", headers=auth(acme_key)).json()["events"]
    assert next(e for e in events if e["name"] == "order.shipped")["enabled"] is False


def test_batch_is_one_transaction_with_ids_in_order(ctx: Context, app_client: TestClient, acme_key: str) -> None:
    items = [{"event": "order.created", "to": f"c{i}@example.com", "data": example()} for i in range(50)]
    r = app_client.post("/v1/tenants/acme/notifications/batch", json={"notifications": items}, headers=auth(acme_key))
    assert r.status_code == 202, r.text
    ids = r.json()["ids"]
    assert len(ids) == 50 and len(set(ids)) == 50 and ids == sorted(ids)
    bad = [*items[:3], {"event": "order.created", "to": "nope", "data": example()}]
    r = app_client.post("/v1/tenants/acme/notifications/batch", json={"notifications": bad}, headers=auth(acme_key))
    assert r.status_code == 422
    assert any(e["field"].startswith("notifications[3].to") for e in r.json()["errors"])
    too_many = {"notifications": [items[0]] * 1001}
    assert app_client.post("/v1/tenants/acme/notifications/batch", json=too_many,
                           headers=auth(acme_key)).status_code == 422
    total = app_client.get("/v1/tenants/acme/messages", params={"limit": 200}, headers=auth(acme_key)).json()
    assert len(total["messages"]) == 50


def test_idempotent_notifications(ctx: Context, app_client: TestClient, acme_key: str) -> None:
    body = {"event": "order.created", "to": "a@example.com", "data": example(), "idempotency_key": "order-42"}
    first = app_client.post("/v1/tenants/acme/notifications", json=body, headers=auth(acme_key)).json()
    again = app_client.post("/v1/tenants/acme/notifications", json=body, headers=auth(acme_key))
    assert again.status_code == 202 and again.json()["id"] == first["id"]
    body["data"]["total"] = 1
    assert app_client.post("/v1/tenants/acme/notifications", json=body, headers=auth(acme_key)).status_code == 409


def test_template_override_preview_errors_and_revert(
    ctx: Context, app_client: TestClient, acme_key: str, inbox: DevInbox
) -> None:
    url = "/v1/tenants/acme/templates/order.created/ja"
    default = app_client.get(url, headers=auth(acme_key)).json()
    assert default["customized"] is False and default["subject"]
    broken = {"subject": "ご注文 {{ order_number }}", "html": "<p>ok</p>\n<p>{{ no_such_field }}</p>"}
    r = app_client.put(url, json=broken, headers=auth(acme_key))
    assert r.status_code == 422
    err = r.json()["errors"][0]
    assert err["line"] == 2 and err["field"] == "html"
    syntax = app_client.put(url, json={"subject": "x", "html": "<p>{% if %}</p>"}, headers=auth(acme_key))
    assert syntax.status_code == 422 and syntax.json()["errors"][0]["line"] == 1
    escape = app_client.put(url, json={"subject": "{{ ''.__class__.__mro__ }}", "html": "<p>x</p>"},
                            headers=auth(acme_key))
    assert escape.status_code == 422
    custom = {"subject": "【ACME】ご注文 {{ order_number }} を承りました",
              "html": "<style>p{color:#123456}</style><p>{{ customer_name }} 様</p>"}
    r = app_client.put(url, json=custom, headers=auth(acme_key))
    assert r.status_code == 200 and r.json()["customized"] is True
    preview = app_client.post(f"{url}/preview", json={}, headers=auth(acme_key)).json()
    assert preview["subject"] == f"【ACME】ご注文 {example()['order_number']} を承りました"
    assert 'style="color: #123456' in preview["html"] or "color:#123456" in preview["html"].replace(" ", "")
    assert "様" in preview["text"] and "<p>" not in preview["text"]
    app_client.post("/v1/tenants/acme/notifications",
                    json={"event": "order.created", "to": "a@example.com", "data": example()}, headers=auth(acme_key))
    deliver(ctx)
    [got] = parsed(inbox)
    assert str(got["Subject"]).startswith("【ACME】ご注文")
    assert app_client.delete(url, headers=auth(acme_key)).status_code == 204
    assert app_client.get(url, headers=auth(acme_key)).json()["customized"] is False
