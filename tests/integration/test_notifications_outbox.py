"""The keyless INSERT of notifications/outbox.py writes exactly the rows ``queue.enqueue_many`` writes (every
column, on SQLite and PostgreSQL), and the service sends keyed notifications the other way."""

from __future__ import annotations

import copy
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from letterhead.context import Context
from letterhead.delivery.queue import _ROW_KEYS, NewMessage, enqueue_many, messages
from letterhead.models import MessageKind
from letterhead.notifications import outbox, service
from letterhead.notifications.events import EVENTS


def _message(i: int, **extra: Any) -> NewMessage:
    data = copy.deepcopy(EVENTS["order.created"].example)
    data["order_number"] = f"A-{i}"
    return NewMessage(tenant_id="acme", kind=MessageKind.NOTIFICATION, to=[f"Customer{i}@example.com"],
                      event="order.created", locale="ja" if i % 2 else "en", data=data, **extra)


def _rows(ctx: Context, ids: list[str]) -> list[dict[str, Any]]:
    with ctx.db.session() as s:
        found = {r.id: dict(r._mapping) for r in s.execute(select(messages).where(messages.c.id.in_(ids)))}
    return [found[i] for i in ids]


def test_keyless_rows_equal_enqueue_many_rows(ctx: Context, acme: str) -> None:
    via_queue = enqueue_many(ctx, [_message(i) for i in range(3)])
    via_outbox = outbox.insert_keyless(ctx, [_message(i) for i in range(3)])
    assert [a.status for a in via_outbox] == ["queued"] * 3 and all(a.created for a in via_outbox)
    assert len({a.id for a in via_queue + via_outbox}) == 6
    left, right = _rows(ctx, [a.id for a in via_queue]), _rows(ctx, [a.id for a in via_outbox])
    times = {"next_attempt_at", "expires_at", "created_at", "updated_at"}
    for a, b in zip(left, right, strict=True):
        assert a.keys() == b.keys() and set(_ROW_KEYS) <= a.keys()
        assert {k: v for k, v in a.items() if k not in times | {"id"}} == {
            k: v for k, v in b.items() if k not in times | {"id"}}
        for row in (a, b):
            assert row["created_at"].tzinfo is not None and row["next_attempt_at"] == row["created_at"]
            assert row["expires_at"] - row["created_at"] == timedelta(seconds=ctx.settings.message_lifetime_seconds)
    assert right[0]["to_addrs"] == ["Customer0@example.com"] and right[0]["to_first"] == "customer0@example.com"
    assert right[1]["data"]["order_number"] == "A-1" and right[1]["subject"] is None


def test_keyed_messages_are_refused(ctx: Context, acme: str) -> None:
    with pytest.raises(ValueError):
        outbox.insert_keyless(ctx, [_message(1), _message(2, idempotency_key="k")])
    assert outbox.insert_keyless(ctx, []) == []


def test_a_batch_with_one_key_keeps_idempotency(ctx: Context, acme: str) -> None:
    tenant = service._read_tenants(ctx, {"acme"})[0]["acme"]
    data = EVENTS["order.created"].example

    def batch(to: str) -> list[service.NotificationIn]:
        return [service.NotificationIn("order.created", "a@example.com", data),
                service.NotificationIn("order.created", to, data, idempotency_key="once")]

    first = service.accept(ctx, tenant=tenant, items=batch("b@example.com"))
    again = service.accept(ctx, tenant=tenant, items=batch("b@example.com"))
    assert first[1] is not None and again[1] is not None and again[1].id == first[1].id and not again[1].created
    assert first[0] is not None and again[0] is not None and again[0].id != first[0].id  # keyless: a new message
    with pytest.raises(Exception, match="already used"):
        service.accept(ctx, tenant=tenant, items=batch("c@example.com"))


def test_columns_left_out_are_exactly_the_null_ones() -> None:
    # Every column enqueue_many sets is either written by insert_keyless or left to the database, which then
    # stores NULL only because the column has no default of its own.
    assert set(outbox.KEYS) | set(outbox.NULL_COLUMNS) == set(_ROW_KEYS)
    assert not set(outbox.KEYS) & set(outbox.NULL_COLUMNS) and len(set(outbox.KEYS)) == len(outbox.KEYS)
    for name in outbox.NULL_COLUMNS:
        column = messages.c[name]
        assert column.default is None and column.server_default is None and column.nullable, name
