"""Branded sender: a tenant's own address, verified by link, sent through the platform transport (SPEC §2.2).

Flow: ``request_verification`` stores a pending verification (the token's sha256 only, 24 h expiry) and queues
the verification email *in the same transaction* (nothing lost between "accepted" and "queued"; its body, which
carries the link, sealed with the vault: see ``delivery.content``); the email is
marked ``platform_route`` so that the worker always sends it through the platform's default route, even when the
tenant's mode is ``smtp`` or ``branded`` (it must reach an address that is not yet proven to be the tenant's).
The link opens a page whose GET changes nothing (link scanners fetch links); only the POST of its form
(``confirm``) verifies. A resend or a new address voids the older link. The verified address stays in use until
a newer one is verified, so mail never stops.

Rate limits (per tenant, counted from ``sender_verifications`` rows so that they hold across processes): at most
one resend per 60 s, 5 verification emails per hour and 20 per day. Every verification email counts, the first
send of an address included: each one goes to an address nobody has proven yet, so the limits are what keeps
the feature from being used to mail-bomb a third party.

DMARC (RFC 7489): the platform's transport cannot align SPF or DKIM with the tenant's domain until the domain is
authenticated with Letterhead (custom sending domains), so a domain publishing ``p=quarantine``/``p=reject``
would see its mail junked or bounced. ``from_decision`` then says to send as "<Name> via <Platform>" from the
platform address with Reply-To the branded address (the rewrite mailing lists use, RFC 7960 §4.1.3).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from jinja2 import DictLoader, Environment, select_autoescape
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from letterhead.addresses import check_header_text, domain_has_mail_host, normalize_email
from letterhead.context import Context
from letterhead.delivery.content import seal
from letterhead.dns import Resolver
from letterhead.errors import Conflict, InvalidInput, RateLimited
from letterhead.models import (
    SEALED_BODY,
    BrandedSender,
    Message,
    MessageKind,
    MessageStatus,
    SenderMode,
    SenderVerification,
    Tenant,
    VerificationStatus,
    new_id,
    utcnow,
)
from letterhead.plans import Feature
from letterhead.security import new_token, sha256_hex
from letterhead.senders.default import platform_address
from letterhead.senders.dmarc import DmarcChecker, DmarcPolicy, DmarcResult

__all__ = [
    "FromDecision",
    "TokenState",
    "confirm",
    "describe",
    "dmarc_checker",
    "domain_authenticated",
    "format_time",
    "from_decision",
    "lookup_token",
    "request_verification",
    "resend_verification",
    "verification_url",
    "verified_sender",
]

TOKEN_LIFETIME = timedelta(hours=24)
RESEND_INTERVAL = timedelta(seconds=60)
#: (window, most verification emails per tenant in it, wording)
WINDOW_LIMITS = (
    (timedelta(hours=1), 5, "hour"),
    (timedelta(days=1), 20, "day"),
)


# --- the verified sender ---------------------------------------------------------------------------------------


def verified_sender(session: Session, tenant_id: str) -> tuple[str, str | None] | None:
    """(address, name) of the tenant's verified branded sender, or None."""
    row = session.get(BrandedSender, tenant_id)
    return (row.email, row.name) if row is not None else None


def domain_authenticated(session: Session, tenant_id: str, domain: str) -> bool:
    """Whether ``domain`` is a sending domain the tenant authenticated with Letterhead (DKIM-signed by us): the
    tenant has a verified sending domain equal to ``domain`` or to its organisational domain (see
    ``senders.domains.authenticating_domain``). Then DMARC passes through DKIM alignment and no "via" is needed."""
    from letterhead.senders import domains

    return domains.authenticating_domain(session, tenant_id, domain) is not None


# --- DMARC-aware From --------------------------------------------------------------------------------------------


def dmarc_checker(ctx: Context) -> DmarcChecker:
    """The process's DMARC checker (its TTL cache is what keeps per-batch route resolution cheap).

    Kept on the context, rebuilt when ``dns_nameservers`` changes, so that there is no import-time singleton
    and every lookup goes through the resolver the settings name.
    """
    setting = ctx.settings.dns_nameservers
    cached: tuple[str | None, DmarcChecker] | None = getattr(ctx, "_branded_dmarc", None)
    if cached is not None and cached[0] == setting:
        return cached[1]
    checker = DmarcChecker(Resolver.from_setting(setting))
    ctx._branded_dmarc = (setting, checker)  # type: ignore[attr-defined]
    return checker


