"""The "Sending domains" section of the Email authentication page through the app (TestClient), on SQLite and
PostgreSQL: add → records shown; Check DNS before and after publishing (statuses, what DNS holds, advice in the UI
language); failures with cause and next step (invalid domain, already added, DNS unavailable, unconfirmed delete);
roles; plan gating; and the effective sender's English reasons translated on the Email settings page. Every DNS
lookup goes to the local DNS server (tests/support/dnsserver.py), never the internet."""

from __future__ import annotations

import html
import re
from typing import Any

import pytest
from fastapi.testclient import TestClient

from letterhead.context import Context
from letterhead.delivery import worker as worker_module
from letterhead.devinbox import DevInbox
from letterhead.models import Tenant
from letterhead.senders import domains
from letterhead.tenants import create_api_key, create_tenant
from letterhead.web.i18n import Translator
from tests.integration.test_branded_sender import verify_address
from tests.support.dnsserver import LocalDnsServer
from tests.support.web import csrf_of, make_user, post_form, sign_in

ZONE: dict[str, Any] = {
    "mx.mail.example": [("A", "93.184.215.14")],
    "yamada.example": [("MX", "10 mx.mail.example."), ("TXT", "v=spf1 include:_spf.google.com ~all")],
    "_dmarc.yamada.example": [("TXT", "v=DMARC1; p=reject")],
}
AUTH = "/t/acme/settings/email/authentication"
DOMAINS = AUTH + "/domains"
SPF_INCLUDE = "_spf.letterhead.localhost"


@pytest.fixture
def dns(dns_server: LocalDnsServer) -> LocalDnsServer:
    dns_server.set_zone(ZONE)
    return dns_server


@pytest.fixture
def settings_overrides(dns: LocalDnsServer) -> dict[str, Any]:
    return {"dns_nameservers": dns.setting, "public_url": "http://letterhead.test"}


@pytest.fixture
def shop(ctx: Context) -> str:
    """An enterprise tenant (custom sending domains are an enterprise feature) named acme, as the helpers of
    test_branded_sender use."""
    create_tenant(ctx, tenant_id="acme", name="山田商店", plan="enterprise", contact_email="support@yamada.example")
    return "acme"


@pytest.fixture
def owner(ctx: Context, app_client: TestClient, shop: str) -> TestClient:
    make_user(ctx, "owner@yamada.example", tenant=shop)
    sign_in(app_client, "owner@yamada.example")
    return app_client


def tenant(ctx: Context, tenant_id: str = "acme") -> Tenant:
    with ctx.db.session() as s:
        row = s.get(Tenant, tenant_id)
    assert row is not None
    return row


def record_block(html: str, domain: str, purpose: str) -> str:
    """The <tbody> of one record of one domain's card."""
    card = html.split(f'data-domain="{domain}"', 1)[1].split("</article>", 1)[0]
    return card.split(f'data-purpose="{purpose}"', 1)[1].split("</tbody>", 1)[0]


def card_status(html: str, domain: str) -> str:
    match = re.search(rf'data-domain="{re.escape(domain)}" data-status="(\w+)"', html)
    assert match, f"no card for {domain}"
    return match.group(1)


