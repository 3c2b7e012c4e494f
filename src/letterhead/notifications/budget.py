"""One budget per rendered message: memory the template's values may take, loop iterations, CPU time.

Per-value caps (a string ≤ 1 MiB, a list ≤ 10,000 items) do not bound a render: a template can build many
values, each under its cap (``map("replace", …)`` over a list), or turn a small value that shares one string many
times into a large one (``(["x" * 10**6] * 100)|string``). So every operation of the sandbox that can build a
string or a list is charged to the message's :class:`Budget`: *before* building it when its size can be
estimated from its inputs (``indent``, ``replace``, ``join``, ``center``, ``format``, ``wordwrap``, ``string``,
``tojson``, ``x * n``…), and by what it built otherwise. Charges are never given back (the budget counts every
value the template builds, including ones it throws away), so what a render keeps alive is at most the budget.

Estimates are upper bounds in bytes (a character may take up to 4), cheap to compute: ``len``, ``str.count`` and
``sys.getsizeof`` (all O(1) or one C pass), and for a container a walk that visits each distinct object once and
stops as soon as the bound passes what is left.
"""

from __future__ import annotations

import contextlib
import functools
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextvars import ContextVar
from time import perf_counter, thread_time
from typing import Any, TypeVar

from jinja2 import pass_environment
from jinja2.exceptions import SecurityError
from jinja2.utils import Namespace
from markupsafe import Markup

__all__ = [
    "MAX_LOOP_ITERATIONS",
    "MAX_RENDER_SECONDS",
    "MEMORY_BUDGET",
    "Budget",
    "LimitExceeded",
    "charge",
    "check_deadline",
    "current",
    "guarded",
    "text_bound",
]

#: CPU seconds of the rendering thread one message (subject, HTML and text together) may use.
MAX_RENDER_SECONDS = 0.2
#: Bytes (estimated) of values one message's templates may build, on top of the rendered output (itself capped).
MEMORY_BUDGET = 8 * 1024 * 1024
#: Iterations of ``for`` loops and of lazy filters (``map``, ``select``, ``batch``…) in one message.
MAX_LOOP_ITERATIONS = 100_000

_MB = MEMORY_BUDGET // (1024 * 1024)
#: What a template author reads when the memory budget is used up (``TOO_LARGE_JA`` for the Japanese UI).
TOO_LARGE = f"this template would build more than {_MB} MB of text; simplify it (fewer or shorter repeated strings)"
TOO_LARGE_JA = f"このテンプレートは {_MB} MB を超える文字列を作ろうとしました。繰り返しや長い文字列を減らしてください"
TOO_MANY_LOOPS = f"this template loops more than {MAX_LOOP_ITERATIONS:,} times; simplify it"
TOO_MANY_LOOPS_JA = f"このテンプレートのループが {MAX_LOOP_ITERATIONS:,} 回を超えました。繰り返しを減らしてください"
TOO_SLOW = f"rendering took longer than {int(MAX_RENDER_SECONDS * 1000)} ms"

#: Shallow sizes: a list slot, a new small string object, a new tuple/list per produced item.
_SLOT = 8
_STR_OBJECT = 80
_NODE = 64


class LimitExceeded(SecurityError):
    """A template hit one of Letterhead's resource limits."""


