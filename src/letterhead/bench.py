"""``letterhead bench``: the real pipeline against a local sink, one JSON object of figures.

Modes (issue #7):

* **end to end** (default): notifications are accepted through ``notifications.service.accept`` in batches of
  1,000 (what the batch API does), rendered from the event's template with per-recipient data by real
  ``letterhead worker`` processes, delivered over SMTP, and their status and attempt recorded. The clock runs
  from the first accepted batch to the last recorded outcome.
* ``--transport-only``: pre-composed ~4 KB messages through Letterhead's SMTP client (no database).
* ``--postgres URL`` (or ``auto``: a throwaway cluster in a temporary folder, like the tests start) instead of
  SQLite; ``--workers K`` worker processes.
* ``--offered-rate R``: notifications are accepted at R per second; p50/p99 enqueue→sent latency.
* ``--queued N``: N messages are queued first, then one worker runs; its RSS is sampled (peak, and how it
  moves while the queue drains) — it must stay flat because a worker only ever holds one batch.

The sink is Postfix's ``smtp-sink`` when installed (the peers in DESIGN.md were measured against it; its ``-c``
counter tells how many messages it received), else the built-in ``letterhead.benchsink`` (which also counts
distinct Message-IDs). Every run checks correctness: the sink received exactly the messages sent, and the log
agrees (every message ``sent``, exactly one attempt each, distinct Message-IDs). Only 127.0.0.1 is used.
"""

from __future__ import annotations

import json
import os
import platform
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import func, select, text

from letterhead import __version__
from letterhead.pgcluster import PgCluster

SMTP_SINK = "/usr/sbin/smtp-sink"
ACCEPT_BATCH = 1000
DKIM_NOTE = "not applicable: --transport-only sends pre-composed bytes (use end to end with --dkim)"


class Progress(Protocol):
    def print(self, *args: Any) -> None: ...


def _say(progress: Progress | None, text: str) -> None:
    if progress is not None:
        progress.print(text)


