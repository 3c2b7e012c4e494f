"""The tenant's own SMTP server: test, save (only with a proof of a passing test), live status and quotas.

The rule from the help article — "these details can only be saved after a test email has been sent" — is
enforced here, not only by the UI's disabled button: a passing test returns a *proof*, a signed token bound to
a hash of every field that affects delivery (password included) that expires after 30 minutes. Saving checks
the proof against the values being saved.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update

from letterhead import ratelimit
from letterhead.addresses import check_header_text, normalize_email
from letterhead.context import Context
from letterhead.delivery import route_leases
from letterhead.errors import Conflict, InvalidInput, NotFound, RateLimited
from letterhead.maillog import iso
from letterhead.models import (
    Attempt,
    AttemptOutcome,
    Message,
    MessageKind,
    MessageStatus,
    SenderMode,
    SmtpConfig,
    SmtpStatus,
    Tenant,
    new_id,
    utcnow,
)
from letterhead.notifications.compose import compose
from letterhead.plans import Feature
from letterhead.settings import Settings
from letterhead.smtp import hosts
from letterhead.smtp.client import Endpoint, Envelope, Security
from letterhead.smtp.diagnose import Category, Diagnosis, Remedy, diagnose, gmail_from_warning
from letterhead.smtp.presets import get_preset
from letterhead.smtp.probe import ProbeResult, probe

PROOF_PURPOSE = "smtp-test-proof"
PROOF_MAX_AGE = 30 * 60
#: Categories that mean "this configuration cannot log in": stop using it until it is fixed.
AUTH_CATEGORIES = frozenset(
    {Category.AUTH_FAILED, Category.APP_PASSWORD_REQUIRED, Category.AUTH_METHOD_DISABLED, Category.ACCOUNT_SUSPENDED}
)
QUOTA_CATEGORIES = frozenset({Category.QUOTA_EXCEEDED, Category.RATE_LIMITED})
#: Each test is a connection made on the tenant's behalf: a handful a minute is plenty for fixing settings.
TEST_LIMIT = ratelimit.Limit(10, 60.0)


@dataclass(frozen=True)
class SmtpSettings:
    """What a tenant enters (test and save take the same fields)."""

    host: str
    port: int
    security: str
    username: str | None
    password: str | None
    from_email: str
    from_name: str | None
    preset: str = "custom"
    reply_to: str | None = None
    verify_tls: bool = True
    daily_limit: int | None = None
    per_minute_limit: int | None = None
    fallback_to_default: bool = False


def _target_errors(app: Settings, host: str, port: int) -> list[dict[str, Any]]:
    """Refusals of where a test or saved settings would connect: a host that is (or resolves only to) a
    private, loopback or otherwise non-public address, and ports the operator did not allow. Not a scanner:
    the connection is made by Letterhead, from inside the platform's network."""
    errors: list[dict[str, Any]] = []
    if not app.allow_private_smtp_hosts:
        refusal = hosts.host_refusal(host)
        if refusal is not None:
            errors.append({
                "field": "host", "code": "host_not_public", "reason": refusal.code, "address": refusal.address,
                "message": f"{refusal.detail} Letterhead connects only to public mail servers: enter your "
                "provider's SMTP host name.",
            })
    allowed = app.allowed_smtp_ports
    if allowed is not None and port not in allowed:
        ports = ", ".join(str(p) for p in sorted(allowed))
        errors.append({
            "field": "port", "code": "port_not_allowed", "allowed": ports, "port": port,
            "message": f"Port {port} is not one Letterhead connects to; use one of {ports} (465 for SSL, 587 for "
            "STARTTLS). The platform operator sets these with LETTERHEAD_SMTP_ALLOWED_PORTS.",
        })
    return errors


