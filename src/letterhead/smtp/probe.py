"""The step-by-step SMTP test behind "Send test email" and ``letterhead smtp test``.

Design note
-----------
The probe is not a second SMTP implementation: it opens its connection with
:func:`letterhead.smtp.client.open_connection` and runs the transaction with the client's own ``Connection``
methods, passing a *trace* callback so each step (resolve, connect, tls, ehlo, auth, mail_from, rcpt_to, data)
is reported with its timing and a short English fact. It never pipelines (one command, one reply), so the
failing step is exactly the command that failed, and it always uses a fresh connection (never the pool).

Port/security mismatches (SPEC §2.1.5) are recognised from what the connection does, not from the port number:

* ``ssl`` against a plain SMTP port (587/25): our ClientHello is answered in plain text, OpenSSL reports
  WRONG_VERSION_NUMBER → ``tls_wrong_version`` and ``tls_hint="plain_port"``.
* ``starttls``/``none`` against an implicit-TLS port (465): the server waits for a ClientHello and never
  greets. After the greeting timeout a second connection tries a TLS handshake; if it completes (certificate
  validity does not matter for this question) → ``greeting_timeout`` and ``tls_hint="implicit_tls_port"``.
* ``starttls`` against a server that does not offer it → ``starttls_unsupported``.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from dataclasses import dataclass, field

from letterhead.smtp.client import (
    Endpoint,
    Envelope,
    Outcome,
    Security,
    SmtpFailure,
    _Tx,
    open_connection,
    tls_context,
)
from letterhead.smtp.reply import ErrorKind, Reply

__all__ = ["STEPS", "ProbeResult", "Step", "probe"]

#: The steps in the order they run; a result lists them up to (and including) the failing one.
STEPS = ("resolve", "connect", "tls", "ehlo", "auth", "mail_from", "rcpt_to", "data")


@dataclass
class Step:
    name: str
    ok: bool
    ms: float
    detail: str


@dataclass
class ProbeResult:
    ok: bool
    steps: list[Step]  # in STEPS order; steps after the failure are omitted
    reply: Reply | None
    stage: str | None  # failing step name
    error: str | None  # ErrorKind value
    error_detail: str | None
    greeting: str | None
    ehlo: tuple[str, ...]
    transcript: str  # redacted
    duration_ms: float
    tls_hint: str | None = None  # "implicit_tls_port" | "plain_port"
    accepted: tuple[str, ...] = ()
    rejected: dict[str, Reply] = field(default_factory=dict)


def _reply_text(reply: Reply) -> str:
    parts = [str(reply.code)]
    if reply.enhanced:
        parts.append(reply.enhanced)
    if reply.text:
        parts.append(reply.text)
    return " ".join(parts)


def _step_name(stage: str, security: Security) -> str:
    if stage == "greeting":
        # The greeting is the server's answer to the connection; with implicit TLS it follows the handshake.
        return "tls" if security is Security.SSL else "connect"
    if stage == "done":
        return "data"
    return stage


async def _answers_tls(ip: str, port: int, host: str, timeout: float) -> str | None:
    """Does ip:port complete a TLS handshake? Returns the TLS version, or None. Certificates are not checked:
    the question is only "is this an implicit-TLS port"."""
    try:
        async with asyncio.timeout(timeout):
            _reader, writer = await asyncio.open_connection(
                ip, port, ssl=tls_context(False), server_hostname=host, ssl_handshake_timeout=timeout
            )
    except (OSError, TimeoutError, ssl.SSLError):
        return None
    sslobj = writer.get_extra_info("ssl_object")
    version = (sslobj.version() if sslobj is not None else None) or "TLS"
    writer.close()
    return str(version)


async def _plain_greeting(ip: str, port: int, timeout: float) -> str | None:
    """The first line a plain connection receives, if any (confirms a "plain_port" diagnosis)."""
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(ip, port)
            try:
                line = await reader.readline()
            finally:
                writer.close()
    except (OSError, TimeoutError):
        return None
    text = line.decode("utf-8", "replace").strip()
    return text if text[:3].isdigit() else None


async def probe(endpoint: Endpoint, envelope: Envelope, *, greeting_timeout: float = 8.0) -> ProbeResult:
    """Run every step against ``endpoint`` and send ``envelope`` for real when they all pass."""
    t_start = time.perf_counter()
    steps: list[Step] = []
    mark = [t_start]

    def trace(name: str, ok: bool, ms: float, detail: str) -> None:
        steps.append(Step(name, ok, round(ms, 1), detail))
        mark[0] = time.perf_counter()

    def since_mark() -> float:
        return round((time.perf_counter() - mark[0]) * 1000.0, 1)

    try:
        conn = await open_connection(endpoint, pipelining=False, greeting_timeout=greeting_timeout, trace=trace)
    except SmtpFailure as f:
        name = _step_name(f.stage, endpoint.security)
        ms = since_mark()
        detail = f.detail or (_reply_text(f.reply) if f.reply else f.stage)
        hint: str | None = None
        if f.error == ErrorKind.TLS_WRONG_VERSION and endpoint.security is Security.SSL:
            hint = "plain_port"
            if f.address is not None:
                banner = await _plain_greeting(f.address[0], f.address[1], min(endpoint.timeout, 3.0))
                if banner:
                    detail += f" (it greets in plain text: {banner[:80]})"
        elif f.error == ErrorKind.GREETING_TIMEOUT and endpoint.security is not Security.SSL and f.address is not None:
            version = await _answers_tls(
                f.address[0], f.address[1], endpoint.host, min(endpoint.timeout, greeting_timeout)
            )
            if version:
                hint = "implicit_tls_port"
                detail += (
                    f"; the port completed a {version} handshake instead: it expects SSL/TLS from the"
                    " first byte (implicit TLS, usually port 465)"
                )
        steps.append(Step(name, False, ms, detail))
        return ProbeResult(
            ok=False,
            steps=steps,
            reply=f.reply,
            stage=name,
            error=f.error,
            error_detail=f.detail,
            greeting=f.greeting,
            ehlo=f.ehlo,
            transcript="\n".join(f.transcript),
            duration_ms=round((time.perf_counter() - t_start) * 1000.0, 1),
            tls_hint=hint,
        )

    tx = _Tx(envelope)
    try:
        conn.begin(tx)
        if await conn.envelope(tx, written=False):
            await conn.body(tx)
    finally:
        await conn.quit(min(endpoint.timeout, 2.0))
    res = tx.result
    assert res is not None
    ok = res.outcome is Outcome.SENT
    if ok:
        assert res.reply is not None
        steps.append(Step("data", True, since_mark(), _reply_text(res.reply)))
    else:
        name = _step_name(res.stage, endpoint.security)
        detail = _reply_text(res.reply) if res.reply is not None else (res.error_detail or res.error or name)
        if name == "rcpt_to" and res.rejected:
            detail = "; ".join(f"{addr}: {_reply_text(r)}" for addr, r in res.rejected.items())
        steps.append(Step(name, False, since_mark(), detail))
    return ProbeResult(
        ok=ok,
        steps=steps,
        reply=res.reply,
        stage=None if ok else _step_name(res.stage, endpoint.security),
        error=res.error,
        error_detail=res.error_detail,
        greeting=conn.greeting,
        ehlo=conn.ehlo,
        transcript=res.transcript,
        duration_ms=round((time.perf_counter() - t_start) * 1000.0, 1),
        accepted=res.accepted,
        rejected=res.rejected,
    )
