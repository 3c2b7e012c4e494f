"""Every bad input is a 4xx: null for a field that always has a value, time zones outside the IANA database
(paths included), recipient names with CR/LF; the stored tenant is unchanged after each refusal."""

from __future__ import annotations

import copy

import pytest
from fastapi.testclient import TestClient

from letterhead.context import Context
from letterhead.errors import InvalidInput
from letterhead.notifications.events import EVENTS
from letterhead.tenants import create_tenant
from tests.conftest import auth


def test_tenant_profile_refuses_nulls_and_unknown_time_zones(
    ctx: Context, app_client: TestClient, acme_key: str
) -> None:
    url, h = "/v1/tenants/acme", auth(acme_key)
    before = app_client.get(url, headers=h).json()
    for bad in ({"timezone": None}, {"name": None}, {"locale": None}, {"timezone": "Mars/Olympus"},
                {"timezone": "../etc/passwd"}, {"timezone": "/etc/localtime"}, {"timezone": ""},
                {"timezone": "asia/tokyo"}, {"name": "ok", "timezone": "Nowhere/City"}):
        r = app_client.patch(url, json=bad, headers=h)
        assert r.status_code == 422, (bad, r.text)
        assert r.headers["content-type"] == "application/problem+json"
        fields = [e["field"] for e in r.json()["errors"]]
        assert [f for f in bad if f in fields], (bad, r.json())
    assert app_client.get(url, headers=h).json() == before
    ok = app_client.patch(url, json={"timezone": "Europe/London"}, headers=h)
    assert ok.status_code == 200 and ok.json()["timezone"] == "Europe/London"
    with pytest.raises(InvalidInput):
        create_tenant(ctx, tenant_id="tz", name="TZ", timezone="../../etc/shadow")


def test_recipient_names_with_line_breaks_are_refused(ctx: Context, app_client: TestClient, acme_key: str) -> None:
    h = auth(acme_key)
    data = copy.deepcopy(EVENTS["order.created"].example)
    url = "/v1/tenants/acme/notifications"
    for _ in range(2):  # through FastAPI, then the fast path (key cached)
        for name in ("Hanako\r\nBcc: x@example.com", "Hanako\nBcc: x@example.com", "Hanako\r"):
            r = app_client.post(url, json={"event": "order.created", "to": {"email": "h@example.com", "name": name},
                                           "data": data}, headers=h)
            assert r.status_code == 422, r.text
            assert r.json()["errors"][0]["field"] == "to.name"
        batch = app_client.post(url + "/batch", json={"notifications": [
            {"event": "order.created", "to": "a@example.com", "data": data},
            {"event": "order.created", "to": {"email": "h@example.com", "name": "A\r\nB"}, "data": data}]}, headers=h)
        assert batch.status_code == 422 and batch.json()["errors"][0]["field"] == "notifications[1].to.name"
        fine = app_client.post(url, json={"event": "order.created", "to": {"email": "h@example.com", "name": "花子"},
                                          "data": data}, headers=h)
        assert fine.status_code == 202, fine.text
    email = app_client.post("/v1/tenants/acme/emails", json={"to": ["Hanako\r\nBcc: x <h@example.com>"],
                                                            "subject": "s", "text": "t"}, headers=h)
    assert email.status_code == 422 and email.json()["errors"][0]["field"] == "to[0]"
