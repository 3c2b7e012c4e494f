"""Shared fixtures: a context on a real database (SQLite, and PostgreSQL where available), the API, a worker,
and the development inbox (a real aiosmtpd server on loopback) as the platform transport."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from letterhead import migrate
from letterhead.api.app import create_app
from letterhead.context import Context
from letterhead.delivery.worker import Worker
from letterhead.devinbox import DevInbox
from letterhead.settings import Settings, ensure_keys
from letterhead.tenants import create_api_key, create_tenant

pytest_plugins = ["tests.support.pg", "tests.support.dnsserver", "tests.support.smtpd"]


def make_settings(tmp_path: Path, database_url: str | None = None, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "env": "test",
        "data_dir": tmp_path / "data",
        "database_url": database_url,
        "allow_private_smtp_hosts": True,
        "smtp_allowed_ports": "*",  # the test SMTP servers listen on random ports
        "smtp_timeout_seconds": 5.0,
        "retry_base_seconds": 30.0,
    }
    values.update(overrides)
    settings = Settings(**values)
    ensure_keys(settings)
    return settings


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str | None:
    if request.param == "postgres":
        return str(request.getfixturevalue("pg_url"))
    return None  # the embedded default: SQLite in the data dir


@pytest.fixture
def inbox() -> Iterator[DevInbox]:
    box = DevInbox()
    box.start()
    yield box
    box.stop()


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    """Override in a test module to change settings for the ``ctx`` fixture."""
    return {}


@pytest.fixture
def ctx(
    tmp_path: Path, database_url: str | None, inbox: DevInbox, settings_overrides: dict[str, Any]
) -> Iterator[Context]:
    context = Context.create(make_settings(tmp_path, database_url, **settings_overrides))
    context.dev_inbox_port = inbox.port
    migrate.upgrade(context.db.engine)
    yield context
    context.close()


@pytest.fixture
def app_client(ctx: Context, inbox: DevInbox) -> Iterator[TestClient]:
    with TestClient(create_app(ctx, dev_inbox=inbox), raise_server_exceptions=False) as client:
        yield client


@pytest.fixture
def platform_key(ctx: Context) -> str:
    return create_api_key(ctx, tenant_id=None).key


@pytest.fixture
def acme(ctx: Context) -> str:
    create_tenant(ctx, tenant_id="acme", name="ACME 株式会社", plan="pro", contact_email="support@acme.example")
    return "acme"


@pytest.fixture
def acme_key(ctx: Context, acme: str) -> str:
    return create_api_key(ctx, tenant_id=acme).key


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def deliver(ctx: Context, *, rounds: int = 10, **worker_kwargs: Any) -> int:
    """Run the worker until no message is due (or ``rounds`` batches); returns messages handled."""

    async def go() -> int:
        worker = Worker(ctx, **worker_kwargs)
        total = 0
        try:
            for _ in range(rounds):
                handled = await worker.run_once()
                total += handled
                if not handled:
                    break
        finally:
            await worker.client.aclose()
            await worker.route_leases.aclose()  # as Worker.run does when it stops
        return total

    return asyncio.run(go())
