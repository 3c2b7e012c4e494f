"""Notifications without idempotency keys into the outbox: the rows ``queue.enqueue_many`` would write, cheaper.

A batch request writes 1,000 message rows. ``enqueue_many`` builds a dict per row (20 keys), and
``db.executemany`` turns each into a tuple through a generic getter and per-column processors; for keyless
notifications most of that is fixed: no idempotency lookup, and six columns that are always NULL. Here each row
is one tuple built directly in the compiled statement's parameter order, the JSON columns serialised by the same
bind processors SQLAlchemy would use, the shared timestamps processed once per batch. The columns left out of the
INSERT have no default, so the database stores NULL in them, as ``enqueue_many`` does explicitly (a test compares
the rows both write, column by column).

Messages with an idempotency key keep going through ``enqueue_many``: it owns the lookup, the 409 and the retry
after a lost race.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import orjson
from sqlalchemy import bindparam, insert
from sqlalchemy.engine import Dialect

from letterhead.context import Context
from letterhead.delivery.queue import Accepted, NewMessage, messages
from letterhead.models import MessageStatus, new_ids, utcnow

#: NULL in every keyless notification (``enqueue_many`` sets them to None); left to the database.
NULL_COLUMNS = ("subject", "html", "text", "options", "idempotency_key", "request_hash")
#: The rest of ``queue._ROW_KEYS``, in the order ``insert_keyless`` builds its tuples.
KEYS = ("id", "tenant_id", "kind", "event", "locale", "to_addrs", "to_first", "data", "status", "attempt_count",
        "next_attempt_at", "expires_at", "created_at", "updated_at")
_INSERT = insert(messages).values({k: bindparam(k) for k in KEYS})
_TIME_KEYS = ("next_attempt_at", "expires_at", "created_at", "updated_at")
_QUEUED = MessageStatus.QUEUED.value


@dataclass(frozen=True)
class _Plan:
    sql: str
    #: None: the driver takes tuples in KEYS order (SQLite); else a function from such a tuple to what it takes.
    adapt: Callable[[tuple[Any, ...]], Any] | None
    to_json: Callable[[Any], Any]
    data_json: Callable[[Any], Any]
    times: tuple[Callable[[Any], Any], ...]  # processors of _TIME_KEYS, in that order


_plans: dict[tuple[str, str, str], _Plan] = {}  # by dialect, driver and paramstyle: what the compiled SQL depends on


def _identity(value: Any) -> Any:
    return value


def _plan(dialect: Dialect) -> _Plan:
    key = (dialect.name, dialect.driver, dialect.paramstyle)
    plan = _plans.get(key)
    if plan is not None:
        return plan
    compiled = _INSERT.compile(dialect=dialect)
    names = tuple(compiled.positiontup or ()) if compiled.positional else tuple(compiled.binds)
    if set(names) != set(KEYS):  # e.g. a column default that the compiler added: not the row we mean to write
        raise RuntimeError(f"unexpected parameters in the notification INSERT: {names}")
    adapt: Callable[[tuple[Any, ...]], Any] | None
    if not compiled.positional:
        adapt = lambda row: dict(zip(KEYS, row, strict=True))  # noqa: E731
    elif names == KEYS:
        adapt = None
    else:
        adapt = operator.itemgetter(*(KEYS.index(n) for n in names))

    def processor(key: str) -> Callable[[Any], Any]:
        proc = compiled.binds[key].type._cached_bind_processor(dialect)
        return proc if proc is not None else _identity

    plan = _Plan(compiled.string, adapt, processor("to_addrs"), processor("data"),
                 tuple(processor(k) for k in _TIME_KEYS))
    _plans[key] = plan
    return plan


def insert_keyless(ctx: Context, items: Sequence[NewMessage]) -> list[Accepted]:
    """Queue ``items`` (none with an idempotency key) in one transaction; ``Accepted`` in their order."""
    if any(m.idempotency_key for m in items):
        raise ValueError("insert_keyless takes messages without idempotency keys (enqueue_many does those)")
    if not items:
        return []
    now = utcnow()
    expires = now + timedelta(seconds=ctx.settings.message_lifetime_seconds)
    ids = new_ids("msg_", len(items))
    dialect = ctx.db.engine.dialect
    if dialect.name == "postgresql":
        with ctx.db.session() as s:
            if _insert_pg(s.connection(), items, ids, now, expires):
                return [Accepted(id_, _QUEUED, True) for id_ in ids]
    # The rows are converted before the transaction begins: on SQLite it holds the database's one writer lock,
    # which the workers' claims and result writes wait for, and JSON for 1,000 rows needs no lock.
    plan = _plan(dialect)
    to_json, data_json = plan.to_json, plan.data_json
    next_at, expires_at, created_at, updated_at = (
        proc(value) for proc, value in zip(plan.times, (now, expires, now, now), strict=True))
    rows = [
        (id_, m.tenant_id, m.kind.value, m.event, m.locale, to_json(m.to), m.to[0].lower(),
         None if m.data is None else data_json(m.data), _QUEUED, 0, next_at, expires_at, created_at, updated_at)
        for m, id_ in zip(items, ids, strict=True)
    ]
    adapt = plan.adapt
    with ctx.db.session() as s:
        s.connection().exec_driver_sql(plan.sql, rows if adapt is None else [adapt(r) for r in rows])
    return [Accepted(id_, _QUEUED, True) for id_ in ids]


# PostgreSQL: the batch as one JSON document and one INSERT … SELECT. A driver-level executemany runs the INSERT
# once per row, and each run pays the server's per-statement work (snapshot, executor start-up), as the worker's
# result write did (delivery/queue.py ``_record_pg``). The shared values are parameters, not repeated per row.
_PG_INSERT = (
    f"INSERT INTO messages ({', '.join(KEYS)}) "
    "SELECT id, tenant_id, kind, event, locale, to_addrs, to_first, data, %(status)s, 0, %(now)s, %(expires)s, "
    "%(now)s, %(now)s FROM json_to_recordset(%(rows)s::json) AS v(id varchar, tenant_id varchar, kind varchar, "
    "event varchar, locale varchar, to_addrs json, to_first varchar, data json)"
)


def _insert_pg(conn: Any, items: Sequence[NewMessage], ids: list[str], now: Any, expires: Any) -> bool:
    """False when the data cannot go through orjson (an integer beyond 64 bits): the caller's general path then."""
    try:
        doc = orjson.dumps([
            {"id": id_, "tenant_id": m.tenant_id, "kind": m.kind.value, "event": m.event, "locale": m.locale,
             "to_addrs": m.to, "to_first": m.to[0].lower(), "data": m.data}
            for m, id_ in zip(items, ids, strict=True)
        ])
    except TypeError:
        return False
    conn.exec_driver_sql(_PG_INSERT, {"rows": doc.decode(), "status": _QUEUED, "now": now, "expires": expires})
    return True
