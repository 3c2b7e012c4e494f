"""The delivery worker.

Design: a loop leases a batch of due messages (queue.claim), resolves each tenant's route (effective sender and
transport) once per batch, composes the messages to bytes part by part (each part's sending starts as soon as it
is ready), hands each route's envelopes to a task of their own (the pooled SMTP client sends them), then writes
the outcomes and attempt rows back in one transaction (queue.record). A tenant's own SMTP server is used by one
worker process at a time (route_leases: providers cap connections per account). Several such loops
("pipelines") run at once so that database work of one overlaps network work of another.

A slow or stalled route never holds up the others: a pipeline waits for its batch's sends only ``patience``
seconds (0.5) before it records what is done and claims again; the routes still sending finish in the
background and are recorded when they are done, and a route may hold at most ``route_cap`` messages of this
worker at once (the rest of its messages wait a few seconds in the queue, not attempted). Every message in hand
keeps its lease: short (``lease_seconds``, 30 s) and renewed every third of it, so a killed worker's mail is
retried within that time. An outcome that cannot be written (the database is away) is kept and written again
with backoff, never sent again; no new batch is claimed meanwhile.

Database calls are synchronous SQLAlchemy run in threads; SMTP is asyncio. On SIGTERM the loops stop claiming,
finish and record what is in hand (so nothing is left "sending" until its lease runs out) and close their
connections.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import random
import socket
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from letterhead.context import Context
from letterhead.delivery import queue
from letterhead.delivery.content import Content, render_content, render_contents
from letterhead.delivery.retry import RetryPolicy, decide_transient
from letterhead.delivery.route_leases import RouteLeases, lease_key
from letterhead.errors import TemplateError
from letterhead.models import AttemptOutcome, MessageStatus, Tenant, utcnow
from letterhead.notifications.compose import compose
from letterhead.notifications.templates import MAX_RENDER_SECONDS
from letterhead.senders.domains import sign as sign_dkim
from letterhead.senders.resolve import Route, default_route, resolve_route_in
from letterhead.smtp.client import Endpoint, Envelope, Outcome, SendResult, SmtpClient
from letterhead.smtp.diagnose import Category, diagnose

log = logging.getLogger("letterhead.worker")

# A failure before MAIL FROM is about the route (server, TLS, credentials), not the message: never a reason to
# fail the message for good. The message waits (backoff) until the route works or its lifetime ends.
_MESSAGE_STAGES = frozenset({"mail_from", "rcpt_to", "data", "after_data", "done"})

#: How a render that hit the sandbox's time limit (CPU time) reads, and how often to try before deferring.
_DEADLINE = f"rendering took longer than {int(MAX_RENDER_SECONDS * 1000)} ms"
_RENDER_TRIES = 3


_SENT = AttemptOutcome.SENT.value

#: Messages prepared per step of a batch before their sending starts (see ``Worker._prepare_and_start``).
_PREPARE_PART = 100
#: A message whose SMTP account another worker is using waits about this long (jittered up to twice) before it is
#: claimed again: short, since that worker is usually done within a batch; longer while it stays busy (a worker
#: killed while holding it keeps the lease until it runs out), see ``Worker._busy_wait``.
_BUSY_RETRY_SECONDS = 2.0
_BUSY_RETRY_MAX_SECONDS = 15.0
#: How long a pipeline waits for its batch's sends before claiming the next batch (``Worker.patience``).
_PATIENCE_SECONDS = 0.5
#: A result write that failed (the database is away) is tried again after this long, doubling up to the max.
_WRITE_RETRY_SECONDS = 0.2
_WRITE_RETRY_MAX_SECONDS = 5.0
_SATURATED_NOTE = (
    "Waiting: this worker is already sending many messages through this route (its server is slow or not "
    "answering). It is tried again in a few seconds; nothing to do."
)
_BUSY_NOTE = (
    "Waiting for a free connection: Letterhead is already sending other mail through this SMTP account, and the "
    "provider allows only a few connections at once. It goes out as soon as that is done; nothing to do."
)


@dataclass
class Prepared:
    row: queue.Claimed
    route: Route
    envelope: Envelope | None
    message_id_header: str | None
    #: Set when the message cannot be composed (a tenant template that fails on this data): it fails.
    error: TemplateError | None = None


@dataclass
class BatchInfo:
    routes: dict[str, tuple[Tenant, Route]]
    overrides: dict[tuple[str, str, str], Any]


@dataclass
class BatchSending:
    """What the parts of one batch share while they are sent (each part as soon as it is prepared)."""

    #: Messages of each route handed to sending so far: a route's remaining quota (``Route.capacity``) holds
    #: across the parts.
    used: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    #: A route whose connection could not be set up (wrong password, TLS, refused) in an earlier part: the later
    #: parts get the same failure without logging in again (providers lock accounts after repeated failures).
    failed: dict[str, SendResult] = field(default_factory=dict)
    #: Set when a route's first group of the batch has been sent: the later parts' groups for that route wait for
    #: it (so they know whether its setup failed), then go out side by side.
    settled: dict[str, asyncio.Event] = field(default_factory=dict)


class Worker:
    def __init__(
        self,
        ctx: Context,
        *,
        client: SmtpClient | None = None,
        owner: str | None = None,
        batch_size: int | None = None,
        pipelines: int | None = None,
    ) -> None:
        s = ctx.settings
        self.ctx = ctx
        self.client = client or SmtpClient()
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        self.route_leases = RouteLeases(ctx.db, self.owner, s.lease_seconds)
        #: When this worker first and last found an account (lease key) in use by another, for ``_busy_wait``.
        self._busy_since: dict[str, tuple[float, float]] = {}
        self.batch_size = batch_size or s.worker_batch_size
        self.pipelines = pipelines or s.worker_concurrency or (2 if ctx.db.is_sqlite else 3)
        self.policy = RetryPolicy(s.retry_base_seconds, s.retry_max_seconds)
        self.platform = {"name": s.platform_name, "url": s.public_url}
        self.wakeup = asyncio.Event()
        self._stopping = False
        #: Wall-clock seconds spent per stage (summed over pipelines) and messages handled: logged when the
        #: worker stops and read by ``letterhead bench`` to show where a worker waits (e.g. SQLite's lock).
        self.stage_seconds: dict[str, float] = defaultdict(float)
        self.handled = 0
        self.lease_seconds = s.lease_seconds
        self.patience = _PATIENCE_SECONDS
        #: Messages of one route in this worker's hands at once (sending or waiting for a connection).
        self.route_cap = self.batch_size * self.pipelines
        self._route_load: dict[str, int] = defaultdict(int)
        #: The messages in hand, per batch (renewed by ``_renew_leases`` until their outcome is written).
        self._in_hand: dict[int, set[str]] = {}
        self._batches = 0
        #: Batches whose slow routes are still sending after their pipeline moved on.
        self._background: set[asyncio.Task[None]] = set()
        #: Result writes waiting for the database; no batch is claimed while any is (``_writable`` is clear).
        self._failing_writes = 0
        self._writable = asyncio.Event()
        self._writable.set()

    # --- one batch ---------------------------------------------------------------------------------------------

    async def run_once(self) -> int:
        """Lease, deliver and record one batch, waiting for all of it. Returns how many messages it handled."""
        return await self._batch(patience=None)

    async def _batch(self, patience: float | None) -> int:
        """Lease and deliver one batch; record what was sent within ``patience`` seconds (None: everything) and
        leave the rest to finish in the background (``_finish``)."""
        clock = time.perf_counter
        stages = self.stage_seconds
        t0 = clock()
        rows = await asyncio.to_thread(
            queue.claim,
            self.ctx.db,
            owner=self.owner,
            limit=self.batch_size,
            lease_seconds=self.lease_seconds,
        )
        t1 = clock()
        stages["claim"] += t1 - t0
        if not rows:
            return 0
        token = self._batches = self._batches + 1
        self._in_hand[token] = {r.id for r in rows}
        sends: list[asyncio.Task[list[queue.Result]]] = []
        pending: set[asyncio.Task[list[queue.Result]]] = set()
        try:
            prepared_s = await self._prepare_and_start(rows, sends)
        finally:
            # Whatever was handed to sending is awaited (up to ``patience``) and recorded, even if preparing a
            # later part failed (the rest keeps its lease and is claimed again when it runs out, as a failed
            # batch always was).
            t2 = clock()
            done: set[asyncio.Task[list[queue.Result]]] = set()
            if sends:
                done, pending = await asyncio.wait(sends, timeout=patience)
            results = [r for t in done if t.exception() is None for r in t.result()]
            t3 = clock()
            await self._write(results)
            stages["record"] += clock() - t3
            if pending:
                task = asyncio.create_task(self._finish(token, pending))
                self._background.add(task)
                task.add_done_callback(self._background.discard)
            else:
                self._in_hand.pop(token, None)
        for t in done:
            if (exc := t.exception()) is not None:
                raise exc
        # prepare: the rendering thread's time; send: what sending still took after the last part was prepared.
        stages["prepare"] += prepared_s
        stages["send"] += t3 - t2
        self.handled += len(rows)
        return len(rows)

    async def _finish(self, token: int, pending: set[asyncio.Task[list[queue.Result]]]) -> None:
        """A batch's routes that were still sending when its pipeline moved on: recorded as each is done."""
        try:
            for next_done in asyncio.as_completed(pending):
                try:
                    results = await next_done
                except Exception:  # its messages keep their lease and are claimed again when it runs out
                    log.exception("delivery to a route failed")
                    continue
                await self._write(results)
        finally:
            self._in_hand.pop(token, None)

    async def _write(self, results: list[queue.Result]) -> None:
        """Record ``results``, trying again with backoff while the database is away: an outcome is never
        dropped (the message would be sent again once its lease ran out). Meanwhile the messages stay in hand
        (renewed) and no new batch is claimed. On shutdown it gives up after a lease's time (the lease is gone
        by then anyway)."""
        if not results:
            return
        delay = _WRITE_RETRY_SECONDS
        failing_since: float | None = None
        try:
            while True:
                try:
                    await asyncio.to_thread(queue.record, self.ctx.db, owner=self.owner, results=results)
                    break
                except Exception:
                    now = time.monotonic()
                    if failing_since is None:
                        failing_since = now
                        self._failing_writes += 1
                        self._writable.clear()
                        log.warning("could not record %d outcomes; kept, trying again", len(results), exc_info=True)
                    elif self._stopping and now - failing_since > self.lease_seconds:
                        log.error("gave up recording %d outcomes while stopping: they may be sent again",
                                  len(results))
                        return
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, _WRITE_RETRY_MAX_SECONDS)
            if failing_since is not None:
                log.info("recorded %d outcomes after %.1fs", len(results), time.monotonic() - failing_since)
        finally:
            if failing_since is not None:
                self._failing_writes -= 1
                if self._failing_writes == 0:
                    self._writable.set()
            written = {r.message_id for r in results}
            for ids in self._in_hand.values():
                ids -= written

    async def _renew_leases(self) -> None:
        """Every third of the lease: one UPDATE per batch in hand extends its messages' leases."""
        every = max(0.2, self.lease_seconds / 3)
        while True:
            await asyncio.sleep(every)
            for ids in [list(ids) for ids in self._in_hand.values() if ids]:
                try:
                    held = await asyncio.to_thread(
                        queue.renew, self.ctx.db, owner=self.owner, ids=ids, lease_seconds=self.lease_seconds
                    )
                except Exception:  # the database is away: the lease has time left; the next round tries again
                    log.warning("could not renew the leases of %d messages", len(ids), exc_info=True)
                    continue
                if held < len(ids):
                    log.debug("%d of %d messages in hand were recorded or taken over", len(ids) - held, len(ids))

    async def _prepare_and_start(
        self, rows: list[queue.Claimed], sends: list[asyncio.Task[list[queue.Result]]]
    ) -> float:
        """Prepare ``rows`` (render, compose, sign) part by part, each part's sending started as soon as it is
        ready, so that the first messages of a batch go out while the rest are still being prepared. Returns the
        seconds spent preparing.

        Rendering and composing are CPU work: done in a thread, so the event loop keeps other pipelines' (and
        earlier parts') SMTP conversations moving meanwhile (measured: the loop otherwise stalls ~0.4 ms per
        message, and the sink's replies wait for it). Parts of ``_PREPARE_PART`` messages: a whole batch of 500
        before the first send held a burst's first message back ~1 s with DKIM on (~0.5 ms of RSA per message).
        A route's groups in the later parts wait for its first group, so that a refused login is tried once per
        batch, not once per part (see ``BatchSending``).
        """
        clock = time.perf_counter
        info: BatchInfo | None = None
        sending = BatchSending()
        spent = 0.0
        for start in range(0, len(rows), _PREPARE_PART):
            part = rows[start : start + _PREPARE_PART]
            t = clock()
            info, prepared = await asyncio.to_thread(self._prepare_part, rows, part, info)
            spent += clock() - t
            sends.extend(self._dispatch(prepared, sending))
        return spent

    def _prepare_part(
        self, batch: list[queue.Claimed], part: list[queue.Claimed], info: BatchInfo | None
    ) -> tuple[BatchInfo, list[Prepared]]:
        """The whole batch's routes and templates are read with its first part (in the same thread).

        One kind of work at a time for the whole part (render every message, then compose every one, then sign
        every one), not each message through every step: the template code, the MIME code and OpenSSL's RSA
        (AVX-512) each run with their own code and data in the core's caches. Measured in one thread on 2,800
        order confirmations, 12 alternating rounds (median µs per message): rendering and composing 84 vs 95;
        with DKIM, signing after the part 546 vs 605 (the RSA alone is ~360 of it either way).
        """
        if info is None:
            info = self._batch_info(batch)
        routed = [self._route(row, info) for row in part]
        contents = self._contents(part, routed, info)
        prepared = [
            self._prepare(row, route, content)
            for row, (_, route), content in zip(part, routed, contents, strict=True)
        ]
        for p in prepared:
            dkim, envelope = p.route.dkim, p.envelope
            if dkim is not None and envelope is not None:
                # Mail as the tenant's own address through the platform, on a domain it authenticated: signed so
                # that DMARC passes by DKIM alignment (RFC 6376; the header goes first, over the final bytes).
                p.envelope = replace(envelope, data=sign_dkim(envelope.data, dkim, composed=True) + envelope.data)
        return info, prepared

    def _batch_info(self, rows: list[queue.Claimed]) -> BatchInfo:
        """Everything a batch needs from the database besides the messages: one query per kind, not per row."""
        from letterhead.notifications.service import load_overrides

        tenant_ids = {r.tenant_id for r in rows}
        with self.ctx.db.reading() as s:  # not the writer lock, which claims and result writes take turns on
            tenants = list(s.scalars(select(Tenant).where(Tenant.id.in_(tenant_ids))))
            routes = {t.id: (t, resolve_route_in(self.ctx, s, t)) for t in tenants}
            platform_routes = {t.id: (t, default_route(self.ctx, t)) for t in tenants}
            overrides = (
                load_overrides(s, sorted(tenant_ids)) if any(r.kind == "notification" for r in rows) else {}
            )
        # Verification mail always goes through the platform: it must reach an address that is not yet ours.
        for r in rows:
            if (r.options or {}).get("platform_route"):
                routes[f"{r.tenant_id}\0platform"] = platform_routes[r.tenant_id]
        return BatchInfo(routes, overrides)

    @staticmethod
    def _route(row: queue.Claimed, info: BatchInfo) -> tuple[Tenant, Route]:
        key = f"{row.tenant_id}\0platform" if (row.options or {}).get("platform_route") else row.tenant_id
        return info.routes[key]

    def _contents(
        self, part: list[queue.Claimed], routed: list[tuple[Tenant, Route]], info: BatchInfo
    ) -> list[Content | TemplateError | None]:
        """What each message says; the template's error when it cannot render; None when there is no route."""
        todo = [(row, tenant) for row, (tenant, route) in zip(part, routed, strict=True) if route.endpoint]
        rendered = iter(render_contents(todo, info.overrides, self.platform, vault=self.ctx.vault))
        out: list[Content | TemplateError | None] = []
        for row, (tenant, route) in zip(part, routed, strict=True):
            if route.endpoint is None:
                out.append(None)
                continue
            content = next(rendered)
            if isinstance(content, TemplateError) and _DEADLINE in content.detail:
                content = self._render_again(row, tenant, info)
            out.append(content)
        return out

    def _prepare(self, row: queue.Claimed, route: Route, content: Content | TemplateError | None) -> Prepared:
        """Compose one message from its ``content`` (not yet DKIM-signed: ``_prepare_part`` signs a part at a
        time)."""
        if content is None:
            return Prepared(row, route, None, None)
        if isinstance(content, TemplateError):
            return Prepared(row, route, None, None, error=content)
        domain = route.from_addr.rpartition("@")[2] or "letterhead.invalid"
        mid = f"<{row.id.removeprefix('msg_').lower()}@{domain}>"
        data = compose(
            from_addr=route.from_addr,
            from_name=route.from_name,
            to=row.to_addrs,
            subject=content.subject,
            html=content.html,
            text=content.text,
            message_id=mid,
            date=utcnow(),
            reply_to=route.reply_to,
        )
        # compose() output (and the DKIM header put in front of it, see _prepare_part) is SMTP-canonical: no
        # dot-stuffing scans needed.
        return Prepared(row, route, Envelope(route.from_addr, tuple(row.to_addrs), data, canonical=True), mid)

    def _render_again(self, row: queue.Claimed, tenant: Tenant, info: BatchInfo) -> Content | TemplateError:
        """A render that hit the time limit, tried again alone: telling a template that is slow from a machine
        that is busy.

        The sandbox's render deadline counts the rendering thread's CPU time (notifications/templates.py), so a
        thread that merely waited for a core no longer trips it; the retries stay as a safety net. A template
        that still times out every try is deferred (see ``_slow``), never failed at once, and one that is really
        too slow keeps being deferred until the message expires.
        """
        for attempt in range(1, _RENDER_TRIES):
            try:
                return render_content(row, tenant, info.overrides, self.platform, vault=self.ctx.vault)
            except TemplateError as exc:
                if _DEADLINE not in exc.detail or attempt == _RENDER_TRIES - 1:
                    return exc
        raise AssertionError("unreachable")

    async def _send(self, prepared: Sequence[Prepared], sending: BatchSending | None = None) -> list[queue.Result]:
        """Send ``prepared`` and wait for all of it (see ``_dispatch``)."""
        parts = await asyncio.gather(*self._dispatch(prepared, sending or BatchSending()))
        return [r for part in parts for r in part]

    def _dispatch(self, prepared: Sequence[Prepared], sending: BatchSending) -> list[asyncio.Task[list[queue.Result]]]:
        """Start sending ``prepared``, one part of a batch (``sending``: what its parts share; see
        ``BatchSending``): one task per route, so that each route goes at its own pace. What is not sent (held,
        unrenderable, over the route's cap) is in the first task's results."""
        groups: dict[str, list[Prepared]] = defaultdict(list)
        results: list[queue.Result] = []
        used, failed, settled = sending.used, sending.failed, sending.settled
        load = self._route_load
        for p in prepared:
            key = p.route.key
            cap = p.route.capacity
            if p.error is not None and _DEADLINE in p.error.detail:
                results.append(self._slow(p))
            elif p.error is not None:
                results.append(self._unrenderable(p))
            elif p.envelope is None or (cap is not None and used[key] >= cap):
                # Over the quota: never sent to be blocked; it waits for the window to reopen.
                results.append(self._held(p))
            elif load[key] >= self.route_cap:
                # The route has this worker's fill already (its server is slow or stalled): not attempted.
                results.append(self._saturated(p))
            else:
                groups[key].append(p)
                used[key] += 1
                load[key] += 1

        async def send_group(items: list[Prepared]) -> list[queue.Result]:
            try:
                route = items[0].route
                endpoint = route.endpoint
                assert endpoint is not None
                if route.config_id is None:  # the platform's own transport: its operator sizes it for all workers
                    out = await send_through(items, route, endpoint)
                else:
                    key = lease_key(endpoint.host, endpoint.port, endpoint.username)
                    close = functools.partial(self.client.close_endpoint, endpoint)
                    async with self.route_leases.hold(key, close, endpoint.pool_key()) as held:
                        if not held:
                            return busy(items, key)
                        self._busy_since.pop(key, None)
                        out = await send_through(items, route, endpoint, key)
            finally:
                load[items[0].route.key] -= len(items)
            try:
                await self._note_route_health(items, out)
            except Exception:  # bookkeeping only: the outcomes must still be recorded (else sent twice)
                log.warning("could not note a route's health", exc_info=True)
            return out

        def busy(items: list[Prepared], key: str) -> list[queue.Result]:
            used[items[0].route.key] -= len(items)  # not sent: the route's quota for the batch is still there
            wait = self._busy_wait(key)
            return [self._busy(p, wait) for p in items]

        async def send_through(
            items: list[Prepared], route: Route, endpoint: Endpoint, lease: str | None = None
        ) -> list[queue.Result]:
            first = settled.get(route.key)
            if first is not None:
                await first.wait()  # the route's first group of this batch: did its setup fail?
            else:
                settled[route.key] = asyncio.Event()
            started_at = utcnow()
            try:
                if route.key in failed:
                    sent = [replace(failed[route.key], rejected={}) for _ in items]
                elif lease is not None and not self.route_leases.is_held(lease):
                    return busy(items, lease)  # lost while this group waited for the route's first one
                else:
                    sent = await self.client.send_batch(endpoint, [p.envelope for p in items if p.envelope])
                    if sent and all(r.stage not in _MESSAGE_STAGES and r.outcome is not Outcome.SENT for r in sent):
                        failed[route.key] = sent[0]
            finally:
                if first is None:
                    settled[route.key].set()
            now = utcnow()  # one clock reading for the group's outcomes: they were all answered by now
            return [self._outcome(p, r, started_at, now) for p, r in zip(items, sent, strict=True)]

        async def done(out: list[queue.Result]) -> list[queue.Result]:
            return out

        tasks = [asyncio.create_task(send_group(g)) for g in groups.values() if g]
        if results:
            tasks.insert(0, asyncio.create_task(done(results)))
        return tasks

    async def _note_route_health(self, prepared: Sequence[Prepared], results: Sequence[queue.Result]) -> None:
        """An authentication or quota failure on a tenant's SMTP route changes the route for what follows."""
        from letterhead.senders import smtp as smtp_settings

        routes = {p.row.id: p.route for p in prepared}
        seen: set[str] = set()
        for r in results:
            route = routes[r.message_id]
            category = r.summary.get("category")
            if not route.config_id or not category or route.config_id in seen:
                continue
            cat = Category(category)
            if cat in smtp_settings.AUTH_CATEGORIES or cat in smtp_settings.QUOTA_CATEGORIES:
                seen.add(route.config_id)
                await asyncio.to_thread(
                    smtp_settings.note_live_failure,
                    self.ctx,
                    config_id=route.config_id,
                    category=cat,
                    remedy=r.summary.get("remedy") or {},
                    retry_after_seconds=r.summary.get("retry_after_seconds"),
                )
                if route.endpoint is not None and cat in smtp_settings.AUTH_CATEGORIES:
                    await self.client.close_endpoint(route.endpoint)

    # --- outcomes ----------------------------------------------------------------------------------------------

    def _summary(self, p: Prepared) -> dict[str, Any]:
        return p.route.log_fields | {"message_id_header": p.message_id_header}

    def _unrenderable(self, p: Prepared) -> queue.Result:
        assert p.error is not None
        remedy = {
            "en": f"The tenant's template for this event cannot render this message's data ({p.error.detail}). "
            "Fix the template (Notifications → template editor; preview shows the error) or revert it to the default.",
            "ja": f"このイベントのテンプレートでこのメッセージのデータを表示できません（{p.error.detail}）。"
            "通知設定のテンプレート編集でプレビューを確認して修正するか、既定のテンプレートに戻してください。",
        }
        summary = self._summary(p) | {"category": "template_error", "remedy": remedy, "last_text": p.error.detail}
        return queue.Result(p.row.id, MessageStatus.FAILED, None, summary=summary)

    def _slow(self, p: Prepared) -> queue.Result:
        """Rendering hit the time limit every try: not attempted, deferred with backoff (failed once expired)."""
        now = utcnow()
        assert p.error is not None
        summary = self._summary(p) | {"note": f"Rendering timed out ({p.error.detail}); tried again later."}
        if now >= p.row.expires_at:
            return queue.Result(p.row.id, MessageStatus.FAILED, None,
                                summary=summary | {"category": "template_error", "last_text": p.error.detail})
        until = now + timedelta(seconds=self.policy.delay(p.row.attempt_count + 1))
        return queue.Result(p.row.id, MessageStatus.DEFERRED, None, next_attempt_at=until, summary=summary)

    def _busy_wait(self, key: str) -> float:
        """Seconds a message for an account in use elsewhere waits: ``_BUSY_RETRY_SECONDS`` at first, then half
        as long as this worker has found the account in use, up to ``_BUSY_RETRY_MAX_SECONDS``. A worker killed
        while holding a lease keeps it for ``lease_seconds``: without the growth, its account's messages would
        be claimed and prepared again every few seconds all that time."""
        now = time.monotonic()
        since, last = self._busy_since.get(key, (now, now))
        if now - last > 2 * _BUSY_RETRY_MAX_SECONDS:
            since = now  # busy again after a long while: a new spell, short waits first
        self._busy_since[key] = (since, now)
        wait = min(_BUSY_RETRY_MAX_SECONDS, max(_BUSY_RETRY_SECONDS, (now - since) / 2))
        return wait * (1 + random.random())

    def _busy(self, p: Prepared, wait: float) -> queue.Result:
        """Another worker process is sending through this SMTP account (``route_leases``): not attempted; claimed
        again after ``wait`` seconds (by whichever worker is free then)."""
        return self._not_attempted(p, _BUSY_NOTE, utcnow() + timedelta(seconds=wait))

    def _saturated(self, p: Prepared) -> queue.Result:
        wait = _BUSY_RETRY_SECONDS * (1 + random.random())
        return self._not_attempted(p, _SATURATED_NOTE, utcnow() + timedelta(seconds=wait))

    def _held(self, p: Prepared) -> queue.Result:
        until = p.route.hold_until or utcnow() + timedelta(seconds=self.policy.delay(p.row.attempt_count + 1))
        return self._not_attempted(p, p.route.hold_reason, until)

    def _not_attempted(self, p: Prepared, note: str | None, until: datetime) -> queue.Result:
        """Deferred to ``until`` without an attempt (``note`` says why); failed as expired once its lifetime is
        over."""
        summary = self._summary(p) | {"note": note}
        if utcnow() >= p.row.expires_at:
            return queue.Result(p.row.id, MessageStatus.FAILED, None, summary=summary | {"category": "expired"})
        return queue.Result(p.row.id, MessageStatus.DEFERRED, None, next_attempt_at=until, summary=summary)

    def _outcome(self, p: Prepared, r: SendResult, started_at: datetime, now: datetime | None = None) -> queue.Result:
        now = now or utcnow()
        number = p.row.attempt_count + 1
        route = p.route
        reply = r.reply
        code, enhanced, text = (reply.code, reply.enhanced, reply.text) if reply else (None, None, r.error_detail)
        attempt: dict[str, Any] = {
            "message_id": p.row.id,
            "number": number,
            "started_at": started_at,
            "duration_ms": round(r.duration_ms, 2),
            "mode": route.mode.value,
            "transport": route.transport,
            "stage": r.stage,
            "code": code,
            "enhanced": enhanced,
            "text": text,
            "error": r.error,
            "category": None,
            "transcript": r.transcript,
        }
        # One dict per message, built in one go (this runs for every message sent).
        summary = {
            **route.log_fields,
            "message_id_header": p.message_id_header,
            "last_code": code,
            "last_enhanced": enhanced,
            "last_text": text,
        }
        if r.outcome is Outcome.SENT:
            attempt["outcome"] = _SENT
            summary["sent_at"] = now
            return queue.Result(p.row.id, MessageStatus.SENT, attempt, summary=summary)

        endpoint = p.route.endpoint
        d = diagnose(
            provider=p.route.provider,
            reply=r.reply,
            stage=r.stage,
            error=r.error,
            host=endpoint.host if endpoint else None,
            greeting=r.greeting,
            ehlo=r.ehlo,
            port=endpoint.port if endpoint else None,
            security=endpoint.security.value if endpoint else None,
        )
        attempt["category"] = d.category.value
        summary.update(category=d.category.value, remedy={"en": d.remedy.en, "ja": d.remedy.ja})
        if d.retry_after_seconds:
            summary["retry_after_seconds"] = d.retry_after_seconds
        permanent = r.outcome is Outcome.PERMANENT and d.permanent and r.stage in _MESSAGE_STAGES
        if permanent:
            attempt["outcome"] = AttemptOutcome.PERMANENT.value
            return queue.Result(p.row.id, MessageStatus.FAILED, attempt, summary=summary)
        retry_at = now + timedelta(seconds=d.retry_after_seconds) if d.retry_after_seconds else None
        decision = decide_transient(
            policy=self.policy, attempt_count=number, now=now, expires_at=p.row.expires_at, retry_at=retry_at
        )
        attempt["outcome"] = (AttemptOutcome.EXPIRED if decision.expired else AttemptOutcome.TRANSIENT).value
        return queue.Result(
            p.row.id, decision.status, attempt, next_attempt_at=decision.next_attempt_at, summary=summary
        )

    # --- the loop ----------------------------------------------------------------------------------------------

    def stop(self) -> None:
        self._stopping = True
        self.wakeup.set()

    async def _pipeline(self) -> None:
        idle = self.ctx.settings.worker_poll_seconds
        while not self._stopping:
            await self._writable.wait()  # outcomes waiting for the database come first
            if self._stopping:
                break
            try:
                handled = await self._batch(patience=self.patience)
            except Exception:  # a bad batch must not kill the worker; its leases expire and are retried
                log.exception("delivery batch failed")
                handled = 0
                await asyncio.sleep(1.0)
            if handled == 0 and not self._stopping:
                self.wakeup.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.wakeup.wait(), timeout=idle)

    async def run(self) -> None:
        """Run until ``stop()``; then finish the batches in hand and close connections."""
        started = time.monotonic()
        log.info("worker %s started with %d pipelines", self.owner, self.pipelines)
        renewing = asyncio.create_task(self._renew_leases())
        try:
            await asyncio.gather(*(self._pipeline() for _ in range(self.pipelines)))
            while self._background:  # slow routes still sending: their outcomes are recorded before we go
                await asyncio.gather(*self._background, return_exceptions=True)
        finally:
            renewing.cancel()
            await asyncio.gather(renewing, return_exceptions=True)
            await self.client.aclose()
            await self.route_leases.aclose()
            stages = " ".join(f"{k}={v:.3f}" for k, v in sorted(self.stage_seconds.items()))
            log.info("worker %s stopped after %.1fs; handled=%d %s", self.owner, time.monotonic() - started,
                     self.handled, stages)
