"""``letterhead bench`` is itself checked for correctness (never for speed: timings belong in benchmarks/).

Each mode must report that the sink received exactly the messages sent and that the log agrees.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

from letterhead.bench import DKIM_NOTE, SMTP_SINK, notification_items, percentile, run_bench, transport_messages

KEYS = {"msgs_per_sec", "p50_ms", "p99_ms", "peak_rss_mb", "sink", "messages", "mode", "versions", "cores"}


def test_cpu_seconds_of_one_thread() -> None:
    """``_cpu_seconds(pid, tid)`` reads one thread's CPU time: a thread that computes for ~0.2 s shows it, the
    process (all its threads) at least as much, and an idle thread next to it almost none."""
    import threading
    import time

    from letterhead.bench import _cpu_seconds

    tids: dict[str, int] = {}
    done = threading.Event()

    def busy() -> None:
        tids["busy"] = threading.get_native_id()
        end = time.thread_time() + 0.2
        while time.thread_time() < end:
            pass
        done.wait()

    def idle() -> None:
        tids["idle"] = threading.get_native_id()
        done.wait()

    threads = [threading.Thread(target=busy), threading.Thread(target=idle)]
    for t in threads:
        t.start()
    give_up = time.monotonic() + 10  # a broken reading fails below instead of hanging here
    while (len(tids) < 2 or (_cpu_seconds(os.getpid(), tids["busy"]) or 0.0) < 0.15) and time.monotonic() < give_up:
        time.sleep(0.01)
    try:
        busy_s = _cpu_seconds(os.getpid(), tids["busy"])
        idle_s = _cpu_seconds(os.getpid(), tids["idle"])
        process_s = _cpu_seconds(os.getpid())
    finally:
        done.set()
        for t in threads:
            t.join()
    assert busy_s is not None and idle_s is not None and process_s is not None
    assert 0.15 <= busy_s <= process_s
    assert idle_s < 0.05
    assert _cpu_seconds(os.getpid(), 1 << 30) is None  # no such thread


def test_end_to_end_notifications_builtin_sink() -> None:
    r = run_bench(messages=300, tenants=3, sink="builtin")
    assert r.keys() >= KEYS
    assert r["mode"] == "end-to-end" and r["database"] == "sqlite"
    assert r["sink"].startswith("letterhead.benchsink")
    # The built-in sink counts distinct Message-IDs: exactly the messages sent, none twice.
    assert r["sink_received"] == {"messages": 300, "unique_message_ids": 300}
    assert r["statuses"] == {"sent": 300}
    assert r["attempts"] == r["sent_attempts"] == r["distinct_message_ids"] == 300
    assert r["messages_with_other_than_one_attempt"] == 0
    # Where the CPU went: the workers' event-loop threads are a part of the workers' processes.
    cpu = r["cpu_us_per_msg"]
    assert cpu["workers"] > 0 and cpu["accept"] > 0
    assert 0 <= r["worker_event_loop_cpu_us_per_msg"] <= cpu["workers"]
    assert r["log_ok"] and r["sink_ok"] and r["ok"]
    assert r["worker_exit_codes"] == [0]
    assert r["p50_ms"] is not None and r["p99_ms"] >= r["p50_ms"]
    assert {"python", "sqlalchemy", "platform"} <= r["versions"].keys()
    # The machine's speed around the run, so that runs minutes apart can be compared.
    for when in ("before", "after"):
        speed = r["machine_speed"][when]
        assert speed["python_ms"] > 0 and 10 < speed["rsa2048_sign_us"] < 100_000


def test_transport_only_builtin_sink_counts_warmup_too() -> None:
    r = run_bench(messages=300, transport_only=True, connections=4, sink="builtin")
    assert r["mode"] == "transport-only" and r["sent"] == 300
    assert r["message_bytes"] >= 4000
    assert r["sink_received"] == {"messages": 304, "unique_message_ids": 304}  # 4 warm-up messages
    assert r["ok"]


@pytest.mark.skipif(not os.path.exists(SMTP_SINK), reason="Postfix smtp-sink not installed (package postfix)")
def test_smtp_sink_counter() -> None:
    r = run_bench(messages=300, tenants=2, sink="smtp-sink")
    assert r["sink"] == "postfix smtp-sink"
    assert r["sink_received"] == {"messages": 300}
    assert r["dkim"] == "off"
    assert r["ok"]


def test_dkim_does_not_apply_to_pre_composed_bytes() -> None:
    r = run_bench(messages=50, transport_only=True, sink="builtin", dkim=True)
    assert r["dkim"] == DKIM_NOTE and r["ok"]


def test_queued_mode_reports_worker_memory() -> None:
    r = run_bench(messages=0, queued=500, tenants=2, duration=3, sink="builtin")
    assert r["mode"] == "queued" and r["queued"] == 500
    assert r["peak_rss_mb"] and r["peak_rss_mb"] > 10
    assert r["left_sending"] == 0
    assert r["sink_received"]["messages"] == r["messages"]  # what the log says was sent arrived
    assert r["ok"]


def test_cli_json() -> None:
    out = subprocess.run(
        [sys.executable, "-c", "from letterhead.cli import main; main()", "bench", "--messages", "200",
         "--transport-only", "--sink", "builtin", "--json"],
        check=True, capture_output=True, text=True, timeout=120,
    )
    r = json.loads(out.stdout)
    assert r["ok"] and r["messages"] == 200


def test_helpers() -> None:
    assert percentile([], 0.5) is None
    assert percentile([1, 2, 3, 4, 100], 0.5) == 3
    assert percentile([1, 2, 3, 4, 100], 0.99) == 100
    envs = transport_messages(3, start=10)
    assert [e.rcpt_to for e in envs] == [("customer10@example.com",), ("customer11@example.com",),
                                         ("customer12@example.com",)]
    assert len({e.data for e in envs}) == 3
    # Composed as the worker's messages are, hence sent without the transparency scans: the claim must hold.
    for e in envs:
        assert e.canonical and 3800 < len(e.data) < 4400
        assert e.data.count(b"\n") == e.data.count(b"\r\n") == e.data.count(b"\r")
        assert not e.data.startswith(b".") and b"\r\n." not in e.data and e.data.endswith(b"\r\n")


@pytest.mark.postgres
def test_end_to_end_postgres_two_workers(pg_url: str) -> None:
    r = run_bench(messages=300, tenants=3, sink="builtin", postgres=pg_url, workers=2)
    assert r["database"] == "postgresql" and r["workers"] == 2
    assert r["sink_received"] == {"messages": 300, "unique_message_ids": 300}
    assert r["worker_exit_codes"] == [0, 0]
    assert r["log_ok"] and r["ok"]


def test_render_timeout_under_load_is_retried_then_deferred_never_failed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Found by the bench: on a saturated host the sandbox's wall-clock render limit fired for valid templates
    and the worker failed those messages for good. Now it renders again, and defers if the limit keeps firing."""
    import asyncio

    from letterhead import migrate
    from letterhead.context import Context
    from letterhead.delivery import worker as worker_module
    from letterhead.errors import TemplateError
    from letterhead.models import Attempt, Message
    from letterhead.notifications.service import accept
    from letterhead.tenants import create_tenant
    from tests.conftest import make_settings

    ctx = Context.create(make_settings(tmp_path, platform_smtp_url="smtp://127.0.0.1:9"))
    migrate.upgrade(ctx.db.engine)
    tenant = create_tenant(ctx, tenant_id="shop", name="Shop", plan="pro")
    accept(ctx, tenant=tenant, items=notification_items(0, 1, 1))
    calls = []

    def timed_out() -> TemplateError:
        calls.append(1)
        return TemplateError(f"html: {worker_module._DEADLINE}", field="html")

    def slow(*args: object, **kwargs: object) -> object:
        raise timed_out()

    def slow_part(items: list[object], *args: object, **kwargs: object) -> list[TemplateError]:
        return [timed_out() for _ in items]

    monkeypatch.setattr(worker_module, "render_contents", slow_part)  # a part rendered together: the first try
    monkeypatch.setattr(worker_module, "render_content", slow)  # then alone
    assert asyncio.run(worker_module.Worker(ctx).run_once()) == 1
    assert len(calls) == worker_module._RENDER_TRIES
    with ctx.db.session() as s:
        msg = s.scalars(select(Message)).one()
        assert msg.status == "deferred" and msg.attempt_count == 0
        assert "Rendering timed out" in (msg.note or "")
        assert s.scalar(select(func.count()).select_from(Attempt)) == 0
    ctx.close()


def test_dkim_bench_signs_every_message_as_a_verified_domain() -> None:
    from letterhead.bench import run_bench

    result = run_bench(messages=60, tenants=2, sink="builtin", dkim=True)
    assert result["ok"] is True and result["dkim"].startswith("on")
    assert result["sent_by_mode"] == {"branded": 60}
