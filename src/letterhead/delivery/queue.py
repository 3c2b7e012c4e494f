"""The outbox: accepting messages and leasing them to workers.

Design: the database is the queue (Postal v3, Solid Queue and procrastinate work the same way). A message row is
inserted in the same transaction that answers 202, so nothing is lost between "accepted" and "queued". Workers
lease due rows in batches by setting ``status='sending'``, an owner and a lease deadline in one UPDATE:

- PostgreSQL: the inner SELECT takes ``FOR UPDATE SKIP LOCKED``, so any number of workers on any number of
  machines claim disjoint batches without waiting on each other.
- SQLite: every write transaction starts with ``BEGIN IMMEDIATE`` (see db.py), so the UPDATE runs under the
  single writer lock: two claimers can never see the same row as due.

Leases are short (``settings.lease_seconds``, 30 s) and renewed by a live worker (``renew``) for the messages in
its hands: a lease whose deadline passed (the worker was killed) is claimable again, so delivery is
at-least-once, duplicates bounded by what was in flight. Results are written back in one transaction per batch
(executemany), guarded by the lease owner. A result that comes back after its lease was taken over by another
worker still appends its attempt (a duplicate delivery shows in the log) but never moves the message backwards:
only a late "sent" changes a message that is not sent yet (``_record_taken_over``).
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, NamedTuple, cast

import orjson
from sqlalchemy import ARRAY, String, Table, and_, any_, bindparam, insert, null, select, text, type_coerce, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.types import NullType

from letterhead.context import Context
from letterhead.db import Database, executemany, many_params, run_many
from letterhead.errors import Conflict
from letterhead.models import LIVE_PREDICATE, Attempt, Message, MessageKind, MessageStatus, new_ids, utcnow

messages = cast(Table, Message.__table__)
attempts = cast(Table, Attempt.__table__)


@dataclass
class NewMessage:
    """What a service hands to ``enqueue``: content or notification data, never the effective sender."""

    tenant_id: str
    kind: MessageKind
    to: list[str]
    subject: str | None = None
    html: str | None = None
    text: str | None = None
    event: str | None = None
    locale: str | None = None
    data: dict[str, Any] | None = None
    options: dict[str, Any] | None = None
    idempotency_key: str | None = None
    #: The request as accepted, hashed to tell a retry from a reused idempotency key.
    request_fingerprint: Any = None


@dataclass(frozen=True)
class Accepted:
    id: str
    status: str
    created: bool  # False: an idempotent replay of an earlier request


def _fingerprint(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, ensure_ascii=False, default=str).encode()).hexdigest()


_ROW_KEYS = (
    "id", "tenant_id", "kind", "event", "locale", "to_addrs", "to_first", "subject", "html", "text", "data",
    "options", "status", "attempt_count", "next_attempt_at", "expires_at", "created_at", "updated_at",
    "idempotency_key", "request_hash",
)
# A module-level constant: db.executemany compiles it once per dialect (a batch of 1,000 shares its timestamps,
# converted once instead of once per row).
_INSERT_MESSAGE = insert(messages).values({k: bindparam(k) for k in _ROW_KEYS})


def _row(msg: NewMessage, now: datetime, expires: datetime, id_: str) -> dict[str, Any]:
    return {
        "id": id_,
        "tenant_id": msg.tenant_id,
        "kind": msg.kind.value,
        "event": msg.event,
        "locale": msg.locale,
        "to_addrs": msg.to,
        "to_first": msg.to[0].lower(),
        "subject": msg.subject,
        "html": msg.html,
        "text": msg.text,
        "data": msg.data,
        "options": msg.options,
        "status": MessageStatus.QUEUED.value,
        "attempt_count": 0,
        "next_attempt_at": now,
        "expires_at": expires,
        "created_at": now,
        "updated_at": now,
        "idempotency_key": msg.idempotency_key,
        "request_hash": _fingerprint(msg.request_fingerprint) if msg.idempotency_key else None,
    }


def enqueue_many(ctx: Context, items: Sequence[NewMessage]) -> list[Accepted]:
    """Insert messages in one transaction; idempotent replays return the first message instead.

    A reused idempotency key with a different request is a 409 (Conflict) and nothing of the batch is written.
    """
    now = utcnow()
    expires = now + timedelta(seconds=ctx.settings.message_lifetime_seconds)
    rows = [_row(m, now, expires, i) for m, i in zip(items, new_ids("msg_", len(items)), strict=True)]
    try:
        return _insert(ctx.db, rows)
    except IntegrityError:
        # Two requests with the same key raced past the lookup: the loser now finds the winner's row.
        return _insert(ctx.db, rows)


def _insert(db: Database, rows: list[dict[str, Any]]) -> list[Accepted]:
    results: list[Accepted | None] = [None] * len(rows)
    with db.session() as s:
        keyed = [(i, r) for i, r in enumerate(rows) if r["idempotency_key"]]
        if keyed:
            seen: dict[tuple[str, str], Any] = {}
            by_tenant: dict[str, list[str]] = {}
            for _, r in keyed:
                by_tenant.setdefault(r["tenant_id"], []).append(r["idempotency_key"])
            for tenant_id, keys in by_tenant.items():
                found = s.execute(
                    select(messages.c.id, messages.c.status, messages.c.idempotency_key, messages.c.request_hash)
                    .where(messages.c.tenant_id == tenant_id)
                    .where(messages.c.idempotency_key.in_(keys))
                )
                for row in found:
                    seen[(tenant_id, row.idempotency_key)] = row
            for i, r in keyed:
                key = (r["tenant_id"], r["idempotency_key"])
                prior = seen.get(key)
                if prior is None:
                    seen[key] = r  # a key repeated inside one batch refers to its first occurrence
                    continue
                prior_hash = prior["request_hash"] if isinstance(prior, dict) else prior.request_hash
                if prior_hash != r["request_hash"]:
                    raise Conflict(
                        f"The idempotency key '{r['idempotency_key']}' was already used with a different "
                        "request. Use a new key for a new message.",
                        idempotency_key=r["idempotency_key"],
                    )
                prior_id = prior["id"] if isinstance(prior, dict) else prior.id
                prior_status = prior["status"] if isinstance(prior, dict) else prior.status
                results[i] = Accepted(prior_id, prior_status, created=False)
        fresh = [r for i, r in enumerate(rows) if results[i] is None]
        if fresh:
            executemany(s.connection(), _INSERT_MESSAGE, fresh)
        for i, r in enumerate(rows):
            if results[i] is None:
                results[i] = Accepted(r["id"], r["status"], created=True)
    return [r for r in results if r is not None]


def enqueue(ctx: Context, item: NewMessage) -> Accepted:
    return enqueue_many(ctx, [item])[0]


# --- leasing -------------------------------------------------------------------------------------------------

class Claimed(NamedTuple):
    """A leased message, as ``claim`` returns it."""

    id: str
    tenant_id: str
    kind: str
    event: str | None
    locale: str | None
    to_addrs: list[str]
    subject: str | None
    html: str | None
    text: str | None
    data: dict[str, Any] | None
    options: dict[str, Any] | None
    attempt_count: int
    expires_at: datetime
    created_at: datetime


CLAIM_COLUMNS = tuple(messages.c[name] for name in Claimed._fields)
#: The same columns as the database returns them: JSON and timestamps are converted after the claim's transaction
#: (``_claimed``), since on SQLite it holds the one writer lock (measured: ~7 of a claim's ~25 µs per message).
#: A claim counts the attempt it may lead to (``attempt_count + 1``, see ``claim``) and returns the count as it was.
_CLAIM_RAW = tuple(
    (c - 1 if c.name == "attempt_count" else type_coerce(c, NullType())).label(c.name) for c in CLAIM_COLUMNS
)
_claim_processors: dict[str, tuple[tuple[int, Callable[[Any], Any]], ...]] = {}


def _claimed(dialect: Any, raw: Sequence[Any]) -> list[Claimed]:
    """Rows of ``_CLAIM_RAW`` converted as SQLAlchemy would have converted ``CLAIM_COLUMNS`` (same processors)."""
    procs = _claim_processors.get(dialect.name)
    if procs is None:
        found = ((i, c.type._cached_result_processor(dialect, None)) for i, c in enumerate(CLAIM_COLUMNS))
        procs = _claim_processors[dialect.name] = tuple((i, p) for i, p in found if p is not None)
    out = []
    for row in raw:
        values = list(row)
        for i, proc in procs:
            values[i] = proc(values[i])
        out.append(Claimed._make(values))
    return out


#: The due time as the database returns it, only to merge the branches in order: comparing SQLite's ISO text
#: (one format for every row) orders like the times; parsing 500 of them per claim cost ~4 µs a message.
_DUE_AT_RAW = type_coerce(messages.c.next_attempt_at, NullType())


#: The partial index's own condition, word for word: SQLite uses a partial index only for a query whose WHERE
#: contains it (it does not infer it from ``status = 'queued'``).
_LIVE = text(LIVE_PREDICATE)


def _ids_array(ids: list[str]) -> Any:
    return bindparam("ids", ids, type_=ARRAY(String))


def _due_branches(now: datetime) -> list[Any]:
    """The three kinds of claimable rows, each a condition the ``(status, next_attempt_at)`` index serves in
    order. One ``OR`` of them would make the database collect *every* due row and sort it before the LIMIT
    (SQLite: "MULTI-INDEX OR" + "TEMP B-TREE FOR ORDER BY"), i.e. seconds and a growing temp tree per claim
    with a million queued; each branch alone stops after ``limit`` index entries."""
    return [
        and_(_LIVE, messages.c.status == MessageStatus.QUEUED.value, messages.c.next_attempt_at <= now),
        and_(_LIVE, messages.c.status == MessageStatus.DEFERRED.value, messages.c.next_attempt_at <= now),
        # A stale lease: its worker died (or hangs) past the deadline. A claim sets next_attempt_at to the deadline
        # too, so the index finds these in order and stops at once when there are none; with leased_until alone it
        # read every leased row (up to 2,000 with two workers) in every claim, under SQLite's writer lock.
        and_(
            _LIVE,
            messages.c.status == MessageStatus.SENDING.value,
            messages.c.next_attempt_at <= now,
            messages.c.leased_until < now,
        ),
    ]


def claim(
    db: Database, *, owner: str, limit: int, lease_seconds: int, now: datetime | None = None
) -> list[Claimed]:
    """Lease up to ``limit`` due messages to ``owner``; returns their rows.

    Candidates are read per branch (queued, deferred, stale leases; on PostgreSQL locked with ``FOR UPDATE SKIP
    LOCKED``), merged by due time so retries are not starved by a stream of new messages, and the first
    ``limit`` are leased in one UPDATE, all in one transaction.

    The claim counts the attempt (``attempt_count + 1``) before it is made; ``record`` takes it back for a
    message that was not attempted. So an attempt whose worker died before it could record it (kill -9, after
    the server may have accepted the message) still shows: the message's ``attempt_count`` exceeds its
    recorded attempts, and their numbers leave a gap. The rows returned carry the count as it was.
    """
    now = now or utcnow()
    with db.session() as s:
        candidates: list[tuple[Any, str]] = []
        for cond in _due_branches(now):
            q = select(_DUE_AT_RAW, messages.c.id).where(cond)
            q = q.order_by(messages.c.next_attempt_at).limit(limit)
            if not db.is_sqlite:
                q = q.with_for_update(skip_locked=True)
            candidates += [(r[0], r[1]) for r in s.execute(q)]
        if not candidates:
            return []
        candidates.sort()
        ids = [i for _, i in candidates[:limit]]
        deadline = now + timedelta(seconds=lease_seconds)
        stmt = (
            update(messages)
            # PostgreSQL: one array parameter; an IN list of 500 placeholders is a new query text for psycopg to
            # parse and cast every time (~5 µs a message).
            .where(messages.c.id.in_(ids) if db.is_sqlite else messages.c.id == any_(_ids_array(ids)))
            .values(
                status=MessageStatus.SENDING.value,
                lease_owner=owner,
                leased_until=deadline,
                next_attempt_at=deadline,  # if this worker never reports back (see _due_branches)
                attempt_count=messages.c.attempt_count + 1,
                updated_at=now,
            )
            .returning(*_CLAIM_RAW)
        )
        raw = s.execute(stmt).all()
    return _claimed(db.engine.dialect, raw)


def renew(
    db: Database, *, owner: str, ids: Sequence[str], lease_seconds: float, now: datetime | None = None
) -> int:
    """Extend ``owner``'s leases on ``ids`` (one UPDATE); returns how many it still holds. A message whose lease
    was taken over (or that is already recorded) is left alone."""
    if not ids:
        return 0
    now = now or utcnow()
    deadline = now + timedelta(seconds=lease_seconds)
    with db.session() as s:
        result = s.execute(
            update(messages)
            .where(messages.c.id.in_(ids) if db.is_sqlite else messages.c.id == any_(_ids_array(list(ids))))
            .where(messages.c.lease_owner == owner)
            # next_attempt_at too: the due index finds stale leases by it (see _due_branches).
            .values(leased_until=deadline, next_attempt_at=deadline)
        )
        return int(getattr(result, "rowcount", 0))


@dataclass
class Result:
    """The outcome of one attempt, to be written back (message summary + one attempt row)."""

    message_id: str
    status: MessageStatus
    attempt: dict[str, Any] | None  # None: not attempted (e.g. held), nothing appended
    next_attempt_at: datetime | None = None
    summary: dict[str, Any] = field(default_factory=dict)  # from_addr, last_code, category, ...


#: The message columns an outcome writes (its summary), with their SQL types (PostgreSQL's batched write names
#: them); a summary holds the ones it knows, the rest are cleared.
_SUMMARY_TYPES = {
    "from_addr": "varchar", "from_name": "varchar", "reply_to": "varchar", "mode": "varchar", "transport": "varchar",
    "note": "text", "last_code": "int", "last_enhanced": "varchar", "last_text": "text", "category": "varchar",
    "remedy": "json", "message_id_header": "varchar", "sent_at": "timestamptz",
}
_SUMMARY_KEYS = tuple(_SUMMARY_TYPES)
_NO_SUMMARY = dict.fromkeys(_SUMMARY_KEYS)

#: An attempt row's columns and their SQL types.
_ATTEMPT_TYPES = {
    "message_id": "varchar", "number": "int", "started_at": "timestamptz", "duration_ms": "float8",
    "mode": "varchar", "transport": "varchar", "stage": "varchar", "code": "int", "enhanced": "varchar",
    "text": "text", "error": "varchar", "category": "varchar", "transcript": "text", "outcome": "varchar",
}
_ATTEMPT_KEYS = tuple(_ATTEMPT_TYPES)

#: What a result without an attempt (held by a quota, waiting for a busy SMTP account, slow to render, expired
#: before it could be tried) leaves as it was unless it names some of it: the last reply stays in the log beside
#: the note that says why the message waits now, and so does its diagnosis. Each group goes together (a reply's
#: code without its text, or a remedy under another category, would mislead).
_KEPT_UNLESS_NAMED = (("last_code", "last_enhanced", "last_text"), ("category", "remedy"), ("sent_at",))


def _columns(kept: Iterable[tuple[str, ...]]) -> tuple[str, ...]:
    """The summary columns written when the ``kept`` groups are left as they were."""
    left = {k for group in kept for k in group}
    return tuple(k for k in _SUMMARY_KEYS if k not in left)


def _written(r: Result) -> tuple[str, ...]:
    """The summary columns ``r`` writes (those it does not name are cleared, see ``_KEPT_UNLESS_NAMED``)."""
    if r.attempt is not None:
        return _SUMMARY_KEYS
    named = r.summary.keys()
    return _columns(group for group in _KEPT_UNLESS_NAMED if not named & set(group))


def _record_statement(summary_keys: Sequence[str]) -> Any:
    return (
        update(messages)
        .where(messages.c.id == bindparam("b_id"))
        .where(messages.c.lease_owner == bindparam("b_owner"))
        .where(messages.c.status == MessageStatus.SENDING.value)
        .values(
            {k: bindparam(k) for k in summary_keys}
            | {
                "status": bindparam("status"),
                "next_attempt_at": bindparam("next_attempt_at"),
                "updated_at": bindparam("updated_at"),
                "attempt_count": messages.c.attempt_count + bindparam("inc"),
                "lease_owner": null(),
                "leased_until": null(),
            }
        )
    )


#: Every set of columns ``_written`` can give (each group kept or not), each statement built once here: module-level,
#: since db.executemany compiles a statement once per dialect, keyed by the object's id.
_COLUMN_SETS = [
    _columns(itertools.compress(_KEPT_UNLESS_NAMED, mask))
    for mask in itertools.product((False, True), repeat=len(_KEPT_UNLESS_NAMED))
]
_RECORD = {keys: _record_statement(keys) for keys in _COLUMN_SETS}
_APPEND_ATTEMPT = insert(attempts).values({k: bindparam(k) for k in _ATTEMPT_KEYS})


def _pg_record_sql(summary_keys: Sequence[str]) -> str:
    """PostgreSQL: the whole batch as one JSON document, one statement each (see ``_record_pg``)."""
    return (
        "UPDATE messages AS m SET "
        + ", ".join(f"{k} = v.{k}" for k in summary_keys)
        + ", status = v.status, next_attempt_at = v.next_attempt_at, updated_at = %(now)s,"
        " attempt_count = m.attempt_count + v.inc, lease_owner = NULL, leased_until = NULL"
        " FROM json_to_recordset(%(rows)s::json) AS v(id varchar, status varchar, next_attempt_at timestamptz, "
        "inc int, "
        + ", ".join(f"{k} {_SUMMARY_TYPES[k]}" for k in summary_keys)
        # The lease guard is lease_owner alone (only a claim sets it, with status 'sending'; every other write
        # clears it): the planner, seeing few 'sending' rows in stale statistics, would otherwise walk the due
        # index and re-read the JSON for every leased row (measured: ~700 µs of server CPU a message). The ids as
        # an array let it fetch the batch by primary key and hash-join the JSON once.
        + ") WHERE m.id = v.id AND m.id = ANY(%(ids)s) AND m.lease_owner = %(owner)s"
    )


_PG_RECORD = {keys: _pg_record_sql(keys) for keys in _COLUMN_SETS}
_PG_APPEND_ATTEMPTS = (
    f"INSERT INTO attempts ({', '.join(_ATTEMPT_TYPES)}) SELECT {', '.join(_ATTEMPT_TYPES)}"
    " FROM json_to_recordset(%(rows)s::json) AS v("
    + ", ".join(f"{k} {t}" for k, t in _ATTEMPT_TYPES.items())
    + ")"
)


def _record_pg(conn: Any, owner: str, results: Sequence[Result], now: datetime, *, attempts: bool = True) -> int:
    """PostgreSQL: one UPDATE … FROM json_to_recordset(…) and one INSERT … SELECT per batch (another UPDATE for
    results without an attempt, see ``_written``).

    ``executemany`` runs the statement once per row, and every run pays PostgreSQL's per-statement work (snapshot,
    executor start-up): most of the server's CPU per message on the delivery benchmark. Arrays per column cost
    more on the client (psycopg adapts every element) than one JSON document from orjson."""
    updated = 0
    for keys, part in _by_columns(results):
        update_rows = [
            {
                **r.summary,
                "id": r.message_id,
                "status": r.status.value,
                "next_attempt_at": r.next_attempt_at or now,
                "inc": 0 if r.attempt is not None else -1,
            }
            for r in part
        ]
        params = {"now": now, "owner": owner, "rows": _rows_json(update_rows), "ids": [r.message_id for r in part]}
        updated += int(conn.exec_driver_sql(_PG_RECORD[keys], params).rowcount)
    if attempts:
        _append_pg(conn, results)
    return updated


def _append_pg(conn: Any, results: Sequence[Result]) -> None:
    attempts_rows = [r.attempt for r in results if r.attempt is not None]
    if attempts_rows:
        conn.exec_driver_sql(_PG_APPEND_ATTEMPTS, {"rows": _rows_json(attempts_rows)})


def _by_columns(results: Sequence[Result]) -> list[tuple[tuple[str, ...], Sequence[Result]]]:
    """The results grouped by the summary columns they write (``_written``)."""
    if all(r.attempt is not None for r in results):
        return [(_SUMMARY_KEYS, results)]  # the usual batch: one statement
    groups: dict[tuple[str, ...], list[Result]] = {}
    for r in results:
        groups.setdefault(_written(r), []).append(r)
    return list(groups.items())


def _rows_json(rows: list[dict[str, Any]]) -> str:
    # orjson writes aware datetimes as RFC 3339, which timestamptz reads; keys json_to_recordset does not name
    # are ignored, and the ones a row lacks are NULL.
    return orjson.dumps(rows).decode()


class _TakenOver(Exception):
    """Some results' leases belong to another worker now: the batch is written again, row by row."""


