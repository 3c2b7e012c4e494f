"""What a message says: subject, HTML and text, from the stored content or the tenant's template."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from letterhead.models import MessageKind, Tenant


@dataclass(frozen=True)
class Content:
    subject: str
    html: str | None
    text: str | None


class ContentRenderer:
    """Per-worker renderer; notification templates are compiled once and cached (see notifications.templates)."""

    def __init__(self) -> None:
        self._notifications: Any = None

    def render(self, row: Any, tenant: Tenant, overrides: dict[tuple[str, str], Any] | None = None) -> Content:
        if row.kind == MessageKind.NOTIFICATION.value:
            from letterhead.notifications.service import render_notification

            rendered = render_notification(
                event=row.event, locale=row.locale or tenant.locale, data=row.data or {}, tenant=tenant,
                overrides=overrides or {},
            )
            return Content(rendered.subject, rendered.html, rendered.text)
        return Content(row.subject or "", row.html, row.text)
