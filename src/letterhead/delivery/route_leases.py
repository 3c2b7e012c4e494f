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
import hashlib
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


def in_use(db: Database, key: str, now: datetime | None = None) -> bool:
    """Whether a worker process holds ``key`` now (a lease that ran out does not count)."""
    now = now or utcnow()
    with db.session() as s:
        until = s.scalar(select(RouteLease.leased_until).where(RouteLease.route_key == key))
    return until is not None and until >= now


def lease_key(host: str, port: int, username: str | None) -> str:
    """The account a provider counts connections for: host, port and login (two configurations of one mailbox,
    e.g. an agency's tenants, or a tenant's old and new settings, share its cap). Hashed: no address stored."""
    digest = hashlib.sha256(f"{host.lower()}\0{port}\0{username or ''}".encode()).hexdigest()
    return "smtp:" + digest[:40]


class RouteLeases:
    """A worker's leases: shared by its pipelines, taken once per stretch of use, not once per group.

    A stretch ends ``grace`` seconds after its last group: a route in steady use keeps its lease and its warm
    connections from batch to batch (no new TLS and login each time), and another worker waits at most that
    long plus its retry delay once this one is done.
    """

    def __init__(self, db: Database, owner: str, seconds: float, grace: float = 5.0) -> None:
        self.db = db
        self.owner = owner
        #: As long as a message lease: how long a killed worker can keep a route from the others, at most.
        self.seconds = seconds
        self.grace = grace
        self._users: dict[str, int] = {}
        self._taking: dict[str, asyncio.Future[bool]] = {}
        #: What closes our connections for a key: one per connection pool used under it (the pools are finer
        #: than the account: a changed password or TLS setting is another pool of the same account).
        self._closers: dict[str, dict[object, Callable[[], Awaitable[None]]]] = {}
        self._renewing: dict[str, asyncio.Task[None]] = {}
        self._releasing: dict[str, asyncio.Task[None]] = {}
        self._closing: set[str] = set()
        self._lost: set[str] = set()

    def is_held(self, key: str) -> bool:
        """Still ours (a lease found lost while groups were waiting to send is not)."""
        return key not in self._lost and _owned(self._taking.get(key))

    @asynccontextmanager
    async def hold(
        self, key: str, close: Callable[[], Awaitable[None]], pool: object = None
    ) -> AsyncIterator[bool]:
        """Yields whether this process may send through ``key`` now. At the end of a stretch every ``close()``
        given for the key (one per connection ``pool``) runs before the lease is given back, so that none of our
        connections is open once another worker may open its own. A database error reads as "not now": the
        messages wait, nothing is lost."""
        while (pending := self._releasing.get(key)) is not None:
            if key in self._closing or key in self._lost:
                await asyncio.shield(pending)  # too late to keep it: wait, then take it anew
            else:
                pending.cancel()  # still in its grace period: the lease and the connections are still ours
                del self._releasing[key]
        self._users[key] = self._users.get(key, 0) + 1
        self._closers.setdefault(key, {})[pool] = close
        taking = self._taking.get(key)
        if taking is None:
            taking = self._taking[key] = asyncio.ensure_future(
                asyncio.to_thread(take, self.db, key, self.owner, self.seconds)
            )
        held = False
        try:
            try:
                held = await asyncio.shield(taking)
            except Exception:
                log.warning("could not take the lease on %s; its messages wait", key, exc_info=True)
            held = held and key not in self._lost
            if held and key not in self._renewing:
                self._renewing[key] = asyncio.ensure_future(self._renew(key))
            yield held
        finally:
            self._users[key] -= 1
            if self._users[key] == 0:
                del self._users[key]
                self._stretch_ended(key)

    def _stretch_ended(self, key: str) -> None:
        taking = self._taking.get(key)
        if key in self._lost:
            # Lost while groups were sending: they may have opened connections since; close them all now.
            self._releasing[key] = asyncio.ensure_future(self._release(key, 0.0))
        elif taking is not None and not taking.done():
            # Every group waiting for the take was cancelled: settle it once it lands, so that a lease taken by
            # then is given back (not left to block the account until it runs out) and its error is read.
            taking.add_done_callback(lambda _f: self._after_abandoned_take(key))
        elif _owned(taking):
            self._releasing[key] = asyncio.ensure_future(self._release(key, self.grace))
        else:
            self._taking.pop(key, None)  # not ours: the next group asks again
            self._closers.pop(key, None)

    def _after_abandoned_take(self, key: str) -> None:
        taking = self._taking.get(key)
        if taking is None or key in self._users or not taking.done():
            return  # a new group took over the stretch (its end settles it)
        if not taking.cancelled():
            taking.exception()  # read: no "exception was never retrieved"
        if _owned(taking) and key not in self._releasing:
            self._releasing[key] = asyncio.ensure_future(self._release(key, 0.0))
        elif not _owned(taking):
            self._taking.pop(key, None)
            self._closers.pop(key, None)

    async def _renew(self, key: str) -> None:
        """A stretch can outlast the lease (a busy route, a slow server): extend it every third of its time."""
        while True:
            await asyncio.sleep(self.seconds / 3)
            try:
                renewed = await asyncio.to_thread(renew, self.db, key, self.owner, self.seconds)
            except Exception:  # the database is away: the next round tries again (the lease has time left)
                log.warning("could not extend the lease on %s", key, exc_info=True)
                continue
            if not renewed:
                # It ran out (a long database outage) and another worker may have it: stop opening connections
                # (``is_held``), close what is open; the end of the stretch closes again what opened meanwhile.
                log.warning("lost the lease on %s; closing its connections", key)
                self._lost.add(key)
                self._renewing.pop(key, None)
                await self._close_all(key)
                return

    async def _close_all(self, key: str) -> None:
        closers = list(self._closers.get(key, {}).values())
        await asyncio.gather(*(close() for close in closers), return_exceptions=True)

    async def _release(self, key: str, grace: float) -> None:
        me = asyncio.current_task()
        closing = False
        try:
            if grace:
                await asyncio.sleep(grace)
            self._closing.add(key)
            closing = True
            await self._end(key)
        finally:
            if closing:
                self._closing.discard(key)
            if self._releasing.get(key) is me:
                del self._releasing[key]

    async def _end(self, key: str) -> None:
        renewing = self._renewing.pop(key, None)
        if renewing is not None:
            renewing.cancel()
        self._taking.pop(key, None)
        try:
            await self._close_all(key)
        finally:
            self._closers.pop(key, None)
            self._lost.discard(key)
            try:
                await asyncio.to_thread(give, self.db, key, self.owner)
            except Exception:  # it runs out by itself (``seconds``)
                log.warning("could not give back the lease on %s", key, exc_info=True)

    async def aclose(self) -> None:
        """Stop: give back every lease now (the caller has closed its connections), grace periods cut short."""
        tasks = [*self._releasing.values(), *self._renewing.values()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._releasing.clear()
        self._renewing.clear()
        # A take still running in its thread could land after give_all and block the route for ``seconds``.
        await asyncio.gather(*self._taking.values(), return_exceptions=True)
        self._taking.clear()
        self._closers.clear()
        self._lost.clear()
        await asyncio.to_thread(give_all, self.db, self.owner)


def _owned(taking: asyncio.Future[bool] | None) -> bool:
    return (
        taking is not None and taking.done() and not taking.cancelled() and taking.exception() is None
        and taking.result()
    )