# --------------------------------------------------------------------------------------------- helpers


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_port(port: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (``q`` in 0..1), rounded to 0.1."""
    if not values:
        return None
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return round(ordered[k], 1)


def _rss_mb(pid: int, field_name: str = "VmRSS") -> float | None:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith(field_name + ":"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


def _cpu_seconds(pid: int, tid: int | None = None) -> float | None:
    """User + system CPU time of a process so far (``/proc/PID/stat`` fields 14 and 15, in clock ticks), or of one
    of its threads (``/proc/PID/task/TID/stat``; a process's first thread has its pid as tid)."""
    try:
        with open(f"/proc/{pid}/stat" if tid is None else f"/proc/{pid}/task/{tid}/stat") as fh:
            fields = fh.read().rpartition(")")[2].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_speed() -> dict[str, float]:
    """How fast this machine is *this minute*: fixed work timed in this process's CPU time (min of 3).

    The figures of a run only compare with another run's once this does: on a shared VM the same code's CPU per
    message moves by ±30% from minute to minute (docs/performance.md), and none of it shows as steal time.
    ``python_ms``: a fixed mix of dict, str and JSON work; ``rsa2048_sign_us``: one DKIM-size RSA signature.
    """
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    def python_work() -> None:
        d: dict[str, Any] = {}
        for i in range(20_000):
            d[f"k{i}"] = json.dumps({"n": i, "s": "注文" * (i % 5), "l": [i, i + 1]})
        "".join(d.values()).encode()

    key = _calibration_key()
    data = b"x" * 400

    def rsa_work() -> None:
        for _ in range(20):
            key.sign(data, padding.PKCS1v15(), hashes.SHA256())

    def best(fn: Any) -> float:
        runs = []
        for _ in range(3):
            t = time.process_time()
            fn()
            runs.append(time.process_time() - t)
        return min(runs)

    return {"python_ms": round(best(python_work) * 1000, 1), "rsa2048_sign_us": round(best(rsa_work) / 20 * 1e6, 1)}


_KEY: list[Any] = []


def _calibration_key() -> Any:
    if not _KEY:
        from cryptography.hazmat.primitives.asymmetric import rsa

        _KEY.append(rsa.generate_private_key(public_exponent=65537, key_size=2048))
    return _KEY[0]


def _own_peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)  # Linux reports KiB


def versions() -> dict[str, Any]:
    import sqlite3
    from importlib.metadata import PackageNotFoundError, version

    import sqlalchemy

    try:
        uv: str | None = version("uvloop")
    except PackageNotFoundError:
        uv = None
    return {
        "letterhead": __version__,
        "python": platform.python_version(),
        "sqlalchemy": sqlalchemy.__version__,
        "sqlite": sqlite3.sqlite_version,
        "uvloop": uv,
        "platform": platform.platform(),
    }


# --------------------------------------------------------------------------------------------- the sink


class Sink:
    """A running sink. ``received()`` is read after ``stop()``."""

    def __init__(self, name: str, port: int, proc: subprocess.Popen[bytes] | None, out: Path | None,
                 stats: Path | None) -> None:
        self.name, self.port, self.proc, self.out, self.stats = name, port, proc, out, stats

    def cpu_seconds(self) -> float | None:
        return _cpu_seconds(self.proc.pid) if self.proc is not None else None

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def received(self) -> dict[str, Any] | None:
        """``{"messages": N}`` (+ ``unique_message_ids`` from the built-in sink); None for an external sink."""
        if self.stats is not None and self.stats.exists():
            data: dict[str, Any] = json.loads(self.stats.read_text())
            return data
        if self.out is not None and self.out.exists():
            # smtp-sink -c rewrites "sess=A quit=B mesg=N" with a carriage return after every message.
            counts = re.findall(rb"mesg=(\d+)", self.out.read_bytes())
            return {"messages": int(counts[-1]) if counts else 0}
        return None


def sink_kind(requested: str) -> str:
    if requested == "auto":
        return "smtp-sink" if os.path.exists(SMTP_SINK) else "builtin"
    if requested == "smtp-sink" and not os.path.exists(SMTP_SINK):
        raise RuntimeError("Postfix smtp-sink is not installed (Debian package postfix)")
    return requested


@contextmanager
def start_sink(port: int | None, workdir: Path, kind: str = "auto") -> Iterator[Sink]:
    if port:
        yield Sink("external", port, None, None, None)
        return
    kind = sink_kind(kind)
    port = _free_port()
    if kind == "smtp-sink":
        # -c: running counters on stdout; as root smtp-sink needs -u to drop privileges; backlog 1024.
        out = workdir / f"smtp-sink-{port}.out"
        user = ["-u", "nobody"] if os.geteuid() == 0 else []
        with open(out, "wb") as fh:
            proc = subprocess.Popen([SMTP_SINK, *user, "-c", f"127.0.0.1:{port}", "1024"], stdout=fh,
                                    stderr=subprocess.DEVNULL)
        sink = Sink("postfix smtp-sink", port, proc, out, None)
    else:
        stats = workdir / f"benchsink-{port}.json"
        cmd = [sys.executable, "-m", "letterhead.benchsink", "--port", str(port), "--stats", str(stats)]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        sink = Sink("letterhead.benchsink (built-in)", port, proc, None, stats)
    try:
        _wait_port(port)
        yield sink
    finally:
        sink.stop()


# --------------------------------------------------------------------------------------------- PostgreSQL


@contextmanager
def database_url(postgres: str | None, progress: Progress | None) -> Iterator[str | None]:
    if postgres != "auto":
        yield postgres
        return
    # Default durability (fsync on); only the commit wait is relaxed, as a queue in production may choose.
    cluster = PgCluster(prefix="lh-bench-pg-", options="-c shared_buffers=256MB -c synchronous_commit=off")
    _say(progress, "starting a throwaway PostgreSQL cluster")
    try:
        cluster.start()
        _clusters[cluster.url] = cluster
        yield cluster.url
    finally:
        _clusters.pop(cluster.url, None)
        cluster.stop()


#: Throwaway clusters by URL, so that a run can report the server's CPU per message.
_clusters: dict[str, PgCluster] = {}


def _db_cpu_seconds(db_url: str | None) -> float | None:
    cluster = _clusters.get(db_url or "")
    return cluster.cpu_seconds() if cluster else None


# --------------------------------------------------------------------------------------------- transport only


def transport_messages(n: int, size: int = 4096, start: int = 0) -> list[Any]:
    """~``size``-byte messages composed beforehand by ``notifications.compose``, as the worker hands them to the
    client: SMTP-canonical (``Envelope.canonical``), so the client sends them without the transparency scans
    (a message that is not canonical is normalised and dot-stuffed: tests/integration/test_smtp_client.py)."""
    from letterhead.notifications.compose import compose
    from letterhead.smtp.client import Envelope

    line = "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt.\n"
    text = line * max(1, (size - 280) * 3 // 4 // len(line))  # base64 makes the body 4/3 as long
    date = datetime.now(UTC)
    out = []
    for i in range(start, start + n):
        data = compose(
            from_addr="shop@acme.example", from_name="ACME", to=[f"customer{i}@example.com"],
            subject=f"Your order {i}", html=None, text=text, message_id=f"<{i}.bench@letterhead.example>", date=date,
        )
        out.append(Envelope("shop@acme.example", (f"customer{i}@example.com",), data, canonical=True))
    return out


def _transport_only(n: int, port: int, connections: int, pipelining: bool) -> dict[str, Any]:
    from letterhead.smtp.client import Endpoint, Outcome, Security, SmtpClient

    envelopes = transport_messages(n)
    warm = transport_messages(connections, start=n)

    async def go() -> tuple[float, list[Any]]:
        client = SmtpClient(pipelining=pipelining)
        endpoint = Endpoint(host="127.0.0.1", port=port, security=Security.NONE, max_connections=connections)
        await client.send_batch(endpoint, warm)  # open the pool: the measurement is the steady state
        t0 = time.perf_counter()
        results = await client.send_batch(endpoint, envelopes)
        elapsed = time.perf_counter() - t0
        await client.aclose()
        return elapsed, results

    from letterhead.server import run

    elapsed, results = run(go())  # the worker's event loop (uvloop when installed), not asyncio's default
    sent = sum(1 for r in results if r.outcome is Outcome.SENT)
    return {
        "messages": n,
        "sent": sent,
        "warmup_messages": len(warm),
        "connections": connections,
        "pipelining": pipelining,
        "message_bytes": len(envelopes[0].data) if envelopes else 0,
        "seconds": round(elapsed, 3),
        "msgs_per_sec": round(n / elapsed, 1),
        "p50_ms": None,
        "p99_ms": None,
        "log_ok": sent == n,
    }


# --------------------------------------------------------------------------------------------- end to end


def order_data(i: int) -> dict[str, Any]:
    """Per-recipient ``order.created`` data: every message renders differently."""
    items: list[dict[str, Any]] = [
        {"name": "有田焼 マグカップ(藍)", "quantity": 1 + i % 3, "price": 1980, "sku": "ARITA-MUG-AI"},
        {"name": "宇治抹茶 100g", "quantity": 1, "price": 1620 + i % 7 * 10, "sku": "UJI-MATCHA-100"},
        {"name": f"Gift wrapping #{i % 5}", "quantity": 1, "price": 300},
    ]
    subtotal = sum(it["quantity"] * it["price"] for it in items)
    return {
        "customer_name": f"山田 花子 {i}",
        "order_number": f"A-20261127-{i:06d}",
        "ordered_at": "2026-11-27T14:30:00+09:00",
        "items": items,
        "subtotal": subtotal,
        "shipping_fee": 600,
        "tax": 0,
        "total": subtotal + 600,
        "currency": "JPY",
        "payment_method": "クレジットカード(VISA 末尾4242)",
        "shipping_address": "〒150-0001 東京都渋谷区神宮前1-2-3 グリーンハイツ201",
        "order_url": f"https://shop.example.jp/orders/A-20261127-{i:06d}",
    }


def notification_items(start: int, stop: int, tenants: int) -> list[Any]:
    from letterhead.notifications.service import NotificationIn

    return [
        NotificationIn(
            event="order.created",
            to={"email": f"customer{i}@example.com", "locale": "ja" if i % 4 else "en"},
            data=order_data(i),
        )
        for i in range(start, stop)
    ]


@dataclass
class Workers:
    procs: list[subprocess.Popen[bytes]]
    logs: list[Path]
    rss_peak: dict[int, float] = field(default_factory=dict)
    samples: list[tuple[float, float]] = field(default_factory=list)  # (seconds since start, total RSS MB)
    #: CPU seconds per worker at start-up (interpreter start and imports are not part of the measurement).
    cpu_start: dict[int, float] = field(default_factory=dict)
    cpu_last: dict[int, float] = field(default_factory=dict)
    #: The same for each worker's first thread, which runs its event loop (SMTP conversations, scheduling); the
    #: other threads claim, prepare (render, compose, sign) and record.
    loop_start: dict[int, float] = field(default_factory=dict)
    loop_last: dict[int, float] = field(default_factory=dict)

    def stage_seconds(self) -> dict[str, float]:
        """Wall-clock seconds per worker stage (claim, prepare = render + compose, send, record), summed over the
        workers' pipelines, from each worker's "stopped" log line. Read after ``stop()``."""
        total: dict[str, float] = {}
        for log in self.logs:
            m = re.search(r"handled=\d+ (.*)$", log.read_text(errors="replace"), re.MULTILINE)
            for k, v in re.findall(r"(\w+)=([\d.]+)", m.group(1) if m else ""):
                total[k] = round(total.get(k, 0.0) + float(v), 3)
        return total

    def cpu_seconds(self) -> float:
        """CPU time the workers spent since they started (summed over processes)."""
        return sum(self.cpu_last.get(p.pid, 0.0) - self.cpu_start.get(p.pid, 0.0) for p in self.procs)

    def loop_cpu_seconds(self) -> float:
        """The part of ``cpu_seconds`` spent in the workers' event-loop threads."""
        return sum(self.loop_last.get(p.pid, 0.0) - self.loop_start.get(p.pid, 0.0) for p in self.procs)

    def sample(self, t: float) -> None:
        total = 0.0
        for p in self.procs:
            for start, last, tid in ((self.cpu_start, self.cpu_last, None), (self.loop_start, self.loop_last, p.pid)):
                cpu = _cpu_seconds(p.pid, tid)
                if cpu is not None:
                    start.setdefault(p.pid, cpu)
                    last[p.pid] = cpu
            rss = _rss_mb(p.pid)
            if rss is not None:
                total += rss
                self.rss_peak[p.pid] = max(self.rss_peak.get(p.pid, 0.0), rss)
            hwm = _rss_mb(p.pid, "VmHWM")
            if hwm is not None:
                self.rss_peak[p.pid] = max(self.rss_peak.get(p.pid, 0.0), hwm)
        self.samples.append((round(t, 2), round(total, 1)))

    def stop(self) -> list[int | None]:
        self.sample(0.0)
        self.samples.pop()
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        codes: list[int | None] = []
        for p in self.procs:
            try:
                codes.append(p.wait(timeout=60))
            except subprocess.TimeoutExpired:
                p.kill()
                codes.append(p.wait())
        return codes


def start_workers(settings: Any, k: int, sink_port: int, workdir: Path) -> Workers:
    """``k`` real ``letterhead worker`` processes (as tests/support/processes.py starts them); waits until each
    logged that it started, so that interpreter start-up is not part of the measurement."""
    env = dict(os.environ) | settings.worker_env(
        LETTERHEAD_PLATFORM_SMTP_URL=f"smtp://127.0.0.1:{sink_port}", LETTERHEAD_WORKER_POLL_SECONDS="0.05"
    )
    procs, logs = [], []
    for i in range(k):
        log = workdir / f"worker-{i}.log"
        with open(log, "wb") as fh:
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-c", "from letterhead.cli import main; main()", "worker"],
                    env=env, stdout=subprocess.DEVNULL, stderr=fh,
                )
            )
        logs.append(log)
    workers = Workers(procs, logs)
    deadline = time.monotonic() + 60
    for p, log in zip(procs, logs, strict=True):
        while b" started" not in log.read_bytes():
            if p.poll() is not None or time.monotonic() > deadline:
                workers.stop()
                raise RuntimeError(f"a worker did not start: {log.read_text()[-2000:]}")
            time.sleep(0.05)
    workers.sample(0.0)  # the CPU baseline
    workers.samples.pop()
    return workers