def validate(raw: SmtpSettings, *, app: Settings) -> SmtpSettings:
    """The settings checked and normalised; ``InvalidInput`` naming every bad field otherwise. ``app`` decides
    which hosts and ports may be used."""
    errors: list[dict[str, Any]] = []
    preset = get_preset(raw.preset or "custom")
    host = (raw.host or "").strip().rstrip(".").lower()
    literal = hosts.literal(host) if host else None
    if literal is not None:
        host = str(literal[0])  # IPv6 without brackets, IPv4 dotted: the form the client connects to
    elif not host or len(host) > 253 or any(c.isspace() or c in "/@:[]" for c in host):
        errors.append({"field": "host", "message": "a host name such as smtp.gmail.com"})
    if not 1 <= int(raw.port) <= 65535:
        errors.append({"field": "port", "message": "a port between 1 and 65535 (465 for SSL, 587 for STARTTLS)"})
    elif not errors:
        errors += _target_errors(app, (raw.host or "").strip().rstrip(".").lower(), int(raw.port))
    if raw.security not in set(Security):
        errors.append({"field": "security", "message": "one of ssl, starttls, none"})
    for name, value in (("daily_limit", raw.daily_limit), ("per_minute_limit", raw.per_minute_limit)):
        if value is not None and value < 1:
            errors.append({"field": name, "message": "a positive number, or empty for the preset's default"})
    try:
        from_email = normalize_email(raw.from_email, field="from_email")
    except InvalidInput as exc:
        errors += exc.errors
        from_email = raw.from_email
    try:
        from_name = check_header_text(raw.from_name, field="from_name") if raw.from_name else None
        username = check_header_text(raw.username, field="username", max_len=320) if raw.username else None
        reply_to = normalize_email(raw.reply_to, field="reply_to") if raw.reply_to else None
    except InvalidInput as exc:
        raise InvalidInput(exc.detail, errors=errors + exc.errors) from None
    if raw.password and any(c in raw.password for c in "\r\n\0"):
        errors.append({"field": "password", "message": "a password cannot contain line breaks"})
    if errors:
        refused = [e["message"] for e in errors if "code" in e]  # where it would connect: say why in the detail
        detail = " ".join(refused) or "Some SMTP settings are not valid: " + ", ".join(e["field"] for e in errors)
        raise InvalidInput(detail, errors=errors)
    return replace(
        raw,
        host=host,
        from_email=from_email,
        from_name=from_name,
        username=username,
        reply_to=reply_to,
        preset=preset.id,
        daily_limit=raw.daily_limit or preset.daily_limit,
        per_minute_limit=raw.per_minute_limit or preset.per_minute_limit,
    )


def _stored(ctx: Context, tenant_id: str) -> SmtpConfig | None:
    with ctx.db.session() as s:
        return s.scalar(select(SmtpConfig).where(SmtpConfig.tenant_id == tenant_id))


def with_stored_password(ctx: Context, tenant_id: str, settings: SmtpSettings) -> SmtpSettings:
    """An empty password with the stored host and username means "keep the stored password" (listmonk's rule)."""
    if settings.password:
        return settings
    cfg = _stored(ctx, tenant_id)
    if cfg and cfg.password_enc and cfg.host == settings.host and (cfg.username or None) == settings.username:
        return replace(settings, password=ctx.vault.decrypt(cfg.password_enc))
    return settings


def fingerprint(tenant_id: str, s: SmtpSettings) -> str:
    """Hash of every field that affects delivery. The password enters only through this one-way hash."""
    fields = {
        "tenant": tenant_id,
        "host": s.host,
        "port": s.port,
        "security": s.security,
        "username": s.username or "",
        "password": hashlib.sha256((s.password or "").encode()).hexdigest(),
        "from_email": s.from_email,
        "from_name": s.from_name or "",
        "verify_tls": s.verify_tls,
    }
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()


