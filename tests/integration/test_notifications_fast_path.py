"""The notification routes answer the same through FastAPI (first request of a key) and through the fast path
(key cached, tenant known): status, body shape, headers, problem+json errors, idempotency, disabled events,
tenant isolation. Concurrent requests share one transaction (group commit) and still get their own outcomes."""

from __future__ import annotations

import copy
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from letterhead.context import Context
from letterhead.models import Message
from letterhead.notifications.events import EVENTS
from letterhead.tenants import create_api_key, create_tenant
from tests.conftest import auth


def body(to: str = "a@example.com", **extra: Any) -> dict[str, Any]:
    return {"event": "order.created", "to": to, "data": copy.deepcopy(EVENTS["order.created"].example), **extra}


def test_fast_path_answers_as_fastapi_does(ctx: Context, app_client: TestClient, acme_key: str) -> None:
    url, h = "/v1/tenants/acme/notifications", auth(acme_key)
    seen = []
    for _ in range(2):  # 1st: FastAPI (fills the key cache and the known tenants); 2nd: the fast path
        r = app_client.post(url, json=body(idempotency_key=None), headers=h)
        assert r.status_code == 202 and r.json()["status"] == "queued" and "Idempotent-Replayed" not in r.headers
        replay = app_client.post(url, json=body(), headers=h | {"Idempotency-Key": "k1"})
        again = app_client.post(url, json=body(), headers=h | {"Idempotency-Key": "k1"})
        assert again.status_code == 202 and again.headers["Idempotent-Replayed"] == "true"
        assert again.json()["id"] == replay.json()["id"]
        conflict = app_client.post(url, json=body("b@example.com"), headers=h | {"Idempotency-Key": "k1"})
        assert conflict.status_code == 409 and conflict.headers["content-type"] == "application/problem+json"
        bad = app_client.post(url, json=body("not an address"), headers=h)
        assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "to"
        data_bad = body()
        data_bad["data"]["items"][0]["quantity"] = "two"
        r = app_client.post(url, json=data_bad, headers=h)
        assert r.status_code == 422 and r.json()["errors"][0]["field"].startswith("data.items[0]")
        missing = app_client.post(url, json={"event": "order.created", "to": "a@example.com"}, headers=h)
        assert missing.status_code == 422 and missing.json()["errors"][0]["field"] == "data"
        batch = app_client.post(url + "/batch", json={"notifications": [body(), body("c@example.com")]}, headers=h)
        assert batch.status_code == 202 and len(batch.json()["ids"]) == 2 and batch.json()["skipped"] == []
        bad_batch = app_client.post(url + "/batch", json={"notifications": [body(), body("x")]}, headers=h)
        assert bad_batch.status_code == 422
        assert bad_batch.json()["errors"][0]["field"] == "notifications[1].to"
        seen.append([r.status_code for r in (replay, again, conflict, bad, missing, batch, bad_batch)])
    assert seen[0] == seen[1]
    assert app_client.put("/v1/tenants/acme/templates/order.created", json={"enabled": False}, headers=h).status_code == 200
    r = app_client.post(url, json=body(), headers=h)
    assert r.status_code == 200 and r.json() == {"skipped": "event disabled"}


def test_fast_path_keeps_tenants_apart(ctx: Context, app_client: TestClient, acme_key: str) -> None:
    create_tenant(ctx, tenant_id="other", name="Other", plan="pro")
    other_key = create_api_key(ctx, tenant_id="other").key
    assert app_client.post("/v1/tenants/other/notifications", json=body(), headers=auth(other_key)).status_code == 202
    assert app_client.post("/v1/tenants/acme/notifications", json=body(), headers=auth(acme_key)).status_code == 202
    # Both keys and both tenants are now cached: a key still cannot act on the other tenant.
    r = app_client.post("/v1/tenants/other/notifications", json=body(), headers=auth(acme_key))
    assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json"
    assert app_client.post("/v1/tenants/nope/notifications", json=body(), headers=auth(acme_key)).status_code == 404
    assert app_client.post("/v1/tenants/acme/notifications", json=body(), headers=auth("lh_x")).status_code == 401


def test_concurrent_requests_each_get_their_own_outcome(ctx: Context, app_client: TestClient, acme_key: str) -> None:
    url, h = "/v1/tenants/acme/notifications", auth(acme_key)
    assert app_client.post(url, json=body(), headers=h).status_code == 202  # warm the caches
    assert app_client.post(url, json=body(), headers=h | {"Idempotency-Key": "taken"}).status_code == 202

    def post(i: int) -> int:
        if i % 10 == 3:  # a reused key with another body: 409 for this one only
            return app_client.post(url, json=body(f"z{i}@example.com"), headers=h | {"Idempotency-Key": "taken"}).status_code
        if i % 10 == 7:
            return app_client.post(url, json=body("broken"), headers=h).status_code
        return app_client.post(url, json=body(f"u{i}@example.com"), headers=h).status_code

    with ThreadPoolExecutor(16) as pool:
        codes = list(pool.map(post, range(100)))
    assert codes.count(409) == 10 and codes.count(422) == 10 and codes.count(202) == 80
    with ctx.db.session() as s:
        assert s.scalar(select(func.count()).select_from(Message)) == 82
