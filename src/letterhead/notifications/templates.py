"""Tenant templates: sandboxed Jinja2, compiled once, rendered cheaply per message.

Why it is shaped like this:

* **Sandbox.** Templates are written by tenants, so they render in an ``ImmutableSandboxedEnvironment`` (no
  ``__class__``/``__globals__``, no ``str.format`` escapes, no mutation of the data) with ``StrictUndefined`` (a
  typo is an error at save time, not a blank in a customer's mail). The sandbox stops attribute escapes but not
  resource exhaustion, so Letterhead adds limits: ``range`` ≤ 1,000 items, string/list multiplication,
  ``**``, ``%``-format widths, ``str.center``-style padding, ``replace``/``join`` results and ``~`` concatenations
  are capped before they allocate; every loop iteration and every call checks a render deadline (200 ms of the
  rendering thread's CPU time, so a busy host does not trip it); the output size is checked after every chunk the
  render generator yields and cut off at 1 MiB. ``include``/``import``/``extends`` are refused at compile time
  (there is no loader: a tenant template is self-contained).

* **Work moves to compile time.** The DESIGN performance notes ask for ≪ 200 µs per message. CSS inlining
  (css-inline, ~1 ms) happens once on the *template source*, and when a template has no text part, a text
  *template* is derived from the HTML template once. Per message only Jinja runs, and it runs code from
  Letterhead's own code generator (:class:`_CodeGenerator`: the same sandbox checks, with the common cases, a
  key of a JSON object, escaping a string, ``is defined``, inlined, and output yielded in chunks of several values
  instead of one by one). The tenant and platform parts of the context are built once per tenant, amounts and
  dates are formatted once per value. An order confirmation (subject, HTML and text) renders in ~40 µs.

  Inlining the source needs care: an HTML5 parser reorders what it does not understand (``{% for %}`` between
  ``<tr>`` rows is "foster-parented" out of the table, ``<`` in ``{% if a < b %}`` becomes ``&lt;``). So the
  source is never re-serialised: Jinja tags are swapped for private-use placeholders, every start tag gets a
  numbered marker attribute, css-inline computes the styles of that marked copy, and the computed ``style``
  attributes are written back into the *original* source at the marked tags. ``<style>`` blocks are replaced by
  the same number of newlines (``@media`` rules are kept), so line numbers in errors still match what the tenant
  wrote.

* **Cache.** Compiled templates are kept in a bounded LRU keyed by the content of the three parts.
"""

from __future__ import annotations

import re
import string
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from functools import lru_cache
from html.parser import HTMLParser
from importlib import resources
from time import thread_time
from types import TracebackType
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import css_inline
import jinja2.tests
import markupsafe
from jinja2 import StrictUndefined, nodes, pass_context, pass_environment, pass_eval_context
from jinja2.compiler import CodeGenerator, Frame, optimizeconst
from jinja2.environment import Template
from jinja2.exceptions import SecurityError, TemplateSyntaxError
from jinja2.filters import do_center, do_format, do_indent, do_replace, do_wordwrap, sync_do_join
from jinja2.idtracking import VAR_LOAD_ALIAS, VAR_LOAD_PARAMETER, VAR_LOAD_RESOLVE, VAR_LOAD_UNDEFINED
from jinja2.nodes import EvalContext
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.visitor import NodeTransformer

from letterhead.errors import NotFound, TemplateError
from letterhead.notifications import budget
from letterhead.notifications.budget import MAX_RENDER_SECONDS, Budget, LimitExceeded, charge

__all__ = [
    "MAX_RANGE",
    "MAX_RENDERED_CHARS",
    "MAX_RENDER_SECONDS",
    "MAX_SOURCE_BYTES",
    "CompiledTemplate",
    "Rendered",
    "TemplateSource",
    "build_context",
    "check_source",
    "compile_source",
    "default_source",
    "html_to_text",
    "render_many",
    "sample_context",
]

MAX_SOURCE_BYTES = 256 * 1024
MAX_RENDERED_CHARS = 1024 * 1024
MAX_RANGE = 1000
#: Largest list/tuple a template may build by multiplication.
MAX_SEQUENCE = 10_000
#: Largest width in a format spec (``"{:>N}"``, ``"%Nd"``) or padding call (``center``, ``ljust``).
MAX_WIDTH = 10_000
#: Largest integer a template may compute (bits); beyond that ``**`` and ``*`` are refused before computing.
MAX_INT_BITS = 65_536
CACHE_SIZE = 512
DEFAULT_BRAND_COLOR = "#2563eb"
DEFAULT_PLATFORM_NAME = "Letterhead"
LOCALES = ("ja", "en")


@dataclass(frozen=True)
class TemplateSource:
    subject: str
    html: str
    text: str | None = None


@dataclass(frozen=True)
class Rendered:
    subject: str
    html: str
    text: str


# ----------------------------------------------------------------------------------------------------
# Limits enforced inside the sandbox.

# The per-value caps below refuse one oversized value; the message's budget (notifications/budget.py: memory of
# everything the template builds, loop iterations, CPU time) refuses many values that are each under the caps.
_LimitExceeded = LimitExceeded
_check_deadline = budget.check_deadline


def _check_size(value: Any) -> Any:
    if isinstance(value, str) and len(value) > MAX_RENDERED_CHARS:
        raise _LimitExceeded(f"a string longer than {MAX_RENDERED_CHARS} characters")
    if isinstance(value, (list, tuple)) and len(value) > MAX_SEQUENCE:
        raise _LimitExceeded(f"a list longer than {MAX_SEQUENCE} items")
    return value


def _check_width(width: Any) -> None:
    if isinstance(width, int) and width > MAX_WIDTH:
        raise _LimitExceeded(f"a width larger than {MAX_WIDTH}")


_PERCENT_SPEC = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?")


def _check_percent_format(fmt: str) -> None:
    for match in _PERCENT_SPEC.finditer(fmt):
        for group in match.groups():
            if group == "*":
                raise _LimitExceeded("'*' widths are not allowed in % formatting")
            if group is not None:
                _check_width(int(group))


_DIGITS = re.compile(r"\d+")


def _check_brace_format(fmt: str) -> None:
    try:
        parsed = list(string.Formatter().parse(fmt))
    except ValueError:
        return  # str.format will raise the same error itself
    for _literal, _field, spec, _conversion in parsed:
        if spec:
            if "{" in spec:
                raise _LimitExceeded("nested fields in a format spec are not allowed")
            for digits in _DIGITS.findall(spec):
                _check_width(int(digits))


def _check_mul(left: Any, right: Any) -> None:
    for seq, count in ((left, right), (right, left)):
        if isinstance(seq, (str, list, tuple)) and isinstance(count, int):
            limit = MAX_RENDERED_CHARS if isinstance(seq, str) else MAX_SEQUENCE
            if len(seq) * count > limit:
                what = "characters in a string" if isinstance(seq, str) else "items in a list"
                raise _LimitExceeded(f"{len(seq) * count} {what} (the limit is {limit})")
            width = budget.char_bytes(seq) if isinstance(seq, str) else 8
            budget.current().afford(len(seq) * max(count, 0) * width)
            return
    if (
        isinstance(left, int)
        and isinstance(right, int)
        and left.bit_length() + right.bit_length() > MAX_INT_BITS
    ):
        raise _LimitExceeded("an integer that large")


def _check_pow(left: Any, right: Any) -> None:
    if (
        isinstance(left, int)
        and isinstance(right, int)
        and right > 0
        and abs(left).bit_length() * right > MAX_INT_BITS
        and abs(left) > 1
    ):
        raise _LimitExceeded("an integer that large")


def _safe_range(*args: int) -> range:
    rng = range(*args)
    if len(rng) > MAX_RANGE:
        raise _LimitExceeded(f"range() is limited to {MAX_RANGE} items")
    return rng


