"""Branded sender verification: POST sender-verifications (+ resend). The link's page is web/verify.py."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from letterhead.api.deps import CtxDep, SendingTenantDep, TenantDep
from letterhead.senders import branded

router = APIRouter(tags=["sender-verifications"])


class SenderVerificationCreate(BaseModel):
    email: str = Field(max_length=320, description="The address to send from (a bare address)")
    name: str | None = Field(default=None, max_length=1000, description="Display name; the tenant's name if empty")


@router.post("/v1/tenants/{tenant_id}/sender-verifications", status_code=202)
def create_verification(tenant: SendingTenantDep, body: SenderVerificationCreate, ctx: CtxDep) -> JSONResponse:
    """Send a verification email to ``email`` (through the platform, in the tenant's locale). The address
    becomes the From of all mail once its link is confirmed; the current verified address stays in use until
    then. A domain without a mail server is accepted with a warning in ``warnings``. Re-entering the verified
    address with only a new name updates the name (200, no email)."""
    result = branded.request_verification(ctx, tenant=tenant, email=body.email, name=body.name)
    return JSONResponse(result, status_code=202 if result["status"] == "pending" else 200)


@router.post("/v1/tenants/{tenant_id}/sender-verifications/resend", status_code=202)
def resend_verification(tenant: SendingTenantDep, ctx: CtxDep) -> JSONResponse:
    """Send a fresh link for the pending address; the older link stops working. Rate-limited: 60 s between
    sends, 5 per hour, 20 per day (429 with Retry-After)."""
    return JSONResponse(branded.resend_verification(ctx, tenant=tenant), status_code=202)


@router.get("/v1/tenants/{tenant_id}/sender-verifications")
def get_verification(tenant: TenantDep, ctx: CtxDep) -> dict[str, Any]:
    """The branded sender's state (the same as ``branded`` in email-settings)."""
    with ctx.db.session() as s:
        info = branded.describe(ctx, s, tenant)
    return info or {}
