"""Real processes for the delivery tests: the benchmark sink and ``letterhead worker``."""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from letterhead.settings import Settings


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class SinkProcess:
    port: int
    proc: subprocess.Popen[bytes]
    stats_file: Path

    def stop(self) -> dict[str, int]:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=15)
        data: dict[str, int] = json.loads(self.stats_file.read_text())
        return data


@contextmanager
def sink_process(tmp: Path) -> Iterator[SinkProcess]:
    """letterhead.benchsink in its own process: accepts everything, counts distinct Message-IDs."""
    ready = tmp / "sink.port"
    stats = tmp / "sink.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "letterhead.benchsink", "--ready", str(ready), "--stats", str(stats)]
    )
    deadline = time.monotonic() + 15
    while not ready.exists() or not ready.read_text():
        if time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError("sink did not start")
        time.sleep(0.02)
    sink = SinkProcess(int(ready.read_text()), proc, stats)
    try:
        yield sink
    finally:
        if proc.poll() is None:
            proc.kill()


def worker_env(settings: Settings, **extra: str) -> dict[str, str]:
    return dict(os.environ) | settings.worker_env(LETTERHEAD_WORKER_POLL_SECONDS="0.05", **extra)


def start_worker(env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-c", "from letterhead.cli import main; main()", "worker"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def wait_for_output(proc: subprocess.Popen[bytes], needle: str, timeout: float = 60.0) -> str:
    """Read ``proc``'s stderr until ``needle`` appears (e.g. the worker's "started" log line); what was read."""
    assert proc.stderr is not None
    fd = proc.stderr.fileno()
    seen = b""
    deadline = time.monotonic() + timeout
    while needle.encode() not in seen:
        left = deadline - time.monotonic()
        chunk = os.read(fd, 65536) if left > 0 and select.select([fd], [], [], left)[0] else b""
        if not chunk:  # timed out, or the process closed stderr (exited) without saying it
            raise AssertionError(f"no {needle!r} from the process (exit {proc.poll()}): {seen.decode(errors='replace')}")
        seen += chunk
    return seen.decode(errors="replace")
