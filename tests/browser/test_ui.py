"""The merchant web UI in a real browser: Debian's Chromium (headless, never a downloaded browser) driven by
Playwright against a real uvicorn server on loopback, with real SMTP servers (aiosmtpd), the development inbox and
a local DNS server.

One server and one browser for the whole module; each test opens its own browser context (cookies, language).
With ``LETTERHEAD_SCREENSHOTS=1`` the pages are saved to docs/screenshots/<page>.<lang>.png.
"""

from __future__ import annotations

import os
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from tests.conftest import deliver, make_settings
from tests.support.dnsserver import LocalDnsServer
from tests.support.smtpd import SmtpServer
from tests.support.web import PASSWORD, make_user

from letterhead import migrate
from letterhead.api.app import create_app
from letterhead.context import Context
from letterhead.devinbox import DevInbox
from letterhead.models import Attempt, Message, new_id, utcnow
from letterhead.tenants import create_tenant

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
REQUIRE_ALL = os.environ.get("LETTERHEAD_REQUIRE_ALL_SUITES") == "1"
SHOTS = os.environ.get("LETTERHEAD_SCREENSHOTS") == "1"
SHOT_DIR = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
SMTP_PASSWORD = "abcd efgh ijkl mnop"
OWNER = "owner@acme.example"
ZONE: dict[str, Any] = {
    "mx.mail.example": [("A", "93.184.215.14")],
    "yamada.example": [("MX", "10 mx.mail.example.")],
    "_dmarc.yamada.example": [("TXT", "v=DMARC1; p=none")],
    "example.jp": [("MX", "10 mx.mail.example.")],
}


def _skip_or_fail(reason: str) -> None:
    if REQUIRE_ALL:
        pytest.fail(f"Browser suite is mandatory here (LETTERHEAD_REQUIRE_ALL_SUITES=1): {reason}")
    pytest.skip(reason)


