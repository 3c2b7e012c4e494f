"""Engine and session factories.

SQLite gets the pragmas that make it a dependable embedded queue: WAL (readers never block the writer),
foreign keys on, a wait for the writer lock (``_begin_immediate``) so that the API and the workers take turns
instead of failing, ``synchronous=NORMAL`` (durable at WAL checkpoints; the safe, usual choice with WAL), and
reads through a memory map (``Settings.sqlite_mmap_bytes``: with workers in several processes, cheaper than
re-reading pages) and a longer write-ahead log between checkpoints (``Settings.sqlite_wal_autocheckpoint``).
Read-only work uses ``Database.reading`` (a plain BEGIN), never the writer lock. The data folder and the
database files are owner-only whatever the umask (``private_files``).
"""

from __future__ import annotations

import json
import operator
import os
import sqlite3
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import psycopg
from sqlalchemy import Connection, Engine, create_engine, event, make_url
from sqlalchemy import exc as sa_exc
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.sql.dml import UpdateBase

from letterhead.errors import StorageFull, Unavailable
from letterhead.settings import Settings


def json_dumps(value: Any) -> str:
    """JSON columns (message data, recipients, summaries) through orjson: ~7× faster than ``json.dumps`` for an
    order's data, ~2× for loading (measured; both sit on the delivery hot path). orjson refuses what JSON from a
    request can still hold (integers beyond 64 bits): the stdlib writes those."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return json.dumps(value, ensure_ascii=False)


#: How long BEGIN IMMEDIATE waits for the writer lock before "database is locked"; every other statement
#: waits as long through SQLite's busy_timeout.
SQLITE_LOCK_WAIT_SECONDS = 30.0
_BUSY_TIMEOUT = f"PRAGMA busy_timeout={int(SQLITE_LOCK_WAIT_SECONDS * 1000)}"


def _begin_immediate(dbapi_conn: Any) -> None:
    """Take SQLite's writer lock, polling every 0.25–2 ms.

    SQLite's own busy handler (busy_timeout) sleeps 1, 2, 5, 10, 15, 20, 25 … ms between tries, so with two
    worker processes and the API taking turns on the lock every few milliseconds, a waiter often sleeps well
    past the moment the lock was free (measured: the lock idle while both workers slept, cores at ~70%). Here
    only the BEGIN polls, with short sleeps; every other statement keeps the 30 s busy_timeout.
    """
    cur = dbapi_conn.cursor()
    deadline = time.monotonic() + SQLITE_LOCK_WAIT_SECONDS
    delay = 0.00025
    try:
        cur.execute("PRAGMA busy_timeout=0")
        while True:
            try:
                cur.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if exc.sqlite_errorcode != sqlite3.SQLITE_BUSY or time.monotonic() > deadline:
                    raise
            time.sleep(delay)
            delay = min(delay * 2, 0.002)
    finally:
        cur.execute(_BUSY_TIMEOUT)
        cur.close()


def make_engine(
    url: str, *, sqlite_mmap_bytes: int = 0, sqlite_wal_autocheckpoint: int = 1000, **kwargs: Any
) -> Engine:
    kwargs.setdefault("json_serializer", json_dumps)
    kwargs.setdefault("json_deserializer", orjson.loads)
    # A failed statement's exception (and so any log line or error page built from it) must not carry the
    # values: they can be password ciphertexts, tokens or a tenant's mail.
    kwargs.setdefault("hide_parameters", True)
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": SQLITE_LOCK_WAIT_SECONDS}, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            # pysqlite's own transaction handling is replaced by explicit BEGINs (below), so that a write
            # transaction takes the lock at BEGIN IMMEDIATE and never fails half way with "database is locked".
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute(f"PRAGMA mmap_size={int(sqlite_mmap_bytes)}")
            cur.execute(f"PRAGMA wal_autocheckpoint={int(sqlite_wal_autocheckpoint)}")
            cur.execute(_BUSY_TIMEOUT)
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            if conn.info.get("write", True):
                _begin_immediate(conn.connection.dbapi_connection)
            else:
                conn.exec_driver_sql("BEGIN")

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20, **kwargs)


def private_files(settings: Settings) -> None:
    """The data folder 0700 and an SQLite database with its ``-wal`` and ``-shm`` 0600, whatever the umask: the
    files hold every message, the folder the keys as well.

    SQLite creates a database 0644 minus the umask, and its ``-wal`` and ``-shm`` with the database file's mode
    (os_unix.c, findCreateFileMode), so the database file is created 0600 before SQLite first opens it; files
    made by an older version are corrected.
    """
    settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(settings.data_dir, 0o700)
    name = make_url(settings.effective_database_url).database
    if not name or name == ":memory:" or name.startswith("file:"):
        return
    os.close(os.open(name, os.O_CREAT | os.O_WRONLY, 0o600))  # an empty file is a new database to SQLite
    for path in (Path(name), Path(f"{name}-wal"), Path(f"{name}-shm")):
        if path.exists():
            os.chmod(path, 0o600)


class Database:
    """Holds the engine and hands out sessions. One per process (or per test)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        if settings.is_sqlite:
            private_files(settings)
        self.engine = make_engine(
            settings.effective_database_url,
            sqlite_mmap_bytes=settings.sqlite_mmap_bytes,
            sqlite_wal_autocheckpoint=settings.sqlite_wal_autocheckpoint,
        )
        self.is_sqlite = self.engine.dialect.name == "sqlite"
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A unit of work: commits on success, rolls back on error."""
        with self._sessions() as session, session.begin():
            yield session

    @contextmanager
    def reading(self) -> Iterator[Session]:
        """A unit of work that only reads: on SQLite a plain BEGIN, so it never takes the writer lock that the
        workers and the API take turns on (WAL readers see the last commit and block nobody). Rolled back."""
        with self.engine.connect() as conn:
            conn.info["write"] = False
            try:
                with Session(conn, expire_on_commit=False) as session:
                    yield session
            finally:
                conn.rollback()
                conn.info["write"] = True

    def dispose(self) -> None:
        self.engine.dispose()


# --- database outages as errors ---------------------------------------------------------------------------------

#: Seconds a client is told to wait (Retry-After): a restart or failover takes seconds; freeing disk space, longer.
RETRY_UNAVAILABLE_SECONDS = 10
RETRY_FULL_SECONDS = 60

#: SQLite primary result codes that mean "the database cannot be used right now", not "this statement is wrong".
_SQLITE_TRANSIENT = {
    sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_NOMEM, sqlite3.SQLITE_READONLY,
    sqlite3.SQLITE_IOERR, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_PROTOCOL,
}
#: PostgreSQL SQLSTATE classes/codes of the same kind: 08 connection exception, 53 insufficient resources
#: (53100 disk full, 53300 too many connections), 57P0x shutdown/restart, 58 system errors (I/O), 40001/40P01
#: serialization failure/deadlock, 55P03 lock timeout.
_PG_TRANSIENT_CLASSES = ("08", "53", "58")
_PG_TRANSIENT_CODES = {"57P01", "57P02", "57P03", "40001", "40P01", "55P03"}
_PG_DISK_FULL = "53100"


def unavailable(exc: BaseException) -> Unavailable | None:
    """The database outage ``exc`` stands for, or None when it is not one (a bug: a constraint, bad SQL).

    The one place where driver exceptions (SQLAlchemy's wrappers, and raw ``sqlite3``/``psycopg`` errors, which
    surface unwrapped from connection events such as ``_begin_immediate``) are told apart by what they mean
    for a caller: try again later, or not at all."""
    if isinstance(exc, sa_exc.TimeoutError):  # no pooled connection came free in time
        return _down()
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:  # SQLAlchemy saw a disconnect
        return _down()
    orig: BaseException = exc.orig if isinstance(exc, sa_exc.DBAPIError) and exc.orig is not None else exc
    if isinstance(orig, sqlite3.Error):
        code = getattr(orig, "sqlite_errorcode", None)
        primary = code & 0xFF if isinstance(code, int) else None
        if primary == sqlite3.SQLITE_FULL:
            return _full()
        return _down() if primary in _SQLITE_TRANSIENT else None
    if type(orig).__module__.split(".")[0] == "psycopg":
        state = getattr(orig, "sqlstate", None)
        if state == _PG_DISK_FULL:
            return _full()
        if state is None:  # no server reply: refused, dropped, closed
            return _down() if type(orig).__name__ in ("OperationalError", "InterfaceError") else None
        return _down() if state[:2] in _PG_TRANSIENT_CLASSES or state in _PG_TRANSIENT_CODES else None
    return None


def _down() -> Unavailable:
    return Unavailable(
        "The database cannot be reached right now, so the request was not carried out and nothing was changed. "
        f"Send it again in {RETRY_UNAVAILABLE_SECONDS} seconds: Letterhead reconnects by itself.",
        retry_after=RETRY_UNAVAILABLE_SECONDS,
    )


def _full() -> StorageFull:
    return StorageFull(
        "The database's disk is full, so the request was not carried out and nothing was stored. Send it again "
        "later; the operator needs to free disk space (docs/deployment.md, 'Disk space').",
        retry_after=RETRY_FULL_SECONDS,
    )


#: Exceptions that may stand for a database outage (see ``unavailable``); the HTTP edge catches these.
DATABASE_ERRORS: tuple[type[Exception], ...] = (
    sa_exc.DBAPIError, sa_exc.TimeoutError, sqlite3.Error, psycopg.Error,
)


# --- executemany without per-row SQLAlchemy work ---------------------------------------------------------------

@dataclass(frozen=True)
class _Many:
    sql: str
    names: tuple[str, ...]
    positional: bool
    literals: dict[str, Any]  # already processed
    get: Callable[[Mapping[str, Any]], tuple[Any, ...]]
    processed: tuple[tuple[int, Callable[[Any], Any]], ...]  # (position in names, bind processor)


_compiled: dict[tuple[int, str], _Many] = {}


def _prepare_many(stmt: UpdateBase, dialect: Any) -> _Many:
    compiled = stmt.compile(dialect=dialect)
    positional = bool(compiled.positional)
    names = tuple(compiled.positiontup or ()) if positional else tuple(compiled.binds)
    literals: dict[str, Any] = {}
    processed = []
    for i, name in enumerate(names):
        bind = compiled.binds[name]
        proc = bind.type._cached_bind_processor(dialect)
        if not bind.required:
            value = bind.effective_value
            literals[name] = proc(value) if proc is not None and value is not None else value
        elif proc is not None:
            processed.append((i, proc))
    getter = operator.itemgetter(*names)
    get = getter if len(names) > 1 else (lambda row: (getter(row),))
    return _Many(compiled.string, names, positional, literals, get, tuple(processed))


@dataclass(frozen=True)
class ManyParams:
    """A statement's rows bound and converted for the DBAPI, ready for :func:`run_many`."""

    sql: str
    params: list[Any]


