"""A fast SMTP sink for benchmarks (``python -m letterhead.benchsink --port P --stats F``).

Used when Postfix's ``smtp-sink`` is not installed. It advertises PIPELINING, accepts everything, and counts
messages and distinct Message-IDs so the benchmark can check that exactly the messages sent arrived. On SIGTERM
it writes ``{"messages": N, "unique_message_ids": M}`` to the stats file.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
from pathlib import Path


class Stats:
    def __init__(self) -> None:
        self.messages = 0
        self.ids: set[bytes] = set()


async def _session(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, stats: Stats) -> None:
    writer.write(b"220 benchsink ESMTP\r\n")
    try:
        while True:
            line = await reader.readline()
            if not line:
                break
            verb = line[:4].upper()
            if verb in (b"EHLO", b"HELO"):
                writer.write(b"250-benchsink\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 SIZE 52428800\r\n")
            elif verb == b"DATA":
                writer.write(b"354 go ahead\r\n")
                body = await reader.readuntil(b"\r\n.\r\n")
                stats.messages += 1
                start = body.find(b"\r\nMessage-ID: ")
                if start >= 0:
                    end = body.find(b"\r\n", start + 2)
                    stats.ids.add(body[start + 14 : end])
                writer.write(b"250 2.0.0 Ok: queued\r\n")
            elif verb == b"QUIT":
                writer.write(b"221 2.0.0 Bye\r\n")
                await writer.drain()
                break
            else:  # MAIL, RCPT, RSET, NOOP
                writer.write(b"250 2.0.0 Ok\r\n")
            # Pipelined commands arrive together: answer them together (RFC 2920 §3.2).
            if not reader._buffer:  # type: ignore[attr-defined]  # nothing more buffered: flush now
                await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.close()


async def serve(port: int, stats_file: Path | None, ready_file: Path | None) -> None:
    stats = Stats()
    server = await asyncio.start_server(lambda r, w: _session(r, w, stats), "127.0.0.1", port, backlog=512)
    if ready_file:
        ready_file.write_text(str(server.sockets[0].getsockname()[1]))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()
    if stats_file:
        stats_file.write_text(json.dumps({"messages": stats.messages, "unique_message_ids": len(stats.ids)}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--stats", type=Path)
    parser.add_argument("--ready", type=Path)
    args = parser.parse_args()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(serve(args.port, args.stats, args.ready))


if __name__ == "__main__":
    main()
