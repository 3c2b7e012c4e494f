"""Tenants and their API keys."""

from __future__ import annotations

import functools
import re
import zoneinfo
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from letterhead.addresses import check_header_text, normalize_email
from letterhead.context import Context
from letterhead.errors import Conflict, Forbidden, InvalidInput, NotFound
from letterhead.models import ApiKey, ApiKeyScope, Tenant, utcnow
from letterhead.security import generate_api_key

_SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
LOCALES = ("ja", "en")
#: The category a suspended tenant's held mail carries in the log (with a ja/en remedy).
SUSPENDED_CATEGORY = "tenant_suspended"
#: How long the worker leaves a suspended tenant's mail before looking again (resuming makes it due at once).
SUSPENDED_RECHECK_SECONDS = 300


def validate_slug(slug: str) -> str:
    if not _SLUG.match(slug):
        raise InvalidInput(
            "A tenant id is 1-63 lower-case letters, digits or hyphens (not at either end), e.g. 'acme'.",
            errors=[{"field": "id", "message": "invalid tenant id"}],
        )
    return slug


@functools.cache
def _zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def check_timezone(value: object, *, field: str = "timezone") -> str:
    """An IANA time zone name (``Asia/Tokyo``), as the system's tz database knows it. Only names from its list
    are taken, so no path (``../etc``) ever reaches ``ZoneInfo``."""
    if not isinstance(value, str) or value not in _zones():
        raise InvalidInput(
            f"{value!r} is not a time zone: use an IANA name such as Asia/Tokyo or Europe/London.",
            errors=[{"field": field, "message": "an IANA time zone name such as Asia/Tokyo"}],
        )
    return value


#: Profile fields that always have a value: null is refused rather than stored (or failing in the database).
_REQUIRED = frozenset({"name", "plan", "locale", "timezone"})


def create_tenant(
    ctx: Context,
    *,
    tenant_id: str,
    name: str,
    plan: str = "free",
    locale: str = "ja",
    timezone: str = "Asia/Tokyo",
    contact_email: str | None = None,
) -> Tenant:
    validate_slug(tenant_id)
    name = check_header_text(name, field="name")
    if not name:
        raise InvalidInput("A tenant needs a name.", errors=[{"field": "name", "message": "required"}])
    ctx.plans.get(plan)
    if locale not in LOCALES:
        raise InvalidInput(
            "locale must be 'ja' or 'en'.", errors=[{"field": "locale", "message": "unsupported locale"}]
        )
    check_timezone(timezone)
    contact = normalize_email(contact_email, field="contact_email") if contact_email else None
    with ctx.db.session() as s:
        if s.get(Tenant, tenant_id) is not None:
            raise Conflict(f"A tenant with id '{tenant_id}' already exists.")
        tenant = Tenant(
            id=tenant_id, name=name, plan=plan, locale=locale, timezone=timezone, contact_email=contact
        )
        s.add(tenant)
    return tenant


def get_tenant(session: Session, tenant_id: str) -> Tenant:
    tenant = session.get(Tenant, tenant_id)
    if tenant is None:
        raise NotFound(f"No tenant '{tenant_id}'.")
    return tenant


def list_tenants(ctx: Context) -> list[Tenant]:
    with ctx.db.session() as s:
        return list(s.scalars(select(Tenant).order_by(Tenant.id)))


@dataclass(frozen=True)
class CreatedKey:
    id: str
    key: str
    scope: str
    tenant_id: str | None


def create_api_key(ctx: Context, *, tenant_id: str | None, name: str | None = None) -> CreatedKey:
    """A platform key when ``tenant_id`` is None, else a key for that tenant only. The key is shown once."""
    new = generate_api_key()
    scope = ApiKeyScope.PLATFORM if tenant_id is None else ApiKeyScope.TENANT
    with ctx.db.session() as s:
        if tenant_id is not None:
            get_tenant(s, tenant_id)
        row = ApiKey(prefix=new.prefix, key_hash=new.key_hash, scope=scope.value, tenant_id=tenant_id, name=name)
        s.add(row)
        s.flush()
        return CreatedKey(id=row.id, key=new.key, scope=scope.value, tenant_id=tenant_id)


