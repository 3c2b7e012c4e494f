"""What a message says: subject, HTML and text, from the stored content or the tenant's template.

A body that carries a bearer link (a branded sender's verification email) is stored sealed: html and text are
Vault ciphertext (``models.SEALED_BODY`` in the options), so neither the table nor the SQLite write-ahead log
holds a usable link; it is opened here, in memory, when the worker composes the email.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from letterhead.errors import TemplateError
from letterhead.models import SEALED_BODY, MessageKind, Tenant
from letterhead.notifications.templates import CompiledTemplate, TemplateSource, render_many
from letterhead.security import Vault


@dataclass(frozen=True)
class Content:
    subject: str
    html: str | None
    text: str | None


def seal(vault: Vault, html: str | None, text: str | None) -> tuple[str | None, str | None]:
    """html and text as stored for a message whose options carry ``SEALED_BODY``."""
    return (vault.encrypt(html) if html is not None else None, vault.encrypt(text) if text is not None else None)


def _stored(row: Any, vault: Vault) -> Content:
    html, text = row.html, row.text
    if (row.options or {}).get(SEALED_BODY):
        html = vault.decrypt(html) if html is not None else None
        text = vault.decrypt(text) if text is not None else None
    return Content(row.subject or "", html, text)


def render_content(
    row: Any,
    tenant: Tenant,
    overrides: Mapping[tuple[str, str, str], TemplateSource],
    platform: Mapping[str, Any],
    *,
    vault: Vault,
) -> Content:
    """One message's content, rendered alone. Raises ``TemplateError`` when a tenant template cannot render this
    message's data."""
    [content] = render_contents([(row, tenant)], overrides, platform, vault=vault)
    if isinstance(content, TemplateError):
        raise content
    return content


#: Holds a notification's place in ``render_contents`` until ``render_many`` has rendered it.
_PENDING = Content("", None, None)


def render_contents(
    items: Sequence[tuple[Any, Tenant]],
    overrides: Mapping[tuple[str, str, str], TemplateSource],
    platform: Mapping[str, Any],
    *,
    vault: Vault,
) -> list[Content | TemplateError]:
    """``render_content`` for each (row, tenant), a failure returned in its message's place; the notifications
    rendered together (``templates.render_many``: one template part at a time is faster than one message)."""
    from letterhead.notifications.service import notification_job

    out: list[Content | TemplateError] = []
    jobs: list[tuple[CompiledTemplate, Mapping[str, Any]]] = []
    slots: list[int] = []
    for row, tenant in items:
        if row.kind != MessageKind.NOTIFICATION.value:
            out.append(_stored(row, vault))
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
