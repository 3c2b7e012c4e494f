"""Delivery guarantees with real worker processes: none lost, none sent twice, graceful SIGTERM, kill -9."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import func, select

from letterhead import migrate
from letterhead.context import Context
from letterhead.delivery.queue import NewMessage, enqueue_many
from letterhead.models import (
    Attempt,
    Message,
    MessageKind,
    MessageStatus,
    RouteLease,
    SenderMode,
    SmtpConfig,
    Tenant,
)
from letterhead.tenants import create_tenant
from tests.conftest import make_settings
from tests.support.processes import sink_process, start_worker, wait_for_output, worker_env
from tests.support.smtpd import SmtpServer


def _fill(ctx: Context, n: int) -> None:
    create_tenant(ctx, tenant_id="shop", name="Shop", plan="free")
    for start in range(0, n, 500):
        enqueue_many(
            ctx,
            [
                NewMessage(tenant_id="shop", kind=MessageKind.EMAIL, to=[f"c{i}@example.com"], subject=f"#{i}", text="hi")
                for i in range(start, min(n, start + 500))
            ],
        )


def _status_counts(ctx: Context) -> dict[str, int]:
    with ctx.db.session() as s:
        return dict(s.execute(select(Message.status, func.count()).group_by(Message.status)).all())  # type: ignore[arg-type]


def _wait_all_sent(ctx: Context, n: int, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _status_counts(ctx).get("sent", 0) == n:
            return
        time.sleep(0.2)
    raise AssertionError(f"not all sent: {_status_counts(ctx)}")


@pytest.mark.postgres
def test_two_workers_on_postgres_deliver_2000_exactly_once(tmp_path: Path, pg_url: str) -> None:
    ctx = Context.create(make_settings(tmp_path, pg_url))
    migrate.upgrade(ctx.db.engine)
    _fill(ctx, 2000)
    with sink_process(tmp_path) as sink:
        env = worker_env(ctx.settings, LETTERHEAD_PLATFORM_SMTP_URL=f"smtp://127.0.0.1:{sink.port}")
        workers = [start_worker(env), start_worker(env)]
        try:
            _wait_all_sent(ctx, 2000)
            for w in workers:  # one may finish the queue before the other is up: stop both once they are
                wait_for_output(w, "started with")
        finally:
            for w in workers:
                w.send_signal(signal.SIGTERM)
            codes = [w.wait(timeout=30) for w in workers]
        stats = sink.stop()
    assert codes == [0, 0]
    assert stats == {"messages": 2000, "unique_message_ids": 2000}
    with ctx.db.session() as s:
        assert s.scalar(select(func.count()).select_from(Attempt)) == 2000
        owners = s.scalar(select(func.count(func.distinct(Message.transport))))
    assert owners == 1
    ctx.close()


def test_sigterm_drains_and_leaves_nothing_leased(tmp_path: Path) -> None:
    ctx = Context.create(make_settings(tmp_path))
    migrate.upgrade(ctx.db.engine)
    _fill(ctx, 3000)
    with sink_process(tmp_path) as sink:
        env = worker_env(ctx.settings, LETTERHEAD_PLATFORM_SMTP_URL=f"smtp://127.0.0.1:{sink.port}")
        w = start_worker(env)
        deadline = time.monotonic() + 60
        while _status_counts(ctx).get("sent", 0) == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        w.send_signal(signal.SIGTERM)
        assert w.wait(timeout=30) == 0
        counts = _status_counts(ctx)
        stats = sink.stop()
    assert counts.get("sending", 0) == 0, counts
    assert counts.get("sent", 0) > 0
    assert counts.get("sent", 0) + counts.get("queued", 0) == 3000
    # Everything the sink received is recorded as sent, and nothing twice.
    assert stats["messages"] == stats["unique_message_ids"] == counts["sent"]
    ctx.close()


def test_kill_9_loses_nothing_stale_leases_are_reclaimed(tmp_path: Path) -> None:
    ctx = Context.create(make_settings(tmp_path))
    migrate.upgrade(ctx.db.engine)
    _fill(ctx, 3000)
    with sink_process(tmp_path) as sink:
        env = worker_env(
            ctx.settings, LETTERHEAD_PLATFORM_SMTP_URL=f"smtp://127.0.0.1:{sink.port}", LETTERHEAD_LEASE_SECONDS="2"
        )
        w = start_worker(env)
        deadline = time.monotonic() + 60
        while _status_counts(ctx).get("sent", 0) == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        w.send_signal(signal.SIGKILL)
        w.wait(timeout=10)
        survivor = start_worker(env)
        try:
            _wait_all_sent(ctx, 3000)
        finally:
            survivor.send_signal(signal.SIGTERM)
            survivor.wait(timeout=30)
        stats = sink.stop()
    # At-least-once: every message arrived; duplicates only from what was in flight at the kill.
    assert stats["unique_message_ids"] == 3000
    assert stats["messages"] - 3000 <= 2 * ctx.settings.worker_batch_size
    with ctx.db.session() as s:
        assert s.scalar(select(func.count()).where(Message.status == MessageStatus.SENT.value)) == 3000
    ctx.close()


def test_sigterm_while_starting_stops_cleanly_before_any_work(tmp_path: Path) -> None:
    """A supervisor may stop a worker a moment after starting it: exit 0, nothing claimed, not killed mid-way."""
    ctx = Context.create(make_settings(tmp_path))
    migrate.upgrade(ctx.db.engine)
    _fill(ctx, 10)
    # The signal lands after `catch_early` and before the event loop's handlers exist (imports, migrations).
    script = (
        "import os, signal, sys\n"
        "from letterhead import shutdown\n"
        "shutdown.catch_early()\n"
        "os.kill(os.getpid(), signal.SIGTERM)\n"
        "from letterhead.cli import main\n"
        "sys.argv = ['letterhead', 'worker']\n"
        "main()\n"
    )
    env = worker_env(ctx.settings, LETTERHEAD_PLATFORM_SMTP_URL="smtp://127.0.0.1:9")
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, timeout=60)
    assert proc.returncode == 0, proc.stderr.decode()
    assert b"stopped after" in proc.stderr and b"handled=0" in proc.stderr
    assert _status_counts(ctx) == {"queued": 10}
    ctx.close()


def test_two_worker_processes_share_a_tenant_smtp_accounts_connection_cap(
    tmp_path: Path, smtpd_factory: Callable[..., SmtpServer]
) -> None:
    """Real `letterhead worker` processes: the account's cap (2 here) holds between them, every message arrives
    once, and stopped workers leave no lease behind (delivery/route_leases.py)."""
    server = smtpd_factory()
    server.script.data_delay = 0.01  # connections stay busy: the workers' batches overlap
    ctx = Context.create(make_settings(tmp_path, allow_private_smtp_hosts=True))
    migrate.upgrade(ctx.db.engine)
    create_tenant(ctx, tenant_id="shop", name="Shop", plan="enterprise")
    with ctx.db.session() as s:
        s.add(SmtpConfig(tenant_id="shop", host="127.0.0.1", port=server.port, security="none",
                         from_email="shop@example.jp", max_connections=2))
        tenant = s.get(Tenant, "shop")
        assert tenant is not None
        tenant.mode = SenderMode.SMTP.value
    enqueue_many(ctx, [NewMessage(tenant_id="shop", kind=MessageKind.EMAIL, to=[f"c{i}@example.com"],
                                  subject=f"#{i}", text="hi") for i in range(60)])
    env = worker_env(ctx.settings, LETTERHEAD_ALLOW_PRIVATE_SMTP_HOSTS="1", LETTERHEAD_WORKER_BATCH_SIZE="5")
    workers = [start_worker(env), start_worker(env)]
    try:
        _wait_all_sent(ctx, 60, timeout=180.0)  # messages found busy wait up to 30 s each time
        for w in workers:
            wait_for_output(w, "started with")
    finally:
        for w in workers:
            w.send_signal(signal.SIGTERM)
        codes = [w.wait(timeout=30) for w in workers]
    assert codes == [0, 0]
    assert 1 <= server.max_open <= 2
    assert sorted(m.data.split(b"Subject: #")[1].split(b"\r\n")[0] for m in server.messages) == sorted(
        str(i).encode() for i in range(60)
    )
    with ctx.db.session() as s:
        assert s.scalar(select(func.count()).select_from(Attempt)) == 60
        assert s.scalars(select(RouteLease)).all() == []
    ctx.close()
