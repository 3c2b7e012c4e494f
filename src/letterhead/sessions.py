"""Signed-in web sessions, kept on the server (table ``web_sessions``) so that they can be ended.

The browser's cookie carries a random nonce (signed, see ``web/auth.py``); the row's id is its sha256, so a
database dump holds nothing a cookie could be made from. A session is live while its row is not ended, not
expired and its user not disabled: logout ends one row, a new password ends the user's other rows, ``letterhead
user disable`` ends them all, and a copied cookie stops working with the row. Checking a request costs one
primary-key read joined to the user.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete, select, update

from letterhead.context import Context
from letterhead.models import User, utcnow
from letterhead.models import WebSession as SessionRow
from letterhead.security import sha256_hex

#: Rows expired longer ago than this are deleted when a new session begins.
KEEP_EXPIRED = timedelta(days=1)


def begin(ctx: Context, *, nonce: str, user_id: str, max_age: int) -> None:
    now = utcnow()
    with ctx.db.session() as s:
        s.execute(delete(SessionRow).where(SessionRow.expires_at < now - KEEP_EXPIRED))
        s.add(SessionRow(id=sha256_hex(nonce), user_id=user_id, created_at=now,
                         expires_at=now + timedelta(seconds=max_age)))


def signed_in_user(ctx: Context, *, nonce: str, user_id: str) -> User | None:
    """The user of a live session with this nonce, or None (unknown, ended, expired, disabled user)."""
    now = utcnow()
    with ctx.db.reading() as s:
        return s.scalar(
            select(User)
            .join(SessionRow, SessionRow.user_id == User.id)
            .where(SessionRow.id == sha256_hex(nonce), SessionRow.user_id == user_id, SessionRow.ended_at.is_(None),
                   SessionRow.expires_at > now, User.disabled_at.is_(None))
        )


def end(ctx: Context, *, nonce: str) -> None:
    with ctx.db.session() as s:
        s.execute(update(SessionRow).where(SessionRow.id == sha256_hex(nonce), SessionRow.ended_at.is_(None))
                  .values(ended_at=utcnow()))


def end_all(ctx: Context, *, user_id: str, keep_nonce: str | None = None) -> int:
    """End every live session of a user (but the one with ``keep_nonce``); how many were ended."""
    stmt = update(SessionRow).where(SessionRow.user_id == user_id, SessionRow.ended_at.is_(None))
    if keep_nonce is not None:
        stmt = stmt.where(SessionRow.id != sha256_hex(keep_nonce))
    with ctx.db.session() as s:
        result = s.execute(stmt.values(ended_at=utcnow()))
        return int(getattr(result, "rowcount", 0) or 0)
