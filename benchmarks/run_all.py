"""Every figure of docs/performance.md: runs each ``letterhead bench`` command ``--runs`` times (default 3), keeps
every JSON result in ``benchmarks/results/<name>.jsonl`` and prints the table of medians, with the commands.

    .venv/bin/python benchmarks/run_all.py [--runs 3] [--only transport,sqlite,...] [--quick]

``--quick`` divides the message counts by 10 (a smoke run). The peers table comes from
``benchmarks/peers/run_peers.py`` and the chart from ``benchmarks/chart.py``.
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"

# name -> (what, issue target, argv after "letterhead bench")
FIGURES: dict[str, tuple[str, str, list[str]]] = {
    "transport": ("transport only, 8 connections (pre-composed ~4 KB)", "≥ 8,000 msgs/s",
                  ["--transport-only", "--messages", "20000", "--connections", "8"]),
    "transport32": ("transport only, 32 connections", "",
                    ["--transport-only", "--messages", "20000", "--connections", "32"]),
    "sqlite": ("end to end, SQLite, 1 worker (notifications, 50,000)", "",
               ["--messages", "50000"]),
    "sqlite2": ("end to end, SQLite, 2 workers (50,000)", "≥ 4,000 msgs/s",
                ["--messages", "50000", "--workers", "2"]),
    "postgres2": ("end to end, PostgreSQL, 2 workers (50,000)", "≥ 3,000 msgs/s",
                  ["--messages", "50000", "--postgres", "auto", "--workers", "2"]),
    "latency": ("offered 1,000 msgs/s, SQLite, 2 workers (20,000): p99 enqueue→sent", "p99 ≤ 1 s",
                ["--messages", "20000", "--offered-rate", "1000", "--workers", "2"]),
    "queued": ("worker RSS with 1,000,000 queued (60 s of delivery)", "≤ 250 MB, flat",
               ["--queued", "1000000", "--duration", "60"]),
    "dkim2": ("DKIM on (RSA-2048, every message), SQLite, 2 workers (20,000)", "≥ 2,000 msgs/s",
              ["--messages", "20000", "--dkim", "--workers", "2"]),
    "api": ("API over HTTP keep-alive (wrk, 10 s each; delivery off)", "≥ 1,500 req/s; batch ≥ 25,000/s",
            ["--api"]),
    "api2": ("API, 2 server processes", "", ["--api", "--api-workers", "2"]),
}

def run(argv: list[str]) -> dict[str, Any]:
    cmd = [sys.executable, "-c", "from letterhead.cli import main; main()", "bench", *argv, "--json"]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode not in (0, 1) or not out.stdout.strip():
        raise RuntimeError(f"{shlex.join(argv)} failed: {out.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(out.stdout)
    return result


def median(results: list[dict[str, Any]], key: str) -> float | None:
    """The median of ``key`` over the runs that have it."""
    values = [r[key] for r in results if r.get(key) is not None]
    return statistics.median(values) if values else None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--only", help="comma-separated figure names: " + ",".join(FIGURES))
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    names = args.only.split(",") if args.only else list(FIGURES)
    RESULTS.mkdir(exist_ok=True)
    rows = []
    for name in names:
        what, target, argv = FIGURES[name]
        if args.quick:
            argv = [str(int(a) // 10) if prev in ("--messages", "--queued") else a
                    for prev, a in zip(["", *argv[:-1]], argv, strict=True)]
        runs = 1 if name == "queued" else args.runs
        results = []
        for i in range(runs):
            r = run(argv)
            results.append(r)
            rate = r.get("msgs_per_sec") or (r.get("batch") or {}).get("notifications_per_sec")
            print(f"{name} run {i + 1}/{runs}: {rate}/s ok={r.get('ok')}", file=sys.stderr, flush=True)
        with open(RESULTS / f"{name}.jsonl", "w") as fh:
            for r in results:
                fh.write(json.dumps(r, ensure_ascii=False) + "\n")
        rows.append((name, what, target, argv, results))
    print("| figure | msgs/s | delivery msgs/s | p50 ms | p99 ms | peak RSS MB | CPU µs/msg (workers + accept"
          " + db + sink) | correct | target | machine speed | command |")
    print("|---|---:|---:|---:|---:|---:|---|---|---|---|---|")
    for _name, what, target, argv, results in rows:
        ok = all(r.get("ok") for r in results)
        if "--api" in argv:
            single = [r["single"] for r in results if "single" in r]
            batch = [r["batch"] for r in results if "batch" in r]
            print(
                f"| {what} | single {fmt(median(single, 'req_per_sec'))} req/s (p99 "
                f"{fmt(median([s['latency_ms'] for s in single], 'p99'))} ms); batch "
                f"{fmt(median(batch, 'notifications_per_sec'))} notifications/s (p99 "
                f"{fmt(median([b['latency_ms'] for b in batch], 'p99'))} ms) | – | – | – | – "
                f"| server: single {fmt(median(single, 'server_cpu_us_per_notification'))}, batch "
                f"{fmt(median(batch, 'server_cpu_us_per_notification'))} per notification "
                f"| {'yes' if ok else 'NO'} ({len(results)} runs) | {target} | {speed(results)} "
                f"| `letterhead bench {shlex.join(argv)} --json` |"
            )
            continue
        cpu = [r["cpu_us_per_msg"] for r in results if isinstance(r.get("cpu_us_per_msg"), dict)]
        parts = [f"{k} {fmt(median(cpu, k))}" for k in ("workers", "accept", "postgres", "sink")
                 if any(k in c for c in cpu)]
        print(
            f"| {what} | {fmt(median(results, 'msgs_per_sec'))} | {fmt(median(results, 'delivery_msgs_per_sec'))} "
            f"| {fmt(median(results, 'p50_ms'))} | {fmt(median(results, 'p99_ms'))} "
            f"| {fmt(median(results, 'peak_rss_mb'), 1)} | {', '.join(parts) or '–'} "
            f"| {'yes' if ok else 'NO'} ({len(results)} runs) | {target} | {speed(results)} "
            f"| `letterhead bench {shlex.join(argv)} --json` |"
        )


def speed(results: list[dict[str, Any]]) -> str:
    """The machine's speed around the runs (``machine_speed`` in each JSON, before and after): median Python ms
    and RSA µs. Lower is faster; compare figures across rounds only with this beside them."""
    samples = [m[k] for r in results if (m := r.get("machine_speed")) for k in ("before", "after")]
    if not samples:
        return "–"
    return f"Python {fmt(median(samples, 'python_ms'), 1)} ms, RSA {fmt(median(samples, 'rsa2048_sign_us'))} µs"


def fmt(v: float | None, digits: int = 0) -> str:
    return "–" if v is None else f"{v:,.{digits}f}"


if __name__ == "__main__":
    main()