@dataclass(frozen=True)
class FromDecision:
    email: str
    domain: str
    dmarc: DmarcResult | None
    authenticated: bool

    @property
    def via_platform(self) -> bool:
        """Send as "<Name> via <Platform>" from the platform address (Reply-To the branded address)."""
        return not self.authenticated and self.dmarc is not None and self.dmarc.should_send_via_platform


def from_decision(ctx: Context, session: Session, tenant_id: str, email: str) -> FromDecision:
    domain = email.rpartition("@")[2].lower()
    if domain_authenticated(session, tenant_id, domain):
        return FromDecision(email, domain, None, True)
    try:
        result = dmarc_checker(ctx).check(domain)
    except ValueError:  # not a domain we can even encode: never send it as From through the platform
        result = DmarcResult(domain, None, DmarcPolicy.INVALID, None, None, 100, "The domain cannot be encoded.")
    return FromDecision(email, domain, result, False)


def _policy_words(result: DmarcResult) -> tuple[str, str]:
    """(en, ja) of why the address cannot be the From through the platform."""
    d = result.domain
    if result.policy is DmarcPolicy.UNAVAILABLE:
        return (
            f"The DMARC policy of {d} could not be looked up right now, so to be safe",
            f"{d} の DMARC ポリシーを現在確認できないため、念のため",
        )
    if result.policy is DmarcPolicy.INVALID:
        return (
            f"The DMARC record of {d} is not valid ({result.detail}); receivers may still enforce it, so to be safe",
            f"{d} の DMARC レコードが正しくありません（{result.detail}）。受信側が適用する可能性があるため、念のため",
        )
    return (
        f"{d} publishes the DMARC policy p={result.policy.value}, so receivers would "
        f"{'reject' if result.policy is DmarcPolicy.REJECT else 'junk'} mail sent through the platform as "
        f"this address. Therefore",
        f"{d} は DMARC ポリシー p={result.policy.value} を公開しているため、プラットフォーム経由でこのアドレスを"
        f"差出人として送ると受信側で{'拒否' if result.policy is DmarcPolicy.REJECT else '迷惑メール扱いに'}されます。そのため、",
    )


def _via_name(ctx: Context, name: str) -> str:
    return f"{name} via {ctx.settings.platform_name}"


def _warning(ctx: Context, decision: FromDecision, name: str) -> dict[str, str] | None:
    if not decision.via_platform or decision.dmarc is None:
        return None
    platform = ctx.settings.platform_name
    addr, _ = platform_address(ctx.settings)
    why_en, why_ja = _policy_words(decision.dmarc)
    via = _via_name(ctx, name)
    return {
        "en": f"{why_en} mail goes out as “{via}” <{addr}> with Reply-To {decision.email}. "
        f"To send as {decision.email} itself, authenticate {decision.domain} with {platform} "
        "(custom email domain) or use your own SMTP server (Custom email settings → SMTP).",
        "ja": f"{why_ja}差出人を「{via}」<{addr}>、返信先（Reply-To）を {decision.email} として送信します。"
        f"{decision.email} から直接送信するには、{decision.domain} を {platform} で認証する（独自メールドメイン）か、"
        "独自の SMTP サーバーを設定してください（カスタムメール設定 → SMTP）。",
    }


def route_fields(ctx: Context, session: Session, tenant: Tenant, email: str, name: str | None) -> dict[str, Any]:
    """From/Reply-To/note of the branded route for a verified ``email`` (used by ``resolve.branded_route``)."""
    display = name or tenant.name
    decision = from_decision(ctx, session, tenant.id, email)
    if not decision.via_platform:
        return {"from_addr": email, "from_name": display, "reply_to": None, "note": None}
    assert decision.dmarc is not None
    addr, _ = platform_address(ctx.settings)
    why = (
        f"DMARC p={decision.dmarc.policy.value}"
        if not decision.dmarc.is_uncertain
        else f"DMARC {decision.dmarc.policy.value}"
    )
    note = (
        f"Sent as “{_via_name(ctx, display)}” <{addr}> with Reply-To {email}: {decision.domain} has {why} and is "
        f"not authenticated with {ctx.settings.platform_name}, so mail from {email} through the platform would "
        "fail DMARC. Authenticate the domain or use SMTP to send as the address itself."
    )
    return {"from_addr": addr, "from_name": _via_name(ctx, display), "reply_to": email, "note": note}


