"""Run a command on a slower machine: every process it starts shares ``--cpus`` CPUs' worth of time.

    sudo .venv/bin/python benchmarks/throttled.py --cpus 0.75 -- .venv/bin/letterhead bench --messages 20000 --json

This VM's speed moves by 2x and more from hour to hour (docs/performance.md); DESIGN.md's smtp-source figure
(~12,400 msgs/s at 32 connections, against ~24,000-29,000 here in the fast state) is what it gives at 0.75 to
1.0 CPUs (smtp-source under a quota varies by ~25% from run to run).
A CPU quota makes such a slower machine on demand: the command, the sink and every worker it starts run in one
cgroup limited to ``--cpus`` (CFS bandwidth, a 10 ms period so that the throttling is fine-grained). It is harsher than a slow CPU in one way: a process can be paused while it holds a
lock (SQLite's writer lock), so figures under it are a lower bound.

``--calibrate`` prints what smtp-source (32 connections, ~4 KB, against smtp-sink) reaches under the quota, to
pick the quota that matches a machine of interest. Needs root and a writable cgroup ``cpu`` controller (v1 or
v2); only 127.0.0.1 is used.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PERIOD_US = 10_000
V1 = Path("/sys/fs/cgroup/cpu")
V2 = Path("/sys/fs/cgroup")


def make_group(cpus: float) -> Path:
    """A new cgroup limited to ``cpus`` CPUs (its directory)."""
    quota = int(cpus * PERIOD_US)
    name = f"letterhead-throttled-{os.getpid()}"
    if (V1 / "cpu.cfs_quota_us").exists():
        group = V1 / name
        group.mkdir()
        (group / "cpu.cfs_period_us").write_text(str(PERIOD_US))
        (group / "cpu.cfs_quota_us").write_text(str(quota))
    elif (V2 / "cgroup.controllers").exists() and "cpu" in (V2 / "cgroup.controllers").read_text().split():
        (V2 / "cgroup.subtree_control").write_text("+cpu")
        group = V2 / name
        group.mkdir()
        (group / "cpu.max").write_text(f"{quota} {PERIOD_US}")
    else:
        sys.exit("no writable cgroup cpu controller here (needs root, cgroup v1 cpu or v2 with cpu enabled)")
    return group


def run_in(group: Path, argv: list[str]) -> int:
    # The child moves itself into the group before exec: everything it starts inherits the group.
    def enter() -> None:
        (group / "cgroup.procs").write_text(str(os.getpid()))

    try:
        return subprocess.run(argv, preexec_fn=enter).returncode
    finally:
        for _ in range(50):  # the group can be removed once its last process has exited
            try:
                group.rmdir()
                break
            except OSError:
                time.sleep(0.1)


def calibrate(group: Path, messages: int = 20_000) -> int:
    """smtp-source -d -s 32 against smtp-sink, both in the group: msgs/s."""
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "calibrate.py"
        script.write_text(
            "import subprocess, sys, time\n"
            "from pathlib import Path\n"
            "from letterhead.bench import start_sink\n"
            f"with start_sink(None, Path({tmp!r}), 'smtp-sink') as sink:\n"
            "    t0 = time.perf_counter()\n"
            f"    subprocess.run(['/usr/sbin/smtp-source', '-d', '-s', '32', '-m', '{messages}', '-l', '3900',"
            " '-f', 'shop@acme.example', '-t', 'customer@example.com', f'127.0.0.1:{sink.port}'], check=True,"
            " capture_output=True)\n"
            f"    print(round({messages} / (time.perf_counter() - t0)))\n"
        )
        return run_in(group, [sys.executable, str(script)])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cpus", type=float, required=True, help="CPUs' worth of time for the command, e.g. 0.75")
    ap.add_argument("--calibrate", action="store_true", help="print smtp-source's msgs/s (32 connections) under it")
    ap.add_argument("command", nargs="*", help="the command to run (after --)")
    args = ap.parse_args()
    if args.cpus <= 0:
        sys.exit("--cpus must be above 0")
    if not args.calibrate and not args.command:
        sys.exit("give a command after --, or --calibrate")
    try:
        group = make_group(args.cpus)
    except OSError as exc:  # not root, or a read-only cgroup file system
        sys.exit(f"cannot create a CPU-limited cgroup here ({exc}); run as root on a machine with cgroup cpu control")
    sys.exit(calibrate(group) if args.calibrate else run_in(group, args.command))


if __name__ == "__main__":
    main()
