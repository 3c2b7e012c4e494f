"""Transport-only throughput: ``SmtpClient.send_batch`` of pre-composed ~4 KB messages to a local sink.

    .venv/bin/python benchmarks/transport_probe.py [--messages 20000] [--connections 8] [--no-pipelining]

Uses Postfix's ``smtp-sink`` (Debian package ``postfix``, /usr/sbin/smtp-sink) when installed, else a minimal
asyncio sink in a child process (so the sink never shares the client's core budget with the client's loop).
Prints one JSON line. Timings belong here, not in tests (DESIGN.md).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from typing import Any

from letterhead.smtp.client import Endpoint, Envelope, Outcome, Security, SmtpClient

SMTP_SINK = shutil.which("smtp-sink") or next(
    (p for p in ("/usr/sbin/smtp-sink", "/usr/lib/postfix/sbin/smtp-sink") if os.path.exists(p)), None
)

_PY_SINK = r"""
import asyncio, sys
async def session(reader, writer):
    writer.write(b"220 sink ESMTP\r\n")
    try:
        while True:
            line = await reader.readline()
            if not line:
                break
            verb = line[:4].upper()
            if verb == b"EHLO":
                writer.write(b"250-sink\r\n250-PIPELINING\r\n250 8BITMIME\r\n")
            elif verb == b"DATA":
                writer.write(b"354 go\r\n")
                await reader.readuntil(b"\r\n.\r\n")
                writer.write(b"250 2.0.0 Ok\r\n")
            elif verb == b"QUIT":
                writer.write(b"221 Bye\r\n"); break
            else:
                writer.write(b"250 Ok\r\n")
            if not reader._buffer:
                await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    writer.close()
async def main():
    server = await asyncio.start_server(session, "127.0.0.1", int(sys.argv[1]), backlog=512)
    print("ready", flush=True)
    await server.serve_forever()
asyncio.run(main())
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start_sink(port: int) -> tuple[subprocess.Popen[bytes], str]:
    if SMTP_SINK:
        # -u root: smtp-sink refuses to run as root otherwise (containers); 1000: listen backlog.
        # PIPELINING is advertised by default (-P would disable it).
        proc = subprocess.Popen(
            [SMTP_SINK, "-u", "root", f"127.0.0.1:{port}", "1000"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        name = "postfix smtp-sink"
    else:
        proc = subprocess.Popen([sys.executable, "-c", _PY_SINK, str(port)], stdout=subprocess.PIPE)
        assert proc.stdout is not None
        proc.stdout.readline()
        name = "python asyncio sink"
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    return proc, name


def _messages(n: int) -> list[Envelope]:
    # ~4 KB, CRLF, one line starting with "." so dot-stuffing is exercised.
    filler = b"Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor inc.\r\n" * 44
    return [
        Envelope(
            "shop@acme.example",
            (f"customer{i}@example.com",),
            b"From: ACME <shop@acme.example>\r\nTo: customer%d@example.com\r\nSubject: Your order %d\r\n"
            b"Message-ID: <%d@bench.letterhead>\r\nMIME-Version: 1.0\r\n"
            b"Content-Type: text/plain; charset=utf-8\r\n\r\n.leading dot\r\n" % (i, i, i) + filler,
        )
        for i in range(n)
    ]


async def _run(port: int, envelopes: list[Envelope], connections: int, pipelining: bool) -> dict[str, Any]:
    client = SmtpClient(pipelining=pipelining)
    endpoint = Endpoint("127.0.0.1", port, Security.NONE, max_connections=connections)
    # Warm-up opens the pool so the measurement is the steady state.
    await client.send_batch(endpoint, envelopes[:connections])
    t0 = time.perf_counter()
    results = await client.send_batch(endpoint, envelopes)
    elapsed = time.perf_counter() - t0
    await client.aclose()
    sent = sum(1 for r in results if r.outcome is Outcome.SENT)
    return {
        "messages": len(envelopes),
        "sent": sent,
        "seconds": round(elapsed, 3),
        "msgs_per_sec": round(len(envelopes) / elapsed, 1),
        "first_failure": next((r.transcript[-500:] for r in results if r.outcome is not Outcome.SENT), None),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--messages", type=int, default=20_000)
    ap.add_argument("--connections", type=int, default=8)
    ap.add_argument("--no-pipelining", action="store_true")
    args = ap.parse_args()

    envelopes = _messages(args.messages)
    port = _free_port()
    proc, sink = _start_sink(port)
    try:
        result = asyncio.run(_run(port, envelopes, args.connections, not args.no_pipelining))
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(5)
    result.update(
        sink=sink,
        connections=args.connections,
        pipelining=not args.no_pipelining,
        message_bytes=len(envelopes[0].data),
        cores=os.cpu_count(),
        python=sys.version.split()[0],
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
