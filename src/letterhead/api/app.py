"""The ASGI application: API (/v1), public pages, development inbox."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from letterhead import __version__
from letterhead.api import emails, messages, notifications, problems, smtp, tenants
from letterhead.api.deps import KeyCache, KnownTenants
from letterhead.collector import tune_collector
from letterhead.context import Context
from letterhead.devinbox import DevInbox


class BodyLimit:
    """Refuse bodies over the configured limit before they are read (413, problem+json).

    A plain ASGI middleware: Starlette's ``BaseHTTPMiddleware`` runs every request through an extra task and
    memory streams, a large share of a small request's cost."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            for name, value in scope["headers"]:
                if name == b"content-length":
                    length = value.decode("latin-1")
                    if length.isdigit() and int(length) > self.limit:
                        response = problems.problem(
                            413,
                            "Payload too large",
                            f"The request body is {length} bytes; the limit is {self.limit} "
                            "(LETTERHEAD_MAX_PAYLOAD_BYTES).",
                            "payload-too-large",
                        )
                        await response(scope, receive, send)
                        return
                    break
        await self.app(scope, receive, send)


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
        return {"ok": True, "version": __version__}

    return app
