"""One worker process at a time per tenant SMTP server: the provider's connection cap holds across processes.

Providers limit concurrent connections per account (Microsoft 365: 3; Gmail and others: a few; the preset's
``max_connections``). A worker keeps within that cap on its own (its connection pool), but two workers each
within it would together be over, and the provider refuses the extra connections ("421 4.3.2 concurrent
connections limit exceeded") or, worse, counts them against the account. So a worker sends through a tenant's
server only while it holds that route's lease (a row in ``route_leases``): the first of its groups for the route
takes it, the last one closes the connections and gives it back. A group whose route is leased by another
worker is not sent: its messages wait a few seconds and are claimed again (``Worker._busy``).

Why a table and not advisory locks: the same code serves SQLite and PostgreSQL, and a lease that expires frees
the route of a worker that was killed (kill -9) without anyone's help, like the messages' own leases.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from letterhead.db import Database
from letterhead.models import RouteLease, utcnow

log = logging.getLogger("letterhead.worker")


def take(db: Database, key: str, owner: str, seconds: float, now: datetime | None = None) -> bool:
    """Lease ``key`` to ``owner`` (or extend its lease) unless another owner holds it unexpired."""
    now = now or utcnow()
    insert = sqlite_insert if db.is_sqlite else pg_insert
    stmt = insert(RouteLease).values(route_key=key, owner=owner, leased_until=now + timedelta(seconds=seconds))
    stmt = stmt.on_conflict_do_update(
        index_elements=[RouteLease.route_key],
        set_={"owner": stmt.excluded.owner, "leased_until": stmt.excluded.leased_until},
        where=(RouteLease.owner == owner) | (RouteLease.leased_until < now),
    )
    with db.session() as s:
        s.execute(stmt)
        holder = s.scalar(select(RouteLease.owner).where(RouteLease.route_key == key))
    return holder == owner


def renew(db: Database, key: str, owner: str, seconds: float, now: datetime | None = None) -> bool:
    """Extend ``owner``'s lease; never re-creates one that was given back (a late renewal must not)."""
    now = now or utcnow()
    with db.session() as s:
        result = s.execute(
            update(RouteLease)
            .where(RouteLease.route_key == key, RouteLease.owner == owner)
            .values(leased_until=now + timedelta(seconds=seconds))
        )
        return bool(getattr(result, "rowcount", 0))


def give(db: Database, key: str, owner: str) -> None:
    with db.session() as s:
        s.execute(delete(RouteLease).where(RouteLease.route_key == key, RouteLease.owner == owner))


def give_all(db: Database, owner: str) -> None:
    """Everything ``owner`` holds (a worker that stops)."""
    with db.session() as s:
        s.execute(delete(RouteLease).where(RouteLease.owner == owner))


class RouteLeases:
    """A worker's leases: shared by its pipelines, taken once per stretch of use, not once per group."""

    def __init__(self, db: Database, owner: str, seconds: float) -> None:
        self.db = db
        self.owner = owner
        #: As long as a message lease: how long a killed worker can keep a route from the others, at most.
        self.seconds = seconds
        self._users: dict[str, int] = {}
        self._taking: dict[str, asyncio.Future[bool]] = {}
        self._renewing: dict[str, asyncio.Task[None]] = {}
        self._releasing: dict[str, asyncio.Task[None]] = {}

    @asynccontextmanager
    async def hold(self, key: str, close: Callable[[], Awaitable[None]]) -> AsyncIterator[bool]:
        """Yields whether this process may send through route ``key`` now. After the last user of a stretch,
        ``close()`` (the route's connections) runs before the lease is given back, so that no connection of
        ours is open once another worker may open its own."""
        releasing = self._releasing.get(key)
        if releasing is not None:
            await asyncio.shield(releasing)
        self._users[key] = self._users.get(key, 0) + 1
        taking = self._taking.get(key)
        if taking is None:
            taking = self._taking[key] = asyncio.ensure_future(
                asyncio.to_thread(take, self.db, key, self.owner, self.seconds)
            )
        held = False
        try:
            held = await asyncio.shield(taking)
            if held and key not in self._renewing:
                self._renewing[key] = asyncio.ensure_future(self._renew(key))
            yield held
        finally:
            self._users[key] -= 1
            if self._users[key] == 0:
                del self._users[key]
                self._taking.pop(key, None)
                renewing = self._renewing.pop(key, None)
                if renewing is not None:
                    renewing.cancel()
                if held:
                    task = self._releasing[key] = asyncio.ensure_future(self._release(key, close))
                    await asyncio.shield(task)

    async def _renew(self, key: str) -> None:
        """A stretch can outlast the lease (a busy route, a slow server): extend it every third of its time."""
        while True:
            await asyncio.sleep(self.seconds / 3)
            try:
                await asyncio.to_thread(renew, self.db, key, self.owner, self.seconds)
            except Exception:  # the database is away: the next round tries again (the lease has time left)
                log.warning("could not extend the lease on %s", key, exc_info=True)

    async def _release(self, key: str, close: Callable[[], Awaitable[None]]) -> None:
        try:
            await close()
        finally:
            try:
                await asyncio.to_thread(give, self.db, key, self.owner)
            finally:
                self._releasing.pop(key, None)