@dataclass
class Site:
    url: str
    ctx: Context
    inbox: DevInbox
    dns: LocalDnsServer


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        _skip_or_fail(f"{CHROMIUM} is missing: install Debian's chromium package to run the browser tests")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _skip_or_fail("the playwright Python package is not installed (pip install -e '.[test]')")
    pw = sync_playwright().start()
    try:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
    except Exception as exc:
        pw.stop()
        _skip_or_fail(f"{CHROMIUM} did not start: {exc}")
    yield b
    b.close()
    pw.stop()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, browser: Any) -> Iterator[Site]:
    dns = LocalDnsServer(ZONE).start()
    inbox = DevInbox()
    inbox.start()
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    settings = make_settings(tmp_path_factory.mktemp("web"), public_url=url, dns_nameservers=dns.setting,
                             smtp_timeout_seconds=3.0)
    ctx = Context.create(settings)
    ctx.dev_inbox_port = inbox.port
    migrate.upgrade(ctx.db.engine)
    # enterprise: every feature, custom sending domains included.
    create_tenant(ctx, tenant_id="acme", name="山田商店", plan="enterprise", contact_email="support@yamada.example")
    make_user(ctx, OWNER, tenant="acme")
    server = uvicorn.Server(uvicorn.Config(create_app(ctx, dev_inbox=inbox), host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="off", access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.02)
    yield Site(url, ctx, inbox, dns)
    server.should_exit = True
    thread.join(10)
    inbox.stop()
    dns.stop()
    ctx.close()


def open_page(browser: Any, site: Site, lang: str = "ja", *, signed_in: bool = True) -> Any:
    context = browser.new_context(locale="ja-JP" if lang == "ja" else "en-US",
                                  viewport={"width": 1280, "height": 900})
    context.set_default_timeout(10_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    # Script errors only: an HTTP error status the page answers on purpose (401, 404) is logged as a console
    # "Failed to load resource" message too.
    page.on("console", lambda msg: errors.append(msg.text)
            if msg.type == "error" and not msg.text.startswith("Failed to load resource") else None)
    page.js_errors = errors
    if signed_in:
        page.goto(site.url + "/login")
        page.fill("input[name=email]", OWNER)
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit].primary")
        page.wait_for_url(re.compile(r"/t/acme/settings/email$"))
    return page


def shot(page: Any, name: str, lang: str) -> None:
    if SHOTS:
        SHOT_DIR.mkdir(parents=True, exist_ok=True)
        page.evaluate("window.scrollTo(0, 0)")  # sticky panels sit where a full-page shot expects them
        page.screenshot(path=str(SHOT_DIR / f"{name}.{lang}.png"), full_page=True)


def run_in_thread(fn: Callable[[], object]) -> None:
    """Run ``fn`` off the main thread (asyncio.run must not share a thread with Playwright's loop)."""
    failure: list[BaseException] = []

    def target() -> None:
        try:
            fn()
        except BaseException as exc:  # pragma: no cover - reported below
            failure.append(exc)

    t = threading.Thread(target=target)
    t.start()
    t.join(60)
    if failure:
        raise failure[0]


# --- tests -------------------------------------------------------------------------------------------------------


def test_sign_in_with_japanese_labels(browser: Any, site: Site) -> None:
    page = open_page(browser, site, "ja", signed_in=False)
    page.goto(site.url + "/t/acme/settings/email")
    page.wait_for_url(re.compile(r"/login\?next="))
    assert page.locator("h1").inner_text() == "ログイン"
    page.fill("input[name=email]", OWNER)
    page.fill("input[name=password]", "wrong password")
    page.click("button.primary")
    assert "メールアドレスまたはパスワードが正しくありません" in page.locator("[role=alert]").inner_text()
    page.fill("input[name=password]", PASSWORD)
    page.click("button.primary")
    page.wait_for_url(re.compile(r"/t/acme/settings/email$"))
    assert page.locator("html").get_attribute("lang") == "ja"
    body = page.locator("main").inner_text()
    for label in ("メール設定", "標準", "ブランド", "SMTP", "最も推奨", "カスタムメール設定", "現在の送信元"):
        assert label in body, label
    assert page.locator(".card.mode.active").get_attribute("data-mode") == "default"
    page.click("text=English")
    page.wait_for_url(re.compile(r"/t/acme/settings/email$"))
    assert "Most preferred" in page.locator("main").inner_text()
    page.click("text=日本語")
    page.click("button:has-text('ログアウト')")
    page.wait_for_url(re.compile(r"/login\?out=1"))
    assert "ログアウトしました" in page.locator("main").inner_text()
    assert not page.js_errors


def test_smtp_form_save_needs_a_passing_test(browser: Any, site: Site, smtpd_factory: Callable[..., SmtpServer],
                                             server_tls_context: ssl.SSLContext, trusted_ca: Any) -> None:
    smtp = smtpd_factory(security="starttls", ssl_context=server_tls_context, require_starttls=True,
                         auth={"shop@example.jp": SMTP_PASSWORD}, auth_required=True)
    page = open_page(browser, site, "ja")
    page.goto(site.url + "/t/acme/settings/email/smtp")
    save = page.locator("[data-role=save]")
    assert save.is_disabled()

    # A provider preset fills host, port and encryption and shows its steps.
    page.select_option("#preset-select", "microsoft365")
    assert page.input_value("input[name=host]") == "smtp.office365.com"
    assert page.input_value("input[name=port]") == "587"
    assert page.input_value("select[name=security]") == "starttls"
    assert page.locator("[data-preset-steps=microsoft365]").is_visible()
    assert "認証済み SMTP" in page.locator("[data-preset-steps=microsoft365]").inner_text()

    page.select_option("#preset-select", "custom")
    page.fill("input[name=host]", "127.0.0.1")
    page.fill("input[name=port]", str(smtp.port))
    page.select_option("select[name=security]", "starttls")
    page.fill("input[name=username]", "shop@example.jp")
    page.fill("input[name=password]", "wrong-password")
    page.fill("input[name=from_email]", "shop@example.jp")
    page.fill("input[name=from_name]", "山田商店")
    page.fill("input[name=to]", "owner@example.jp")

    # A failing test shows the failed step, the cause and the remedy; Save stays disabled.
    page.click("[data-role=test]")
    result = page.locator(".result.fail")
    result.wait_for()
    text = result.inner_text()
    assert "テストメールを送信できませんでした" in text and "✗" in text
    assert "原因" in text and "対処方法" in text and "535" in text
    assert page.locator(".probe-steps li.fail .step-name").inner_text() == "認証 (AUTH)"
    assert save.is_disabled()
    shot(page, "smtp-test-failed", "ja")

    # The right password: every step passes and Save is enabled.
    page.fill("input[name=password]", SMTP_PASSWORD)
    page.click("[data-role=test]")
    page.locator(".result.ok").wait_for()
    assert page.locator(".probe-steps li.ok").count() == 8
    assert save.is_enabled()
    assert "テストに成功しました" in page.locator("[data-role=save-state]").inner_text()

    # Editing any field disables Save again; a new test enables it.
    page.fill("input[name=from_name]", "山田商店 本店")
    assert save.is_disabled()
    assert "設定が変更されたため" in page.locator("[data-role=save-state]").inner_text()
    page.click("[data-role=test]")
    page.locator(".result.ok").wait_for()
    assert save.is_enabled()
    shot(page, "smtp-test-passed", "ja")

    save.click()
    page.wait_for_url(re.compile(r"notice=smtp_saved_active"))
    main = page.locator("main").inner_text()
    assert "保存しました" in main and "正常" in main and "本日の残り送信数" in main
    assert "パスワードは保存済みです" in main
    assert page.input_value("input[name=password]") == ""
    assert SMTP_PASSWORD not in page.content()
    assert len(smtp.messages) == 2  # the two passing tests; the failed one stopped at AUTH
    page.goto(site.url + "/t/acme/settings/email")
    assert page.locator(".card.mode.active").get_attribute("data-mode") == "smtp"
    assert "shop@example.jp" in page.locator(".effective").inner_text()
    # Back to the default method so that the other tests start from a known state.
    page.click("[data-use-mode=default]")
    page.wait_for_url(re.compile(r"notice=mode_changed"))
    assert not page.js_errors


def _failed_message(site: Site) -> str:
    mid = new_id("msg_")
    now = utcnow()
    with site.ctx.db.session() as s:
        s.add(Message(id=mid, tenant_id="acme", kind="notification", event="order.shipped",
                      to_addrs=["typo@exmaple.com"], to_first="typo@exmaple.com", subject="ご注文の商品を発送しました",
                      status="failed", expires_at=now, created_at=now - timedelta(days=1), attempt_count=1,
                      mode="default", transport="platform (devinbox)", last_code=550, last_enhanced="5.1.1",
                      last_text="No such user here", category="recipient_rejected",
                      remedy={"en": "Check the recipient's address for typing mistakes.",
                              "ja": "宛先のメールアドレスに入力ミスがないか確認してください。"}))
        s.add(Attempt(message_id=mid, number=1, started_at=now - timedelta(days=1), duration_ms=41.0,
                      mode="default", transport="platform (devinbox)", outcome="permanent", stage="rcpt_to",
                      code=550, enhanced="5.1.1", text="No such user here", category="recipient_rejected",
                      transcript="S: 220 mx.exmaple.com ESMTP\nC: EHLO letterhead\nC: RCPT TO:<typo@exmaple.com>\n"
                                 "S: 550 5.1.1 No such user here"))
    return mid


def test_logs_filter_and_detail(browser: Any, site: Site) -> None:
    failed = _failed_message(site)
    page = open_page(browser, site, "ja")
    page.click("nav.tabs >> text=メールログ")
    page.wait_for_url(re.compile(r"/t/acme/logs$"))
    assert page.locator("svg.chart").is_visible()
    page.select_option("select[name=status]", "failed")
    page.click("form.filters button[type=submit]")
    page.wait_for_url(re.compile(r"status=failed"))
    rows = page.locator("tbody tr")
    assert rows.count() >= 1
    assert set(page.locator("tbody tr").evaluate_all("rows => rows.map(r => r.dataset.status)")) == {"failed"}
    assert "宛先のメールアドレスに入力ミスがないか確認してください。" in page.locator("tbody").inner_text()
    shot(page, "email-logs", "ja")
    page.click(f"tr[data-message-id={failed}] td.subject a")
    page.wait_for_url(re.compile(failed))
    main = page.locator("main").inner_text()
    assert "recipient_rejected" in main and "550 5.1.1 No such user here" in main and "1 回目の試行" in main
    assert not page.locator(".transcript pre").is_visible()
    page.click(".transcript summary")
    assert "RCPT TO:<typo@exmaple.com>" in page.locator(".transcript pre").inner_text()
    shot(page, "email-log-detail", "ja")
    assert not page.js_errors


def test_sending_domain_add_check_publish(browser: Any, site: Site) -> None:
    page = open_page(browser, site, "ja")
    page.goto(site.url + "/t/acme/settings/email/authentication")
    section = page.locator("[data-role=domains]")
    assert "送信ドメインはまだありません" in section.inner_text()
    page.fill("input[name=domain]", "shop@yamada.example")
    page.click("[data-role=add-domain-button]")
    assert "@ より後のドメイン部分（yamada.example）" in page.locator("#domain-error").inner_text()
    page.fill("input[name=domain]", "yamada.example")
    page.click("[data-role=add-domain-button]")
    page.wait_for_url(re.compile(r"notice=domain_added.*#domain-yamada-example$"))
    card = page.locator("article.domain[data-domain='yamada.example']")
    assert card.get_attribute("data-status") == "pending"
    dkim = card.locator("tbody.record[data-purpose=dkim]")
    value = dkim.locator("textarea[data-role=record-value]").input_value()
    host = card.locator("tbody.record[data-purpose=dkim] .rec-host .muted").inner_text().split(": ", 1)[1]
    assert value.startswith("v=DKIM1; k=rsa; p=") and host.endswith("._domainkey.yamada.example")
    dkim.locator("[data-copy]").click()  # selects the value (the clipboard may be unavailable on plain http)

    card.locator("[data-role=check-dns]").click()
    page.wait_for_url(re.compile(r"notice=domain_checked"))
    dkim = page.locator("article.domain[data-domain='yamada.example'] tbody.record[data-purpose=dkim]")
    assert dkim.get_attribute("data-status") == "missing"
    assert "TXT レコードがまだありません" in dkim.locator("[data-role=advice]").inner_text()

    site.dns.set(host, [("TXT", value)])
    page.locator("article.domain[data-domain='yamada.example'] [data-role=check-dns]").click()
    page.wait_for_url(re.compile(r"notice=domain_verified"))
    card = page.locator("article.domain[data-domain='yamada.example']")
    assert card.get_attribute("data-status") == "verified"
    assert "認証済み・DKIM 署名中" in card.locator("[data-role=domain-status]").inner_text()
    statuses = card.locator("tbody.record").evaluate_all("els => els.map(e => e.dataset.status)")
    assert statuses == ["verified", "missing", "verified"]  # DKIM, SPF (none published), DMARC (p=none)
    assert not page.js_errors


def test_branded_sender_end_to_end(browser: Any, site: Site) -> None:
    page = open_page(browser, site, "ja")
    page.click("text=メール認証")
    page.wait_for_url(re.compile(r"/settings/email/authentication$"))
    assert "現在の送信者アドレス" in page.locator("main").inner_text()
    page.fill("input[name=email]", "shop@yamada.example")
    page.fill("input[name=name]", "山田商店")
    page.click("button:has-text('確認メールを送信')")
    page.wait_for_url(re.compile(r"notice=verification_sent"))
    pending = page.locator("[data-role=pending]")
    assert "shop@yamada.example" in pending.inner_text()
    assert page.locator("button:has-text('確認メールを再送信')").is_visible()
    shot(page, "email-authentication-pending", "ja")

    run_in_thread(lambda: deliver(site.ctx))
    [mail] = [m.as_dict() for m in site.inbox.messages() if "shop@yamada.example" in m.rcpt_to]
    link = re.search(r"https?://\S+/verify/[A-Za-z0-9_\-]+", mail["text"] or "")
    assert link, mail["text"]
    page.goto(link.group(0))
    page.click("button:has-text('メールを確認')")
    page.wait_for_load_state()
    page.goto(site.url + "/t/acme/settings/email/authentication")
    main = page.locator("main").inner_text()
    assert "確認済み" in main and "shop@yamada.example" in main
    # Once verified, the address is the sender of all email automatically (the help article's promise).
    assert "使用中" in page.locator(".sender-line").inner_text()
    page.goto(site.url + "/t/acme/settings/email")
    assert page.locator(".card.mode.active").get_attribute("data-mode") == "branded"
    assert "shop@yamada.example" in page.locator(".effective").inner_text()
    page.goto(site.url + "/t/acme/settings/email/authentication")
    assert page.locator("details.change summary").inner_text() == "送信者メールアドレスを変更"
    shot(page, "email-authentication", "ja")
    page.goto(site.url + "/t/acme/settings/email")
    page.click("[data-use-mode=default]")
    page.wait_for_url(re.compile(r"notice=mode_changed"))
    assert not page.js_errors


def test_notifications_switch_and_template_preview(browser: Any, site: Site) -> None:
    page = open_page(browser, site, "ja")
    page.click("nav.tabs >> text=通知")
    page.wait_for_url(re.compile(r"/t/acme/notifications$"))
    switch = page.locator("#ev-order\\.delivered button[role=switch]")
    assert switch.get_attribute("aria-checked") == "true"
    switch.click()
    page.wait_for_url(re.compile(r"notice=event_switched"))
    assert page.locator("#ev-order\\.delivered button[role=switch]").get_attribute("aria-checked") == "false"
    page.locator("#ev-order\\.delivered button[role=switch]").click()
    page.wait_for_url(re.compile(r"notice=event_switched"))

    page.click("#ev-order\\.shipped a:has-text('テンプレートを編集')")
    page.wait_for_url(re.compile(r"/notifications/order\.shipped"))
    subject = page.locator("[data-role=preview-subject]")
    before = subject.inner_text()
    assert before
    page.fill("input[name=subject]", "【山田商店】発送のお知らせ {{ data.order_number }}")
    page.wait_for_function(
        "() => document.querySelector('[data-role=preview-subject]').textContent.startsWith('【山田商店】発送のお知らせ')"
    )
    page.fill("textarea[name=html]", "<p>{% if %}</p>")
    page.locator("[data-role=preview-error]").wait_for()
    assert "テンプレートにエラーがあります" in page.locator("[data-role=preview-error]").inner_text()
    page.reload()
    page.fill("input[name=subject]", "【山田商店】発送のお知らせ")
    page.click("[data-role=save-template]")
    page.wait_for_url(re.compile(r"notice=template_saved"))
    assert "カスタマイズしたテンプレートを使用中です" in page.locator("main").inner_text()
    shot(page, "notification-template", "ja")
    page.click("[data-role=revert]")
    page.wait_for_url(re.compile(r"notice=template_reverted"))
    assert page.locator("[data-role=preview-subject]").inner_text() == before
    assert not page.js_errors


PAGES = (
    ("login", "/login", False),
    ("email-settings", "/t/acme/settings/email", True),
    ("custom-email-settings", "/t/acme/settings/email/smtp", True),
    ("email-authentication", "/t/acme/settings/email/authentication", True),
    ("email-logs", "/t/acme/logs", True),
    ("notifications", "/t/acme/notifications", True),
    ("notification-template", "/t/acme/notifications/order.created", True),
)
TITLES = {
    "ja": ("ログイン", "メール設定", "カスタムメール設定", "メール認証", "メールログ", "通知", "テンプレート"),
    "en": ("Sign in", "Email settings", "Custom email settings", "Email authentication", "Email logs",
           "Notifications", "Template"),
}


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_every_page_in_both_languages(browser: Any, site: Site, lang: str) -> None:
    """Each page renders in the browser's language without script errors (and is saved as a screenshot)."""
    page = open_page(browser, site, lang)
    for (name, path, signed_in), title in zip(PAGES, TITLES[lang], strict=True):
        if not signed_in:
            continue
        page.goto(site.url + path)
        assert page.locator("html").get_attribute("lang") == lang
        assert title in page.locator("h1").inner_text(), (path, lang)
        shot(page, name, lang)
    anonymous = open_page(browser, site, lang, signed_in=False)
    anonymous.goto(site.url + "/login")
    assert TITLES[lang][0] in anonymous.locator("h1").inner_text()
    shot(anonymous, "login", lang)
    # A narrow (phone) viewport keeps the settings page usable: no horizontal scrolling of the page.
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(site.url + "/t/acme/settings/email/smtp")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    shot(page, "custom-email-settings-mobile", lang)
    page.goto(site.url + "/t/acme/settings/email/authentication")  # the DNS records stack on a phone
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    assert not page.js_errors and not anonymous.js_errors