# --- requesting a verification -----------------------------------------------------------------------------------


def verification_url(ctx: Context, token: str) -> str:
    return f"{ctx.settings.public_url.rstrip('/')}/verify/{token}"


def _resolver(ctx: Context) -> Resolver:
    return dmarc_checker(ctx).resolver


def _check_domain(ctx: Context, email: str) -> list[dict[str, str]]:
    """Refuse a domain that does not exist (NXDOMAIN); warn when it exists but has no mail host (MX/A)."""
    domain = email.rpartition("@")[2]
    resolver = _resolver(ctx)
    has_host = domain_has_mail_host(domain, resolver)
    if has_host is None or has_host:
        return []  # mail host found, or DNS could not tell: no reason to complain
    try:
        normalize_email(email, field="email", check_deliverability=True, resolver=resolver)
    except InvalidInput as exc:
        # email-validator tells NXDOMAIN ("does not exist") from "exists but accepts no mail".
        if "does not exist" in exc.detail:
            raise InvalidInput(
                f"The domain {domain} does not exist. Check the part after the @ for typing mistakes.",
                errors=[{"field": "email", "message": f"the domain {domain} does not exist"}],
            ) from None
    return [
        {
            "code": "no-mail-host",
            "en": f"{domain} has no mail server (no MX or A record), so the verification email may not arrive. "
            "Check the address; it was accepted anyway.",
            "ja": f"{domain} にはメールサーバー（MX レコードまたは A レコード）がないため、確認メールが届かない可能性が"
            "あります。アドレスをご確認ください（登録は受け付けました）。",
        }
    ]


def _retry_after(session: Session, tenant_id: str, now: datetime, *, resend: bool) -> tuple[int, str] | None:
    """Seconds to wait and why, or None when another verification email may go now."""
    since = now - max(window for window, _, _ in WINDOW_LIMITS)
    sent = list(
        session.scalars(
            select(SenderVerification.created_at)
            .where(SenderVerification.tenant_id == tenant_id)
            .where(SenderVerification.created_at > since)
            .order_by(SenderVerification.created_at.desc())
        )
    )
    waits: list[tuple[float, str]] = []
    if resend and sent and now - sent[0] < RESEND_INTERVAL:
        waits.append(
            ((sent[0] + RESEND_INTERVAL - now).total_seconds(), "Wait a minute between verification emails.")
        )
    for window, limit, label in WINDOW_LIMITS:
        in_window = [t for t in sent if t > now - window]
        if len(in_window) >= limit:
            # The limit-th newest send leaves the window first among those that keep the count at the limit.
            waits.append(
                (
                    (in_window[limit - 1] + window - now).total_seconds(),
                    f"At most {limit} verification emails per {label} can be sent.",
                )
            )
    if not waits:
        return None
    seconds, why = max(waits)
    return max(1, math.ceil(seconds)), why


def _raise_limited(wait: tuple[int, str]) -> None:
    seconds, why = wait
    human = f"{seconds} seconds" if seconds < 120 else f"{math.ceil(seconds / 60)} minutes"
    raise RateLimited(f"{why} Try again in {human}.", retry_after=seconds)