def update_tenant(ctx: Context, *, tenant_id: str, changes: dict[str, object], may_change_plan: bool) -> Tenant:
    """Change a tenant's profile. The plan only with a platform key (a tenant cannot upgrade itself)."""
    allowed = {"name", "locale", "timezone", "contact_email", "brand_color", "logo_url"} | (
        {"plan"} if may_change_plan else set()
    )
    unknown = set(changes) - allowed
    if unknown:
        raise InvalidInput(
            "These fields cannot be changed here: " + ", ".join(sorted(unknown)),
            errors=[{"field": f, "message": "not changeable with this key"} for f in sorted(unknown)],
        )
    nulls = sorted(f for f in _REQUIRED & set(changes) if changes[f] is None)
    if nulls:
        raise InvalidInput(
            "These fields cannot be null: " + ", ".join(nulls) + " (leave a field out to keep its value).",
            errors=[{"field": f, "message": "cannot be null"} for f in nulls],
        )
    with ctx.db.session() as s:
        tenant = get_tenant(s, tenant_id)
        for field, value in changes.items():
            if field == "timezone":
                check_timezone(value)
            elif field == "name":
                value = check_header_text(str(value or ""), field="name")
                if not value:
                    raise InvalidInput("A tenant needs a name.", errors=[{"field": "name", "message": "required"}])
            elif field == "plan":
                ctx.plans.get(str(value))
            elif field == "locale" and value not in LOCALES:
                raise InvalidInput("locale must be 'ja' or 'en'.",
                                   errors=[{"field": "locale", "message": "unsupported locale"}])
            elif field == "contact_email" and value:
                value = normalize_email(str(value), field="contact_email")
            elif field == "brand_color" and value and not re.fullmatch(r"#[0-9a-fA-F]{6}", str(value)):
                raise InvalidInput("brand_color is a hex colour such as #1a73e8.",
                                   errors=[{"field": "brand_color", "message": "#rrggbb"}])
            elif field == "logo_url" and value and not str(value).startswith("https://"):
                raise InvalidInput("logo_url must be an https:// address.",
                                   errors=[{"field": "logo_url", "message": "https URL"}])
            setattr(tenant, field, value or None if field in ("contact_email", "brand_color", "logo_url") else value)
        s.flush()
        s.expunge(tenant)
    return tenant


@dataclass(frozen=True)
class KeyInfo:
    """What may be shown about an API key: never the secret or its hash."""

    id: str
    name: str | None
    prefix: str
    scope: str
    tenant_id: str | None
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


def _key_info(row: ApiKey) -> KeyInfo:
    return KeyInfo(row.id, row.name, row.prefix, row.scope, row.tenant_id, row.created_at, row.last_used_at,
                   row.revoked_at)


def list_api_keys(ctx: Context, *, tenant_id: str | None = None, platform: bool = False) -> list[KeyInfo]:
    """The keys of ``tenant_id``; with ``platform`` the platform keys; with neither, every key. Oldest first."""
    stmt = select(ApiKey).order_by(ApiKey.id)
    if platform:
        stmt = stmt.where(ApiKey.scope == ApiKeyScope.PLATFORM.value)
    elif tenant_id is not None:
        stmt = stmt.where(ApiKey.tenant_id == tenant_id)
    with ctx.db.reading() as s:
        return [_key_info(row) for row in s.scalars(stmt)]


def revoke_api_key(ctx: Context, *, key_id: str, tenant_id: str | None = None) -> KeyInfo:
    """Revoke a key (``tenant_id``: only if it is that tenant's; another tenant's key is NotFound, as if absent).
    Revoking a revoked key changes nothing. Every API process stops accepting it within its key cache's life."""
    with ctx.db.session() as s:
        row = s.get(ApiKey, key_id)
        if row is None or (tenant_id is not None and row.tenant_id != tenant_id):
            raise NotFound(f"No API key '{key_id}'" + (f" in tenant '{tenant_id}'." if tenant_id else "."))
        if row.revoked_at is None:
            row.revoked_at = utcnow()
        s.flush()
        return _key_info(row)


class TenantSuspended(Forbidden):
    code = "tenant-suspended"
    title = "Tenant suspended"


def suspended_error(tenant_id: str) -> TenantSuspended:
    return TenantSuspended(
        f"The tenant '{tenant_id}' is suspended: its API calls are refused and its queued mail is held (not lost) "
        "until it is resumed. Contact the platform operator to have it resumed.",
        tenant=tenant_id,
    )


def ensure_active(tenant: Tenant) -> None:
    """Refuse sending for a suspended tenant (403 problem+json at the API)."""
    if tenant.suspended_at is not None:
        raise suspended_error(tenant.id)


def set_suspended(ctx: Context, *, tenant_id: str, suspended: bool) -> Tenant:
    """Suspend (the API answers 403, the worker holds the tenant's mail) or resume (held mail is due at once).

    Suspending twice keeps the first time; resuming a tenant that is not suspended changes nothing."""
    from letterhead.models import Message, MessageStatus

    now = utcnow()
    with ctx.db.session() as s:
        tenant = get_tenant(s, tenant_id)
        if suspended and tenant.suspended_at is None:
            tenant.suspended_at = now
        elif not suspended and tenant.suspended_at is not None:
            tenant.suspended_at = None
            # Held mail waits up to SUSPENDED_RECHECK_SECONDS between looks: make it due now instead.
            s.execute(
                update(Message)
                .where(Message.tenant_id == tenant_id, Message.category == SUSPENDED_CATEGORY,
                       Message.status.in_((MessageStatus.QUEUED.value, MessageStatus.DEFERRED.value)))
                .values(next_attempt_at=now)
            )
        s.flush()
        s.expunge(tenant)
    if not suspended and ctx.notify is not None:
        ctx.notify()
    return tenant
