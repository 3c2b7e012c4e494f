"""Web sessions, CSRF tokens and sign-in rate limiting.

- The session is a signed cookie (``ctx.signer``, purpose ``web-session``) holding a random nonce, the user id and
  a fingerprint of the user's password hash, so that setting a new password signs out every other session. It is
  HttpOnly, SameSite=Lax, Secure when the public URL is https, and expires after ``SESSION_MAX_AGE`` (the
  signature carries the time, so an old cookie is refused even when a browser keeps it).
- Visitors who have not signed in get the same cookie without a user, so that the sign-in form has a CSRF token
  too. Signing in issues a new nonce (no session fixation).
- A CSRF token is the nonce signed under another purpose: valid only with the cookie of the same session.
- Sign-in failures are counted per email+IP and per IP in this process's memory (a restart forgets them; with
  several API processes each counts its own, which still bounds guessing to a small multiple of the limit).
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass

from fastapi import Request
from fastapi.responses import Response

from letterhead.context import Context

SESSION_COOKIE = "lh_session"
SESSION_PURPOSE = "web-session"
CSRF_PURPOSE = "web-csrf"
SESSION_MAX_AGE = 12 * 3600
CSRF_MAX_AGE = SESSION_MAX_AGE


@dataclass(frozen=True)
class WebSession:
    nonce: str
    user_id: str | None = None
    #: Fingerprint of the user's password hash when the session began.
    pw: str | None = None

    @classmethod
    def anonymous(cls) -> WebSession:
        return cls(nonce=secrets.token_urlsafe(18))

    @classmethod
    def for_user(cls, user_id: str, password_hash: str | None) -> WebSession:
        return cls(nonce=secrets.token_urlsafe(18), user_id=user_id, pw=password_fingerprint(password_hash))


def password_fingerprint(password_hash: str | None) -> str:
    return hashlib.sha256((password_hash or "").encode()).hexdigest()[:16]


def read_session(ctx: Context, request: Request) -> WebSession | None:
    raw = request.cookies.get(SESSION_COOKIE)
    if not raw or len(raw) > 4096:
        return None
    payload = ctx.signer.unsign(SESSION_PURPOSE, raw, max_age=SESSION_MAX_AGE)
    if not isinstance(payload, dict) or not isinstance(payload.get("n"), str):
        return None
    user_id = payload.get("u")
    pw = payload.get("p")
    return WebSession(
        nonce=payload["n"],
        user_id=user_id if isinstance(user_id, str) else None,
        pw=pw if isinstance(pw, str) else None,
    )


def write_session(ctx: Context, response: Response, session: WebSession) -> None:
    value = ctx.signer.sign(SESSION_PURPOSE, {"n": session.nonce, "u": session.user_id, "p": session.pw})
    response.set_cookie(
        SESSION_COOKIE,
        value,
        max_age=SESSION_MAX_AGE,
        httponly=True,
        samesite="lax",
        secure=ctx.settings.public_url.startswith("https://"),
        path="/",
    )


def csrf_token(ctx: Context, session: WebSession) -> str:
    return ctx.signer.sign(CSRF_PURPOSE, session.nonce)


def csrf_ok(ctx: Context, session: WebSession | None, token: object) -> bool:
    if session is None or not isinstance(token, str) or not token or len(token) > 500:
        return False
    return ctx.signer.unsign(CSRF_PURPOSE, token, max_age=CSRF_MAX_AGE) == session.nonce


class SignInLimiter:
    """At most ``per_account`` failures per email+IP and ``per_ip`` failures per IP within ``window`` seconds."""

    def __init__(self, *, per_account: int = 5, per_ip: int = 50, window: float = 300.0) -> None:
        self.per_account = per_account
        self.per_ip = per_ip
        self.window = window
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float]:
        q = self._failures.setdefault(key, deque())
        while q and q[0] <= now - self.window:
            q.popleft()
        return q

    def retry_after(self, email: str, ip: str) -> int | None:
        """Seconds to wait before another try, or None when a try is allowed now."""
        now = time.monotonic()
        waits = []
        with self._lock:
            for key, limit in ((f"a:{email.lower()}|{ip}", self.per_account), (f"i:{ip}", self.per_ip)):
                q = self._recent(key, now)
                if len(q) >= limit:
                    waits.append(int(q[0] + self.window - now) + 1)
        return max(waits) if waits else None

    def failed(self, email: str, ip: str) -> None:
        now = time.monotonic()
        with self._lock:
            if len(self._failures) > 100_000:
                self._failures.clear()
            for key in (f"a:{email.lower()}|{ip}", f"i:{ip}"):
                self._recent(key, now).append(now)

    def succeeded(self, email: str, ip: str) -> None:
        with self._lock:
            self._failures.pop(f"a:{email.lower()}|{ip}", None)


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"
