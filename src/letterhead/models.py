"""SQLAlchemy 2.0 tables.

The ``messages`` table is both the outbox (the queue the worker leases from) and the email log; the
``attempts`` table is append-only (DESIGN.md convention 3): a message row summarises its attempts.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, cast

from sqlalchemy import (
    JSON,
    ColumnElement,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, InstrumentedAttribute, Mapped, mapped_column, relationship


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use letterhead.models.utcnow()")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_id_lock = threading.Lock()
_last_id = [0]


def new_id(prefix: str) -> str:
    """A ULID-style id: 48-bit millisecond time + 80 random bits, Crockford base32, with a type prefix.

    Time-ordered, so ``ORDER BY id DESC`` is newest first and cursors are just ids. Monotonic within a process
    (the ULID spec's rule): ids made in the same millisecond increment, so a batch keeps its order.
    """
    return new_ids(prefix, 1)[0]


# Two Crockford letters per 10 bits: 13 table lookups per id instead of 26 shift-and-mask steps (measured: a
# batch of 1,000 ids ~2.5 ms → ~1.5 ms).
_PAIRS = [a + b for a in _CROCKFORD for b in _CROCKFORD]
_SHIFTS = tuple(range(120, -1, -10))


def new_ids(prefix: str, n: int) -> list[str]:
    """``n`` ids as :func:`new_id` makes them, in increasing order (one getrandom() for all of them)."""
    random = os.urandom(10 * n)
    now = int(time.time() * 1000) << 80
    pairs = _PAIRS
    out = []
    with _id_lock:
        last = _last_id[0]
        for i in range(n):
            value = now | int.from_bytes(random[10 * i : 10 * i + 10], "big")
            if value <= last:
                value = last + 1
            last = value
            out.append(prefix + "".join([pairs[(value >> s) & 1023] for s in _SHIFTS]))
        _last_id[0] = last
    return out


NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSON, list[str]: JSON}


class SenderMode(StrEnum):
    DEFAULT = "default"
    BRANDED = "branded"
    SMTP = "smtp"


class MessageKind(StrEnum):
    EMAIL = "email"  # raw subject/html/text posted to /emails
    NOTIFICATION = "notification"
    TEST = "test"
    VERIFICATION = "verification"


class MessageStatus(StrEnum):
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    DEFERRED = "deferred"
    FAILED = "failed"


class AttemptOutcome(StrEnum):
    SENT = "sent"
    TRANSIENT = "transient"  # will be retried
    PERMANENT = "permanent"  # the message failed
    HELD = "held"  # not tried: the sender route is paused (quota, failing config)
    EXPIRED = "expired"  # transient, but the message's lifetime is over


class ApiKeyScope(StrEnum):
    PLATFORM = "platform"
    TENANT = "tenant"


class UserRole(StrEnum):
    OWNER = "owner"
    ADMIN = "admin"
    VIEWER = "viewer"
    PLATFORM_ADMIN = "platform_admin"


class Tenant(Base):
    __tablename__ = "tenants"

    id: Mapped[str] = mapped_column(String(63), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    plan: Mapped[str] = mapped_column(String(40), default="free")
    locale: Mapped[str] = mapped_column(String(8), default="ja")
    timezone: Mapped[str] = mapped_column(String(64), default="Asia/Tokyo")
    contact_email: Mapped[str | None] = mapped_column(String(254))
    mode: Mapped[str] = mapped_column(String(16), default=SenderMode.DEFAULT.value)
    brand_color: Mapped[str | None] = mapped_column(String(16))
    logo_url: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    #: Set by ``letterhead tenant suspend``: the API answers 403, the tenant's mail is held (not lost).
    suspended_at: Mapped[datetime | None]


class User(Base):
    __tablename__ = "users"
    __table_args__ = (UniqueConstraint("tenant_id", "email"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=lambda: new_id("usr_"))
    tenant_id: Mapped[str | None] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    email: Mapped[str] = mapped_column(String(254))
    role: Mapped[str] = mapped_column(String(20), default=UserRole.ADMIN.value)
    password_hash: Mapped[str | None] = mapped_column(String(200))
    #: sha256 of the one-time set-password token; cleared once used.
    setup_token_hash: Mapped[str | None] = mapped_column(String(64), index=True)
    setup_token_expires_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    #: Set by ``letterhead user disable``: no sign-in, every session ended.
    disabled_at: Mapped[datetime | None]


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=lambda: new_id("key_"))
    #: Public, unique part of the key (``lh_<prefix>_<secret>``) used to find the row without a scan.
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    #: sha256 of the whole key. Keys carry 256 random bits, so a fast hash is enough (no password stretching).
    key_hash: Mapped[str] = mapped_column(String(64))
    scope: Mapped[str] = mapped_column(String(16))
    tenant_id: Mapped[str | None] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    name: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]


class WebSession(Base):
    """A signed-in web session, kept on the server so that logout, a new password or ``user disable`` end it
    (a copied cookie stops working). The cookie carries the nonce; only its sha256 is stored."""

    __tablename__ = "web_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]


class RateHit(Base):
    """One counted event of a rate limit shared by every process (``letterhead.ratelimit``): a failed sign-in
    per account or per address, an SMTP test per tenant. Rows older than the longest window are pruned."""

    __tablename__ = "rate_hits"
    __table_args__ = (Index("ix_rate_hits_key_at", "key", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(300))
    at: Mapped[datetime]


#: The statuses a message can leave (the claimable ones): the condition of the partial index ix_messages_due.
LIVE_PREDICATE = "status IN ('queued', 'deferred', 'sending')"


class Message(Base):
    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("tenant_id", "idempotency_key"),
        # The worker's claim: due messages in order of due time. Only live rows are in it (delivered and failed
        # ones, the bulk of the table over time, never are), so it stays as small as the queue, and writing a
        # final status removes an entry instead of moving it. Queries must repeat LIVE_PREDICATE word for word
        # for SQLite to use it (PostgreSQL proves the implication itself).
        Index(
            "ix_messages_due", "status", "next_attempt_at",
            sqlite_where=text(LIVE_PREDICATE), postgresql_where=text(LIVE_PREDICATE),
        ),
        # The log: a tenant's messages newest first (ids are time-ordered).
        Index("ix_messages_tenant_log", "tenant_id", "id"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))
    event: Mapped[str | None] = mapped_column(String(64))
    locale: Mapped[str | None] = mapped_column(String(8))
    to_addrs: Mapped[list[str]] = mapped_column(JSON)
    #: First recipient, lower-cased: what the log's "to" filter searches.
    to_first: Mapped[str] = mapped_column(String(254))
    subject: Mapped[str | None] = mapped_column(Text)
    html: Mapped[str | None] = mapped_column(Text)
    text: Mapped[str | None] = mapped_column(Text)
    #: Notification data (rendered at send time from the tenant's template).
    data: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    #: Extra headers or routing hints set by the service that queued it (e.g. a test's SMTP settings id).
    options: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # What was actually used, filled at send time (the effective sender is never copied at accept time).
    from_addr: Mapped[str | None] = mapped_column(String(254))
    from_name: Mapped[str | None] = mapped_column(String(300))
    reply_to: Mapped[str | None] = mapped_column(String(254))
    mode: Mapped[str | None] = mapped_column(String(16))
    transport: Mapped[str | None] = mapped_column(String(100))
    note: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default=MessageStatus.QUEUED.value)
    attempt_count: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    leased_until: Mapped[datetime | None]
    expires_at: Mapped[datetime]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]
    last_code: Mapped[int | None]
    last_enhanced: Mapped[str | None] = mapped_column(String(16))
    last_text: Mapped[str | None] = mapped_column(Text)
    category: Mapped[str | None] = mapped_column(String(40))
    remedy: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    message_id_header: Mapped[str | None] = mapped_column(String(300))
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    #: sha256 of the accepted request body, to tell a retry (same body) from a reused key (409).
    request_hash: Mapped[str | None] = mapped_column(String(64))

    attempts: Mapped[list[Attempt]] = relationship(
        back_populates="message", order_by="Attempt.number", cascade="all, delete-orphan"
    )


class Attempt(Base):
    __tablename__ = "attempts"
    __table_args__ = (Index("ix_attempts_message", "message_id", "number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    message_id: Mapped[str] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"))
    number: Mapped[int]
    started_at: Mapped[datetime]
    duration_ms: Mapped[float] = mapped_column(Float)
    mode: Mapped[str | None] = mapped_column(String(16))
    transport: Mapped[str | None] = mapped_column(String(100))
    outcome: Mapped[str] = mapped_column(String(16))
    stage: Mapped[str | None] = mapped_column(String(16))
    code: Mapped[int | None]
    enhanced: Mapped[str | None] = mapped_column(String(16))
    text: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(String(40))
    category: Mapped[str | None] = mapped_column(String(40))
    transcript: Mapped[str | None] = mapped_column(Text)

    message: Mapped[Message] = relationship(back_populates="attempts")


class SmtpStatus(StrEnum):
    UNTESTED = "untested"
    ACTIVE = "active"
    FAILING = "failing"


class SmtpConfig(Base):
    """A tenant's own SMTP server. Saved only with a valid test proof; the password is encrypted at rest."""

    __tablename__ = "smtp_configs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=lambda: new_id("smtp_"))
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), unique=True)
    preset: Mapped[str] = mapped_column(String(32), default="custom")
    host: Mapped[str] = mapped_column(String(253))
    port: Mapped[int]
    security: Mapped[str] = mapped_column(String(16))
    username: Mapped[str | None] = mapped_column(String(320))
    password_enc: Mapped[str | None] = mapped_column(Text)
    from_email: Mapped[str] = mapped_column(String(254))
    from_name: Mapped[str | None] = mapped_column(String(200))
    reply_to: Mapped[str | None] = mapped_column(String(254))
    verify_tls: Mapped[bool] = mapped_column(default=True)
    daily_limit: Mapped[int | None]
    per_minute_limit: Mapped[int | None]
    max_connections: Mapped[int] = mapped_column(default=4)
    fallback_to_default: Mapped[bool] = mapped_column(default=False)
    status: Mapped[str] = mapped_column(String(16), default=SmtpStatus.ACTIVE.value)
    last_tested_at: Mapped[datetime | None]
    last_error: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    #: Set when the provider said "quota" or "rate": nothing is sent through it before this time.
    paused_until: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