def test_add_then_check_before_and_after_publishing(
    ctx: Context, owner: TestClient, dns: LocalDnsServer
) -> None:
    page = owner.get(AUTH)
    assert page.status_code == 200
    assert "送信ドメイン" in page.text and "送信ドメインはまだありません" in page.text and 'name="domain"' in page.text

    r = post_form(owner, AUTH, DOMAINS, {"domain": "Yamada.Example"})
    assert r.status_code == 303, r.text
    assert "notice=domain_added" in r.headers["location"] and r.headers["location"].endswith("#domain-yamada-example")
    [stored] = domains.list_domains(ctx, tenant=tenant(ctx))
    dkim = next(rec for rec in stored["records"] if rec["purpose"] == "dkim")

    page = owner.get(r.headers["location"])
    assert "yamada.example を追加しました" in page.text
    assert card_status(page.text, "yamada.example") == "pending" and "DNS の確認待ち" in page.text
    block = record_block(page.text, "yamada.example", "dkim")
    assert 'data-status="pending"' in block and "未確認" in block and "必須" in block
    assert f'value="{dkim["name"]}"' in block and f"完全な名前: {dkim['host']}" in block
    assert f">{dkim['value']}</textarea>" in block and "readonly" in block
    assert "DNS 管理画面で" in block and "まだ確認していません" in block
    spf = record_block(page.text, "yamada.example", "spf")
    assert 'value="@"' in spf and f"v=spf1 include:{SPF_INCLUDE} ~all" in spf and "推奨" in spf

    # Check before publishing: DKIM missing (with what to do), SPF exists without our include (merged record).
    token = csrf_of(page.text)
    r = owner.post(DOMAINS + "/yamada.example/check", data={"csrf": token}, follow_redirects=False)
    assert r.status_code == 303 and "notice=domain_checked" in r.headers["location"]
    page = owner.get(r.headers["location"])
    assert "DKIM レコードがまだ正しくありません" in page.text
    assert card_status(page.text, "yamada.example") == "pending"
    block = record_block(page.text, "yamada.example", "dkim")
    assert 'data-status="missing"' in block and "見つかりません" in block
    assert "TXT レコードがまだありません" in block and "なし（レコードがありません）" in block
    spf = record_block(page.text, "yamada.example", "spf")
    merged = f"v=spf1 include:_spf.google.com include:{SPF_INCLUDE} ~all"
    assert 'data-status="mismatch"' in spf and "値が違います" in spf and merged in spf
    assert "v=spf1 include:_spf.google.com ~all</code>" in spf and "2 つにせず" in spf
    dmarc = record_block(page.text, "yamada.example", "dmarc")
    assert 'data-status="verified"' in dmarc and "p=reject" in dmarc

    # Published: verified, in both languages.
    dns.set(dkim["host"], [("TXT", dkim["value"])])
    r = owner.post(DOMAINS + "/yamada.example/check", data={"csrf": token}, follow_redirects=False)
    assert r.status_code == 303 and "notice=domain_verified" in r.headers["location"]
    page = owner.get(r.headers["location"])
    assert card_status(page.text, "yamada.example") == "verified" and "認証済み・DKIM 署名中" in page.text
    block = record_block(page.text, "yamada.example", "dkim")
    assert 'data-status="verified"' in block and "DKIM の設定が完了しました" in block
    en = owner.get(AUTH, headers={"Accept-Language": "en"})
    assert "Sending domains" in en.text and "Verified · DKIM signing" in en.text and "Check DNS" in en.text
    assert "DKIM is set up" in record_block(en.text, "yamada.example", "dkim")

    # Added twice: the cause and the next step.
    r = post_form(owner, AUTH, DOMAINS, {"domain": "yamada.example"})
    assert r.status_code == 409 and "既に送信ドメインに追加されています" in r.text and "[DNS を確認]" in r.text

    # DNS unavailable: 503, nothing changes (the domain stays verified).
    dns.set(dkim["host"], "SERVFAIL")
    r = owner.post(DOMAINS + "/yamada.example/check", data={"csrf": token})
    assert r.status_code == 503 and "DNS から" in r.text and "数分後にもう一度" in r.text
    assert card_status(r.text, "yamada.example") == "verified"
    r = owner.post(DOMAINS + "/yamada.example/check", data={"csrf": token}, headers={"Accept-Language": "en"})
    assert r.status_code == 503 and "DNS could not answer" in r.text and "Try “Check DNS” again" in r.text

    # Delete needs the confirmation box; an unknown domain is explained.
    r = owner.post(DOMAINS + "/yamada.example/delete", data={"csrf": token})
    assert r.status_code == 422 and "削除していません" in r.text
    assert card_status(r.text, "yamada.example") == "verified"
    r = owner.post(DOMAINS + "/yamada.example/delete", data={"csrf": token, "confirm": "1"},
                   follow_redirects=False)
    assert r.status_code == 303 and "notice=domain_deleted" in r.headers["location"]
    page = owner.get(r.headers["location"])
    assert "yamada.example を削除しました" in page.text and "送信ドメインはまだありません" in page.text
    r = owner.post(DOMAINS + "/yamada.example/check", data={"csrf": token})
    assert r.status_code == 404 and "送信ドメインにありません" in r.text
    # CSRF like every other form.
    assert owner.post(DOMAINS, data={"csrf": "forged", "domain": "example.org"}).status_code == 403


