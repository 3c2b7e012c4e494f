"""Rate limits shared by every process, kept in the database (table ``rate_hits``).

A sliding window per key: at most ``limit`` hits within ``window`` seconds. Kept in the database rather than in
memory (or the ``limits`` package, whose storages are memory, Redis, Memcached and MongoDB) so that the count holds
across API processes and restarts with nothing else to run: the keys are few and the hits rare (failed sign-ins,
SMTP tests), so a row per hit costs nothing that matters.

Keys are namespaced by the caller (``signin-account:…``, ``signin-ip:…``, ``smtp-test:<tenant>``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select

from letterhead.db import Database
from letterhead.models import RateHit, utcnow

#: Hits older than this are deleted when new ones are written (no window is longer).
RETENTION = timedelta(days=1)


@dataclass(frozen=True)
class Limit:
    """At most ``limit`` hits per ``window`` seconds."""

    limit: int
    window: float


def retry_after(db: Database, key: str, rule: Limit, *, now: datetime | None = None) -> int | None:
    """Seconds until another hit is allowed under ``key``, or None when one is allowed now."""
    now = now or utcnow()
    since = now - timedelta(seconds=rule.window)
    with db.reading() as s:
        count, oldest = s.execute(
            select(func.count(), func.min(RateHit.at)).where(RateHit.key == key, RateHit.at > since)
        ).one()
        if count < rule.limit:
            return None
        # The window frees a slot when the oldest hit inside it leaves: the (count - limit + 1)-th oldest.
        times = s.scalars(
            select(RateHit.at).where(RateHit.key == key, RateHit.at > since).order_by(RateHit.at)
            .offset(count - rule.limit).limit(1)
        ).all()
    first = times[0] if times else oldest
    return max(1, math.ceil((first + timedelta(seconds=rule.window) - now).total_seconds()))


def hit(db: Database, *keys: str, now: datetime | None = None) -> None:
    """Count one hit under each key."""
    now = now or utcnow()
    with db.session() as s:
        s.execute(delete(RateHit).where(RateHit.at < now - RETENTION))
        s.add_all([RateHit(key=k, at=now) for k in keys])


def take(db: Database, key: str, rule: Limit, *, now: datetime | None = None) -> int | None:
    """Count a hit when one is allowed (None), else the seconds to wait (nothing counted)."""
    now = now or utcnow()
    wait = retry_after(db, key, rule, now=now)
    if wait is None:
        hit(db, key, now=now)
    return wait


def clear(db: Database, key: str) -> None:
    with db.session() as s:
        s.execute(delete(RateHit).where(RateHit.key == key))
