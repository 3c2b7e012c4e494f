from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from letterhead.api.deps import CtxDep, PlatformDep, PrincipalDep, TenantDep
from letterhead.maillog import iso
from letterhead.models import Tenant
from letterhead.tenants import create_api_key, create_tenant, list_tenants, update_tenant

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
    return {"id": created.id, "key": created.key, "scope": created.scope, "tenant_id": created.tenant_id}
