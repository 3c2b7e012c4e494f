"""The catalogue of notification events a platform can post.

Each event names the data it carries with a JSON Schema (draft 2020-12). The platform's data is validated against
it before anything is queued, so a template never meets a payload it was not written for, and a caller gets one
error per bad field (``data.items[0].quantity``) instead of a rendering failure later.

Validators are compiled once at import: building a ``Draft202012Validator`` costs far more than running it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import ValidationError

from letterhead.errors import InvalidInput, NotFound
from letterhead.notifications.validate import Unsupported, compile_schema

__all__ = ["EVENTS", "Event", "get_event", "validate_data"]


@dataclass(frozen=True)
class Event:
    name: str
    description: str
    description_ja: str
    schema: dict[str, Any]
    example: dict[str, Any]

    def as_dict(self, locale: str = "en") -> dict[str, Any]:
        """The public shape served by ``GET /v1/events`` (description in ``locale``, ``ja`` or ``en``)."""
        return {
            "name": self.name,
            "description": self.description_ja if locale == "ja" else self.description,
            "schema": self.schema,
            "example": self.example,
        }


# ----------------------------------------------------------------------------------------------------
# Format checks. jsonschema only checks "uri" and "date-time" when optional packages are installed; Letterhead
# checks them itself so that validation does not silently depend on the environment.

_FORMATS = FormatChecker()
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*\Z")
_CONTROL_OR_SPACE = re.compile(r"[\x00-\x20\x7f]")
#: The usual case of ``_is_uri`` in one match: http(s), a non-empty authority first, no brackets (urlsplit
#: validates IPv6 literals), no spaces or control characters anywhere.
_PLAIN_HTTP = re.compile(r"https?://[^/?#\[\]\x00-\x20\x7f][^\[\]\x00-\x20\x7f]*\Z")
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})\Z")


@_FORMATS.checks("uri")  # type: ignore[untyped-decorator]
def _is_uri(value: object) -> bool:
    # RFC 3986 absolute URI: a scheme and something after it; no spaces or control characters.
    if type(value) is str and _PLAIN_HTTP.match(value):
        return True  # the fast case below, tested at once (~0.3 instead of ~0.8 µs; it runs per link per item)
    if not isinstance(value, str):
        return True
    if _CONTROL_OR_SPACE.search(value):
        return False
    # The usual case without urlsplit (~4 µs, a tenth of a notification's validation): a lowercase http(s) URL
    # whose authority is non-empty and has no brackets (urlsplit validates IPv6 literals) is what urlsplit
    # would accept below. Anything else takes the full path.
    rest = value[8:] if value.startswith("https://") else value[7:] if value.startswith("http://") else None
    if rest and rest[0] not in "/?#" and "[" not in value and "]" not in value:
        return True
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    if not parts.scheme or not _SCHEME.match(parts.scheme):
        return False
    if parts.scheme in ("http", "https"):
        return bool(parts.netloc)
    return bool(parts.netloc or parts.path)


@_FORMATS.checks("date-time", raises=ValueError)  # type: ignore[untyped-decorator]
def _is_datetime(value: object) -> bool:
    # RFC 3339 requires the offset; a naive timestamp would be rendered in the wrong time zone.
    if not isinstance(value, str):
        return True
    if not _RFC3339.match(value):
        return False
    datetime.fromisoformat(value.replace("z", "Z").replace("t", "T"))
    return True


# ----------------------------------------------------------------------------------------------------
# Schema building blocks.

_URL: dict[str, Any] = {
    "type": "string",
    "format": "uri",
    # Links end up in an email's buttons: only web links, never javascript: or data: URLs.
    "pattern": "^https?://",
    "maxLength": 2048,
}
_NAME: dict[str, Any] = {"type": "string", "minLength": 1, "maxLength": 200}
_ORDER_NUMBER: dict[str, Any] = {"type": "string", "minLength": 1, "maxLength": 64}
_AMOUNT: dict[str, Any] = {"type": "number", "minimum": 0}
_CURRENCY: dict[str, Any] = {
    "type": "string",
    "pattern": "^[A-Z]{3}$",
    "description": "ISO 4217 currency code, e.g. JPY or USD",
}
_DATETIME: dict[str, Any] = {"type": "string", "format": "date-time"}
_DATE: dict[str, Any] = {"type": "string", "format": "date"}
_TEXT: dict[str, Any] = {"type": "string", "maxLength": 2000}
_ITEMS: dict[str, Any] = {
    "type": "array",
    "minItems": 1,
    "maxItems": 500,
    "items": {
        "type": "object",
        "required": ["name", "quantity", "price"],
        "properties": {
            "name": _NAME,
            "quantity": {"type": "integer", "minimum": 1},
            "price": {**_AMOUNT, "description": "unit price, in the order's currency"},
            "sku": {"type": "string", "maxLength": 64},
            "variant": {"type": "string", "maxLength": 200},
        },
    },
}


def _schema(title: str, required: list[str], properties: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": title,
        "type": "object",
        "required": required,
        "properties": properties,
        **extra,
    }


_ITEMS_EXAMPLE = [
    {"name": "有田焼 マグカップ(藍)", "quantity": 2, "price": 1980, "sku": "ARITA-MUG-AI"},
    {"name": "宇治抹茶 100g", "quantity": 1, "price": 1620, "sku": "UJI-MATCHA-100"},
]

_DEFINITIONS: list[Event] = [
    Event(
        name="order.created",
        description="A customer placed an order; sent to the customer as the order confirmation.",
        description_ja="お客様が注文を確定したときにお客様へ送る、注文確認のメールです。",
        schema=_schema(
            "order.created",
            ["customer_name", "order_number", "items", "total", "currency"],
            {
                "customer_name": _NAME,
                "order_number": _ORDER_NUMBER,
                "ordered_at": _DATETIME,
                "items": _ITEMS,
                "subtotal": _AMOUNT,
                "shipping_fee": _AMOUNT,
                "tax": _AMOUNT,
                "total": _AMOUNT,
                "currency": _CURRENCY,
                "payment_method": {"type": "string", "maxLength": 100},
                "shipping_address": _TEXT,
                "order_url": _URL,
            },
        ),
        example={
            "customer_name": "山田 花子",
            "order_number": "A-20261127-0042",
            "ordered_at": "2026-11-27T14:30:00+09:00",
            "items": _ITEMS_EXAMPLE,
            "subtotal": 5580,
            "shipping_fee": 600,
            "tax": 0,
            "total": 6180,
            "currency": "JPY",
            "payment_method": "クレジットカード(VISA 末尾4242)",
            "shipping_address": "〒150-0001 東京都渋谷区神宮前1-2-3 グリーンハイツ201",
            "order_url": "https://shop.example.jp/orders/A-20261127-0042",
        },
    ),
    Event(
        name="order.shipped",
        description="The order left the warehouse; sent to the customer with the carrier and tracking number.",
        description_ja="商品を発送したときにお客様へ送るメールです。配送業者と追跡番号をお知らせします。",
        schema=_schema(
            "order.shipped",
            ["customer_name", "order_number", "carrier", "tracking_number"],
            {
                "customer_name": _NAME,
                "order_number": _ORDER_NUMBER,
                "carrier": {"type": "string", "minLength": 1, "maxLength": 100},
                "tracking_number": {"type": "string", "minLength": 1, "maxLength": 64},
                "tracking_url": _URL,
                "shipped_at": _DATETIME,
                "estimated_delivery": _DATE,
                "items": _ITEMS,
                "order_url": _URL,
            },
        ),
        example={
            "customer_name": "山田 花子",
            "order_number": "A-20261127-0042",
            "carrier": "ヤマト運輸",
            "tracking_number": "4321-5678-9012",
            "tracking_url": "https://toi.kuronekoyamato.co.jp/cgi-bin/tneko?number00=1&number01=432156789012",
            "shipped_at": "2026-11-28T10:05:00+09:00",
            "estimated_delivery": "2026-11-30",
            "items": _ITEMS_EXAMPLE,
            "order_url": "https://shop.example.jp/orders/A-20261127-0042",
        },
    ),
    Event(
        name="order.delivered",
        description="The carrier reported the order delivered; sent to the customer, with a review link.",
        description_ja="商品のお届けが完了したときにお客様へ送るメールです。レビューのお願いを添えられます。",
        schema=_schema(
            "order.delivered",
            ["customer_name", "order_number"],
            {
                "customer_name": _NAME,
                "order_number": _ORDER_NUMBER,
                "delivered_at": _DATETIME,
                "review_url": _URL,
                "order_url": _URL,
            },
        ),
        example={
            "customer_name": "山田 花子",
            "order_number": "A-20261127-0042",
            "delivered_at": "2026-11-30T15:12:00+09:00",
            "review_url": "https://shop.example.jp/orders/A-20261127-0042/review",
            "order_url": "https://shop.example.jp/orders/A-20261127-0042",
        },
    ),
    Event(
        name="order.cancelled",
        description="The order was cancelled; sent to the customer, with the refund if any.",
        description_ja="注文がキャンセルされたときにお客様へ送るメールです。返金がある場合は金額もお知らせします。",
        schema=_schema(
            "order.cancelled",
            ["customer_name", "order_number"],
            {
                "customer_name": _NAME,
                "order_number": _ORDER_NUMBER,
                "cancelled_at": _DATETIME,
                "reason": _TEXT,
                "refund_amount": _AMOUNT,
                "currency": _CURRENCY,
                "order_url": _URL,
            },
            dependentRequired={"refund_amount": ["currency"]},
        ),
        example={
            "customer_name": "山田 花子",
            "order_number": "A-20261127-0042",
            "cancelled_at": "2026-11-27T18:00:00+09:00",
            "reason": "お客様のご依頼によるキャンセル",
            "refund_amount": 6180,
            "currency": "JPY",
            "order_url": "https://shop.example.jp/orders/A-20261127-0042",
        },
    ),
    Event(
        name="refund.issued",
        description="A refund was issued for an order; sent to the customer.",
        description_ja="返金の手続きが完了したときにお客様へ送るメールです。",
        schema=_schema(
            "refund.issued",
            ["customer_name", "order_number", "amount", "currency"],
            {
                "customer_name": _NAME,
                "order_number": _ORDER_NUMBER,
                "amount": _AMOUNT,
                "currency": _CURRENCY,
                "refund_method": {"type": "string", "maxLength": 100},
                "reason": _TEXT,
                "issued_at": _DATETIME,
                "order_url": _URL,
            },
        ),
        example={
            "customer_name": "山田 花子",
            "order_number": "A-20261127-0042",
            "amount": 1980,
            "currency": "JPY",
            "refund_method": "ご購入時のクレジットカード",
            "reason": "商品破損のため(有田焼 マグカップ 1点)",
            "issued_at": "2026-12-02T11:00:00+09:00",
            "order_url": "https://shop.example.jp/orders/A-20261127-0042",
        },
    ),
    Event(
        name="vendor.approved",
        description="A vendor's application to sell on the marketplace was approved; sent to the vendor.",
        description_ja="出店申請が承認されたときに出店者へ送るメールです。",
        schema=_schema(
            "vendor.approved",
            ["vendor_name", "contact_name", "dashboard_url"],
            {
                "vendor_name": _NAME,
                "contact_name": _NAME,
                "dashboard_url": _URL,
                "approved_at": _DATETIME,
                "commission_rate": {"type": "number", "minimum": 0, "maximum": 100, "description": "percent"},
            },
        ),
        example={
            "vendor_name": "京都 茶舗 みどり屋",
            "contact_name": "佐藤 健一",
            "dashboard_url": "https://shop.example.jp/vendor/dashboard",
            "approved_at": "2026-11-20T09:00:00+09:00",
            "commission_rate": 10,
        },
    ),
    Event(
        name="vendor.order_received",
        description="A customer ordered a vendor's products; sent to the vendor so it can ship.",
        description_ja="出店者の商品に注文が入ったときに出店者へ送るメールです。",
        schema=_schema(
            "vendor.order_received",
            ["vendor_name", "order_number", "customer_name", "items", "total", "currency", "order_url"],
            {
                "vendor_name": _NAME,
                "contact_name": _NAME,
                "order_number": _ORDER_NUMBER,
                "customer_name": _NAME,
                "items": _ITEMS,
                "total": _AMOUNT,
                "currency": _CURRENCY,
                "ordered_at": _DATETIME,
                "ship_by": _DATE,
                "shipping_address": _TEXT,
                "order_url": _URL,
            },
        ),
        example={
            "vendor_name": "京都 茶舗 みどり屋",
            "contact_name": "佐藤 健一",
            "order_number": "A-20261127-0042",
            "customer_name": "山田 花子",
            "items": [{"name": "宇治抹茶 100g", "quantity": 3, "price": 1620, "sku": "UJI-MATCHA-100"}],
            "total": 4860,
            "currency": "JPY",
            "ordered_at": "2026-11-27T14:30:00+09:00",
            "ship_by": "2026-11-29",
            "shipping_address": "〒150-0001 東京都渋谷区神宮前1-2-3 グリーンハイツ201",
            "order_url": "https://shop.example.jp/vendor/orders/A-20261127-0042",
        },
    ),
    Event(
        name="payout.sent",
        description="A payout of a vendor's sales was sent to its bank account; sent to the vendor.",
        description_ja="売上金を出店者の口座へ振り込んだときに出店者へ送るメールです。",
        schema=_schema(
            "payout.sent",
            ["vendor_name", "payout_id", "amount", "currency"],
            {
                "vendor_name": _NAME,
                "contact_name": _NAME,
                "payout_id": {"type": "string", "minLength": 1, "maxLength": 64},
                "amount": _AMOUNT,
                "currency": _CURRENCY,
                "period_start": _DATE,
                "period_end": _DATE,
                "bank_account_last4": {"type": "string", "pattern": "^[0-9]{4}$"},
                "expected_arrival": _DATE,
                "dashboard_url": _URL,
            },
        ),
        example={
            "vendor_name": "京都 茶舗 みどり屋",
            "contact_name": "佐藤 健一",
            "payout_id": "PO-2026-11-0815",
            "amount": 128400,
            "currency": "JPY",
            "period_start": "2026-11-01",
            "period_end": "2026-11-15",
            "bank_account_last4": "6789",
            "expected_arrival": "2026-11-20",
            "dashboard_url": "https://shop.example.jp/vendor/payouts/PO-2026-11-0815",
        },
    ),
    Event(
        name="password.reset",
        description="A user asked to reset their password; sent with a single-use reset link.",
        description_ja="パスワードの再設定が申請されたときに送る、再設定用リンクのメールです。",
        schema=_schema(
            "password.reset",
            ["user_name", "reset_url", "expires_at"],
            {
                "user_name": _NAME,
                "reset_url": _URL,
                "expires_at": _DATETIME,
                "requested_at": _DATETIME,
                "ip_address": {"type": "string", "maxLength": 64},
            },
        ),
        example={
            "user_name": "山田 花子",
            "reset_url": "https://shop.example.jp/password/reset?token=3f9a1c7e5b2d4a8f",
            "expires_at": "2026-11-27T15:30:00+09:00",
            "requested_at": "2026-11-27T14:30:00+09:00",
            "ip_address": "203.0.113.24",
        },
    ),
    Event(
        name="account.invited",
        description="Someone invited a person to join an account; sent with the invitation link.",
        description_ja="アカウントへの招待を送るメールです。招待リンクと有効期限をお知らせします。",
        schema=_schema(
            "account.invited",
            ["invited_by", "invite_url", "expires_at"],
            {
                "invitee_name": _NAME,
                "invited_by": _NAME,
                "organization_name": _NAME,
                "role": {"type": "string", "maxLength": 100},
                "invite_url": _URL,
                "expires_at": _DATETIME,
            },
        ),
        example={
            "invitee_name": "鈴木 一郎",
            "invited_by": "佐藤 健一",
            "organization_name": "京都 茶舗 みどり屋",
            "role": "スタッフ",
            "invite_url": "https://shop.example.jp/invitations/9c2e7b14d0a5",
            "expires_at": "2026-12-04T23:59:00+09:00",
        },
    ),
]

EVENTS: dict[str, Event] = {event.name: event for event in _DEFINITIONS}

_VALIDATORS: dict[str, Draft202012Validator] = {
    name: Draft202012Validator(event.schema, format_checker=_FORMATS) for name, event in EVENTS.items()
}


def _fast_datetime(value: Any) -> bool:
    try:
        return bool(_is_datetime(value))
    except ValueError:
        return False


def _format_check(name: str) -> Callable[[Any], bool]:
    return lambda value: bool(_FORMATS.conforms(value, name))


#: The format checks of ``_FORMATS`` as plain predicates for the compiled validators: the two Letterhead defines
#: called directly, any other through the checker itself (the same answer, one call slower).
_FORMAT_PREDICATES: dict[str, Callable[[Any], bool]] = {
    **{name: _format_check(name) for name in _FORMATS.checkers},
    "uri": _is_uri,
    "date-time": _fast_datetime,
}


def _compiled(schema: dict[str, Any]) -> Callable[[Any], bool] | None:
    try:
        return compile_schema(schema, _FORMAT_PREDICATES)
    except Unsupported:
        return None  # validated by jsonschema alone: slower, never wrong


#: Compiled validators (see validate.py): ~3 µs instead of ~200 µs (jsonschema) for a valid order; accepting
#: 1,000 notifications per batch request spent most of its time validating. They only answer "valid?"; when
#: one says no, the jsonschema validator (the authority) lists every bad field, and its verdict wins.
_FAST_VALIDATORS: dict[str, Callable[[Any], bool] | None] = {
    name: _compiled(event.schema) for name, event in EVENTS.items()
}


def get_event(name: str) -> Event:
    try:
        return EVENTS[name]
    except (KeyError, TypeError):
        raise NotFound(
            f"unknown event {name!r}; known events: {', '.join(sorted(EVENTS))}",
            known_events=sorted(EVENTS),
        ) from None


_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_MAX_MESSAGE = 300


def _field(path: Iterator[Any] | Any, extra: str | None = None) -> str:
    out = "data"
    for part in [*path, *([extra] if extra is not None else [])]:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _IDENTIFIER.match(str(part)):
            out += f".{part}"
        else:
            out += f"[{str(part)!r}]"
    return out


def _describe(error: ValidationError) -> Iterator[tuple[str, str]]:
    path = list(error.absolute_path)
    instance = error.instance
    if error.validator == "required" and isinstance(instance, Mapping):
        for name in error.validator_value:
            if name not in instance:
                yield _field(path, name), "is required"
        return
    if error.validator == "dependentRequired" and isinstance(instance, Mapping):
        for prop, needs in error.validator_value.items():
            if prop in instance:
                for name in needs:
                    if name not in instance:
                        yield _field(path, name), f"is required when {prop!r} is present"
        return
    message = error.message
    if len(message) > _MAX_MESSAGE:
        message = message[: _MAX_MESSAGE - 1] + "…"
    yield _field(path), message


def validate_data(event: Event, data: Any) -> None:
    """Raise :class:`InvalidInput` listing every field of ``data`` that breaks ``event``'s schema."""
    fast = _FAST_VALIDATORS.get(event.name) if EVENTS.get(event.name) is event else None
    if fast is not None and fast(data):
        return
    # Not certainly valid: the full validator below says what is wrong (or that nothing is).
    validator = _VALIDATORS.get(event.name)
    if validator is None or EVENTS.get(event.name) is not event:
        validator = Draft202012Validator(event.schema, format_checker=_FORMATS)
    errors: list[dict[str, Any]] = []
    seen: set[tuple[str, str]] = set()
    for error in sorted(validator.iter_errors(data), key=lambda e: [str(p) for p in e.absolute_path]):
        for field, message in _describe(error):
            if (field, message) not in seen:
                seen.add((field, message))
                errors.append({"field": field, "message": message})
    if errors:
        count = len(errors)
        raise InvalidInput(
            f"data does not match the schema of event {event.name!r} "
            f"({count} error{'s' if count != 1 else ''})",
            errors=errors,
        )
