"""The retry policy end to end: the worker against scripted SMTP servers as the platform transport."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from letterhead import migrate
from letterhead.context import Context
from letterhead.emails import accept_email
from letterhead.models import Message, utcnow
from letterhead.tenants import create_tenant
from tests.conftest import deliver, make_settings
from tests.support.smtpd import SmtpServer


@pytest.fixture
def platform_on(
    tmp_path: Path, database_url: str | None
) -> Iterator[Callable[..., Context]]:
    """A context whose platform transport is the given server."""
    made: list[Context] = []

    def make(server: Any, **overrides: Any) -> Context:
        url = f"smtp://127.0.0.1:{server.port}"
        ctx = Context.create(make_settings(tmp_path, database_url, platform_smtp_url=url, **overrides))
        migrate.upgrade(ctx.db.engine)
        create_tenant(ctx, tenant_id="shop", name="Shop", plan="free")
        made.append(ctx)
        return ctx

    yield make
    for ctx in made:
        ctx.close()


def send_one(ctx: Context) -> str:
    return accept_email(ctx, tenant_id="shop", to=["a@example.com"], subject="s", html=None, text="t").id


def message(ctx: Context, mid: str) -> Message:
    with ctx.db.session() as s:
        m = s.scalar(select(Message).where(Message.id == mid))
        assert m is not None
        s.expunge(m)
        return m


@pytest.mark.parametrize(
    ("script", "category"),
    [
        ({"replies": {"mail": "421 4.3.2 Service not available, closing transmission channel"}}, "temporary_failure"),
        ({"replies": {"rcpt": "450 4.2.1 Mailbox busy, try again later"}}, None),
        ({"drop_at": "data"}, "connection_failed"),
    ],
)
def test_transient_failures_back_off_and_keep_the_reply(
    platform_on: Callable[..., Context], smtpd_factory: Callable[..., SmtpServer], script: dict[str, Any],
    category: str | None,
) -> None:
    server = smtpd_factory(**script)
    ctx = platform_on(server)
    mid = send_one(ctx)
    before = utcnow()
    deliver(ctx)
    m = message(ctx, mid)
    assert m.status == "deferred" and m.attempt_count == 1
    # Exponential backoff with jitter: the first retry waits at least ½ × the base delay; a provider's own hint
    # ("try again later": minutes) may push it further, never past the cap.
    base = ctx.settings.retry_base_seconds
    assert before + timedelta(seconds=base * 0.5 - 1) <= m.next_attempt_at
    assert m.next_attempt_at <= utcnow() + timedelta(seconds=ctx.settings.retry_max_seconds)
    if category:
        assert m.category == category
    assert m.remedy and m.remedy["en"] and m.remedy["ja"]
    # The server recovers: the retry (made due now) delivers it, and both attempts are on record.
    server.script.replies.clear()
    server.script.drop_at = None
    with ctx.db.session() as s:
        s.execute(update(Message).where(Message.id == mid).values(next_attempt_at=utcnow()))
    deliver(ctx)
    m = message(ctx, mid)
    assert m.status == "sent" and m.attempt_count == 2
    assert len(server.messages) == 1


def test_permanent_failure_fails_at_once_with_the_reply(
    platform_on: Callable[..., Context], smtpd_factory: Callable[..., SmtpServer]
) -> None:
    server = smtpd_factory(replies={"rcpt": "550 5.1.1 The email account that you tried to reach does not exist."})
    ctx = platform_on(server)
    mid = send_one(ctx)
    deliver(ctx)
    m = message(ctx, mid)
    assert m.status == "failed" and m.attempt_count == 1
    assert (m.last_code, m.last_enhanced) == (550, "5.1.1")
    assert "does not exist" in (m.last_text or "")
    assert m.category == "recipient_rejected"


def test_a_stalled_server_times_out_and_is_retried(
    platform_on: Callable[..., Context], raw_server_factory: Callable[..., Any]
) -> None:
    raw = raw_server_factory("stall")
    ctx = platform_on(raw, smtp_timeout_seconds=0.5)
    mid = send_one(ctx)
    deliver(ctx)
    m = message(ctx, mid)
    assert m.status == "deferred"
    with ctx.db.session() as s:
        [attempt] = message_attempts(s, mid)
    assert attempt.outcome == "transient" and attempt.error in ("greeting_timeout", "timeout")


def test_lifetime_ends_retries(platform_on: Callable[..., Context], smtpd_factory: Callable[..., SmtpServer]) -> None:
    server = smtpd_factory(replies={"mail": "451 4.3.0 Temporary local problem"})
    ctx = platform_on(server, message_lifetime_seconds=1)
    mid = send_one(ctx)
    with ctx.db.session() as s:
        s.execute(update(Message).where(Message.id == mid).values(expires_at=utcnow() - timedelta(seconds=1)))
    deliver(ctx)
    m = message(ctx, mid)
    assert m.status == "failed" and m.last_code == 451


def test_stale_leases_are_reclaimed(platform_on: Callable[..., Context], smtpd_factory: Callable[..., SmtpServer]) -> None:
    from letterhead.delivery import queue

    server = smtpd_factory()
    ctx = platform_on(server)
    mid = send_one(ctx)
    [row] = queue.claim(ctx.db, owner="crashed-worker", limit=10, lease_seconds=60)
    assert row.id == mid
    # Converted after the claim's transaction, as SQLAlchemy would have: a list, aware UTC times.
    assert row.to_addrs == ["a@example.com"] and row.text == "t" and row.attempt_count == 0
    assert row.expires_at.tzinfo is not None and row.expires_at.utcoffset() == timedelta(0)
    assert row.created_at < row.expires_at and row.created_at.tzinfo is not None
    assert queue.claim(ctx.db, owner="other", limit=10, lease_seconds=60) == []  # leased: not claimable
    with ctx.db.session() as s:  # the crashed worker's lease runs out
        past = utcnow() - timedelta(seconds=1)  # a claim sets both to the lease's deadline
        s.execute(update(Message).where(Message.id == mid).values(leased_until=past, next_attempt_at=past))
    deliver(ctx)
    assert message(ctx, mid).status == "sent"
    # The crashed worker coming back cannot overwrite the newer outcome.
    assert queue.record(ctx.db, owner="crashed-worker", results=[
        queue.Result(mid, queue.MessageStatus.FAILED, None)]) == 0
    assert message(ctx, mid).status == "sent"


def test_a_lease_is_due_again_at_its_deadline(platform_on: Callable[..., Context], smtpd_factory: Callable[..., SmtpServer]) -> None:
    """A claim sets next_attempt_at to the lease's deadline as well, so the due index finds stale leases in order
    (and a claim stops at once when there are none, instead of reading every leased row)."""
    from letterhead.delivery import queue

    ctx = platform_on(smtpd_factory())
    mid = send_one(ctx)
    now = utcnow() + timedelta(seconds=1)
    assert [r.id for r in queue.claim(ctx.db, owner="w1", limit=10, lease_seconds=60, now=now)] == [mid]
    leased = message(ctx, mid)
    assert leased.leased_until == now + timedelta(seconds=60)
    assert leased.next_attempt_at == leased.leased_until
    assert queue.claim(ctx.db, owner="w2", limit=10, lease_seconds=60, now=leased.leased_until) == []
    later = leased.leased_until + timedelta(microseconds=1)
    assert [r.id for r in queue.claim(ctx.db, owner="w2", limit=10, lease_seconds=60, now=later)] == [mid]
    assert message(ctx, mid).lease_owner == "w2"


def message_attempts(session: Any, mid: str) -> list[Any]:
    from letterhead.models import Attempt

    return list(session.scalars(select(Attempt).where(Attempt.message_id == mid).order_by(Attempt.number)))


def test_platform_credentials_never_reach_the_log(
    tmp_path: Path, database_url: str | None, smtpd_factory: Callable[..., SmtpServer]
) -> None:
    server = smtpd_factory(auth={"platform": "s3cr3t-pl4tform"}, auth_required=True)
    ctx = Context.create(make_settings(
        tmp_path, database_url, platform_smtp_url=f"smtp://platform:s3cr3t-pl4tform@127.0.0.1:{server.port}"))
    migrate.upgrade(ctx.db.engine)
    create_tenant(ctx, tenant_id="shop", name="Shop", plan="free")
    mid = send_one(ctx)
    deliver(ctx)
    assert message(ctx, mid).status == "sent"
    import base64

    with ctx.db.session() as s:
        [attempt] = message_attempts(s, mid)
    assert "AUTH" in attempt.transcript
    assert "s3cr3t-pl4tform" not in attempt.transcript
    assert base64.b64encode(b"\0platform\0s3cr3t-pl4tform").decode() not in attempt.transcript
    assert "s3cr3t" not in repr(ctx.settings.platform_transport)
    ctx.close()


def test_recorded_outcomes_keep_every_field(platform_on: Callable[..., Context], smtpd_factory: Callable[..., SmtpServer]) -> None:
    """queue.record writes the same columns on both databases (PostgreSQL takes a one-statement JSON path)."""
    from letterhead.delivery import queue
    from letterhead.models import Attempt

    ctx = platform_on(smtpd_factory())
    sent_id, deferred_id = send_one(ctx), send_one(ctx)
    queue.claim(ctx.db, owner="w", limit=10, lease_seconds=60)
    now = utcnow().replace(microsecond=123456)
    later = now + timedelta(minutes=5)
    remedy = {"en": "Wait; \"quoted\" text", "ja": "しばらくお待ちください"}
    attempt = {"number": 1, "started_at": now, "duration_ms": 12.5, "mode": "default", "transport": "platform x",
               "stage": "rcpt_to", "code": 451, "enhanced": "4.7.1", "text": "try later", "error": None,
               "category": "greylisted", "transcript": "C: RCPT TO:<a@example.com>\nS: 451 4.7.1 try later",
               "outcome": "transient"}
    results = [
        queue.Result(sent_id, queue.MessageStatus.SENT, {**attempt, "message_id": sent_id, "code": 250,
                                                           "outcome": "sent", "category": None},
                     summary={"from_addr": "a@shop.example", "from_name": "ショップ", "mode": "default",
                              "last_code": 250, "last_text": "Ok", "sent_at": now, "message_id_header": "<1@x>"}),
        queue.Result(deferred_id, queue.MessageStatus.DEFERRED, {**attempt, "message_id": deferred_id},
                     next_attempt_at=later,
                     summary={"last_code": 451, "last_enhanced": "4.7.1", "category": "greylisted",
                              "remedy": remedy, "retry_after_seconds": 300}),
    ]
    assert queue.record(ctx.db, owner="w", results=results, now=now) == 2
    with ctx.db.session() as s:
        sent = s.scalar(select(Message).where(Message.id == sent_id))
        deferred = s.scalar(select(Message).where(Message.id == deferred_id))
        assert sent is not None and deferred is not None
        assert (sent.status, sent.from_name, sent.last_code, sent.sent_at, sent.attempt_count, sent.lease_owner) == (
            "sent", "ショップ", 250, now, 1, None)
        assert sent.remedy is None and sent.category is None and sent.message_id_header == "<1@x>"
        assert (deferred.status, deferred.next_attempt_at, deferred.remedy, deferred.category, deferred.sent_at) == (
            "deferred", later, remedy, "greylisted", None)
        assert deferred.from_addr is None and deferred.updated_at == now
        rows = list(s.scalars(select(Attempt).where(Attempt.message_id == deferred_id)))
        assert [(a.number, a.started_at, a.duration_ms, a.code, a.enhanced, a.transcript, a.outcome) for a in rows] == [
            (1, now, 12.5, 451, "4.7.1", attempt["transcript"], "transient")]


def test_a_message_not_attempted_keeps_its_last_failure_in_the_log(
    platform_on: Callable[..., Context], smtpd_factory: Callable[..., SmtpServer]
) -> None:
    """A message that failed once and then waits without an attempt (an SMTP account busy elsewhere, a quota)
    still shows its last reply, category and remedy beside the note; one that expires without an attempt keeps
    the last reply under its own category. (They were cleared: the log showed only "waiting".)"""
    from letterhead.delivery import queue

    ctx = platform_on(smtpd_factory())
    waiting_id, expired_id, sent_id, broken_id = send_one(ctx), send_one(ctx), send_one(ctx), send_one(ctx)
    now = utcnow().replace(microsecond=0) + timedelta(seconds=1)  # the messages are due
    remedy = {"en": "Wait a few minutes.", "ja": "しばらくお待ちください。"}

    def failed_once(mid: str) -> queue.Result:
        attempt = {"message_id": mid, "number": 1, "started_at": now, "duration_ms": 3.0, "mode": "default",
                   "transport": "platform", "stage": "mail_from", "code": 421, "enhanced": "4.3.2",
                   "text": "Too many connections", "error": None, "category": "temporary_failure",
                   "transcript": "S: 421 4.3.2 Too many connections", "outcome": "transient"}
        return queue.Result(mid, queue.MessageStatus.DEFERRED, attempt, next_attempt_at=now,
                            summary={"last_code": 421, "last_enhanced": "4.3.2", "last_text": "Too many connections",
                                     "category": "temporary_failure", "remedy": remedy})

    ids = [waiting_id, expired_id, sent_id, broken_id]
    assert len(queue.claim(ctx.db, owner="w", limit=10, lease_seconds=60, now=now)) == 4
    assert queue.record(ctx.db, owner="w", results=[failed_once(i) for i in ids], now=now) == 4
    again = now + timedelta(seconds=1)
    assert len(queue.claim(ctx.db, owner="w", limit=10, lease_seconds=60, now=again)) == 4
    later = again + timedelta(seconds=30)
    sent_attempt = dict(failed_once(sent_id).attempt or {}, number=2, code=250, enhanced="2.0.0", text="Ok",
                        category=None, outcome="sent")
    results = [
        queue.Result(waiting_id, queue.MessageStatus.DEFERRED, None, next_attempt_at=later,
                     summary={"mode": "default", "note": "Waiting for a free connection"}),
        queue.Result(expired_id, queue.MessageStatus.FAILED, None, summary={"note": "x", "category": "expired"}),
        queue.Result(sent_id, queue.MessageStatus.SENT, sent_attempt,
                     summary={"last_code": 250, "last_text": "Ok", "sent_at": again}),
    ]
    # A template that cannot render this message: its own category, remedy and text replace the old reply.
    fix = {"en": "Fix the template.", "ja": "テンプレートを修正してください。"}
    results.append(queue.Result(broken_id, queue.MessageStatus.FAILED, None,
                                summary={"category": "template_error", "remedy": fix, "last_text": "html: no x"}))
    assert queue.record(ctx.db, owner="w", results=results, now=again) == 4
    waiting, expired, sent = message(ctx, waiting_id), message(ctx, expired_id), message(ctx, sent_id)
    broken = message(ctx, broken_id)
    assert (broken.category, broken.remedy, broken.last_code, broken.last_enhanced, broken.last_text) == (
        "template_error", fix, None, None, "html: no x")
    assert (waiting.status, waiting.note, waiting.attempt_count, waiting.next_attempt_at) == (
        "deferred", "Waiting for a free connection", 1, later)
    assert (waiting.last_code, waiting.last_enhanced, waiting.last_text) == (421, "4.3.2", "Too many connections")
    assert (waiting.category, waiting.remedy, waiting.mode, waiting.lease_owner) == (
        "temporary_failure", remedy, "default", None)
    assert (expired.status, expired.category, expired.remedy, expired.last_code, expired.attempt_count) == (
        "failed", "expired", None, 421, 1)
    # An attempt still writes every column: the old failure's diagnosis goes once the message is sent.
    assert (sent.status, sent.last_code, sent.last_enhanced, sent.category, sent.remedy, sent.note) == (
        "sent", 250, None, None, None, None)


def test_parts_already_sent_are_recorded_when_a_later_part_cannot_be_prepared(
    platform_on: Callable[..., Context], smtpd_factory: Callable[..., SmtpServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch goes out part by part: if preparing a later part breaks (a bug, not a template error), what was
    already sent is recorded as sent (never sent twice after the lease), and the rest keeps its lease."""
    from letterhead.delivery import worker as worker_module

    server = smtpd_factory()
    ctx = platform_on(server)
    first, second = send_one(ctx), send_one(ctx)
    monkeypatch.setattr(worker_module, "_PREPARE_PART", 1)
    real = worker_module.Worker._prepare

    def broken_for_second(self: Any, row: Any, *args: Any) -> Any:
        if row.id == second:
            raise RuntimeError("a bug while preparing")
        return real(self, row, *args)

    monkeypatch.setattr(worker_module.Worker, "_prepare", broken_for_second)
    with pytest.raises(RuntimeError, match="a bug while preparing"):
        deliver(ctx, rounds=1)
    assert message(ctx, first).status == "sent" and len(server.messages) == 1
    assert message(ctx, second).status == "sending"  # leased: claimed again once the lease runs out
