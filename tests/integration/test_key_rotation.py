"""``letterhead keys rotate`` re-encrypts every stored secret: after it the old key is removed, the processes
restart with only the new one, and the SMTP login and DKIM signing still work (real processes, a real aiosmtpd
AUTH server, dkimpy against the published key)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import dkim
import pytest
from cryptography.fernet import Fernet
from fastapi.testclient import TestClient
from sqlalchemy import select

from letterhead import keyrotation
from letterhead.context import Context
from letterhead.devinbox import DevInbox
from letterhead.errors import ConfigurationError
from letterhead.models import Message, MessageStatus, SendingDomain, SmtpConfig
from letterhead.security import Vault
from letterhead.settings import keys_file, read_keys_file
from letterhead.tenants import create_api_key, create_tenant
from tests.conftest import auth
from tests.integration.test_branded_sender import send_mail, verify_address
from tests.integration.test_domains import ZONE, add, check, dnsfunc_from, publish_dkim
from tests.support.dnsserver import LocalDnsServer
from tests.support.processes import start_worker, wait_for_output, worker_env
from tests.support.smtpd import SmtpServer

PASSWORD = "rotate-me 1234"


@pytest.fixture
def dns(dns_server: LocalDnsServer) -> LocalDnsServer:
    dns_server.set_zone(ZONE)
    return dns_server


@pytest.fixture
def settings_overrides(dns: LocalDnsServer) -> dict[str, Any]:
    return {"dns_nameservers": dns.setting, "public_url": "http://letterhead.test"}


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from letterhead.cli import main; main()", *args],
        env=env, capture_output=True, text=True, timeout=120,
    )


def said(text: str) -> str:
    """Console output with rich's line wrapping undone."""
    return " ".join(text.split())


def smtp_tenant(client: TestClient, ctx: Context, server: SmtpServer) -> str:
    """Tenant "shop" sending through its own SMTP server (login required), saved after a passing test."""
    create_tenant(ctx, tenant_id="shop", name="Shop", plan="enterprise")
    key = create_api_key(ctx, tenant_id="shop").key
    body = {
        "preset": "custom", "host": "127.0.0.1", "port": server.port, "security": "none",
        "username": "shop@example.jp", "password": PASSWORD, "from_email": "shop@example.jp", "from_name": "Shop",
    }
    result = client.post("/v1/tenants/shop/smtp/test", json=body | {"to": "owner@example.jp"}, headers=auth(key))
    assert result.status_code == 200 and result.json()["ok"], result.text
    saved = client.put("/v1/tenants/shop/smtp", json=body | {"proof": result.json()["proof"]}, headers=auth(key))
    assert saved.status_code == 200, saved.text
    r = client.put("/v1/tenants/shop/email-settings", json={"mode": "smtp"}, headers=auth(key))
    assert r.status_code == 200, r.text
    return key


def branded_tenant(client: TestClient, ctx: Context, inbox: DevInbox, dns: LocalDnsServer) -> str:
    """Tenant "acme" sending as shop@strict.example, its domain verified: mail is DKIM-signed."""
    create_tenant(ctx, tenant_id="acme", name="ACME", plan="enterprise", contact_email="support@acme.example")
    key = create_api_key(ctx, tenant_id="acme").key
    verify_address(ctx, client, key, inbox, "shop@strict.example")
    body = add(client, key, "strict.example").json()
    publish_dkim(dns, body)
    assert check(client, key, "strict.example")["status"] == "verified"
    return key


def stored_secrets(ctx: Context) -> list[str]:
    with ctx.db.reading() as s:
        values = [v for v in s.scalars(select(SmtpConfig.password_enc)) if v]
        values += list(s.scalars(select(SendingDomain.private_key_enc)))
        for m in s.scalars(select(Message).where(Message.kind == "verification")):
            values += [v for v in (m.html, m.text) if v]
    return values


def wait_sent(ctx: Context, ids: list[str], timeout: float = 60.0) -> dict[str, str]:
    deadline = time.monotonic() + timeout
    while True:
        with ctx.db.reading() as s:
            status = {m.id: m.status for m in s.scalars(select(Message).where(Message.id.in_(ids)))}
        if all(v in (MessageStatus.SENT.value, MessageStatus.FAILED.value) for v in status.values()):
            return status
        if time.monotonic() > deadline:
            return status
        time.sleep(0.1)


