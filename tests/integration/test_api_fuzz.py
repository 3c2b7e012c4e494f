"""The API under schemathesis: every operation in /openapi.json, with a tenant key on the tenant's own paths,
bounded and derandomized examples (stable in CI), answers no 5xx.

In process over ASGI, SQLite. DNS goes to an empty local server (tests.support.dnsserver), never outside. The two
SMTP operations that would resolve or connect to generated host names (test and save) are left out: their
inputs are covered by tests/integration/test_smtp_test_guard.py and tests/unit/test_smtp_hosts.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error

from letterhead import migrate
from letterhead.api.app import create_app
from letterhead.context import Context
from letterhead.devinbox import DevInbox
from letterhead.tenants import create_api_key, create_tenant
from tests.conftest import make_settings
from tests.support.dnsserver import LocalDnsServer


@pytest.fixture
def fuzz_ctx(tmp_path: Path, inbox: DevInbox, dns_server: LocalDnsServer) -> Iterator[Context]:
    ctx = Context.create(make_settings(tmp_path, dns_nameservers=dns_server.setting, allow_private_smtp_hosts=False,
                                       smtp_timeout_seconds=1.0))
    ctx.dev_inbox_port = inbox.port
    migrate.upgrade(ctx.db.engine)
    create_tenant(ctx, tenant_id="acme", name="ACME", plan="pro", contact_email="support@acme.example")
    yield ctx
    ctx.close()


@pytest.fixture
def tenant_key(fuzz_ctx: Context) -> str:
    return create_api_key(fuzz_ctx, tenant_id="acme").key


def test_no_server_errors(fuzz_ctx: Context, inbox: DevInbox, tenant_key: str) -> None:
    app = create_app(fuzz_ctx, dev_inbox=inbox)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app).exclude(
        path_regex=r"^/v1/tenants/\{tenant_id\}/smtp(/test)?$", method=["POST", "PUT"]
    )
    headers = {"Authorization": f"Bearer {tenant_key}"}
    failures: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 20  # the whole API, not an empty schema

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=25, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate])
        def run(case: Any) -> None:
            if "tenant_id" in (case.path_parameters or {}):
                case.path_parameters["tenant_id"] = "acme"  # the key's own tenant: reach the code behind auth
            case.call_and_validate(headers=headers, checks=[not_a_server_error])

        try:
            run()
        except Exception as exc:  # collect every operation's failure, not only the first
            failures.append(f"{operation.method.upper()} {operation.path}: {exc}")
    assert not failures, "\n\n".join(failures)
