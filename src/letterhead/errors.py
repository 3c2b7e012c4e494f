"""The one exception hierarchy of Letterhead.

Errors carry fields, not only strings; the HTTP mapping happens once, in ``letterhead.api.problems``.
Configuration errors sit outside the delivery branch so that retry logic never swallows them.
"""

from __future__ import annotations

from typing import Any


class LetterheadError(Exception):
    """Base of every error Letterhead raises on purpose."""

    #: Short machine-readable code, used as the last segment of the problem ``type`` URI.
    code: str = "error"
    #: HTTP status the API answers with.
    status: int = 400
    title: str = "Error"

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra


class ConfigurationError(LetterheadError):
    """The operator's configuration is wrong (bad env var, missing key). Never retried."""

    code = "configuration"
    status = 500
    title = "Configuration error"


class InvalidInput(LetterheadError):
    """Bad input from a caller. ``errors`` lists each bad field: ``[{"field": ..., "message": ...}]``."""

    code = "invalid-input"
    status = 422
    title = "Invalid input"

    def __init__(self, detail: str, *, errors: list[dict[str, Any]] | None = None, **extra: Any) -> None:
        super().__init__(detail, **extra)
        self.errors = errors or []


class PayloadTooLarge(LetterheadError):
    code = "payload-too-large"
    status = 413
    title = "Payload too large"


class NotFound(LetterheadError):
    code = "not-found"
    status = 404
    title = "Not found"


class Unauthorized(LetterheadError):
    code = "unauthorized"
    status = 401
    title = "Unauthorized"


class Forbidden(LetterheadError):
    code = "forbidden"
    status = 403
    title = "Forbidden"


class PlanRequired(Forbidden):
    """The tenant's plan lacks a feature; ``required_plan`` names the cheapest plan that has it."""

    code = "plan-required"
    title = "Upgrade required"


class Conflict(LetterheadError):
    code = "conflict"
    status = 409
    title = "Conflict"


class RateLimited(LetterheadError):
    code = "rate-limited"
    status = 429
    title = "Too many requests"

    def __init__(self, detail: str, *, retry_after: int, **extra: Any) -> None:
        super().__init__(detail, **extra)
        self.retry_after = retry_after


class TemplateError(InvalidInput):
    """A tenant template failed to compile or render; ``line`` is 1-based when known."""

    code = "template-error"
    title = "Template error"

    def __init__(self, detail: str, *, line: int | None = None, field: str | None = None) -> None:
        super().__init__(detail, errors=[{"field": field or "template", "line": line, "message": detail}])
        self.line = line


class Unavailable(LetterheadError):
    """The database cannot be reached (stopped, restarting, out of connections): nothing was stored; the same
    request succeeds once it is back. ``retry_after`` is in seconds."""

    code = "database-unavailable"
    status = 503
    title = "Service temporarily unavailable"

    def __init__(self, detail: str, *, retry_after: int, **extra: Any) -> None:
        super().__init__(detail, **extra)
        self.retry_after = retry_after


class StorageFull(Unavailable):
    """The database's disk is full. 503 rather than 507: clients' retry policies retry 503 (with Retry-After),
    and the request does succeed unchanged once space is freed."""

    code = "storage-full"
    title = "Storage full"
