"""JSON Schemas compiled into plain Python predicates: ``check(data) -> bool``.

Accepting a batch of 1,000 notifications validates 1,000 payloads, and a generic validator walks the schema for
each one (jsonschema ~200 µs, fastjsonschema's generated code ~14 µs for an ``order.created`` order: it tests
every keyword against every type at run time and raises to say no). Here each schema becomes one straight-line
function that knows the types in advance (``type(v) is str and 1 <= len(v) <= 200``): ~3 µs for the same order.

The predicate only answers "certainly valid?". It is never more lenient than jsonschema (draft 2020-12, with the
format checks it is given) and may be stricter in corners where being exact would cost time on every call (an
integer written as ``1.0``, subclasses of ``str``/``dict``/``list``); a caller runs the full validator when the
predicate says no, and the full validator's verdict (and its wording of each error) wins.

Only the keywords Letterhead's schemas use are compiled; :func:`compile_schema` raises :class:`Unsupported`
for anything else rather than guess, so a schema with a new keyword goes to the full validator until this
module learns it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, cast

__all__ = ["Unsupported", "compile_schema"]


class Unsupported(ValueError):
    """The schema uses a keyword (or a form of one) this compiler does not translate."""


#: Keywords that never change the verdict.
_ANNOTATIONS = frozenset(("$schema", "$id", "$comment", "title", "description", "examples", "default",
                          "deprecated", "readOnly", "writeOnly"))

#: jsonschema's types as exact Python types. Exact: a bool is not an integer there either, and a subclass of
#: dict or str is rare enough to leave to the full validator.
_TYPE_TESTS = {
    "string": "type({v}) is str",
    "integer": "type({v}) is int",  # 1.0 is an integer to jsonschema too: the full validator decides that one
    "number": "(type({v}) is int or type({v}) is float)",
    "object": "type({v}) is dict",
    "array": "type({v}) is list",
    "boolean": "type({v}) is bool",
    "null": "{v} is None",
}

_KEYWORDS_BY_TYPE = {
    "string": {"minLength", "maxLength", "pattern", "format"},
    "integer": {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"},
    "number": {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"},
    "object": {"properties", "required", "dependentRequired"},
    "array": {"items", "minItems", "maxItems"},
    "boolean": set(),
    "null": set(),
}


class _Compiler:
    def __init__(self, formats: Mapping[str, Callable[[Any], bool]]) -> None:
        self.formats = formats
        self.names: dict[str, Any] = {}  # globals of the generated code: regexes, format checks
        self.lines: list[str] = []
        self.counter = 0

    def _var(self, stem: str) -> str:
        self.counter += 1
        return f"{stem}{self.counter}"

    def _const(self, stem: str, value: Any) -> str:
        name = self._var(f"_{stem}")
        self.names[name] = value
        return name

    def emit(self, indent: int, line: str) -> None:
        self.lines.append("    " * indent + line)

    def fail_unless(self, indent: int, condition: str) -> None:
        self.emit(indent, f"if not ({condition}): return False")

    def number(self, value: Any, keyword: str) -> str:
        if type(value) not in (int, float) or value != value or value in (float("inf"), float("-inf")):
            raise Unsupported(f"{keyword} must be a finite number")
        return repr(value)

    def count(self, value: Any, keyword: str) -> int:
        if type(value) is not int or value < 0:
            raise Unsupported(f"{keyword} must be a non-negative integer")
        return value

    def schema(self, schema: Any, v: str, indent: int) -> None:
        """Lines that ``return False`` unless the value in variable ``v`` is valid against ``schema``."""
        if schema is True or schema == {}:
            return
        if type(schema) is not dict:
            raise Unsupported(f"schema {schema!r}")
        kind = schema.get("type")
        if not isinstance(kind, str) or kind not in _TYPE_TESTS:
            raise Unsupported(f"type {kind!r}: only a single type is compiled")
        allowed = _KEYWORDS_BY_TYPE[kind] | _ANNOTATIONS | {"type"}
        unknown = set(schema) - allowed
        if unknown:
            raise Unsupported(f"keywords {sorted(unknown)} (with type {kind!r})")
        # One condition per value, the type test first: ``and`` stops there for a value of another type.
        conditions = [_TYPE_TESTS[kind].format(v=v)]
        if kind == "string":
            conditions += self.string(schema, v)
        elif kind in ("integer", "number"):
            conditions += self.numeric(schema, v)
        elif kind == "array":
            conditions += self.sized(schema, v, "minItems", "maxItems")
        self.fail_unless(indent, " and ".join(conditions))
        if kind == "object":
            self.object(schema, v, indent)
        elif kind == "array":
            self.items(schema, v, indent)

    def sized(self, schema: dict[str, Any], v: str, low_key: str, high_key: str) -> list[str]:
        low, high = schema.get(low_key), schema.get(high_key)
        if low is None and high is None:
            return []
        low_part = "" if low is None else f"{self.count(low, low_key)} <= "
        high_part = "" if high is None else f" <= {self.count(high, high_key)}"
        return [f"{low_part}len({v}){high_part}"]

    def string(self, schema: dict[str, Any], v: str) -> list[str]:
        # jsonschema counts code points (len of a str), as here.
        conditions = self.sized(schema, v, "minLength", "maxLength")
        if "pattern" in schema:
            pattern = schema["pattern"]
            if not isinstance(pattern, str):
                raise Unsupported("pattern must be a string")
            # re.search, as jsonschema does: the pattern is not anchored unless it says so.
            conditions.append(f"{self._const('re', re.compile(pattern).search)}({v}) is not None")
        if "format" in schema:
            check = self.formats.get(schema["format"])
            if check is None:
                raise Unsupported(f"format {schema['format']!r} has no check")
            conditions.append(f"{self._const('fmt', check)}({v})")
        return conditions

    def numeric(self, schema: dict[str, Any], v: str) -> list[str]:
        return [
            f"{v} {op} {self.number(schema[keyword], keyword)}"
            for keyword, op in (("minimum", ">="), ("maximum", "<="), ("exclusiveMinimum", ">"),
                                ("exclusiveMaximum", "<"))
            if keyword in schema
        ]

    def object(self, schema: dict[str, Any], v: str, indent: int) -> None:
        properties = schema.get("properties", {})
        required = schema.get("required", [])
        dependent = schema.get("dependentRequired", {})
        if type(properties) is not dict or type(required) is not list or type(dependent) is not dict:
            raise Unsupported("properties/required/dependentRequired of an unexpected shape")
        names = [*required, *properties, *dependent]
        for needs in dependent.values():
            if type(needs) is not list:
                raise Unsupported("dependentRequired values must be lists")
            names += needs
        if not all(isinstance(name, str) for name in names):
            raise Unsupported("property names must be strings")
        if required:
            self.fail_unless(indent, " and ".join(f"{name!r} in {v}" for name in required))
        for prop, needs in dependent.items():
            if needs:
                present = " and ".join(f"{name!r} in {v}" for name in needs)
                self.emit(indent, f"if {prop!r} in {v} and not ({present}): return False")
        for name, sub in properties.items():
            if sub is True or sub == {}:
                continue
            p = self._var("p")
            if name in required:  # known to be there (checked above)
                self.emit(indent, f"{p} = {v}[{name!r}]")
                self.schema(sub, p, indent)
            else:
                self.emit(indent, f"{p} = {v}.get({name!r}, _MISSING)")
                self.emit(indent, f"if {p} is not _MISSING:")
                self.schema(sub, p, indent + 1)

    def items(self, schema: dict[str, Any], v: str, indent: int) -> None:
        if "items" in schema and schema["items"] is not True and schema["items"] != {}:
            if type(schema["items"]) is not dict:
                raise Unsupported("items must be one schema (draft 2020-12)")
            item = self._var("i")
            self.emit(indent, f"for {item} in {v}:")
            self.schema(schema["items"], item, indent + 1)


def compile_schema(
    schema: Mapping[str, Any], formats: Mapping[str, Callable[[Any], bool]]
) -> Callable[[Any], bool]:
    """A predicate that is True only for instances valid against ``schema``.

    ``formats`` maps each ``format`` the schema names to its check (a string in, a bool out; it must not raise),
    the same checks the full validator's format checker uses. Raises :class:`Unsupported` for a schema this
    module does not translate.
    """
    compiler = _Compiler(formats)
    compiler.schema(dict(schema), "data", 1)
    source = "\n".join(["def check(data):", *compiler.lines, "    return True", ""])
    namespace: dict[str, Any] = {"_MISSING": object(), **compiler.names}
    # Source generated above from the schema (names and numbers via repr), not from request data.
    exec(compile(source, f"<schema {schema.get('title', '')!s}>", "exec"), namespace)
    check = cast(Callable[[Any], bool], namespace["check"])
    check.__doc__ = source  # what was generated, for whoever debugs it
    return check
