"""Request bodies are bounded while they stream in: a real ``letterhead serve`` process on loopback, sent
chunked bodies (no Content-Length) over a raw socket, answers 413 as soon as the limit is passed, before any
authentication work and without holding the body, and still takes chunked bodies under the limit."""

from __future__ import annotations

import copy
import json
import os
import select
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from letterhead import migrate
from letterhead.context import Context
from letterhead.notifications.events import EVENTS
from letterhead.tenants import create_api_key, create_tenant
from tests.conftest import make_settings
from tests.support.processes import free_port

MB = 1024 * 1024


@dataclass
class Server:
    port: int
    proc: subprocess.Popen[bytes]
    key: str

    def rss_kb(self) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise AssertionError("no VmRSS")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    settings = make_settings(tmp_path)
    ctx = Context.create(settings)
    migrate.upgrade(ctx.db.engine)
    create_tenant(ctx, tenant_id="acme", name="ACME", plan="pro")
    key = create_api_key(ctx, tenant_id="acme").key
    ctx.close()
    port = free_port()
    env = dict(os.environ) | settings.worker_env()
    proc = subprocess.Popen(
        [sys.executable, "-c", "from letterhead.cli import main; main()", "serve", "--port", str(port), "--no-worker"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, "the server did not start"
            time.sleep(0.1)
        yield Server(port, proc, key)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def post_chunked(port: int, path: str, chunks: Iterator[bytes], headers: dict[str, str]) -> tuple[int, dict[str, str],
                                                                                                  bytes, int]:
    """POST with ``Transfer-Encoding: chunked``; stops sending as soon as the server answers. Returns the status,
    headers, body and the bytes of body sent."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=60)
    head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\nContent-Type: application/json\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    sock.sendall(head.encode())
    sent = 0
    try:
        for chunk in chunks:
            if select.select([sock], [], [], 0)[0]:  # answered already: stop uploading
                break
            sock.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            sent += len(chunk)
        else:
            sock.sendall(b"0\r\n\r\n")
    except (BrokenPipeError, ConnectionResetError):
        pass
    raw = b""
    while b"\r\n\r\n" not in raw:
        data = sock.recv(65536)
        assert data, f"no response (sent {sent} bytes)"
        raw += data
    head_raw, _, rest = raw.partition(b"\r\n\r\n")
    lines = head_raw.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    got = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    if "content-length" in got:
        while len(rest) < int(got["content-length"]):
            data = sock.recv(65536)
            if not data:
                break
            rest += data
    sock.close()
    return status, got, rest, sent


def json_chunks(payload: bytes, size: int = 1000) -> Iterator[bytes]:
    for i in range(0, len(payload), size):
        yield payload[i : i + size]


def endless(total: int, size: int = 64 * 1024) -> Iterator[bytes]:
    block = b"[" + b"1," * (size // 2 - 1) + b"1"
    for _ in range(total // size):
        yield block


def notification() -> bytes:
    data = copy.deepcopy(EVENTS["order.created"].example)
    return json.dumps({"event": "order.created", "to": "a@example.com", "data": data}).encode()


def test_chunked_bodies_are_bounded_while_streaming(server: Server) -> None:
    path = "/v1/tenants/acme/notifications"
    bearer = {"Authorization": f"Bearer {server.key}"}
    # Under the limit, chunked: accepted, through FastAPI (first use of the key) and then the fast path.
    for _ in range(2):
        status, _, body, _ = post_chunked(server.port, path, json_chunks(notification()), bearer)
        assert status == 202, body
        assert json.loads(body)["status"] == "queued"
    before = server.rss_kb()

    # 60 MB, chunked, unauthenticated: 413 once the limit (4 x LETTERHEAD_MAX_PAYLOAD_BYTES = 8 MB) is passed.
    status, headers, body, sent = post_chunked(server.port, path, endless(60 * MB), {})
    assert status == 413, body
    assert headers["content-type"] == "application/problem+json"
    assert headers["connection"] == "close"
    problem = json.loads(body)
    assert problem["type"].endswith("/payload-too-large") and "LETTERHEAD_MAX_PAYLOAD_BYTES" in problem["detail"]
    assert sent < 30 * MB  # refused while streaming, not after reading it all
    # A route with a body model (FastAPI reads the body before the dependencies that authenticate).
    status, _, body, _ = post_chunked(server.port, "/v1/tenants/acme/emails", endless(60 * MB), {})
    assert status == 413, body
    # The same through the fast path (a cached key reads the body itself).
    status, _, body, _ = post_chunked(server.port, path, endless(60 * MB), bearer)
    assert status == 413, body
    status, _, body, _ = post_chunked(server.port, path + "/batch", endless(60 * MB), bearer)
    assert status == 413, body
    grown_mb = (server.rss_kb() - before) / 1024
    assert grown_mb < 30, f"the server's RSS grew by {grown_mb:.1f} MB"

    # Still serving, and small chunked bodies still work after the refusals.
    status, _, body, _ = post_chunked(server.port, path, json_chunks(notification()), bearer)
    assert status == 202, body
