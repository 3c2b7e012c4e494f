from __future__ import annotations

import copy
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from letterhead.errors import InvalidInput, NotFound
from letterhead.notifications.events import EVENTS, get_event, validate_data

EXPECTED = {
    "order.created",
    "order.shipped",
    "order.delivered",
    "order.cancelled",
    "refund.issued",
    "vendor.approved",
    "vendor.order_received",
    "payout.sent",
    "password.reset",
    "account.invited",
}


def _errors(event: str, data: Any) -> list[dict[str, Any]]:
    with pytest.raises(InvalidInput) as caught:
        validate_data(get_event(event), data)
    return caught.value.errors


def test_catalogue_has_every_event() -> None:
    assert set(EVENTS) == EXPECTED


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_schema_is_valid_and_example_validates(name: str) -> None:
    event = get_event(name)
    Draft202012Validator.check_schema(event.schema)
    assert event.schema["type"] == "object" and event.schema["required"]
    assert event.description and event.description_ja
    validate_data(event, event.example)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_as_dict_shape(name: str) -> None:
    event = get_event(name)
    shape = event.as_dict()
    assert set(shape) == {"name", "description", "schema", "example"}
    assert shape["name"] == name and shape["description"] == event.description
    assert event.as_dict("ja")["description"] == event.description_ja


def test_unknown_event_lists_known_events() -> None:
    with pytest.raises(NotFound) as caught:
        get_event("order.exploded")
    assert "order.created" in caught.value.detail and "payout.sent" in caught.value.detail


def test_each_bad_field_is_reported() -> None:
    data = copy.deepcopy(get_event("order.created").example)
    data["items"][0]["quantity"] = 0
    data["items"][1]["price"] = "free"
    del data["currency"]
    data["order_url"] = "javascript:alert(1)"
    data["ordered_at"] = "2026-11-27 14:30"
    fields = {e["field"]: e["message"] for e in _errors("order.created", data)}
    assert set(fields) == {
        "data.items[0].quantity",
        "data.items[1].price",
        "data.currency",
        "data.order_url",
        "data.ordered_at",
    }
    assert fields["data.currency"] == "is required"


def test_missing_required_fields_each_reported() -> None:
    fields = {e["field"] for e in _errors("order.shipped", {"customer_name": "山田 花子"})}
    assert fields == {"data.order_number", "data.carrier", "data.tracking_number"}


def test_not_an_object() -> None:
    assert [e["field"] for e in _errors("password.reset", ["nope"])] == ["data"]


def test_uri_format_is_checked() -> None:
    data = dict(get_event("password.reset").example, reset_url="https://")
    assert [e["field"] for e in _errors("password.reset", data)] == ["data.reset_url"]
    data = dict(get_event("password.reset").example, reset_url="https://exa mple.com/x")
    assert [e["field"] for e in _errors("password.reset", data)] == ["data.reset_url"]


def test_datetime_needs_an_offset() -> None:
    data = dict(get_event("password.reset").example, expires_at="2026-11-27T15:30:00")
    assert [e["field"] for e in _errors("password.reset", data)] == ["data.expires_at"]
    validate_data(get_event("password.reset"), dict(data, expires_at="2026-11-27T06:30:00Z"))


def test_dependent_field() -> None:
    data = dict(get_event("order.cancelled").example)
    del data["currency"]
    errors = _errors("order.cancelled", data)
    assert [e["field"] for e in errors] == ["data.currency"]
    assert "refund_amount" in errors[0]["message"]


def test_additional_properties_are_allowed() -> None:
    event = get_event("order.delivered")
    validate_data(event, dict(event.example, gift_message="おめでとう"))


def test_the_fast_validators_agree_with_the_schema() -> None:
    # The compiled validators only short-cut valid data; they must never accept what the schema refuses (and on
    # these samples they also accept everything it accepts).
    import copy

    from jsonschema import Draft202012Validator

    from letterhead.notifications.events import _FAST_VALIDATORS, _FORMATS

    for name, event in EVENTS.items():
        full = Draft202012Validator(event.schema, format_checker=_FORMATS)
        samples = [copy.deepcopy(event.example)]
        for key in list(event.example):
            broken = copy.deepcopy(event.example)
            broken[key] = {"not": "right"}
            samples.append(broken)
            missing = copy.deepcopy(event.example)
            del missing[key]
            samples.append(missing)
        for key, bad in (("order_url", "javascript:alert(1)"), ("ordered_at", "2026-11-27T14:30:00"),
                         ("currency", "yen"), ("total", -1)):
            if key in event.example:
                wrong = copy.deepcopy(event.example)
                wrong[key] = bad
                samples.append(wrong)
        fast = _FAST_VALIDATORS[name]
        assert fast is not None, name  # every event's schema compiles
        for sample in samples:
            full_ok = full.is_valid(sample)
            fast_ok = fast(sample)
            assert fast_ok is full_ok, (name, sample)


def test_uri_fast_path_agrees_with_urlsplit() -> None:
    from urllib.parse import urlsplit

    from letterhead.notifications import events

    def slow(value: str) -> bool:
        if events._CONTROL_OR_SPACE.search(value):
            return False
        try:
            parts = urlsplit(value)
        except ValueError:
            return False
        if not parts.scheme or not events._SCHEME.match(parts.scheme):
            return False
        if parts.scheme in ("http", "https"):
            return bool(parts.netloc)
        return bool(parts.netloc or parts.path)

    cases = [
        "https://shop.example.jp/orders/A-1", "http://x", "https://", "http://", "https:///path", "https://?q",
        "https://#f", "https://[::1]/", "https://[::1/", "https://a]b/", "https://user:pw@host:8080/p?q#f",
        "HTTPS://host/", "https:host", "http:/host", "mailto:a@example.com", "https://host path", "https://\x00",
        "ftp://files.example.com/x", "https://例え.jp/注文", "https://host:99999999/", "javascript:alert(1)",
    ]
    for case in cases:
        assert events._is_uri(case) == slow(case), case
