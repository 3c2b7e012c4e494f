"""The email log pages: newest first, filters, status badges, the 14-day chart, the detail view with attempts,
replies, category, remedy and transcript."""

from __future__ import annotations

import re
from datetime import timedelta

from fastapi.testclient import TestClient

from letterhead.context import Context
from letterhead.models import Attempt, Message, new_id, utcnow
from letterhead.web import charts
from letterhead.web.i18n import Translator
from tests.support.web import make_user, sign_in

REMEDY = {"en": "Ask the recipient to check the address.", "ja": "宛先のアドレスを受信者に確認してください。"}


def add(ctx: Context, *, to: str, status: str, kind: str = "notification", event: str | None = "order.shipped",
        days_ago: float = 0, subject: str = "ご注文の商品を発送しました", **extra: object) -> str:
    mid = new_id("msg_")
    created = utcnow() - timedelta(days=days_ago)
    with ctx.db.session() as s:
        s.add(Message(id=mid, tenant_id="acme", kind=kind, event=event, to_addrs=[to], to_first=to.lower(),
                      subject=subject, status=status, expires_at=created, created_at=created, attempt_count=1,
                      mode="default", transport="platform (devinbox)", **extra))
    return mid


def test_log_list_filters_and_detail(ctx: Context, app_client: TestClient, acme: str) -> None:
    make_user(ctx, "owner@acme.example", tenant=acme)
    sign_in(app_client, "owner@acme.example")
    old = add(ctx, to="old@example.com", status="sent", days_ago=3, subject="古い注文")
    failed = add(ctx, to="typo@exmaple.com", status="failed", last_code=550, last_enhanced="5.1.1",
                 last_text="No such user", category="recipient_rejected", remedy=REMEDY, subject="失敗した通知")
    with ctx.db.session() as s:
        s.add(Attempt(message_id=failed, number=1, started_at=utcnow(), duration_ms=12.5, mode="default",
                      transport="platform (devinbox)", outcome="permanent", stage="rcpt_to", code=550,
                      enhanced="5.1.1", text="No such user", category="recipient_rejected",
                      transcript="S: 220 mx ESMTP\nC: EHLO letterhead\nC: AUTH PLAIN [redacted]\nS: 550 5.1.1 No such user"))
    test = add(ctx, to="owner@example.jp", status="sent", kind="test", event=None, subject="Letterhead テストメール")
    deferred = add(ctx, to="later@example.com", status="deferred", days_ago=1, subject="再試行の通知")

    page = app_client.get("/t/acme/logs")
    assert page.status_code == 200
    ids = re.findall(r'data-message-id="([^"]+)"', page.text)
    assert ids == sorted(ids, reverse=True) and set(ids) == {old, failed, test, deferred}
    assert 'class="badge status-failed">失敗<' in page.text
    assert 'class="badge status-sent">送信済み<' in page.text
    assert "宛先のアドレスを受信者に確認してください。" in page.text  # the remedy is visible in the list
    assert "<svg" in page.text and 'class="bar failed"' in page.text and 'class="bar deferred"' in page.text

    def listed(**params: str) -> list[str]:
        return re.findall(r'data-message-id="([^"]+)"', app_client.get("/t/acme/logs", params=params).text)

    assert listed(status="failed") == [failed]
    assert listed(kind="test") == [test]
    assert listed(to="EXMAPLE") == [failed]
    assert listed(event="order.shipped", status="sent") == [old]
    today = utcnow().astimezone(charts.zone("Asia/Tokyo")).date()
    assert set(listed(since=(today - timedelta(days=2)).isoformat())) == {failed, test, deferred}
    assert listed(until=(today - timedelta(days=3)).isoformat()) == [old]
    bad = app_client.get("/t/acme/logs", params={"since": "yesterday"})
    assert "YYYY-MM-DD" in bad.text and "「yesterday」" in bad.text
    swapped = app_client.get("/t/acme/logs", params={"since": today.isoformat(),
                                                     "until": (today - timedelta(days=5)).isoformat()})
    assert "開始日が終了日より後" in swapped.text
    empty = app_client.get("/t/acme/logs", params={"to": "nobody-at-all"})
    assert "条件に一致するメールはありません" in empty.text

    detail = app_client.get(f"/t/acme/logs/{failed}")
    assert detail.status_code == 200
    text = detail.text
    assert "recipient_rejected" in text and "宛先のアドレスを受信者に確認してください。" in text
    assert "550 5.1.1 No such user" in text and "1 回目の試行" in text and "恒久的な失敗" in text
    assert "<details class=\"transcript\">" in text and "AUTH PLAIN [redacted]" in text
    en = app_client.get(f"/t/acme/logs/{failed}", headers={"Accept-Language": "en"})
    assert "Ask the recipient to check the address." in en.text and "Permanent failure" in en.text
    assert app_client.get("/t/acme/logs/msg_nope").status_code == 404


def test_log_pages_through_older_messages(ctx: Context, app_client: TestClient, acme: str) -> None:
    make_user(ctx, "owner@acme.example", tenant=acme)
    sign_in(app_client, "owner@acme.example")
    for i in range(55):
        add(ctx, to=f"r{i}@example.com", status="sent")
    first = app_client.get("/t/acme/logs", params={"status": "sent"})
    assert len(re.findall(r"data-message-id=", first.text)) == 50
    older = re.search(r'href="(/t/acme/logs\?[^"]*cursor=[^"]+)"', first.text)
    assert older and "status=sent" in older.group(1)
    second = app_client.get(older.group(1).replace("&amp;", "&"))
    assert len(re.findall(r"data-message-id=", second.text)) == 5


def test_chart_counts_per_tenant_day(ctx: Context, acme: str) -> None:
    add(ctx, to="a@example.com", status="sent")
    add(ctx, to="b@example.com", status="sent")
    add(ctx, to="c@example.com", status="failed", days_ago=2)
    add(ctx, to="d@example.com", status="deferred", days_ago=13.2)
    add(ctx, to="e@example.com", status="sent", days_ago=20)  # outside the window
    add(ctx, to="f@example.com", status="queued")  # not a series
    days = charts.daily_counts(ctx, tenant_id="acme", tz="Asia/Tokyo")
    assert len(days) == 14
    assert days[-1].counts == {"sent": 2, "deferred": 0, "failed": 0}
    assert days[-3].counts["failed"] == 1
    assert sum(d.counts["deferred"] for d in days) <= 1
    assert sum(d.total for d in days) in (3, 4)
    svg = charts.svg(days, Translator("en"))
    assert svg.startswith("<svg") and "Sent 2" in svg and "Failed 1" in svg
