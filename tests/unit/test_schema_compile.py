"""The compiled schema predicates (notifications/validate.py) against jsonschema, the authority: on a corpus of
every event's example mutated field by field (wrong types, bounds, formats, nesting), a predicate never accepts
what jsonschema refuses, and accepts what it accepts except in the documented stricter corners."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from letterhead.notifications.events import _FAST_VALIDATORS, _FORMAT_PREDICATES, _FORMATS, EVENTS, validate_data
from letterhead.notifications.validate import Unsupported, compile_schema

# Values every field is set to in turn: other types, boundaries, and strings the formats and patterns refuse.
REPLACEMENTS: list[Any] = [
    None, True, False, 0, 1, -1, 0.5, -0.5, 1.0, 2.0, 10**30, float("nan"), "", "a", "x" * 64, "x" * 65,
    "x" * 200, "x" * 201, "x" * 2000, "x" * 2001, "JPY", "jpy", "JPYX", "JPY\n", "1234", "12345",
    "https://shop.example.jp/x", "http://x", "https://", "javascript:alert(1)", "https://a b", "ftp://x/y",
    "https://" + "a" * 2041, "https://" + "a" * 2040, "2026-11-27T14:30:00+09:00", "2026-11-27T14:30:00",
    "2026-13-27T14:30:00Z", "2026-11-27t14:30:00z", "2026-11-27", "2026-02-30", "山田", [], [1], {}, {"a": 1},
]
ITEM_REPLACEMENTS: list[Any] = [None, "x", 0, 1, 1.0, -1, 0.0, 2.5, "", "x" * 201, True, [], {}]


def mutations(example: dict[str, Any]) -> Iterator[Any]:
    yield copy.deepcopy(example)
    yield None
    yield []
    yield "text"
    yield {}
    yield dict(example, extra_field={"anything": [1, 2]})  # additional properties are allowed
    for key in example:
        missing = copy.deepcopy(example)
        del missing[key]
        yield missing
        for value in REPLACEMENTS:
            changed = copy.deepcopy(example)
            changed[key] = value
            yield changed
    for key, value in example.items():
        if isinstance(value, list) and value and isinstance(value[0], dict):
            for inner in value[0]:
                for replacement in ITEM_REPLACEMENTS:
                    changed = copy.deepcopy(example)
                    changed[key][0][inner] = replacement
                    yield changed
                dropped = copy.deepcopy(example)
                del dropped[key][0][inner]
                yield dropped
            for bad_list in ([], [1], ["x"], [value[0]] * 500, [value[0]] * 501, [None, value[0]]):
                changed = copy.deepcopy(example)
                changed[key] = bad_list
                yield changed


def stricter_corner(sample: Any) -> bool:
    """Values the predicates leave to jsonschema on purpose: integral floats (``1.0`` is an integer there) and
    NaN (passes ``minimum`` there)."""
    if isinstance(sample, float):
        return sample.is_integer() or sample != sample
    if isinstance(sample, dict):
        return any(stricter_corner(v) for v in sample.values())
    if isinstance(sample, list):
        return any(stricter_corner(v) for v in sample)
    return False


@pytest.mark.parametrize("name", sorted(EVENTS))
def test_compiled_predicate_agrees_with_jsonschema(name: str) -> None:
    event = EVENTS[name]
    fast = _FAST_VALIDATORS[name]
    assert fast is not None
    full = Draft202012Validator(event.schema, format_checker=_FORMATS)
    checked = accepted = 0
    for sample in mutations(event.example):
        full_ok = full.is_valid(sample)
        fast_ok = fast(sample)
        assert not (fast_ok and not full_ok), sample  # never more lenient
        if not stricter_corner(sample):
            assert fast_ok is full_ok, sample
        checked += 1
        accepted += full_ok
    assert checked > 200 and 0 < accepted < checked


def test_dependent_required_is_compiled() -> None:
    fast = _FAST_VALIDATORS["order.cancelled"]
    assert fast is not None
    example = dict(EVENTS["order.cancelled"].example)
    assert fast(example)
    del example["currency"]
    assert not fast(example)
    del example["refund_amount"]
    assert fast(example)


def test_integral_float_goes_to_jsonschema_and_is_accepted() -> None:
    # The predicate says no; the full validator finds nothing wrong, so the data is accepted all the same.
    data = copy.deepcopy(EVENTS["order.created"].example)
    data["items"][0]["quantity"] = 2.0
    fast = _FAST_VALIDATORS["order.created"]
    assert fast is not None and not fast(data)
    validate_data(EVENTS["order.created"], data)


def test_unsupported_keywords_are_refused_not_ignored() -> None:
    for schema in (
        {"type": "object", "additionalProperties": False},
        {"type": "string", "enum": ["a"]},
        {"type": ["string", "null"]},
        {"anyOf": [{"type": "string"}]},
        {"type": "array", "prefixItems": [{"type": "string"}]},
        {"type": "string", "format": "no-such-format"},
        {"type": "string", "minimum": 3},  # a numeric keyword on a string schema
    ):
        with pytest.raises(Unsupported):
            compile_schema(schema, _FORMAT_PREDICATES)


def test_generic_keywords() -> None:
    check = compile_schema(
        {"type": "object", "properties": {
            "n": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 10},
            "i": {"type": "integer", "maximum": 3},
            "b": {"type": "boolean"},
            "z": {"type": "null"},
            "any": {},
            "d": {"type": "string", "format": "date"},
        }},
        _FORMAT_PREDICATES,
    )
    assert check({"n": 5, "i": 3, "b": False, "z": None, "any": [1], "d": "2026-11-27"})
    for bad in ({"n": 0}, {"n": 10}, {"i": 4}, {"i": True}, {"b": 0}, {"z": 0}, {"d": "2026-02-30"}, {"d": 3}):
        assert not check(bad), bad
    assert check({})
