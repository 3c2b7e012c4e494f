"""The notification routes' fast body parser gives exactly what pydantic's models give, or steps aside."""

from __future__ import annotations

import json
from typing import Any

import pytest

from letterhead.api.notifications import NotificationBatch, NotificationCreate, _plain_items

BODIES: list[Any] = [
    {"event": "order.created", "to": "a@example.com", "data": {"x": 1}},
    {"event": "order.created", "to": {"email": "a@example.com", "locale": "en"}, "data": {}, "locale": "ja"},
    {"event": "order.created", "to": {"email": "a@example.com", "name": "A", "locale": None}, "data": {"y": [1]},
     "idempotency_key": "k-1"},
    {"event": "order.created", "to": "a@example.com", "data": {}, "extra": 1},  # pydantic ignores extras
    {"event": "order.created", "to": {"email": "a@example.com", "x": 1}, "data": {}},
    {"event": "order.created", "to": "a@example.com", "data": {}, "idempotency_key": "k" * 201},  # too long
    {"event": 5, "to": "a@example.com", "data": {}},
    {"event": "order.created", "to": 5, "data": {}},
    {"event": "order.created", "to": {"name": "no email"}, "data": {}},
    {"event": "order.created", "to": "a@example.com", "data": []},
    {"event": "order.created", "to": "a@example.com"},
    {"to": "a@example.com", "data": {}},
    [],
    "text",
]


def _pydantic(raw: bytes, header: str | None, batch: bool) -> list[Any] | str:
    try:
        if batch:
            return [n.item() for n in NotificationBatch.model_validate_json(raw).notifications]
        return [NotificationCreate.model_validate_json(raw).item(header)]
    except ValueError:
        return "invalid"


@pytest.mark.parametrize("body", BODIES)
@pytest.mark.parametrize("batch", [False, True])
def test_fast_parser_agrees_with_pydantic(body: Any, batch: bool) -> None:
    raw = json.dumps({"notifications": [body, body]} if batch else body).encode()
    fast = _plain_items(raw, "hdr", batch)
    expected = _pydantic(raw, "hdr", batch)
    if fast is not None:
        assert fast == expected


def test_fast_parser_steps_aside_for_what_pydantic_must_word() -> None:
    assert _plain_items(b"{not json", None, False) is None
    assert _plain_items(b'{"notifications": []}', None, True) is None
    assert _plain_items(json.dumps({"notifications": [BODIES[0]] * 1001}).encode(), None, True) is None
    assert _plain_items(json.dumps(BODIES[0]).encode(), "hdr", False) is not None