def endpoint_for(app: Settings, s: SmtpSettings, *, max_connections: int | None = None) -> Endpoint:
    preset = get_preset(s.preset)
    return Endpoint(
        host=s.host,
        port=s.port,
        security=Security(s.security),
        username=s.username,
        password=s.password,
        timeout=app.smtp_timeout_seconds,
        verify_tls=s.verify_tls,
        max_connections=max_connections or preset.max_connections,
        allow_private=app.allow_private_smtp_hosts,
    )


_TEST_TEXT = {
    "ja": (
        "Letterhead テストメール",
        "このメールは Letterhead の SMTP 設定テストで送信されました。\n"
        "このメールが届いていれば、{host}:{port} からの送信は正常に動作しています。\n"
        "設定画面に戻り、「保存」を押して設定を完了してください。",
    ),
    "en": (
        "Letterhead test email",
        "This email was sent by Letterhead's SMTP settings test.\n"
        "If you can read it, sending through {host}:{port} works.\n"
        "Go back to the settings page and press Save to finish.",
    ),
}


@dataclass
class CheckResult:
    probe: ProbeResult
    diagnosis: Diagnosis | None
    warnings: list[dict[str, str]]
    message_id_header: str
    subject: str
    text: str

    def as_dict(self) -> dict[str, Any]:
        r, d = self.probe, self.diagnosis
        return {
            "ok": r.ok,
            "steps": [{"name": st.name, "ok": st.ok, "ms": round(st.ms, 1), "detail": st.detail} for st in r.steps],
            "reply": r.reply.as_dict() if r.reply else None,
            "category": d.category.value if d else None,
            "permanent": d.permanent if d else False,
            "remedy": d.remedy.as_dict() if d else None,
            "summary": d.summary.as_dict() if d else None,
            "provider": d.provider if d else None,
            "suggested": d.suggested if d else None,
            "warnings": self.warnings,
            "message_id": None,
            "proof": None,
        }


def check(app: Settings, s: SmtpSettings, *, to: str, locale: str, local_id: str) -> CheckResult:
    """Probe ``s`` step by step, sending a real test email to ``to``; diagnose a failure."""
    subject, body = _TEST_TEXT.get(locale, _TEST_TEXT["en"])
    text = body.format(host=s.host, port=s.port)
    domain = s.from_email.rpartition("@")[2]
    mid = f"<{local_id.lower()}@{domain}>"
    data = compose(
        from_addr=s.from_email,
        from_name=s.from_name,
        to=[to],
        subject=subject,
        html=None,
        text=text,
        message_id=mid,
        date=utcnow(),
        reply_to=s.reply_to,
    )
    endpoint = endpoint_for(app, s, max_connections=1)
    # An implicit-TLS port answers nothing to a plain client: wait for a greeting no longer than the step timeout.
    greeting_timeout = min(8.0, app.smtp_timeout_seconds)
    result = asyncio.run(probe(endpoint, Envelope(s.from_email, (to,), data), greeting_timeout=greeting_timeout))
    diag = None
    if not result.ok:
        diag = diagnose(
            reply=result.reply,
            stage=result.stage,
            error=result.error,
            provider=s.preset if s.preset != "custom" else None,
            host=s.host,
            greeting=result.greeting,
            ehlo=result.ehlo,
            port=s.port,
            security=s.security,
            tls_hint=result.tls_hint,
        )
    warnings = []
    gw = gmail_from_warning(provider=s.preset, username=s.username, from_email=s.from_email)
    if gw is not None:
        warnings.append({"code": "gmail_from_rewrite", "en": gw.en, "ja": gw.ja})
    return CheckResult(result, diag, warnings, mid, subject, text)


