"""RouteLeases' bookkeeping inside one worker (the table itself is tested on SQLite and PostgreSQL in
tests/integration/test_smtp_settings_api.py): every pool is closed before the lease is given back, a lease found
lost stops sending and closes what opened since, an abandoned take is given back. The table is a dict here."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from letterhead.delivery import route_leases
from letterhead.delivery.route_leases import RouteLeases


class FakeTable:
    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.rows: dict[str, str] = {}
        self.gate: threading.Event | None = None  # set: take() waits for it (a slow database)
        monkeypatch.setattr(route_leases, "take", self.take)
        monkeypatch.setattr(route_leases, "renew", self.renew)
        monkeypatch.setattr(route_leases, "give", self.give)
        monkeypatch.setattr(route_leases, "give_all", self.give_all)

    def take(self, db: Any, key: str, owner: str, seconds: float) -> bool:
        if self.gate is not None:
            self.gate.wait(5)
        if self.rows.get(key, owner) != owner:
            return False
        self.rows[key] = owner
        return True

    def renew(self, db: Any, key: str, owner: str, seconds: float) -> bool:
        return self.rows.get(key) == owner

    def give(self, db: Any, key: str, owner: str) -> None:
        if self.rows.get(key) == owner:
            del self.rows[key]

    def give_all(self, db: Any, owner: str) -> None:
        for key in [k for k, o in self.rows.items() if o == owner]:
            del self.rows[key]


async def until(condition: Any, timeout: float = 5.0) -> None:
    """Wait for ``condition()`` (threads and timers run late on a loaded machine; no fixed sleeps)."""
    for _ in range(int(timeout / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not met in time")


def worker_leases(seconds: float, grace: float) -> RouteLeases:
    return RouteLeases(None, "w1", seconds=seconds, grace=grace)  # type: ignore[arg-type]  # the table is faked


class Pool:
    """Stands in for one of the SMTP client's connection pools."""

    def __init__(self) -> None:
        self.open = 0

    async def close(self) -> None:
        self.open = 0


def test_every_pool_used_under_a_lease_is_closed_before_it_is_given_back(monkeypatch: pytest.MonkeyPatch) -> None:
    table = FakeTable(monkeypatch)
    old, new = Pool(), Pool()  # one account, two pools (e.g. the settings before and after a password change)

    async def go() -> None:
        leases = worker_leases(30, 0.05)

        async def group(pool: Pool, pause: float) -> None:
            async with leases.hold("k", pool.close, id(pool)) as held:
                assert held
                pool.open += 1
                await asyncio.sleep(pause)

        await asyncio.gather(group(old, 0.01), group(new, 0.03))
        assert table.rows == {"k": "w1"} and old.open == new.open == 1  # the grace period keeps them warm
        await until(lambda: not table.rows)
        assert old.open == new.open == 0

    asyncio.run(go())


def test_a_lease_found_lost_stops_sending_and_closes_what_opened_since(monkeypatch: pytest.MonkeyPatch) -> None:
    table = FakeTable(monkeypatch)
    pool = Pool()

    async def go() -> None:
        leases = worker_leases(0.3, 5)
        async with leases.hold("k", pool.close, "p") as held:
            assert held and leases.is_held("k")
            table.rows["k"] = "w2"  # ours ran out (a long outage) and another worker took it
            await until(lambda: not leases.is_held("k"))  # a renewal (every 0.1 s) finds it gone
            await until(lambda: pool.open == 0)  # and closes what was open
            pool.open += 1  # a group that was already past its check opened one more
            async with leases.hold("k", pool.close, "p") as again:
                assert not again  # a new group of the same stretch does not send
        await until(lambda: "k" not in leases._releasing)
        assert pool.open == 0  # closed at the end of the stretch, without waiting for a grace period
        assert table.rows == {"k": "w2"}  # the other worker's lease is not touched
        async with leases.hold("k", pool.close, "p") as later:
            assert not later  # still theirs

    asyncio.run(go())


def test_a_take_whose_groups_were_cancelled_is_given_back_when_it_lands(monkeypatch: pytest.MonkeyPatch) -> None:
    table = FakeTable(monkeypatch)
    table.gate = threading.Event()
    pool = Pool()

    async def go() -> None:
        leases = worker_leases(30, 5)

        async def group() -> None:
            async with leases.hold("k", pool.close, "p"):
                pass

        task = asyncio.ensure_future(group())
        await asyncio.sleep(0.02)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        assert table.gate is not None
        table.gate.set()  # the database answers: the lease is ours, but nobody is left to use it
        await until(lambda: not table.rows and "k" not in leases._releasing)
        await leases.aclose()

    asyncio.run(go())


def test_aclose_gives_back_leases_kept_for_their_grace_period(monkeypatch: pytest.MonkeyPatch) -> None:
    table = FakeTable(monkeypatch)
    pool = Pool()

    async def go() -> None:
        leases = worker_leases(30, 60)
        async with leases.hold("k", pool.close, "p") as held:
            assert held
        assert table.rows == {"k": "w1"}
        await leases.aclose()
        assert table.rows == {}

    asyncio.run(go())