# Quotas count what a tenant's SMTP sent in a window (``sent_at >= …``, which implies IS NOT NULL for both
# databases): rows that were never sent need no entry, so accepting and leasing a message leave it alone.
Index(
    "ix_messages_quota", Message.tenant_id, Message.mode, Message.sent_at,
    sqlite_where=text("sent_at IS NOT NULL"), postgresql_where=text("sent_at IS NOT NULL"),
)


class TenantTemplate(Base):
    """A tenant's override of an event's default template in one locale."""

    __tablename__ = "tenant_templates"

    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True)
    event: Mapped[str] = mapped_column(String(64), primary_key=True)
    locale: Mapped[str] = mapped_column(String(8), primary_key=True)
    subject: Mapped[str] = mapped_column(Text)
    html: Mapped[str] = mapped_column(Text)
    text: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class TenantEvent(Base):
    """A tenant's switch for one event (absent: enabled)."""

    __tablename__ = "tenant_events"

    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True)
    event: Mapped[str] = mapped_column(String(64), primary_key=True)
    enabled: Mapped[bool] = mapped_column(default=True)


class VerificationStatus(StrEnum):
    """Stored values are pinned by tests; never rename a value."""

    PENDING = "pending"  # sent, waiting for the "Verify email" button (expiry is derived from expires_at)
    VERIFIED = "verified"  # the button was pressed: the token is used up
    SUPERSEDED = "superseded"  # a resend or a newer address voided this link


