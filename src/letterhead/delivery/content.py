"""What a message says: subject, HTML and text, from the stored content or the tenant's template."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from letterhead.errors import TemplateError
from letterhead.models import MessageKind, Tenant
from letterhead.notifications.templates import CompiledTemplate, TemplateSource, render_many


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
    """One message's content, rendered alone. Raises ``TemplateError`` when a tenant template cannot render this
    message's data."""
    [content] = render_contents([(row, tenant)], overrides, platform)
    if isinstance(content, TemplateError):
        raise content
    return content


#: Holds a notification's place in ``render_contents`` until ``render_many`` has rendered it.
_PENDING = Content("", None, None)


def render_contents(
    items: Sequence[tuple[Any, Tenant]],
    overrides: Mapping[tuple[str, str, str], TemplateSource],
    platform: Mapping[str, Any],
) -> list[Content | TemplateError]:
    """``render_content`` for each (row, tenant), a failure returned in its message's place; the notifications
    rendered together (``templates.render_many``: one template part at a time is faster than one message)."""
    from letterhead.notifications.service import notification_job

    out: list[Content | TemplateError] = []
    jobs: list[tuple[CompiledTemplate, Mapping[str, Any]]] = []
    slots: list[int] = []
    for row, tenant in items:
        if row.kind != MessageKind.NOTIFICATION.value:
            out.append(Content(row.subject or "", row.html, row.text))
            continue
        try:
            job = notification_job(
                event=row.event,
                locale=row.locale or tenant.locale,
                data=row.data or {},
                tenant=tenant,
                overrides=overrides,
                platform=platform,
            )
        except TemplateError as exc:
            out.append(exc)
            continue
        slots.append(len(out))
        out.append(_PENDING)
        jobs.append(job)
    for slot, rendered in zip(slots, render_many(jobs), strict=True):
        out[slot] = rendered if isinstance(rendered, TemplateError) else Content(
            rendered.subject, rendered.html, rendered.text
        )
    return out
