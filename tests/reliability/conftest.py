"""Shared pieces of the reliability suite: a recording SMTP sink with scripted faults, real worker processes,
a PostgreSQL server a test may stop and start, and the checks every fault test makes.

Deliveries are counted at the sink by Message-ID (the worker derives it from the message id), so "lost" and
"duplicate" are what an SMTP server saw, not what the database says.
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP
from sqlalchemy import func, select

from letterhead import migrate
from letterhead.context import Context
from letterhead.delivery.queue import NewMessage, enqueue_many
from letterhead.models import Attempt, Message, MessageKind
from letterhead.pgcluster import PgCluster, pg_bin
from letterhead.tenants import create_tenant
from tests.conftest import make_settings
from tests.support.pg import _skip_or_fail
from tests.support.processes import free_port, start_worker, worker_env

#: What a scripted fault does to one message: None (accept), "drop_after_data" (take the message, then close
#: the connection without a reply: the client cannot know it arrived), "421" (at MAIL FROM), "451" (at the end of
#: DATA, not taken).
Fault = Callable[[int], str | None]


@dataclass
class Sink:
    """An aiosmtpd server in a thread recording each message's Message-ID and arrival time."""

    fault: Fault = lambda n: None
    data_delay: float = 0.0
    deliveries: Counter[str] = field(default_factory=Counter)
    first_seen: dict[str, float] = field(default_factory=dict)
    port: int = 0
    _n: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _controller: Any = None

    def _next(self) -> str | None:
        with self._lock:
            self._n += 1
            return self.fault(self._n)

    async def handle_EHLO(self, server: SMTP, session: Any, envelope: Any, hostname: str,
                          responses: list[str]) -> list[str]:
        session.host_name = hostname
        responses.insert(1, "250-PIPELINING")
        return responses

    async def handle_MAIL(self, server: SMTP, session: Any, envelope: Any, address: str, options: list[str]) -> str:
        session.fault = self._next()
        if session.fault == "421":
            return "421 4.3.2 Service not available, closing transmission channel"
        envelope.mail_from = address
        return "250 2.1.0 Ok"

    async def handle_DATA(self, server: SMTP, session: Any, envelope: Any) -> str:
        import asyncio

        if self.data_delay:
            await asyncio.sleep(self.data_delay)
        fault = getattr(session, "fault", None)
        if fault == "451":
            return "451 4.3.0 Temporary local problem"
        data = bytes(envelope.original_content or b"")
        mid = _message_id(data)
        with self._lock:
            self.deliveries[mid] += 1
            self.first_seen.setdefault(mid, time.time())
        if fault == "drop_after_data":
            raise ConnectionResetError("scripted drop after DATA")
        return "250 2.0.0 Ok"

    def start(self) -> Sink:
        self.port = free_port()
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port, ready_timeout=5.0,
                                      server_hostname="sink.test", enable_SMTPUTF8=True)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    @property
    def total(self) -> int:
        with self._lock:
            return sum(self.deliveries.values())


def _message_id(data: bytes) -> str:
    for line in data.split(b"\r\n"):
        if line.lower().startswith(b"message-id:"):
            return line.split(b":", 1)[1].strip().decode()
        if not line:
            break
    return "?"


def header_id(message_id: str) -> str:
    """The Message-ID the worker gives a message, without its domain (the sink's keys are compared this way)."""
    return message_id.removeprefix("msg_").lower()


@pytest.fixture
def sink() -> Iterator[Sink]:
    s = Sink().start()
    yield s
    s.stop()


def fill(ctx: Context, n: int, tenant: str = "shop", plan: str = "free") -> list[str]:
    create_tenant(ctx, tenant_id=tenant, name=tenant.title(), plan=plan)
    return enqueue(ctx, n, tenant)


def enqueue(ctx: Context, n: int, tenant: str = "shop") -> list[str]:
    ids: list[str] = []
    for start in range(0, n, 500):
        ids += [a.id for a in enqueue_many(ctx, [
            NewMessage(tenant_id=tenant, kind=MessageKind.EMAIL, to=[f"c{i}@example.com"], subject=f"#{i}", text="hi")
            for i in range(start, min(n, start + 500))
        ])]
    return ids


def status_counts(ctx: Context) -> dict[str, int]:
    with ctx.db.session() as s:
        rows = s.execute(select(Message.status, func.count()).group_by(Message.status)).all()
    return {status: count for status, count in rows}


