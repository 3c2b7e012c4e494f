"""Letterhead end to end against nodemailer's send, in the same run: the issue's "≥ 3 × nodemailer's raw send".

    .venv/bin/python benchmarks/peers/end_to_end_ratio.py [--messages 50000] [--workers 2] [--connections 8]
                                                          [--peer-messages 10000] [--runs 3] [--json out.json]

Each run, back to back so that the machine's state is the same for all three:

* Letterhead end to end: ``letterhead bench --messages N --workers K`` (notifications accepted through the batch
  API, rendered per recipient, composed, delivered to its own ``smtp-sink``, status and attempt recorded; the
  bench checks the sink's count and the log);
* nodemailer's pooled transport sending ready ~4 KB messages (``raw``: the issue's "raw send");
* nodemailer's pooled transport composing every message itself from Letterhead's rendered order confirmations
  (the same subject, HTML and text an end-to-end message carries, ~11 KB composed), as nodemailer is usually used;
* the same, composing ~4 KB messages (an HTML and a text part of Latin text: DESIGN.md's message size).

The nodemailer runs share one ``smtp-sink``, whose final count must equal what they report sent. Medians of
``--runs`` and each run's ratios are printed and kept in ``--json``. Only 127.0.0.1 is used.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

from run_peers import install_nodemailer, nodemailer

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: run_all's way of running the bench
from run_all import run as run_bench  # type: ignore[import-not-found]  # (the path is set just above)

from letterhead import bench
from letterhead.bench import start_sink, versions
from letterhead.models import Tenant
from letterhead.notifications.service import notification_job
from letterhead.notifications.templates import Rendered, render_many


def write_contents(path: Path, count: int = 100) -> None:
    """The rendered order confirmations the end-to-end bench sends (its data, its locales), for nodemailer."""
    tenant = Tenant(id="t1", name="ACME 株式会社", locale="ja", timezone="Asia/Tokyo", plan="pro")
    jobs = [
        notification_job(event="order.created", locale="ja" if i % 4 else "en", data=bench.order_data(i),
                         tenant=tenant, overrides={}, platform={"name": "Letterhead"})
        for i in range(count)
    ]
    contents = []
    for rendered in render_many(jobs):
        assert isinstance(rendered, Rendered), rendered
        contents.append({"subject": rendered.subject, "html": rendered.html, "text": rendered.text})
    path.write_text(json.dumps(contents, ensure_ascii=False))


def write_small_contents(path: Path, count: int = 100) -> None:
    """~4 KB multipart messages for nodemailer to compose (DESIGN.md's peers sent ~4 KB)."""
    line = "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor inc.\n"
    path.write_text(json.dumps([
        {"subject": f"Your order {i}", "text": line * 12, "html": "<p>" + line * 33 + "</p>"} for i in range(count)
    ]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--messages", type=int, default=50_000, help="Letterhead's end-to-end messages per run")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--connections", type=int, default=8, help="nodemailer's pool size")
    ap.add_argument("--peer-messages", type=int, default=10_000, help="nodemailer's messages per run")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="lh-ratio-"))
    runs: list[dict[str, Any]] = []
    expected = 0
    try:
        node_path = install_nodemailer(workdir / "npm")
        if node_path is None:
            sys.exit("node and npm are needed for nodemailer (apt-get install nodejs npm)")
        contents, small = workdir / "contents.json", workdir / "small.json"
        write_contents(contents)
        write_small_contents(small)
        with start_sink(None, workdir, "smtp-sink") as sink:
            for i in range(args.runs):
                lh = run_bench(["--messages", str(args.messages), "--workers", str(args.workers)])
                raw = nodemailer(sink.port, args.peer_messages, args.connections, node_path)
                composing = nodemailer(sink.port, args.peer_messages, args.connections, node_path,
                                       contents=str(contents))
                composing_4k = nodemailer(sink.port, args.peer_messages, args.connections, node_path,
                                          contents=str(small))
                expected += raw["sent"] + composing["sent"] + composing_4k["sent"]
                run = {
                    "letterhead": lh["msgs_per_sec"], "letterhead_ok": lh["ok"],
                    "letterhead_cpu_us_per_msg": lh.get("cpu_us_per_msg"), "machine_speed": lh.get("machine_speed"),
                    "nodemailer_raw": raw["msgs_per_sec"], "nodemailer_composing": composing["msgs_per_sec"],
                    "nodemailer_composing_4k": composing_4k["msgs_per_sec"],
                    "nodemailer": raw["version"],
                }
                run["ratio_raw"] = round(run["letterhead"] / run["nodemailer_raw"], 2)
                run["ratio_composing"] = round(run["letterhead"] / run["nodemailer_composing"], 2)
                run["ratio_composing_4k"] = round(run["letterhead"] / run["nodemailer_composing_4k"], 2)
                runs.append(run)
                print(f"run {i + 1}/{args.runs}: letterhead {run['letterhead']:,.0f} (ok={lh['ok']}), nodemailer "
                      f"raw {run['nodemailer_raw']:,.0f}, composing {run['nodemailer_composing']:,.0f} (~4 KB: "
                      f"{run['nodemailer_composing_4k']:,.0f}) msgs/s: {run['ratio_raw']}x / {run['ratio_composing']}x"
                      f" / {run['ratio_composing_4k']}x", file=sys.stderr, flush=True)
            sink.stop()
            received = sink.received()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    medians = {k: statistics.median(r[k] for r in runs)
               for k in ("letterhead", "nodemailer_raw", "nodemailer_composing", "nodemailer_composing_4k",
                         "ratio_raw", "ratio_composing", "ratio_composing_4k")}
    ok = received is not None and received["messages"] == expected and all(r["letterhead_ok"] for r in runs)
    print(f"| figure (median of {args.runs}) | msgs/s | Letterhead end to end ÷ it |")
    print("|---|---:|---:|")
    print(f"| Letterhead end to end, SQLite, {args.workers} workers, {args.messages:,} | "
          f"{medians['letterhead']:,.0f} | |")
    print(f"| nodemailer pool, {args.connections} connections, ready ~4 KB messages (raw) | "
          f"{medians['nodemailer_raw']:,.0f} | {medians['ratio_raw']}x |")
    print(f"| nodemailer pool, {args.connections} connections, composing the same content (~11 KB) | "
          f"{medians['nodemailer_composing']:,.0f} | {medians['ratio_composing']}x |")
    print(f"| nodemailer pool, {args.connections} connections, composing ~4 KB (HTML + text) | "
          f"{medians['nodemailer_composing_4k']:,.0f} | {medians['ratio_composing_4k']}x |")
    print(f"\nnodemailer's sink received {received} of {expected} sent; Letterhead's checks "
          f"{'passed' if all(r['letterhead_ok'] for r in runs) else 'FAILED'}: {'OK' if ok else 'MISMATCH'}")
    if args.json:
        args.json.write_text(json.dumps({
            "runs": runs, "medians": medians, "messages": args.messages, "workers": args.workers,
            "connections": args.connections, "peer_messages": args.peer_messages, "sink_received": received,
            "expected": expected, "ok": ok, "versions": versions(), "cores": os.cpu_count(),
        }, indent=1, ensure_ascii=False))
    if not ok:
        sys.exit(1)


if __name__ == "__main__":
    main()
