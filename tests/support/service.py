"""A real ``letterhead serve`` (uvicorn on loopback) in its own process, for tests that need the whole server:
keep-alive behaviour, outages, the deployment guide's commands."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx

LETTERHEAD = [sys.executable, "-c", "from letterhead.cli import main; main()"]


def wait_until_up(base_url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 60.0) -> None:
    """Poll ``/healthz`` until the server answers (or the process exits: then fail with its log)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the server exited ({proc.returncode}):\n{log.read_text(errors='replace')[-4000:]}")
        try:
            if httpx.get(f"{base_url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"the server did not come up:\n{log.read_text(errors='replace')[-4000:]}")


def stop(proc: subprocess.Popen[bytes], timeout: float = 30.0) -> int:
    """SIGTERM, then SIGKILL if it does not exit in time; the exit status."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


@contextmanager
def running(
    cmd: Sequence[str], env: dict[str, str], log: Path, *, base_url: str | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``cmd`` with exactly ``env`` (plus PATH), output to ``log``; waits for ``/healthz`` when ``base_url``
    is given; always stopped afterwards."""
    full_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")} | env
    with log.open("ab") as out:
        proc = subprocess.Popen(list(cmd), env=full_env, stdout=out, stderr=subprocess.STDOUT)
    try:
        if base_url is not None:
            wait_until_up(base_url, proc, log)
        yield proc
    finally:
        stop(proc)


def local_address(response: httpx.Response) -> tuple[str, int]:
    """The client side (address, port) of the TCP connection that carried ``response``: the same for two
    responses only when they came over one connection (httpx silently reconnects after a close)."""
    stream = response.extensions["network_stream"]
    addr = stream.get_extra_info("client_addr")
    assert addr is not None, "no socket address (HTTP/1.1 over TCP expected)"
    return (str(addr[0]), int(addr[1]))
