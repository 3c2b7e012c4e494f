"""What a message says: subject, HTML and text, from the stored content or the tenant's template."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from letterhead.models import MessageKind, Tenant
from letterhead.notifications.templates import TemplateSource


@dataclass(frozen=True)
class Content:
    subject: str
    html: str | None
    text: str | None


def render_content(
    row: Any,
    tenant: Tenant,
    overrides: Mapping[tuple[str, str, str], TemplateSource],
    platform: Mapping[str, Any],
) -> Content:
    """Raises ``TemplateError`` when a tenant template cannot render this message's data."""
    if row.kind == MessageKind.NOTIFICATION.value:
        from letterhead.notifications.service import render_notification

        rendered = render_notification(
            event=row.event,
            locale=row.locale or tenant.locale,
            data=row.data or {},
            tenant=tenant,
            overrides=overrides,
            platform=platform,
        )
        return Content(rendered.subject, rendered.html, rendered.text)
    return Content(row.subject or "", row.html, row.text)
