"""The email log: a tenant's messages, newest first, with their attempts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from letterhead.context import Context
from letterhead.errors import InvalidInput, NotFound
from letterhead.models import Attempt, Message, MessageKind, MessageStatus


@dataclass(frozen=True)
class LogFilter:
    status: str | None = None
    to: str | None = None
    kind: str | None = None
    event: str | None = None
    mode: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def validate(self) -> None:
        errors = []
        if self.status and self.status not in set(MessageStatus):
            errors.append({"field": "status", "message": f"one of {', '.join(MessageStatus)}"})
        if self.kind and self.kind not in set(MessageKind):
            errors.append({"field": "kind", "message": f"one of {', '.join(MessageKind)}"})
        if self.since and self.until and self.since > self.until:
            errors.append({"field": "since", "message": "must not be after 'until'"})
        if errors:
            raise InvalidInput("Invalid log filter.", errors=errors)


@dataclass(frozen=True)
class Page:
    messages: list[Message]
    next_cursor: str | None


def list_messages(ctx: Context, *, tenant_id: str, flt: LogFilter, cursor: str | None, limit: int = 50) -> Page:
    flt.validate()
    limit = max(1, min(limit, 200))
    q = select(Message).where(Message.tenant_id == tenant_id)
    if flt.status:
        q = q.where(Message.status == flt.status)
    if flt.to:
        q = q.where(Message.to_first.contains(flt.to.strip().lower(), autoescape=True))
    if flt.kind:
        q = q.where(Message.kind == flt.kind)
    if flt.event:
        q = q.where(Message.event == flt.event)
    if flt.mode:
        q = q.where(Message.mode == flt.mode)
    if flt.since:
        q = q.where(Message.created_at >= flt.since)
    if flt.until:
        q = q.where(Message.created_at < flt.until)
    if cursor:
        # Ids are time-ordered (new_id), so the id of the last row seen is the cursor.
        q = q.where(Message.id < cursor)
    q = q.order_by(Message.id.desc()).limit(limit + 1)
    with ctx.db.session() as s:
        rows = list(s.scalars(q))
    more = len(rows) > limit
    rows = rows[:limit]
    return Page(rows, rows[-1].id if more and rows else None)


def get_message(ctx: Context, *, tenant_id: str, message_id: str) -> Message:
    with ctx.db.session() as s:
        msg = s.scalar(
            select(Message)
            .where(Message.id == message_id, Message.tenant_id == tenant_id)
            .options(selectinload(Message.attempts))
        )
    if msg is None:
        raise NotFound(f"No message '{message_id}' for this tenant.")
    return msg


def iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def message_summary(m: Message) -> dict[str, Any]:
    return {
        "id": m.id,
        "kind": m.kind,
        "event": m.event,
        "to": m.to_addrs,
        "subject": m.subject,
        "status": m.status,
        "mode": m.mode,
        "from": m.from_addr,
        "from_name": m.from_name,
        "reply_to": m.reply_to,
        "transport": m.transport,
        "attempt_count": m.attempt_count,
        "next_attempt_at": iso(m.next_attempt_at) if m.status in ("queued", "deferred") else None,
        "created_at": iso(m.created_at),
        "sent_at": iso(m.sent_at),
        "last_reply": (
            {"code": m.last_code, "enhanced": m.last_enhanced, "text": m.last_text}
            if m.last_code or m.last_text
            else None
        ),
        "category": m.category,
        "remedy": m.remedy,
        "note": m.note,
        "message_id": m.message_id_header,
        "idempotency_key": m.idempotency_key,
    }


def attempt_dict(a: Attempt) -> dict[str, Any]:
    return {
        "number": a.number,
        "started_at": iso(a.started_at),
        "duration_ms": a.duration_ms,
        "mode": a.mode,
        "transport": a.transport,
        "outcome": a.outcome,
        "stage": a.stage,
        "reply": {"code": a.code, "enhanced": a.enhanced, "text": a.text} if a.code else None,
        "error": a.error,
        "detail": None if a.code else a.text,
        "category": a.category,
        "transcript": a.transcript,
    }


def message_detail(m: Message) -> dict[str, Any]:
    return message_summary(m) | {"attempts": [attempt_dict(a) for a in m.attempts]}