class BrandedSender(Base):
    """A tenant's verified branded sender address (SPEC §2.2). Pending verifications live in
    ``sender_verifications``: the verified address stays in use while a new one is pending."""

    __tablename__ = "branded_senders"

    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True)
    email: Mapped[str] = mapped_column(String(254))
    #: Display name; None: the tenant's name.
    name: Mapped[str | None] = mapped_column(String(200))
    verified_at: Mapped[datetime]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class SenderVerification(Base):
    """One verification email (first send or resend). The rows also count sends for the rate limits."""

    __tablename__ = "sender_verifications"
    __table_args__ = (Index("ix_sender_verifications_tenant", "tenant_id", "created_at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=lambda: new_id("sv_"))
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    email: Mapped[str] = mapped_column(String(254))
    name: Mapped[str | None] = mapped_column(String(200))
    #: sha256 of the token in the link; the token itself is never stored.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    status: Mapped[str] = mapped_column(String(16), default=VerificationStatus.PENDING.value)
    #: When the email was queued (the rate limits count these).
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    #: The verification email in the log.
    message_id: Mapped[str | None] = mapped_column(String(32))


class DomainStatus(StrEnum):
    """Stored values are pinned by tests; never rename a value."""

    PENDING = "pending"  # the DKIM record has not been found matching our key (yet, or any more)
    VERIFIED = "verified"  # the last check found the DKIM record with our public key: mail is DKIM-signed


class SendingDomain(Base):
    """A custom sending domain a tenant authenticates by DNS (SPEC §1): our DKIM key pair and the last check.

    The same domain may be added by several tenants: each gets its own key and selector and proves control by
    DNS separately (nothing is shared). ``(domain, selector)`` is unique so two keys never compete for one
    DNS name.
    """

    __tablename__ = "sending_domains"
    __table_args__ = (UniqueConstraint("tenant_id", "domain"), UniqueConstraint("domain", "selector"))

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=lambda: new_id("dom_"))
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    #: Lower-case ASCII (IDNs as punycode), no trailing dot.
    domain: Mapped[str] = mapped_column(String(253))
    selector: Mapped[str] = mapped_column(String(63))
    #: The RSA private key (PKCS#8 PEM), encrypted with the vault. Never returned.
    private_key_enc: Mapped[str] = mapped_column(Text)
    #: base64 of the DER SubjectPublicKeyInfo: the ``p=`` of the DKIM record.
    public_key: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default=DomainStatus.PENDING.value)
    #: Per-record result of the last DNS check: ``{"dkim": {"status", "found", ...}, "spf": ..., "dmarc": ...}``.
    checks: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    checked_at: Mapped[datetime | None]
    verified_at: Mapped[datetime | None]


