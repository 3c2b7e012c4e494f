"""The effective sender of a tenant, derived at send time (never copied into message rows at accept time).

A ``Route`` says which From/Reply-To a message gets and which transport carries it. Messages of one batch that
share a route share pooled connections.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from functools import cached_property
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from letterhead.context import Context
from letterhead.models import SenderMode, SmtpConfig, SmtpStatus, Tenant, utcnow
from letterhead.senders.default import platform_address, standard_sender_name
from letterhead.senders.domains import DkimKey
from letterhead.smtp.client import Endpoint, Security


@dataclass(frozen=True)
class Route:
    key: str  # pooling/grouping key: "platform", "smtp:<config id>"
    mode: SenderMode
    from_addr: str
    from_name: str | None
    reply_to: str | None
    endpoint: Endpoint | None  # None: held (see hold_reason)
    transport: str  # shown in the log: "platform (devinbox)", "smtp smtp.gmail.com:465"
    note: str | None = None
    hold_reason: str | None = None
    hold_until: datetime | None = None
    #: The tenant's SMTP configuration this route sends through (for quota and health bookkeeping).
    config_id: str | None = None
    #: How many messages may go now (quota); None: no limit. The rest wait until ``hold_until``.
    capacity: int | None = None
    #: The SMTP preset (gmail, microsoft365, ...) of a tenant's server: names the provider in remedies.
    provider: str | None = None
    #: Set when the From is on the tenant's verified sending domain and the mail goes through the platform
    #: transport: sign each message with ``senders.domains.sign(data, dkim)`` and prepend the header.
    dkim: DkimKey | None = None

    @cached_property
    def log_fields(self) -> dict[str, Any]:
        """What every message sent by this route records about it (the same for each: built once per batch).
        Shared: copy before changing."""
        return {
            "from_addr": self.from_addr,
            "from_name": self.from_name,
            "reply_to": self.reply_to,
            "mode": self.mode.value,
            "transport": self.transport,
            "note": self.note,
        }


def dev_inbox_port(ctx: Context) -> int | None:
    if ctx.dev_inbox_port:
        return ctx.dev_inbox_port
    path = ctx.settings.data_dir / "devinbox.port"
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def platform_endpoint(ctx: Context) -> tuple[Endpoint | None, str]:
    """The platform transport: the configured SMTP URL, or the development inbox."""
    t = ctx.settings.platform_transport
    timeout = ctx.settings.smtp_timeout_seconds
    if t.is_dev_inbox:
        port = dev_inbox_port(ctx)
        if port is None:
            return None, "platform (development inbox not running)"
        return Endpoint(host="127.0.0.1", port=port, security=Security.NONE, timeout=timeout), "platform (devinbox)"
    return (
        Endpoint(
            host=t.host,
            port=t.port,
            security=Security(t.security),
            username=t.username,
            password=t.password,
            timeout=timeout,
        ),
        f"platform {t.host}:{t.port}",
    )


def default_route(ctx: Context, tenant: Tenant, *, note: str | None = None) -> Route:
    addr, _ = platform_address(ctx.settings)
    endpoint, label = platform_endpoint(ctx)
    return Route(
        key="platform",
        mode=SenderMode.DEFAULT,
        from_addr=addr,
        from_name=standard_sender_name(ctx.settings, tenant.name),
        reply_to=tenant.contact_email,
        endpoint=endpoint,
        transport=label,
        note=note,
        hold_reason=None if endpoint else "The development inbox is not running: start `letterhead serve`.",
    )


def resolve_route_in(ctx: Context, session: Session, tenant: Tenant) -> Route:
    """The route for ``tenant``'s next messages, read in ``session``."""
    if tenant.mode == SenderMode.SMTP.value:
        cfg = session.scalar(select(SmtpConfig).where(SmtpConfig.tenant_id == tenant.id))
        if cfg is not None:
            return smtp_route(ctx, session, tenant, cfg)
    if tenant.mode == SenderMode.BRANDED.value:
        route = branded_route(ctx, session, tenant)
        if route is not None:
            return route
    return default_route(ctx, tenant)


