from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from letterhead.api.deps import CtxDep, SendingTenantDep
from letterhead.emails import accept_email

router = APIRouter(tags=["emails"])


class EmailCreate(BaseModel):
    to: list[str] = Field(min_length=1, description="Recipient addresses")
    subject: str
    html: str | None = None
    text: str | None = None
    idempotency_key: str | None = Field(default=None, max_length=200)


class EmailAccepted(BaseModel):
    id: str
    status: str


@router.post("/v1/tenants/{tenant_id}/emails", status_code=202, response_model=EmailAccepted)
def create_email(
    body: EmailCreate,
    tenant: SendingTenantDep,
    ctx: CtxDep,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> JSONResponse:
    """Queue one email from the tenant's effective sender. A repeated ``idempotency_key`` (body field or
    ``Idempotency-Key`` header) returns the first message; with a different body it is a 409."""
    accepted = accept_email(
        ctx,
        tenant_id=tenant.id,
        to=body.to,
        subject=body.subject,
        html=body.html,
        text=body.text,
        idempotency_key=body.idempotency_key or idempotency_key,
    )
    headers = {} if accepted.created else {"Idempotent-Replayed": "true"}
    return JSONResponse({"id": accepted.id, "status": accepted.status}, status_code=202, headers=headers)