def test_rotate_then_remove_the_old_key_and_login_and_signing_still_work(
    ctx: Context,
    app_client: TestClient,
    inbox: DevInbox,
    dns: LocalDnsServer,
    smtpd_factory: Callable[..., SmtpServer],
) -> None:
    server = smtpd_factory(auth={"shop@example.jp": PASSWORD}, auth_required=True)
    shop_key = smtp_tenant(app_client, ctx, server)
    acme_key = branded_tenant(app_client, ctx, inbox, dns)
    [old] = ctx.settings.fernet_keys()
    assert len(stored_secrets(ctx)) == 4  # the SMTP password, the DKIM key, the verification email's html and text

    base = worker_env(
        ctx.settings,
        LETTERHEAD_PLATFORM_SMTP_URL=f"smtp://127.0.0.1:{inbox.port}",
        LETTERHEAD_DNS_NAMESERVERS=dns.setting,
        LETTERHEAD_ALLOW_PRIVATE_SMTP_HOSTS="true",
    )
    generated = cli(base, "keys", "generate")
    assert generated.returncode == 0, generated.stderr
    [new] = [line.split("=", 1)[1] for line in generated.stdout.splitlines()
             if line.startswith("LETTERHEAD_ENCRYPTION_KEYS=")]

    # 1. The new key prepended: rotate re-encrypts everything and says the old key may go.
    rotated = cli(base | {"LETTERHEAD_ENCRYPTION_KEYS": f"{new},{old}"}, "keys", "rotate")
    assert rotated.returncode == 0, rotated.stdout + rotated.stderr
    assert "smtp passwords: 1, dkim keys: 1, sealed email bodies: 1" in said(rotated.stdout)
    assert "remove the older keys from LETTERHEAD_ENCRYPTION_KEYS" in said(rotated.stdout)
    assert old not in rotated.stdout + rotated.stderr and new not in rotated.stdout + rotated.stderr
    for value in stored_secrets(ctx):
        Vault([new]).decrypt(value)
        with pytest.raises(ConfigurationError):
            Vault([old]).decrypt(value)

    # 2. The old key removed, a worker started with only the new one: both tenants' mail goes out.
    ids = [
        send_mail(app_client, shop_key, tenant="shop", to="c1@customer.example"),
        send_mail(app_client, acme_key, tenant="acme", to="hanako@customer.example"),
    ]
    worker = start_worker(base | {"LETTERHEAD_ENCRYPTION_KEYS": new})
    try:
        wait_for_output(worker, "started with")
        status = wait_sent(ctx, ids)
    finally:
        worker.send_signal(signal.SIGTERM)
        code = worker.wait(timeout=30)
        log = worker.stderr.read().decode() if worker.stderr else ""
    assert code == 0, log
    assert status == dict.fromkeys(ids, MessageStatus.SENT.value), log
    # The SMTP login used the password decrypted with the new key ...
    assert ("PLAIN", "shop@example.jp") in server.auth_attempts or ("LOGIN", "shop@example.jp") in server.auth_attempts
    assert [m.rcpt_tos for m in server.messages][-1] == ["c1@customer.example"]
    # ... and the branded mail is signed with the DKIM key decrypted with it: it verifies against the published key.
    [raw] = [m.raw for m in inbox.messages() if "hanako@customer.example" in m.rcpt_to]
    assert raw.startswith(b"DKIM-Signature: v=1; a=rsa-sha256;") and b"d=strict.example" in raw.split(b"\r\n\r\n")[0]
    assert dkim.verify(raw, dnsfunc=dnsfunc_from(dns))


def test_rotate_in_development_with_keys_json(
    ctx: Context, app_client: TestClient, dns: LocalDnsServer, tmp_path: Path
) -> None:
    """No LETTERHEAD_ENCRYPTION_KEYS: ``--new-key`` prepends a key to keys.json, ``--drop-old`` keeps only it."""
    create_tenant(ctx, tenant_id="acme", name="ACME", plan="enterprise")
    add(app_client, create_api_key(ctx, tenant_id="acme").key, "strict.example")
    path = keys_file(ctx.settings)
    before = read_keys_file(path)
    env = {k: v for k, v in os.environ.items() if not k.startswith("LETTERHEAD_")} | {
        "LETTERHEAD_ENV": "development",
        "LETTERHEAD_DATA_DIR": str(ctx.settings.data_dir),
        "LETTERHEAD_DATABASE_URL": ctx.settings.effective_database_url,
    }

    out = cli(env, "keys", "rotate", "--new-key", "--drop-old")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "dkim keys: 1" in said(out.stdout) and "now holds only the newest key" in said(out.stdout)
    after = read_keys_file(path)
    assert after["secret_key"] == before["secret_key"]
    assert "," not in after["encryption_key"] and after["encryption_key"] != before["encryption_key"]
    assert path.stat().st_mode & 0o777 == 0o600
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".keys.json")]  # no temporary file left
    [value] = stored_secrets(ctx)
    assert Vault([after["encryption_key"]]).decrypt(value).startswith("-----BEGIN PRIVATE KEY-----")
    with pytest.raises(ConfigurationError):
        Vault([before["encryption_key"]]).decrypt(value)

    # With the keys in the environment, keys.json is not touched: the operator edits the variable.
    refused = cli(env | {"LETTERHEAD_ENCRYPTION_KEYS": after["encryption_key"]}, "keys", "rotate", "--new-key")
    assert refused.returncode == 2 and "LETTERHEAD_ENCRYPTION_KEYS" in refused.stderr
    assert read_keys_file(path) == after


def test_a_value_no_key_decrypts_is_reported_and_the_old_key_kept(
    ctx: Context, app_client: TestClient, dns: LocalDnsServer
) -> None:
    create_tenant(ctx, tenant_id="acme", name="ACME", plan="enterprise")
    key = create_api_key(ctx, tenant_id="acme").key
    add(app_client, key, "strict.example")
    add(app_client, key, "yamada.example")
    with ctx.db.session() as s:
        row = s.scalars(select(SendingDomain).where(SendingDomain.domain == "yamada.example")).one()
        row.private_key_enc = Fernet(Fernet.generate_key()).encrypt(b"lost").decode()  # a key nobody has now
    report = keyrotation.rotate(ctx)
    assert report.rotated["dkim keys"] == 1 and report.unreadable["dkim keys"] == 1
    assert report.not_newest == {"smtp passwords": 0, "dkim keys": 1, "sealed email bodies": 0}
    assert not report.old_keys_removable

    out = cli(worker_env(ctx.settings), "keys", "rotate")
    assert out.returncode == 1 and "no configured key decrypts dkim keys: 1" in said(out.stderr), out.stderr
