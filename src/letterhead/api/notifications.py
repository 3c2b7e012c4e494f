from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Header, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from letterhead.api import problems
from letterhead.api.deps import CtxDep, KeyCache, KnownTenants, PrincipalDep, TenantDep, TenantIdDep
from letterhead.context import Context
from letterhead.delivery.queue import Accepted
from letterhead.errors import LetterheadError
from letterhead.notifications import service
from letterhead.notifications.events import EVENTS
from letterhead.security import sha256_hex, split_api_key

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


class AcceptQueue:
    """Group commit for the notification routes.

    Requests hand their notifications here; while one group is being written (in a thread: validation, one read
    of the tenants, one INSERT transaction), the requests that arrive meanwhile wait and then go together as
    the next group. Under load a commit, a BEGIN and a tenant read serve many requests instead of one, and only
    one thread at a time competes for the database; alone, a request goes through at once. Each request still
    gets exactly its own outcome (see ``service.accept_jobs``)."""

    MAX_GROUP = 5 * service.MAX_BATCH  # notifications per transaction

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self._pending: list[tuple[service.AcceptJob, asyncio.Future[Any]]] = []
        self._drainer: asyncio.Task[None] | None = None

    async def submit(self, job: service.AcceptJob) -> list[Accepted | None]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._pending.append((job, future))
        if self._drainer is None or self._drainer.done():
            self._drainer = loop.create_task(self._drain())
        result = await future
        if isinstance(result, Exception):
            raise result
        accepted: list[Accepted | None] = result
        return accepted

    async def _drain(self) -> None:
        while self._pending:
            size, n = 0, 0
            for job, _ in self._pending:
                if n and size + len(job.items) > self.MAX_GROUP:
                    break
                size, n = size + len(job.items), n + 1
            group, self._pending = self._pending[:n], self._pending[n:]
            try:
                results: list[Any] = await run_in_threadpool(service.accept_jobs, self.ctx, [j for j, _ in group])
            except Exception as exc:
                results = [exc] * len(group)
            for (_, future), result in zip(group, results, strict=True):
                if not future.done():
                    future.set_result(result)


M = TypeVar("M", bound=BaseModel)

_loads: Callable[[bytes], Any]
try:
    from orjson import loads as _orjson_loads

    _loads = _orjson_loads
except ImportError:  # pragma: no cover - orjson is a dependency; json is the same, only slower
    _loads = json.loads

_ITEM_KEYS = frozenset(("event", "to", "locale", "data", "idempotency_key"))
_TO_KEYS = frozenset(("email", "name", "locale"))


def _plain_item(raw: Any, header_key: str | None = None) -> service.NotificationIn | None:
    """A notification that plainly fits ``NotificationCreate`` (the right types, nothing for pydantic to coerce
    or refuse), else None. Exactly what ``NotificationCreate(...).item()`` gives; ~1 µs instead of ~25 µs, which
    is most of a 1,000-notification batch's parsing. Anything else goes through pydantic, which also words the
    errors. (The type tests are written out, not in a helper: this runs 1,000 times per batch request.)"""
    if type(raw) is not dict or not raw.keys() <= _ITEM_KEYS:
        return None
    event, to, data = raw.get("event"), raw.get("to"), raw.get("data")
    locale, key = raw.get("locale"), raw.get("idempotency_key")
    if type(event) is not str or type(data) is not dict:
        return None
    if not (locale is None or type(locale) is str) or not (key is None or (type(key) is str and len(key) <= 200)):
        return None
    if type(to) is dict:
        email, name, to_locale = to.get("email"), to.get("name"), to.get("locale")
        if type(email) is not str or not to.keys() <= _TO_KEYS:
            return None
        if not (name is None or type(name) is str) or not (to_locale is None or type(to_locale) is str):
            return None
        to = {"email": email, "name": name, "locale": to_locale}
    elif type(to) is not str:
        return None
    return service.NotificationIn(event, to, data, locale, key or header_key)


def _plain_items(raw: bytes, header_key: str | None, batch: bool) -> list[service.NotificationIn] | None:
    try:
        parsed = _loads(raw)
    except ValueError:
        return None
    if not batch:
        item = _plain_item(parsed, header_key)
        return None if item is None else [item]
    if type(parsed) is not dict or parsed.keys() != {"notifications"}:
        return None
    listed = parsed["notifications"]
    if type(listed) is not list or not 1 <= len(listed) <= service.MAX_BATCH:
        return None
    items = [_plain_item(n) for n in listed]
    return None if None in items else items  # type: ignore[return-value]


async def _body(request: Request, model: type[M]) -> M:
    """The request body parsed and validated in one step by pydantic's JSON parser; errors as FastAPI reports
    them (422, fields under ``body``)."""
    raw = await request.body()
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        errors = [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]
        raise RequestValidationError(errors) from None


