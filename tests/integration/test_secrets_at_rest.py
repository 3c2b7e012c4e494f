"""Nothing sensitive at rest in clear: no bearer token, password or private key in the bytes of the SQLite files
(the write-ahead log holds what the table held), and those files owner-only whatever the umask."""

from __future__ import annotations

import base64
import os
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from letterhead import migrate
from letterhead.api.app import create_app
from letterhead.context import Context
from letterhead.devinbox import DevInbox
from letterhead.models import Message, SenderVerification, SendingDomain
from letterhead.security import sha256_hex
from letterhead.tenants import create_api_key, create_tenant
from letterhead.users import create_user
from tests.conftest import deliver, make_settings
from tests.integration.test_branded_sender import path_of, press_verify, request_verification, verification_link
from tests.integration.test_domains import ZONE, add
from tests.integration.test_key_rotation import PASSWORD, smtp_tenant
from tests.support.dnsserver import LocalDnsServer
from tests.support.processes import wait_for_output
from tests.support.smtpd import SmtpServer


@pytest.fixture
def sqlite_ctx(tmp_path: Path, inbox: DevInbox, dns_server: LocalDnsServer) -> Iterator[Context]:
    """SQLite only: these tests read its files."""
    dns_server.set_zone(ZONE)
    ctx = Context.create(make_settings(tmp_path, dns_nameservers=dns_server.setting, public_url="http://letterhead.test"))
    ctx.dev_inbox_port = inbox.port
    migrate.upgrade(ctx.db.engine)
    yield ctx
    ctx.close()


def sqlite_files(ctx: Context) -> dict[str, bytes]:
    db = Path(ctx.db.engine.url.database or "")
    return {p.name: p.read_bytes() for p in (db, Path(f"{db}-wal"), Path(f"{db}-shm")) if p.exists()}


def test_no_token_password_or_private_key_in_the_sqlite_files(
    sqlite_ctx: Context, inbox: DevInbox, smtpd_factory: Callable[..., SmtpServer]
) -> None:
    ctx = sqlite_ctx
    with TestClient(create_app(ctx, dev_inbox=inbox), raise_server_exceptions=False) as client:
        create_tenant(ctx, tenant_id="acme", name="ACME", plan="enterprise", contact_email="support@acme.example")
        key = create_api_key(ctx, tenant_id="acme").key
        assert request_verification(client, key, "shop@strict.example").status_code == 202
        deliver(ctx)
        link = verification_link(inbox, "shop@strict.example")  # the email itself still carries the link
        token = path_of(link).removeprefix("/verify/")
        server = smtpd_factory(auth={"shop@example.jp": PASSWORD}, auth_required=True)
        smtp_tenant(client, ctx, server)
        add(client, key, "strict.example")
        setup = create_user(ctx, email="owner@acme.example", tenant_id="acme").link.rsplit("/", 1)[1]
        api_key = create_api_key(ctx, tenant_id="acme").key

        files = sqlite_files(ctx)
        assert set(files) == {"letterhead.db", "letterhead.db-wal", "letterhead.db-shm"}
        with ctx.db.reading() as s:
            [dom] = s.scalars(select(SendingDomain))
            [msg] = s.scalars(select(Message).where(Message.kind == "verification"))
            [verification] = s.scalars(select(SenderVerification))
        pem = ctx.vault.decrypt(dom.private_key_enc)
        der_b64 = "".join(pem.strip().splitlines()[1:-1])
        secrets = {
            "verification token": token.encode(),
            "verification link": link.encode(),
            "set-password token": setup.encode(),
            "api key": api_key.encode(),
            "smtp password": PASSWORD.encode(),
            "smtp password (AUTH PLAIN)": base64.b64encode(f"\0shop@example.jp\0{PASSWORD}".encode()),
            "dkim private key": der_b64[100:160].encode(),
        }
        for name, content in files.items():
            for what, needle in secrets.items():
                assert needle not in content, f"{what} in {name}"
        # What is stored: the token's hash, and a body only the vault opens.
        assert verification.token_hash == sha256_hex(token)
        assert msg.options and msg.options["sealed_body"] is True
        assert msg.html and msg.text and token not in msg.html + msg.text
        assert token in ctx.vault.decrypt(msg.text)

        # The link still works.
        assert press_verify(client, link).status_code == 200


UMASK_AND_START = (
    "import os, sys; os.umask(int(sys.argv[1], 8)); sys.argv[1:2] = []; "
    "from letterhead.cli import main; main()"
)


def letterhead_with_umask(umask: int, env: dict[str, str], *args: str, **kwargs: Any) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-c", UMASK_AND_START, oct(umask), *args],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **kwargs,
    )


def mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


@pytest.mark.parametrize("umask", [0o022, 0o000])
@pytest.mark.parametrize("existing", [False, True], ids=["new", "made-by-an-older-version"])
def test_data_folder_0700_and_database_files_0600_whatever_the_umask(
    tmp_path: Path, umask: int, existing: bool
) -> None:
    data = tmp_path / "data"
    db = data / "letterhead.db"
    if existing:  # as earlier versions left them: 0755 and 0644
        data.mkdir(mode=0o755)
        os.chmod(data, 0o755)
        sqlite3.connect(db).close()
        os.chmod(db, 0o644)
        for extra in ("-wal", "-shm"):
            Path(f"{db}{extra}").write_bytes(b"")
            os.chmod(f"{db}{extra}", 0o644)
    env = {k: v for k, v in os.environ.items() if not k.startswith("LETTERHEAD_")} | {
        "LETTERHEAD_ENV": "test",
        "LETTERHEAD_DATA_DIR": str(data),
        "LETTERHEAD_WORKER_POLL_SECONDS": "0.05",
    }
    upgrade = letterhead_with_umask(umask, env, "db", "upgrade")
    assert upgrade.wait(timeout=120) == 0, upgrade.stderr.read() if upgrade.stderr else ""
    worker = letterhead_with_umask(umask, env, "worker")
    try:
        wait_for_output(worker, "started with")  # its connections are open: the -wal and -shm exist now
        files = {p.name: mode(p) for p in data.iterdir()}
        assert mode(data) == 0o700
        assert {n: m for n, m in files.items() if n.startswith("letterhead.db")} == {
            "letterhead.db": 0o600, "letterhead.db-wal": 0o600, "letterhead.db-shm": 0o600,
        }
        assert files["keys.json"] == 0o600
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=30)