def _bench_settings(workdir: Path, db_url: str | None, sink_port: int) -> Any:
    from letterhead.settings import Settings, ensure_keys

    settings = Settings(
        env="test",
        data_dir=workdir / "data",
        database_url=db_url,
        platform_smtp_url=f"smtp://127.0.0.1:{sink_port}",
    )
    ensure_keys(settings)
    return settings


def _setup_db(settings: Any, tenants: int, *, dkim: bool = False) -> tuple[Any, list[Any]]:
    from letterhead import migrate
    from letterhead.context import Context
    from letterhead.tenants import create_tenant

    ctx = Context.create(settings)
    migrate.upgrade(ctx.db.engine)
    rows = [
        create_tenant(ctx, tenant_id=f"bench{i}", name=f"ベンチ商店 {i}", plan="enterprise" if dkim else "pro",
                      contact_email=f"support@bench{i}.example")
        for i in range(tenants)
    ]
    if dkim:
        _authenticate_domains(ctx, rows)
    return ctx, rows


def _authenticate_domains(ctx: Any, tenants: list[Any]) -> None:
    """--dkim: every tenant sends as a verified branded address on a verified sending domain, so the worker signs
    each message (RSA-2048, relaxed/relaxed). Rows are written directly: the DNS proof is not what is measured,
    and a verified domain means no DMARC lookup either (nothing leaves the machine)."""
    from letterhead.models import BrandedSender, DomainStatus, SenderMode, SendingDomain, Tenant, utcnow
    from letterhead.senders import domains

    now = utcnow()
    with ctx.db.session() as s:
        for t in tenants:
            domain = f"bench-{t.id}.example"
            pem, public = domains._new_key()
            s.add(BrandedSender(tenant_id=t.id, email=f"shop@{domain}", name=t.name, verified_at=now))
            s.add(SendingDomain(tenant_id=t.id, domain=domain, selector="lhbench", private_key_enc=ctx.vault.encrypt(pem),
                                public_key=public, status=DomainStatus.VERIFIED.value, verified_at=now, checked_at=now))
            row = s.get(Tenant, t.id)
            assert row is not None
            row.mode = SenderMode.BRANDED.value


