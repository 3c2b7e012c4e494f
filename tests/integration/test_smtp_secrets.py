"""Secrets are never echoed: a real aiosmtpd server that puts the submitted password (and the base64 of the
AUTH PLAIN / LOGIN responses) into its 535 reply, through the step-by-step test and through live delivery; the
password appears in no API response, no database row, no transcript and not in the database files. Failed SQL
statements do not carry their parameters."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, text
from sqlalchemy.exc import SQLAlchemyError

from letterhead.context import Context
from letterhead.models import Base
from tests.conftest import auth, deliver
from tests.support.smtpd import SmtpServer

PASSWORD = "Echo-s3cret-Pa55word"
USER = "shop@example.jp"


def forms() -> list[str]:
    return [PASSWORD, base64.b64encode(PASSWORD.encode()).decode(),
            base64.b64encode(f"\0{USER}\0{PASSWORD}".encode()).decode()]


def assert_absent(where: str, blob: str) -> None:
    for form in forms():
        assert form not in blob, f"{form!r} in {where}"


def dump(ctx: Context) -> str:
    rows = []
    with ctx.db.session() as s:
        for table in Base.metadata.sorted_tables:
            rows += [repr(tuple(r)) for r in s.execute(select(table)).all()]
    return "\n".join(rows)


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
def test_an_echoed_password_is_redacted_everywhere(
    ctx: Context, app_client: TestClient, acme_key: str, smtpd_factory: Callable[..., SmtpServer], mechanism: str
) -> None:
    server = smtpd_factory(auth={USER: PASSWORD}, auth_mechanisms=(mechanism,))
    h = auth(acme_key)
    body: dict[str, Any] = {"host": "127.0.0.1", "port": server.port, "security": "none", "username": USER,
                            "password": PASSWORD, "from_email": USER}
    test = app_client.post("/v1/tenants/acme/smtp/test", json=body | {"to": "owner@example.jp"}, headers=h)
    assert test.status_code == 200 and test.json()["ok"], test.text
    assert app_client.put("/v1/tenants/acme/smtp", json=body | {"proof": test.json()["proof"]}, headers=h).status_code == 200
    assert app_client.put("/v1/tenants/acme/email-settings", json={"mode": "smtp"}, headers=h).status_code == 200

    server.script.auth = {USER: "the password was changed"}
    server.script.echo_credentials = True  # from now on: "535 ... failed for shop@example.jp:<password> ..."

    # The step-by-step test: the reply is shown, redacted.
    failed = app_client.post("/v1/tenants/acme/smtp/test", json=body | {"to": "owner@example.jp"}, headers=h)
    assert failed.status_code == 200 and failed.json()["ok"] is False
    assert failed.json()["category"] == "auth_failed", failed.json()
    assert "Authentication failed for shop@example.jp:********" in failed.json()["reply"]["text"]
    assert_absent("the test's response", failed.text)

    # Live delivery: the message's log, its attempts and transcript, and the configuration's last error.
    sent = app_client.post("/v1/tenants/acme/emails", json={"to": ["c@example.com"], "subject": "s", "text": "t"},
                           headers=h)
    assert sent.status_code == 202, sent.text
    deliver(ctx)
    message = app_client.get(f"/v1/tenants/acme/messages/{sent.json()['id']}", headers=h)
    assert "********" in message.text, message.text  # the server's reply is there, without the password
    assert_absent("the message API", message.text)
    logs = app_client.get("/v1/tenants/acme/messages", headers=h)
    assert_absent("the message list", logs.text)
    assert_absent("the SMTP settings", app_client.get("/v1/tenants/acme/smtp", headers=h).text)

    rows = dump(ctx)
    assert "Authentication failed for shop@example.jp:********" in rows  # attempts.text, messages.last_text
    assert "S: 535 5.7.8 Authentication failed" in rows  # a transcript
    assert_absent("the database rows", rows)
    if ctx.db.is_sqlite:
        files = sorted(Path(ctx.settings.data_dir).glob("letterhead.db*"))
        assert files
        for f in files:
            assert_absent(f.name, f.read_bytes().decode("latin-1"))


def test_failed_statements_do_not_show_their_parameters(ctx: Context) -> None:
    secret = "param-" + PASSWORD
    with pytest.raises(SQLAlchemyError) as caught, ctx.db.session() as s:
        s.execute(text("INSERT INTO no_such_table (x) VALUES (:x)"), {"x": secret})
    assert secret not in str(caught.value)
    assert "hidden" in str(caught.value).lower()
    assert secret not in json.dumps(caught.value.args, default=str)
