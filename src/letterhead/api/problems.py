"""RFC 9457 problem details: the one place where errors become HTTP."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from letterhead import db
from letterhead.errors import InvalidInput, LetterheadError, RateLimited, Unavailable

log = logging.getLogger("letterhead.api")

PROBLEM = "application/problem+json"
TYPE_BASE = "https://letterhead.dev/problems/"


def problem(status: int, title: str, detail: str, code: str, **extra: Any) -> JSONResponse:
    body: dict[str, Any] = {"type": TYPE_BASE + code, "title": title, "status": status, "detail": detail}
    body.update({k: v for k, v in extra.items() if v is not None})
    return JSONResponse(body, status_code=status, media_type=PROBLEM)


def _field(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    out = ""
    for p in parts:
        out += f"[{p}]" if p.isdigit() else (f".{p}" if out else p)
    return out or "body"


def from_error(exc: LetterheadError) -> JSONResponse:
    extra: dict[str, Any] = dict(exc.extra)
    if isinstance(exc, InvalidInput) and exc.errors:
        extra["errors"] = exc.errors
    response = problem(exc.status, exc.title, exc.detail, exc.code, **extra)
    if isinstance(exc, RateLimited | Unavailable):
        response.headers["Retry-After"] = str(exc.retry_after)
    return response


#: Renders a database outage as a UI page (set by the web UI on ``app.state.unavailable_page``).
UnavailablePage = Callable[[Request, Unavailable], Awaitable[Response]]
#: Paths answered in problem+json even though they are not under /v1.
_API_PATHS = ("/healthz", "/readyz", "/openapi.json")


class _LogThrottle:
    """During an outage every request fails the same way: one log line per kind every ``every`` seconds, with
    the number of failures in between, instead of a line (or a traceback) per request."""

    def __init__(self, every: float = 10.0) -> None:
        self.every = every
        self._last: dict[str, tuple[float, int]] = {}

    def warn(self, kind: str, exc: BaseException) -> None:
        now = time.monotonic()
        last, skipped = self._last.get(kind, (-self.every, 0))
        if now - last < self.every:
            self._last[kind] = (last, skipped + 1)
            return
        self._last[kind] = (now, 0)
        orig = getattr(exc, "orig", None) or exc
        first_line = str(orig).strip().splitlines()[0] if str(orig).strip() else ""
        more = f" (and {skipped} more since the last report)" if skipped else ""
        log.warning("%s: %s: %s%s", kind, type(orig).__name__, first_line[:300], more)


_throttle = _LogThrottle()


async def database_error(request: Request, exc: BaseException) -> Response:
    """A database exception that reached the edge: 503 with Retry-After for an outage (a problem for the API,
    the UI's page elsewhere), a 500 problem for anything else. Either way a complete response, so that uvicorn
    keeps the connection (an exception escaping the app makes it close a keep-alive connection)."""
    down = db.unavailable(exc)
    if down is None:
        log.error("database error in %s %s", request.method, request.url.path, exc_info=exc)
        return problem(500, "Internal error", "The request failed on an unexpected database error; it is logged "
                       "for the operator.", "internal-error")
    _throttle.warn(down.code, exc)
    path = request.url.path
    page: UnavailablePage | None = getattr(request.app.state, "unavailable_page", None)
    if page is not None and not path.startswith("/v1/") and path not in _API_PATHS:
        return await page(request, down)
    return from_error(down)


class DatabaseErrors:
    """The same mapping for database work outside FastAPI's exception handlers: pure ASGI middlewares (the
    notification fast path) run outside them, so an exception there would reach uvicorn as a 500 text/plain
    and a closed connection. Added last, so that it wraps every other middleware."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except db.DATABASE_ERRORS as exc:
            if started:  # half a response is out: nothing better than what uvicorn does
                raise
            response = await database_error(Request(scope, receive), exc)
            await response(scope, receive, send)


def install(app: FastAPI) -> None:
    for exc_class in db.DATABASE_ERRORS:
        app.add_exception_handler(exc_class, database_error)
    app.add_middleware(DatabaseErrors)  # outermost of the middlewares added so far (create_app adds it last)

    @app.exception_handler(LetterheadError)
    async def _letterhead_error(request: Request, exc: LetterheadError) -> JSONResponse:
        return from_error(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"field": _field(tuple(e.get("loc", ()))), "message": e.get("msg", "")} for e in exc.errors()]
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5])
        return problem(422, "Invalid input", detail or "The request is not valid.", "invalid-input", errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        titles = {404: "Not found", 405: "Method not allowed", 401: "Unauthorized"}
        return problem(
            exc.status_code,
            titles.get(exc.status_code, "Error"),
            str(exc.detail),
            {404: "not-found", 405: "method-not-allowed"}.get(exc.status_code, "error"),
        )