class Budget:
    """What is left of one message's budget. Not shared between threads (each render sets its own)."""

    __slots__ = ("cpu", "loops", "memory", "wall")

    def __init__(self, seconds: float = MAX_RENDER_SECONDS) -> None:
        self.memory = MEMORY_BUDGET
        self.loops = MAX_LOOP_ITERATIONS
        self.start(seconds)

    def start(self, seconds: float) -> None:
        """Give the deadline ``seconds`` of CPU from now (``render_many`` restarts it per part)."""
        # CPU time of the rendering thread, not wall-clock time: a render that is descheduled on a busy host is
        # not slow. Reading the thread's CPU clock is a system call (~0.3 µs), the wall clock is not, and a thread
        # cannot use more CPU than wall-clock time has passed: the CPU clock is read only after the wall deadline.
        self.wall = perf_counter() + seconds
        self.cpu = thread_time() + seconds

    def spend(self, size: int) -> None:
        self.memory -= size
        if self.memory < 0:
            raise LimitExceeded(TOO_LARGE)

    def afford(self, size: int) -> None:
        """Refuse before building a value of about ``size`` bytes that the budget cannot pay for."""
        if size > self.memory:
            self.memory = -1
            raise LimitExceeded(TOO_LARGE)

    def deadline(self) -> None:
        if perf_counter() > self.wall and thread_time() > self.cpu:
            raise LimitExceeded(TOO_SLOW)

    def iterate(self, iterable: Iterable[Any], charge_items: bool = False) -> Iterator[Any]:
        """``iterable``, counting each item against the loop limit (and, for items a lazy filter built, their
        shallow size); the deadline is checked once the wall clock says it may have passed."""
        for item in iterable:
            self.loops -= 1
            if self.loops < 0:
                raise LimitExceeded(TOO_MANY_LOOPS)
            if charge_items:
                kind = type(item)
                self.spend(sys.getsizeof(item) if kind is list or kind is tuple or kind is str else _SLOT)
            if perf_counter() > self.wall:
                self.deadline()
            yield item


_T = TypeVar("_T")
_current: ContextVar[Budget | None] = ContextVar("letterhead_render_budget", default=None)


def current() -> Budget:
    budget = _current.get()
    if budget is None:
        # Only a render has a budget. Jinja folds constant filter calls while compiling; refusing here makes it
        # leave them to the render (nodes.Impossible), where they are charged like any other.
        raise LimitExceeded("outside a render")
    return budget


def use(budget: Budget | None) -> Any:
    """``ContextVar.set``: the token to give back to :func:`reset`."""
    return _current.set(budget)


def reset(token: Any) -> None:
    _current.reset(token)


def check_deadline() -> None:
    budget = _current.get()
    if budget is not None:
        budget.deadline()


def charge(value: _T) -> _T:
    """Charge what ``value`` (just built) takes and return it."""
    kind = type(value)
    if kind is str or kind is list or kind is tuple or kind is dict or kind is Markup:
        current().spend(sys.getsizeof(value))
    return value


def char_bytes(s: str) -> int:
    """Bytes per character of ``s`` (1, 2 or 4); ``isascii`` is O(1) for a str."""
    if s.isascii():
        return 1
    return 4 if (sys.getsizeof(s) - 56) > 2 * (len(s) + 1) + 20 else 2


# ----------------------------------------------------------------------------------------------------
# Size of a value as text: str(), repr() inside a container, JSON (tojson), pprint.


def text_bound(value: Any, limit: int, *, node_extra: int = 4) -> int:
    """An upper bound on the characters of ``str(value)`` (also of ``repr``, ``tojson``, ``pprint`` with a larger
    ``node_extra``), or a number above ``limit`` as soon as it is known to exceed it."""
    if type(value) is str or isinstance(value, str):
        return len(value)
    return _Walk(limit, node_extra).size(value, 0)


class _Walk:
    __slots__ = ("extra", "limit", "seen", "total")

    def __init__(self, limit: int, extra: int) -> None:
        self.limit, self.extra, self.total = limit, extra, 0
        self.seen: dict[int, int] = {}  # id → bound of an object already measured (shared items count each time)

    def size(self, value: Any, depth: int) -> int:
        if type(value) is str or isinstance(value, str):
            # A string inside a container is quoted and escaped: 2 chars for a printable ASCII one (\\, \'),
            # up to 12 for JSON's \ud83d\ude00.
            return 2 + len(value) * (2 if value.isascii() and value.isprintable() else 12)
        if value is None or isinstance(value, (bool, float)):
            return 24
        if isinstance(value, int):
            return 2 + value.bit_length() // 3
        key = id(value)
        known = self.seen.get(key)
        if known is not None:
            return known
        if depth > 64:
            return self.limit + 1
        self.seen[key] = self.limit + 1  # a container that holds itself is refused
        if isinstance(value, Namespace):
            items: Iterable[Any] = object.__getattribute__(value, "_Namespace__attrs").items()
        elif isinstance(value, Mapping):
            items = value.items()
        elif isinstance(value, (list, tuple, set, frozenset)) or type(value).__name__ in _VIEWS:
            items = value
        else:
            self.seen[key] = size = 200  # any other object: its repr is short (and charged once built)
            return size
        size = 16
        for item in items:
            size += self.size(item, depth + 1) + self.extra
            if size > self.limit:
                break
        self.seen[key] = size
        return size