def _count_done(ctx: Any, total: int | None = None) -> int:
    """Messages with a final status, as ``total`` (all rows when None) less the live ones: those are counted in
    the partial due index alone, which shrinks as the run ends, instead of scanning every delivered row each
    poll. A read transaction (plain BEGIN on SQLite): the poll must not take the writer lock from the workers
    every few milliseconds."""
    from letterhead.models import LIVE_PREDICATE, Message

    live = select(func.count()).select_from(Message).where(text(LIVE_PREDICATE))
    with ctx.db.reading() as s:
        if total is None:
            total = int(s.scalar(select(func.count()).select_from(Message)) or 0)
        return total - int(s.scalar(live) or 0)


def check_log(ctx: Any, n: int) -> dict[str, Any]:
    """Does the log agree? Every message sent, exactly one attempt each, distinct Message-IDs."""
    from letterhead.models import Attempt, Message, MessageStatus

    with ctx.db.session() as s:
        statuses = {str(k): int(v) for k, v in s.execute(select(Message.status, func.count()).group_by(Message.status))}
        attempts = int(s.scalar(select(func.count()).select_from(Attempt)) or 0)
        sent_attempts = int(s.scalar(select(func.count()).select_from(Attempt).where(Attempt.outcome == "sent")) or 0)
        not_one = int(s.scalar(select(func.count()).select_from(Message).where(Message.attempt_count != 1)) or 0)
        ids = int(s.scalar(select(func.count(func.distinct(Message.message_id_header)))) or 0)
        rows = s.execute(select(Message.created_at, Message.sent_at).where(Message.sent_at.is_not(None))).all()
        first_try = s.scalar(select(func.min(Attempt.started_at)))
        by_mode = {str(k): int(v) for k, v in s.execute(select(Message.mode, func.count()).group_by(Message.mode))}
    latencies = [(r.sent_at - r.created_at).total_seconds() * 1000 for r in rows]
    sent = int(statuses.get(MessageStatus.SENT.value, 0))
    # The workers' own rate: first attempt started → last message recorded as sent (excludes accepting).
    last_sent = max((r.sent_at for r in rows), default=None)
    span = (last_sent - first_try).total_seconds() if last_sent and first_try else 0.0
    return {
        "delivery_msgs_per_sec": round(sent / span, 1) if span > 0 else None,
        "statuses": statuses,
        "sent": sent,
        "attempts": attempts,
        "sent_attempts": sent_attempts,
        "messages_with_other_than_one_attempt": not_one,
        "distinct_message_ids": ids,
        # With --dkim every message goes out in mode "branded" from a verified domain: the worker signed it.
        "sent_by_mode": by_mode,
        "log_ok": sent == n and attempts == n and sent_attempts == n and not_one == 0 and ids == n,
        "p50_ms": percentile(latencies, 0.5),
        "p99_ms": percentile(latencies, 0.99),
        "max_ms": percentile(latencies, 1.0),
    }