def format_time(dt: datetime, timezone: str | None, locale: str) -> str:
    """A time for people: in the tenant's timezone, Japanese or English style."""
    try:
        zone = ZoneInfo(timezone or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo("UTC")
    local = dt.astimezone(zone)
    if locale == "ja":
        label = "日本時間" if zone.key == "Asia/Tokyo" else zone.key
        return f"{local.year}年{local.month}月{local.day}日 {local:%H:%M}（{label}）"
    return f"{local:%Y-%m-%d %H:%M} ({zone.key})"


_EMAIL = {
    "ja": {
        "subject": "【{{ platform }}】送信者メールアドレスの確認のお願い",
        "text": """{{ platform }} で、{{ tenant }} のメールの送信者アドレスとして {{ email }} が登録されました。

次のリンクを開き、表示されたページで「メールを確認」ボタンを押してください。

{{ url }}

このリンクの有効期限は 24 時間です（{{ expires }} まで）。期限が切れた場合は、{{ platform }} の［設定］→［メール設定］→「メール認証」で「確認メールを再送信」を押してください。

お心当たりがない場合は、このメールを破棄してください。確認しない限り、このアドレスが送信者として使われることはありません。
""",
        "html": """<!doctype html><html lang="ja"><head><meta charset="utf-8"></head>
<body style="font-family:sans-serif;color:#1d2330;line-height:1.7">
<p>{{ platform }} で、{{ tenant }} のメールの送信者アドレスとして <strong>{{ email }}</strong> が登録されました。</p>
<p>次のボタンから確認ページを開き、ページ内の「メールを確認」ボタンを押してください。</p>
<p><a href="{{ url }}" style="display:inline-block;background:#1f5fd1;color:#fff;padding:10px 18px;border-radius:6px;text-decoration:none">確認ページを開く</a></p>
<p style="font-size:13px;color:#5b6475">ボタンが使えない場合は、次の URL をブラウザーに貼り付けてください。<br>{{ url }}</p>
<p>このリンクの有効期限は 24 時間です（{{ expires }} まで）。期限が切れた場合は、{{ platform }} の［設定］→［メール設定］→「メール認証」で「確認メールを再送信」を押してください。</p>
<p style="font-size:13px;color:#5b6475">お心当たりがない場合は、このメールを破棄してください。確認しない限り、このアドレスが送信者として使われることはありません。</p>
</body></html>""",
    },
    "en": {
        "subject": "Confirm your sender address for {{ tenant }}",
        "text": """{{ email }} was entered on {{ platform }} as the sender address of {{ tenant }}'s email.

Open this link and press the "Verify email" button on the page:

{{ url }}

The link works until {{ expires }} (24 hours). If it has expired, go to Settings -> Email settings -> Email authentication in {{ platform }} and click "Resend verification email".

If you did not expect this email, ignore it: the address is not used as a sender unless it is verified.
""",
        "html": """<!doctype html><html lang="en"><head><meta charset="utf-8"></head>
<body style="font-family:sans-serif;color:#1d2330;line-height:1.6">
<p><strong>{{ email }}</strong> was entered on {{ platform }} as the sender address of {{ tenant }}'s email.</p>
<p>Open the verification page and press the <em>Verify email</em> button.</p>
<p><a href="{{ url }}" style="display:inline-block;background:#1f5fd1;color:#fff;padding:10px 18px;border-radius:6px;text-decoration:none">Open the verification page</a></p>
<p style="font-size:13px;color:#5b6475">If the button does not work, paste this address into your browser:<br>{{ url }}</p>
<p>The link works until {{ expires }} (24 hours). If it has expired, go to Settings → Email settings → Email authentication in {{ platform }} and click <em>Resend verification email</em>.</p>
<p style="font-size:13px;color:#5b6475">If you did not expect this email, ignore it: the address is not used as a sender unless it is verified.</p>
</body></html>""",
    },
}


@cache
def _email_env() -> Environment:
    # Platform-owned templates with tenant-supplied values (name, address): autoescaped, HTML parts only.
    templates = {f"{loc}.{part}": src for loc, parts in _EMAIL.items() for part, src in parts.items()}
    return Environment(
        loader=DictLoader(templates),
        autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False, default=False),
        keep_trailing_newline=True,
    )


def _render_email(locale: str, values: dict[str, str]) -> tuple[str, str, str]:
    env = _email_env()
    loc = locale if locale in _EMAIL else "en"
    subject = env.get_template(f"{loc}.subject").render(values)
    text = env.get_template(f"{loc}.text").render(values)
    html = env.get_template(f"{loc}.html").render(values)  # "*.html": autoescaped
    return subject, html, text


