"""Web sessions, CSRF tokens and sign-in rate limiting.

- The session cookie is signed (``ctx.signer``, purpose ``web-session``) and holds a random nonce; once signed in
  also the user id. A signed-in session lives on the server too (``letterhead.sessions``, table
  ``web_sessions``: the nonce's sha256, expiry, end), checked on every request, so logout, a new password or
  ``letterhead user disable`` end it and a copied cookie stops working. The cookie is HttpOnly, SameSite=Lax,
  Secure when the request came over https (directly, or through a trusted proxy: ``clientaddr.py``) or the
  public URL is https, and expires after ``SESSION_MAX_AGE``.
- Visitors who have not signed in get the same cookie without a user (nothing stored), so that the sign-in form
  has a CSRF token too. Signing in issues a new nonce (no session fixation).
- A CSRF token is the nonce signed under another purpose: valid only with the cookie of the same session.
- Failed sign-ins are counted in the database (``letterhead.ratelimit``), so the limits hold across API processes
  and restarts: per account (the email, from any address: many addresses cannot share the guessing) and per
  client address (one address cannot guess many accounts). While either is exhausted every sign-in is refused,
  the right password included.
"""

from __future__ import annotations

import math
import secrets
from dataclasses import dataclass

from fastapi import Request
from fastapi.responses import Response

from letterhead import ratelimit
from letterhead.context import Context

SESSION_COOKIE = "lh_session"
SESSION_PURPOSE = "web-session"
CSRF_PURPOSE = "web-csrf"
SESSION_MAX_AGE = 12 * 3600
CSRF_MAX_AGE = SESSION_MAX_AGE

#: Failed sign-ins allowed per account (any address) and per client address (any account) in 15 minutes: an
#: online guesser gets 480 tries a day per account, a person who mistyped a few times waits at most 15 minutes.
SIGNIN_PER_ACCOUNT = ratelimit.Limit(limit=5, window=15 * 60)
SIGNIN_PER_ADDRESS = ratelimit.Limit(limit=20, window=15 * 60)


@dataclass(frozen=True)
class WebSession:
    nonce: str
    user_id: str | None = None

    @classmethod
    def anonymous(cls) -> WebSession:
        return cls(nonce=secrets.token_urlsafe(18))

    @classmethod
    def for_user(cls, user_id: str) -> WebSession:
        return cls(nonce=secrets.token_urlsafe(18), user_id=user_id)


def read_session(ctx: Context, request: Request) -> WebSession | None:
    """The cookie's session as signed (whether a signed-in one is still live is ``sessions.signed_in_user``)."""
    raw = request.cookies.get(SESSION_COOKIE)
    if not raw or len(raw) > 4096:
        return None
    payload = ctx.signer.unsign(SESSION_PURPOSE, raw, max_age=SESSION_MAX_AGE)
    if not isinstance(payload, dict) or not isinstance(payload.get("n"), str):
        return None
    user_id = payload.get("u")
    return WebSession(nonce=payload["n"], user_id=user_id if isinstance(user_id, str) else None)


def is_https(ctx: Context, request: Request) -> bool:
    return request.url.scheme == "https" or ctx.settings.public_url.startswith("https://")


def write_session(ctx: Context, request: Request, response: Response, session: WebSession) -> None:
    value = ctx.signer.sign(SESSION_PURPOSE, {"n": session.nonce, "u": session.user_id})
    response.set_cookie(
        SESSION_COOKIE,
        value,
        max_age=SESSION_MAX_AGE,
        httponly=True,
        samesite="lax",
        secure=is_https(ctx, request),
        path="/",
    )


def csrf_token(ctx: Context, session: WebSession) -> str:
    return ctx.signer.sign(CSRF_PURPOSE, session.nonce)


def csrf_ok(ctx: Context, session: WebSession | None, token: object) -> bool:
    if session is None or not isinstance(token, str) or not token or len(token) > 500:
        return False
    return ctx.signer.unsign(CSRF_PURPOSE, token, max_age=CSRF_MAX_AGE) == session.nonce


def _account_key(email: str) -> str:
    return "signin-account:" + email.strip().lower()


def _address_key(address: str) -> str:
    return "signin-ip:" + address


def signin_retry_after(ctx: Context, *, email: str, address: str) -> int | None:
    """Seconds until a sign-in may be tried for this account from this address, or None when it may now."""
    waits = [
        w for w in (
            ratelimit.retry_after(ctx.db, _account_key(email), SIGNIN_PER_ACCOUNT),
            ratelimit.retry_after(ctx.db, _address_key(address), SIGNIN_PER_ADDRESS),
        ) if w is not None
    ]
    return max(waits) if waits else None


def signin_failed(ctx: Context, *, email: str, address: str) -> None:
    ratelimit.hit(ctx.db, _account_key(email), _address_key(address))


def signin_succeeded(ctx: Context, *, email: str) -> None:
    """The account's count starts over (its owner knows the password); the address's count stays."""
    ratelimit.clear(ctx.db, _account_key(email))


def wait_minutes(seconds: int) -> int:
    return max(1, math.ceil(seconds / 60))


def client_ip(request: Request) -> str:
    """The client's address (``clientaddr.ClientAddress`` has applied trusted proxies' headers already)."""
    return request.client.host if request.client else "unknown"
