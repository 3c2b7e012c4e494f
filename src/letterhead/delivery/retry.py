"""Retry policy: what happens to a message after an attempt.

Transient failures (4xx, timeouts, dropped connections) back off exponentially with jitter until the message's
lifetime (default 3 days) is over; permanent failures (5xx) fail at once with the reply kept. The jitter spreads
the retries of a burst that failed together (an outage) so they do not all come back in the same second.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from letterhead.models import MessageStatus


@dataclass(frozen=True)
class RetryPolicy:
    base_seconds: float = 60.0
    max_seconds: float = 3600.0

    def delay(self, attempt_count: int, rng: random.Random | None = None) -> float:
        """Seconds before the next try after ``attempt_count`` tries (1-based): base·2^(n-1), capped, jittered
        uniformly within [½, 1] of that ("equal jitter": never immediately, never later than the cap)."""
        raw = min(self.max_seconds, self.base_seconds * 2.0 ** max(0, attempt_count - 1))
        return raw * (0.5 + 0.5 * float((rng or random).random()))


@dataclass(frozen=True)
class Decision:
    status: MessageStatus
    next_attempt_at: datetime | None
    expired: bool = False


def decide_transient(
    *, policy: RetryPolicy, attempt_count: int, now: datetime, expires_at: datetime, retry_at: datetime | None = None
) -> Decision:
    """After a transient failure: defer until ``retry_at`` (a known reopening, e.g. a quota window) or backoff;
    fail when that would be past the message's lifetime."""
    when = retry_at or now + timedelta(seconds=policy.delay(attempt_count))
    if now >= expires_at or when > expires_at:
        return Decision(MessageStatus.FAILED, None, expired=True)
    return Decision(MessageStatus.DEFERRED, when)