def _inline(schema: dict[str, Any]) -> dict[str, Any]:
    """A model's JSON Schema with its ``$defs`` substituted, for the OpenAPI document of routes that parse their
    own body."""
    defs = schema.pop("$defs", {})

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return walk(defs[ref.removeprefix("#/$defs/")])
            return {k: walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    out: dict[str, Any] = walk(schema)
    return out


def _request_body(model: type[BaseModel]) -> dict[str, Any]:
    return {"requestBody": {"required": True, "content": {"application/json": {
        "schema": _inline(model.model_json_schema())}}}}


@router.post("/v1/tenants/{tenant_id}/notifications", status_code=202,
             openapi_extra=_request_body(NotificationCreate))
async def notify(
    tenant_id: TenantIdDep,
    request: Request,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> JSONResponse:
    """Queue one notification. A disabled event answers 200 ``{"skipped": "event disabled"}``."""
    items = _plain_items(await request.body(), idempotency_key, batch=False)
    if items is None:
        items = [(await _body(request, NotificationCreate)).item(idempotency_key)]
    queue: AcceptQueue = request.app.state.accept_queue
    [accepted] = await queue.submit(service.AcceptJob(tenant_id, items))
    if accepted is None:
        return JSONResponse({"skipped": "event disabled"}, status_code=200)
    headers = {} if accepted.created else {"Idempotent-Replayed": "true"}
    return JSONResponse({"id": accepted.id, "status": accepted.status}, status_code=202, headers=headers)


@router.post("/v1/tenants/{tenant_id}/notifications/batch", status_code=202,
             openapi_extra=_request_body(NotificationBatch))
async def notify_batch(tenant_id: TenantIdDep, request: Request) -> dict[str, Any]:
    """Up to 1,000 notifications in one transaction: all are queued or none. ``ids`` follow the request's order
    (``null`` for a disabled event, listed in ``skipped``)."""
    items = _plain_items(await request.body(), None, batch=True)
    if items is None:
        items = [n.item() for n in (await _body(request, NotificationBatch)).notifications]
    queue: AcceptQueue = request.app.state.accept_queue
    out = await queue.submit(service.AcceptJob(tenant_id, items))
    return {
        "ids": [a.id if a else None for a in out],
        "skipped": [i for i, a in enumerate(out) if a is None],
    }


_HOT_PATH = re.compile(r"/v1/tenants/([^/]+)/notifications(/batch)?\Z")


class FastNotifications:
    """The two notification POST routes without FastAPI's routing and dependency machinery (about half of a
    single notification's CPU), for the plain case only: an API key already in the key cache, a tenant it may
    act on that is known to exist, a body the plain parser takes. The request is then accepted through the
    same ``AcceptQueue`` and answered exactly as the routes above answer. Anything else, including every error
    that FastAPI words (401, 404, 422 from pydantic), goes on to FastAPI with the body replayed; errors of the
    service itself (422 from the event's schema, 409) are rendered by the same problem+json function."""

    def __init__(self, app: ASGIApp, state: Any) -> None:
        self.app = app
        self.state = state  # the FastAPI app's state: key cache, known tenants, accept queue

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        m = _HOT_PATH.match(scope["path"])
        if m is None:
            await self.app(scope, receive, send)
            return
        tenant_id, batch = m.group(1), m.group(2) is not None
        auth = idem = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                auth = value.decode("latin-1")
            elif name == b"idempotency-key" and idem is None:
                idem = value.decode("latin-1")
        principal = None
        if auth is not None:
            scheme, _, key = auth.partition(" ")
            key = key.strip()
            if scheme.lower() == "bearer" and key and split_api_key(key) is not None:
                cache: KeyCache = self.state.key_cache
                principal = cache.get(sha256_hex(key))
        known: KnownTenants = self.state.known_tenants
        if principal is None or principal.tenant_suspended or (
            not principal.is_platform and principal.tenant_id != tenant_id
        ) or tenant_id not in known:
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        raw = b"".join(chunks)
        items = _plain_items(raw, None if batch else idem, batch)
        if items is None:
            await self.app(scope, _replay(raw, receive), send)
            return
        queue: AcceptQueue = self.state.accept_queue
        try:
            out = await queue.submit(service.AcceptJob(tenant_id, items))
        except LetterheadError as exc:
            await problems.from_error(exc)(scope, receive, send)
            return
        if batch:
            response = JSONResponse({"ids": [a.id if a else None for a in out],
                                     "skipped": [i for i, a in enumerate(out) if a is None]}, status_code=202)
        elif out[0] is None:
            response = JSONResponse({"skipped": "event disabled"}, status_code=200)
        else:
            headers = {} if out[0].created else {"Idempotent-Replayed": "true"}
            response = JSONResponse({"id": out[0].id, "status": out[0].status}, status_code=202, headers=headers)
        await response(scope, receive, send)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


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