def _send(
    ctx: Context,
    session: Session,
    tenant: Tenant,
    *,
    email: str,
    name: str | None,
    now: datetime,
) -> tuple[SenderVerification, str]:
    """Void the tenant's pending links, store a new one and queue its email, in the caller's transaction."""
    session.execute(
        update(SenderVerification)
        .where(SenderVerification.tenant_id == tenant.id)
        .where(SenderVerification.status == VerificationStatus.PENDING.value)
        .values(status=VerificationStatus.SUPERSEDED.value)
    )
    token = new_token()
    expires = now + TOKEN_LIFETIME
    message_id = new_id("msg_")
    verification = SenderVerification(
        id=new_id("sv_"),
        tenant_id=tenant.id,
        email=email,
        name=name,
        token_hash=sha256_hex(token),
        status=VerificationStatus.PENDING.value,
        created_at=now,
        expires_at=expires,
        message_id=message_id,
    )
    session.add(verification)
    locale = tenant.locale if tenant.locale in _EMAIL else "en"
    subject, html, text = _render_email(
        locale,
        {
            "platform": ctx.settings.platform_name,
            "tenant": tenant.name,
            "email": email,
            "url": verification_url(ctx, token),
            "expires": format_time(expires, tenant.timezone, locale),
        },
    )
    # The body carries the link, so it is stored sealed: only the token's hash is readable at rest.
    html_sealed, text_sealed = seal(ctx.vault, html, text)
    session.add(
        Message(
            id=message_id,
            tenant_id=tenant.id,
            kind=MessageKind.VERIFICATION.value,
            locale=locale,
            to_addrs=[email],
            to_first=email.lower(),
            subject=subject,
            html=html_sealed,
            text=text_sealed,
            # The worker sends messages with this flag through the platform's default route.
            options={"platform_route": True, "verification_id": verification.id, SEALED_BODY: True},
            status=MessageStatus.QUEUED.value,
            attempt_count=0,
            next_attempt_at=now,
            # A link that no longer works is not worth delivering.
            expires_at=expires,
            created_at=now,
            updated_at=now,
        )
    )
    session.flush()
    return verification, message_id


def _lock_tenant(session: Session, tenant_id: str) -> Tenant:
    # Serialises the rate-limit check and the insert per tenant (FOR UPDATE on PostgreSQL; SQLite's
    # BEGIN IMMEDIATE already holds the single writer lock).
    row = session.scalar(select(Tenant).where(Tenant.id == tenant_id).with_for_update())
    assert row is not None
    return row


def _accepted(
    verification: SenderVerification, message_id: str, warnings: list[dict[str, str]]
) -> dict[str, Any]:
    return {
        "status": VerificationStatus.PENDING.value,
        "email": verification.email,
        "name": verification.name,
        "sent_at": verification.created_at.isoformat(),
        "expires_at": verification.expires_at.isoformat(),
        "message_id": message_id,
        "warnings": warnings,
    }


def request_verification(
    ctx: Context, *, tenant: Tenant, email: str, name: str | None, now: datetime | None = None
) -> dict[str, Any]:
    """Start verifying ``email`` as the tenant's sender (POST sender-verifications).

    Returns ``{"status": "pending", ..., "warnings": [...]}``; for the already verified address with only a new
    name it updates the name and returns ``{"status": "verified", ...}`` without an email.
    """
    ctx.plans.require_feature(tenant.plan, Feature.BRANDED)
    address = normalize_email(email, field="email")
    display = check_header_text(name or "", field="name", max_len=200) or None
    warnings = _check_domain(ctx, address)
    now = now or utcnow()
    with ctx.db.session() as s:
        row = _lock_tenant(s, tenant.id)
        current = s.get(BrandedSender, tenant.id)
        if current is not None and current.email.lower() == address.lower():
            # Already proven: a new display name needs no new proof. A pending change is dropped.
            current.name = display
            current.updated_at = now
            s.execute(
                update(SenderVerification)
                .where(SenderVerification.tenant_id == tenant.id)
                .where(SenderVerification.status == VerificationStatus.PENDING.value)
                .values(status=VerificationStatus.SUPERSEDED.value)
            )
            return {"status": VerificationStatus.VERIFIED.value, "email": current.email, "name": current.name,
                    "verified_at": current.verified_at.isoformat(), "warnings": warnings}
        pending = _pending(s, tenant.id)
        same = pending is not None and pending.email.lower() == address.lower()
        wait = _retry_after(s, tenant.id, now, resend=same)
        if wait is not None:
            _raise_limited(wait)
        verification, message_id = _send(ctx, s, row, email=address, name=display, now=now)
    if ctx.notify is not None:
        ctx.notify()
    return _accepted(verification, message_id, warnings)


