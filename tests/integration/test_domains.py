"""Custom sending domains with DKIM: add → records to publish → check (pending/missing) → publish in a local DNS
server → check → verified; wrong/truncated keys, SPF merging, DMARC discovery, delete, plan gating, isolation,
validation; and end to end: a verified domain + a verified branded address + DMARC p=reject → the route sends as
the address itself (no "via") with a DKIM key, and ``sign()`` output verifies with dkimpy. Every DNS lookup goes
to the local DNS server (tests/support/dnsserver.py). Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import random
from datetime import UTC, datetime
from typing import Any

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi.testclient import TestClient
from sqlalchemy import select

from letterhead.context import Context
from letterhead.devinbox import DevInbox
from letterhead.models import DomainStatus, SendingDomain, Tenant
from letterhead.senders import branded, domains
from letterhead.senders.domains import DkimKey, RecordStatus, sign
from letterhead.senders.resolve import resolve_route_in
from letterhead.tenants import create_api_key, create_tenant
from tests.conftest import auth, deliver
from tests.integration.test_branded_sender import newest_to, send_mail, verify_address
from tests.support.dnsserver import LocalDnsServer
from tests.unit.test_compose import random_message

MX = ("MX", "10 mx.mail.example.")
ZONE: dict[str, Any] = {
    "mx.mail.example": [("A", "93.184.215.14")],
    "yamada.example": [MX],
    "strict.example": [MX],
    "_dmarc.strict.example": [("TXT", "v=DMARC1; p=reject")],
    "news.strict.example": [MX],
    "aligned.example": [MX],
    "_dmarc.aligned.example": [("TXT", "v=DMARC1; p=reject; adkim=s")],
    "news.aligned.example": [MX],
}
SPF_INCLUDE = "_spf.letterhead.localhost"  # derived from the default platform From (notifications@letterhead.localhost)


@pytest.fixture
def dns(dns_server: LocalDnsServer) -> LocalDnsServer:
    dns_server.set_zone(ZONE)
    return dns_server


@pytest.fixture
def settings_overrides(dns: LocalDnsServer) -> dict[str, Any]:
    # Set before the context exists, so nothing can resolve through the system resolver (never the internet).
    return {"dns_nameservers": dns.setting, "public_url": "http://letterhead.test"}


@pytest.fixture
def acme_key(ctx: Context) -> str:
    """An enterprise tenant (custom domains are an enterprise feature) named acme, as the branded helpers use."""
    create_tenant(ctx, tenant_id="acme", name="ACME 株式会社", plan="enterprise", contact_email="support@acme.example")
    return create_api_key(ctx, tenant_id="acme").key


def add(client: TestClient, key: str, domain: str, tenant: str = "acme") -> Any:
    return client.post(f"/v1/tenants/{tenant}/domains", json={"domain": domain}, headers=auth(key))


def check(client: TestClient, key: str, domain: str, tenant: str = "acme") -> dict[str, Any]:
    r = client.post(f"/v1/tenants/{tenant}/domains/{domain}/check", headers=auth(key))
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


def record(body: dict[str, Any], purpose: str) -> dict[str, Any]:
    [rec] = [r for r in body["records"] if r["purpose"] == purpose]
    return rec


def publish_dkim(dns: LocalDnsServer, body: dict[str, Any]) -> None:
    rec = record(body, "dkim")
    dns.set(rec["host"], [("TXT", rec["value"])])


def rows(ctx: Context) -> list[SendingDomain]:
    with ctx.db.session() as s:
        return list(s.scalars(select(SendingDomain).order_by(SendingDomain.tenant_id)))


def route_of(ctx: Context, tenant_id: str = "acme") -> Any:
    with ctx.db.session() as s:
        tenant = s.get(Tenant, tenant_id)
        assert tenant is not None
        return resolve_route_in(ctx, s, tenant)


def dnsfunc_from(server: LocalDnsServer) -> Any:
    """dkimpy's DNS hook answered by the local DNS server through Letterhead's resolver (no network)."""
    resolver = server.resolver()

    def lookup(name: bytes, timeout: int = 5) -> bytes | None:
        answer = resolver.txt(name.decode().rstrip("."))
        return answer.records[0].encode() if answer else None

    return lookup


# --- add, records, check -----------------------------------------------------------------------------------------


def test_add_returns_the_records_and_keeps_the_private_key_secret(
    ctx: Context, app_client: TestClient, acme_key: str
) -> None:
    r = add(app_client, acme_key, "Yamada.Example")
    assert r.status_code == 201, r.text
    body = r.json()
    today = datetime.now(UTC).strftime("%Y%m%d")
    assert body["domain"] == "yamada.example" and body["status"] == "pending" and body["dkim_signing"] is False
    assert body["selector"] == f"lh{today}" and body["checked_at"] is None and body["verified_at"] is None

    dkim_rec = record(body, "dkim")
    assert dkim_rec["type"] == "TXT" and dkim_rec["host"] == f"lh{today}._domainkey.yamada.example"
    assert dkim_rec["name"] == f"lh{today}._domainkey"
    assert dkim_rec["status"] == "pending" and dkim_rec["found"] is None and dkim_rec["required"] is True
    prefix = "v=DKIM1; k=rsa; p="
    assert dkim_rec["value"].startswith(prefix)
    public = serialization.load_der_public_key(base64.b64decode(dkim_rec["value"].removeprefix(prefix)))
    assert isinstance(public, rsa.RSAPublicKey) and public.key_size == 2048

    spf = record(body, "spf")
    assert spf["host"] == "yamada.example" and spf["name"] == "@" and spf["required"] is False
    assert spf["value"] == f"v=spf1 include:{SPF_INCLUDE} ~all"
    assert "never" in spf["advice"]["en"] or "do not add a second" in spf["advice"]["en"]
    assert "2 つ目を追加せず" in spf["advice"]["ja"]
    dmarc_rec = record(body, "dmarc")
    assert dmarc_rec["host"] == "_dmarc.yamada.example" and dmarc_rec["value"].startswith("v=DMARC1; p=none")

    # The private key is stored encrypted, matches the published public key, and never comes back out.
    [row] = rows(ctx)
    assert "PRIVATE KEY" not in row.private_key_enc
    pem = ctx.vault.decrypt(row.private_key_enc).encode()
    private = serialization.load_pem_private_key(pem, password=None)
    assert isinstance(private, rsa.RSAPrivateKey)
    assert private.public_key().public_numbers() == public.public_numbers()
    for text in (
        r.text,
        app_client.get("/v1/tenants/acme/domains", headers=auth(acme_key)).text,
        app_client.get("/v1/tenants/acme/domains/yamada.example", headers=auth(acme_key)).text,
        app_client.post("/v1/tenants/acme/domains/yamada.example/check", headers=auth(acme_key)).text,
    ):
        assert "PRIVATE" not in text and row.private_key_enc not in text
    assert "private" not in repr(DkimKey("d.example", "s", pem)).lower().replace("private_key", "")
    assert pem.decode() not in repr(DkimKey("d.example", "s", pem))

    listed = app_client.get("/v1/tenants/acme/domains", headers=auth(acme_key)).json()["domains"]
    assert [d["domain"] for d in listed] == ["yamada.example"]
    one = app_client.get("/v1/tenants/acme/domains/YAMADA.example", headers=auth(acme_key))
    assert one.status_code == 200 and one.json()["selector"] == body["selector"]


def test_check_before_publishing_then_publish_dkim_and_it_is_verified(
    ctx: Context, app_client: TestClient, acme_key: str, dns: LocalDnsServer
) -> None:
    body = add(app_client, acme_key, "yamada.example").json()
    before = check(app_client, acme_key, "yamada.example")
    assert before["status"] == "pending" and before["checked_at"] is not None
    for purpose in ("dkim", "spf", "dmarc"):
        rec = record(before, purpose)
        assert rec["status"] == "missing" and rec["found"] == [], rec
        assert rec["advice"]["en"] and rec["advice"]["ja"]
    assert "No TXT record at" in record(before, "dkim")["advice"]["en"]
    with ctx.db.session() as s:
        assert not branded.domain_authenticated(s, "acme", "yamada.example")

    # Published as a provider splits long values: several character-strings, with spaces in the key.
    value = record(body, "dkim")["value"]
    head, key_part = value.split("p=")
    spaced = head + "p=" + key_part[:100] + " " + key_part[100:]
    dns.set(record(body, "dkim")["host"], [("TXT", [spaced[:200], spaced[200:]])])
    after = check(app_client, acme_key, "yamada.example")
    assert after["status"] == "verified" and after["dkim_signing"] is True and after["verified_at"]
    dk = record(after, "dkim")
    assert dk["status"] == "verified" and dk["found"] == [spaced]
    with ctx.db.session() as s:
        assert branded.domain_authenticated(s, "acme", "yamada.example")
        assert branded.domain_authenticated(s, "acme", "news.yamada.example")  # organisational domain
        assert not branded.domain_authenticated(s, "acme", "other.example")
        assert not branded.domain_authenticated(s, "acme", "yamada.example.other")
    [row] = rows(ctx)
    assert row.status == DomainStatus.VERIFIED.value and row.checks and row.checks["dkim"]["status"] == "verified"

    # Checks are not cached: taking the record away unverifies the domain at the next check.
    dns.remove(record(body, "dkim")["host"])
    gone = check(app_client, acme_key, "yamada.example")
    assert gone["status"] == "pending" and record(gone, "dkim")["status"] == "missing"
    assert gone["verified_at"] == after["verified_at"]  # when it was last verified
    with ctx.db.session() as s:
        assert not branded.domain_authenticated(s, "acme", "yamada.example")


def test_a_different_or_damaged_key_is_a_mismatch_with_a_remedy(
    app_client: TestClient, acme_key: str, dns: LocalDnsServer
) -> None:
    body = add(app_client, acme_key, "yamada.example").json()
    host, value = record(body, "dkim")["host"], record(body, "dkim")["value"]
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    other_b64 = base64.b64encode(
        other.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    ).decode()
    dns.set(host, [("TXT", f"v=DKIM1; k=rsa; p={other_b64}")])
    out = check(app_client, acme_key, "yamada.example")
    rec = record(out, "dkim")
    assert out["status"] == "pending" and rec["status"] == "mismatch"
    assert rec["found"] == [f"v=DKIM1; k=rsa; p={other_b64}"]
    assert "different public key" in rec["advice"]["en"] and value in rec["advice"]["en"]
    assert "公開鍵が異なります" in rec["advice"]["ja"] and value in rec["advice"]["ja"]

    # Cut off at 255 characters (a DNS panel that does not split long values).
    dns.set(host, [("TXT", value[:255])])
    rec = record(check(app_client, acme_key, "yamada.example"), "dkim")
    assert rec["status"] == "mismatch" and "cut off" in rec["advice"]["en"] and "途切れています" in rec["advice"]["ja"]

    # Quotation marks kept literally by a DNS panel.
    dns.set(host, [("TXT", f'"{value}"')])
    rec = record(check(app_client, acme_key, "yamada.example"), "dkim")
    assert rec["status"] == "mismatch" and "quotation marks" in rec["advice"]["en"]

    # Revoked (empty p=), and our record next to a stale one.
    dns.set(host, [("TXT", "v=DKIM1; k=rsa; p=")])
    assert "revoked" in record(check(app_client, acme_key, "yamada.example"), "dkim")["advice"]["en"]
    dns.set(host, [("TXT", value), ("TXT", f"v=DKIM1; k=rsa; p={other_b64}")])
    rec = record(check(app_client, acme_key, "yamada.example"), "dkim")
    assert rec["status"] == "mismatch" and "keep only one" in rec["advice"]["en"]

    # Published where a DNS panel appended the zone a second time.
    dns.remove(host)
    dns.set(f"{host}.yamada.example", [("TXT", value)])
    rec = record(check(app_client, acme_key, "yamada.example"), "dkim")
    assert rec["status"] == "missing" and "adds the domain by itself" in rec["advice"]["en"]


def test_spf_and_dmarc_statuses(app_client: TestClient, acme_key: str, dns: LocalDnsServer) -> None:
    add(app_client, acme_key, "yamada.example")
    # An SPF record without our include: merge, never a second record.
    dns.set("yamada.example", [MX, ("TXT", "v=spf1 include:_spf.google.com -all"), ("TXT", "google-site=abc")])
    dns.set("_dmarc.yamada.example", [("TXT", "v=DMARC1; p=quarantine; rua=mailto:d@yamada.example")])
    out = check(app_client, acme_key, "yamada.example")
    spf = record(out, "spf")
    merged = f"v=spf1 include:_spf.google.com include:{SPF_INCLUDE} -all"
    assert spf["status"] == "mismatch" and spf["found"] == ["v=spf1 include:_spf.google.com -all"]
    assert spf["value"] == merged and "Do not add a second SPF record" in spf["advice"]["en"]
    dm = record(out, "dmarc")
    assert dm["status"] == "verified" and dm["found"] == ["v=DMARC1; p=quarantine; rua=mailto:d@yamada.example"]
    assert "p=quarantine" in dm["advice"]["en"]

    dns.set("yamada.example", [MX, ("TXT", merged)])
    assert record(check(app_client, acme_key, "yamada.example"), "spf")["status"] == "verified"

    # Two SPF records: one merged record is proposed.
    dns.set("yamada.example", [("TXT", "v=spf1 ip4:192.0.2.1 ~all"), ("TXT", "v=spf1 include:mail.example ~all")])
    dns.set("_dmarc.yamada.example", [("TXT", "v=DMARC1; p=maybe")])
    out = check(app_client, acme_key, "yamada.example")
    spf = record(out, "spf")
    assert spf["status"] == "mismatch" and "2 SPF records" in spf["advice"]["en"]
    assert spf["value"] == f"v=spf1 ip4:192.0.2.1 include:mail.example include:{SPF_INCLUDE} ~all"
    assert record(out, "dmarc")["status"] == "mismatch"  # malformed DMARC record
    # The domain's status follows DKIM only.
    assert out["status"] == "pending"

    # A subdomain inherits the organisational domain's DMARC record.
    dns.set("_dmarc.yamada.example", [("TXT", "v=DMARC1; p=reject")])
    add(app_client, acme_key, "mail.yamada.example")
    dm = record(check(app_client, acme_key, "mail.yamada.example"), "dmarc")
    assert dm["status"] == "verified" and "inherited from _dmarc.yamada.example" in dm["advice"]["en"]


def test_dns_trouble_is_503_and_changes_nothing(
    ctx: Context, app_client: TestClient, acme_key: str, dns: LocalDnsServer
) -> None:
    body = add(app_client, acme_key, "yamada.example").json()
    publish_dkim(dns, body)
    assert check(app_client, acme_key, "yamada.example")["status"] == "verified"
    dns.set(record(body, "dkim")["host"], "SERVFAIL")
    r = app_client.post("/v1/tenants/acme/domains/yamada.example/check", headers=auth(acme_key))
    assert r.status_code == 503 and r.headers["content-type"].startswith("application/problem+json")
    [row] = rows(ctx)
    assert row.status == "verified"  # DNS being down is not "the record is gone"


def test_delete(ctx: Context, app_client: TestClient, acme_key: str, dns: LocalDnsServer) -> None:
    body = add(app_client, acme_key, "yamada.example").json()
    publish_dkim(dns, body)
    check(app_client, acme_key, "yamada.example")
    r = app_client.delete("/v1/tenants/acme/domains/yamada.example", headers=auth(acme_key))
    assert r.status_code == 204 and r.content == b""
    assert rows(ctx) == []
    assert app_client.get("/v1/tenants/acme/domains/yamada.example", headers=auth(acme_key)).status_code == 404
    assert app_client.delete("/v1/tenants/acme/domains/yamada.example", headers=auth(acme_key)).status_code == 404
    with ctx.db.session() as s:
        assert not branded.domain_authenticated(s, "acme", "yamada.example")
    # Added again: a new key (the old DKIM record no longer matches).
    again = add(app_client, acme_key, "yamada.example").json()
    assert record(again, "dkim")["value"] != record(body, "dkim")["value"]
    assert record(check(app_client, acme_key, "yamada.example"), "dkim")["status"] == "mismatch"


# --- bad input, plans, isolation ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("domain", "words"),
    [
        ("", "Enter the domain"),
        ("example", "with a dot"),
        ("shop@yamada.example", "the part after the @"),
        ("https://yamada.example/", "without http"),
        ("yamada.example.", "trailing dot"),
        ("yama da.example", "spaces"),
        ("-yamada.example", "not a valid part"),
        ("yamada_shop.example", "not a valid part"),
        ("a" * 64 + ".example", "not a valid part"),
        (".".join(["a" * 60] * 5), "253"),
        ("192.0.2.1", "IP address"),
        ("co.jp", "public suffix"),
        ("letterhead.localhost", "own sending domain"),
        ("mail.letterhead.localhost", "own sending domain"),
    ],
)
def test_malformed_domains_are_refused(
    ctx: Context, app_client: TestClient, acme_key: str, domain: str, words: str
) -> None:
    r = add(app_client, acme_key, domain)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert words in r.json()["detail"] and r.json()["errors"][0]["field"] == "domain"
    assert rows(ctx) == []


def test_idn_duplicates_and_unknown(ctx: Context, app_client: TestClient, acme_key: str) -> None:
    r = add(app_client, acme_key, "山田.example")
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["domain"] == "xn--rhtu98c.example" and body["unicode"] == "山田.example"
    assert record(body, "dkim")["host"].endswith("._domainkey.xn--rhtu98c.example")
    dup = add(app_client, acme_key, "XN--RHTU98C.example")
    assert dup.status_code == 409 and "already" in dup.json()["detail"]
    assert add(app_client, acme_key, "山田.example").status_code == 409
    assert app_client.get("/v1/tenants/acme/domains/山田.example", headers=auth(acme_key)).status_code == 200
    assert len(rows(ctx)) == 1
    for method, path in (
        ("get", "/v1/tenants/acme/domains/unknown.example"),
        ("post", "/v1/tenants/acme/domains/unknown.example/check"),
        ("delete", "/v1/tenants/acme/domains/unknown.example"),
        ("get", "/v1/tenants/acme/domains/not a domain"),
    ):
        r = app_client.request(method, path, headers=auth(acme_key))
        assert r.status_code == 404, (method, path, r.text)
    assert app_client.post("/v1/tenants/acme/domains", json={}, headers=auth(acme_key)).status_code == 422


def test_plan_gating(ctx: Context, app_client: TestClient, platform_key: str) -> None:
    create_tenant(ctx, tenant_id="small", name="Small", plan="pro")
    key = create_api_key(ctx, tenant_id="small").key
    for method, path, body in (
        ("post", "/v1/tenants/small/domains", {"domain": "yamada.example"}),
        ("get", "/v1/tenants/small/domains", None),
        ("get", "/v1/tenants/small/domains/yamada.example", None),
        ("post", "/v1/tenants/small/domains/yamada.example/check", None),
        ("delete", "/v1/tenants/small/domains/yamada.example", None),
    ):
        for k in (key, platform_key):
            r = app_client.request(method, path, json=body, headers=auth(k))
            assert r.status_code == 403, (method, path, r.text)
            assert r.json()["required_plan"] == "enterprise" and "enterprise" in r.json()["detail"]
    assert rows(ctx) == []


def test_tenants_are_isolated(
    ctx: Context, app_client: TestClient, acme_key: str, platform_key: str, dns: LocalDnsServer
) -> None:
    create_tenant(ctx, tenant_id="beta", name="Beta", plan="enterprise", locale="en")
    beta_key = create_api_key(ctx, tenant_id="beta").key
    acme_body = add(app_client, acme_key, "yamada.example").json()
    # Another tenant's key cannot see or touch acme's domain; on its own path it is simply unknown.
    for method, path in (
        ("get", "/v1/tenants/acme/domains"),
        ("get", "/v1/tenants/acme/domains/yamada.example"),
        ("post", "/v1/tenants/acme/domains/yamada.example/check"),
        ("delete", "/v1/tenants/acme/domains/yamada.example"),
        ("get", "/v1/tenants/beta/domains/yamada.example"),
        ("delete", "/v1/tenants/beta/domains/yamada.example"),
    ):
        assert app_client.request(method, path, headers=auth(beta_key)).status_code == 404, (method, path)
    assert add(app_client, beta_key, "x.example", tenant="acme").status_code == 404

    # The same domain added by beta: its own key and selector, proven separately.
    beta_body = add(app_client, beta_key, "yamada.example", tenant="beta").json()
    assert beta_body["selector"] != acme_body["selector"] and beta_body["selector"].endswith("-2")
    assert record(beta_body, "dkim")["value"] != record(acme_body, "dkim")["value"]
    publish_dkim(dns, acme_body)
    assert check(app_client, acme_key, "yamada.example")["status"] == "verified"
    assert check(app_client, beta_key, "yamada.example", tenant="beta")["status"] == "pending"
    with ctx.db.session() as s:
        assert branded.domain_authenticated(s, "acme", "yamada.example")
        assert not branded.domain_authenticated(s, "beta", "yamada.example")
    assert [d["domain"] for d in app_client.get("/v1/tenants/beta/domains", headers=auth(beta_key)).json()["domains"]] == [
        "yamada.example"
    ]
    # A platform key may act on every tenant.
    assert app_client.get("/v1/tenants/acme/domains/yamada.example", headers=auth(platform_key)).status_code == 200
    # Deleting beta's leaves acme's alone.
    assert app_client.delete("/v1/tenants/beta/domains/yamada.example", headers=auth(beta_key)).status_code == 204
    assert [r.tenant_id for r in rows(ctx)] == ["acme"]


def test_status_values_are_pinned() -> None:
    assert [s.value for s in DomainStatus] == ["pending", "verified"]
    assert [s.value for s in RecordStatus] == ["pending", "verified", "missing", "mismatch"]


# --- end to end: DMARC p=reject, a verified domain, a branded address ---------------------------------------------


def test_verified_domain_sends_as_the_address_itself_and_signs(
    ctx: Context, app_client: TestClient, acme_key: str, inbox: DevInbox, dns: LocalDnsServer
) -> None:
    verify_address(ctx, app_client, acme_key, inbox, "shop@strict.example")
    # Not authenticated yet: strict.example publishes p=reject, so "via Platform" and no DKIM.
    before = route_of(ctx)
    assert before.from_addr != "shop@strict.example" and before.from_name.endswith("via Letterhead")
    assert before.reply_to == "shop@strict.example" and before.dkim is None

    body = add(app_client, acme_key, "strict.example").json()
    publish_dkim(dns, body)
    assert check(app_client, acme_key, "strict.example")["status"] == "verified"

    route = route_of(ctx)
    assert route.mode == "branded" and route.key == "platform"
    assert route.from_addr == "shop@strict.example" and route.from_name == "山田商店"  # no "via"
    assert route.reply_to is None and route.note is None
    assert route.dkim is not None
    assert (route.dkim.domain, route.dkim.selector) == ("strict.example", body["selector"])
    assert "BEGIN PRIVATE KEY" not in repr(route)

    settings_now = app_client.get("/v1/tenants/acme/email-settings", headers=auth(acme_key)).json()
    assert settings_now["effective"]["from_email"] == "shop@strict.example"
    assert settings_now["branded"]["warning"] is None and settings_now["branded"]["dmarc"]["authenticated"] is True

    # The signature over a message of this route verifies against the published record (dkimpy, no network).
    message = (
        "From: =?utf-8?b?5bGx55Sw5ZWG5bqX?= <shop@strict.example>\r\n"
        "To: hanako@customer.example\r\n"
        "Subject: =?utf-8?b?44GU5rOo5paH?=\r\n"
        "Date: Fri, 27 Nov 2026 10:00:00 +0900\r\n"
        "Message-ID: <1@strict.example>\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "\r\n" + "ご注文ありがとうございます。  \r\n" * 40 + "\r\n\r\n"
    ).encode()
    header = sign(message, route.dkim)
    assert header.startswith(b"DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=strict.example; s=")
    assert header.endswith(b"\r\n")
    assert b"h=from:to:subject:date:message-id:reply-to:mime-version:content-type;" in header
    lookup = dnsfunc_from(dns)
    assert dkim.verify(header + message, dnsfunc=lookup)
    # Tampering breaks it; so does adding the Reply-To that was signed as absent.
    assert not dkim.verify(header + message.replace(b"<1@strict", b"<2@strict"), dnsfunc=lookup)
    assert not dkim.verify(header + b"Reply-To: x@evil.example\r\n" + message, dnsfunc=lookup)

    # Mail now goes out as the address itself through the platform transport.
    send_mail(app_client, acme_key)
    deliver(ctx)
    out = newest_to(inbox, "hanako@customer.example")
    assert out["From"].addresses[0].addr_spec == "shop@strict.example" and out["Reply-To"] is None
    # ... DKIM-signed by the worker: the delivered bytes verify against the published key.
    [raw] = [m.raw for m in inbox.messages() if "hanako@customer.example" in m.rcpt_to][:1]
    assert raw.startswith(b"DKIM-Signature: v=1; a=rsa-sha256;")
    assert dkim.verify(raw, dnsfunc=lookup)

    # Deleting the domain goes back to "via Platform".
    assert app_client.delete("/v1/tenants/acme/domains/strict.example", headers=auth(acme_key)).status_code == 204
    again = route_of(ctx)
    assert again.from_addr != "shop@strict.example" and again.dkim is None


def test_subdomain_from_and_strict_alignment(
    ctx: Context, app_client: TestClient, acme_key: str, inbox: DevInbox, dns: LocalDnsServer
) -> None:
    # news.strict.example is signed with d=strict.example (relaxed alignment) ...
    verify_address(ctx, app_client, acme_key, inbox, "info@news.strict.example")
    publish_dkim(dns, add(app_client, acme_key, "strict.example").json())
    check(app_client, acme_key, "strict.example")
    route = route_of(ctx)
    assert route.from_addr == "info@news.strict.example" and route.dkim is not None
    assert route.dkim.domain == "strict.example"

    # ... but not where the domain's DMARC record demands strict alignment (adkim=s): there "via Platform".
    publish_dkim(dns, add(app_client, acme_key, "aligned.example").json())
    assert record(check(app_client, acme_key, "aligned.example"), "dmarc")["status"] == "verified"
    with ctx.db.session() as s:
        assert branded.domain_authenticated(s, "acme", "aligned.example")
        assert not branded.domain_authenticated(s, "acme", "news.aligned.example")


def test_route_never_signs_for_the_default_or_an_unverified_domain(
    ctx: Context, app_client: TestClient, acme_key: str, dns: LocalDnsServer
) -> None:
    publish_dkim(dns, add(app_client, acme_key, "yamada.example").json())
    check(app_client, acme_key, "yamada.example")
    route = route_of(ctx)  # no branded sender: the default route
    assert route.mode == "default" and route.dkim is None
    with ctx.db.session() as s:
        assert domains.dkim_key_for(ctx, s, "acme", "unverified.example") is None
        key = domains.dkim_key_for(ctx, s, "acme", "yamada.example")
    assert key is not None and key.private_key.startswith(b"-----BEGIN PRIVATE KEY-----")


def published_key(dns_server: LocalDnsServer, selector: str) -> tuple[DkimKey, Any]:
    """A fresh RSA key for d.example, its public half published at ``selector`` on the local DNS server, and the
    lookup function dkimpy verifies with."""
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    spki = private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    record = "v=DKIM1; k=rsa; p=" + base64.b64encode(spki).decode()
    dns_server.set(f"{selector}._domainkey.d.example", [("TXT", record)])
    return DkimKey("d.example", selector, pem), dnsfunc_from(dns_server)


def test_sign_handles_bare_lf_folded_headers_and_empty_bodies(dns_server: LocalDnsServer) -> None:
    key, lookup = published_key(dns_server, "s1")
    for message in (
        b"From: a@d.example\r\nTo: b@c.example\r\nSubject: x\r\n\r\n",
        b"From: a@d.example\r\nTo: b@c.example\r\nSubject: x\r\n",
        b"From: a@d.example\nTo: b@c.example\nSubject: folded\n\tsubject  line \nReply-To: r@d.example\n\nhi \t there\n\n\n",
        b"From: a@d.example\r\nSubject: one\r\nsubject:  two \r\nTo: b@c.example\r\n\r\nbody without final newline",
    ):
        header = sign(message, key)
        assert dkim.verify(header + message, dnsfunc=lookup), message


def test_composed_messages_sign_without_body_canonicalisation(dns_server: LocalDnsServer) -> None:
    """``sign(composed=True)`` hashes compose()'s body as it is: it must already be relaxed-canonical."""
    key, lookup = published_key(dns_server, "s2")
    rng = random.Random(11)
    for i in range(60):
        message = random_message(rng, " \t\r\n.aあ=?-_:", "d.example", reply_to="r@d.example" if i % 2 else None)
        body = message.partition(b"\r\n\r\n")[2]
        assert domains._canon_body(body) == body, message
        header = sign(message, key, composed=True)
        assert dkim.verify(header + message, dnsfunc=lookup), message
