from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query

from letterhead.api.deps import CtxDep, TenantDep
from letterhead.maillog import LogFilter, get_message, list_messages, message_detail, message_summary

router = APIRouter(tags=["messages"])


@router.get("/v1/tenants/{tenant_id}/messages")
def messages(
    tenant: TenantDep,
    ctx: CtxDep,
    status: str | None = None,
    to: str | None = None,
    kind: str | None = None,
    event: str | None = None,
    mode: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> dict[str, Any]:
    """The email log, newest first. Pass ``next_cursor`` back as ``cursor`` for the next page."""
    flt = LogFilter(status=status, to=to, kind=kind, event=event, mode=mode, since=since, until=until)
    page = list_messages(ctx, tenant_id=tenant.id, flt=flt, cursor=cursor, limit=limit)
    return {"messages": [message_summary(m) for m in page.messages], "next_cursor": page.next_cursor}


@router.get("/v1/tenants/{tenant_id}/messages/{message_id}")
def message(tenant: TenantDep, ctx: CtxDep, message_id: str) -> dict[str, Any]:
    """One message with every delivery attempt (SMTP reply, outcome, redacted transcript)."""
    return message_detail(get_message(ctx, tenant_id=tenant.id, message_id=message_id))
