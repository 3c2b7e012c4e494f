"""People who sign in to the web UI: tenant users (owner / admin / viewer) and platform admins.

A user is created without a password; ``create_user`` returns a one-time link to set it (the token is random,
stored as its sha256, single use, 72 h). Passwords are argon2id hashes (``security.hash_password``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select

from letterhead import sessions
from letterhead.addresses import normalize_email
from letterhead.context import Context
from letterhead.errors import Conflict, InvalidInput, NotFound
from letterhead.models import Tenant, User, UserRole, utcnow
from letterhead.security import hash_password, new_token, sha256_hex, verify_password

SETUP_TOKEN_HOURS = 72
MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 1000
TENANT_ROLES = (UserRole.OWNER.value, UserRole.ADMIN.value, UserRole.VIEWER.value)
#: Roles that may change settings (viewers may only look).
EDITOR_ROLES = frozenset({UserRole.OWNER.value, UserRole.ADMIN.value, UserRole.PLATFORM_ADMIN.value})

# A real argon2 hash to verify against when the email is unknown, so that an unknown email costs as much time as
# a wrong password (no user enumeration by timing).
_DUMMY_HASH = hash_password("letterhead-dummy-password")


@dataclass(frozen=True)
class CreatedUser:
    id: str
    email: str
    tenant_id: str | None
    role: str
    link: str


def setup_link(ctx: Context, token: str) -> str:
    return f"{ctx.settings.public_url.rstrip('/')}/set-password/{token}"


def create_user(
    ctx: Context, *, email: str, tenant_id: str | None, role: str = UserRole.ADMIN.value, platform_admin: bool = False
) -> CreatedUser:
    """A user of ``tenant_id`` (or a platform admin), with a one-time set-password link."""
    email = normalize_email(email, field="email").lower()
    if platform_admin:
        tenant_id, role = None, UserRole.PLATFORM_ADMIN.value
    elif tenant_id is None:
        raise InvalidInput(
            "A user belongs to a tenant (--tenant) unless it is a platform admin (--platform-admin).",
            errors=[{"field": "tenant", "message": "required"}],
        )
    elif role not in TENANT_ROLES:
        raise InvalidInput(
            f"role must be one of {', '.join(TENANT_ROLES)}.", errors=[{"field": "role", "message": "unknown role"}]
        )
    token = new_token()
    with ctx.db.session() as s:
        if tenant_id is not None and s.get(Tenant, tenant_id) is None:
            raise NotFound(f"No tenant '{tenant_id}'.")
        # The unique constraint does not cover platform admins (NULL tenant), so check here for both.
        if s.scalar(select(User.id).where(User.email == email, User.tenant_id.is_(None) if tenant_id is None
                                          else User.tenant_id == tenant_id)):
            where = "platform admin" if tenant_id is None else f"user of tenant '{tenant_id}'"
            raise Conflict(f"{email} is already a {where}. Use 'letterhead user reset' for a new link.")
        user = User(
            email=email,
            tenant_id=tenant_id,
            role=role,
            setup_token_hash=sha256_hex(token),
            setup_token_expires_at=utcnow() + timedelta(hours=SETUP_TOKEN_HOURS),
        )
        s.add(user)
        s.flush()
        return CreatedUser(user.id, email, tenant_id, role, setup_link(ctx, token))


def reset_link(ctx: Context, *, email: str, tenant_id: str | None) -> str:
    """A fresh one-time set-password link for an existing user (the old link stops working)."""
    email = normalize_email(email, field="email").lower()
    token = new_token()
    with ctx.db.session() as s:
        user = s.scalar(
            select(User).where(
                User.email == email, User.tenant_id.is_(None) if tenant_id is None else User.tenant_id == tenant_id
            )
        )
        if user is None:
            raise NotFound(f"No user {email}" + (f" in tenant '{tenant_id}'." if tenant_id else " (platform admin)."))
        user.setup_token_hash = sha256_hex(token)
        user.setup_token_expires_at = utcnow() + timedelta(hours=SETUP_TOKEN_HOURS)
    return setup_link(ctx, token)


def user_for_setup_token(ctx: Context, token: str) -> User | None:
    """The user a set-password token belongs to, if it is valid and unexpired."""
    if not token or len(token) > 200:
        return None
    with ctx.db.session() as s:
        user = s.scalar(select(User).where(User.setup_token_hash == sha256_hex(token)))
    if user is None or user.setup_token_expires_at is None or user.setup_token_expires_at < utcnow():
        return None
    return user


def check_password_rules(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH or len(password) > MAX_PASSWORD_LENGTH:
        raise InvalidInput(
            f"A password has {MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} characters.",
            errors=[{"field": "password", "message": "too short" if len(password) < 10 else "too long"}],
        )


def set_password(ctx: Context, *, token: str, password: str) -> User:
    """Use a one-time token to set the password; the token is void afterwards."""
    check_password_rules(password)
    user = user_for_setup_token(ctx, token)
    if user is None:
        raise NotFound("This set-password link is unknown, used or expired.")
    with ctx.db.session() as s:
        row = s.get(User, user.id)
        assert row is not None
        row.password_hash = hash_password(password)
        row.setup_token_hash = None
        row.setup_token_expires_at = None
    # A new password ends every session that began before it (a thief's copy of a cookie included).
    sessions.end_all(ctx, user_id=row.id)
    return row


def authenticate(ctx: Context, *, email: str, password: str) -> User | None:
    """The user with this email and password, or None. A platform admin account wins over tenant accounts of the
    same address; among tenant accounts (one person in several tenants) the oldest whose password matches."""
    email = email.strip().lower()
    if not email or not password or len(password) > MAX_PASSWORD_LENGTH:
        return None
    with ctx.db.session() as s:
        candidates = list(
            s.scalars(select(User).where(User.email == email, User.password_hash.is_not(None),
                               User.disabled_at.is_(None)).order_by(User.id))
        )
    candidates.sort(key=lambda u: u.tenant_id is not None)
    if not candidates:
        verify_password(_DUMMY_HASH, password)
        return None
    for user in candidates:
        if user.password_hash and verify_password(user.password_hash, password):
            return user
    return None


def get_user(ctx: Context, user_id: str) -> User | None:
    with ctx.db.session() as s:
        return s.get(User, user_id)


def can_edit(user: User) -> bool:
    return user.role in EDITOR_ROLES


def is_platform_admin(user: User) -> bool:
    return user.tenant_id is None and user.role == UserRole.PLATFORM_ADMIN.value


def find_user(ctx: Context, *, email: str, tenant_id: str | None) -> User:
    """The account with this email in ``tenant_id``; without a tenant, the only account with this email."""
    email = normalize_email(email, field="email").lower()
    with ctx.db.session() as s:
        query = select(User).where(User.email == email)
        if tenant_id is not None:
            query = query.where(User.tenant_id == tenant_id)
        found = list(s.scalars(query.order_by(User.id)))
    if not found:
        raise NotFound(f"No user {email}" + (f" in tenant '{tenant_id}'." if tenant_id else "."))
    if len(found) > 1:
        where = ", ".join(u.tenant_id or "(platform admin)" for u in found)
        raise InvalidInput(f"{email} has accounts in several tenants ({where}): name one with --tenant.",
                           errors=[{"field": "tenant", "message": "required"}])
    return found[0]


def set_disabled(ctx: Context, *, user_id: str, disabled: bool) -> tuple[User, int]:
    """Disable (or enable) an account; disabling ends all its sessions at once. (user, sessions ended)."""
    with ctx.db.session() as s:
        row = s.get(User, user_id)
        if row is None:
            raise NotFound(f"No user {user_id}.")
        if disabled and row.disabled_at is None:
            row.disabled_at = utcnow()
        elif not disabled:
            row.disabled_at = None
    ended = sessions.end_all(ctx, user_id=user_id) if disabled else 0
    return row, ended