def branded_route(ctx: Context, session: Session, tenant: Tenant) -> Route | None:
    """The verified branded address through the platform transport, or None (no verified address, or the plan
    no longer includes branded senders: the default route then). Where the From domain's DMARC policy would
    make that mail fail (and the domain is not authenticated with Letterhead), "<Name> via <Platform>" from the
    platform address with Reply-To the branded address (see senders/branded.py)."""
    from letterhead.plans import Feature
    from letterhead.senders import branded

    sender = branded.verified_sender(session, tenant.id)
    if sender is None or not ctx.plans.has(tenant.plan, Feature.BRANDED):
        return None
    fields = branded.route_fields(ctx, session, tenant, sender[0], sender[1])
    endpoint, label = platform_endpoint(ctx)
    dkim = None
    if fields["from_addr"] == sender[0]:  # not rewritten "via Platform": sign when the domain is verified
        from letterhead.senders import domains

        dkim = domains.dkim_key_for(ctx, session, tenant.id, sender[0].rpartition("@")[2])
    return Route(
        key="platform",  # the same transport as the default route: shares its pooled connections
        mode=SenderMode.BRANDED,
        from_addr=fields["from_addr"],
        from_name=fields["from_name"],
        reply_to=fields["reply_to"],
        endpoint=endpoint,
        transport=label,
        note=fields["note"],
        hold_reason=None if endpoint else "The development inbox is not running: start `letterhead serve`.",
        dkim=dkim,
    )


def smtp_route(ctx: Context, session: Session, tenant: Tenant, cfg: SmtpConfig) -> Route:
    from letterhead.senders import smtp as smtp_settings

    route = _smtp_base(ctx, cfg)
    if cfg.status == SmtpStatus.FAILING.value:
        category = (cfg.last_error or {}).get("category", "auth_failed")
        if cfg.fallback_to_default:
            return default_route(
                ctx, tenant, note=f"Sent through the platform: the tenant's SMTP server is failing ({category})."
            )
        return replace(
            route,
            endpoint=None,
            hold_reason=f"Held: the SMTP settings are failing ({category}). Update the password and test again.",
        )
    now = utcnow()
    q = smtp_settings.quota(session, cfg, now)
    remaining = q.remaining
    if q.paused_until or remaining == 0:
        return replace(
            route,
            endpoint=None,
            hold_reason="Deferred: the provider's sending limit is reached; it resumes when the window reopens.",
            hold_until=smtp_settings.next_capacity_at(session, cfg, q, now),
        )
    if remaining is None:
        return route
    return replace(route, capacity=remaining, hold_until=smtp_settings.next_capacity_at(session, cfg, q, now))


def _smtp_base(ctx: Context, cfg: SmtpConfig) -> Route:
    from letterhead.smtp.client import Endpoint, Security

    password = ctx.vault.decrypt(cfg.password_enc) if cfg.password_enc else None
    return Route(
        key=f"smtp:{cfg.id}",
        mode=SenderMode.SMTP,
        from_addr=cfg.from_email,
        from_name=cfg.from_name,
        reply_to=cfg.reply_to,
        endpoint=Endpoint(
            host=cfg.host,
            port=cfg.port,
            security=Security(cfg.security),
            username=cfg.username,
            password=password,
            timeout=ctx.settings.smtp_timeout_seconds,
            verify_tls=cfg.verify_tls,
            max_connections=cfg.max_connections,
            allow_private=ctx.settings.allow_private_smtp_hosts,
        ),
        transport=f"smtp {cfg.host}:{cfg.port} ({cfg.security})",
        config_id=cfg.id,
        provider=cfg.preset if cfg.preset != "custom" else None,
    )
