"""The shared rate limit: a sliding window per key, kept in the database."""

from __future__ import annotations

from datetime import timedelta

from letterhead import ratelimit
from letterhead.context import Context
from letterhead.models import utcnow

RULE = ratelimit.Limit(limit=3, window=60)


def test_a_window_allows_the_limit_then_says_how_long_to_wait(ctx: Context) -> None:
    t0 = utcnow()
    for i in range(3):
        assert ratelimit.take(ctx.db, "k", RULE, now=t0 + timedelta(seconds=i)) is None
    # The first hit (t0) leaves the window at t0+60: from t0+10 that is 50 s away.
    assert ratelimit.take(ctx.db, "k", RULE, now=t0 + timedelta(seconds=10)) == 50
    assert ratelimit.retry_after(ctx.db, "other", RULE, now=t0) is None
    assert ratelimit.take(ctx.db, "k", RULE, now=t0 + timedelta(seconds=61)) is None
    ratelimit.clear(ctx.db, "k")
    assert ratelimit.retry_after(ctx.db, "k", RULE, now=t0 + timedelta(seconds=62)) is None
