"""PostgreSQL stopped under load (pg_ctl stop -m fast, then start): nothing lost, and the outcomes the worker
could not write are kept and written when the database is back, instead of the messages being sent again
(issue 18: with PostgreSQL down 10 s, 2,500 messages were sent twice)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.reliability.conftest import (
    Sink,
    StoppablePg,
    context,
    fill,
    ledger,
    stop,
    wait_all_sent,
    wait_until,
    workers,
)

OUTAGE_SECONDS = 4.0


@pytest.mark.reliability
@pytest.mark.postgres
def test_postgres_stopped_under_load(tmp_path: Path, sink: Sink, stoppable_pg: StoppablePg) -> None:
    n = 2000
    ctx = context(tmp_path, stoppable_pg.url)
    ids = fill(ctx, n)
    sink.data_delay = 0.004  # a few seconds of delivery, so the outage lands in the middle
    _, procs = workers(ctx, sink.port, 2, LETTERHEAD_LEASE_SECONDS="10", LETTERHEAD_WORKER_BATCH_SIZE="100")
    try:
        wait_until(lambda: sink.total >= n // 5, timeout=60, what="deliveries to start")
        before = sink.total
        stoppable_pg.pause()
        time.sleep(OUTAGE_SECONDS)
        during = sink.total - before
        stoppable_pg.resume()
        took = wait_all_sent(ctx, n, timeout=120)
    finally:
        stop(procs)
    book = ledger(ctx, sink, ids)
    print(f"PostgreSQL stopped {OUTAGE_SECONDS:g} s under load (2 workers, {n} messages): lost {book.lost}, "
          f"duplicates {book.duplicates}, {during} delivered while it was down, all sent {took:.1f} s after restart")
    assert book.lost == 0
    # What was sent while the database was away was recorded when it came back, not sent again.
    assert book.duplicates == 0, {m: d for m, d in book.delivered.items() if d > 1}
    assert book.unseen_duplicates(rows=False) == []
    ctx.close()
