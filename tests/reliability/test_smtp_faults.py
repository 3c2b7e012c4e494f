"""SMTP faults at the server: connections dropped after DATA (the server took the message, the client never
heard), 421 storms, 451s. Nothing is lost, and every duplicate the drops cause is an attempt in the log."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from tests.reliability.conftest import Sink, context, fill, ledger, stop, wait_all_sent, workers


def _faults(n: int) -> str | None:
    if 200 <= n < 300:
        return "421"  # a storm: a hundred transactions in a row refused
    if n % 7 == 0:
        return "drop_after_data"
    if n % 11 == 0:
        return "421"
    if n % 13 == 0:
        return "451"
    return None


@pytest.mark.reliability
def test_smtp_faults_lose_nothing_and_every_duplicate_is_logged(tmp_path: Path, sink: Sink) -> None:
    n = 600
    sink.fault = _faults
    ctx = context(tmp_path)
    ids = fill(ctx, n)
    _, procs = workers(ctx, sink.port, 1, LETTERHEAD_WORKER_BATCH_SIZE="100")
    try:
        took = wait_all_sent(ctx, n, timeout=120)
        procs[0].send_signal(signal.SIGTERM)
        assert procs[0].wait(timeout=30) == 0
    finally:
        stop(procs)
    book = ledger(ctx, sink, ids)
    retried = sum(1 for c in book.attempt_rows.values() if c > 1)
    print(f"SMTP faults ({n} messages; drop after DATA every 7th, 421 every 11th and a storm of 100, 451 every "
          f"13th): lost {book.lost}, duplicates {book.duplicates}, {retried} retried, all sent in {took:.1f} s")
    assert book.lost == 0
    assert book.duplicates > 0  # the drops after DATA: the server had the message
    assert book.unseen_duplicates(rows=True) == []  # each delivery is an attempt row
    assert retried >= book.duplicates
    ctx.close()
