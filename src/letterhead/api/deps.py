"""Request dependencies: the context, the authenticated principal, tenant access."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import or_, select, update
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool

from letterhead.context import Context
from letterhead.errors import Forbidden, NotFound, Unauthorized
from letterhead.models import ApiKey, ApiKeyScope, Tenant, utcnow
from letterhead.security import hashes_match, sha256_hex, split_api_key
from letterhead.tenants import ensure_active, suspended_error

log = logging.getLogger("letterhead.api")


@dataclass(frozen=True)
class Principal:
    key_id: str
    scope: ApiKeyScope
    tenant_id: str | None
    #: The key's tenant was suspended when the key was looked up (refreshed with the key cache).
    tenant_suspended: bool = False

    @property
    def is_platform(self) -> bool:
        return self.scope is ApiKeyScope.PLATFORM


async def get_ctx(request: Request) -> Context:
    # async: FastAPI runs a plain ``def`` dependency in the thread pool, a hop per request for nothing.
    ctx: Context = request.app.state.ctx
    return ctx


CtxDep = Annotated[Context, Depends(get_ctx)]

#: How long a verified key is trusted without asking the database again: a key revoked (or a tenant suspended)
#: in any process stops working in every API process within this time.
KEY_CACHE_SECONDS = 1.0
#: ``api_keys.last_used_at`` is written at most this often per key (per process), not on every request.
LAST_USED_RESOLUTION = timedelta(minutes=1)


@dataclass
class _Entry:
    principal: Principal
    prefix: str
    expires: float
    refresh_at: float


class KeyCache:
    """Recently verified keys, so that a busy client does not cost a query per request.

    An entry lives ``ttl`` seconds from its lookup, so a revoked key stops working within ``ttl``. Past half its
    life, the next hit looks the key up again in the background while the entry still answers: a key in steady
    use never misses (one query per key and process every ``ttl / 2`` seconds, off the request's path).
    """

    def __init__(self, ctx: Context | None = None, ttl: float = KEY_CACHE_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.ctx = ctx
        self.ttl = ttl
        self.clock = clock
        self._entries: dict[str, _Entry] = {}
        self._refreshing: dict[str, asyncio.Task[None]] = {}

    def get(self, key_hash: str) -> Principal | None:
        hit = self._entries.get(key_hash)
        if hit is None:
            return None
        now = self.clock()
        if hit.expires <= now:
            return None
        if now >= hit.refresh_at and self.ctx is not None and key_hash not in self._refreshing:
            self._refresh(key_hash, hit.prefix)
        return hit.principal

    def put(self, key_hash: str, principal: Principal, prefix: str = "") -> None:
        if len(self._entries) > 10_000:
            self._entries.clear()
        now = self.clock()
        self._entries[key_hash] = _Entry(principal, prefix, now + self.ttl, now + self.ttl / 2)

    def drop_key(self, key_id: str) -> None:
        """Forget a key at once (revoked in this process: no need to wait for the entry to run out)."""
        for digest in [d for d, e in self._entries.items() if e.principal.key_id == key_id]:
            del self._entries[digest]

    def _refresh(self, key_hash: str, prefix: str) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # not on an event loop: the entry simply runs out
            return
        self._refreshing[key_hash] = loop.create_task(self._look_again(key_hash, prefix))

    async def _look_again(self, key_hash: str, prefix: str) -> None:
        assert self.ctx is not None
        try:
            principal = await run_in_threadpool(_lookup_key, self.ctx, prefix, key_hash)
        except Unauthorized:
            self._entries.pop(key_hash, None)
        except Exception:  # the database is unreachable: the entry runs out and the request path reports it
            log.warning("could not look up an API key again", exc_info=True)
        else:
            self.put(key_hash, principal, prefix)
        finally:
            self._refreshing.pop(key_hash, None)


def _lookup_key(ctx: Context, prefix: str, digest: str) -> Principal:
    now = utcnow()
    with ctx.db.reading() as s:
        found = s.execute(
            select(ApiKey, Tenant.suspended_at)
            .outerjoin(Tenant, Tenant.id == ApiKey.tenant_id)
            .where(ApiKey.prefix == prefix)
        ).first()
    if found is None:
        raise Unauthorized("The API key is unknown or revoked.")
    row, suspended_at = found
    if row.revoked_at is not None or not hashes_match(row.key_hash, digest):
        raise Unauthorized("The API key is unknown or revoked.")
    if row.last_used_at is None or row.last_used_at < now - LAST_USED_RESOLUTION:
        _mark_used(ctx, row.id, now)
    return Principal(row.id, ApiKeyScope(row.scope), row.tenant_id, suspended_at is not None)


def _mark_used(ctx: Context, key_id: str, now: datetime) -> None:
    """Note that the key was used (at most once per ``LAST_USED_RESOLUTION``, whichever process gets there)."""
    try:
        with ctx.db.session() as s:
            s.execute(
                update(ApiKey)
                .where(ApiKey.id == key_id)
                .where(or_(ApiKey.last_used_at.is_(None), ApiKey.last_used_at < now - LAST_USED_RESOLUTION))
                .values(last_used_at=now)
            )
    except SQLAlchemyError:  # bookkeeping only: never the reason a request fails
        log.warning("could not record the API key's last use", exc_info=True)


async def get_principal(request: Request, ctx: CtxDep) -> Principal:
    """The key's principal: from the cache on the event loop (no thread hop), else looked up in a thread.
    A tenant key of a suspended tenant is refused here (403), whatever it asks for."""
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
    principal = cache.get(digest)
    if principal is None:
        principal = await run_in_threadpool(_lookup_key, ctx, prefix, digest)
        cache.put(digest, principal, prefix)
    if principal.tenant_suspended and principal.tenant_id is not None:
        raise suspended_error(principal.tenant_id)
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def require_platform(principal: PrincipalDep) -> Principal:
    if not principal.is_platform:
        raise Forbidden("This needs a platform-scoped API key (letterhead apikey create --platform).")
    return principal


PlatformDep = Annotated[Principal, Depends(require_platform)]


def tenant_access(tenant_id: str, principal: PrincipalDep, ctx: CtxDep) -> Tenant:
    """The tenant in the path, if this key may act on it. Others' tenants are 404, as if they did not exist; a
    suspended tenant is 403 for its own keys (read from the row: at once, not after the key cache runs out)."""
    if not principal.is_platform and principal.tenant_id != tenant_id:
        raise NotFound(f"No tenant '{tenant_id}'.")
    with ctx.db.session() as s:
        tenant = s.get(Tenant, tenant_id)
    if tenant is None:
        raise NotFound(f"No tenant '{tenant_id}'.")
    if tenant.suspended_at is not None and not principal.is_platform:
        raise suspended_error(tenant_id)
    return tenant


TenantDep = Annotated[Tenant, Depends(tenant_access)]


def sending_tenant(tenant: TenantDep) -> Tenant:
    """The tenant of a route that sends mail (emails, SMTP tests, verification mail). A suspended tenant is
    refused here with platform keys too: a platform key may still read and change a suspended tenant (to look
    into it, or fix what got it suspended), but not send as it."""
    ensure_active(tenant)
    return tenant


SendingTenantDep = Annotated[Tenant, Depends(sending_tenant)]


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