@pytest.mark.parametrize(
    ("typed", "ja", "en"),
    [
        ("shop@yamada.example", "@ より後のドメイン部分（yamada.example）", "the part after the @ (yamada.example)"),
        ("https://yamada.example/", "http:// や / を付けずに", "without http:// or /"),
        ("yamada.example.", "末尾のドット（.）を付けずに入力してください: yamada.example", "without the dot at the end"),
        ("yamada", "ドットを含む完全なドメイン名", "a full domain with a dot"),
        ("co.jp", "co.jp は com や co.jp のような共有のドメイン", "co.jp is a public suffix"),
        ("bad_label.example", "「bad_label」はドメイン名として使えません", "“bad_label” is not a valid part"),
        ("letterhead.localhost", "Letterhead 自身の送信ドメイン", "Letterhead's own sending domain"),
        ("", "送信に使うドメインを入力してください", "Enter the domain you send from"),
    ],
)
def test_invalid_domain_message_in_both_languages(owner: TestClient, typed: str, ja: str, en: str) -> None:
    r = post_form(owner, AUTH, DOMAINS, {"domain": typed})
    assert r.status_code == 422, r.text
    assert "ドメインを追加できませんでした" in r.text and ja in r.text and 'aria-invalid="true"' in r.text
    assert f'name="domain" value="{typed}"' in r.text  # the typed value is kept
    r = post_form(owner, AUTH, DOMAINS, {"domain": typed}, headers={"Accept-Language": "en"})
    assert r.status_code == 422 and "The domain was not added" in r.text and en in html.unescape(r.text)


def test_viewer_sees_everything_disabled_and_cannot_change(
    ctx: Context, app_client: TestClient, shop: str, dns: LocalDnsServer
) -> None:
    domains.add_domain(ctx, tenant=tenant(ctx), domain="yamada.example")
    make_user(ctx, "viewer@yamada.example", tenant=shop, role="viewer")
    sign_in(app_client, "viewer@yamada.example")
    page = app_client.get(AUTH)
    assert page.status_code == 200 and "閲覧のみの権限" in page.text
    assert re.search(r'data-role="check-dns" disabled', page.text)
    assert re.search(r'data-role="add-domain">\s*<input type="hidden"[^>]*>\s*<fieldset disabled>', page.text)
    assert re.search(r'/delete" class="stack">\s*<input type="hidden"[^>]*>\s*<fieldset disabled>', page.text)
    for action, data in ((DOMAINS, {"domain": "example.org"}), (DOMAINS + "/yamada.example/check", {}),
                         (DOMAINS + "/yamada.example/delete", {"confirm": "1"})):
        r = post_form(app_client, AUTH, action, data)
        assert r.status_code == 403 and "閲覧者の権限では" in r.text, action
    assert len(domains.list_domains(ctx, tenant=tenant(ctx))) == 1


