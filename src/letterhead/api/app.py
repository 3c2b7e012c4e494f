"""The ASGI application: API (/v1), public pages, development inbox."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from sqlalchemy import text
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from letterhead import __version__
from letterhead.api import emails, messages, notifications, problems, smtp, tenants
from letterhead.api.deps import KeyCache, KnownTenants
from letterhead.collector import tune_collector
from letterhead.context import Context
from letterhead.devinbox import DevInbox


def _too_large(detail: str) -> Response:
    response = problems.problem(413, "Payload too large", detail, "payload-too-large")
    # The rest of the body is not read: closing is the only way to stop a client from uploading it.
    response.headers["Connection"] = "close"
    return response


class BodyLimit:
    """Refuse bodies over the configured limit (413, problem+json) before the app sees them.

    With ``Content-Length`` the claim is checked up front (the server then delivers exactly that many bytes).
    A chunked body has no length: it is read here, counting as it arrives, and 413 goes out the moment the
    limit is passed; under it, the app (the fast notification path included) is handed the body as read.
    Either way no authentication or other work starts for an oversized body and at most ``limit`` bytes are
    held. A plain ASGI middleware: Starlette's ``BaseHTTPMiddleware`` runs every request through an extra task
    and memory streams, a large share of a small request's cost."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        chunked = False
        for name, value in scope["headers"]:
            if name == b"content-length":
                length = value.decode("latin-1")
                if length.isdigit() and int(length) > self.limit:
                    await _too_large(
                        f"The request body is {length} bytes; the limit is {self.limit} (LETTERHEAD_MAX_PAYLOAD_BYTES)."
                    )(scope, receive, send)
                    return
                await self.app(scope, receive, send)
                return
            if name == b"transfer-encoding":
                chunked = True
        if not chunked:  # no body at all
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        seen = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunk = message.get("body", b"")
            seen += len(chunk)
            if seen > self.limit:
                chunks.clear()
                await _too_large(
                    f"The request body is more than {self.limit} bytes (LETTERHEAD_MAX_PAYLOAD_BYTES)."
                )(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        await self.app(scope, _replay(b"".join(chunks), receive), send)


def _replay(body: bytes, receive: Receive) -> Receive:
    """``receive`` giving ``body`` first, then whatever the server says next (a disconnect)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def create_app(ctx: Context, *, dev_inbox: DevInbox | None = None) -> FastAPI:
    tune_collector()
    app = FastAPI(
        title="Letterhead",
        version=__version__,
        description="Notification email sent under each tenant's own identity.",
        openapi_url="/openapi.json",
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.ctx = ctx
    app.state.key_cache = KeyCache(ctx)
    app.state.known_tenants = KnownTenants()
    app.state.accept_queue = notifications.AcceptQueue(ctx)
    app.state.dev_inbox = dev_inbox
    # Batch requests may be larger than one email: allow a margin, the per-email limit is checked in the service.
    app.add_middleware(notifications.FastNotifications, state=app.state)  # inside BodyLimit (added after)
    app.add_middleware(BodyLimit, limit=ctx.settings.max_payload_bytes * 4)
    problems.install(app)
    for module in (tenants, emails, messages, smtp, notifications):
        app.include_router(module.router)

    from letterhead.web import devinbox as devinbox_pages

    app.include_router(devinbox_pages.router)

    from letterhead.web import app as web_pages

    web_pages.install(app)
    from letterhead.api import branded as branded_api
    from letterhead.api import domains as domains_api
    from letterhead.web import verify as verify_pages

    app.include_router(branded_api.router)
    app.include_router(domains_api.router)
    app.include_router(verify_pages.router)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, Any]:
        """Liveness: the process answers. Says nothing about the database, so that a supervisor does not restart
        a healthy process while the database is down (it recovers by itself); see /readyz."""
        return {"ok": True, "version": __version__}

    @app.get("/readyz", include_in_schema=False)
    def readyz() -> dict[str, Any]:
        """Readiness: the database answers (503 problem+json with Retry-After when not), for load balancers."""
        with ctx.db.reading() as s:
            s.execute(text("SELECT 1"))
        return {"ok": True, "version": __version__, "database": "ok"}

    return app
