"""Letterhead's transport side by side with peers, against the same sink in the same run.

    .venv/bin/python benchmarks/peers/run_peers.py [--messages 10000] [--connections 1,8,32] [--runs 3]
                                                   [--json results.json]

One Postfix ``smtp-sink`` (``-c`` counter) serves every sender; each sender pushes the same ~4 KB ready messages
at 1, 8 and 32 connections, ``--runs`` times, round-robin so that machine noise spreads over all of them; the
table shows medians. Senders:

* Letterhead: ``letterhead bench --transport-only --sink-port P --connections C`` (its pooled, pipelined client);
* nodemailer's pooled transport (``nodemailer_pool.js``; ``npm install nodemailer`` into a temporary folder,
  nothing committed; skipped with a note when ``npm`` is missing);
* Postfix's ``smtp-source -d -s C`` (the C client: the practical ceiling).

The sink's final count must equal everything the senders say they sent (warm-up messages included).
Only 127.0.0.1 is used.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from letterhead.bench import start_sink, versions

HERE = Path(__file__).resolve().parent
SMTP_SOURCE = "/usr/sbin/smtp-source"


def letterhead(port: int, n: int, c: int) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-c", "from letterhead.cli import main; main()", "bench", "--transport-only",
         "--sink-port", str(port), "--connections", str(c), "--messages", str(n), "--json"],
        check=True, capture_output=True, text=True,
    )
    r = json.loads(out.stdout)
    return {"msgs_per_sec": r["msgs_per_sec"], "sent": r["sent"] + r["warmup_messages"]}


def install_nodemailer(folder: Path) -> str | None:
    npm = shutil.which("npm")
    if not npm or not shutil.which("node"):
        return None
    subprocess.run([npm, "install", "--silent", "--no-audit", "--no-fund", "--prefix", str(folder), "nodemailer"],
                   check=True, capture_output=True)
    return str(folder / "node_modules")


def nodemailer(port: int, n: int, c: int, node_path: str, contents: str | None = None) -> dict[str, Any]:
    """``contents``: a JSON file of {subject, html, text} for nodemailer to compose (see nodemailer_pool.js)."""
    out = subprocess.run(
        ["node", str(HERE / "nodemailer_pool.js"), str(port), str(n), str(c), *([contents] if contents else [])],
        check=True, capture_output=True, text=True, env={**os.environ, "NODE_PATH": node_path},
    )
    r = json.loads(out.stdout)
    return {"msgs_per_sec": r["msgs_per_sec"], "sent": r["sent"] + r["warmup_messages"], "version": r["nodemailer"]}


def smtp_source(port: int, n: int, c: int) -> dict[str, Any]:
    # -d: keep the connection for the next message; -l: body bytes (+ its few headers ≈ 4 KB).
    cmd = [SMTP_SOURCE, "-d", "-s", str(c), "-m", str(n), "-l", "3900", "-f", "shop@acme.example",
           "-t", "customer@example.com", f"127.0.0.1:{port}"]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    elapsed = time.perf_counter() - t0
    return {"msgs_per_sec": round(n / elapsed, 1), "sent": n}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--messages", type=int, default=10_000)
    ap.add_argument("--connections", default="1,8,32")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--json", type=Path, help="write every run and the medians here")
    args = ap.parse_args()
    conns = [int(c) for c in args.connections.split(",")]
    workdir = Path(tempfile.mkdtemp(prefix="lh-peers-"))
    runs: dict[str, dict[int, list[float]]] = {}
    expected = 0
    notes: list[str] = []
    meta: dict[str, Any] = {}
    try:
        node_path = install_nodemailer(workdir / "npm")
        if node_path is None:
            notes.append("nodemailer skipped: node/npm not installed")
        senders: list[tuple[str, Any]] = [("letterhead", letterhead)]
        if node_path:
            senders.append(("nodemailer pool", lambda p, n, c: nodemailer(p, n, c, node_path)))
        if os.path.exists(SMTP_SOURCE):
            senders.append(("postfix smtp-source", smtp_source))
        else:
            notes.append("smtp-source skipped: Postfix not installed")
        with start_sink(None, workdir, "smtp-sink") as sink:
            for run in range(args.runs):
                for c in conns:
                    for name, fn in senders:
                        r = fn(sink.port, args.messages, c)
                        expected += r["sent"]
                        if "version" in r:
                            meta["nodemailer"] = r["version"]
                        runs.setdefault(name, {}).setdefault(c, []).append(r["msgs_per_sec"])
                        print(f"run {run + 1}/{args.runs} {name:>20} c={c:<3} {r['msgs_per_sec']:>9,.0f} msgs/s",
                              file=sys.stderr, flush=True)
            sink.stop()
            received = sink.received()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    medians = {name: {c: statistics.median(v) for c, v in by_c.items()} for name, by_c in runs.items()}
    ok = received is not None and received["messages"] == expected
    header = f"| sender (~4 KB messages, {args.messages:,} per run, median of {args.runs}) | " + " | ".join(
        f"c={c}" for c in conns) + " |"
    print(header)
    print("|---|" + "---:|" * len(conns))
    for name, by_c in medians.items():
        print(f"| {name} | " + " | ".join(f"{by_c[c]:,.0f}" for c in conns) + " |")
    print(f"\nsink received {received} of {expected} sent: {'OK' if ok else 'MISMATCH'}")
    for note in notes:
        print(note)
    if args.json:
        args.json.write_text(json.dumps({
            "messages": args.messages, "runs": runs, "medians": medians, "sink": "postfix smtp-sink",
            "sink_received": received, "expected": expected, "sink_ok": ok, "notes": notes,
            "versions": {**versions(), **meta}, "cores": os.cpu_count(),
        }, indent=1))
    if not ok:
        sys.exit(1)


if __name__ == "__main__":
    main()
