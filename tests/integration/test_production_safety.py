"""Production never exposes captured mail: no start on the development inbox, every /dev/* route 404."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from letterhead.api.app import create_app
from letterhead.context import Context
from letterhead.devinbox import DevInbox
from letterhead.errors import ConfigurationError
from letterhead.settings import Settings, require_platform_transport
from tests.conftest import make_settings
from tests.support.processes import worker_env

CLI = [sys.executable, "-c", "from letterhead.cli import main; main()"]


def production(tmp_path: Path, **overrides: object) -> Settings:
    settings = make_settings(tmp_path, **overrides)  # keys filled in first, as an operator gives them
    settings.env = "production"
    return settings


@pytest.mark.parametrize("command", [["serve", "--port", "0"], ["worker"]])
def test_production_refuses_to_start_on_the_dev_inbox(tmp_path: Path, command: list[str]) -> None:
    settings = make_settings(tmp_path)
    env = worker_env(settings, LETTERHEAD_ENV="production")
    env.pop("LETTERHEAD_PLATFORM_SMTP_URL", None)
    run = subprocess.run([*CLI, *command], capture_output=True, text=True, env=env, timeout=60)
    assert run.returncode != 0
    assert "LETTERHEAD_PLATFORM_SMTP_URL" in run.stderr


def test_outside_production_the_dev_inbox_is_the_default(tmp_path: Path) -> None:
    for env in ("development", "test"):
        require_platform_transport(make_settings(tmp_path, env=env))
    with pytest.raises(ConfigurationError, match="LETTERHEAD_PLATFORM_SMTP_URL"):
        require_platform_transport(production(tmp_path))
    require_platform_transport(production(tmp_path, platform_smtp_url="smtp://127.0.0.1:25"))


def test_dev_routes_are_404_in_production(tmp_path: Path, inbox: DevInbox) -> None:
    ctx = Context.create(production(tmp_path, platform_smtp_url="smtp://127.0.0.1:25"))
    try:
        # Even with an inbox object handed to the app (a misconfiguration), nothing under /dev/ answers.
        with TestClient(create_app(ctx, dev_inbox=inbox)) as client:
            for method, path in (("GET", "/dev/inbox"), ("GET", "/dev/inbox.json"), ("POST", "/dev/inbox/clear")):
                r = client.request(method, path)
                assert r.status_code == 404, path
                assert "messages" not in r.text
    finally:
        ctx.close()


def test_dev_routes_answer_outside_production(app_client: TestClient) -> None:
    assert app_client.get("/dev/inbox.json").status_code == 200
    assert app_client.get("/dev/inbox").status_code == 200
