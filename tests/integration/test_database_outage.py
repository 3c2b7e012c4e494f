"""PostgreSQL stopped under a running ``letterhead serve``: every route answers 503 problem+json (or the UI's page)
with Retry-After over the same keep-alive connection, and everything works again once the server is back,
without restarting Letterhead.

The test runs its own cluster (stopping the shared one would break the other PostgreSQL tests)."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from letterhead import migrate
from letterhead.context import Context
from letterhead.notifications.events import EVENTS
from letterhead.pgcluster import PgCluster, pg_bin
from letterhead.tenants import create_api_key, create_tenant
from tests.conftest import make_settings
from tests.support.pg import REQUIRE_ALL
from tests.support.processes import free_port
from tests.support.service import LETTERHEAD, local_address, running
from tests.support.smtpd import SmtpServer

pytestmark = pytest.mark.postgres


class StoppableCluster(PgCluster):
    """A cluster that can be stopped and started again on the same port and data."""

    def __init__(self) -> None:
        super().__init__(prefix="lh-pg-outage-", options="-c fsync=off -c synchronous_commit=off")

    def halt(self) -> None:
        pg_ctl = pg_bin("pg_ctl")
        assert pg_ctl
        # fast: open sessions are ended (the pool's connections die) and new ones are refused
        self._run(pg_ctl, "-D", str(self.dir / "data"), "-m", "fast", "-w", "stop")

    def resume(self) -> None:
        pg_ctl = pg_bin("pg_ctl")
        assert pg_ctl
        opts = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.dir} "
            f"-c max_connections=200 {self.options}"
        )
        self._run(pg_ctl, "-D", str(self.dir / "data"), "-o", opts, "-l", str(self.dir / "log"), "-w", "start")


@pytest.fixture
def cluster() -> Iterator[StoppableCluster]:
    reason = None
    if not (pg_bin("initdb") and pg_bin("pg_ctl")):
        reason = "no PostgreSQL server binaries (initdb, pg_ctl)"
    elif os.geteuid() == 0:
        import pwd

        try:
            pwd.getpwnam("postgres")
        except KeyError:
            reason = "running as root and there is no 'postgres' user to run initdb as"
    if reason:
        if REQUIRE_ALL:
            pytest.fail(f"PostgreSQL suite is mandatory here (LETTERHEAD_REQUIRE_ALL_SUITES=1): {reason}")
        pytest.skip(reason)
    c = StoppableCluster()
    try:
        c.start()
    except subprocess.CalledProcessError as exc:
        c.stop()
        pytest.fail(f"could not start a throwaway PostgreSQL: {exc.stderr.decode(errors='replace')[:500]}")
    try:
        yield c
    finally:
        c.stop()


def _assert_unavailable(response: httpx.Response, *, html: bool = False) -> None:
    assert response.status_code == 503, (response.status_code, response.headers, response.text[:500])
    assert int(response.headers["retry-after"]) > 0
    if html:
        assert response.headers["content-type"].startswith("text/html")
        assert "Temporarily unavailable" in response.text and "Try again in a minute" in response.text
    else:
        assert response.headers["content-type"] == "application/problem+json"
        body = response.json()
        assert body["status"] == 503 and body["type"].endswith("/database-unavailable")
        assert "again" in body["detail"]
        assert "127.0.0.1" not in body["detail"] and "psycopg" not in body["detail"]  # nothing of the internals


def test_postgres_stopped_answers_503_on_one_connection_and_recovers(
    cluster: StoppableCluster, tmp_path: Path, smtp_server: SmtpServer
) -> None:
    settings = make_settings(tmp_path, cluster.url)
    ctx = Context.create(settings)
    migrate.upgrade(ctx.db.engine)
    create_tenant(ctx, tenant_id="acme", name="ACME", plan="pro")
    key = create_api_key(ctx, tenant_id="acme").key
    fresh_key = create_api_key(ctx, tenant_id="acme").key  # never used before the outage: not in any cache
    ctx.close()

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = settings.worker_env(
        LETTERHEAD_PLATFORM_SMTP_URL=f"smtp://127.0.0.1:{smtp_server.port}",
        LETTERHEAD_HOST="127.0.0.1",
        LETTERHEAD_PORT=str(port),
        LETTERHEAD_WORKER_POLL_SECONDS="0.1",
    )
    headers = {"Authorization": f"Bearer {key}"}
    email = {"to": ["hanako@example.com"], "subject": "注文", "text": "ありがとうございます"}
    notification = {"event": "order.created", "to": "taro@example.com", "data": EVENTS["order.created"].example}

    with running([*LETTERHEAD, "serve"], env, tmp_path / "serve.log", base_url=base) as server, httpx.Client(
        base_url=base, limits=httpx.Limits(max_connections=1, max_keepalive_connections=1), timeout=30
    ) as client:
        # Before: the key and the tenant get cached (the notification fast path needs both), everything 2xx.
        first = client.post("/v1/tenants/acme/emails", json=email, headers=headers)
        assert first.status_code == 202, first.text
        fast = client.post("/v1/tenants/acme/notifications", json=notification, headers=headers)
        assert fast.status_code == 202, fast.text
        assert client.post("/v1/tenants/acme/notifications", json=notification, headers=headers).status_code == 202
        verify_before = client.get("/verify/not-a-real-token", headers={"Accept-Language": "en"})
        assert verify_before.status_code < 500
        assert client.get("/readyz").status_code == 200
        connection = local_address(first)

        cluster.halt()
        during = [
            client.post("/v1/tenants/acme/emails", json=email, headers=headers),            # route, thread pool
            client.post("/v1/tenants/acme/notifications", json=notification, headers=headers),  # ASGI fast path
            client.post("/v1/tenants/acme/notifications/batch", json={"notifications": [notification]},
                        headers=headers),
            client.get("/v1/tenants/acme/messages", headers=headers),
            client.get("/v1/tenants/acme/messages", headers={"Authorization": f"Bearer {fresh_key}"}),  # key lookup
            client.get("/readyz"),
        ]
        for response in during:
            _assert_unavailable(response)
        page = client.get("/verify/not-a-real-token", headers={"Accept-Language": "en"})
        _assert_unavailable(page, html=True)
        page_ja = client.get("/verify/not-a-real-token", headers={"Accept-Language": "ja"})
        assert page_ja.status_code == 503 and "1 分ほど待って" in page_ja.text
        assert client.get("/healthz").status_code == 200  # liveness stays up: nothing to restart
        for response in [*during, page, page_ja]:
            assert "close" not in response.headers.get("connection", "").lower()
            assert local_address(response) == connection, "the keep-alive connection was dropped"

        cluster.resume()
        after = client.post("/v1/tenants/acme/emails", json=email, headers=headers)
        assert after.status_code == 202, after.text
        assert client.post("/v1/tenants/acme/notifications", json=notification, headers=headers).status_code == 202
        listed = client.get("/v1/tenants/acme/messages", headers={"Authorization": f"Bearer {fresh_key}"})
        assert listed.status_code == 200, listed.text
        assert client.get("/readyz").json()["database"] == "ok"
        assert client.get("/verify/not-a-real-token").status_code == verify_before.status_code
        assert local_address(after) == connection
        assert server.poll() is None  # the same process all along

        # The worker in the same process recovered too: what was accepted before and after is delivered.
        deadline = time.monotonic() + 60
        while len(smtp_server.messages) < 5 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert len(smtp_server.messages) >= 5, (tmp_path / "serve.log").read_text()[-3000:]