def resend_verification(ctx: Context, *, tenant: Tenant, now: datetime | None = None) -> dict[str, Any]:
    """Send a fresh link for the pending address; the older link stops working (POST .../resend)."""
    ctx.plans.require_feature(tenant.plan, Feature.BRANDED)
    now = now or utcnow()
    with ctx.db.session() as s:
        row = _lock_tenant(s, tenant.id)
        pending = _pending(s, tenant.id)
        if pending is None:
            raise Conflict(
                "There is no verification to resend: enter the address under Email authentication and click "
                "“Send verification email” first."
            )
        wait = _retry_after(s, tenant.id, now, resend=True)
        if wait is not None:
            _raise_limited(wait)
        verification, message_id = _send(ctx, s, row, email=pending.email, name=pending.name, now=now)
    if ctx.notify is not None:
        ctx.notify()
    return _accepted(verification, message_id, [])


def _pending(session: Session, tenant_id: str) -> SenderVerification | None:
    return session.scalar(
        select(SenderVerification)
        .where(SenderVerification.tenant_id == tenant_id)
        .where(SenderVerification.status == VerificationStatus.PENDING.value)
        .order_by(SenderVerification.created_at.desc())
        .limit(1)
    )


# --- the link ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TokenState:
    """What a verification link stands for. ``state``: valid, expired, superseded, used, unknown."""

    state: str
    verification_id: str | None = None
    tenant_id: str | None = None
    tenant_name: str | None = None
    tenant_locale: str | None = None
    email: str | None = None
    used_at: datetime | None = None
    expires_at: datetime | None = None
    #: After a successful confirm: the tenant's mode and whether mail goes "via Platform" (DMARC).
    mode: str | None = None
    warning: dict[str, str] | None = None


def _looks_like_token(token: str) -> bool:
    return 16 <= len(token) <= 128 and all(c.isalnum() or c in "-_" for c in token)


def _state_of(v: SenderVerification, tenant: Tenant, now: datetime) -> TokenState:
    if v.status == VerificationStatus.VERIFIED.value:
        state = "used"
    elif v.status == VerificationStatus.SUPERSEDED.value:
        state = "superseded"
    elif v.expires_at <= now:
        state = "expired"
    else:
        state = "valid"
    return TokenState(
        state,
        verification_id=v.id,
        tenant_id=tenant.id,
        tenant_name=tenant.name,
        tenant_locale=tenant.locale,
        email=v.email,
        used_at=v.used_at,
        expires_at=v.expires_at,
    )


def lookup_token(ctx: Context, token: str, *, now: datetime | None = None) -> TokenState:
    """The state of a link, changing nothing (GET /verify/{token})."""
    if not _looks_like_token(token):
        return TokenState("unknown")
    now = now or utcnow()
    with ctx.db.session() as s:
        v = s.scalar(select(SenderVerification).where(SenderVerification.token_hash == sha256_hex(token)))
        if v is None:
            return TokenState("unknown")
        tenant = s.get(Tenant, v.tenant_id)
        assert tenant is not None
        return _state_of(v, tenant, now)


