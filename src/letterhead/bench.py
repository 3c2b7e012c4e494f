"""``letterhead bench``: the real pipeline (enqueue → worker → SMTP) against a local sink.

The sink is Postfix's ``smtp-sink`` when installed (the peers in DESIGN.md were measured against it), else the
built-in ``letterhead.benchsink``; the result says which. It runs in its own process so that it does not share
the worker's event loop. Nothing here talks to anything but 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import os
import platform
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import select

from letterhead import __version__, migrate
from letterhead.context import Context
from letterhead.delivery.queue import NewMessage, enqueue_many
from letterhead.models import Message, MessageKind, MessageStatus
from letterhead.settings import Settings, ensure_keys
from letterhead.tenants import create_tenant

SMTP_SINK = "/usr/sbin/smtp-sink"


class Progress(Protocol):
    def print(self, *args: Any) -> None: ...


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"the sink did not start on port {port}")


class Sink:
    def __init__(self, name: str, port: int, proc: subprocess.Popen[bytes] | None, stats: Path | None) -> None:
        self.name, self.port, self.proc, self.stats = name, port, proc, stats

    def received(self) -> dict[str, Any] | None:
        """Counts the sink saw (the built-in sink only), read after it stopped."""
        if self.stats and self.stats.exists():
            import json

            data: dict[str, Any] = json.loads(self.stats.read_text())
            return data
        return None


@contextmanager
def start_sink(port: int | None, workdir: Path) -> Iterator[Sink]:
    if port:
        yield Sink("external", port, None, None)
        return
    port = _free_port()
    stats = workdir / "sink-stats.json"
    if os.path.exists(SMTP_SINK):
        # -c: count; backlog 1024; as root smtp-sink needs -u to drop privileges.
        user = ["-u", "nobody"] if os.geteuid() == 0 else []
        cmd = [SMTP_SINK, *user, "-c", f"127.0.0.1:{port}", "1024"]
        name, stats_path = "postfix smtp-sink", None
    else:
        cmd = [sys.executable, "-m", "letterhead.benchsink", "--port", str(port), "--stats", str(stats)]
        name, stats_path = "letterhead.benchsink (built-in; Postfix smtp-sink not installed)", stats
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_port(port)
        yield Sink(name, port, proc, stats_path)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def _message(i: int, tenant: str) -> NewMessage:
    body = ("Thank you for your order. ご注文ありがとうございます。" * 60)[:3500]
    return NewMessage(
        tenant_id=tenant,
        kind=MessageKind.EMAIL,
        to=[f"customer{i}@example.com"],
        subject=f"Order #{i} confirmed / ご注文 #{i}",
        html=f"<p>{body}</p>",
        text=body,
    )


def _peak_rss_mb() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return round(max(own, children) / 1024, 1)  # Linux reports KiB


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    values = sorted(values)
    k = min(len(values) - 1, max(0, round(q * (len(values) - 1))))
    return round(values[k], 1)


def run_bench(
    *,
    messages: int,
    tenants: int,
    sink_port: int | None = None,
    transport_only: bool = False,
    postgres: str | None = None,
    workers: int = 1,
    progress: Progress | None = None,
) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="lh-bench-"))
    try:
        with start_sink(sink_port, workdir) as sink:
            if transport_only:
                result = _transport_only(messages, sink.port)
            else:
                result = _end_to_end(messages, tenants, sink.port, workdir, postgres, workers, progress)
        received = sink.received()
        result.update(
            sink=sink.name,
            sink_received=received,
            peak_rss_mb=_peak_rss_mb(),
            mode="transport-only" if transport_only else ("postgres" if postgres else "sqlite"),
            version=__version__,
            python=platform.python_version(),
            cores=os.cpu_count(),
        )
        if received is not None:
            result["sink_ok"] = received["messages"] == messages and received["unique_message_ids"] == messages
        return result
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _transport_only(n: int, port: int) -> dict[str, Any]:
    from letterhead.smtp.client import Endpoint, Envelope, Security, SmtpClient

    datas = [
        b"From: a@example.com\r\nTo: b@example.com\r\nSubject: bench\r\nMessage-ID: <%d@bench>\r\n\r\n" % i
        + b"x" * 76 + b"\r\n" * 50
        for i in range(n)
    ]
    envelopes = [Envelope("a@example.com", ("b@example.com",), d) for d in datas]

    async def go() -> float:
        client = SmtpClient()
        endpoint = Endpoint(host="127.0.0.1", port=port, security=Security.NONE, max_connections=8)
        t0 = time.perf_counter()
        results = await client.send_batch(endpoint, envelopes)
        elapsed = time.perf_counter() - t0
        await client.aclose()
        bad = [r for r in results if r.outcome.value != "sent"]
        if bad:
            raise RuntimeError(f"{len(bad)} messages not accepted by the sink: {bad[0]}")
        return elapsed

    elapsed = asyncio.run(go())
    return {"messages": n, "seconds": round(elapsed, 3), "msgs_per_sec": round(n / elapsed, 1), "p50_ms": None, "p99_ms": None}


def _end_to_end(
    n: int, tenants: int, port: int, workdir: Path, postgres: str | None, workers: int, progress: Progress | None
) -> dict[str, Any]:
    from letterhead.delivery.worker import Worker

    settings = Settings(
        env="test",
        data_dir=workdir / "data",
        database_url=postgres,
        platform_smtp_url=f"smtp://127.0.0.1:{port}",
        worker_batch_size=500,
        worker_poll_seconds=0.05,
    )
    ensure_keys(settings)
    ctx = Context.create(settings)
    migrate.upgrade(ctx.db.engine)
    tenant_ids = [f"bench{i}" for i in range(tenants)]
    for t in tenant_ids:
        create_tenant(ctx, tenant_id=t, name=f"Bench shop {t}", plan="pro")

    async def go() -> float:
        worker = Worker(ctx)
        task = asyncio.create_task(worker.run())
        t0 = time.perf_counter()
        for start in range(0, n, 1000):
            batch = [_message(i, tenant_ids[i % tenants]) for i in range(start, min(n, start + 1000))]
            await asyncio.to_thread(enqueue_many, ctx, batch)
            worker.wakeup.set()
        while True:
            done = await asyncio.to_thread(_count_done, ctx)
            if done >= n:
                break
            if progress:
                progress.print(f"{done}/{n} delivered")
            await asyncio.sleep(0.5)
        elapsed = time.perf_counter() - t0
        worker.stop()
        await task
        return elapsed

    elapsed = asyncio.run(go())
    with ctx.db.session() as s:
        rows = s.execute(select(Message.created_at, Message.sent_at, Message.status)).all()
    ctx.close()
    latencies = [(r.sent_at - r.created_at).total_seconds() * 1000 for r in rows if r.sent_at]
    sent = sum(1 for r in rows if r.status == MessageStatus.SENT.value)
    return {
        "messages": n,
        "sent": sent,
        "log_ok": sent == n,
        "seconds": round(elapsed, 3),
        "msgs_per_sec": round(n / elapsed, 1),
        "p50_ms": _percentile(latencies, 0.5),
        "p99_ms": _percentile(latencies, 0.99),
        "mean_ms": round(statistics.fmean(latencies), 1) if latencies else None,
        "workers": workers,
    }


def _count_done(ctx: Context) -> int:
    from sqlalchemy import func

    with ctx.db.session() as s:
        return int(
            s.scalar(
                select(func.count())
                .select_from(Message)
                .where(Message.status.in_([MessageStatus.SENT.value, MessageStatus.FAILED.value]))
            )
            or 0
        )