def test_pro_plan_sees_the_upgrade_note(ctx: Context, app_client: TestClient) -> None:
    create_tenant(ctx, tenant_id="small", name="Small shop", plan="pro")
    make_user(ctx, "owner@small.example", tenant="small")
    sign_in(app_client, "owner@small.example")
    page = app_client.get("/t/small/settings/email/authentication")
    assert page.status_code == 200 and "送信ドメイン" in page.text
    assert "DKIM による独自の送信ドメインは「enterprise」プラン以上" in page.text and "「pro」" in page.text
    assert 'name="domain"' not in page.text and 'data-role="domains-upgrade"' in page.text
    en = app_client.get("/t/small/settings/email/authentication", headers={"Accept-Language": "en"})
    assert "is available on the “enterprise” plan" in en.text
    r = post_form(app_client, "/t/small/settings/email/authentication",
                  "/t/small/settings/email/authentication/domains", {"domain": "small.example"})
    assert r.status_code == 403 and "「enterprise」プラン" in r.text


def test_effective_sender_note_in_japanese_until_the_domain_is_authenticated(
    ctx: Context, owner: TestClient, shop: str, inbox: DevInbox, dns: LocalDnsServer
) -> None:
    key = create_api_key(ctx, tenant_id=shop).key
    verify_address(ctx, owner, key, inbox, "shop@yamada.example")
    # p=reject and no authenticated domain: "via" the platform, explained in the UI's language.
    page = owner.get("/t/acme/settings/email")
    assert "「山田商店 via Letterhead」<notifications@letterhead.localhost> として送信し" in html.unescape(page.text)
    assert "DMARC p=reject が設定されていて" in page.text and "メール認証 → 送信ドメイン" in page.text
    assert "Sent as" not in page.text
    en = owner.get("/t/acme/settings/email", headers={"Accept-Language": "en"})
    assert "Sent as “山田商店 via Letterhead”" in en.text and "Email authentication → Sending domains" in en.text
    auth_page = owner.get(AUTH)
    assert "下の送信ドメインで yamada.example を認証してください" in auth_page.text

    # Authenticate the domain in the UI: the mail goes out as the address itself, no note.
    post_form(owner, AUTH, DOMAINS, {"domain": "yamada.example"})
    [stored] = domains.list_domains(ctx, tenant=tenant(ctx))
    dkim = next(rec for rec in stored["records"] if rec["purpose"] == "dkim")
    dns.set(dkim["host"], [("TXT", dkim["value"])])
    r = post_form(owner, AUTH, DOMAINS + "/yamada.example/check", {})
    assert "notice=domain_verified" in r.headers["location"]
    page = owner.get("/t/acme/settings/email")
    assert "として送信し" not in page.text and "&lt;shop@yamada.example&gt;" in page.text
    assert "yamada.example は DKIM で認証済みです" in owner.get(AUTH).text


@pytest.mark.parametrize(
    ("text", "ja"),
    [
        ("Sent through the platform: the tenant's SMTP server is failing (auth_failed).",
         "SMTP サーバーでエラーが発生しているため（auth_failed）、Letterhead 経由で送信しています"),
        ("Held: the SMTP settings are failing (auth_failed). Update the password and test again.",
         "SMTP 設定でエラーが発生しているため（auth_failed）、メールを保留しています"),
        ("Deferred: the provider's sending limit is reached; it resumes when the window reopens.",
         "プロバイダーの送信上限に達したため"),
        ("The development inbox is not running: start `letterhead serve`.", "開発用の受信箱が起動していません"),
        (worker_module._BUSY_NOTE, "接続の空きを待っています"),
        ("Sent as “Shop via Letterhead” <n@letterhead.localhost> with Reply-To a@b.example: b.example has DMARC "
         "unavailable and is not authenticated with Letterhead, so mail from a@b.example through the platform "
         "would fail DMARC. Authenticate the domain or use SMTP to send as the address itself.",
         "b.example の DMARC ポリシーを確認できず（unavailable）"),
    ],
)
def test_known_sender_reasons_are_translated(text: str, ja: str) -> None:
    assert ja in Translator("ja").reason(text, platform="Letterhead")
    assert Translator("en").reason(text, platform="Letterhead").split()[0] == text.split()[0]
    assert Translator("ja").reason("Something new from a service.") == "Something new from a service."
    assert Translator("ja").reason(None) == ""