def confirm(ctx: Context, token: str, *, verification_id: str, now: datetime | None = None) -> TokenState:
    """Verify the link's address (POST /verify/{token} after the form check). Single use: a second confirm
    of the same token finds it used. Acts only on the token's own tenant."""
    if not _looks_like_token(token):
        return TokenState("unknown")
    now = now or utcnow()
    with ctx.db.session() as s:
        v = s.scalar(select(SenderVerification).where(SenderVerification.token_hash == sha256_hex(token)))
        if v is None or v.id != verification_id:
            return TokenState("unknown") if v is None else TokenState("forbidden")
        tenant = _lock_tenant(s, v.tenant_id)
        state = _state_of(v, tenant, now)
        if state.state != "valid":
            return state
        # The guarded UPDATE makes the token single-use even if two presses race.
        done = s.execute(
            update(SenderVerification)
            .where(SenderVerification.id == v.id)
            .where(SenderVerification.status == VerificationStatus.PENDING.value)
            .values(status=VerificationStatus.VERIFIED.value, used_at=now)
        )
        if getattr(done, "rowcount", 0) != 1:
            s.refresh(v)
            return _state_of(v, tenant, now)
        sender = s.get(BrandedSender, tenant.id)
        if sender is None:
            sender = BrandedSender(tenant_id=tenant.id, email=v.email, name=v.name, verified_at=now, updated_at=now)
            s.add(sender)
        else:
            sender.email, sender.name, sender.verified_at, sender.updated_at = v.email, v.name, now, now
        # Once verified the address is the From of all mail, unless the tenant sends through its own SMTP.
        if tenant.mode != SenderMode.SMTP.value and ctx.plans.has(tenant.plan, Feature.BRANDED):
            tenant.mode = SenderMode.BRANDED.value
        decision = from_decision(ctx, s, tenant.id, v.email)
        warning = _warning(ctx, decision, v.name or tenant.name)
        return TokenState(
            "verified",
            verification_id=v.id,
            tenant_id=tenant.id,
            tenant_name=tenant.name,
            tenant_locale=tenant.locale,
            email=v.email,
            used_at=now,
            expires_at=v.expires_at,
            mode=tenant.mode,
            warning=warning,
        )


# --- email-settings ----------------------------------------------------------------------------------------------


def _dmarc_public(result: DmarcResult | None, decision: FromDecision) -> dict[str, Any] | None:
    if result is None:
        return {"domain": decision.domain, "authenticated": True, "send_via_platform": False}
    return {
        "domain": result.domain,
        "policy": result.policy.value,
        "record": result.raw,
        "record_domain": result.record_domain,
        "pct": result.pct,
        "detail": result.detail,
        "authenticated": decision.authenticated,
        "send_via_platform": decision.via_platform,
    }


def describe(ctx: Context, session: Session, tenant: Tenant) -> dict[str, Any] | None:
    """The ``branded`` part of GET email-settings: the verified sender (in use), a pending change, DMARC."""
    now = utcnow()
    sender = session.get(BrandedSender, tenant.id)
    pending = _pending(session, tenant.id)
    last_sent = session.scalar(
        select(func.max(SenderVerification.created_at)).where(SenderVerification.tenant_id == tenant.id)
    )
    out: dict[str, Any] = {
        "email": sender.email if sender else (pending.email if pending else None),
        "name": sender.name if sender else (pending.name if pending else None),
        "status": (
            VerificationStatus.VERIFIED.value
            if sender
            else (VerificationStatus.PENDING.value if pending else "none")
        ),
        "verified_at": sender.verified_at.isoformat() if sender else None,
        "in_use": bool(sender) and tenant.mode == SenderMode.BRANDED.value,
        "pending": (
            {
                "email": pending.email,
                "name": pending.name,
                "sent_at": pending.created_at.isoformat(),
                "expires_at": pending.expires_at.isoformat(),
                "expired": pending.expires_at <= now,
            }
            if pending
            else None
        ),
        "resend_available_at": (
            (last_sent + RESEND_INTERVAL).isoformat() if pending and last_sent and last_sent + RESEND_INTERVAL > now
            else None
        ),
        "dmarc": None,
        "warning": None,
    }
    # DMARC for the address in use, else for the one being verified (so the tenant learns it before).
    address = sender.email if sender else (pending.email if pending else None)
    if address is not None:
        decision = from_decision(ctx, session, tenant.id, address)
        out["dmarc"] = _dmarc_public(decision.dmarc, decision)
        display = (sender.name if sender else pending.name if pending else None) or tenant.name
        out["warning"] = _warning(ctx, decision, display)
    return out
