"""Tenants and their API keys."""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from letterhead.addresses import check_header_text, normalize_email
from letterhead.context import Context
from letterhead.errors import Conflict, InvalidInput, NotFound
from letterhead.models import ApiKey, ApiKeyScope, Tenant
from letterhead.security import generate_api_key

_SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
LOCALES = ("ja", "en")


def validate_slug(slug: str) -> str:
    if not _SLUG.match(slug):
        raise InvalidInput(
            "A tenant id is 1-63 lower-case letters, digits or hyphens (not at either end), e.g. 'acme'.",
            errors=[{"field": "id", "message": "invalid tenant id"}],
        )
    return slug


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
