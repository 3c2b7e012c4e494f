"""``letterhead bench --api`` is checked for correctness, never for speed: a real server under wrk for a second,
zero errors, and as many messages stored as notifications were answered 2xx (plus at most what wrk abandoned)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from typing import Any

import pytest

from letterhead.benchapi import BATCH, MARK, lua_script, notification_template
from letterhead.notifications.events import EVENTS, validate_data

REQUIRE_ALL = os.environ.get("LETTERHEAD_REQUIRE_ALL_SUITES") == "1"


def _need_wrk() -> None:
    if shutil.which("wrk") is None:
        reason = "wrk is not installed (Debian package wrk)"
        if REQUIRE_ALL:
            pytest.fail(f"bench --api is mandatory here (LETTERHEAD_REQUIRE_ALL_SUITES=1): {reason}")
        pytest.skip(reason)


def test_notification_template_is_a_valid_order_created_request() -> None:
    pieces = notification_template()
    assert len(pieces) == 5  # four per-request slots: recipient, customer name, order number, order URL
    body = json.loads("7-42".join(pieces))
    assert body["to"]["email"] == "customer-7-42@example.com"
    assert body["data"]["order_number"] == "A-20261127-7-42"
    validate_data(EVENTS["order.created"], body["data"])
    script = lua_script(mode="batch", path="/v1/tenants/t/notifications/batch", key="lh_x")
    assert f"local per_request = {BATCH}" in script and MARK in script


def bench_api(*args: str) -> dict[str, Any]:
    """``letterhead bench --api`` for 1 s per endpoint, its JSON."""
    out = subprocess.run(
        [sys.executable, "-c", "from letterhead.cli import main; main()", "bench", "--api", "--duration", "1",
         "--warmup", "0.3", *args, "--json"],
        capture_output=True, text=True, timeout=180,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    result: dict[str, Any] = json.loads(out.stdout)
    return result


def test_bench_api_cli_json() -> None:
    _need_wrk()
    r = bench_api("--connections", "4", "--batch-connections", "2")
    assert r.keys() >= {"mode", "delivery", "single", "batch", "versions", "cores", "ok", "api_workers"}
    assert r["mode"] == "api" and r["ok"] and r["server_exit_code"] == 0
    assert r["versions"]["wrk"].startswith("wrk")
    assert r["machine_speed"]["after"]["python_ms"] > 0
    for name, per in (("single", 1), ("batch", BATCH)):
        p = r[name]
        assert p.keys() >= {"req_per_sec", "notifications_per_sec", "latency_ms", "errors", "non_2xx", "connections",
                            "threads", "seconds", "server_cpu_ms_per_request", "stored_messages",
                            "accepted_notifications", "stored_ok"}
        assert p["errors"] == 0 and p["non_2xx"] == 0
        assert p["requests"] > 0 and p["accepted_notifications"] == p["requests"] * per
        # Stored = accepted, give or take the requests wrk abandoned mid-flight when its clock stopped.
        stored, accepted = p["stored_messages"], p["accepted_notifications"]
        assert accepted <= stored <= accepted + p["unanswered_at_stop"] * per
        assert p["stored_ok"]
        assert p["latency_ms"]["p99"] >= p["latency_ms"]["p50"] > 0
        assert len(p["server_cpu_seconds_by_process"]) == 1
        assert sum(p["server_cpu_seconds_by_process"]) == pytest.approx(p["server_cpu_seconds"], abs=0.01)


def test_bench_api_batch_loads_every_server_process() -> None:
    """Without --batch-connections, 4 connections per API process; the CPU of each process is reported."""
    _need_wrk()
    batch = bench_api("--api-mode", "batch", "--api-workers", "2")["batch"]
    assert batch["connections"] == 8 and batch["stored_ok"] and batch["errors"] == 0
    by_process = batch["server_cpu_seconds_by_process"]
    assert len(by_process) == 2 and by_process == sorted(by_process, reverse=True)


def test_missing_wrk_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    from letterhead import benchapi

    monkeypatch.setattr(benchapi, "WRK", "wrk-that-is-not-installed")
    with pytest.raises(benchapi.WrkMissing, match="apt install wrk"):
        benchapi.run_bench_api(duration=1)
