"""Running Letterhead: ``serve`` (API + UI + worker + dev inbox in one process) and ``worker``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

import uvicorn

from letterhead import migrate, shutdown
from letterhead.api.app import create_app
from letterhead.collector import tune_collector
from letterhead.context import Context
from letterhead.delivery.worker import Worker
from letterhead.devinbox import DevInbox
from letterhead.settings import require_platform_transport

log = logging.getLogger("letterhead")

T = TypeVar("T")


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: this process stops the API and the worker together."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _install_signals(loop: asyncio.AbstractEventLoop, stop: asyncio.Event) -> None:
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if shutdown.requested():  # asked while starting (see shutdown.py): stop as soon as we are up
        stop.set()


#: Set in the environment of the extra API processes ``serve`` starts (LETTERHEAD_API_WORKERS > 1).
CHILD_ENV = "LETTERHEAD_API_CHILD"


def _listen(host: str, port: int, *, reuse_port: bool) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        # Every API process binds the same port; the kernel spreads new connections over them.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.setblocking(False)
    return sock


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _start_api_children(host: str, port: int, count: int) -> list[subprocess.Popen[bytes]]:
    cmd = [sys.executable, "-c", "from letterhead.cli import main; main()", "serve", "--host", host,
           "--port", str(port), "--no-worker"]
    env = dict(os.environ) | {CHILD_ENV: "1", "LETTERHEAD_API_WORKERS": "1"}
    return [subprocess.Popen(cmd, env=env, preexec_fn=_die_with_parent) for _ in range(count)]


def _stop_children(children: list[subprocess.Popen[bytes]]) -> None:
    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    for child in children:
        try:
            child.wait(timeout=30)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


async def serve(ctx: Context, *, host: str, port: int, with_worker: bool = True) -> None:
    require_platform_transport(ctx.settings)
    child = os.environ.get(CHILD_ENV) == "1"
    if not child:
        migrate.upgrade(ctx.db.engine)
    api_workers = ctx.settings.api_workers
    inbox: DevInbox | None = None
    if ctx.settings.platform_transport.is_dev_inbox and not child:
        if api_workers > 1:
            log.warning("LETTERHEAD_API_WORKERS=%d ignored: the development inbox lives in one process", api_workers)
            api_workers = 1
        inbox = DevInbox()
        ctx.dev_inbox_port = inbox.start(
            port=ctx.settings.dev_inbox_port, port_file=ctx.settings.data_dir / "devinbox.port"
        )
        log.info("development inbox: smtp://127.0.0.1:%d, shown at /dev/inbox", ctx.dev_inbox_port)
    app = create_app(ctx, dev_inbox=inbox)
    # uvloop and httptools when installed (the `fast` extra; uvicorn's "auto"), no access log: a log line per
    # request costs more than a small request itself.
    # proxy_headers off: uvicorn would believe X-Forwarded-For from 127.0.0.1; clientaddr.py decides instead,
    # from LETTERHEAD_TRUSTED_PROXIES only.
    config = uvicorn.Config(app, host=host, port=port, log_level="info", lifespan="off", access_log=False,
                            http="auto", loop="auto", proxy_headers=False)
    server = _Server(config)
    reuse_port = child or api_workers > 1
    sock = _listen(host, port, reuse_port=reuse_port)
    children = _start_api_children(host, port, api_workers - 1) if api_workers > 1 and not child else []
    if children:
        log.info("API: %d processes on port %d", api_workers, port)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    _install_signals(loop, stop)
    worker = Worker(ctx) if with_worker else None
    if worker is not None:
        wakeup = worker.wakeup

        def notify() -> None:
            loop.call_soon_threadsafe(wakeup.set)

        ctx.notify = notify
    tune_collector(freeze=True)  # the start-up heap is built: full collections skip it from here on
    tasks = [asyncio.create_task(server.serve(sockets=[sock]))]
    if worker is not None:
        tasks.append(asyncio.create_task(worker.run()))
    stopper = asyncio.create_task(stop.wait())
    await asyncio.wait([*tasks, stopper], return_when=asyncio.FIRST_COMPLETED)
    log.info("shutting down: finishing the messages in hand")
    server.should_exit = True
    if worker is not None:
        worker.stop()
    _stop_children(children)
    await asyncio.gather(*tasks, return_exceptions=True)
    stopper.cancel()
    if inbox is not None:
        inbox.stop()
    ctx.close()


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run the service's event loop: uvloop when installed (the `fast` extra), asyncio's own otherwise."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coro)


async def run_worker(ctx: Context) -> None:
    require_platform_transport(ctx.settings)
    stop = asyncio.Event()
    _install_signals(asyncio.get_running_loop(), stop)
    if ctx.db.is_sqlite:
        # Embedded use: nobody else migrates. On PostgreSQL, `letterhead db upgrade` is a deployment step, so
        # that many workers starting at once do not race on the schema.
        migrate.upgrade(ctx.db.engine)
    worker = Worker(ctx)
    tune_collector(freeze=True)  # ~30 µs per message of collector time saved (collector.py)
    task = asyncio.create_task(worker.run())
    await stop.wait()
    worker.stop()
    await task
    ctx.close()