# Builtin str methods that can amplify their input are checked before they run.
_STR_PADDING = frozenset({"center", "ljust", "rjust", "zfill"})
_STR_REFUSED = frozenset({"translate", "maketrans", "expandtabs", "encode"})


def _replace_size(s: str, old: str, new: str, count: Any) -> int:
    hits = s.count(old) if old else len(s) + 1
    if isinstance(count, int) and count >= 0:
        hits = min(hits, count)
    return len(s) + hits * (len(new) - len(old))


def _check_str_method(obj: str, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    if name in _STR_REFUSED:
        raise SecurityError(f"str.{name}() is not available in templates")
    args = budget.check_str_method(obj, name, args, kwargs)
    if name in _STR_PADDING and args:
        _check_width(args[0])
    elif name == "replace" and len(args) >= 2 and isinstance(args[0], str) and isinstance(args[1], str):
        count = args[2] if len(args) > 2 else kwargs.get("count", -1)
        if _replace_size(obj, args[0], args[1], count) > MAX_RENDERED_CHARS:
            raise _LimitExceeded(f"a string longer than {MAX_RENDERED_CHARS} characters")
    elif name == "join" and args:
        items = list(args[0])
        if len(obj) * max(len(items) - 1, 0) > MAX_RENDERED_CHARS:
            raise _LimitExceeded(f"a string longer than {MAX_RENDERED_CHARS} characters")
        return (items, *args[1:])
    return args


# Builtin filters that can amplify their input, wrapped with the same checks.


@pass_eval_context
def _filter_join(eval_ctx: EvalContext, value: Iterable[Any], d: str = "", attribute: Any = None) -> str:
    current = budget.current()
    items = list(current.iterate(value))
    if len(str(d)) * max(len(items) - 1, 0) > MAX_RENDERED_CHARS:
        raise _LimitExceeded(f"a string longer than {MAX_RENDERED_CHARS} characters")
    budget.join_size(current, items, str(d))
    return _check_size(sync_do_join(eval_ctx, items, d, attribute))  # type: ignore[no-any-return]


@pass_eval_context
def _filter_replace(eval_ctx: EvalContext, s: str, old: str, new: str, count: int | None = None) -> str:
    if _replace_size(str(s), str(old), str(new), count) > MAX_RENDERED_CHARS:
        raise _LimitExceeded(f"a string longer than {MAX_RENDERED_CHARS} characters")
    return do_replace(eval_ctx, s, old, new, count)


def _filter_center(value: str, width: int = 80) -> str:
    _check_width(width)
    return do_center(value, width)


def _filter_indent(s: str, width: int | str = 4, first: bool = False, blank: bool = False) -> str:
    per_line = len(width) if isinstance(width, str) else int(width)
    if len(str(s)) + (str(s).count("\n") + 1) * per_line > MAX_RENDERED_CHARS:
        raise _LimitExceeded(f"a string longer than {MAX_RENDERED_CHARS} characters")
    return do_indent(s, width, first, blank)


@pass_environment
def _filter_wordwrap(
    environment: Any,
    s: str,
    width: int = 79,
    break_long_words: bool = True,
    wrapstring: str | None = None,
    break_on_hyphens: bool = True,
) -> str:
    breaks = len(str(s)) // max(int(width), 1) + 1
    if len(str(s)) + breaks * len(wrapstring or "\n") > MAX_RENDERED_CHARS:
        raise _LimitExceeded(f"a string longer than {MAX_RENDERED_CHARS} characters")
    return do_wordwrap(environment, s, width, break_long_words, wrapstring, break_on_hyphens)


def _filter_format(value: str, *args: Any, **kwargs: Any) -> str:
    _check_percent_format(str(value))
    return do_format(value, *args, **kwargs)


def _filter_slice(value: Any, slices: int, fill_with: Any = None) -> Iterator[list[Any]]:
    if int(slices) > MAX_RANGE:
        raise _LimitExceeded(f"slice() is limited to {MAX_RANGE} slices")
    from jinja2.filters import sync_do_slice

    return sync_do_slice(value, slices, fill_with)


def _filter_batch(value: Any, linecount: int, fill_with: Any = None) -> Iterator[list[Any]]:
    if int(linecount) > MAX_SEQUENCE:
        raise _LimitExceeded(f"batch() is limited to {MAX_SEQUENCE} items per batch")
    from jinja2.filters import do_batch

    return do_batch(value, linecount, fill_with)


# ----------------------------------------------------------------------------------------------------
# Helper filters: money, date, datetime (per locale, in the tenant's time zone).

_ZERO_DECIMAL = frozenset({"JPY", "KRW", "VND", "CLP", "ISK", "UGX", "PYG", "XAF", "XOF"})
_SYMBOLS = {
    "JPY": "¥",
    "USD": "$",
    "EUR": "€",
    "GBP": "£",
    "KRW": "₩",
    "CNY": "CN¥",
    "TWD": "NT$",
    "HKD": "HK$",
    "SGD": "S$",
    "AUD": "A$",
    "CAD": "CA$",
    "INR": "₹",
}
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


_CACHED_AMOUNTS = (int, float, str)


def format_money(amount: Any, currency: str, locale: str = "en") -> str:
    """``¥1,980`` / ``$12.50`` / ``CHF 12.50``; amounts are rounded half-up to the currency's minor unit."""
    if type(amount) in _CACHED_AMOUNTS and type(currency) is str:
        return _format_money_cached(amount, currency, locale)  # prices repeat across messages
    return _format_money(amount, currency, locale)


def _format_money(amount: Any, currency: str, locale: str) -> str:
    try:
        value = amount if isinstance(amount, Decimal) else Decimal(str(amount))
    except InvalidOperation:
        raise ValueError(f"money: {amount!r} is not a number") from None
    code = str(currency).upper()
    places = 0 if code in _ZERO_DECIMAL else 2
    value = value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    sign = "-" if value < 0 else ""
    number = f"{abs(value):,.{places}f}"
    symbol = _SYMBOLS.get(code)
    if symbol is None:
        return f"{sign}{code} {number}"
    return f"{sign}{symbol}{number}"


# typed: 1, 1.0 and True are equal keys to lru_cache, and a large float need not format like the int it equals.
_format_money_cached = lru_cache(maxsize=4096, typed=True)(_format_money)


@lru_cache(maxsize=64)
def _zone(name: str | None) -> ZoneInfo | None:
    if not name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def _parse_when(value: Any) -> date | datetime:
    if isinstance(value, (date, datetime)):
        return value
    if isinstance(value, str):
        text = value.strip()
        if len(text) == 10:
            return date.fromisoformat(text)
        return datetime.fromisoformat(text.replace("z", "Z"))
    raise ValueError(f"{value!r} is not a date")


def _in_zone(value: date | datetime, tz_name: str | None) -> date | datetime:
    if isinstance(value, datetime) and value.tzinfo is not None:
        zone = _zone(tz_name)
        if zone is not None:
            return value.astimezone(zone)
    return value


def format_date(value: Any, locale: str = "en", tz_name: str | None = None) -> str:
    """``2026年11月27日`` / ``Nov 27, 2026``."""
    when = _in_zone(_parse_when(value), tz_name)
    if locale == "ja":
        return f"{when.year}年{when.month}月{when.day}日"
    return f"{_MONTHS[when.month - 1]} {when.day}, {when.year}"


def format_datetime(value: Any, locale: str = "en", tz_name: str | None = None) -> str:
    """``2026年11月27日 14:30 JST`` / ``Nov 27, 2026, 2:30 PM JST`` (in the tenant's time zone when known)."""
    when = _in_zone(_parse_when(value), tz_name)
    if not isinstance(when, datetime):
        return format_date(when, locale)
    zone = when.tzname() if when.tzinfo is not None else None
    suffix = f" {zone}" if zone else ""
    if locale == "ja":
        return f"{when.year}年{when.month}月{when.day}日 {when.hour}:{when.minute:02d}{suffix}"
    hour = when.hour % 12 or 12
    half = "AM" if when.hour < 12 else "PM"
    return f"{_MONTHS[when.month - 1]} {when.day}, {when.year}, {hour}:{when.minute:02d} {half}{suffix}"


def _lookup(context: Context, key: str, default: Any = None) -> Any:
    """``context.get(key, default)`` without its three method calls (a top-level ``{% set %}`` wins, as there)."""
    assigned = context.vars
    if key in assigned:
        return assigned[key]
    return context.parent.get(key, default)


def _context_tz(context: Context) -> str | None:
    tenant = _lookup(context, "tenant")
    if type(tenant) is dict or isinstance(tenant, Mapping):
        tz = tenant.get("timezone")
        return tz if isinstance(tz, str) else None
    return None


# What the filters formatted, by (filter, type, value, currency/locale/zone): a message has a dozen amounts, each
# in the HTML and the text part, and prices and times recur across messages. A bound, not an LRU: when full it is
# emptied (a miss costs a few µs). The type is part of the key: 1, 1.0 and True are equal keys.
_FORMATTED: dict[tuple[Any, ...], str] = {}
_FORMATTED_MAX = 8192


def _remember(key: tuple[Any, ...], text: str) -> str:
    if len(_FORMATTED) >= _FORMATTED_MAX:
        _FORMATTED.clear()
    _FORMATTED[key] = text
    return text


@pass_context
def _filter_money(context: Context, amount: Any, currency: Any = None) -> str:
    assigned = context.vars  # _lookup, inlined
    if currency is None:
        currency = assigned["currency"] if "currency" in assigned else context.parent.get("currency")
    locale = assigned["locale"] if "locale" in assigned else context.parent.get("locale", "en")
    key = ("money", type(amount), amount, currency, locale)
    try:
        return _FORMATTED[key]
    except (KeyError, TypeError):  # TypeError: an unhashable value
        pass
    if not isinstance(currency, str):
        raise ValueError("money: no currency given and no 'currency' in the data")
    text = format_money(amount, currency, str(locale))
    if type(amount) in _CACHED_AMOUNTS and type(currency) is str and type(locale) is str:
        _remember(key, text)
    return text


def _formatted(kind: str, format_: Callable[[Any, str, str | None], str], context: Context, value: Any) -> str:
    """``format_(value, locale, tz)``; text values (as stored JSON gives them) cached by kind, locale and zone."""
    locale = str(_lookup(context, "locale", "en"))
    tz = _context_tz(context)
    if type(value) is not str:
        return format_(value, locale, tz)
    key = (kind, value, locale, tz)
    text = _FORMATTED.get(key)
    return _remember(key, format_(value, locale, tz)) if text is None else text


@pass_context
def _filter_date(context: Context, value: Any) -> str:
    return _formatted("date", format_date, context, value)


@pass_context
def _filter_datetime(context: Context, value: Any) -> str:
    return _formatted("datetime", format_datetime, context, value)


# ----------------------------------------------------------------------------------------------------
# The sandboxed environment.


_DICT_ATTRIBUTES = frozenset(dir(dict))


_GUARDS = frozenset({"lh_guard_iter", "lh_guard_str"})
_escape_inner: Callable[[str], str] = getattr(markupsafe, "_escape_inner", lambda s: str(markupsafe.escape(s)))


def _lh_escape(value: Any) -> str:
    """``markupsafe.escape`` for output nodes, without building a ``Markup`` the output join discards anyway."""
    if type(value) is str:
        return _escape_inner(value)
    if type(value) is int:
        return str(value)  # digits and a sign: nothing to escape
    budget.afford_text(value, 5)  # a list that shares one string many times prints as all of its copies
    return charge(markupsafe.escape(value))


def _lh_str(value: Any) -> str:
    """``str`` for output nodes and ``~`` operands of the text templates, charged as :func:`_lh_escape`."""
    if type(value) is str:
        return value
    if type(value) is not int:
        budget.afford_text(value)
    return charge(str(value))


def _lh_text(value: Any) -> Any:
    """A ``~`` operand, refused before ``str()`` when its text would not fit the budget."""
    if type(value) is not str and type(value) is not int:
        budget.afford_text(value, 5)
    return value


class _Buffer(list[Any]):
    """The output buffer of a ``{% set %}``/``{% filter %}``/``{% call %}`` block or a macro: not the rendered
    output (capped per chunk), so each piece is charged to the budget as it is added."""

    __slots__ = ()

    def append(self, value: Any) -> None:
        if type(value) is str:
            budget.current().spend(len(value) * budget.char_bytes(value))
        super().append(value)

    def extend(self, values: Iterable[Any]) -> None:
        for value in values:
            self.append(value)


def _lh_getattr(environment: _Sandbox, obj: Any, attribute: str) -> Any:
    """``environment.getattr`` with the fast path inlined for a key of a plain dict (a JSON object)."""
    if type(obj) is dict and attribute not in _DICT_ATTRIBUTES:
        try:
            return obj[attribute]
        except KeyError:
            return environment.undefined(obj=obj, name=attribute)
    return environment.getattr(obj, attribute)


def _lh_mul(left: Any, right: Any) -> Any:
    """``left * right`` with the size checks; numbers (prices times quantities) take the short way."""
    kind_left, kind_right = type(left), type(right)
    if kind_left is float or kind_right is float:
        if (kind_left is float or kind_left is int) and (kind_right is float or kind_right is int):
            return left * right
    elif kind_left is int and kind_right is int and left.bit_length() + right.bit_length() <= MAX_INT_BITS:
        return left * right
    _check_mul(left, right)
    return charge(left * right)


#: Most runtime values joined into one output chunk (see :meth:`_CodeGenerator.visit_Output`); the output size is
#: checked after each chunk, so at most this many values (each ≤ 1 MiB when computed in the template) are held
#: beyond the cap before it trips.
_GROUP = 8


class _CodeGenerator(CodeGenerator):
    """Jinja's code generator, emitting cheaper code for the sandbox's hot operations.

    The sandbox's guarantees do not depend on what is changed here: attribute access still goes through
    :meth:`_Sandbox.getattr` except for a plain dict's own keys, read directly exactly as :meth:`_Sandbox.getattr`
    does; ``*`` still runs the size checks; calls other than Letterhead's own guards still go through
    :meth:`_Sandbox.call`. What changes is the cost of the common case:

    * ``obj.key`` on a plain dict is inlined (no call); output escaping calls markupsafe's C function directly
      and returns ``str`` instead of building a ``Markup`` (the chunks are joined into a ``str`` anyway);
      ``x is defined`` is inlined; the ``for``/``~`` guards added by :class:`_Guard` are called directly.
    * Consecutive output is yielded as one chunk of at most ``_GROUP`` runtime values (Jinja yields every value
      and every piece of text separately: ~70 generator switches for an order confirmation).
    """

    _DEFINED = staticmethod(jinja2.tests.test_defined)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._escape_temps: list[str] = []  # the temporary of each output value being escaped

    def visit_Template(self, node: nodes.Template, frame: Frame | None = None) -> None:
        self.writeline(
            f"from {__name__} import _Buffer, _escape_inner, _lh_escape, _lh_getattr, _lh_mul, _lh_str, _lh_text"
        )
        super().visit_Template(node, frame)

    def enter_frame(self, frame: Frame) -> None:
        if not frame.rootlevel or self._context_reference_stack[-1] != "context":
            super().enter_frame(frame)
            return
        # The start of root(): the context is new, nothing is assigned in it yet, so resolving a name is looking
        # it up in the parent (Context.resolve_or_missing, without a method call per name).
        self.writeline("resolve_parent = context.parent.get")
        undefs = []
        for target, (action, param) in frame.symbols.loads.items():
            if action == VAR_LOAD_RESOLVE:
                self.writeline(f"{target} = resolve_parent({param!r}, missing)")
            elif action == VAR_LOAD_ALIAS:
                self.writeline(f"{target} = {param}")
            elif action == VAR_LOAD_UNDEFINED:
                undefs.append(target)
            elif action != VAR_LOAD_PARAMETER:
                raise NotImplementedError("unknown load instruction")
        if undefs:
            self.writeline(f"{' = '.join(undefs)} = missing")

    @optimizeconst
    def visit_Getattr(self, node: nodes.Getattr, frame: Frame) -> None:
        key = repr(node.attr)
        if node.attr in _DICT_ATTRIBUTES:
            self.write("_lh_getattr(environment, ")
            self.visit(node.node, frame)
            self.write(f", {key})")
            return
        obj = self.temporary_identifier()
        self.write(f"({obj}[{key}] if type({obj} := ")
        self.visit(node.node, frame)
        self.write(f") is dict and {key} in {obj} else _lh_getattr(environment, {obj}, {key}))")

    @optimizeconst
    def visit_Test(self, node: nodes.Test, frame: Frame) -> None:
        if (
            node.name == "defined"
            and self.environment.tests.get("defined") is self._DEFINED
            and not (node.args or node.kwargs or node.dyn_args or node.dyn_kwargs)
        ):
            target = node.node
            if isinstance(target, nodes.Getattr) and target.attr not in _DICT_ATTRIBUTES:
                # ``item.variant is defined`` on a plain dict: a missing key is not defined, without building the
                # Undefined that _lh_getattr would return for it.
                key, obj = repr(target.attr), self.temporary_identifier()
                self.write(f"((not isinstance({obj}[{key}], Undefined) if {key} in {obj} else False) if type({obj} := ")
                self.visit(target.node, frame)
                self.write(f") is dict else not isinstance(_lh_getattr(environment, {obj}, {key}), Undefined))")
                return
            self.write("(not isinstance(")
            self.visit(node.node, frame)
            self.write(", Undefined))")
            return
        super().visit_Test(node, frame)

    def buffer(self, frame: Frame) -> None:
        frame.buffer = self.temporary_identifier()
        self.writeline(f"{frame.buffer} = _Buffer()")

    @optimizeconst
    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        # Each operand is measured before str_join/markup_join turn it into text (``"" ~ big_list``).
        if frame.eval_ctx.volatile:
            func_name = "(markup_join if context.eval_ctx.volatile else str_join)"
        elif frame.eval_ctx.autoescape:
            func_name = "markup_join"
        else:
            func_name = "str_join"
        self.write(f"{func_name}((")
        for arg in node.nodes:
            value = self.temporary_identifier()
            self.write(f"({value} if type({value} := ")
            self.visit(arg, frame)
            self.write(f") is str else _lh_text({value})), ")
        self.write("))")

    @optimizeconst
    def visit_Mul(self, node: nodes.BinExpr, frame: Frame) -> None:
        self.write("_lh_mul(")
        self.visit(node.left, frame)
        self.write(", ")
        self.visit(node.right, frame)
        self.write(")")

    @optimizeconst
    def visit_Call(self, node: nodes.Call, frame: Frame, forward_caller: bool = False) -> None:
        target = node.node
        if isinstance(target, nodes.EnvironmentAttribute) and target.name in _GUARDS:
            (argument,) = node.args
            self.write(f"environment.{target.name}(")
            self.visit(argument, frame)
            self.write(")")
            return
        super().visit_Call(node, frame, forward_caller=forward_caller)

    def _fast_escape(self, frame: Frame, finalize: CodeGenerator._FinalizeInfo) -> bool:
        return bool(frame.eval_ctx.autoescape and not frame.eval_ctx.volatile and finalize.src is None)

    def _fast_str(self, frame: Frame, finalize: CodeGenerator._FinalizeInfo) -> bool:
        return bool(not frame.eval_ctx.autoescape and not frame.eval_ctx.volatile and finalize.src is None)

    def _output_child_pre(self, node: nodes.Expr, frame: Frame, finalize: CodeGenerator._FinalizeInfo) -> None:
        if self._fast_escape(frame, finalize) or self._fast_str(frame, finalize):
            value = self.temporary_identifier()
            self._escape_temps.append(value)
            convert = "_escape_inner" if self._fast_escape(frame, finalize) else ""
            self.write(f"({convert}({value}) if type({value} := ")
            return
        if frame.eval_ctx.volatile and finalize.src is None:
            self.write("(_lh_escape if context.eval_ctx.autoescape else _lh_str)(")
            return
        super()._output_child_pre(node, frame, finalize)

    def _output_child_post(self, node: nodes.Expr, frame: Frame, finalize: CodeGenerator._FinalizeInfo) -> None:
        if self._fast_escape(frame, finalize) or self._fast_str(frame, finalize):
            value = self._escape_temps.pop()
            fallback = "_lh_escape" if self._fast_escape(frame, finalize) else "_lh_str"
            self.write(f") is str else {fallback}({value}))")
            return
        super()._output_child_post(node, frame, finalize)

    def visit_Output(self, node: nodes.Output, frame: Frame) -> None:
        if frame.buffer is not None or frame.require_output_check:
            super().visit_Output(node, frame)
            return
        # As CodeGenerator.visit_Output (constants folded at compile time), then one ``yield`` per group.
        finalize = self._make_finalize()
        body: list[list[Any] | nodes.Expr] = []
        for child in node.nodes:
            try:
                if not (finalize.const or isinstance(child, nodes.TemplateData)):
                    raise nodes.Impossible()
                const = self._output_child_to_const(child, frame, finalize)
            except (nodes.Impossible, Exception):
                body.append(child)
                continue
            if body and isinstance(body[-1], list):
                body[-1].append(const)
            else:
                body.append([const])
        groups: list[list[list[Any] | nodes.Expr]] = [[]]
        runtime = 0
        for item in body:
            if not isinstance(item, list):
                if runtime == _GROUP:
                    groups.append([])
                    runtime = 0
                runtime += 1
            groups[-1].append(item)
        for group in groups:
            if len(group) == 1:
                (item,) = group
                if isinstance(item, list):
                    self.writeline("yield " + self._output_const_repr(item))
                else:
                    self.writeline("yield ", item)
                    self._output_child_pre(item, frame, finalize)
                    self.visit(item, frame)
                    self._output_child_post(item, frame, finalize)
                continue
            self.writeline('yield "".join((')
            self.indent()
            for item in group:
                if isinstance(item, list):
                    self.writeline(self._output_const_repr(item) + ",")
                else:
                    self.newline(item)  # its own line: errors report the template line of this value
                    self._output_child_pre(item, frame, finalize)
                    self.visit(item, frame)
                    self._output_child_post(item, frame, finalize)
                    self.write(",")
            self.outdent()
            self.writeline("))")


class _Sandbox(ImmutableSandboxedEnvironment):
    intercepted_binops = frozenset({"*", "**", "%", "+"})
    code_generator_class = _CodeGenerator

    def __init__(self, *, autoescape: bool) -> None:
        super().__init__(
            autoescape=autoescape,
            undefined=StrictUndefined,
            loader=None,
            cache_size=0,
            auto_reload=False,
        )
        self.globals.pop("lipsum", None)  # lipsum(n=10**6) would run unbounded inside one call
        self.globals["range"] = _safe_range
        self.filters.update(
            join=_filter_join,
            replace=_filter_replace,
            center=_filter_center,
            indent=_filter_indent,
            wordwrap=_filter_wordwrap,
            format=_filter_format,
            slice=_filter_slice,
            batch=_filter_batch,
            sum=budget.filter_sum,
            wordcount=budget.filter_wordcount,
        )
        for name, func in list(self.filters.items()):
            if name not in _UNGUARDED_FILTERS:
                skip = 1 if getattr(func, "jinja_pass_arg", None) is not None else 0
                self.filters[name] = budget.guarded(name, func, skip)
        # Letterhead's own formatting filters return short strings, and run a dozen times per message.
        self.filters.update(money=_filter_money, date=_filter_date, datetime=_filter_datetime)

    def getattr(self, obj: Any, attribute: str) -> Any:
        # Fast path for the common case, a key of a JSON object (``item.name``): the generic path tries
        # getattr() first and pays for an AttributeError on every lookup. Names of dict methods (``items``,
        # ``keys``…) keep Jinja's attribute-first meaning.
        if type(obj) is dict and attribute not in _DICT_ATTRIBUTES:
            try:
                return obj[attribute]
            except KeyError:
                return self.undefined(obj=obj, name=attribute)
        return super().getattr(obj, attribute)

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        if operator == "*":
            _check_mul(left, right)
        elif operator == "**":
            _check_pow(left, right)
        elif operator == "%" and isinstance(left, str):
            _check_percent_format(left)
            values = right.values() if isinstance(right, Mapping) else right if isinstance(right, tuple) else (right,)
            budget.format_size(left.count("%"), values, left)
        elif operator == "+" and isinstance(left, (str, list, tuple)) and isinstance(right, (str, list, tuple)):
            _check_size_of_sum(left, right)
        return charge(self.binop_table[operator](left, right))

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        _check_deadline()
        bound = getattr(__obj, "__self__", None)
        name = getattr(__obj, "__name__", None)
        if isinstance(name, str) and bound is not None:
            if isinstance(bound, str):
                args = _check_str_method(bound, name, args, kwargs)
            else:
                budget.check_method(bound, name, args, kwargs)
        return charge(super().call(__context, __obj, *args, **kwargs))

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        wrapped = super().wrap_str_format(value)
        if wrapped is None:
            return None
        fmt = value.__self__
        _check_brace_format(fmt)
        fields = sum(1 for _literal, field, _spec, _conv in _parse_format(fmt) if field is not None)

        def format_(*args: Any, **kwargs: Any) -> str:
            values = [*args, *kwargs.values()]
            if len(args) == 1 and isinstance(args[0], Mapping) and not kwargs:  # format_map
                values = list(args[0].values())
            budget.format_size(fields, values, fmt)
            return charge(wrapped(*args, **kwargs))

        return format_

    # Called from compiled template code (see _Guard below).
    def lh_guard_iter(self, iterable: Iterable[Any]) -> Iterator[Any]:
        return budget.current().iterate(iterable)

    def lh_guard_str(self, value: Any) -> Any:
        return charge(_check_size(value))


#: Filters that build nothing large (a number, one item of their input, a short formatted value).
_UNGUARDED_FILTERS = frozenset(
    {"abs", "attr", "count", "d", "default", "filesizeformat", "first", "float", "int", "last", "length",
     "random", "round"}
)


def _parse_format(fmt: str) -> list[tuple[str, str | None, str | None, str | None]]:
    try:
        return list(string.Formatter().parse(fmt))
    except ValueError:
        return []


def _check_size_of_sum(left: Any, right: Any) -> None:
    if isinstance(left, str) and isinstance(right, str):
        size = len(left) + len(right)
        if size > MAX_RENDERED_CHARS:
            raise _LimitExceeded(f"a string longer than {MAX_RENDERED_CHARS} characters")
        budget.current().afford(size * max(budget.char_bytes(left), budget.char_bytes(right)))
    elif not isinstance(left, str) and not isinstance(right, str):
        size = len(left) + len(right)
        if size > MAX_SEQUENCE:
            raise _LimitExceeded(f"a list longer than {MAX_SEQUENCE} items")
        budget.current().afford(size * 8)


class _Guard(NodeTransformer):
    """Route every ``for`` iterable and every ``~`` concatenation through the environment's guards."""

    def __init__(self, environment: _Sandbox) -> None:
        self.environment = environment

    def _call(self, name: str, arg: nodes.Node, lineno: int) -> nodes.Call:
        call = nodes.Call(nodes.EnvironmentAttribute(name), [arg], [], None, None, lineno=lineno)
        call.set_environment(self.environment)
        return call

    def visit_For(self, node: nodes.For) -> nodes.Node:
        self.generic_visit(node)
        node.iter = self._call("lh_guard_iter", node.iter, node.lineno)
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        return self._call("lh_guard_str", node, node.lineno)


_HTML_ENV = _Sandbox(autoescape=True)
_TEXT_ENV = _Sandbox(autoescape=False)
_GLOBALS: dict[str, Any] = dict(_HTML_ENV.globals)
_FORBIDDEN = (nodes.Extends, nodes.Include, nodes.Import, nodes.FromImport)


def _filename(field: str) -> str:
    return f"<letterhead:{field}>"


def _compile(env: _Sandbox, source: str, field: str, *, report_as: str | None = None) -> Template:
    name = report_as or field
    try:
        tree = env.parse(source, name=name, filename=_filename(field))
    except TemplateSyntaxError as exc:
        raise TemplateError(f"{name} line {exc.lineno}: {exc.message}", line=exc.lineno, field=name) from None
    for forbidden in _FORBIDDEN:
        found = tree.find(forbidden)
        if found is not None:
            raise TemplateError(
                f"{name} line {found.lineno}: include, import and extends are not available in templates",
                line=found.lineno,
                field=name,
            )
    tree = _Guard(env).visit(tree)
    try:
        code = env.compile(tree, name=name, filename=_filename(field))
    except TemplateSyntaxError as exc:  # e.g. an unknown filter, found by the code generator
        raise TemplateError(f"{name} line {exc.lineno}: {exc.message}", line=exc.lineno, field=name) from None
    # A plain dict, not make_globals()'s ChainMap: Jinja copies the globals into every render's context, and
    # iterating a ChainMap costs more than rendering a whole subject line.
    return env.template_class.from_code(env, code, dict(env.globals), None)


def _template_line(tb: TracebackType | None, filename: str) -> int | None:
    # Jinja rewrites tracebacks so that template frames carry the template's filename and line.
    line = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == filename:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def _render_error(exc: BaseException, field: str, filename: str, *, derived: bool) -> TemplateError:
    message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    if isinstance(exc, RecursionError):
        message = "too deeply nested (recursion)"
    elif isinstance(exc, MemoryError):
        message = "out of memory"
    elif not isinstance(exc, SecurityError) and type(exc).__module__ == "builtins":
        message = f"{type(exc).__name__}: {message}"
    line = None if derived else _template_line(exc.__traceback__, filename)
    where = f"{field} line {line}" if line is not None else field
    return TemplateError(f"{where}: {message}", line=line, field=field)


# ----------------------------------------------------------------------------------------------------
# Compile-time transformations of the HTML source: Jinja protection, CSS inlining, text derivation.

_OPEN, _CLOSE = "\ue000", "\ue001"
_PLACEHOLDER = re.compile("\ue000(\\d+)\ue001")
_JINJA = re.compile(
    r"""
      \{%-?\s*raw\s*-?%\}.*?\{%-?\s*endraw\s*-?%\}
    | \{\#.*?\#\}
    | \{%(?:[^%'"]|'[^']*'|"[^"]*"|%(?!\}))*%\}
    | \{\{(?:[^}'"]|'[^']*'|"[^"]*"|\}(?!\}))*\}\}
    """,
    re.S | re.X,
)


@dataclass
class _Protected:
    text: str
    pieces: list[str]

    def restore(self, value: str) -> str:
        return _PLACEHOLDER.sub(lambda m: self.pieces[int(m[1])], value)

    def is_statement(self, index: int) -> bool:
        return not self.pieces[index].startswith("{{")


def _protect(source: str) -> _Protected:
    pieces: list[str] = []

    def swap(match: re.Match[str]) -> str:
        pieces.append(match[0])
        return f"{_OPEN}{len(pieces) - 1}{_CLOSE}"

    return _Protected(_JINJA.sub(swap, source), pieces)


_SOURCE_MARKUP = re.compile(
    r"""
      (?P<comment><!--.*?-->)
    | (?P<raw><(?P<rawtag>style|script|textarea|title)\b[^>]*>.*?</(?P=rawtag)\s*>)
    | <(?P<tag>[a-zA-Z][a-zA-Z0-9:-]*)(?P<attrs>(?:[^>"']|"[^"]*"|'[^']*')*)>
    """,
    re.S | re.X | re.I,
)
_STYLE_BLOCK = re.compile(r"<style\b[^>]*>.*?</style\s*>", re.S | re.I)
_OUTPUT_TAG = re.compile(r"<[a-zA-Z][^\s/>]*((?:\s+[^\s=/>]+(?:=\"[^\"]*\")?)*)\s*/?>")
_MARKER = re.compile(r'\sdata-lhj="(\d+)"')
_STYLE_ATTR_OUT = re.compile(r'\sstyle="([^"]*)"')
_STYLE_ATTR_SRC = re.compile(r"""\sstyle\s*=\s*(?:"[^"]*"|'[^']*'|[^\s>]+)""", re.I)
_HEAD_STYLE = re.compile(r"<head\b[^>]*>.*?</head>", re.S)
_INLINER = css_inline.CSSInliner(keep_at_rules=True, load_remote_stylesheets=False)


def _inline_css(protected: str) -> str:
    """Apply the ``<style>`` rules of ``protected`` (placeholders in place of Jinja) as ``style`` attributes."""
    if not _STYLE_BLOCK.search(protected):
        return protected
    tags: list[tuple[int, int, str]] = []  # (start, end, attrs) of each start tag in the source

    def mark(match: re.Match[str]) -> str:
        if match["tag"] is None:
            return match[0]
        tags.append((match.start(), match.end(), match["attrs"]))
        return f'<{match["tag"]} data-lhj="{len(tags) - 1}"{match["attrs"]}>'

    marked = _SOURCE_MARKUP.sub(mark, protected)
    try:
        inlined = _INLINER.inline(marked)
    except (css_inline.InlineError, ValueError) as exc:
        raise TemplateError(f"html: the CSS could not be inlined: {exc}", field="html") from None

    styles: dict[int, str] = {}
    for match in _OUTPUT_TAG.finditer(inlined):
        marker = _MARKER.search(match[1])
        style = _STYLE_ATTR_OUT.search(match[1])
        if marker and style:
            styles[int(marker[1])] = style[1].replace("\n", " ")
    head_match = _HEAD_STYLE.search(inlined)
    kept_rules = "".join(_STYLE_BLOCK.findall(head_match[0])).replace("\n", " ") if head_match else ""

    # Rebuild from the original text so that nothing but style attributes changes.
    out: list[str] = []
    position = 0
    for index, (start, end, attrs) in enumerate(tags):
        out.append(protected[position:start])
        tag = protected[start:end]
        computed = styles.get(index)
        if computed is not None:
            existing = _STYLE_ATTR_SRC.search(attrs)
            attrs_start = end - len(attrs) - 1
            if existing:
                tag = (
                    protected[start : attrs_start + existing.start()]
                    + f' style="{computed}"'
                    + protected[attrs_start + existing.end() : end]
                )
            else:
                closing = 2 if tag.endswith("/>") else 1
                tag = tag[:-closing].rstrip() + f' style="{computed}"' + tag[-closing:]
        out.append(tag)
        position = end
    out.append(protected[position:])
    rebuilt = "".join(out)

    # Drop the <style> blocks, keeping their line count (error line numbers must match the tenant's source)
    # and the rules css-inline could not inline (@media) in the first one.
    first = True

    def drop(match: re.Match[str]) -> str:
        nonlocal first
        newlines = "\n" * match[0].count("\n")
        if first:
            first = False
            return kept_rules + newlines
        return newlines

    return _STYLE_BLOCK.sub(drop, rebuilt)


_SKIP_ELEMENTS = frozenset({"head", "style", "script", "title", "template", "noscript", "svg"})
_PARAGRAPH = frozenset(
    {"p", "h1", "h2", "h3", "h4", "h5", "h6", "table", "ul", "ol", "blockquote", "hr", "pre", "dl", "address"}
)
_LINE = frozenset(
    {
        "div",
        "tr",
        "br",
        "dt",
        "dd",
        "section",
        "header",
        "footer",
        "article",
        "main",
        "nav",
        "aside",
        "center",
        "caption",
        "form",
        "fieldset",
        "figure",
        "figcaption",
    }
)
_VOID = frozenset(
    {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"}
)
_HIDDEN_STYLE = re.compile(r"display\s*:\s*none", re.I)
_CELL, _KEY = "\x02", "\x03"


class _TextExtractor(HTMLParser):
    """HTML → plain text: blocks become lines, links ``label (url)``, hidden and head content dropped."""

    def __init__(self, restore: Callable[[str], str]) -> None:
        super().__init__(convert_charrefs=True)
        self.restore = restore
        self.out: list[str] = []
        self.skip_tag: str | None = None
        self.skip_depth = 0
        self.links: list[tuple[str, int]] = []
        self.row_cells: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.skip_tag is not None:
            if tag == self.skip_tag:
                self.skip_depth += 1
            return
        values = dict(attrs)
        hidden = values.get("aria-hidden") == "true" or _HIDDEN_STYLE.search(values.get("style") or "")
        if tag in _SKIP_ELEMENTS or (hidden and tag not in _VOID):
            self.skip_tag, self.skip_depth = tag, 1
            return
        if tag in _PARAGRAPH:
            self.out.append("\n\n")
        elif tag in _LINE:
            self.out.append("\n")
        elif tag == "li":
            self.out.append("\n- ")
        elif tag == "tr":
            self.row_cells = []
        if tag in ("td", "th"):
            if self.row_cells:
                self.out.append(_KEY if self.row_cells[-1] == "th" and tag == "td" else _CELL)
            self.row_cells.append(tag)
        elif tag == "tr":
            self.row_cells = []
        elif tag == "a":
            self.links.append((values.get("href") or "", len(self.out)))
        elif tag == "img" and values.get("alt") and not hidden:
            self.out.append(" " + (values.get("alt") or "") + " ")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in _VOID:
            self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        if self.skip_tag is not None:
            if tag == self.skip_tag:
                self.skip_depth -= 1
                if self.skip_depth == 0:
                    self.skip_tag = None
            return
        if tag in _PARAGRAPH:
            self.out.append("\n\n")
        elif tag in _LINE or tag == "li":
            self.out.append("\n")
        elif tag == "a" and self.links:
            href, start = self.links.pop()
            label = " ".join("".join(self.out[start:]).split())
            self.out[start:] = [self._link(label, href.strip())]

    def _link(self, label: str, href: str) -> str:
        if not href or href.startswith("#"):
            return label
        shown = href[7:] if href.lower().startswith("mailto:") else href
        if not label or self.restore(label) in (self.restore(href), self.restore(shown)):
            return shown
        return f"{label} ({shown})"

    def handle_data(self, data: str) -> None:
        if self.skip_tag is None:
            self.out.append(re.sub(r"\s+", " ", data))

    def text(self) -> str:
        self.close()
        raw = "".join(self.out)
        raw = re.sub(f" *{_KEY} *", ": ", raw)
        raw = re.sub(f" *{_CELL}+ *", "  ", raw)
        lines = [line.strip() for line in raw.split("\n")]
        text = re.sub(r"\n{3,}", "\n\n", "\n".join(lines))
        return text.strip()


def html_to_text(html: str) -> str:
    """Plain text of rendered HTML (used only when a text template cannot be derived at compile time)."""
    extractor = _TextExtractor(lambda s: s)
    extractor.feed(html)
    return extractor.text()


_STATEMENT_LINE = re.compile(f"(?:{_OPEN}\\d+{_CLOSE}\\s*)+")
_LITERAL_BRACE = re.compile(r"\{(?=[{%#])")


def _derive_text_source(protected: _Protected) -> str:
    """A text *template* from the (protected) HTML template: Jinja tags kept, markup turned into text."""
    extractor = _TextExtractor(protected.restore)
    extractor.feed(protected.text)
    text = extractor.text()
    # A line holding only {% %} tags would leave an empty line per loop iteration: remove the newline after it
    # (Jinja's trim_blocks, for these lines only). Blank lines left over are squeezed per render.
    lines = text.split("\n")
    out: list[str] = []
    glue = False
    for line in lines:
        only_statements = (
            bool(line)
            and _STATEMENT_LINE.fullmatch(line) is not None
            and all(protected.is_statement(int(i)) for i in _PLACEHOLDER.findall(line))
        )
        if only_statements:
            line = re.sub(r"\s+", "", line)
        if glue and out:
            out[-1] += line
        else:
            out.append(line)
        glue = only_statements
    # Literal braces that came from entities (&#123;&#123;) must not become Jinja syntax.
    joined = _LITERAL_BRACE.sub("{{ '{' }}", "\n".join(out))
    return protected.restore(joined)


# A newline with a space or tab after it, or before it (the lookbehind runs only at newlines: a pattern that starts
# with a character class would be tried at every position).
_EDGE_SPACE = re.compile(r"\n(?:[ \t]|(?<=[ \t]\n))")


def _tidy_rendered_text(text: str) -> str:
    # The derived template's own lines are already stripped; what is left comes from {% %} tags that rendered
    # nothing, so spaces and tabs at line edges go, and runs of blank lines become one. (This was
    # ``[ \t]*\n[ \t]*`` and ``\n[ \t]*\n(?:[ \t]*\n)+`` substitutions: the same result, ~20 µs a message.)
    if _EDGE_SPACE.search(text) is not None:
        text = "\n".join([line.strip(" \t") for line in text.split("\n")])
    while "\n\n\n" in text:
        text = text.replace("\n\n\n", "\n\n")
    return text.strip()


# ----------------------------------------------------------------------------------------------------
# Compiled templates.




def _run(template: Template, parent: dict[str, Any], field: str, *, derived: bool = False) -> str:
    """Render ``template`` with the shared ``parent`` variables, stopping once the output is too large.

    This is ``Template.generate()`` without its extra generator layer, and with the context built directly (what
    ``Template.new_context(parent, shared=True)`` builds, less two calls and a copy of the globals). The code
    generator yields a few values per chunk (~25 chunks for an order confirmation), so the size is checked after
    every chunk.
    """
    parts: list[str] = []
    append = parts.append
    size = 0
    try:
        context = Context(template.environment, parent, template.name, template.blocks)
        for chunk in template.root_render_func(context):
            append(chunk)
            size += len(chunk)
            if size > MAX_RENDERED_CHARS:
                raise _LimitExceeded(f"the rendered {field} is larger than {MAX_RENDERED_CHARS} characters")
    except Exception:
        try:
            template.environment.handle_exception()  # re-raises with template lines in the traceback
        except Exception as exc:
            raise _render_error(exc, field, template.filename or "", derived=derived) from None
    _check_deadline_outside(field)
    return "".join(parts)


def _check_deadline_outside(field: str) -> None:
    try:
        _check_deadline()
    except _LimitExceeded as exc:
        raise TemplateError(f"{field}: {exc.message}", field=field) from None


class CompiledTemplate:
    """A tenant's subject, HTML and text templates, ready to render many messages."""

    __slots__ = ("_html", "_subject", "_text", "_text_derived", "source")

    def __init__(
        self,
        source: TemplateSource,
        subject: Template,
        html: Template,
        text: Template | None,
        text_derived: bool,
    ) -> None:
        self.source = source
        self._subject = subject
        self._html = html
        self._text = text
        self._text_derived = text_derived

    def render(self, context: Mapping[str, Any]) -> Rendered:
        """Raises ``TemplateError`` when this message's data cannot be rendered (``render_many`` of one)."""
        [rendered] = render_many([(self, context)])
        if isinstance(rendered, TemplateError):
            raise rendered
        return rendered

    def _render_subject(self, parent: dict[str, Any]) -> str:
        # A subject is one header line: CR/LF (and every other line break) would allow header injection.
        return " ".join(_run(self._subject, parent, "subject").split())

    def _render_html(self, parent: dict[str, Any]) -> str:
        return _run(self._html, parent, "html")

    def _render_text(self, parent: dict[str, Any], html: str) -> str:
        if self._text is None:
            return html_to_text(html)
        if self._text_derived:
            return _tidy_rendered_text(_run(self._text, parent, "html", derived=True))
        return _run(self._text, parent, "text").strip()


def render_many(jobs: Sequence[tuple[CompiledTemplate, Mapping[str, Any]]]) -> list[Rendered | TemplateError]:
    """``[compiled.render(context) for compiled, context in jobs]``, each failure returned in its message's place,
    rendered one part at a time: every subject, then every HTML body, then every text.

    A worker renders a hundred messages at once; running one template's code over and over keeps it (and the
    sandbox's) in the core's caches, where switching between three templates per message does not. Measured on
    2,800 order confirmations in one thread: 38 vs 51 µs per message. Each message keeps its own limit of
    ``MAX_RENDER_SECONDS`` of CPU for its three parts together, as ``render`` gives it.
    """
    # One variables dict per message shared by its three parts (Jinja would otherwise copy globals + context).
    parents = [{**_GLOBALS, **context} for _, context in jobs]
    out: list[Rendered | TemplateError | None] = [None] * len(jobs)
    #: CPU seconds each message has used so far (the rendering thread's clock, read between runs).
    spent = [0.0] * len(jobs)
    #: Each message's budget, shared by its three parts (memory and loops; the deadline restarts per part).
    budgets = [Budget() for _ in jobs]

    def stage(step: Callable[[int, CompiledTemplate, dict[str, Any]], str], into: list[str]) -> None:
        clock = thread_time()
        for i, (compiled, _) in enumerate(jobs):
            if out[i] is not None:
                into.append("")
                continue
            message_budget = budgets[i]
            message_budget.start(MAX_RENDER_SECONDS - spent[i])
            token = budget.use(message_budget)
            try:
                into.append(step(i, compiled, parents[i]))
            except TemplateError as exc:
                out[i] = exc
                into.append("")
            finally:
                budget.reset(token)
            now = thread_time()
            spent[i] += now - clock
            clock = now

    subjects: list[str] = []
    htmls: list[str] = []
    texts: list[str] = []
    stage(lambda i, c, parent: c._render_subject(parent), subjects)
    stage(lambda i, c, parent: c._render_html(parent), htmls)
    stage(lambda i, c, parent: c._render_text(parent, htmls[i]), texts)
    return [
        done if done is not None else Rendered(subject=subjects[i], html=htmls[i], text=texts[i])
        for i, done in enumerate(out)
    ]


def _check_source_size(value: str, field: str) -> None:
    if len(value) > MAX_SOURCE_BYTES or len(value.encode("utf-8")) > MAX_SOURCE_BYTES:
        raise TemplateError(
            f"{field}: the template is larger than {MAX_SOURCE_BYTES // 1024} KiB", field=field
        )
    if _OPEN in value or _CLOSE in value:
        raise TemplateError(f"{field}: the characters U+E000 and U+E001 are not allowed", field=field)


def _build(source: TemplateSource) -> CompiledTemplate:
    for field, value in (("subject", source.subject), ("html", source.html), ("text", source.text or "")):
        if not isinstance(value, str):
            raise TemplateError(f"{field}: must be a string", field=field)
        _check_source_size(value, field)
    subject = _compile(_TEXT_ENV, source.subject, "subject")
    _compile(_HTML_ENV, source.html, "html")  # syntax errors reported against the tenant's own text
    protected = _protect(source.html)
    html = _compile(_HTML_ENV, protected.restore(_inline_css(protected.text)), "html")
    if source.text is not None and source.text.strip():
        return CompiledTemplate(source, subject, html, _compile(_TEXT_ENV, source.text, "text"), False)
    try:
        derived = _compile(_TEXT_ENV, _derive_text_source(protected), "html-text", report_as="html")
    except TemplateError:
        # The HTML template splits Jinja blocks across tags in a way the derivation cannot follow: fall back to
        # converting each rendered HTML body (slower, still correct).
        return CompiledTemplate(source, subject, html, None, False)
    return CompiledTemplate(source, subject, html, derived, True)


_cache: OrderedDict[tuple[str, str, str | None], CompiledTemplate] = OrderedDict()
_cache_lock = threading.Lock()


def compile_source(source: TemplateSource) -> CompiledTemplate:
    """Compile (or fetch from the LRU cache) a template; :class:`TemplateError` with ``line`` and ``field``."""
    key = (source.subject, source.html, source.text)
    with _cache_lock:
        compiled = _cache.get(key)
        if compiled is not None:
            _cache.move_to_end(key)
            return compiled
    compiled = _build(source)
    with _cache_lock:
        existing = _cache.get(key)
        if existing is not None:
            return existing
        _cache[key] = compiled
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    return compiled


def check_source(source: TemplateSource, *, sample_context: Mapping[str, Any]) -> Rendered:
    """Compile and render with a sample context (the event's example): the save and preview check."""
    return compile_source(source).render(sample_context)


# ----------------------------------------------------------------------------------------------------
# Context.

_HEX_COLOR = re.compile(r"#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})\Z")


def _luminance(color: str) -> float:
    hexes = color[1:]
    if len(hexes) == 3:
        hexes = "".join(c * 2 for c in hexes)
    channels = [int(hexes[i : i + 2], 16) / 255 for i in (0, 2, 4)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def _contrast(a: float, b: float) -> float:
    return (max(a, b) + 0.05) / (min(a, b) + 0.05)


@lru_cache(maxsize=256)
def _brand(color: str | None) -> tuple[str, str, str]:
    """(brand colour, text colour on it, link colour on white), keeping WCAG AA contrast."""
    brand = color if isinstance(color, str) and _HEX_COLOR.match(color) else DEFAULT_BRAND_COLOR
    lum = _luminance(brand)
    on_brand = "#ffffff" if _contrast(lum, 1.0) >= _contrast(lum, _luminance("#111827")) else "#111827"
    link = brand if _contrast(lum, 1.0) >= 4.5 else "#1f2937"
    return brand, on_brand, link


def _web_url(value: Any) -> str | None:
    return value if isinstance(value, str) and re.match(r"https?://[^\s\"'<>]+\Z", value) else None


def _tenant_view(
    id: Any, name: Any, contact_email: Any, brand_color: Any, logo_url: Any, timezone: Any
) -> dict[str, Any]:
    brand, on_brand, link = _brand(brand_color)
    return {
        "id": id,
        "name": name or id or "",
        "contact_email": contact_email,
        "brand_color": brand,
        "brand_text_color": on_brand,
        "brand_link_color": link,
        "logo_url": _web_url(logo_url),
        "timezone": timezone,
    }


def _platform_view(name: Any, url: Any) -> dict[str, Any]:
    return {"name": name or DEFAULT_PLATFORM_NAME, "url": _web_url(url)}


# The tenant and platform parts of a context are the same for every message of a tenant: they are built once per
# distinct set of field values (so an edited tenant gets a new view at once) and shared, read-only, by contexts.
_tenant_view_cached = lru_cache(maxsize=1024, typed=True)(_tenant_view)
_platform_view_cached = lru_cache(maxsize=64, typed=True)(_platform_view)


def build_context(
    *,
    data: Mapping[str, Any],
    tenant: Mapping[str, Any],
    locale: str,
    platform: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The variables a template sees.

    ``data`` fields at the top level and as ``data`` (prefer the top level: ``data.items`` is the dict method);
    ``tenant`` (id, name, contact_email, brand_color, brand_text_color, brand_link_color, logo_url, timezone);
    ``platform`` (name, url); ``locale``. Reserved names win over data fields of the same name. The ``tenant``
    and ``platform`` dicts are cached and shared between contexts: treat them as read-only (templates cannot
    change them).
    """
    get = tenant.get
    fields = (get("id"), get("name"), get("contact_email"), get("brand_color"), get("logo_url"), get("timezone"))
    platform = platform or {}
    platform_fields = (platform.get("name"), platform.get("url") or platform.get("base_url"))
    try:
        tenant_view = _tenant_view_cached(*fields)
        platform_view = _platform_view_cached(*platform_fields)
    except TypeError:  # an unhashable field value: nothing to share
        tenant_view = _tenant_view(*fields)
        platform_view = _platform_view(*platform_fields)
    context = dict(data)
    context["data"] = data
    context["tenant"] = tenant_view
    context["platform"] = platform_view
    context["locale"] = locale
    return context


def sample_context(
    event: str, locale: str, *, tenant: Mapping[str, Any], platform: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The context of the event's example payload: what previews and save-time checks render with."""
    from letterhead.notifications.events import get_event

    return build_context(data=get_event(event).example, tenant=tenant, locale=locale, platform=platform)


# ----------------------------------------------------------------------------------------------------
# Default templates: defaults/base.html (the shared layout) + defaults/<event>.<locale>.{subject.txt,html}.

_DEFAULTS = resources.files("letterhead.notifications").joinpath("defaults")


def _read_default(name: str) -> str:
    return _DEFAULTS.joinpath(name).read_text(encoding="utf-8")


@lru_cache(maxsize=64)
def default_source(event: str, locale: str) -> TemplateSource:
    """The platform's default template for ``event`` in ``locale`` (``ja`` or ``en``), as one self-contained
    source (layout included), so a tenant who edits it sees the whole message."""
    from letterhead.notifications.events import get_event

    get_event(event)  # NotFound for unknown events
    if locale not in LOCALES:
        raise NotFound(f"no default template in locale {locale!r}; available: {', '.join(LOCALES)}")
    try:
        subject = _read_default(f"{event}.{locale}.subject.txt").strip()
        content = _read_default(f"{event}.{locale}.html").strip()
        footer = _read_default(f"footer.{locale}.html").strip()
        layout = _read_default("base.html")
    except FileNotFoundError:
        raise NotFound(f"no default template for {event!r} in {locale!r}") from None
    html = layout.replace("%%LANG%%", locale).replace("%%FOOTER%%", footer).replace("%%CONTENT%%", content)
    return TemplateSource(subject=subject, html=html, text=None)
