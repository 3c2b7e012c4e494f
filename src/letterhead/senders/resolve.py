"""The effective sender of a tenant, derived at send time (never copied into message rows at accept time).

A ``Route`` says which From/Reply-To a message gets and which transport carries it. Messages of one batch that
share a route share pooled connections.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
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
    #: The diagnosis a held message records (category and its ja/en remedy), e.g. a suspended tenant's.
    hold_category: str | None = None
    hold_remedy: dict[str, str] | None = None

    @cached_property
    def log_fields(self) -> dict[str, Any]:
        """What every message sent by this route records about it (the same for each: built once per batch).
        Shared: copy before changing."""
        fields: dict[str, Any] = {
            "from_addr": self.from_addr,
            "from_name": self.from_name,
            "reply_to": self.reply_to,
            "mode": self.mode.value,
            "transport": self.transport,
            "note": self.note,
        }
        if self.hold_category:  # only on a held route (no endpoint): nothing is sent with these fields
            fields.update(category=self.hold_category, remedy=self.hold_remedy)
        return fields


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


SUSPENDED_NOTE = "Held: the tenant is suspended. It is sent once the tenant is resumed."
SUSPENDED_REMEDY = {
    "en": "This tenant is suspended, so its mail is held (not lost). Ask the platform operator to resume it "
    "(letterhead tenant resume); the held mail is then sent at once.",
    "ja": "このテナントは停止中のため、メールは保留されています（失われません）。プラットフォームの運営者に再開"
    "（letterhead tenant resume）を依頼してください。再開するとすぐに送信されます。",
}


def suspended(route: Route) -> Route:
    """``route`` held while its tenant is suspended: nothing is sent, the message is deferred (not attempted, so
    no attempt row) with a note and a ``tenant_suspended`` diagnosis, and looked at again now and then;
    ``tenants.set_suspended`` makes it due at once on resume."""
    from letterhead.tenants import SUSPENDED_CATEGORY, SUSPENDED_RECHECK_SECONDS

    return replace(
        route,
        endpoint=None,
        capacity=None,
        dkim=None,
        config_id=None,  # nothing goes through the tenant's SMTP account: no quota or health bookkeeping
        hold_reason=SUSPENDED_NOTE,
        hold_until=utcnow() + timedelta(seconds=SUSPENDED_RECHECK_SECONDS),
        hold_category=SUSPENDED_CATEGORY,
        hold_remedy=SUSPENDED_REMEDY,
    )


def default_route(ctx: Context, tenant: Tenant, *, note: str | None = None) -> Route:
    """The platform route; held when the tenant is suspended (verification mail goes this way too)."""
    route = _default_route(ctx, tenant, note=note)
    return suspended(route) if tenant.suspended_at is not None else route


def _default_route(ctx: Context, tenant: Tenant, *, note: str | None = None) -> Route:
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
    """The route for ``tenant``'s next messages, read in ``session`` (held while the tenant is suspended)."""
    route = _resolve_route_in(ctx, session, tenant)
    return suspended(route) if tenant.suspended_at is not None and route.hold_category is None else route


def _resolve_route_in(ctx: Context, session: Session, tenant: Tenant) -> Route:
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
