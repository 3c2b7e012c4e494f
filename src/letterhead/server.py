"""Running Letterhead: ``serve`` (API + UI + worker + dev inbox in one process) and ``worker``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Coroutine, Iterator
from typing import Any

import uvicorn

from letterhead import migrate
from letterhead.api.app import create_app
from letterhead.context import Context
from letterhead.delivery.worker import Worker
from letterhead.devinbox import DevInbox

log = logging.getLogger("letterhead")


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: this process stops the API and the worker together."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _install_signals(loop: asyncio.AbstractEventLoop, stop: asyncio.Event) -> None:
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)


async def serve(ctx: Context, *, host: str, port: int, with_worker: bool = True) -> None:
    migrate.upgrade(ctx.db.engine)
    inbox: DevInbox | None = None
    if ctx.settings.platform_transport.is_dev_inbox:
        inbox = DevInbox()
        ctx.dev_inbox_port = inbox.start(
            port=ctx.settings.dev_inbox_port, port_file=ctx.settings.data_dir / "devinbox.port"
        )
        log.info("development inbox: smtp://127.0.0.1:%d, shown at /dev/inbox", ctx.dev_inbox_port)
    app = create_app(ctx, dev_inbox=inbox)
    config = uvicorn.Config(app, host=host, port=port, log_level="info", lifespan="off", access_log=False)
    server = _Server(config)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    _install_signals(loop, stop)
    worker = Worker(ctx) if with_worker else None
    if worker is not None:
        wakeup = worker.wakeup

        def notify() -> None:
            loop.call_soon_threadsafe(wakeup.set)

        ctx.notify = notify
    tasks = [asyncio.create_task(server.serve())]
    if worker is not None:
        tasks.append(asyncio.create_task(worker.run()))
    stopper = asyncio.create_task(stop.wait())
    await asyncio.wait([*tasks, stopper], return_when=asyncio.FIRST_COMPLETED)
    log.info("shutting down: finishing the messages in hand")
    server.should_exit = True
    if worker is not None:
        worker.stop()
    await asyncio.gather(*tasks, return_exceptions=True)
    stopper.cancel()
    if inbox is not None:
        inbox.stop()
    ctx.close()


def run(coro: Coroutine[Any, Any, None]) -> None:
    """Run the service's event loop: uvloop when installed (the `fast` extra), asyncio's own otherwise."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(coro)
        return
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(coro)


async def run_worker(ctx: Context) -> None:
    if ctx.db.is_sqlite:
        # Embedded use: nobody else migrates. On PostgreSQL, `letterhead db upgrade` is a deployment step, so
        # that many workers starting at once do not race on the schema.
        migrate.upgrade(ctx.db.engine)
    worker = Worker(ctx)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    _install_signals(loop, stop)
    task = asyncio.create_task(worker.run())
    await stop.wait()
    worker.stop()
    await task
    ctx.close()