def wait_all_sent(ctx: Context, n: int, timeout: float = 120.0) -> float:
    """Seconds until ``n`` messages are sent (AssertionError after ``timeout``)."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        try:
            if status_counts(ctx).get("sent", 0) >= n:
                return time.monotonic() - t0
        except Exception:  # the database may be down in a test that stops it
            pass
        time.sleep(0.2)
    raise AssertionError(f"not all sent within {timeout} s: {status_counts(ctx)}")


def wait_until(cond: Callable[[], bool], timeout: float = 60.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


@dataclass
class Ledger:
    """Per message: deliveries at the sink, attempts counted by the claims, attempt rows in the log."""

    n: int
    delivered: dict[str, int]
    attempt_count: dict[str, int]
    attempt_rows: dict[str, int]

    @property
    def lost(self) -> int:
        return sum(1 for d in self.delivered.values() if d == 0)

    @property
    def duplicates(self) -> int:
        return sum(d - 1 for d in self.delivered.values() if d > 1)

    def unseen_duplicates(self, *, rows: bool) -> list[str]:
        """Messages delivered more often than the log shows attempts (rows, or the count claims keep)."""
        seen = self.attempt_rows if rows else self.attempt_count
        return [m for m, d in self.delivered.items() if d > seen[m]]


def ledger(ctx: Context, sink: Sink, ids: list[str]) -> Ledger:
    with ctx.db.session() as s:
        counts = dict(s.execute(select(Message.id, Message.attempt_count)).tuples().all())
        rows = dict(s.execute(select(Attempt.message_id, func.count()).group_by(Attempt.message_id)).tuples().all())
    by_header = {k.split("@")[0].lstrip("<"): v for k, v in sink.deliveries.items()}
    delivered = {i: by_header.get(header_id(i), 0) for i in ids}
    return Ledger(len(ids), delivered, {i: counts.get(i, 0) for i in ids}, {i: rows.get(i, 0) for i in ids})


def context(tmp_path: Path, database_url: str | None = None) -> Context:
    ctx = Context.create(make_settings(tmp_path, database_url))
    migrate.upgrade(ctx.db.engine)
    return ctx


def workers(ctx: Context, sink_port: int, count: int = 1, **extra: str) -> tuple[dict[str, str], list[subprocess.Popen[bytes]]]:
    """``count`` real `letterhead worker` processes sending through ``sink_port`` as the platform transport,
    with fast retries (the fault tests wait for them)."""
    env = worker_env(
        ctx.settings,
        LETTERHEAD_PLATFORM_SMTP_URL=f"smtp://127.0.0.1:{sink_port}",
        LETTERHEAD_RETRY_BASE_SECONDS="0.2",
        LETTERHEAD_RETRY_MAX_SECONDS="1",
        LETTERHEAD_SMTP_TIMEOUT_SECONDS="5",
        LETTERHEAD_ALLOW_PRIVATE_SMTP_HOSTS="1",
        **extra,
    )
    return env, [start_worker(env) for _ in range(count)]


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        if p.poll() is None:
            p.kill()
        p.wait(timeout=30)


class StoppablePg(PgCluster):
    """A PostgreSQL server of one test's own, which it may stop (``pg_ctl stop -m fast``) and start again."""

    def __init__(self) -> None:
        super().__init__(prefix="lh-rel-pg-", options="-c fsync=off -c synchronous_commit=off")

    def _ctl(self, *args: str) -> None:
        pg_ctl = pg_bin("pg_ctl")
        assert pg_ctl
        self._run(pg_ctl, "-D", str(self.dir / "data"), *args)

    def pause(self) -> None:
        self._ctl("-m", "fast", "-w", "stop")

    def resume(self) -> None:
        opts = (f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.dir} "
                f"-c max_connections=200 {self.options}")
        self._ctl("-o", opts, "-l", str(self.dir / "log"), "-w", "start")


@pytest.fixture
def stoppable_pg() -> Iterator[StoppablePg]:
    if not (pg_bin("initdb") and pg_bin("pg_ctl")):
        _skip_or_fail("no PostgreSQL server binaries")
    cluster = StoppablePg()
    try:
        cluster.start()
    except subprocess.CalledProcessError as exc:
        cluster.stop()
        _skip_or_fail(f"could not start a throwaway PostgreSQL: {exc.stderr.decode(errors='replace')[:300]}")
    try:
        yield cluster
    finally:
        cluster.stop()
