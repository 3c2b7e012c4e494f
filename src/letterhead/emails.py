"""Accepting a one-off email (POST /v1/tenants/{t}/emails, ``letterhead send``)."""

from __future__ import annotations

from collections.abc import Sequence

from letterhead.addresses import check_header_text, parse_address_list
from letterhead.context import Context
from letterhead.delivery.queue import Accepted, NewMessage, enqueue
from letterhead.errors import InvalidInput, PayloadTooLarge
from letterhead.models import MessageKind


def accept_email(
    ctx: Context,
    *,
    tenant_id: str,
    to: Sequence[str],
    subject: str,
    html: str | None,
    text: str | None,
    idempotency_key: str | None = None,
    wake: bool = True,
) -> Accepted:
    recipients = parse_address_list(list(to), field="to", max_count=ctx.settings.max_recipients)
    subject = check_header_text(subject, field="subject", max_len=900)
    if not subject:
        raise InvalidInput("The subject is empty.", errors=[{"field": "subject", "message": "required"}])
    if not (html and html.strip()) and not (text and text.strip()):
        raise InvalidInput(
            "The email has no body: give 'html', 'text' or both.",
            errors=[{"field": "html", "message": "html or text is required"}],
        )
    size = len(subject) + len(html or "") + len(text or "")
    if size > ctx.settings.max_payload_bytes:
        raise PayloadTooLarge(
            f"The email is {size} bytes; the limit is {ctx.settings.max_payload_bytes} (LETTERHEAD_MAX_PAYLOAD_BYTES)."
        )
    if idempotency_key is not None:
        idempotency_key = check_header_text(idempotency_key, field="idempotency_key", max_len=200) or None
    accepted = enqueue(
        ctx,
        NewMessage(
            tenant_id=tenant_id,
            kind=MessageKind.EMAIL,
            to=recipients,
            subject=subject,
            html=html,
            text=text,
            idempotency_key=idempotency_key,
            request_fingerprint={"to": recipients, "subject": subject, "html": html, "text": text},
        ),
    )
    if wake and ctx.notify is not None:
        ctx.notify()
    return accepted