def many_params(dialect: Any, stmt: UpdateBase, rows: Sequence[Mapping[str, Any]]) -> ManyParams:
    """``rows`` converted for one DBAPI ``executemany`` of ``stmt`` (see :func:`executemany`).

    Separate from running it so that a SQLite writer can convert before it takes the database's single writer
    lock: every other process waits while the lock is held, and this is Python work (JSON, timestamps) that
    needs no lock.
    """
    key = (id(stmt), dialect.name)
    many = _compiled.get(key)
    if many is None:
        many = _compiled[key] = _prepare_many(stmt, dialect)
    literals, get, processed = many.literals, many.get, many.processed
    memo: dict[tuple[int, int], Any] = {}
    params: list[Any] = []
    for row in rows:
        values = list(get({**row, **literals} if literals else row))
        for i, proc in processed:
            v = values[i]
            if v is not None:
                k = (i, id(v))
                p = memo.get(k)
                if p is None:
                    p = memo[k] = proc(v)
                values[i] = p
        params.append(tuple(values) if many.positional else dict(zip(many.names, values, strict=True)))
    return ManyParams(many.sql, params)


def run_many(conn: Connection, many: ManyParams) -> int:
    """Run what :func:`many_params` converted; returns the rows affected."""
    return int(conn.exec_driver_sql(many.sql, many.params).rowcount)


def executemany(conn: Connection, stmt: UpdateBase, rows: Sequence[Mapping[str, Any]]) -> int:
    """Run ``stmt`` once per row of ``rows`` (one DBAPI ``executemany``); returns the rows affected.

    The same statement through ``Connection.execute(stmt, rows)`` builds a parameter dict and runs every bind
    processor per row and column: on the worker's result write (one UPDATE + one INSERT per message) that was
    half of the write's CPU (measured: ~60 → ~35 µs per message on SQLite). Here the statement is compiled once
    per dialect, the processors are looked up once, a row's values are read by one ``itemgetter`` call, and
    each distinct value object is processed once per call (a batch shares its timestamps). ``stmt`` must be a
    module-level constant (its id is the cache key) whose parameters are ``bindparam``s named like the keys of
    ``rows`` or literals (``column == "sending"``), which are the same for every row.
    """
    return run_many(conn, many_params(conn.dialect, stmt, rows))
