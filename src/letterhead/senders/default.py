"""The platform's default sender: its address with the standard sender name, through the platform transport."""

from __future__ import annotations

from email.utils import parseaddr
from functools import lru_cache

from letterhead.settings import Settings


def platform_address(settings: Settings) -> tuple[str, str]:
    """(address, display-name format). ``LETTERHEAD_PLATFORM_FROM`` is a bare address or
    ``"{tenant} via {platform}" <noreply@example.com>``; without a name part ``PLATFORM_SENDER_NAME`` is used."""
    return _parse(settings.platform_from, settings.platform_sender_name)


@lru_cache(maxsize=16)
def _parse(platform_from: str, sender_name: str) -> tuple[str, str]:
    # Cached: the worker asks twice per tenant per batch, and email.utils.parseaddr costs ~100 µs.
    name, addr = parseaddr(platform_from)
    return addr or platform_from, name or sender_name


def standard_sender_name(settings: Settings, tenant_name: str) -> str:
    _, fmt = platform_address(settings)
    try:
        return fmt.format(tenant=tenant_name, platform=settings.platform_name)
    except (KeyError, IndexError, ValueError):
        # A malformed format must not stop mail: fall back to the documented default shape.
        return f"{tenant_name} via {settings.platform_name}"
