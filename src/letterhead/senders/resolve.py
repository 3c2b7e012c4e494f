"""The effective sender of a tenant, derived at send time (never copied into message rows at accept time).

A ``Route`` says which From/Reply-To a message gets and which transport carries it. Messages of one batch that
share a route share pooled connections.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from letterhead.context import Context
from letterhead.models import SenderMode, Tenant
from letterhead.senders.default import platform_address, standard_sender_name
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


def resolve_route(ctx: Context, tenant: Tenant) -> Route:
    """The route for ``tenant``'s next message. Branded and SMTP modes hook in here."""
    return default_route(ctx, tenant)