def record(db: Database, *, owner: str, results: Sequence[Result], now: datetime | None = None) -> int:
    """Write a batch of outcomes in one transaction. Returns how many messages were still leased to ``owner``.

    Every attempt is appended, also one whose lease another worker took over meanwhile (its late result: the
    message was then sent twice, and the log must show it); see ``_record_taken_over`` for what such a result
    does to the message."""
    if not results:
        return 0
    now = now or utcnow()
    try:
        return _record_owned(db, owner, results, now)
    except _TakenOver:
        return _record_taken_over(db, owner, results, now)


def _record_owned(db: Database, owner: str, results: Sequence[Result], now: datetime) -> int:
    """The usual case, in as few statements as possible: every result's lease is still ``owner``'s (else
    ``_TakenOver``, and nothing of this transaction is kept)."""
    if not db.is_sqlite:
        with db.session() as s:
            updated = _record_pg(s.connection(), owner, results, now, attempts=False)
            if updated < len(results):
                raise _TakenOver
            _append_pg(s.connection(), results)
            return updated
    # Converted before the transaction begins: it holds SQLite's one writer lock, which the other workers' claims
    # and the API's inserts wait for (measured: 3-6 of the write's ~20 µs per message in one thread).
    dialect = db.engine.dialect
    updates = [
        many_params(dialect, _RECORD[keys], [
            {
                **_NO_SUMMARY,  # a summary names only what it knows; the rest of the columns are cleared
                **r.summary,
                "b_id": r.message_id,
                "b_owner": owner,
                "status": r.status.value,
                "next_attempt_at": r.next_attempt_at or now,
                "updated_at": now,
                "inc": 0 if r.attempt is not None else -1,
            }
            for r in part
        ])
        for keys, part in _by_columns(results)
    ]
    rows = [r.attempt for r in results if r.attempt is not None]
    appended = many_params(dialect, _APPEND_ATTEMPT, rows) if rows else None
    updated = 0
    with db.session() as s:
        conn = s.connection()
        for many in updates:
            updated += run_many(conn, many)
        if updated < len(results):
            raise _TakenOver
        if appended is not None:
            run_many(conn, appended)
    return updated


