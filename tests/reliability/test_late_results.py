"""A result that comes back after its lease was taken over by another worker: its attempt is in the log (the
message went out twice, and that must show), and the message never moves backwards."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select

from letterhead.delivery import queue
from letterhead.models import Attempt, Message, MessageStatus, utcnow
from letterhead.settings import Settings
from tests.reliability.conftest import context, fill


def _attempt(mid: str, number: int, outcome: str, code: int) -> dict[str, Any]:
    return {"message_id": mid, "number": number, "started_at": utcnow(), "duration_ms": 1.0, "mode": "default",
            "transport": "platform", "stage": "done" if outcome == "sent" else "data", "code": code,
            "enhanced": None, "text": "x", "error": None, "category": None, "transcript": "", "outcome": outcome}


def _sent(mid: str, number: int) -> queue.Result:
    return queue.Result(mid, MessageStatus.SENT, _attempt(mid, number, "sent", 250),
                        summary={"last_code": 250, "sent_at": utcnow()})


def _transient(mid: str, number: int) -> queue.Result:
    return queue.Result(mid, MessageStatus.DEFERRED, _attempt(mid, number, "transient", 451),
                        next_attempt_at=utcnow() + timedelta(minutes=1), summary={"last_code": 451})


def _take_over(ctx: Any, mid: str) -> None:
    """w1 claims ``mid``, its lease runs out, w2 claims it."""
    t0 = utcnow()
    assert [r.id for r in queue.claim(ctx.db, owner="w1", limit=10, lease_seconds=1, now=t0)] == [mid]
    later = t0 + timedelta(seconds=2)
    assert [r.id for r in queue.claim(ctx.db, owner="w2", limit=10, lease_seconds=30, now=later)] == [mid]


def _state(ctx: Any, mid: str) -> tuple[str, int, list[str]]:
    with ctx.db.session() as s:
        m = s.get(Message, mid)
        assert m is not None
        outcomes = list(s.scalars(select(Attempt.outcome).where(Attempt.message_id == mid).order_by(Attempt.id)))
        return m.status, m.attempt_count, outcomes


def test_a_late_transient_is_logged_and_does_not_undo_sent(tmp_path: Path, database_url: str | None) -> None:
    ctx = context(tmp_path, database_url)
    [mid] = fill(ctx, 1)
    _take_over(ctx, mid)
    assert queue.record(ctx.db, owner="w2", results=[_sent(mid, 2)]) == 1
    assert queue.record(ctx.db, owner="w1", results=[_transient(mid, 1)]) == 0  # late
    assert _state(ctx, mid) == ("sent", 2, ["sent", "transient"])
    ctx.close()


def test_a_late_sent_marks_the_message_sent(tmp_path: Path, database_url: str | None) -> None:
    """Also while the other worker still holds it: that worker's own result then comes late and changes nothing."""
    ctx = context(tmp_path, database_url)
    [mid, other] = fill(ctx, 2)
    with ctx.db.session() as s:  # only ``mid`` is due: ``other`` shows the batch's own results still go in
        s.execute(Message.__table__.update().where(Message.id == other).values(
            next_attempt_at=utcnow() + timedelta(hours=1)))
    _take_over(ctx, mid)
    assert queue.record(ctx.db, owner="w1", results=[_sent(mid, 1)]) == 0  # late, but it was delivered
    assert _state(ctx, mid)[0] == "sent"
    assert queue.record(ctx.db, owner="w2", results=[_transient(mid, 2)]) == 0  # w2's lease went with it
    assert _state(ctx, mid) == ("sent", 2, ["sent", "transient"])
    ctx.close()


def test_a_batch_with_some_leases_taken_over_writes_the_rest_as_usual(
    tmp_path: Path, database_url: str | None
) -> None:
    ctx = context(tmp_path, database_url)
    [mid, mine] = fill(ctx, 2)
    t0 = utcnow()
    assert len(queue.claim(ctx.db, owner="w1", limit=10, lease_seconds=1, now=t0)) == 2
    with ctx.db.session() as s:  # only ``mid``'s lease is taken over
        s.execute(Message.__table__.update().where(Message.id == mine).values(leased_until=t0 + timedelta(hours=1),
                                                                              next_attempt_at=t0 + timedelta(hours=1)))
    assert [r.id for r in queue.claim(ctx.db, owner="w2", limit=10, lease_seconds=30,
                                      now=t0 + timedelta(seconds=2))] == [mid]
    assert queue.record(ctx.db, owner="w1", results=[_transient(mid, 1), _sent(mine, 1)]) == 1
    assert _state(ctx, mine) == ("sent", 1, ["sent"])
    status, _, outcomes = _state(ctx, mid)
    assert (status, outcomes) == ("sending", ["transient"])  # still w2's; the late attempt is on record
    ctx.close()


def test_renew_extends_only_the_owners_leases(tmp_path: Path, database_url: str | None) -> None:
    ctx = context(tmp_path, database_url)
    ids = fill(ctx, 3)
    t0 = utcnow()
    assert len(queue.claim(ctx.db, owner="w1", limit=2, lease_seconds=30, now=t0)) == 2
    later = t0 + timedelta(seconds=20)
    assert queue.renew(ctx.db, owner="w1", ids=ids, lease_seconds=30, now=later) == 2
    assert queue.renew(ctx.db, owner="w2", ids=ids, lease_seconds=30, now=later) == 0
    with ctx.db.session() as s:
        leased = {m.id: m.leased_until for m in s.scalars(select(Message))}
    assert sorted(v for v in leased.values() if v is not None) == [later + timedelta(seconds=30)] * 2
    ctx.close()


def test_leases_are_short_by_default() -> None:
    """A killed worker's mail waits for its leases to run out: 30 s, not 5 minutes."""
    assert Settings().lease_seconds == 30
