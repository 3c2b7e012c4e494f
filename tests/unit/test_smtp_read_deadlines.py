"""The SMTP client's read deadlines: one timer per connection watches them (``_SmtpProtocol._watch_reads``)."""

from __future__ import annotations

import asyncio
import time

import pytest

from letterhead.smtp.client import _ConnError, _SmtpProtocol
from letterhead.smtp.reply import ErrorKind


async def _timed_read(proto: _SmtpProtocol, timeout: float) -> tuple[str, float]:
    t0 = time.monotonic()
    try:
        await proto.read(timeout)
    except _ConnError as e:
        return e.kind, time.monotonic() - t0
    return "answered", time.monotonic() - t0


def test_each_read_keeps_its_own_deadline() -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        proto = _SmtpProtocol(loop)
        # A long read answered quickly leaves its timer armed 30 s out; a shorter read after it must still end on
        # time, and one answered before its deadline must not be timed out by an old timer.
        loop.call_later(0.02, proto.data_received, b"220 hi\r\n")
        assert (await _timed_read(proto, 30.0))[0] == "answered"
        kind, took = await _timed_read(proto, 0.2)
        assert kind == ErrorKind.TIMEOUT and 0.15 < took < 2.0
        loop.call_later(0.3, proto.data_received, b"250 ok\r\n")
        kind, took = await _timed_read(proto, 0.5)
        assert kind == "answered" and took < 0.5
        # Reads back to back keep being watched after the timer re-arms for a later deadline.
        for _ in range(3):
            loop.call_later(0.05, proto.data_received, b"250 ok\r\n")
            assert (await _timed_read(proto, 0.2))[0] == "answered"
        kind, took = await _timed_read(proto, 0.2)
        assert kind == ErrorKind.TIMEOUT and took < 2.0
        proto.connection_lost(None)
        assert proto._read_timer is None  # nothing left to fire for a closed connection

    asyncio.run(scenario())


@pytest.mark.parametrize("uv", [True, False])
def test_reads_time_out_on_either_event_loop(uv: bool) -> None:
    async def scenario() -> str:
        proto = _SmtpProtocol(asyncio.get_running_loop())
        return (await _timed_read(proto, 0.1))[0]

    if uv:
        uvloop = pytest.importorskip("uvloop")
        assert uvloop.run(scenario()) == ErrorKind.TIMEOUT
    else:
        assert asyncio.run(scenario()) == ErrorKind.TIMEOUT
