"""API keys can be listed (never the secret) and revoked; a revoked key is refused within a second (issue 18,
item 7). Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from letterhead.api.deps import KeyCache
from letterhead.context import Context
from letterhead.models import ApiKey, utcnow
from letterhead.notifications.events import EVENTS
from letterhead.tenants import create_api_key, create_tenant, revoke_api_key
from tests.conftest import auth
from tests.support.processes import worker_env


@pytest.fixture
def globex(ctx: Context) -> str:
    create_tenant(ctx, tenant_id="globex", name="Globex", plan="pro")
    return "globex"


def key_cache(client: TestClient) -> KeyCache:
    cache: KeyCache = client.app.state.key_cache  # type: ignore[attr-defined]
    return cache


def test_created_key_is_listed_without_its_secret(ctx: Context, app_client: TestClient, acme: str,
                                                   acme_key: str) -> None:
    r = app_client.post("/v1/tenants/acme/api-keys", json={"name": "billing server"}, headers=auth(acme_key))
    assert r.status_code == 201, r.text
    created = r.json()
    secret = created["key"]
    assert created["name"] == "billing server" and secret.startswith(f"lh_{created['prefix']}_")

    listed = app_client.get("/v1/tenants/acme/api-keys", headers=auth(acme_key))
    assert listed.status_code == 200, listed.text
    keys = {k["id"]: k for k in listed.json()["api_keys"]}
    assert set(keys[created["id"]]) == {"id", "name", "prefix", "scope", "created_at", "last_used_at", "revoked_at"}
    assert keys[created["id"]]["name"] == "billing server" and keys[created["id"]]["scope"] == "tenant"
    assert keys[created["id"]]["revoked_at"] is None
    with ctx.db.session() as s:
        hashes = list(s.scalars(select(ApiKey.key_hash)))
    for value in (secret, acme_key, secret.rsplit("_", 1)[1], *hashes):
        assert value not in listed.text
    # The key making the request has been used: noted (once, not per request).
    [mine] = [k for k in keys.values() if k["id"] != created["id"]]
    assert mine["last_used_at"] is not None


def test_last_used_is_written_at_most_once_a_minute(ctx: Context, app_client: TestClient, acme: str,
                                                    acme_key: str) -> None:
    assert app_client.get("/v1/tenants/acme", headers=auth(acme_key)).status_code == 200
    with ctx.db.session() as s:
        row = s.scalar(select(ApiKey).where(ApiKey.tenant_id == "acme"))
        assert row is not None and row.last_used_at is not None
        first = row.last_used_at
        # Pretend it was noted 30 s ago: a fresh lookup (cache emptied) must not write it again...
        row.last_used_at = first - timedelta(seconds=30)
    key_cache(app_client)._entries.clear()
    assert app_client.get("/v1/tenants/acme", headers=auth(acme_key)).status_code == 200
    with ctx.db.session() as s:
        row = s.scalar(select(ApiKey).where(ApiKey.tenant_id == "acme"))
        assert row is not None and row.last_used_at == first - timedelta(seconds=30)
        # ...but once it is older than a minute, it is.
        row.last_used_at = first - timedelta(seconds=90)
    key_cache(app_client)._entries.clear()
    assert app_client.get("/v1/tenants/acme", headers=auth(acme_key)).status_code == 200
    with ctx.db.session() as s:
        row = s.scalar(select(ApiKey).where(ApiKey.tenant_id == "acme"))
        assert row is not None and row.last_used_at is not None and row.last_used_at >= first


def test_tenants_cannot_see_or_revoke_each_others_keys(ctx: Context, app_client: TestClient, acme: str,
                                                        acme_key: str, globex: str, platform_key: str) -> None:
    globex_key = create_api_key(ctx, tenant_id=globex, name="globex app")
    assert app_client.get("/v1/tenants/globex/api-keys", headers=auth(acme_key)).status_code == 404
    listed = app_client.get("/v1/tenants/acme/api-keys", headers=auth(acme_key)).json()["api_keys"]
    assert globex_key.id not in {k["id"] for k in listed}
    # Another tenant's key through one's own tenant path, or through theirs: 404, and it still works.
    assert app_client.delete(f"/v1/tenants/acme/api-keys/{globex_key.id}", headers=auth(acme_key)).status_code == 404
    assert app_client.delete(f"/v1/tenants/globex/api-keys/{globex_key.id}",
                             headers=auth(acme_key)).status_code == 404
    assert app_client.delete("/v1/tenants/acme/api-keys/key_UNKNOWN", headers=auth(acme_key)).status_code == 404
    assert app_client.get("/v1/tenants/globex", headers=auth(globex_key.key)).status_code == 200
    # A platform key may revoke any tenant's key, but only under that tenant's path.
    assert app_client.delete(f"/v1/tenants/acme/api-keys/{globex_key.id}",
                             headers=auth(platform_key)).status_code == 404
    r = app_client.delete(f"/v1/tenants/globex/api-keys/{globex_key.id}", headers=auth(platform_key))
    assert r.status_code == 204
    assert app_client.get("/v1/tenants/globex", headers=auth(globex_key.key)).status_code == 401


def test_revoking_the_key_in_use_refuses_it_at_once(ctx: Context, app_client: TestClient, acme: str,
                                                     acme_key: str) -> None:
    listed = app_client.get("/v1/tenants/acme/api-keys", headers=auth(acme_key)).json()["api_keys"]
    [mine] = listed
    assert app_client.delete(f"/v1/tenants/acme/api-keys/{mine['id']}", headers=auth(acme_key)).status_code == 204
    r = app_client.get("/v1/tenants/acme", headers=auth(acme_key))
    assert r.status_code == 401 and r.headers["content-type"].startswith("application/problem+json")
    with ctx.db.session() as s:
        row = s.get(ApiKey, mine["id"])
        assert row is not None and row.revoked_at is not None


@pytest.mark.parametrize("path", ["/v1/tenants/acme", "/v1/tenants/acme/notifications"])
def test_key_revoked_elsewhere_is_refused_after_a_second(ctx: Context, app_client: TestClient, acme: str,
                                                         acme_key: str, path: str) -> None:
    """Revoked by another process (here: the service directly, as the CLI does): this process's key cache has
    it, and must stop trusting it within a second (the cache's clock is moved on instead of sleeping)."""
    body = {"event": "order.created", "to": "hanako@example.com", "data": EVENTS["order.created"].example}

    def call() -> int:
        if path.endswith("notifications"):
            return app_client.post(path, json=body, headers=auth(acme_key)).status_code
        return app_client.get(path, headers=auth(acme_key)).status_code

    assert call() in (200, 202)
    assert call() in (200, 202)  # now from the cache (the notification route's fast path included)
    [key_id] = acme_key_ids(ctx)
    revoke_api_key(ctx, key_id=key_id, tenant_id="acme")
    cache = key_cache(app_client)
    real = cache.clock
    cache.clock = lambda: real() + 1.01
    try:
        assert call() == 401
    finally:
        cache.clock = real


def acme_key_ids(ctx: Context) -> list[str]:
    with ctx.db.session() as s:
        return list(s.scalars(select(ApiKey.id).where(ApiKey.tenant_id == "acme")))


def test_cli_lists_and_revokes_keys(ctx: Context, acme: str, acme_key: str, platform_key: str) -> None:
    named = create_api_key(ctx, tenant_id=acme, name="shop")
    env = worker_env(ctx.settings)
    cli = [sys.executable, "-c", "from letterhead.cli import main; main()", "apikey"]

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*cli, *args], capture_output=True, text=True, env=env | {"COLUMNS": "200"},
                              timeout=60)

    listed = run("list", "--tenant", "acme")
    assert listed.returncode == 0, listed.stderr
    assert named.id in listed.stdout and "shop" in listed.stdout and named.key.split("_")[1] in listed.stdout
    for secret in (named.key, acme_key, platform_key):
        assert secret not in listed.stdout + listed.stderr
        assert secret.rsplit("_", 1)[1] not in listed.stdout
    platform = run("list", "--platform")
    assert platform.returncode == 0 and "platform" in platform.stdout and named.id not in platform.stdout

    revoked = run("revoke", named.id)
    assert revoked.returncode == 0, revoked.stderr
    assert f"revoked API key {named.id}" in revoked.stdout and "shop" in revoked.stdout
    with ctx.db.session() as s:
        row = s.get(ApiKey, named.id)
        assert row is not None and row.revoked_at is not None and row.revoked_at <= utcnow()

    unknown = run("revoke", "key_NOSUCHKEY")
    assert unknown.returncode != 0 and "No API key 'key_NOSUCHKEY'" in unknown.stderr
    assert run("list", "--tenant", "nosuch").returncode != 0