def run_test(ctx: Context, *, tenant: Tenant, settings: SmtpSettings, to: str) -> dict[str, Any]:
    """The step-by-step check through the API: also logs the test email as a ``test`` message and, when it
    passed, returns the proof that lets exactly these settings be saved."""
    ctx.plans.require_feature(tenant.plan, Feature.SMTP)
    settings = with_stored_password(ctx, tenant.id, validate(settings, app=ctx.settings))
    to = normalize_email(to, field="to")
    wait = ratelimit.take(ctx.db, f"smtp-test:{tenant.id}", TEST_LIMIT)
    if wait is not None:
        raise RateLimited(
            f"At most {TEST_LIMIT.limit} SMTP tests a minute per tenant: try again in {wait} seconds.",
            retry_after=wait, reason="smtp_test_limit",
        )
    started = utcnow()
    msg_id = new_id("msg_")
    checked = check(ctx.settings, settings, to=to, locale=tenant.locale, local_id=msg_id.removeprefix("msg_"))
    checked = _while_account_busy(ctx, settings, checked)
    _log_test(ctx, tenant, settings, to, msg_id, started, checked)
    out = checked.as_dict()
    out["message_id"] = msg_id
    if checked.probe.ok:
        out["proof"] = ctx.signer.sign(PROOF_PURPOSE, {"h": fingerprint(tenant.id, settings)})
    return out


_BUSY_ACCOUNT = Remedy(
    en="Letterhead is sending other mail through this account right now, and the provider allows only a few "
    "connections at once, so it refused the test's extra connection. Wait until that mail has gone out (usually "
    "a minute or two), then send the test email again.",
    ja="現在このアカウントで他のメールを送信中のため、プロバイダーの同時接続数の上限によりテスト用の接続が拒否されました。"
    "送信が終わるまで（通常1〜2分）お待ちいただき、もう一度テストメールを送信してください。",
)
_BUSY_ACCOUNT_SUMMARY = Remedy(
    en="The account is busy sending your mail: too many connections at once.",
    ja="アカウントがメール送信中のため、同時接続数の上限に達しています。",
)


def _while_account_busy(ctx: Context, s: SmtpSettings, checked: CheckResult) -> CheckResult:
    """The test email is one more connection to the account: while a worker is sending through the same account
    (``route_leases``), a provider at its connection cap refuses it. Said as such, not as a generic rate limit
    (the settings may well be right)."""
    d = checked.diagnosis
    if d is None or d.category is not Category.RATE_LIMITED:
        return checked
    if not route_leases.in_use(ctx.db, route_leases.lease_key(s.host, s.port, s.username)):
        return checked
    return replace(checked, diagnosis=replace(d, remedy=_BUSY_ACCOUNT, summary=_BUSY_ACCOUNT_SUMMARY))


def _log_test(
    ctx: Context, tenant: Tenant, s: SmtpSettings, to: str, msg_id: str, started: datetime, checked: CheckResult
) -> None:
    now = utcnow()
    result, diag = checked.probe, checked.diagnosis
    reply = result.reply
    transport = f"smtp {s.host}:{s.port} ({s.security})"
    with ctx.db.session() as session:
        session.add(
            Message(
                id=msg_id,
                tenant_id=tenant.id,
                kind=MessageKind.TEST.value,
                to_addrs=[to],
                to_first=to.lower(),
                subject=checked.subject,
                text=checked.text,
                from_addr=s.from_email,
                from_name=s.from_name,
                reply_to=s.reply_to,
                mode=SenderMode.SMTP.value,
                transport=transport,
                status=(MessageStatus.SENT if result.ok else MessageStatus.FAILED).value,
                attempt_count=1,
                next_attempt_at=now,
                expires_at=now,
                created_at=started,
                updated_at=now,
                sent_at=now if result.ok else None,
                last_code=reply.code if reply else None,
                last_enhanced=reply.enhanced if reply else None,
                last_text=reply.text if reply else result.error_detail,
                category=diag.category.value if diag else None,
                remedy=diag.remedy.as_dict() if diag else None,
                message_id_header=checked.message_id_header,
            )
        )
        session.add(
            Attempt(
                message_id=msg_id,
                number=1,
                started_at=started,
                duration_ms=round(result.duration_ms, 2),
                mode=SenderMode.SMTP.value,
                transport=transport,
                outcome=(AttemptOutcome.SENT if result.ok else AttemptOutcome.PERMANENT).value,
                stage=result.stage or "done",
                code=reply.code if reply else None,
                enhanced=reply.enhanced if reply else None,
                text=reply.text if reply else result.error_detail,
                error=result.error,
                category=diag.category.value if diag else None,
                transcript=result.transcript,
            )
        )


