from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field

from letterhead.api.deps import CtxDep, KeyCache, PlatformDep, PrincipalDep, TenantDep
from letterhead.maillog import iso
from letterhead.models import Tenant
from letterhead.tenants import (
    KeyInfo,
    create_api_key,
    create_tenant,
    list_api_keys,
    list_tenants,
    revoke_api_key,
    update_tenant,
)

router = APIRouter(tags=["tenants"])


class TenantCreate(BaseModel):
    id: str
    name: str
    plan: str = "free"
    locale: str = "ja"
    timezone: str = "Asia/Tokyo"
    contact_email: str | None = None


class TenantUpdate(BaseModel):
    name: str | None = None
    plan: str | None = None
    locale: str | None = None
    timezone: str | None = None
    contact_email: str | None = None
    brand_color: str | None = None
    logo_url: str | None = None


class ApiKeyCreate(BaseModel):
    name: str | None = Field(default=None, max_length=100)


def tenant_public(t: Tenant) -> dict[str, Any]:
    return {
        "id": t.id,
        "name": t.name,
        "plan": t.plan,
        "locale": t.locale,
        "timezone": t.timezone,
        "contact_email": t.contact_email,
        "mode": t.mode,
        "brand_color": t.brand_color,
        "logo_url": t.logo_url,
        "created_at": iso(t.created_at),
        "suspended_at": iso(t.suspended_at),
    }


def key_public(k: KeyInfo) -> dict[str, Any]:
    """An API key as listed: never its secret nor its hash."""
    return {
        "id": k.id,
        "name": k.name,
        "prefix": k.prefix,
        "scope": k.scope,
        "created_at": iso(k.created_at),
        "last_used_at": iso(k.last_used_at),
        "revoked_at": iso(k.revoked_at),
    }


@router.post("/v1/tenants", status_code=201)
def post_tenant(body: TenantCreate, ctx: CtxDep, _: PlatformDep) -> dict[str, Any]:
    tenant = create_tenant(
        ctx,
        tenant_id=body.id,
        name=body.name,
        plan=body.plan,
        locale=body.locale,
        timezone=body.timezone,
        contact_email=body.contact_email,
    )
    return tenant_public(tenant)


@router.get("/v1/tenants")
def get_tenants(ctx: CtxDep, _: PlatformDep) -> dict[str, Any]:
    return {"tenants": [tenant_public(t) for t in list_tenants(ctx)]}


@router.get("/v1/tenants/{tenant_id}")
def get_tenant(tenant: TenantDep) -> dict[str, Any]:
    return tenant_public(tenant)


@router.patch("/v1/tenants/{tenant_id}")
def patch_tenant(tenant: TenantDep, body: TenantUpdate, ctx: CtxDep, principal: PrincipalDep) -> dict[str, Any]:
    """Change the profile (name, locale, timezone, contact_email = Reply-To of default-sender mail, brand_color,
    logo_url); ``plan`` only with a platform key."""
    changes = body.model_dump(exclude_unset=True)
    updated = update_tenant(ctx, tenant_id=tenant.id, changes=changes, may_change_plan=principal.is_platform)
    return tenant_public(updated)


@router.post("/v1/tenants/{tenant_id}/api-keys", status_code=201)
def post_api_key(tenant: TenantDep, body: ApiKeyCreate, ctx: CtxDep) -> dict[str, Any]:
    """A new tenant-scoped key. The key is in this response only; it is stored hashed."""
    created = create_api_key(ctx, tenant_id=tenant.id, name=body.name)
    return {"id": created.id, "key": created.key, "name": body.name, "prefix": created.key.split("_")[1],
            "scope": created.scope, "tenant_id": created.tenant_id}


@router.get("/v1/tenants/{tenant_id}/api-keys")
def get_api_keys(tenant: TenantDep, ctx: CtxDep) -> dict[str, Any]:
    """The tenant's keys, revoked ones included (``revoked_at``). ``last_used_at`` is exact to about a minute."""
    return {"api_keys": [key_public(k) for k in list_api_keys(ctx, tenant_id=tenant.id)]}


@router.delete("/v1/tenants/{tenant_id}/api-keys/{key_id}", status_code=204)
def delete_api_key(tenant: TenantDep, key_id: str, ctx: CtxDep, request: Request) -> Response:
    """Revoke a key of this tenant (the key making the request too). Every API process refuses it (401) within a
    second. Revoking a revoked key is a no-op; another tenant's key is 404."""
    revoke_api_key(ctx, key_id=key_id, tenant_id=tenant.id)
    cache: KeyCache = request.app.state.key_cache
    cache.drop_key(key_id)
    return Response(status_code=204)
