"""Where a worker's CPU goes per message: py-spy samples of a real ``letterhead worker`` draining a queue.

    .venv/bin/pip install py-spy        # for profiling only; not a project dependency
    .venv/bin/python benchmarks/profile_worker.py [--messages 20000] [--postgres URL|auto] [--raw out.txt]

Queues N ``order.created`` notifications (per-recipient data), starts one worker under ``py-spy record`` and
prints the share of samples per pipeline stage plus the µs per message that share stands for. Also times each
stage alone in this process on 1,000 messages (no sampling overhead, no other stage competing).
"""

from __future__ import annotations

import argparse
import collections
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from letterhead import bench

# The first matching frame (innermost first) decides the stage of a sample.
STAGES = [
    ("render (Jinja, sandboxed)", ("render_content",)),
    ("compose (MIME bytes, base64)", ("compose (",)),
    ("claim (UPDATE … RETURNING, JSON decode)", ("claim (",)),
    ("record (status UPDATE + attempt INSERT)", ("record (",)),
    ("route / overrides per batch", ("_batch_info",)),
    ("SMTP client (pipelined)", ("SmtpClient", "Connection.body", "_SmtpProtocol", "_run_queue")),
    ("outcome bookkeeping", ("Worker._outcome", "_note_route_health")),
    ("event loop, selector", ("EpollSelector", "_run_once")),
]


def classify(frames: list[str]) -> str:
    for frame in reversed(frames):
        for stage, needles in STAGES:
            if any(n in frame for n in needles):
                return stage
    if frames and "thread.py" in frames[-1]:
        return "idle worker threads (waiting)"
    return "other"


def summarize(raw: Path, messages: int, seconds: float) -> None:
    counts: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if not stack:
            continue
        counts[classify(stack.split(";"))] += int(n)
        total += int(n)
    busy = total - counts["idle worker threads (waiting)"]
    print(f"{total} samples; {messages} messages in {seconds:.1f} s = {messages / seconds:,.0f} msgs/s")
    print("| stage | share of busy samples | ≈ µs per message |")
    print("|---|---:|---:|")
    for stage, n in counts.most_common():
        if stage.startswith("idle"):
            continue
        share = n / busy
        print(f"| {stage} | {share * 100:.1f}% | {share * seconds / messages * 1e6:,.0f} |")


def stage_timings(db_url: str | None) -> None:
    from letterhead.delivery import queue
    from letterhead.delivery.content import render_contents
    from letterhead.delivery.worker import Worker
    from letterhead.models import utcnow
    from letterhead.smtp.client import Outcome, SendResult
    from letterhead.smtp.reply import Reply

    workdir = Path(tempfile.mkdtemp(prefix="lh-prof-"))
    try:
        settings = bench._bench_settings(workdir, db_url, 2525)
        ctx, tenants = bench._setup_db(settings, 10)
        bench._fill(ctx, tenants, 2000, None)
        w = Worker(ctx)
        n = 1000
        t = time.perf_counter()
        rows = queue.claim(ctx.db, owner=w.owner, limit=n, lease_seconds=300)
        claim = time.perf_counter() - t
        info = w._batch_info(rows)
        def render(part: list[Any]) -> None:  # as the worker renders a part (Worker._contents)
            render_contents([(r, info.routes[r.tenant_id][0]) for r in part], info.overrides, w.platform,
                            vault=ctx.vault)

        render(rows[:100])  # compile the templates and fill the caches first: the worker's steady state
        t = time.perf_counter()
        for start in range(0, n, 100):
            render(rows[start : start + 100])
        rendered = time.perf_counter() - t
        t = time.perf_counter()
        prepared = w._prepare_part(rows, rows, info)[1]
        prepare = time.perf_counter() - t
        ok = SendResult(Outcome.SENT, Reply.from_lines(250, ["2.0.0 Ok: queued"]), "done", None, None,
                        "C: MAIL FROM:<a@b>\nS: 250 2.0.0 Ok\nC: RCPT TO:<c@d>\nS: 250 2.0.0 Ok\nC: DATA\n"
                        "S: 354 go\nC: <message body, 11000 bytes>\nC: .\nS: 250 2.0.0 Ok: queued", 1.0)
        now = utcnow()
        results = [w._outcome(p, ok, now, now) for p in prepared]
        t = time.perf_counter()
        queue.record(ctx.db, owner=w.owner, results=results)
        record = time.perf_counter() - t
        size = sum(len(p.envelope.data) for p in prepared if p.envelope) / n
        print(f"\nstages alone, 1,000 messages of ~{size:,.0f} bytes (µs per message):")
        print(f"claim {claim / n * 1e6:.0f} | render {rendered / n * 1e6:.0f} | compose "
              f"{(prepare - rendered) / n * 1e6:.0f} | record {record / n * 1e6:.0f}")
        ctx.close()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--messages", type=int, default=20_000)
    ap.add_argument("--postgres")
    ap.add_argument("--raw", type=Path, help="keep py-spy's raw (collapsed) output here")
    args = ap.parse_args()
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    workdir = Path(tempfile.mkdtemp(prefix="lh-prof-"))
    raw = args.raw or workdir / "py-spy.txt"
    try:
        with bench.start_sink(None, workdir, "auto") as sink, bench.database_url(args.postgres, None) as db_url:
            settings = bench._bench_settings(workdir, db_url, sink.port)
            ctx, tenants = bench._setup_db(settings, 10)
            bench._fill(ctx, tenants, args.messages, None)
            pool = bench.start_workers(settings, 1, sink.port, workdir)
            rec = subprocess.Popen([spy, "record", "-p", str(pool.procs[0].pid), "-o", str(raw), "-f", "raw", "--gil",
                                    "-r", "200"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            t0 = time.perf_counter()
            while bench._count_done(ctx, args.messages) < args.messages:
                time.sleep(0.05)
            seconds = time.perf_counter() - t0
            rec.send_signal(2)
            rec.wait()
            pool.stop()
            ctx.close()
        summarize(raw, args.messages, seconds)
        stage_timings(None)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