def save(ctx: Context, *, tenant: Tenant, settings: SmtpSettings, proof: str | None) -> SmtpConfig:
    ctx.plans.require_feature(tenant.plan, Feature.SMTP)
    settings = with_stored_password(ctx, tenant.id, validate(settings, app=ctx.settings))
    payload = ctx.signer.unsign(PROOF_PURPOSE, proof, max_age=PROOF_MAX_AGE) if proof else None
    if not isinstance(payload, dict) or payload.get("h") != fingerprint(tenant.id, settings):
        raise Conflict(
            "These SMTP settings can be saved only after a test email has succeeded with exactly these values "
            "(within the last 30 minutes). Send a test email first.",
            reason="test_required",
        )
    now = utcnow()
    preset = get_preset(settings.preset)
    with ctx.db.session() as s:
        cfg = s.scalar(select(SmtpConfig).where(SmtpConfig.tenant_id == tenant.id))
        if cfg is None:
            cfg = SmtpConfig(tenant_id=tenant.id, created_at=now)
            s.add(cfg)
        cfg.preset = settings.preset
        cfg.host, cfg.port, cfg.security = settings.host, settings.port, settings.security
        cfg.username = settings.username
        cfg.password_enc = ctx.vault.encrypt(settings.password) if settings.password else None
        cfg.from_email, cfg.from_name, cfg.reply_to = settings.from_email, settings.from_name, settings.reply_to
        cfg.verify_tls = settings.verify_tls
        cfg.daily_limit, cfg.per_minute_limit = settings.daily_limit, settings.per_minute_limit
        cfg.max_connections = preset.max_connections
        cfg.fallback_to_default = settings.fallback_to_default
        cfg.status = SmtpStatus.ACTIVE.value
        cfg.last_tested_at = now
        cfg.last_error = None
        cfg.paused_until = None
        cfg.updated_at = now
        # Mail held while the configuration was failing goes out now.
        s.execute(
            update(Message)
            .where(Message.tenant_id == tenant.id, Message.status == MessageStatus.DEFERRED.value)
            .values(next_attempt_at=now)
        )
    if ctx.notify:
        ctx.notify()
    return cfg


def remove(ctx: Context, *, tenant: Tenant) -> None:
    with ctx.db.session() as s:
        cfg = s.scalar(select(SmtpConfig).where(SmtpConfig.tenant_id == tenant.id))
        if cfg is None:
            raise NotFound("This tenant has no SMTP settings.")
        s.delete(cfg)
        t = s.get(Tenant, tenant.id)
        if t is not None and t.mode == SenderMode.SMTP.value:
            from letterhead.senders.settings import fallback_mode

            t.mode = fallback_mode(s, t).value


# --- live sending: quotas and health -------------------------------------------------------------------------


@dataclass(frozen=True)
class Quota:
    daily_limit: int | None
    daily_sent: int
    per_minute_limit: int | None
    minute_sent: int
    paused_until: datetime | None

    @property
    def remaining(self) -> int | None:
        """How many may go now (None: no limit)."""
        limits = []
        if self.daily_limit:
            limits.append(self.daily_limit - self.daily_sent)
        if self.per_minute_limit:
            limits.append(self.per_minute_limit - self.minute_sent)
        return max(0, min(limits)) if limits else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "daily_limit": self.daily_limit,
            "daily_sent": self.daily_sent,
            "daily_remaining": max(0, self.daily_limit - self.daily_sent) if self.daily_limit else None,
            "per_minute_limit": self.per_minute_limit,
            "minute_sent": self.minute_sent,
            "paused_until": iso(self.paused_until),
        }