def _late_sent_statement(summary_keys: Sequence[str]) -> Any:
    """A "sent" that arrives after the lease was taken over: the message was delivered, whatever the other
    worker is doing with it (its own later result then finds the lease gone)."""
    return (
        update(messages)
        .where(messages.c.id == bindparam("b_id"))
        .where(messages.c.status != MessageStatus.SENT.value)
        .values(
            {k: bindparam(k) for k in summary_keys}
            | {
                "status": MessageStatus.SENT.value,
                "updated_at": bindparam("updated_at"),
                "lease_owner": null(),
                "leased_until": null(),
            }
        )
    )


_LATE_SENT = _late_sent_statement(_SUMMARY_KEYS)


def _summary_columns(r: Result) -> dict[str, Any]:
    return {k: v for k, v in r.summary.items() if k in _SUMMARY_TYPES}


def _record_taken_over(db: Database, owner: str, results: Sequence[Result], now: datetime) -> int:
    """Some leases were taken over (this worker was too slow, or the database was away past the lease): the
    results still ours are written as usual; a late "sent" marks the message sent unless it is already; any other
    late result changes nothing (a late "transient" must not undo another worker's "sent", nor put back a
    message that another worker holds; its claim counted the attempt already). Every attempt row is appended.
    Rare, so plain statements."""
    ids = [r.message_id for r in results]
    q = select(messages.c.id, messages.c.lease_owner).where(messages.c.id.in_(ids))
    with db.session() as s:
        if not db.is_sqlite:
            q = q.with_for_update()  # no claim can move a lease between this read and the writes below
        owners: dict[str, str | None] = {row[0]: row[1] for row in s.execute(q)}
        mine = [r for r in results if owners.get(r.message_id) == owner]
        late = [r for r in results if r.message_id in owners and owners[r.message_id] != owner]
        updated = 0
        if mine:
            if db.is_sqlite:
                for keys, part in _by_columns(mine):
                    rows = [{**_NO_SUMMARY, **_summary_columns(r), "b_id": r.message_id, "b_owner": owner,
                             "status": r.status.value, "next_attempt_at": r.next_attempt_at or now,
                             "updated_at": now, "inc": 0 if r.attempt is not None else -1} for r in part]
                    updated += int(s.execute(_RECORD[keys], rows).rowcount)  # type: ignore[attr-defined]
            else:
                updated = _record_pg(s.connection(), owner, mine, now, attempts=False)
        late_sent = [r for r in late if r.status is MessageStatus.SENT]
        if late_sent:
            s.execute(_LATE_SENT, [
                {**_NO_SUMMARY, **_summary_columns(r),
                 "b_id": r.message_id, "updated_at": now}
                for r in late_sent
            ])
        attempts_rows = [r.attempt for r in results if r.attempt is not None and r.message_id in owners]
        if attempts_rows:
            s.execute(insert(attempts), attempts_rows)
    return updated
