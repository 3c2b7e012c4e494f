"""Custom sending domains: add (a DKIM key pair and the records to publish), list, show, check DNS, delete."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field

from letterhead.api.deps import CtxDep, TenantDep
from letterhead.senders import domains

router = APIRouter(tags=["domains"])


class DomainCreate(BaseModel):
    domain: str = Field(max_length=1000, description="The domain to send from, e.g. example.com (IDNs accepted)")


@router.post("/v1/tenants/{tenant_id}/domains", status_code=201)
def create_domain(tenant: TenantDep, body: DomainCreate, ctx: CtxDep) -> dict[str, Any]:
    """Add a sending domain. Letterhead generates its DKIM key pair (the private key never leaves it) and
    answers with the DNS records to publish: DKIM (required), SPF and DMARC (advised). Then POST ``…/check``."""
    return domains.add_domain(ctx, tenant=tenant, domain=body.domain)


@router.get("/v1/tenants/{tenant_id}/domains")
def list_domains(tenant: TenantDep, ctx: CtxDep) -> dict[str, Any]:
    """The tenant's sending domains with their records and last check."""
    return {"domains": domains.list_domains(ctx, tenant=tenant)}


@router.get("/v1/tenants/{tenant_id}/domains/{domain}")
def get_domain(tenant: TenantDep, domain: str, ctx: CtxDep) -> dict[str, Any]:
    """One sending domain: status, selector, and each record with its status, what DNS held and advice."""
    return domains.get_domain(ctx, tenant=tenant, domain=domain)


@router.post("/v1/tenants/{tenant_id}/domains/{domain}/check")
def check_domain(tenant: TenantDep, domain: str, ctx: CtxDep) -> dict[str, Any]:
    """Look the records up in DNS now. The domain becomes ``verified`` (mail from it is DKIM-signed) when the
    DKIM record holds its public key; SPF and DMARC are reported with advice. 503 when DNS cannot answer."""
    return domains.check_domain(ctx, tenant=tenant, domain=domain)


@router.delete("/v1/tenants/{tenant_id}/domains/{domain}", status_code=204)
def delete_domain(tenant: TenantDep, domain: str, ctx: CtxDep) -> Response:
    """Forget the domain and its key; mail from it is no longer DKIM-signed."""
    domains.delete_domain(ctx, tenant=tenant, domain=domain)
    return Response(status_code=204)
