"""Small pure pieces of the foundation: pinned stored values, settings, keys, plans, retry policy, MIME."""

from __future__ import annotations

import email
import email.policy
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from letterhead.delivery.retry import RetryPolicy, decide_transient
from letterhead.errors import ConfigurationError, PlanRequired
from letterhead.models import ApiKeyScope, AttemptOutcome, MessageKind, MessageStatus, SenderMode, new_id
from letterhead.notifications.compose import compose
from letterhead.plans import Feature, Plans
from letterhead.security import Signer, Vault, generate_api_key, split_api_key
from letterhead.settings import PlatformTransport, Settings, ensure_keys
from letterhead.smtp.diagnose import Category
from letterhead.smtp.reply import ErrorKind


def test_stored_enum_values_are_pinned() -> None:
    # These strings are in databases: changing one is a migration, not a rename.
    assert [s.value for s in MessageStatus] == ["queued", "sending", "sent", "deferred", "failed"]
    assert [k.value for k in MessageKind] == ["email", "notification", "test", "verification"]
    assert [m.value for m in SenderMode] == ["default", "branded", "smtp"]
    assert [o.value for o in AttemptOutcome] == ["sent", "transient", "permanent", "held", "expired"]
    assert [s.value for s in ApiKeyScope] == ["platform", "tenant"]
    assert ErrorKind.ALL == (
        "dns_failed", "private_address", "connection_refused", "timeout", "greeting_timeout", "connection_dropped",
        "tls_wrong_version", "tls_handshake_failed", "tls_certificate", "starttls_unsupported", "auth_unsupported",
        "protocol_error",
    )
    assert [c.value for c in Category] == [
        "auth_failed", "app_password_required", "auth_method_disabled", "tls_required", "tls_mismatch",
        "sender_not_allowed", "sender_unverified", "quota_exceeded", "rate_limited", "temporary_failure",
        "recipient_rejected", "message_rejected_policy", "message_too_large", "account_suspended",
        "connection_failed", "other",
    ]


def test_ids_are_time_ordered() -> None:
    a = new_id("msg_")
    b = new_id("msg_")
    assert a.startswith("msg_") and len(a) == 30
    assert a[:14] <= b[:14]


def test_platform_transport_urls() -> None:
    t = PlatformTransport("smtp+starttls://user%40x:p%3Ass@mail.example.com:2525")
    assert (t.security, t.host, t.port, t.username, t.password) == (
        "starttls", "mail.example.com", 2525, "user@x", "p:ss"
    )
    assert "p:ss" not in repr(t)
    assert PlatformTransport("smtps://h").port == 465
    assert PlatformTransport("devinbox").is_dev_inbox
    with pytest.raises(ConfigurationError):
        PlatformTransport("http://nope")


def test_production_refuses_to_start_without_keys(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="LETTERHEAD_SECRET_KEY"):
        ensure_keys(Settings(env="production", data_dir=tmp_path))
    assert not (tmp_path / "keys.json").exists()


def test_development_keys_are_generated_once(tmp_path: Path) -> None:
    s1 = Settings(env="development", data_dir=tmp_path)
    ensure_keys(s1)
    s2 = Settings(env="development", data_dir=tmp_path)
    ensure_keys(s2)
    assert s1.secret_key and s2.secret_key
    assert s1.secret_key.get_secret_value() == s2.secret_key.get_secret_value()
    assert (tmp_path / "keys.json").stat().st_mode & 0o077 == 0


def test_vault_rotation() -> None:
    old, new = Vault(["A" * 43 + "="]), None
    token = old.encrypt("app-password")
    import base64
    import os

    fresh = base64.urlsafe_b64encode(os.urandom(32)).decode()
    new = Vault([fresh, "A" * 43 + "="])
    assert new.decrypt(token) == "app-password"
    rotated = new.rotate(token)
    assert Vault([fresh]).decrypt(rotated) == "app-password"
    with pytest.raises(ConfigurationError):
        Vault([fresh]).decrypt(token)


def test_api_keys_and_signer() -> None:
    k = generate_api_key()
    assert split_api_key(k.key) == k.prefix
    assert split_api_key("lh_short_x") is None
    signer = Signer(b"s" * 32)
    tok = signer.sign("proof", {"h": "abc"})
    assert signer.unsign("proof", tok, max_age=60) == {"h": "abc"}
    assert signer.unsign("other", tok, max_age=60) is None
    assert signer.unsign("proof", tok + "x", max_age=60) is None


def test_plans_gate_features_in_one_place() -> None:
    plans = Plans()
    assert plans.has("pro", Feature.SMTP) and not plans.has("free", Feature.BRANDED)
    with pytest.raises(PlanRequired) as info:
        plans.require_feature("free", Feature.SMTP)
    assert info.value.extra["required_plan"] == "pro"
    assert plans.cheapest_with(Feature.DOMAINS) == "enterprise"
    custom = Plans({"free": {"features": ["default", "branded"]}, "startup": {"features": ["smtp"], "rank": 5}})
    assert custom.has("free", Feature.BRANDED)
    assert custom.has("startup", Feature.SMTP)


def test_retry_backoff_grows_with_jitter_and_respects_lifetime() -> None:
    p = RetryPolicy(base_seconds=60, max_seconds=3600)
    rng = random.Random(1)
    delays = [p.delay(n, rng) for n in range(1, 10)]
    assert 30 <= delays[0] <= 60
    assert 240 <= delays[3] <= 480
    assert all(d <= 3600 for d in delays)
    now = datetime.now(UTC)
    d = decide_transient(policy=p, attempt_count=1, now=now, expires_at=now + timedelta(days=3))
    assert d.status is MessageStatus.DEFERRED and d.next_attempt_at and d.next_attempt_at > now
    late = decide_transient(policy=p, attempt_count=5, now=now, expires_at=now + timedelta(seconds=10))
    assert late.status is MessageStatus.FAILED and late.expired


def test_compose_round_trips_through_the_stdlib_parser() -> None:
    raw = compose(
        from_addr="shop@example.jp",
        from_name='山田商店 "本店"',
        to=["a@example.com", "b@example.com"],
        subject="【重要】ご注文の発送について" * 4,
        html="<p>こんにちは</p>",
        text="こんにちは\n.leading dot",
        message_id="<x@example.jp>",
        date=datetime(2026, 11, 27, tzinfo=UTC),
        reply_to="help@example.jp",
    )
    assert all(len(line) <= 998 for line in raw.split(b"\r\n"))
    assert raw.isascii()
    m = email.message_from_bytes(raw, policy=email.policy.default)
    assert str(m["Subject"]) == "【重要】ご注文の発送について" * 4
    assert m["From"].addresses[0].display_name == '山田商店 "本店"'
    assert m.get_body(("plain",)).get_content() == "こんにちは\n.leading dot"
    assert m.get_body(("html",)).get_content() == "<p>こんにちは</p>"
    ascii_name = compose(
        from_addr="a@b.c", from_name="Shop, Inc.", to=["x@y.z"], subject="Hi", html=None, text="t",
        message_id="<1@b.c>", date=datetime(2026, 1, 1, tzinfo=UTC),
    )
    assert email.message_from_bytes(ascii_name, policy=email.policy.default)["From"].addresses[0].display_name == "Shop, Inc."
