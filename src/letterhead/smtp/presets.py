"""SMTP provider presets: what choosing "Gmail" or "Microsoft 365" fills in, and the steps shown beside the form.

Facts come from the providers' public documentation (``docs_url`` of each preset). Limits are the defaults of the
editable per-configuration limits; ``None`` means the provider's limit depends on the customer's plan, so the
tenant enters it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from letterhead.errors import InvalidInput
from letterhead.smtp.diagnose import Remedy

__all__ = ["PRESETS", "PortOption", "Preset", "get_preset"]

SECURITY_VALUES = ("ssl", "starttls", "none")


@dataclass(frozen=True)
class PortOption:
    port: int
    security: str  # "ssl" (implicit TLS) | "starttls" | "none"

    def as_dict(self) -> dict[str, object]:
        return {"port": self.port, "security": self.security}


@dataclass(frozen=True)
class Preset:
    id: str
    name: str
    host: str | None
    options: tuple[PortOption, ...]  # first = recommended
    username_hint: Remedy
    daily_limit: int | None
    per_minute_limit: int | None
    max_connections: int
    steps: dict[str, list[str]] = field(default_factory=dict)  # {"en": [...], "ja": [...]}
    docs_url: str | None = None
    #: Shown under the host field when the host is not fixed (regions, data centers).
    host_hint: Remedy | None = None

    @property
    def recommended(self) -> PortOption | None:
        return self.options[0] if self.options else None

    def as_dict(self) -> dict[str, object]:
        rec = self.recommended
        return {
            "id": self.id,
            "name": self.name,
            "host": self.host,
            "port": rec.port if rec else None,
            "security": rec.security if rec else None,
            "options": [o.as_dict() for o in self.options],
            "username_hint": self.username_hint.as_dict(),
            "host_hint": self.host_hint.as_dict() if self.host_hint else None,
            "daily_limit": self.daily_limit,
            "per_minute_limit": self.per_minute_limit,
            "max_connections": self.max_connections,
            "steps": {lang: list(items) for lang, items in self.steps.items()},
            "docs_url": self.docs_url,
        }


SSL_465 = PortOption(465, "ssl")
STARTTLS_587 = PortOption(587, "starttls")


# The help article's Gmail steps (2-step verification, app password, settings), in Google's own UI names.
_GOOGLE_STEPS_EN = [
    "Turn on 2-Step Verification for the Google account: https://myaccount.google.com/security",
    "Generate an app password at https://myaccount.google.com/apppasswords: enter a name such as \"Letterhead\" "
    "(older screens: choose \"Mail\") and click Create. Copy the password before closing the page: it cannot be "
    "shown again.",
    "Enter the settings here: server smtp.gmail.com, port 465 with SSL or port 587 with STARTTLS (TLS), the full "
    "Gmail address as the username and the generated app password as the password.",
    "Send a test email. The settings can only be saved after a test email has succeeded; until then the Save "
    "button is disabled.",
    "Gmail has a daily sending limit per account to prevent spam. Past it, Gmail blocks further sending and "
    "returns an error; Letterhead counts what it sent and holds mail that would exceed the limit.",
    "If you change the Google account password, the app passwords stop working: generate a new app password "
    "and enter it here.",
]
_GOOGLE_STEPS_JA = [
    "Google アカウントで 2 段階認証プロセスを有効にします。https://myaccount.google.com/security で確認してください。",
    "https://myaccount.google.com/apppasswords にアクセスしてアプリ パスワードを生成します。アプリ名（例:「Letterhead」）を入力し"
    "（以前の画面では [メール] を選択し）、[作成] を選択します。ページを閉じるとセキュリティ上の理由からパスワードは再表示"
    "できないため、閉じる前に必ずコピーしてください。",
    "ここで SMTP を設定します。送信サーバー: smtp.gmail.com、ポート: 465 または 587、暗号化タイプ: ポート 465 を使用する場合は"
    " SSL、ポート 587 を使用する場合は STARTTLS（TLS）、ユーザー名: Gmail アドレス全体、パスワード: 生成したアプリ パスワード。",
    "テストメールを送信します。これらの設定は、テストメールの送信に成功した後にのみ保存できます。それまでは [保存] ボタンは"
    "無効になります。",
    "Gmail には、迷惑メールを防ぐためにアカウントごとの 1 日の送信上限があります。上限を超えると Gmail はそれ以降の送信を"
    "ブロックしてエラーを返すため、Letterhead は送信数を数え、上限を超えるメールは保留します。",
    "Google アカウントのパスワードを変更するとアプリ パスワードは使用できなくなります。新しいアプリ パスワードを生成して"
    "入力し直してください。",
]

# The help article's four Microsoft 365 steps.
_MS365_STEPS_EN = [
    "Check the admin center settings: sign in to the Microsoft 365 admin center (https://admin.microsoft.com) with "
    "an administrator account, go to Users > Active users, select the user, open Mail > Manage email apps, make "
    "sure \"Authenticated SMTP\" is checked, and save the changes.",
    "Make sure modern authentication is on: Microsoft is retiring basic authentication in favour of modern "
    "authentication (OAuth 2.0); where SMTP is needed it can still be enabled per user as above. In the admin "
    "center go to Settings > Org settings > Services > Modern authentication and enable it if it is not.",
    "Generate an app password (for multi-factor accounts): with MFA the normal password cannot be used for SMTP. "
    "In the account's security settings choose Additional security options > App passwords, create a new app "
    "password and use it here instead of the account password.",
    "Allow SMTP in the mail flow settings (if your organisation restricts it): in the Exchange admin center "
    "(https://admin.exchange.microsoft.com) go to Mail flow > Rules, find rules that block SMTP connections, and "
    "change them or add an exception for this user or application.",
    "Enter the settings here: server smtp.office365.com, port 587 with STARTTLS, the full mailbox address as the "
    "username, and send a test email. Microsoft 365 allows 30 messages a minute, 10,000 recipients a day and 3 "
    "simultaneous connections per mailbox.",
]
_MS365_STEPS_JA = [
    "管理センターの設定を確認します。管理者の認証情報を使用して Microsoft 365 管理センター（https://admin.microsoft.com）に"
    "ログインし、[ユーザー] > [アクティブなユーザー] に移動して、SMTP アクセスを有効にするユーザーを選択します。ユーザーの設定"
    "ページで [メール] > [メール アプリの管理] に移動し、「認証済み SMTP」にチェックが入っていることを確認して、変更を保存します。",
    "モダン認証が有効になっていることを確認します。Microsoft は基本認証を廃止し、モダン認証（OAuth 2.0）に移行していますが、"
    "SMTP が必要な場合は上記のようにユーザー単位で有効にできます。Microsoft 365 管理センターの [設定] > [組織設定] の [サービス]"
    " タブで [モダン認証] を選択し、まだ有効になっていない場合は有効にします。",
    "アプリ パスワードを生成します（多要素認証を使用している場合）。多要素認証（MFA）を使用している場合、通常のパスワードは SMTP"
    " に使用できません。アカウントのセキュリティ設定で [その他のセキュリティオプション] から [アプリパスワード] を選択して新しい"
    "アプリ パスワードを生成し、通常のパスワードの代わりに使用してください。",
    "メールフロー設定で SMTP を許可します（組織のポリシーで制限されている場合）。Exchange 管理センター"
    "（https://admin.exchange.microsoft.com）で [メールフロー] > [ルール] を選択し、SMTP 接続をブロックするルールがあれば変更するか、"
    "このユーザーまたはアプリケーションを例外に追加します。",
    "ここで設定を入力します。送信サーバー: smtp.office365.com、ポート: 587（STARTTLS）、ユーザー名: メールボックスのアドレス全体。"
    "入力したらテストメールを送信してください。Microsoft 365 では 1 つのメールボックスにつき 1 分あたり 30 通、1 日 10,000 宛先、"
    "同時接続 3 つまで送信できます。",
]


def _steps(en: list[str], ja: list[str]) -> dict[str, list[str]]:
    return {"en": en, "ja": ja}


PRESETS: dict[str, Preset] = {
    p.id: p
    for p in (
        # https://support.google.com/mail/answer/7126229 ; limits: https://support.google.com/a/answer/166852
        Preset(
            id="gmail",
            name="Gmail",
            host="smtp.gmail.com",
            options=(SSL_465, STARTTLS_587),
            username_hint=Remedy("Your full Gmail address (name@gmail.com)", "Gmail アドレス全体（name@gmail.com）"),
            daily_limit=500,
            per_minute_limit=None,
            max_connections=2,
            steps=_steps(_GOOGLE_STEPS_EN, _GOOGLE_STEPS_JA),
            docs_url="https://support.google.com/mail/answer/7126229",
        ),
        # Workspace users send through smtp.gmail.com with an app password; 2,000 messages/day per user.
        Preset(
            id="google_workspace",
            name="Google Workspace",
            host="smtp.gmail.com",
            options=(SSL_465, STARTTLS_587),
            username_hint=Remedy(
                "Your full Google Workspace address (name@yourcompany.com)",
                "Google Workspace のメールアドレス全体（name@yourcompany.com）",
            ),
            daily_limit=2000,
            per_minute_limit=None,
            max_connections=3,
            steps=_steps(
                [
                    *_GOOGLE_STEPS_EN[:2],
                    "If app passwords are not offered, your Workspace administrator must allow 2-Step Verification "
                    "(Google Admin console > Security > Authentication > 2-Step Verification).",
                    *_GOOGLE_STEPS_EN[2:],
                ],
                [
                    *_GOOGLE_STEPS_JA[:2],
                    "アプリ パスワードが表示されない場合は、Workspace の管理者が 2 段階認証プロセスを許可する必要があります"
                    "（Google 管理コンソール > [セキュリティ] > [認証] > [2 段階認証プロセス]）。",
                    *_GOOGLE_STEPS_JA[2:],
                ],
            ),
            docs_url="https://support.google.com/a/answer/176600",
        ),
        # https://learn.microsoft.com/exchange/clients-and-mobile-in-exchange-online/authenticated-client-smtp-submission
        # Limits: https://learn.microsoft.com/office365/servicedescriptions/exchange-online-service-description/exchange-online-limits
        Preset(
            id="microsoft365",
            name="Microsoft 365",
            host="smtp.office365.com",
            options=(STARTTLS_587,),
            username_hint=Remedy(
                "The full mailbox address (name@yourcompany.com)", "メールボックスのアドレス全体（name@yourcompany.com）"
            ),
            daily_limit=10000,
            per_minute_limit=30,
            max_connections=3,
            steps=_steps(_MS365_STEPS_EN, _MS365_STEPS_JA),
            docs_url="https://learn.microsoft.com/exchange/clients-and-mobile-in-exchange-online/"
            "authenticated-client-smtp-submission",
        ),
        # https://support.microsoft.com/office/pop-imap-and-smtp-settings-for-outlook-com-d088b986-291d-42b8-9564-9c414e2aa040
        Preset(
            id="outlook_com",
            name="Outlook.com",
            host="smtp-mail.outlook.com",
            options=(STARTTLS_587,),
            username_hint=Remedy(
                "Your full Outlook.com / Hotmail address", "Outlook.com／Hotmail のメールアドレス全体"
            ),
            daily_limit=300,
            per_minute_limit=None,
            max_connections=1,
            steps=_steps(
                [
                    "Server smtp-mail.outlook.com, port 587 with STARTTLS, the full Outlook.com address as the username.",
                    "Note: since September 2024 Microsoft no longer accepts passwords (basic authentication, app "
                    "passwords included) for SMTP on personal Outlook.com/Hotmail accounts. If the test fails with "
                    "\"basic authentication is disabled\", use a Microsoft 365 business mailbox or another provider.",
                    "Personal accounts can send about 300 messages a day.",
                ],
                [
                    "送信サーバー: smtp-mail.outlook.com、ポート: 587（STARTTLS）、ユーザー名: Outlook.com のメールアドレス全体。",
                    "注記: 2024 年 9 月以降、個人の Outlook.com／Hotmail アカウントでは SMTP でパスワード（基本認証、アプリ パスワードを"
                    "含む）を使用できません。テストで「basic authentication is disabled」と表示された場合は、Microsoft 365 の法人向け"
                    "メールボックス、または他のプロバイダをご利用ください。",
                    "個人アカウントでは 1 日に約 300 通まで送信できます。",
                ],
            ),
            docs_url="https://support.microsoft.com/office/d088b986-291d-42b8-9564-9c414e2aa040",
        ),
        # https://www.zoho.com/mail/help/zoho-smtp.html ; limits depend on plan and are adjusted dynamically.
        Preset(
            id="zoho",
            name="Zoho Mail",
            host="smtp.zoho.com",
            options=(SSL_465, STARTTLS_587),
            username_hint=Remedy("Your full Zoho Mail address", "Zoho Mail のメールアドレス全体"),
            daily_limit=None,
            per_minute_limit=None,
            max_connections=2,
            host_hint=Remedy(
                "Use your data center's host: smtp.zoho.com (US), smtp.zoho.eu, smtp.zoho.in, smtp.zoho.com.au, "
                "smtp.zoho.jp; organisation mailboxes may use smtppro.zoho.com.",
                "ご利用のデータセンターのホストを指定してください: smtp.zoho.com（米国）、smtp.zoho.eu、smtp.zoho.in、"
                "smtp.zoho.com.au、smtp.zoho.jp。組織のメールボックスでは smtppro.zoho.com を使用する場合があります。",
            ),
            steps=_steps(
                [
                    "In Zoho Mail, make sure SMTP access is allowed for the account (Settings > Mail Accounts).",
                    "If two-factor authentication is on, create an app-specific password at https://accounts.zoho.com "
                    "(Security > App Passwords) and use it as the password.",
                    "Server smtp.zoho.com (or your data center's host), port 465 with SSL or 587 with STARTTLS, the full "
                    "Zoho address as the username. The From address must be this address or one of its aliases.",
                ],
                [
                    "Zoho Mail でアカウントの SMTP アクセスが許可されていることを確認します（[設定] > [メールアカウント]）。",
                    "2 要素認証を有効にしている場合は、https://accounts.zoho.com（[セキュリティ] > [アプリパスワード]）で"
                    "アプリケーション固有のパスワードを作成し、パスワードとして使用します。",
                    "送信サーバー: smtp.zoho.com（またはご利用のデータセンターのホスト）、ポート: 465（SSL）または 587（STARTTLS）、"
                    "ユーザー名: Zoho のメールアドレス全体。送信元アドレスはこのアドレスまたはそのエイリアスである必要があります。",
                ],
            ),
            docs_url="https://www.zoho.com/mail/help/zoho-smtp.html",
        ),
        # https://help.yahoo.com/kb/SLN4724.html (settings), https://help.yahoo.com/kb/SLN15241.html (app passwords)
        Preset(
            id="yahoo",
            name="Yahoo Mail",
            host="smtp.mail.yahoo.com",
            options=(SSL_465, STARTTLS_587),
            username_hint=Remedy("Your full Yahoo address", "Yahoo のメールアドレス全体"),
            daily_limit=500,
            per_minute_limit=None,
            max_connections=1,
            steps=_steps(
                [
                    "Generate an app password: https://login.yahoo.com/account/security > Generate app password. The "
                    "account password does not work for SMTP.",
                    "Server smtp.mail.yahoo.com, port 465 with SSL or 587 with STARTTLS, the full Yahoo address as the "
                    "username and the app password as the password. Send From that same address.",
                ],
                [
                    "アプリ パスワードを生成します: https://login.yahoo.com/account/security > [アプリパスワードを生成]。"
                    "SMTP ではアカウントのパスワードは使用できません。",
                    "送信サーバー: smtp.mail.yahoo.com、ポート: 465（SSL）または 587（STARTTLS）、ユーザー名: Yahoo のメールアドレス"
                    "全体、パスワード: アプリ パスワード。送信元も同じアドレスにしてください。",
                ],
            ),
            docs_url="https://help.yahoo.com/kb/SLN4724.html",
        ),
        # https://support.apple.com/102525 (settings), https://support.apple.com/102654 (app-specific passwords)
        Preset(
            id="icloud",
            name="iCloud Mail",
            host="smtp.mail.me.com",
            options=(STARTTLS_587,),
            username_hint=Remedy(
                "Your iCloud email address (name@icloud.com)", "iCloud のメールアドレス（name@icloud.com）"
            ),
            daily_limit=1000,
            per_minute_limit=None,
            max_connections=1,
            steps=_steps(
                [
                    "Two-factor authentication must be on for the Apple Account.",
                    "Create an app-specific password: sign in at https://account.apple.com > Sign-In and Security > "
                    "App-Specific Passwords.",
                    "Server smtp.mail.me.com, port 587 with STARTTLS, your iCloud email address as the username and the "
                    "app-specific password as the password.",
                ],
                [
                    "Apple アカウントで 2 ファクタ認証を有効にしておく必要があります。",
                    "App 用パスワードを作成します: https://account.apple.com にサインインし、[サインインとセキュリティ] > "
                    "[App 用パスワード] を選択します。",
                    "送信サーバー: smtp.mail.me.com、ポート: 587（STARTTLS）、ユーザー名: iCloud のメールアドレス、パスワード: "
                    "App 用パスワード。",
                ],
            ),
            docs_url="https://support.apple.com/102525",
        ),
        # https://docs.aws.amazon.com/ses/latest/dg/smtp-connect.html ; sandbox: 200 messages/24 h, 1 message/s.
        Preset(
            id="amazon_ses",
            name="Amazon SES",
            host="email-smtp.us-east-1.amazonaws.com",
            options=(STARTTLS_587, SSL_465, PortOption(2587, "starttls"), PortOption(2465, "ssl")),
            username_hint=Remedy(
                "The SES SMTP user name (from SES > SMTP settings > Create SMTP credentials; not an IAM access key)",
                "SES の SMTP ユーザー名（SES の [SMTP 設定] > [SMTP 認証情報の作成] で取得。IAM のアクセスキーではありません）",
            ),
            daily_limit=None,
            per_minute_limit=None,
            max_connections=10,
            host_hint=Remedy(
                "The host depends on the region of your SES account: email-smtp.<region>.amazonaws.com, e.g. "
                "email-smtp.eu-west-1.amazonaws.com or email-smtp.ap-northeast-1.amazonaws.com (Tokyo).",
                "ホスト名は SES アカウントのリージョンによって異なります: email-smtp.<リージョン>.amazonaws.com"
                "（例: 東京リージョンは email-smtp.ap-northeast-1.amazonaws.com）。",
            ),
            steps=_steps(
                [
                    "Verify the From address or its domain in the SES console (https://console.aws.amazon.com/ses > "
                    "Identities), in the region you will send from.",
                    "Create SMTP credentials: SES console > SMTP settings > Create SMTP credentials. Copy the SMTP user "
                    "name and password (they are not your AWS access keys).",
                    "Server email-smtp.<region>.amazonaws.com, port 587 with STARTTLS (or 465 with SSL).",
                    "New accounts are in the SES sandbox (200 messages a day, 1 a second, verified recipients only): "
                    "request production access, then enter your account's daily quota and rate here.",
                ],
                [
                    "送信に使用するリージョンの SES コンソール（https://console.aws.amazon.com/ses > [ID]）で、送信元アドレスまたは"
                    "そのドメインを検証します。",
                    "SMTP 認証情報を作成します: SES コンソール > [SMTP 設定] > [SMTP 認証情報の作成]。SMTP ユーザー名とパスワードを"
                    "コピーします（AWS のアクセスキーではありません）。",
                    "送信サーバー: email-smtp.<リージョン>.amazonaws.com、ポート: 587（STARTTLS）または 465（SSL）。",
                    "新しいアカウントは SES サンドボックス（1 日 200 通、1 秒あたり 1 通、検証済みの宛先のみ）にあります。本番アクセスを"
                    "リクエストしてから、アカウントの 1 日の送信クォータと送信レートをここに入力してください。",
                ],
            ),
            docs_url="https://docs.aws.amazon.com/ses/latest/dg/smtp-connect.html",
        ),
        # https://www.twilio.com/docs/sendgrid/for-developers/sending-email/integrating-with-the-smtp-api
        Preset(
            id="sendgrid",
            name="SendGrid",
            host="smtp.sendgrid.net",
            options=(STARTTLS_587, SSL_465, PortOption(2525, "starttls")),
            username_hint=Remedy(
                'Literally "apikey" (the password is your API key)', "「apikey」とそのまま入力（パスワードは API キー）"
            ),
            daily_limit=None,
            per_minute_limit=None,
            max_connections=10,
            steps=_steps(
                [
                    "Verify a Single Sender or authenticate your domain: Settings > Sender Authentication.",
                    "Create an API key with Mail Send permission: Settings > API Keys.",
                    "Server smtp.sendgrid.net, port 587 with STARTTLS (or 465 with SSL), username apikey, password the "
                    "API key (starts with SG.).",
                ],
                [
                    "送信者を検証するか、ドメインを認証します: [Settings] > [Sender Authentication]。",
                    "Mail Send 権限のある API キーを作成します: [Settings] > [API Keys]。",
                    "送信サーバー: smtp.sendgrid.net、ポート: 587（STARTTLS）または 465（SSL）、ユーザー名: apikey、パスワード: "
                    "API キー（SG. で始まるもの）。",
                ],
            ),
            docs_url="https://www.twilio.com/docs/sendgrid/for-developers/sending-email/integrating-with-the-smtp-api",
        ),
        # https://documentation.mailgun.com/docs/mailgun/user-manual/sending-messages/send-smtp
        Preset(
            id="mailgun",
            name="Mailgun",
            host="smtp.mailgun.org",
            options=(STARTTLS_587, SSL_465, PortOption(2525, "starttls")),
            username_hint=Remedy(
                "The domain's SMTP login, e.g. postmaster@mg.yourcompany.com",
                "ドメインの SMTP ログイン（例: postmaster@mg.yourcompany.com）",
            ),
            daily_limit=None,
            per_minute_limit=None,
            max_connections=10,
            host_hint=Remedy(
                "EU region domains use smtp.eu.mailgun.org.", "EU リージョンのドメインは smtp.eu.mailgun.org を使用します。"
            ),
            steps=_steps(
                [
                    "Add and verify your sending domain (Sending > Domains); sandbox domains only send to authorised "
                    "recipients.",
                    "Create SMTP credentials for the domain: Domain settings > SMTP credentials.",
                    "Server smtp.mailgun.org (EU: smtp.eu.mailgun.org), port 587 with STARTTLS (or 465 with SSL).",
                ],
                [
                    "送信ドメインを追加して検証します（[Sending] > [Domains]）。サンドボックスドメインは許可された宛先にしか送信できません。",
                    "ドメインの SMTP 認証情報を作成します: [Domain settings] > [SMTP credentials]。",
                    "送信サーバー: smtp.mailgun.org（EU: smtp.eu.mailgun.org）、ポート: 587（STARTTLS）または 465（SSL）。",
                ],
            ),
            docs_url="https://documentation.mailgun.com/docs/mailgun/user-manual/sending-messages/send-smtp",
        ),
        # https://help.brevo.com/hc/en-us/articles/7924908994450 (SMTP relay)
        Preset(
            id="brevo",
            name="Brevo",
            host="smtp-relay.brevo.com",
            options=(STARTTLS_587, SSL_465, PortOption(2525, "starttls")),
            username_hint=Remedy(
                "The SMTP login shown under SMTP & API > SMTP (not necessarily your email address)",
                "[SMTP & API] > [SMTP] に表示される SMTP ログイン（メールアドレスとは異なる場合があります）",
            ),
            daily_limit=None,
            per_minute_limit=None,
            max_connections=10,
            steps=_steps(
                [
                    "Add and verify the sender, or authenticate its domain: Senders, Domains & Dedicated IPs.",
                    "Generate an SMTP key: SMTP & API > SMTP > Generate a new SMTP key.",
                    "Server smtp-relay.brevo.com, port 587 with STARTTLS, the SMTP login as the username and the SMTP "
                    "key as the password.",
                ],
                [
                    "送信者を追加して確認するか、ドメインを認証します: [Senders, Domains & Dedicated IPs]。",
                    "SMTP キーを生成します: [SMTP & API] > [SMTP] > [Generate a new SMTP key]。",
                    "送信サーバー: smtp-relay.brevo.com、ポート: 587（STARTTLS）、ユーザー名: SMTP ログイン、パスワード: SMTP キー。",
                ],
            ),
            docs_url="https://help.brevo.com/hc/en-us/articles/7924908994450",
        ),
        Preset(
            id="custom",
            name="Other SMTP server",
            host=None,
            options=(STARTTLS_587, SSL_465, PortOption(25, "starttls"), PortOption(2525, "starttls")),
            username_hint=Remedy(
                "Usually your full email address", "通常はメールアドレス全体"
            ),
            daily_limit=None,
            per_minute_limit=None,
            max_connections=2,
            steps=_steps(
                [
                    "Ask your mail provider for its SMTP submission server, port and encryption (usually port 587 with "
                    "STARTTLS, or 465 with SSL).",
                    "Use SSL with port 465 and STARTTLS (TLS) with port 587.",
                    "Send a test email; the settings can be saved once it succeeds.",
                ],
                [
                    "ご利用のメールサービスに、送信用 SMTP サーバー、ポート、暗号化タイプを確認してください（通常はポート 587 の STARTTLS、"
                    "または 465 の SSL）。",
                    "ポート 465 を使用する場合は SSL を、ポート 587 を使用する場合は STARTTLS（TLS）を使用してください。",
                    "テストメールを送信します。成功すると設定を保存できます。",
                ],
            ),
            docs_url=None,
        ),
    )
}


def get_preset(preset_id: str) -> Preset:
    try:
        return PRESETS[preset_id]
    except KeyError:
        raise InvalidInput(
            f"Unknown SMTP preset {preset_id!r}",
            errors=[{"field": "preset", "message": f"must be one of: {', '.join(PRESETS)}"}],
        ) from None
