from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field

from letterhead.api.deps import CtxDep, PrincipalDep, SendingTenantDep, TenantDep
from letterhead.senders import settings as sender_settings
from letterhead.senders import smtp as smtp_service
from letterhead.smtp.presets import PRESETS

router = APIRouter(tags=["smtp"])


class SmtpFields(BaseModel):
    preset: str = "custom"
    host: str = Field(max_length=253)
    port: int
    security: Literal["ssl", "starttls", "none"]
    username: str | None = Field(default=None, max_length=320)
    password: str | None = Field(default=None, max_length=1000)
    from_email: str
    from_name: str | None = Field(default=None, max_length=200)
    reply_to: str | None = None
    verify_tls: bool = True
    daily_limit: int | None = None
    per_minute_limit: int | None = None
    fallback_to_default: bool = False

    def settings(self) -> smtp_service.SmtpSettings:
        return smtp_service.SmtpSettings(**self.model_dump())


class SmtpTest(SmtpFields):
    to: str = Field(description="Where the test email goes")


class SmtpSave(SmtpFields):
    proof: str | None = Field(default=None, description="The proof returned by a successful test")


class ModeUpdate(BaseModel):
    mode: str


@router.get("/v1/smtp/presets")
def presets(_: PrincipalDep) -> dict[str, Any]:
    """Providers with host, port/security pairs, limits and setup steps (ja/en)."""
    return {"presets": [p.as_dict() for p in PRESETS.values()]}


@router.post("/v1/tenants/{tenant_id}/smtp/test")
def smtp_test(tenant: SendingTenantDep, body: SmtpTest, ctx: CtxDep) -> dict[str, Any]:
    """Run the step-by-step check and send a real test email; a passing test returns a ``proof`` for saving."""
    fields = body.model_dump(exclude={"to"})
    return smtp_service.run_test(ctx, tenant=tenant, settings=smtp_service.SmtpSettings(**fields), to=body.to)


@router.put("/v1/tenants/{tenant_id}/smtp")
def smtp_save(tenant: TenantDep, body: SmtpSave, ctx: CtxDep) -> dict[str, Any]:
    """Save settings that passed a test (the ``proof`` must match these exact values; 409 otherwise)."""
    fields = body.model_dump(exclude={"proof"})
    smtp_service.save(ctx, tenant=tenant, settings=smtp_service.SmtpSettings(**fields), proof=body.proof)
    return smtp_service.public(ctx, tenant=tenant)


@router.get("/v1/tenants/{tenant_id}/smtp")
def smtp_get(tenant: TenantDep, ctx: CtxDep) -> dict[str, Any]:
    """The saved settings (never the password: ``has_password``), status, last error and remaining quota."""
    return smtp_service.public(ctx, tenant=tenant)


@router.delete("/v1/tenants/{tenant_id}/smtp", status_code=204)
def smtp_delete(tenant: TenantDep, ctx: CtxDep) -> Response:
    smtp_service.remove(ctx, tenant=tenant)
    return Response(status_code=204)


@router.get("/v1/tenants/{tenant_id}/email-settings")
def email_settings(tenant: TenantDep, ctx: CtxDep) -> dict[str, Any]:
    return sender_settings.describe(ctx, tenant=tenant)


@router.put("/v1/tenants/{tenant_id}/email-settings")
def email_settings_put(tenant: TenantDep, body: ModeUpdate, ctx: CtxDep) -> dict[str, Any]:
    sender_settings.set_mode(ctx, tenant=tenant, mode=body.mode)
    return sender_settings.describe(ctx, tenant=tenant)