class RouteLease(Base):
    """A tenant's SMTP server in use by one worker process (``delivery.route_leases``).

    Providers cap concurrent connections per account (Microsoft 365: 3, Gmail: a few), not per process: with
    several workers, each within the cap, the account as a whole would be over it and the provider refuses the
    extra connections. Only the process holding a route's lease opens connections to it.
    """

    __tablename__ = "route_leases"

    #: ``Route.key`` ("smtp:<configuration id>").
    route_key: Mapped[str] = mapped_column(String(100), primary_key=True)
    #: The worker (``Worker.owner``) whose connections may be open.
    owner: Mapped[str] = mapped_column(String(64))
    #: Past this, a holder that died (kill -9) no longer blocks the route.
    leased_until: Mapped[datetime]


# --- secrets encrypted at rest -----------------------------------------------------------------------------------

#: ``Message.options`` key: the message's html and text are Vault ciphertext, because the body carries a bearer
#: link (a branded sender's verification email). ``delivery.content`` opens them when composing.
SEALED_BODY = "sealed_body"


@dataclass(frozen=True)
class EncryptedColumns:
    """Columns of one table that hold Vault ciphertext (``security.Vault``), under a name for people."""

    kind: str
    columns: tuple[InstrumentedAttribute[Any], ...]
    #: Only the rows this holds for are encrypted (None: every row with a value).
    where: ColumnElement[bool] | None = None

    @property
    def table(self) -> Table:
        return cast(Table, self.columns[0].class_.__table__)


#: Every column holding Vault ciphertext: what ``letterhead keys rotate`` re-encrypts. A new encrypted column (an
#: OAuth token, a webhook secret) joins by a line here; tests/unit/test_encrypted_columns.py fails for a
#: ``*_enc`` column or a ``vault.encrypt`` call that is not accounted for.
ENCRYPTED_COLUMNS: tuple[EncryptedColumns, ...] = (
    EncryptedColumns("smtp passwords", (SmtpConfig.password_enc,)),
    EncryptedColumns("dkim keys", (SendingDomain.private_key_enc,)),
    EncryptedColumns(
        "sealed email bodies", (Message.html, Message.text), Message.options[SEALED_BODY].as_boolean().is_(True)
    ),
)
