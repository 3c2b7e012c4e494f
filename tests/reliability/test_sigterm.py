"""SIGTERM mid-delivery: the worker stops claiming, finishes and records what it holds, and exits 0. Nothing
lost, nothing sent twice, nothing left leased; a worker started afterwards sends the rest."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from tests.reliability.conftest import (
    Sink,
    context,
    fill,
    ledger,
    status_counts,
    stop,
    wait_all_sent,
    wait_until,
    workers,
)
from tests.support.processes import start_worker


@pytest.mark.reliability
def test_sigterm_loses_nothing_and_sends_nothing_twice(tmp_path: Path, sink: Sink) -> None:
    n = 1500
    sink.data_delay = 0.002
    ctx = context(tmp_path)
    ids = fill(ctx, n)
    env, procs = workers(ctx, sink.port, 1, LETTERHEAD_WORKER_BATCH_SIZE="100")
    try:
        wait_until(lambda: sink.total >= n // 4, timeout=60, what="deliveries to start")
        procs[0].send_signal(signal.SIGTERM)
        assert procs[0].wait(timeout=30) == 0
        counts = status_counts(ctx)
        assert counts.get("sending", 0) == 0, counts
        assert counts.get("sent", 0) == sink.total  # everything the sink has is recorded, once
        procs.append(start_worker(env))
        wait_all_sent(ctx, n, timeout=120)
    finally:
        stop(procs)
    book = ledger(ctx, sink, ids)
    print(f"SIGTERM ({n} messages): stopped with {counts.get('sent', 0)} sent; lost {book.lost}, "
          f"duplicates {book.duplicates}")
    assert book.lost == 0 and book.duplicates == 0
    ctx.close()
