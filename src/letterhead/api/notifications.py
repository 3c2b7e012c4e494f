from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from letterhead.api.deps import CtxDep, PrincipalDep, TenantDep
from letterhead.notifications import service
from letterhead.notifications.events import EVENTS

router = APIRouter(tags=["notifications"])


class Recipient(BaseModel):
    email: str
    name: str | None = None
    locale: str | None = None


class NotificationCreate(BaseModel):
    event: str
    to: str | Recipient = Field(description="An address, or {email, locale?}: the recipient's locale wins")
    locale: str | None = None
    data: dict[str, Any]
    idempotency_key: str | None = Field(default=None, max_length=200)

    def item(self, header_key: str | None = None) -> service.NotificationIn:
        to = self.to.model_dump() if isinstance(self.to, Recipient) else self.to
        return service.NotificationIn(self.event, to, self.data, self.locale, self.idempotency_key or header_key)


class NotificationBatch(BaseModel):
    notifications: list[NotificationCreate] = Field(min_length=1, max_length=service.MAX_BATCH)


class TemplateUpdate(BaseModel):
    subject: str
    html: str
    text: str | None = None


class EventSwitch(BaseModel):
    enabled: bool


class PreviewRequest(BaseModel):
    data: dict[str, Any] | None = Field(default=None, description="Defaults to the event's example")
    subject: str | None = Field(default=None, description="Unsaved source to preview (with html)")
    html: str | None = None
    text: str | None = None


@router.get("/v1/events")
def events(_: PrincipalDep, locale: str = "en") -> dict[str, Any]:
    """The event catalogue: each event's JSON Schema for its data and an example payload."""
    return {"events": [e.as_dict(locale=locale) for e in EVENTS.values()]}


@router.post("/v1/tenants/{tenant_id}/notifications", status_code=202)
def notify(
    tenant: TenantDep,
    body: NotificationCreate,
    ctx: CtxDep,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> JSONResponse:
    """Queue one notification. A disabled event answers 200 ``{"skipped": "event disabled"}``."""
    [accepted] = service.accept(ctx, tenant=tenant, items=[body.item(idempotency_key)])
    if accepted is None:
        return JSONResponse({"skipped": "event disabled"}, status_code=200)
    headers = {} if accepted.created else {"Idempotent-Replayed": "true"}
    return JSONResponse({"id": accepted.id, "status": accepted.status}, status_code=202, headers=headers)


@router.post("/v1/tenants/{tenant_id}/notifications/batch", status_code=202)
def notify_batch(tenant: TenantDep, body: NotificationBatch, ctx: CtxDep) -> dict[str, Any]:
    """Up to 1,000 notifications in one transaction: all are queued or none. ``ids`` follow the request's order
    (``null`` for a disabled event, listed in ``skipped``)."""
    out = service.accept(ctx, tenant=tenant, items=[n.item() for n in body.notifications])
    return {
        "ids": [a.id if a else None for a in out],
        "skipped": [i for i, a in enumerate(out) if a is None],
    }


@router.get("/v1/tenants/{tenant_id}/templates")
def templates(tenant: TenantDep, ctx: CtxDep, locale: str = "en") -> dict[str, Any]:
    return {"events": service.list_events(ctx, tenant=tenant, locale=locale)}


@router.get("/v1/tenants/{tenant_id}/templates/{event}/{locale}")
def template_get(tenant: TenantDep, ctx: CtxDep, event: str, locale: str) -> dict[str, Any]:
    return service.get_template(ctx, tenant=tenant, event=event, locale=locale)


@router.put("/v1/tenants/{tenant_id}/templates/{event}/{locale}")
def template_put(tenant: TenantDep, ctx: CtxDep, event: str, locale: str, body: TemplateUpdate) -> dict[str, Any]:
    """Save an override; it must compile and render with the event's example (422 with line numbers)."""
    return service.save_template(
        ctx, tenant=tenant, event=event, locale=locale, subject=body.subject, html=body.html, text=body.text
    )


@router.delete("/v1/tenants/{tenant_id}/templates/{event}/{locale}", status_code=204)
def template_delete(tenant: TenantDep, ctx: CtxDep, event: str, locale: str) -> Response:
    """Revert to the default template."""
    service.revert_template(ctx, tenant=tenant, event=event, locale=locale)
    return Response(status_code=204)


@router.put("/v1/tenants/{tenant_id}/templates/{event}")
def event_switch(tenant: TenantDep, ctx: CtxDep, event: str, body: EventSwitch) -> dict[str, Any]:
    service.set_enabled(ctx, tenant=tenant, event=event, enabled=body.enabled)
    return {"event": event, "enabled": body.enabled}


@router.post("/v1/tenants/{tenant_id}/templates/{event}/{locale}/preview")
def template_preview(
    tenant: TenantDep, ctx: CtxDep, event: str, locale: str, body: PreviewRequest | None = None
) -> dict[str, Any]:
    """Rendered subject, HTML and text without sending."""
    body = body or PreviewRequest()
    return service.preview(
        ctx, tenant=tenant, event=event, locale=locale, data=body.data, subject=body.subject, html=body.html,
        text=body.text,
    )