def _end_to_end(
    *, n: int, tenants: int, port: int, workdir: Path, db_url: str | None, workers: int,
    offered_rate: float | None, progress: Progress | None, dkim: bool = False,
) -> dict[str, Any]:
    from letterhead.notifications.service import accept
    settings = _bench_settings(workdir, db_url, port)
    ctx, tenant_rows = _setup_db(settings, tenants, dkim=dkim)
    # Build the requests first: the clock measures Letterhead, not the load generator's dict building.
    batch = ACCEPT_BATCH if offered_rate is None else max(1, min(ACCEPT_BATCH, int(offered_rate / 20) or 1))
    batches = [
        (tenant_rows[j % tenants], notification_items(start, min(n, start + batch), tenants))
        for j, start in enumerate(range(0, n, batch))
    ]
    pool = start_workers(settings, workers, port, workdir)
    db_cpu0 = _db_cpu_seconds(db_url)
    accept_seconds = accept_cpu = 0.0
    try:
        t0 = time.perf_counter()
        for j, (tenant, items) in enumerate(batches):
            if offered_rate:
                due = t0 + j * batch / offered_rate
                delay = due - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
            a0, c0 = time.perf_counter(), time.process_time()
            accept(ctx, tenant=tenant, items=items)
            accept_seconds += time.perf_counter() - a0
            accept_cpu += time.process_time() - c0
            if j % 20 == 0:
                pool.sample(time.perf_counter() - t0)
        accepted_at = time.perf_counter() - t0
        last_report = 0.0
        while True:
            done = _count_done(ctx, n)  # every message is a row by now
            elapsed = time.perf_counter() - t0
            pool.sample(elapsed)
            if done >= n:
                break
            if elapsed - last_report >= 2:
                _say(progress, f"{done}/{n} delivered after {elapsed:.1f} s")
                last_report = elapsed
            for p in pool.procs:
                if p.poll() is not None:
                    raise RuntimeError(f"a worker exited with {p.returncode}")
            time.sleep(0.1)
        elapsed = time.perf_counter() - t0
        db_cpu1 = _db_cpu_seconds(db_url)
    finally:
        codes = pool.stop()
    log = check_log(ctx, n)
    ctx.close()
    result = {
        "messages": n,
        "seconds": round(elapsed, 3),
        "msgs_per_sec": round(n / elapsed, 1),
        "accept_seconds": round(accept_seconds, 3),
        "accepted_per_sec": round(n / accept_seconds, 1) if accept_seconds else None,
        "all_accepted_after_s": round(accepted_at, 3),
        "workers": workers,
        "worker_exit_codes": codes,
        "peak_rss_mb": max(pool.rss_peak.values(), default=None),
        "worker_peak_rss_mb": sorted(pool.rss_peak.values()),
        # Where the 2 cores went, per message: the workers (claim, render, compose, SMTP, record) and the
        # accepting side (validation + INSERT, this process). The sink's share is added by run_bench.
        "cpu_us_per_msg": {
            "workers": round(pool.cpu_seconds() / n * 1e6, 1),
            "accept": round(accept_cpu / n * 1e6, 1),
            # The PostgreSQL server's processes (a throwaway cluster only; SQLite works inside the others).
            **({"postgres": round((db_cpu1 - db_cpu0) / n * 1e6, 1)} if db_cpu0 is not None and db_cpu1 else {}),
        },
        # Of "workers" above: their event-loop threads (SMTP, scheduling; the rest is the threads that claim,
        # prepare and record). --transport-only's CPU per message shows what the SMTP part alone costs.
        "worker_event_loop_cpu_us_per_msg": round(pool.loop_cpu_seconds() / n * 1e6, 1),
        # Wall-clock per stage over all pipelines: a large claim/record share means waiting for the write lock.
        "worker_stage_seconds": pool.stage_seconds(),
        **log,
    }
    if offered_rate:
        result["offered_rate"] = offered_rate
        result["achieved_offered_rate"] = round(n / accepted_at, 1) if accepted_at else None
    return result


