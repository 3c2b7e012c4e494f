"""The SQLite writer lock: BEGIN IMMEDIATE polls with short sleeps (db._begin_immediate)."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest

from letterhead import db


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA busy_timeout=30000")
    return conn


def test_waits_for_the_lock_and_takes_it_soon_after_release(tmp_path: Path) -> None:
    holder, waiter = _connect(tmp_path / "q.db"), _connect(tmp_path / "q.db")
    holder.execute("BEGIN IMMEDIATE")
    released = []

    def release() -> None:
        time.sleep(0.05)
        released.append(time.monotonic())
        holder.execute("COMMIT")

    t = threading.Thread(target=release)
    t.start()
    db._begin_immediate(waiter)
    got = time.monotonic()
    t.join()
    assert waiter.in_transaction
    # SQLite's own handler would be asleep for up to 10-15 ms at this point; the poll is at most 2 ms apart.
    assert got - released[0] < 0.05
    # Every other statement keeps the usual busy timeout.
    assert waiter.execute("PRAGMA busy_timeout").fetchone()[0] == 30000
    waiter.execute("COMMIT")


def test_gives_up_with_database_is_locked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(db, "SQLITE_LOCK_WAIT_SECONDS", 0.05)
    holder, waiter = _connect(tmp_path / "q.db"), _connect(tmp_path / "q.db")
    holder.execute("BEGIN IMMEDIATE")
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        db._begin_immediate(waiter)
    assert not waiter.in_transaction
    assert waiter.execute("PRAGMA busy_timeout").fetchone()[0] == 30000
    holder.execute("COMMIT")


@pytest.mark.parametrize(("setting", "expected"), [(None, 256 * 1024 * 1024), (0, 0), (4096 * 1024, 4096 * 1024)])
def test_connections_read_through_a_memory_map_of_the_configured_size(
    tmp_path: Path, setting: int | None, expected: int
) -> None:
    from letterhead.settings import Settings

    extra = {} if setting is None else {"sqlite_mmap_bytes": setting}
    database = db.Database(Settings(env="test", data_dir=tmp_path, **extra))
    try:
        with database.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA mmap_size").scalar() == expected
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 10_000
    finally:
        database.engine.dispose()


def test_a_negative_memory_map_size_is_refused_with_the_setting_named() -> None:
    from pydantic import ValidationError

    from letterhead.settings import Settings

    with pytest.raises(ValidationError, match="sqlite_mmap_bytes"):
        Settings(env="test", sqlite_mmap_bytes=-1)


def test_reading_does_not_wait_for_the_writer_lock(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``Database.reading`` (the worker's batch set-up, the API's tenant read) is a plain BEGIN: another process
    holding the writer lock does not stall it, and it reads the last commit."""
    from letterhead.settings import Settings

    monkeypatch.setattr(db, "SQLITE_LOCK_WAIT_SECONDS", 0.2)
    database = db.Database(Settings(env="test", data_dir=tmp_path))
    try:
        with database.session() as s:
            s.connection().exec_driver_sql("CREATE TABLE t (x INTEGER)")
            s.connection().exec_driver_sql("INSERT INTO t VALUES (1)")
        holder = _connect(tmp_path / "letterhead.db")
        holder.execute("BEGIN IMMEDIATE")
        holder.execute("INSERT INTO t VALUES (2)")
        with database.reading() as s:
            assert s.connection().exec_driver_sql("SELECT count(*) FROM t").scalar() == 1
        # The pooled connection writes again afterwards: its next unit of work waits for the lock (and gives up).
        with pytest.raises(Exception, match="locked"), database.session() as s:
            s.connection().exec_driver_sql("SELECT 1")
        holder.execute("COMMIT")
        with database.reading() as s:
            assert s.connection().exec_driver_sql("SELECT count(*) FROM t").scalar() == 2
    finally:
        database.engine.dispose()


def test_the_write_ahead_log_length_is_a_setting(tmp_path: Path) -> None:
    from pydantic import ValidationError

    from letterhead.settings import Settings

    database = db.Database(Settings(env="test", data_dir=tmp_path, sqlite_wal_autocheckpoint=500))
    try:
        with database.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 500
    finally:
        database.engine.dispose()
    with pytest.raises(ValidationError, match="sqlite_wal_autocheckpoint"):
        Settings(env="test", sqlite_wal_autocheckpoint=0)  # 0 would let the log grow without bound
