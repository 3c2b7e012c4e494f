"""Request dependencies: the context, the authenticated principal, tenant access."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from letterhead.context import Context
from letterhead.errors import Forbidden, NotFound, Unauthorized
from letterhead.models import ApiKey, ApiKeyScope, Tenant
from letterhead.security import hashes_match, sha256_hex, split_api_key


@dataclass(frozen=True)
class Principal:
    key_id: str
    scope: ApiKeyScope
    tenant_id: str | None

    @property
    def is_platform(self) -> bool:
        return self.scope is ApiKeyScope.PLATFORM


async def get_ctx(request: Request) -> Context:
    # async: FastAPI runs a plain ``def`` dependency in the thread pool, a hop per request for nothing.
    ctx: Context = request.app.state.ctx
    return ctx


CtxDep = Annotated[Context, Depends(get_ctx)]


class KeyCache:
    """Recently verified keys, so that a busy client does not cost a query per request.

    Entries live ``ttl`` seconds: a revoked key stops working within that time.
    """

    def __init__(self, ttl: float = 10.0) -> None:
        self.ttl = ttl
        self._entries: dict[str, tuple[float, Principal]] = {}

    def get(self, key_hash: str) -> Principal | None:
        hit = self._entries.get(key_hash)
        if hit and hit[0] > time.monotonic():
            return hit[1]
        return None

    def put(self, key_hash: str, principal: Principal) -> None:
        if len(self._entries) > 10_000:
            self._entries.clear()
        self._entries[key_hash] = (time.monotonic() + self.ttl, principal)


def _lookup_key(ctx: Context, prefix: str, digest: str) -> Principal:
    with ctx.db.session() as s:
        row = s.scalar(select(ApiKey).where(ApiKey.prefix == prefix))
    if row is None or row.revoked_at is not None or not hashes_match(row.key_hash, digest):
        raise Unauthorized("The API key is unknown or revoked.")
    return Principal(row.id, ApiKeyScope(row.scope), row.tenant_id)


async def get_principal(request: Request, ctx: CtxDep) -> Principal:
    """The key's principal: from the cache on the event loop (no thread hop), else looked up in a thread."""
    header = request.headers.get("authorization", "")
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not key:
        raise Unauthorized("Send an API key as 'Authorization: Bearer lh_…'. Create one with 'letterhead apikey create'.")
    key = key.strip()
    prefix = split_api_key(key)
    if prefix is None:
        raise Unauthorized("That is not a Letterhead API key (they look like lh_<12 hex>_<secret>).")
    digest = sha256_hex(key)
    cache: KeyCache = request.app.state.key_cache
    cached = cache.get(digest)
    if cached is not None:
        return cached
    principal = await run_in_threadpool(_lookup_key, ctx, prefix, digest)
    cache.put(digest, principal)
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def require_platform(principal: PrincipalDep) -> Principal:
    if not principal.is_platform:
        raise Forbidden("This needs a platform-scoped API key (letterhead apikey create --platform).")
    return principal


PlatformDep = Annotated[Principal, Depends(require_platform)]


def tenant_access(tenant_id: str, principal: PrincipalDep, ctx: CtxDep) -> Tenant:
    """The tenant in the path, if this key may act on it. Others' tenants are 404, as if they did not exist."""
    if not principal.is_platform and principal.tenant_id != tenant_id:
        raise NotFound(f"No tenant '{tenant_id}'.")
    with ctx.db.session() as s:
        tenant = s.get(Tenant, tenant_id)
    if tenant is None:
        raise NotFound(f"No tenant '{tenant_id}'.")
    return tenant


TenantDep = Annotated[Tenant, Depends(tenant_access)]


class KnownTenants:
    """Ids of tenants seen to exist. Tenants are never deleted, so a tenant once found stays found; only the
    existence is cached (each request reads the tenant's current settings where it needs them)."""

    def __init__(self, limit: int = 100_000) -> None:
        self.limit = limit
        self._ids: set[str] = set()

    def __contains__(self, tenant_id: str) -> bool:
        return tenant_id in self._ids

    def add(self, tenant_id: str) -> None:
        if len(self._ids) >= self.limit:
            self._ids.clear()
        self._ids.add(tenant_id)


def _tenant_exists(ctx: Context, tenant_id: str) -> bool:
    with ctx.db.session() as s:
        return s.get(Tenant, tenant_id) is not None


async def tenant_scope(tenant_id: str, principal: PrincipalDep, request: Request, ctx: CtxDep) -> str:
    """Like ``tenant_access`` (404 for others' tenants and unknown ones, before the body is looked at), but
    without loading the row: the hot notification routes read the tenant together with the insert."""
    if not principal.is_platform and principal.tenant_id != tenant_id:
        raise NotFound(f"No tenant '{tenant_id}'.")
    known: KnownTenants = request.app.state.known_tenants
    if tenant_id not in known:
        if not await run_in_threadpool(_tenant_exists, ctx, tenant_id):
            raise NotFound(f"No tenant '{tenant_id}'.")
        known.add(tenant_id)
    return tenant_id


TenantIdDep = Annotated[str, Depends(tenant_scope)]
