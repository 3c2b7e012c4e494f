"""A PostgreSQL server for the tests.

``LETTERHEAD_TEST_DATABASE_URL`` (a database the tests may create databases in) wins; else, when the server
binaries are installed, a throwaway cluster is started in a temporary folder (as the ``postgres`` user when the
tests run as root, since initdb refuses root). Each test gets a fresh database cloned from a migrated template,
which takes milliseconds.
"""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from collections.abc import Iterator

import pytest

from letterhead.pgcluster import PgCluster, pg_bin

REQUIRE_ALL = os.environ.get("LETTERHEAD_REQUIRE_ALL_SUITES") == "1"


def _skip_or_fail(reason: str) -> None:
    if REQUIRE_ALL:
        pytest.fail(f"PostgreSQL suite is mandatory here (LETTERHEAD_REQUIRE_ALL_SUITES=1): {reason}")
    pytest.skip(reason)


def _bin(name: str) -> str | None:
    return pg_bin(name)


class Cluster(PgCluster):
    """Tuned for tests: durability off (a crash loses a throwaway database, nothing else)."""

    def __init__(self) -> None:
        super().__init__(options="-c fsync=off -c synchronous_commit=off -c full_page_writes=off")


@pytest.fixture(scope="session")
def pg_server_url() -> Iterator[str]:
    """URL of a database on a server where tests may CREATE DATABASE."""
    url = os.environ.get("LETTERHEAD_TEST_DATABASE_URL")
    if url:
        yield url
        return
    if not (_bin("initdb") and _bin("pg_ctl")):
        _skip_or_fail("no PostgreSQL: set LETTERHEAD_TEST_DATABASE_URL or install postgresql")
    if os.geteuid() == 0:
        try:
            import pwd

            pwd.getpwnam("postgres")
        except KeyError:
            _skip_or_fail("running as root and there is no 'postgres' user to run initdb as")
    cluster = Cluster()
    try:
        cluster.start()
    except subprocess.CalledProcessError as exc:
        cluster.stop()
        _skip_or_fail(f"could not start a throwaway PostgreSQL: {exc.stderr.decode(errors='replace')[:500]}")
    try:
        yield cluster.url
    finally:
        cluster.stop()


def _admin(url: str, sql: str) -> None:
    import psycopg

    plain = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(sql)  # type: ignore[arg-type]


def with_database(url: str, name: str) -> str:
    base, _, _ = url.rpartition("/")
    return f"{base}/{name}"


@pytest.fixture(scope="session")
def pg_template(pg_server_url: str) -> Iterator[str]:
    """A migrated template database, cloned per test."""
    from letterhead import migrate
    from letterhead.db import make_engine

    name = f"lh_tpl_{uuid.uuid4().hex[:8]}"
    _admin(pg_server_url, f'CREATE DATABASE "{name}"')
    engine = make_engine(with_database(pg_server_url, name))
    migrate.upgrade(engine)
    engine.dispose()
    yield name
    _admin(pg_server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def pg_url(pg_server_url: str, pg_template: str) -> Iterator[str]:
    name = f"lh_t_{uuid.uuid4().hex[:10]}"
    for _ in range(5):
        try:
            _admin(pg_server_url, f'CREATE DATABASE "{name}" TEMPLATE "{pg_template}"')
            break
        except Exception:  # the template is briefly busy right after it was migrated
            time.sleep(0.2)
    yield with_database(pg_server_url, name)
    _admin(pg_server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