# --------------------------------------------------------------------------------------------- queued (memory)


def _fill(ctx: Any, tenant_rows: list[Any], n: int, progress: Progress | None) -> float:
    """Queue ``n`` notifications fast (enqueue_many in big chunks; schema validation is the API's job and is
    measured by the end-to-end mode)."""
    from letterhead.delivery.queue import NewMessage, enqueue_many
    from letterhead.models import MessageKind

    t0 = time.perf_counter()
    chunk = 10_000
    data = [order_data(i) for i in range(100)]
    for start in range(0, n, chunk):
        enqueue_many(
            ctx,
            [
                NewMessage(
                    tenant_id=tenant_rows[i % len(tenant_rows)].id, kind=MessageKind.NOTIFICATION,
                    to=[f"customer{i}@example.com"], event="order.created", locale="ja" if i % 4 else "en",
                    data=data[i % 100],
                )
                for i in range(start, min(n, start + chunk))
            ],
        )
        if start % 100_000 == 0:
            _say(progress, f"queued {start + chunk}/{n}")
    return time.perf_counter() - t0


def _queued(
    *, n: int, tenants: int, port: int, workdir: Path, db_url: str | None, duration: float,
    progress: Progress | None,
) -> dict[str, Any]:
    from letterhead.models import Message, MessageStatus

    settings = _bench_settings(workdir, db_url, port)
    ctx, tenant_rows = _setup_db(settings, tenants)
    fill_seconds = _fill(ctx, tenant_rows, n, progress)
    _say(progress, f"{n} queued in {fill_seconds:.1f} s; running one worker for up to {duration:g} s")
    pool = start_workers(settings, 1, port, workdir)
    try:
        t0 = time.perf_counter()
        while True:
            elapsed = time.perf_counter() - t0
            pool.sample(elapsed)
            if elapsed >= duration or pool.procs[0].poll() is not None:
                break
            time.sleep(0.25)
        elapsed = time.perf_counter() - t0
    finally:
        codes = pool.stop()
    with ctx.db.session() as s:
        sent = int(s.scalar(select(func.count()).select_from(Message).where(Message.status == MessageStatus.SENT.value)) or 0)
        sending = int(s.scalar(select(func.count()).select_from(Message).where(Message.status == MessageStatus.SENDING.value)) or 0)
    ctx.close()
    rss = [r for _, r in pool.samples]
    tenth = max(1, len(rss) // 10)
    return {
        "messages": sent,
        "queued": n,
        "fill_seconds": round(fill_seconds, 1),
        "seconds": round(elapsed, 3),
        "msgs_per_sec": round(sent / elapsed, 1) if elapsed else None,
        "p50_ms": None,
        "p99_ms": None,
        "peak_rss_mb": max(pool.rss_peak.values(), default=None),
        # Flat: the RSS over the first and the last tenth of the run, and the samples themselves.
        "rss_first_tenth_mb": max(rss[:tenth], default=None),
        "rss_last_tenth_mb": max(rss[-tenth:], default=None),
        "rss_samples_mb": pool.samples[:: max(1, len(pool.samples) // 40)],
        "cpu_us_per_msg": {"workers": round(pool.cpu_seconds() / sent * 1e6, 1) if sent else None},
        "worker_stage_seconds": pool.stage_seconds(),
        "left_sending": sending,
        "worker_exit_codes": codes,
        "log_ok": sending == 0 and codes == [0],
    }


# --------------------------------------------------------------------------------------------- entry point


def run_bench(
    *,
    messages: int,
    tenants: int = 10,
    sink_port: int | None = None,
    sink: str = "auto",
    transport_only: bool = False,
    connections: int = 8,
    pipelining: bool = True,
    postgres: str | None = None,
    workers: int = 1,
    offered_rate: float | None = None,
    queued: int | None = None,
    duration: float = 30.0,
    dkim: bool = False,
    progress: Progress | None = None,
) -> dict[str, Any]:
    if transport_only:
        mode = "transport-only"
    elif queued:
        mode = "queued"
    elif offered_rate:
        mode = "offered-rate"
    else:
        mode = "end-to-end"
    speed_before = machine_speed()
    workdir = Path(tempfile.mkdtemp(prefix="lh-bench-"))
    try:
        with start_sink(sink_port, workdir, sink) as snk, database_url(None if transport_only else postgres,
                                                                      progress) as db_url:
            if transport_only:
                result = _transport_only(messages, snk.port, connections, pipelining)
            elif queued:
                result = _queued(n=queued, tenants=tenants, port=snk.port, workdir=workdir, db_url=db_url,
                                 duration=duration, progress=progress)
            else:
                result = _end_to_end(n=messages, tenants=tenants, port=snk.port, workdir=workdir, db_url=db_url,
                                     workers=workers, offered_rate=offered_rate, progress=progress, dkim=dkim)
            sink_cpu = snk.cpu_seconds()
            snk.stop()
            received = snk.received()
            cpu = result.get("cpu_us_per_msg")
            if sink_cpu is not None and isinstance(cpu, dict) and result["messages"]:
                cpu["sink"] = round(sink_cpu / result["messages"] * 1e6, 1)
                # How busy the cores were with this run's processes: well under 100% means waiting (locks,
                # the sink, polling), not computing — or other work on the machine (see the load average).
                used = sum(v for v in cpu.values() if v) * result["messages"] / 1e6
                result["cpu_utilization"] = round(used / (result["seconds"] * (os.cpu_count() or 1)), 2)
                result["load_average_1m"] = round(os.getloadavg()[0], 2)
        database = "none" if transport_only else ("postgresql" if db_url else "sqlite")
        result = {
            "mode": mode,
            "database": database,
            **result,
            "sink": snk.name,
            "sink_received": received,
            "bench_peak_rss_mb": _own_peak_rss_mb(),
            "dkim": DKIM_NOTE if dkim and transport_only else ("on: RSA-2048, relaxed/relaxed" if dkim else "off"),
            "versions": versions(),
            "cores": os.cpu_count(),
            "machine_speed": {"before": speed_before, "after": machine_speed()},
        }
        result.setdefault("peak_rss_mb", result["bench_peak_rss_mb"])
        expected = result["messages"] + result.get("warmup_messages", 0)
        if received is not None:
            ok = received["messages"] == expected
            if "unique_message_ids" in received:
                ok = ok and received["unique_message_ids"] == expected
            result["sink_ok"] = ok
        else:
            result["sink_ok"] = None  # an external sink: only the log can be checked
        result["ok"] = bool(result.get("log_ok")) and result["sink_ok"] is not False
        return result
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