def quota(session: Any, cfg: SmtpConfig, now: datetime | None = None) -> Quota:
    """Sent through the tenant's SMTP in the rolling day and minute (counted from the log, so it survives
    restarts and is shared by every worker)."""
    now = now or utcnow()
    base = select(func.count()).where(
        Message.tenant_id == cfg.tenant_id,
        Message.mode == SenderMode.SMTP.value,
        Message.kind != MessageKind.TEST.value,
    )
    day = int(session.scalar(base.where(Message.sent_at >= now - timedelta(days=1))) or 0)
    minute = int(session.scalar(base.where(Message.sent_at >= now - timedelta(minutes=1))) or 0)
    paused = cfg.paused_until if cfg.paused_until and cfg.paused_until > now else None
    return Quota(cfg.daily_limit, day, cfg.per_minute_limit, minute, paused)


def next_capacity_at(session: Any, cfg: SmtpConfig, q: Quota, now: datetime) -> datetime:
    """When sending may resume once the remaining quota is used up: the end of a provider pause, a minute from
    now when the per-minute limit binds, or when the oldest send of the rolling day leaves the window (now + 1 day
    when nothing was sent yet: this batch's sends open the window)."""
    if q.paused_until:
        return q.paused_until
    daily_left = q.daily_limit - q.daily_sent if q.daily_limit else None
    minute_left = q.per_minute_limit - q.minute_sent if q.per_minute_limit else None
    if minute_left is not None and (daily_left is None or minute_left < daily_left):
        return now + timedelta(seconds=60)
    oldest = session.scalar(
        select(func.min(Message.sent_at)).where(
            Message.tenant_id == cfg.tenant_id,
            Message.mode == SenderMode.SMTP.value,
            Message.kind != MessageKind.TEST.value,
            Message.sent_at >= now - timedelta(days=1),
        )
    )
    return (oldest or now) + timedelta(days=1)


def note_live_failure(ctx: Context, *, config_id: str, category: Category, remedy: dict[str, str],
                      retry_after_seconds: int | None) -> None:
    """Live sending met an authentication or quota failure: mark the configuration accordingly."""
    now = utcnow()
    with ctx.db.session() as s:
        cfg = s.get(SmtpConfig, config_id)
        if cfg is None:
            return
        if category in AUTH_CATEGORIES:
            cfg.status = SmtpStatus.FAILING.value
            cfg.last_error = {"category": category.value, "remedy": remedy, "at": iso(now)}
        elif category in QUOTA_CATEGORIES:
            cfg.paused_until = now + timedelta(seconds=retry_after_seconds or 3600)
            cfg.last_error = {"category": category.value, "remedy": remedy, "at": iso(now)}
        cfg.updated_at = now


def public(ctx: Context, *, tenant: Tenant) -> dict[str, Any]:
    ctx.plans.require_feature(tenant.plan, Feature.SMTP)
    with ctx.db.session() as s:
        cfg = s.scalar(select(SmtpConfig).where(SmtpConfig.tenant_id == tenant.id))
        if cfg is None:
            raise NotFound("This tenant has no SMTP settings yet: test and save them first.")
        q = quota(s, cfg)
    return {
        "preset": cfg.preset,
        "host": cfg.host,
        "port": cfg.port,
        "security": cfg.security,
        "username": cfg.username,
        "has_password": bool(cfg.password_enc),
        "from_email": cfg.from_email,
        "from_name": cfg.from_name,
        "reply_to": cfg.reply_to,
        "verify_tls": cfg.verify_tls,
        "fallback_to_default": cfg.fallback_to_default,
        "status": cfg.status,
        "last_tested_at": iso(cfg.last_tested_at),
        "last_error": cfg.last_error,
        "quota": q.as_dict(),
        "active": tenant.mode == SenderMode.SMTP.value,
    }
