"""Branded sender (verified address through the platform transport). Filled in by the branded-sender issue."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from letterhead.context import Context
from letterhead.models import Tenant


def verified_sender(session: Session, tenant_id: str) -> tuple[str, str | None] | None:
    """(address, name) of the tenant's verified branded sender, or None."""
    return None


def describe(ctx: Context, session: Session, tenant: Tenant) -> dict[str, Any] | None:
    return None
