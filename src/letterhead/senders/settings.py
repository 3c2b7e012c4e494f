"""A tenant's sender settings: the active mode and what it makes the effective sender."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from letterhead.context import Context
from letterhead.errors import Conflict, InvalidInput
from letterhead.models import SenderMode, SmtpConfig, SmtpStatus, Tenant
from letterhead.plans import Feature


def fallback_mode(session: Session, tenant: Tenant) -> SenderMode:
    """The mode a tenant falls back to when its SMTP settings go away: branded when verified, else default."""
    from letterhead.senders import branded

    return SenderMode.BRANDED if branded.verified_sender(session, tenant.id) else SenderMode.DEFAULT


def set_mode(ctx: Context, *, tenant: Tenant, mode: str) -> None:
    try:
        wanted = SenderMode(mode)
    except ValueError:
        raise InvalidInput(
            "mode must be one of default, branded, smtp.", errors=[{"field": "mode", "message": "unknown mode"}]
        ) from None
    if wanted is SenderMode.SMTP:
        ctx.plans.require_feature(tenant.plan, Feature.SMTP)
    if wanted is SenderMode.BRANDED:
        ctx.plans.require_feature(tenant.plan, Feature.BRANDED)
    with ctx.db.session() as s:
        if wanted is SenderMode.SMTP:
            cfg = s.scalar(select(SmtpConfig).where(SmtpConfig.tenant_id == tenant.id))
            if cfg is None or cfg.status == SmtpStatus.UNTESTED.value:
                raise Conflict("Save SMTP settings that passed a test email before switching to SMTP.")
        if wanted is SenderMode.BRANDED:
            from letterhead.senders import branded

            if not branded.verified_sender(s, tenant.id):
                raise Conflict("Verify a sender address first (Email authentication → Send verification email).")
        row = s.get(Tenant, tenant.id)
        assert row is not None
        row.mode = wanted.value


def describe(ctx: Context, *, tenant: Tenant) -> dict[str, Any]:
    """GET email-settings: the mode, the effective sender right now, and each configuration's state."""
    from letterhead.senders import branded
    from letterhead.senders.resolve import resolve_route_in

    with ctx.db.session() as s:
        row = s.get(Tenant, tenant.id)
        assert row is not None
        route = resolve_route_in(ctx, s, row)
        cfg = s.scalar(select(SmtpConfig).where(SmtpConfig.tenant_id == tenant.id))
        branded_info = branded.describe(ctx, s, row)
    return {
        "mode": row.mode,
        "plan": row.plan,
        "features": {
            f.value: ctx.plans.has(row.plan, f) for f in (Feature.BRANDED, Feature.SMTP, Feature.DOMAINS)
        },
        "effective": {
            "mode": route.mode.value,
            "from_email": route.from_addr,
            "from_name": route.from_name,
            "reply_to": route.reply_to,
            "transport": route.transport,
            "note": route.note,
            "held": route.hold_reason,
        },
        "smtp": (
            {"configured": True, "status": cfg.status, "host": cfg.host, "from_email": cfg.from_email,
             "last_error": cfg.last_error}
            if cfg
            else {"configured": False}
        ),
        "branded": branded_info,
    }