_VIEWS = frozenset({"dict_keys", "dict_values", "dict_items"})


def _remaining() -> int:
    return max(current().memory, 0)


def _text_of(value: Any, factor: int = 1, node_extra: int = 4) -> int:
    """Bytes ``str(value)`` (times ``factor`` for filters that expand each character) would take."""
    if type(value) is str or isinstance(value, str):
        return len(value) * factor * char_bytes(value)
    limit = _remaining()
    return text_bound(value, limit // max(factor, 1) + 1, node_extra=node_extra) * factor


def afford_text(value: Any, factor: int = 1, node_extra: int = 4) -> None:
    current().afford(_text_of(value, factor, node_extra))


# ----------------------------------------------------------------------------------------------------
# Estimates, per filter: called with the filter's own arguments (after Jinja's context/environment argument),
# each raises LimitExceeded when the result could not be paid for.

_Estimate = Callable[..., None]


def _escaped_size(s: str) -> int:
    return len(s) + 4 * (s.count("&") + s.count('"') + s.count("'")) + 3 * (s.count("<") + s.count(">"))


def _est_escape(value: Any, *_: Any, **__: Any) -> None:
    if hasattr(value, "__html__"):
        return
    if isinstance(value, str):
        current().afford(_escaped_size(value) * char_bytes(value))
    else:
        afford_text(value, 5)


def _est_text(factor: int) -> _Estimate:
    def estimate(value: Any, *_: Any, **__: Any) -> None:
        if type(value) is not str or factor > 1:
            afford_text(value, factor)

    return estimate


def _est_pprint(value: Any, *_: Any, **__: Any) -> None:
    afford_text(value, 2, node_extra=80)


def _est_indent(s: Any, width: Any = 4, first: bool = False, blank: bool = False) -> None:
    text = s if isinstance(s, str) else None
    size = len(text) if text is not None else text_bound(s, _remaining() + 1)
    per_line = len(width) if isinstance(width, str) else width if isinstance(width, int) else 0
    lines = (text.count("\n") if text is not None else size) + 1
    current().afford((size + lines * per_line) * (char_bytes(text) if text is not None else 1))


def _est_replace(s: Any, old: Any, new: Any, count: Any = None) -> None:
    text, old_s, new_s = str(s) if isinstance(s, str) else None, str(old), str(new)
    if text is None:
        afford_text(s)
        return
    hits = text.count(old_s) if old_s else len(text) + 1
    if isinstance(count, int) and count >= 0:
        hits = min(hits, count)
    size = len(text) + hits * (len(new_s) - len(old_s))
    current().afford(size * max(char_bytes(text), char_bytes(new_s)))


def _est_center(value: Any, width: Any = 80) -> None:
    size = max(text_bound(value, _remaining() + 1), width if isinstance(width, int) else 0)
    current().afford(size * 4)


def _est_wordwrap(
    s: Any, width: Any = 79, break_long_words: bool = True, wrapstring: Any = None, break_on_hyphens: bool = True
) -> None:
    size = text_bound(s, _remaining() + 1)
    breaks = size // max(width if isinstance(width, int) else 1, 1) + 1
    # textwrap also holds every chunk (word) of the text as its own string while it wraps.
    current().afford(size * 4 + breaks * len(str(wrapstring or "\n")) + (size // 2 + 1) * _STR_OBJECT)


def _est_truncate(s: Any, *_: Any, **__: Any) -> None:
    afford_text(s)


def _est_format(value: Any, *args: Any, **kwargs: Any) -> None:
    fmt = str(value)
    fields = fmt.count("%") // 1 + 1
    biggest = max((_text_of(a) for a in (*args, *kwargs.values())), default=0)
    current().afford(len(fmt) * 4 + fields * biggest)


def _est_urlize(value: Any, *_: Any, **__: Any) -> None:
    # Every URL appears twice in its <a href="…" rel="…">, text is escaped: ~16 × for a text of short URLs.
    afford_text(value, 16)


def _est_list(value: Any, *_: Any, **__: Any) -> None:
    if isinstance(value, str):  # one string object per character (only ASCII ones are shared)
        current().afford(len(value) * (_SLOT if value.isascii() else _SLOT + _STR_OBJECT))
    elif hasattr(value, "__len__"):
        current().afford(len(value) * _SLOT)


def _est_case_folded(value: Any, *_: Any, **__: Any) -> None:
    """sort, unique, min, max, dictsort, groupby compare lower-cased copies of every string (by default)."""
    if isinstance(value, str) or not hasattr(value, "__len__"):
        return
    budget = current()
    size = 0
    for item in value.values() if isinstance(value, Mapping) else value:
        if isinstance(item, str):
            size += len(item) + _STR_OBJECT
        elif isinstance(item, Mapping):
            size += sum(len(v) for v in item.values() if isinstance(v, str))
        if size > budget.memory:
            break
    budget.afford(size)


_ESTIMATES: dict[str, _Estimate] = {
    "sort": _est_case_folded,
    "unique": _est_case_folded,
    "min": _est_case_folded,
    "max": _est_case_folded,
    "dictsort": _est_case_folded,
    "groupby": _est_case_folded,
    "e": _est_escape,
    "escape": _est_escape,
    "forceescape": _est_text(5),
    "string": _est_text(1),
    "safe": _est_text(1),
    "striptags": _est_text(1),
    "trim": _est_text(1),
    "reverse": _est_text(1),
    "upper": _est_text(3),  # Unicode case mappings can expand a character (ß → SS, ﬃ → FFI)
    "lower": _est_text(3),
    "title": _est_text(3),
    "capitalize": _est_text(3),
    "urlencode": _est_text(12),  # %XX for each UTF-8 byte
    "xmlattr": _est_text(6),
    "tojson": _est_text(1),  # text_bound already counts a string's JSON escapes
    "pprint": _est_pprint,
    "indent": _est_indent,
    "replace": _est_replace,
    "wordwrap": _est_wordwrap,
    "truncate": _est_truncate,
    "format": _est_format,
    "urlize": _est_urlize,
    "list": _est_list,
}

#: Filters whose result is a lazy iterator of values they build (lists, tuples) or pass through.
_LAZY = frozenset({"map", "select", "reject", "selectattr", "rejectattr", "batch", "slice", "items", "unique"})


def guarded(name: str, func: Callable[..., Any], skip: int) -> Callable[..., Any]:
    """``func`` (the filter ``name``, whose first ``skip`` arguments are Jinja's context or environment) with its
    estimate checked before it runs and its result charged after."""
    estimate = _ESTIMATES.get(name)
    lazy = name in _LAZY

    @functools.wraps(func)  # keeps jinja_pass_arg: Jinja still passes the context/environment first
    def filter_(*args: Any, **kwargs: Any) -> Any:
        budget = current()
        if perf_counter() > budget.wall:
            budget.deadline()
        if estimate is not None:
            with contextlib.suppress(TypeError):  # wrong arguments: the filter itself says what is wrong
                estimate(*args[skip:], **kwargs)
        result = func(*args, **kwargs)
        kind = type(result)
        if kind is str or kind is list or kind is tuple or kind is dict or kind is Markup:
            budget.spend(sys.getsizeof(result))
        elif lazy or (hasattr(result, "__next__") and not isinstance(result, (str, bytes))):
            return budget.iterate(result, charge_items=True)
        return result

    return filter_


# ----------------------------------------------------------------------------------------------------
# Methods called from templates (str methods, a few others), checked in the sandbox's call().

_CASE = frozenset({"upper", "lower", "title", "capitalize", "swapcase", "casefold"})
_SPLIT = frozenset({"split", "rsplit", "splitlines"})


def check_str_method(obj: str, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    """Refuse a ``str`` method call whose result the budget cannot pay for; returns ``args`` (an iterable of
    ``join`` taken out, as it had to be measured)."""
    budget = current()
    width = char_bytes(obj)
    if name in _CASE:
        budget.afford(len(obj) * 3 * width)
    elif name in _SPLIT:
        sep = args[0] if args else kwargs.get("sep")
        pieces = (obj.count(sep) if isinstance(sep, str) and sep else len(obj) // 2 + obj.count("\n")) + 1
        budget.afford(len(obj) * width + pieces * (_SLOT + _STR_OBJECT))
    elif name in ("replace",) and len(args) >= 2:
        count = args[2] if len(args) > 2 else kwargs.get("count", -1)
        _est_replace(obj, args[0], args[1], count)
    elif name == "join" and args:
        items = list(budget.iterate(args[0]))
        join_size(budget, items, obj)
        return (items, *args[1:])
    return args


def join_size(budget: Budget, items: list[Any], separator: str) -> None:
    """Refuse ``separator.join(str(i) for i in items)`` before it is built when the budget cannot pay for it."""
    left = max(budget.memory, 0)
    size = len(separator) * max(len(items) - 1, 0) * char_bytes(separator)
    walk = _Walk(left + 1, 4)
    for item in items:
        if type(item) is str or isinstance(item, str):
            size += len(item) * char_bytes(item)
        else:
            size += walk.size(item, 0)
        if size > left:
            break
    budget.afford(size)


def check_method(obj: Any, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """Other methods whose result grows with an argument: ``int.to_bytes(n)``, ``dict.fromkeys(iterable)``."""
    if name == "to_bytes" and isinstance(obj, int):
        length = args[0] if args else kwargs.get("length", 1)
        if isinstance(length, int):
            current().afford(length)
    elif name == "fromkeys":
        keys = args[0] if args else ()
        current().afford(len(keys) * _NODE if hasattr(keys, "__len__") else MEMORY_BUDGET + 1)


def format_size(fields: int, args: Iterable[Any], fmt: str) -> None:
    """Refuse ``fmt.format(*args)`` / ``fmt % args`` when ``fields`` fields of the largest argument would not fit."""
    biggest = max((_text_of(a, node_extra=4) for a in args), default=0)
    current().afford(len(fmt) * 4 + fields * biggest)


# ----------------------------------------------------------------------------------------------------
# Filters replaced outright: Jinja's versions build what the budget cannot see.


@pass_environment
def filter_sum(environment: Any, iterable: Iterable[Any], attribute: Any = None, start: Any = 0) -> Any:
    """Jinja's ``sum``; a list/tuple ``start`` (``|sum(start=[])``, flattening) is concatenated one charged
    item at a time (Python's ``sum`` of lists copies the whole result at every step, in one C call)."""
    from jinja2.filters import make_attrgetter

    budget = current()
    items: Iterable[Any] = budget.iterate(iterable)
    if attribute is not None:
        getter = make_attrgetter(environment, attribute)
        items = map(getter, items)
    if not isinstance(start, (list, tuple)):
        return sum(items, start)
    out = list(start)
    for item in items:
        if type(item) is not type(start):
            raise TypeError(f'can only concatenate {type(start).__name__} (not "{type(item).__name__}")')
        budget.spend(len(item) * _SLOT)
        out.extend(item)
    return out if isinstance(start, list) else tuple(out)


def filter_wordcount(s: Any) -> int:
    """Jinja's ``wordcount`` without its list of every word (a 1 MiB text of short words: ~30 MB)."""
    from jinja2.filters import _word_re
    from markupsafe import soft_str

    budget = current()
    count = 0
    for _ in _word_re.finditer(soft_str(s)):
        count += 1
        if not count & 4095 and perf_counter() > budget.wall:
            budget.deadline()
    return count