def test_key_in_use_is_looked_up_again_in_the_background(ctx: Context, acme: str, acme_key: str) -> None:
    """Past half its life a cached key still answers, and is checked again off the request's path: a key in
    steady use never misses the cache, and a revocation found that way drops it before its entry runs out."""
    from letterhead.api.deps import _lookup_key
    from letterhead.security import sha256_hex, split_api_key

    digest, prefix = sha256_hex(acme_key), split_api_key(acme_key)
    assert prefix is not None
    now = [1000.0]
    cache = KeyCache(ctx, clock=lambda: now[0])

    async def go() -> None:
        cache.put(digest, _lookup_key(ctx, prefix, digest), prefix)
        now[0] += 0.6
        assert cache.get(digest) is not None  # still valid; a refresh is started
        await asyncio.gather(*cache._refreshing.values())
        now[0] += 0.6  # 1.2 s after the first lookup, 0.6 s after the refresh
        assert cache.get(digest) is not None
        await asyncio.gather(*cache._refreshing.values())
        [key_id] = acme_key_ids(ctx)
        revoke_api_key(ctx, key_id=key_id)
        now[0] += 0.6
        assert cache.get(digest) is not None  # within the second: may still answer...
        await asyncio.gather(*cache._refreshing.values())
        assert cache.get(digest) is None  # ...but the background lookup found the revocation

    asyncio.run(go())
