"""The web UI's words in Japanese and English.

Labels follow the Japanese help article (``shared/seed``): メール設定, カスタムメール設定, メールログ, テストメールを送信,
確認メールを送信, メールを確認, 確認メールを再送信, 保存. Every failure message names the cause and the next step.
The language comes from the ``lh_lang`` cookie (the switch in the header), else from Accept-Language, else ja.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

LANGS = ("ja", "en")
DEFAULT_LANG = "ja"
LANG_COOKIE = "lh_lang"

# key: (en, ja)
CATALOGUE: dict[str, tuple[str, str]] = {
    # --- frame -------------------------------------------------------------------------------------------------
    "app.tagline": ("Notification email under your own name", "あなたの名前で届く通知メール"),
    "nav.email_settings": ("Email settings", "メール設定"),
    "nav.smtp": ("Custom email settings", "カスタムメール設定"),
    "nav.email_auth": ("Email authentication", "メール認証"),
    "nav.logs": ("Email logs", "メールログ"),
    "nav.notifications": ("Notifications", "通知"),
    "nav.switch_tenant": ("Switch tenant", "テナントを切り替え"),
    "nav.sign_out": ("Sign out", "ログアウト"),
    "nav.language": ("Language", "言語"),
    "nav.main": ("Main", "メイン"),
    "nav.signed_in_as": ("Signed in as {email}", "{email} でログイン中"),
    "role.owner": ("Owner", "オーナー"),
    "role.admin": ("Admin", "管理者"),
    "role.viewer": ("Viewer", "閲覧者"),
    "role.platform_admin": ("Platform admin", "プラットフォーム管理者"),
    "common.view_only": (
        "You have view-only access (viewer): you can look at everything here, but only an owner or admin of this "
        "tenant can change it.",
        "閲覧のみの権限（閲覧者）です。内容は確認できますが、変更はこのテナントのオーナーまたは管理者に依頼してください。",
    ),
    "common.optional": ("optional", "任意"),
    "common.yes": ("Yes", "はい"),
    "common.no": ("No", "いいえ"),
    "common.none": ("—", "—"),
    "common.skip": ("Skip to content", "本文へ移動"),
    # --- sign-in -----------------------------------------------------------------------------------------------
    "login.title": ("Sign in", "ログイン"),
    "login.email": ("Email address", "メールアドレス"),
    "login.password": ("Password", "パスワード"),
    "login.submit": ("Sign in", "ログイン"),
    "login.failed": (
        "The email address or password is not correct, or the account is disabled. Check both and try again; if "
        "you have not set a password yet, open the set-password link you were given; if your account was "
        "disabled, ask an admin.",
        "メールアドレスまたはパスワードが正しくありません（またはアカウントが無効です）。両方を確認してもう一度お試しください。"
        "パスワードをまだ設定していない場合は、受け取ったパスワード設定リンクを開いてください。アカウントが無効にされた場合は、"
        "管理者にお問い合わせください。",
    ),
    "login.rate_limited": (
        "Too many failed sign-ins: too many attempts, try again in {minutes} min. If you forgot the password, ask "
        "an admin for a new set-password link.",
        "ログインの失敗が多すぎます。試行回数が多すぎるため、{minutes} 分後にもう一度お試しください。パスワードを忘れた場合は、"
        "管理者に新しいパスワード設定リンクを依頼してください。",
    ),
    "login.no_account": (
        "No account yet? The operator creates one with “letterhead user create” and gives you a one-time link to "
        "set your password.",
        "アカウントをお持ちでない場合は、運営者が「letterhead user create」で作成し、パスワードを設定するための一回限りのリンクを"
        "お渡しします。",
    ),
    "login.signed_out": ("You are signed out.", "ログアウトしました。"),
    "wait.min_sec": ("{m} min {s} s", "{m} 分 {s} 秒"),
    "wait.sec": ("{s} s", "{s} 秒"),
    # --- set password ------------------------------------------------------------------------------------------
    "setpw.title": ("Set your password", "パスワードを設定"),
    "setpw.for": ("Account: {email}", "アカウント: {email}"),
    "setpw.password": ("New password (at least 10 characters)", "新しいパスワード（10 文字以上）"),
    "setpw.password2": ("Repeat the password", "パスワード（確認）"),
    "setpw.submit": ("Set password and sign in", "パスワードを設定してログイン"),
    "setpw.invalid": (
        "This link is unknown, already used or expired (links last 72 hours). Ask an admin for a new one "
        "(letterhead user reset).",
        "このリンクは無効、使用済み、または期限切れです（有効期間は 72 時間）。管理者に新しいリンクを依頼してください"
        "（letterhead user reset）。",
    ),
    "setpw.mismatch": (
        "The two passwords differ. Type the same password in both fields.",
        "2 つのパスワードが一致しません。両方の欄に同じパスワードを入力してください。",
    ),
    "setpw.rules": (
        "The password must have 10 to 1000 characters. A phrase of several words is long and easy to remember.",
        "パスワードは 10〜1000 文字にしてください。複数の単語を組み合わせた文は、長くても覚えやすくなります。",
    ),
    # --- errors ------------------------------------------------------------------------------------------------
    "error.title": ("Something went wrong", "エラーが発生しました"),
    "error.not_found_title": ("Page not found", "ページが見つかりません"),
    "error.not_found": (
        "This page does not exist, or your account cannot open it. Check the address, or go back to the start page.",
        "このページは存在しないか、このアカウントでは開けません。アドレスを確認するか、トップページに戻ってください。",
    ),
    "error.no_tenant": (
        "There is no tenant “{tenant}” for your account. Use the address your admin gave you, or sign in with the "
        "account of that tenant.",
        "このアカウントで利用できるテナント「{tenant}」はありません。管理者から案内されたアドレスを使うか、そのテナントの"
        "アカウントでログインしてください。",
    ),
    "error.no_message": (
        "There is no email “{id}” in this tenant's log. Go back to the email log and open it from the list.",
        "このテナントのメールログにメール「{id}」はありません。メールログに戻り、一覧から開いてください。",
    ),
    "error.csrf_title": ("The form has expired", "フォームの有効期限が切れました"),
    "error.csrf": (
        "This form has expired or was opened in another session, so nothing was changed. Reload the page and "
        "submit it again (cookies must be enabled for this site).",
        "フォームの有効期限が切れたか、別のセッションで開かれたため、何も変更されていません。ページを再読み込みして、もう一度送信して"
        "ください（このサイトの Cookie を有効にしてください）。",
    ),
    "error.forbidden_title": ("Not allowed", "権限がありません"),
    "error.viewer": (
        "Your role (viewer) can look but not change settings, so nothing was changed. Ask an owner or admin of "
        "this tenant to make the change.",
        "閲覧者の権限では設定を変更できないため、何も変更されていません。このテナントのオーナーまたは管理者に変更を依頼してください。",
    ),
    "error.platform_only": (
        "Only platform admins can list every tenant. Open your own tenant's pages from the start page.",
        "すべてのテナントの一覧はプラットフォーム管理者のみが表示できます。トップページから自分のテナントを開いてください。",
    ),
    "error.home": ("Go to the start page", "トップページへ"),
    "error.unavailable_title": ("Temporarily unavailable", "一時的にご利用いただけません"),
    "error.unavailable": (
        "The service cannot reach its database right now, so nothing was changed. Try again in a minute; it "
        "recovers by itself. If this page stays for longer, tell the operator.",
        "サービスがデータベースに接続できないため、何も変更されていません。1 分ほど待ってからもう一度お試しください（自動的に"
        "復旧します）。長く続く場合は運営者にお知らせください。",
    ),
    "error.storage_full": (
        "The service's disk is full, so nothing was saved. Try again in a few minutes; if it keeps happening, tell "
        "the operator (the server needs more free disk space).",
        "サーバーのディスクがいっぱいのため、何も保存されていません。数分待ってからもう一度お試しください。繰り返し発生する"
        "場合は運営者にお知らせください（サーバーの空き容量が必要です）。",
    ),
    "error.server": (
        "An unexpected error happened and nothing was changed. Try again in a moment; if it keeps happening, send "
        "the time and page address to the operator.",
        "予期しないエラーが発生したため、何も変更されていません。しばらくしてからもう一度お試しください。繰り返し発生する場合は、"
        "日時とページのアドレスを運営者にお知らせください。",
    ),
    "error.config": (
        "The server's configuration prevents this: {detail} Ask the operator to fix it.",
        "サーバーの設定に問題があるため実行できません: {detail} 運営者に修正を依頼してください。",
    ),
    # --- plans -------------------------------------------------------------------------------------------------
    "plan.upgrade_title": ("Available on a higher plan", "上位プランで利用できます"),
    "plan.upgrade": (
        "{feature} is available on the “{required}” plan. Your plan is “{current}”: contact {platform} to upgrade.",
        "{feature}は「{required}」プラン以上で利用できます。現在のプランは「{current}」です。アップグレードについては {platform} に"
        "お問い合わせください。",
    ),
    "plan.none": (
        "{feature} is not included in any plan of {platform}.",
        "{feature}は {platform} のどのプランにも含まれていません。",
    ),
    "feature.smtp": ("Sending through your own SMTP server", "独自の SMTP サーバーからの送信"),
    "feature.branded": ("Sending from your own verified address", "確認済みの独自アドレスからの送信"),
    # --- email settings ----------------------------------------------------------------------------------------
    "es.title": ("Email settings", "メール設定"),
    "es.intro": (
        "Choose how your notification email goes out. There are three ways:",
        "通知メールの送信方法を選びます。次の 3 つの方法があります。",
    ),
    "mode.default": ("Default", "標準"),
    "mode.branded": ("Branded", "ブランド"),
    "mode.smtp": ("SMTP", "SMTP"),
    "es.pref.default": ("Least preferred", "あまり好ましくない"),
    "es.pref.branded": ("Better", "推奨"),
    "es.pref.smtp": ("Most preferred", "最も推奨"),
    "es.desc.default": (
        "Sent from {platform}'s address with the standard sender name.",
        "{platform} のアドレスと標準の送信者名で送信します。",
    ),
    "es.desc.branded": (
        "Sent from your own verified email address through {platform}.",
        "確認済みのあなたのメールアドレスから、{platform} 経由で送信します。",
    ),
    "es.desc.smtp": (
        "Sent from your address through your own mail server (Gmail, Microsoft 365 or any SMTP server): blocked "
        "domains are under your control and your sender score improves.",
        "あなたのアドレスから、独自のメールサーバー（Gmail、Microsoft 365、任意の SMTP サーバー）で送信します。ブロックされた"
        "ドメインを管理し、送信者スコアを上げることができます。",
    ),
    "es.active": ("In use", "使用中"),
    "es.use": ("Use this method", "この方法を使う"),
    "es.effective": ("Your email goes out as", "現在の送信元"),
    "es.from": ("From", "送信者 (From)"),
    "es.reply_to": ("Reply-To", "返信先 (Reply-To)"),
    "es.transport": ("Sent through", "送信経路"),
    "es.note": ("Note", "注記"),
    "es.held": ("On hold", "送信保留中"),
    "es.smtp.not_configured": ("Not set up yet", "未設定"),
    "es.smtp.configured": ("{host} · {from_email}", "{host} · {from_email}"),
    "es.branded.none": ("No verified address yet", "確認済みのアドレスはまだありません"),
    "es.branded.verified": ("Verified: {address}", "確認済み: {address}"),
    "es.branded.pending": ("Waiting for verification: {address}", "確認待ち: {address}"),
    "status.smtp.untested": ("Not tested", "未テスト"),
    "status.smtp.active": ("Working", "正常"),
    "status.smtp.failing": ("Failing", "送信エラー"),
    "es.need_smtp": (
        "To use SMTP, first save SMTP settings that passed a test email (Custom email settings).",
        "SMTP を使うには、先にカスタムメール設定でテストメールに成功した SMTP 設定を保存してください。",
    ),
    "es.need_branded": (
        "To use the branded method, first verify a sender address (Email authentication → Send verification email).",
        "ブランドの方法を使うには、先に送信者アドレスを確認してください（メール認証 → 確認メールを送信）。",
    ),
    "notice.mode_changed": ("Saved: your email now goes out with the “{mode}” method.",
                            "保存しました。メールは「{mode}」の方法で送信されます。"),
    "notice.smtp_saved": (
        "Saved. The settings passed a test email and are stored; the password is encrypted.",
        "保存しました。テストメールに成功した設定を保存しました（パスワードは暗号化されています）。",
    ),
    "notice.smtp_saved_active": (
        "Saved. Your email now goes out through your own SMTP server.",
        "保存しました。メールはあなたの SMTP サーバーから送信されます。",
    ),
    "notice.smtp_removed": (
        "The SMTP settings were removed. Your email goes out with the default or branded method again.",
        "SMTP 設定を削除しました。メールは標準またはブランドの方法で送信されます。",
    ),
    # --- custom SMTP -------------------------------------------------------------------------------------------
    "smtp.title": ("Custom email settings", "カスタムメール設定"),
    "smtp.intro": (
        "Send through your own mail server. These details can only be saved after a test email has been sent; "
        "until then the Save button is disabled.",
        "独自のメールサーバーから送信します。これらの詳細は、テストメールを送信した後にのみ保存できます。それまでは、[保存] "
        "ボタンは無効になります。",
    ),
    "smtp.choose_provider": ("1. Choose your provider", "1. プロバイダーを選択"),
    "smtp.enter_settings": ("2. Enter the settings", "2. 設定を入力"),
    "smtp.test_and_save": ("3. Send a test email, then save", "3. テストメールを送信して保存"),
    "smtp.driver": ("Driver", "ドライバー"),
    "smtp.preset": ("Provider", "プロバイダー"),
    "smtp.preset_apply": ("Apply", "適用"),
    "smtp.preset.custom": ("Other SMTP server", "その他の SMTP サーバー"),
    "smtp.steps_title": ("Steps for {name}", "{name} の設定手順"),
    "smtp.docs": ("Provider documentation", "プロバイダーのドキュメント"),
    "smtp.limits": ("Default limits: {daily} a day, {minute} a minute", "既定の上限: 1 日 {daily} 通、1 分 {minute} 通"),
    "smtp.limits_unknown": (
        "The sending limits depend on your plan with this provider: enter them under More options.",
        "送信上限はこのプロバイダーとのご契約により異なります。[詳細設定] で入力してください。",
    ),
    "smtp.host": ("Outgoing server (host)", "送信サーバー"),
    "smtp.port": ("Port", "ポート"),
    "smtp.security": ("Encryption type", "暗号化タイプ"),
    "smtp.security.ssl": ("SSL (implicit TLS, port 465)", "SSL（ポート 465 で使用）"),
    "smtp.security.starttls": ("TLS (STARTTLS, port 587)", "TLS（STARTTLS、ポート 587 で使用）"),
    "smtp.security.none": ("None (not encrypted)", "なし（暗号化しない）"),
    "smtp.security_hint": (
        "Use SSL with port 465 and TLS (STARTTLS) with port 587.",
        "ポート 465 を使用する場合は SSL を、ポート 587 を使用する場合は TLS を使用してください。",
    ),
    "smtp.username": ("Username", "ユーザー名"),
    "smtp.password": ("Password", "パスワード"),
    "smtp.password_hint": (
        "For Gmail and Microsoft 365 with 2-step verification: the generated app password.",
        "Gmail や 2 段階認証を使う Microsoft 365 の場合は、生成したアプリパスワードを入力します。",
    ),
    "smtp.password_kept": (
        "A password is saved; leave empty to keep it.",
        "パスワードは保存済みです。変更しない場合は空欄のままにしてください。",
    ),
    "smtp.password_sealed": (
        "The password you just tested is kept (encrypted) for saving; leave empty to keep it.",
        "テストしたパスワードは保存用に（暗号化して）保持しています。変更しない場合は空欄のままにしてください。",
    ),
    "smtp.from_email": ("From email address", "送信者メールアドレス"),
    "smtp.from_name": ("From name", "送信者名"),
    "smtp.reply_to": ("Reply-To address", "返信先アドレス"),
    "smtp.daily_limit": ("Daily sending limit", "1 日の送信上限"),
    "smtp.per_minute_limit": ("Per-minute limit", "1 分あたりの送信上限"),
    "smtp.limit_hint": ("Empty: the provider's default.", "空欄の場合はプロバイダーの既定値を使います。"),
    "smtp.advanced": ("More options", "詳細設定"),
    "smtp.verify_tls": (
        "Verify the server's TLS certificate (turn off only for a server with its own private certificate authority)",
        "サーバーの TLS 証明書を検証する（独自の認証局を使うサーバーの場合のみオフにしてください）",
    ),
    "smtp.fallback": (
        "If this server stops working, send through {platform} instead of holding the mail",
        "このサーバーで送信できなくなった場合、メールを保留せずに {platform} 経由で送信する",
    ),
    "smtp.activate": ("Send all email through this server after saving", "保存後、すべてのメールをこのサーバーから送信する"),
    "smtp.to": ("Send the test email to", "テストメールの送信先"),
    "smtp.send_test": ("Send test email", "テストメールを送信"),
    "smtp.sending": ("Sending the test email…", "テストメールを送信しています…"),
    "smtp.save": ("Save", "保存"),
    "smtp.network_error": (
        "The test could not be started: this page lost its connection to the server. Check your network and press "
        "Send test email again.",
        "テストを開始できませんでした（サーバーとの接続が切れました）。ネットワークを確認して、もう一度 [テストメールを送信] を押して"
        "ください。",
    ),
    "smtp.save_hint": (
        "Save becomes available once a test email has succeeded with exactly these values.",
        "この内容でテストメールの送信に成功すると、[保存] ボタンが有効になります。",
    ),
    "smtp.save_ready": ("The test passed: you can save these settings now.", "テストに成功しました。この設定を保存できます。"),
    "smtp.edited": (
        "A setting changed, so Save is disabled again: send a test email with the new values.",
        "設定が変更されたため、[保存] ボタンは再び無効になりました。新しい内容でテストメールを送信してください。",
    ),
    "smtp.save_refused": (
        "Not saved: these exact settings have not passed a test email in the last 30 minutes. Send a test email, "
        "then press Save without changing anything.",
        "保存できませんでした。この内容でのテストメールの成功が確認できません（30 分以内）。テストメールを送信し、内容を変更せずに "
        "[保存] を押してください。",
    ),
    "smtp.invalid": (
        "Some settings are not valid, so nothing was sent or saved. Correct the marked fields and try again.",
        "入力内容に誤りがあるため、送信も保存もしていません。印の付いた項目を修正して、もう一度お試しください。",
    ),
    "smtp.current": ("Current settings", "現在の設定"),
    "smtp.status": ("Status", "状態"),
    "smtp.last_tested": ("Last successful test", "最後に成功したテスト"),
    "smtp.quota": ("Remaining today", "本日の残り送信数"),
    "smtp.quota_value": ("{remaining} of {limit}", "{limit} 通中 {remaining} 通"),
    "smtp.quota_none": ("No daily limit", "1 日の上限なし"),
    "smtp.paused": (
        "The provider reported a sending limit, so sending is paused until {until}. The mail waits and goes out then; "
        "nothing is lost.",
        "プロバイダーから送信上限に達したとの応答があったため、{until} まで送信を一時停止しています。メールは待機し、その後に"
        "送信されます（失われることはありません）。",
    ),
    "smtp.failing_title": ("Sending through your server has stopped", "あなたのサーバーからの送信が停止しています"),
    "smtp.failing_held": (
        "Your email is held (not lost) until you enter working settings below and save them after a test email.",
        "メールは保留されています（失われません）。下の設定を修正し、テストメールに成功してから保存すると送信が再開されます。",
    ),
    "smtp.failing_fallback": (
        "Meanwhile your email goes out through {platform}. Fix the settings below to send from your server again.",
        "その間、メールは {platform} 経由で送信されます。下の設定を修正すると、再びあなたのサーバーから送信されます。",
    ),
    "smtp.remove": ("Remove SMTP settings", "SMTP 設定を削除"),
    "smtp.remove_hint": (
        "Your email then goes out with the default or branded method.",
        "削除すると、メールは標準またはブランドの方法で送信されます。",
    ),
    "smtp.not_configured": ("No SMTP settings saved yet.", "SMTP 設定はまだ保存されていません。"),
    # --- test result -------------------------------------------------------------------------------------------
    "result.title": ("Test result", "テスト結果"),
    "result.ok": ("Test email sent", "テストメールを送信しました"),
    "result.ok_detail": (
        "Every step passed. Check the inbox of {to}, then press Save.",
        "すべての手順に成功しました。{to} の受信箱を確認してから、[保存] を押してください。",
    ),
    "result.failed": ("The test email could not be sent", "テストメールを送信できませんでした"),
    "result.category": ("Cause", "原因"),
    "result.remedy": ("What to do", "対処方法"),
    "result.reply": ("Server reply", "サーバーの応答"),
    "result.suggested": ("Try port {port} with {security}.", "ポート {port}、暗号化タイプ {security} をお試しください。"),
    "result.warning": ("Note", "注記"),
    "result.in_log": ("Open this test in the email log", "メールログでこのテストを確認"),
    "result.steps": ("Steps", "手順"),
    "step.resolve": ("Resolve the host name", "ホスト名の解決"),
    "step.connect": ("Connect", "接続"),
    "step.tls": ("TLS encryption", "TLS 暗号化"),
    "step.ehlo": ("Greeting (EHLO)", "挨拶 (EHLO)"),
    "step.auth": ("Sign in (AUTH)", "認証 (AUTH)"),
    "step.mail_from": ("Sender (MAIL FROM)", "送信者 (MAIL FROM)"),
    "step.rcpt_to": ("Recipient (RCPT TO)", "宛先 (RCPT TO)"),
    "step.data": ("Message (DATA)", "本文 (DATA)"),
    # field errors
    "field.host": ("Enter a host name such as smtp.gmail.com.", "smtp.gmail.com のようなホスト名を入力してください。"),
    "field.port": (
        "Enter a port between 1 and 65535 (465 for SSL, 587 for TLS).",
        "1〜65535 のポート番号を入力してください（SSL は 465、TLS は 587）。",
    ),
    "field.security": ("Choose SSL, TLS or None.", "SSL、TLS、なしのいずれかを選択してください。"),
    "field.host.host_not_public": (
        "{message}",
        "{address} は{kind}です。Letterhead は公開されたメールサーバーにのみ接続します。"
        "ご利用のプロバイダーの SMTP ホスト名（例: smtp.gmail.com）を入力してください。",
    ),
    "field.port.port_not_allowed": (
        "Port {port} is not one Letterhead connects to: use one of {allowed} (465 for SSL, 587 for TLS). "
        "Only the platform operator can allow other ports.",
        "ポート {port} には接続できません。{allowed} のいずれかを使用してください（SSL は 465、TLS は 587）。"
        "他のポートはプラットフォームの運営者のみが許可できます。",
    ),
    "hostkind.unspecified": ("the unspecified address", "未指定アドレス"),
    "hostkind.loopback": ("the loopback address", "ループバックアドレス（このサーバー自身）"),
    "hostkind.metadata": ("the cloud metadata service's address", "クラウドのメタデータサービスのアドレス"),
    "hostkind.link_local": ("a link-local address", "リンクローカルアドレス"),
    "hostkind.private": ("a private network address", "プライベートネットワークのアドレス"),
    "hostkind.shared": ("a carrier-grade NAT address", "キャリアグレード NAT のアドレス"),
    "hostkind.site_local": ("a site-local address", "サイトローカルアドレス"),
    "hostkind.unique_local": ("a unique local address (ULA)", "ユニークローカルアドレス (ULA)"),
    "hostkind.multicast": ("a multicast address", "マルチキャストアドレス"),
    "hostkind.reserved": ("a reserved, non-public address", "公開されていない予約済みアドレス"),
    "smtp.test_rate_limited": (
        "Too many test emails: at most {limit} a minute. Wait {wait}, then send the test email again.",
        "テストメールの送信回数が多すぎます（1 分あたり {limit} 回まで）。{wait}待ってから、もう一度テストメールを送信してください。",
    ),
    "field.username": ("Use at most 320 characters, without line breaks.", "改行を含めず、320 文字以内で入力してください。"),
    "field.password": ("A password cannot contain line breaks.", "パスワードに改行は使用できません。"),
    "field.from_email": (
        "Enter one email address such as shop@example.com.",
        "shop@example.com のようなメールアドレスを 1 つ入力してください。",
    ),
    "field.from_name": (
        "Use plain text without line breaks (at most 200 characters).",
        "改行を含まない 200 文字以内のテキストを入力してください。",
    ),
    "field.reply_to": (
        "Enter one email address such as support@example.com, or leave it empty.",
        "support@example.com のようなメールアドレスを 1 つ入力するか、空欄にしてください。",
    ),
    "field.to": (
        "Enter the email address that should receive the test email.",
        "テストメールを受け取るメールアドレスを入力してください。",
    ),
    "field.daily_limit": (
        "Enter a positive whole number, or leave it empty for the provider's default.",
        "正の整数を入力するか、空欄にしてプロバイダーの既定値を使ってください。",
    ),
    "field.per_minute_limit": (
        "Enter a positive whole number, or leave it empty for the provider's default.",
        "正の整数を入力するか、空欄にしてプロバイダーの既定値を使ってください。",
    ),
    "field.preset": ("Choose a provider from the list.", "一覧からプロバイダーを選択してください。"),
    "field.email": ("Enter one email address such as you@example.com.", "you@example.com のようなメールアドレスを 1 つ入力してください。"),
    "field.other": ("This value is not valid: {message}", "この値は無効です: {message}"),
    # --- logs --------------------------------------------------------------------------------------------------
    "logs.title": ("Email logs", "メールログ"),
    "logs.intro": (
        "Every email, newest first, test emails included. Open one to see each delivery attempt, the server's "
        "replies and what to do when it failed.",
        "すべてのメールを新しい順に表示します（テストメールを含む）。メールを開くと、各配信の試行、サーバーの応答、失敗した場合の"
        "対処方法を確認できます。",
    ),
    "logs.chart": ("Last 14 days", "過去 14 日間"),
    "logs.chart_aria": (
        "Sent, deferred and failed email per day over the last 14 days",
        "過去 14 日間の 1 日ごとの送信済み・再試行待ち・失敗のメール数",
    ),
    "logs.filters": ("Filter", "絞り込み"),
    "logs.f.status": ("Status", "状態"),
    "logs.f.to": ("Recipient", "宛先"),
    "logs.f.event": ("Event", "イベント"),
    "logs.f.kind": ("Kind", "種類"),
    "logs.f.since": ("From date", "開始日"),
    "logs.f.until": ("To date", "終了日"),
    "logs.f.any": ("All", "すべて"),
    "logs.f.apply": ("Search", "検索"),
    "logs.f.reset": ("Clear", "クリア"),
    "logs.col.time": ("Time", "日時"),
    "logs.col.status": ("Status", "状態"),
    "logs.col.to": ("To", "宛先"),
    "logs.col.subject": ("Subject", "件名"),
    "logs.col.kind": ("Kind / event", "種類 / イベント"),
    "logs.col.mode": ("Method", "送信方法"),
    "logs.empty": ("No email matches.", "条件に一致するメールはありません。"),
    "logs.empty_hint": (
        "Clear the filters, or send a test email from Custom email settings to see it here.",
        "絞り込みをクリアするか、カスタムメール設定からテストメールを送信すると、ここに表示されます。",
    ),
    "logs.older": ("Older emails →", "さらに古いメール →"),
    "logs.newest": ("← Newest", "← 最新"),
    "logs.bad_date": (
        "“{value}” is not a date. Enter it as YYYY-MM-DD (for example 2025-04-01) and search again.",
        "「{value}」は日付として認識できません。YYYY-MM-DD の形式（例: 2025-04-01）で入力して、もう一度検索してください。",
    ),
    "logs.bad_range": (
        "The start date is after the end date. Swap them and search again.",
        "開始日が終了日より後になっています。日付を入れ替えて、もう一度検索してください。",
    ),
    "logs.bad_filter": ("These filters are not valid: {detail}. Correct them and search again.",
                        "絞り込み条件が無効です: {detail}。修正して、もう一度検索してください。"),
    "logs.timezone": ("Times in {tz}", "時刻は {tz} で表示"),
    "status.queued": ("Queued", "送信待ち"),
    "status.sending": ("Sending", "送信中"),
    "status.sent": ("Sent", "送信済み"),
    "status.deferred": ("Deferred", "再試行待ち"),
    "status.failed": ("Failed", "失敗"),
    "kind.email": ("Email", "メール"),
    "kind.notification": ("Notification", "通知"),
    "kind.test": ("Test email", "テストメール"),
    "kind.verification": ("Verification", "確認メール"),
    # --- message detail ----------------------------------------------------------------------------------------
    "msg.title": ("Email details", "メールの詳細"),
    "msg.back": ("← Email logs", "← メールログ"),
    "msg.subject": ("Subject", "件名"),
    "msg.from": ("From", "送信者"),
    "msg.to": ("To", "宛先"),
    "msg.reply_to": ("Reply-To", "返信先"),
    "msg.kind": ("Kind", "種類"),
    "msg.event": ("Event", "イベント"),
    "msg.mode": ("Method", "送信方法"),
    "msg.transport": ("Sent through", "送信経路"),
    "msg.created": ("Accepted", "受付日時"),
    "msg.sent": ("Sent", "送信日時"),
    "msg.next_attempt": ("Next attempt", "次回の試行"),
    "msg.message_id": ("Message-ID", "Message-ID"),
    "msg.note": ("Note", "注記"),
    "msg.last_reply": ("Last server reply", "最後のサーバー応答"),
    "msg.category": ("Cause", "原因"),
    "msg.remedy": ("What to do", "対処方法"),
    "msg.attempts": ("Delivery attempts", "配信の試行"),
    "msg.attempt_n": ("Attempt {n}", "{n} 回目の試行"),
    "msg.no_attempts": ("Not tried yet: it is waiting in the queue.", "まだ送信を試みていません（キューで待機中）。"),
    "msg.stage": ("Stage", "段階"),
    "msg.duration": ("Duration", "所要時間"),
    "msg.reply": ("Reply", "応答"),
    "msg.error": ("Error", "エラー"),
    "msg.transcript": ("SMTP conversation (credentials removed)", "SMTP のやり取り（認証情報は除去済み）"),
    "outcome.sent": ("Delivered", "送信成功"),
    "outcome.transient": ("Temporary failure (will retry)", "一時的な失敗（再試行します）"),
    "outcome.permanent": ("Permanent failure", "恒久的な失敗"),
    "outcome.held": ("Held (not tried)", "保留（未送信）"),
    "outcome.expired": ("Gave up (lifetime over)", "期限切れのため中止"),
    # --- tenants -----------------------------------------------------------------------------------------------
    "tenants.title": ("Tenants", "テナント"),
    "tenants.intro": (
        "As a platform admin you can open every tenant's pages.",
        "プラットフォーム管理者は、すべてのテナントのページを開けます。",
    ),
    "tenants.col.name": ("Name", "名前"),
    "tenants.col.id": ("ID", "ID"),
    "tenants.col.plan": ("Plan", "プラン"),
    "tenants.col.mode": ("Method", "送信方法"),
    "tenants.empty": (
        "No tenants yet. Create one with “letterhead tenant create”.",
        "テナントはまだありません。「letterhead tenant create」で作成してください。",
    ),
    # --- email authentication (branded sender) ----------------------------------------------------------------
    "auth.title": ("Email authentication", "メール認証"),
    "auth.intro": (
        "Send from your own address through {platform}. Enter the address and click “Send verification email”, "
        "then open the link in that email and press “Verify email”. Once verified, the address automatically "
        "becomes the sender of all outgoing email.",
        "{platform} 経由で、あなたのメールアドレスから送信します。アドレスを入力して [確認メールを送信] をクリックし、届いたメールの"
        "リンクを開いて [メールを確認] ボタンを押してください。確認が完了すると、確認したメールアドレスが自動的にすべての送信メールの"
        "送信者のメールアドレスになります。",
    ),
    "auth.current": ("Current sender address", "現在の送信者アドレス"),
    "auth.current_default": (
        "No address is verified yet: your email goes out from the default address {address}.",
        "確認済みのアドレスはまだありません。メールはデフォルトのアドレス {address} から送信されています。",
    ),
    "auth.verified": ("Verified", "確認済み"),
    "auth.verified_at": ("Verified on {when}", "{when} に確認済み"),
    "auth.not_in_use": (
        "This address is verified, but the active method is “{mode}”. Use the branded method to send from it.",
        "このアドレスは確認済みですが、現在の送信方法は「{mode}」です。このアドレスから送信するには、ブランドの方法を使ってください。",
    ),
    "auth.address": ("Sender email address", "送信者メールアドレス"),
    "auth.name": ("Sender name", "送信者名"),
    "auth.name_hint": ("Shown to recipients; empty: “{tenant}”.", "受信者に表示される名前です。空欄の場合は「{tenant}」。"),
    "auth.send": ("Send verification email", "確認メールを送信"),
    "auth.resend": ("Resend verification email", "確認メールを再送信"),
    "auth.change": ("Change sender email address", "送信者メールアドレスを変更"),
    "auth.change_note": (
        "The current address stays in use until the new one is verified, so your email never stops.",
        "新しいアドレスの確認が完了するまでは現在のアドレスが使われるため、メールの送信は止まりません。",
    ),
    "auth.change_pending_note": (
        "Entering another address sends a new verification email; the link sent before stops working.",
        "別のアドレスを入力すると新しい確認メールを送信し、以前に送ったリンクは無効になります。",
    ),
    "auth.pending_title": ("Waiting for verification", "確認待ち"),
    "auth.pending_badge": ("Pending", "確認待ち"),
    "auth.pending": (
        "A verification email was sent to {email} ({sent}). Open the link in it and press “Verify email” on the page "
        "that opens. The link is valid until {expires}.",
        "{email} に確認メールを送信しました（{sent}）。メール内のリンクを開き、表示されたページで [メールを確認] ボタンを押して"
        "ください。リンクの有効期限は {expires} です。",
    ),
    "auth.pending_expired": (
        "The link sent to {email} has expired. Resend the verification email to get a new link.",
        "{email} に送信したリンクの有効期限が切れました。確認メールを再送信して、新しいリンクを受け取ってください。",
    ),
    "auth.resend_hint": (
        "No email? Check the spam folder, then resend: the new link replaces the old one.",
        "確認メールが届かない場合は、迷惑メールフォルダを確認してから再送信してください。新しいリンクを送ると、以前のリンクは無効に"
        "なります。",
    ),
    "auth.resend_wait": ("You can resend after {when}.", "{when} 以降に再送信できます。"),
    "auth.rate_limited": (
        "Not sent: too many verification emails in a short time (a limit that protects the address's owner). Wait "
        "{wait} and try again.",
        "送信できませんでした。短時間に確認メールを送りすぎています（アドレスの持ち主を守るための制限です）。{wait}後にもう一度"
        "お試しください。",
    ),
    "auth.no_pending": (
        "There is nothing to resend: enter the address and click “Send verification email” first.",
        "再送信する確認メールはありません。先にアドレスを入力して [確認メールを送信] をクリックしてください。",
    ),
    "auth.invalid": (
        "The address was not accepted, so no email was sent. Correct the marked field and try again.",
        "アドレスを受け付けられなかったため、メールは送信していません。印の付いた項目を修正して、もう一度お試しください。",
    ),
    "auth.no_domain": (
        "The domain {domain} does not exist. Check the part after the @ for typing mistakes.",
        "ドメイン {domain} は存在しません。@ より後の部分に入力ミスがないか確認してください。",
    ),
    "auth.dmarc_title": ("Your domain's DMARC policy", "ドメインの DMARC ポリシー"),
    "auth.dmarc_domain": ("Domain", "ドメイン"),
    "auth.dmarc_policy": ("Policy", "ポリシー"),
    "auth.dmarc_result": ("How your email is sent", "送信方法"),
    "auth.dmarc_direct": ("From your address itself.", "あなたのアドレスから直接送信します。"),
    "auth.dmarc_via": (
        "As “your name via the platform” with Reply-To your address, until the domain is authenticated.",
        "ドメインが認証されるまでは「あなたの名前 via プラットフォーム」として送信し、返信先をあなたのアドレスにします。",
    ),
    "notice.verification_sent": (
        "Verification email sent. Open the link in it and press “Verify email”.",
        "確認メールを送信しました。メール内のリンクを開き、[メールを確認] ボタンを押してください。",
    ),
    "notice.verification_resent": (
        "A new verification email was sent; the previous link no longer works.",
        "確認メールを再送信しました。以前のリンクは無効になりました。",
    ),
    "notice.sender_name_updated": (
        "Saved: the sender name was updated (the address is already verified).",
        "保存しました。送信者名を更新しました（アドレスは確認済みです）。",
    ),
    "auth.dmarc_authenticated": (
        "{domain} is authenticated with DKIM (Sending domains below): your email is sent from the address itself.",
        "{domain} は DKIM で認証済みです（下の送信ドメイン）。メールはあなたのアドレスから直接送信されます。",
    ),
    "auth.dmarc_fix": (
        "To send from the address itself, authenticate {domain} under Sending domains below.",
        "アドレスから直接送信するには、下の送信ドメインで {domain} を認証してください。",
    ),
    # --- sending domains (DKIM) --------------------------------------------------------------------------------
    "feature.domains": ("Custom sending domains with DKIM", "DKIM による独自の送信ドメイン"),
    "dom.title": ("Sending domains", "送信ドメイン"),
    "dom.intro": (
        "Authenticate your own domain with DKIM: {platform} then signs your email for it, so mail from your address "
        "passes DMARC and is sent as the address itself, not “via {platform}”. Add the domain, publish the DKIM "
        "record with your DNS provider, then press “Check DNS”. The SPF and DMARC records are recommended.",
        "独自ドメインを DKIM で認証すると、{platform} がそのドメインのメールに署名するため、あなたのアドレスからのメールが DMARC に"
        "合格し、「via {platform}」ではなくアドレスそのものから送信されます。ドメインを追加し、DNS 管理画面で DKIM レコードを"
        "追加してから [DNS を確認] を押してください。SPF と DMARC のレコードの追加も推奨します。",
    ),
    "dom.empty": ("No sending domain yet.", "送信ドメインはまだありません。"),
    "dom.add_title": ("Add a domain", "ドメインを追加"),
    "dom.domain": ("Domain", "ドメイン"),
    "dom.domain_hint": (
        "The part after the @ of your sender address, e.g. example.com. Japanese domain names are accepted.",
        "送信者アドレスの @ より後の部分です（例: example.com）。日本語ドメイン名も使えます。",
    ),
    "dom.add": ("Add domain", "ドメインを追加"),
    "dom.check": ("Check DNS", "DNS を確認"),
    "dom.status.verified": ("✓ Verified · DKIM signing", "✓ 認証済み・DKIM 署名中"),
    "dom.status.pending": ("Waiting for DNS", "DNS の確認待ち"),
    "dom.selector": ("Selector", "セレクター"),
    "dom.added_at": ("Added", "追加日時"),
    "dom.checked_at": ("Last checked", "最終確認"),
    "dom.never_checked": ("Not checked yet", "未確認"),
    "dom.verified_at": ("Verified", "認証日時"),
    "dom.records": ("DNS records for {domain}", "{domain} の DNS レコード"),
    "dom.col.type": ("Type", "種類"),
    "dom.col.host": ("Host (name)", "ホスト名"),
    "dom.col.value": ("Value", "値"),
    "dom.col.status": ("Status", "状態"),
    "dom.full_name": ("Full name: {host}", "完全な名前: {host}"),
    "dom.purpose.dkim": ("DKIM", "DKIM"),
    "dom.purpose.spf": ("SPF", "SPF"),
    "dom.purpose.dmarc": ("DMARC", "DMARC"),
    "dom.required": ("required", "必須"),
    "dom.recommended": ("recommended", "推奨"),
    "dom.rec.pending": ("Not checked", "未確認"),
    "dom.rec.verified": ("✓ Found", "✓ 確認済み"),
    "dom.rec.missing": ("Missing", "見つかりません"),
    "dom.rec.mismatch": ("✗ Wrong value", "✗ 値が違います"),
    "dom.found": ("DNS holds", "DNS の現在の値"),
    "dom.found_none": ("nothing (no such record)", "なし（レコードがありません）"),
    "dom.found_unknown": ("not checked yet", "まだ確認していません"),
    "dom.copy": ("Copy", "コピー"),
    "dom.copied": ("Copied", "コピーしました"),
    "dom.value_label": ("{purpose} record value", "{purpose} レコードの値"),
    "dom.host_label": ("{purpose} record host", "{purpose} レコードのホスト名"),
    "dom.delete": ("Delete domain…", "ドメインを削除…"),
    "dom.delete_note": (
        "Mail from {domain} is then no longer DKIM-signed, and its key is destroyed: adding the domain again creates "
        "a new key with a new DKIM record to publish. You can remove the records from your DNS afterwards.",
        "削除すると {domain} のメールには DKIM 署名が付かなくなり、鍵も破棄されます。もう一度追加すると新しい鍵が作られ、新しい "
        "DKIM レコードの追加が必要になります。削除後は DNS からレコードを削除してかまいません。",
    ),
    "dom.delete_confirm": ("Yes, delete {domain} and its key", "{domain} と鍵を削除します"),
    "dom.delete_button": ("Delete {domain}", "{domain} を削除"),
    "dom.invalid": (
        "The domain was not added. Correct the marked field and try again.",
        "ドメインを追加できませんでした。印の付いた項目を修正して、もう一度お試しください。",
    ),
    "dom.err.required": (
        "Enter the domain you send from, e.g. example.com.",
        "送信に使うドメインを入力してください（例: example.com）。",
    ),
    "dom.err.address": (
        "This is an email address: enter only the domain, the part after the @ ({domain}).",
        "メールアドレスではなく、@ より後のドメイン部分（{domain}）だけを入力してください。",
    ),
    "dom.err.url": (
        "This is a web address: enter only the domain name, e.g. example.com, without http:// or /.",
        "URL ではなく、http:// や / を付けずにドメイン名だけを入力してください（例: example.com）。",
    ),
    "dom.err.trailing_dot": (
        "Enter the domain without the dot at the end: {domain}",
        "末尾のドット（.）を付けずに入力してください: {domain}",
    ),
    "dom.err.spaces": (
        "A domain name cannot contain spaces. Remove them and try again.",
        "ドメイン名にスペースは使えません。スペースを削除して、もう一度お試しください。",
    ),
    "dom.err.idn": (
        "This is not a valid internationalised domain name. Check it for typing mistakes.",
        "有効な日本語（国際化）ドメイン名ではありません。入力ミスがないか確認してください。",
    ),
    "dom.err.too_long": ("A domain name is at most 253 characters long.", "ドメイン名は 253 文字以内で入力してください。"),
    "dom.err.two_labels": (
        "Enter a full domain with a dot, such as example.com.",
        "example.com のように、ドットを含む完全なドメイン名を入力してください。",
    ),
    "dom.err.label": (
        "“{label}” is not a valid part of a domain name: use letters, digits and hyphens (not at either end), 1–63 "
        "characters between dots.",
        "「{label}」はドメイン名として使えません。ドットの間は 1〜63 文字の英数字とハイフン（先頭と末尾以外）にしてください。",
    ),
    "dom.err.ip": ("Enter a domain name, not an IP address.", "IP アドレスではなく、ドメイン名を入力してください。"),
    "dom.err.public_suffix": (
        "{domain} is a public suffix (like com or co.jp) that nobody owns. Enter your own domain, e.g. "
        "shop.{domain}.",
        "{domain} は com や co.jp のような共有のドメインで、所有できません。shop.{domain} のような、あなたのドメインを入力して"
        "ください。",
    ),
    "dom.err.platform": (
        "{domain} is {platform}'s own sending domain. Enter a domain of your own.",
        "{domain} は {platform} 自身の送信ドメインです。あなたのドメインを入力してください。",
    ),
    "dom.exists": (
        "{domain} is already one of your sending domains (see the list). Press “Check DNS” on it, or delete it first "
        "to start over with a new key.",
        "{domain} は既に送信ドメインに追加されています（一覧を参照）。そのドメインの [DNS を確認] を押すか、新しい鍵でやり直す"
        "場合は先に削除してください。",
    ),
    "dom.busy": (
        "{domain} is being added by another request right now. Wait a moment and reload the page.",
        "{domain} は別の操作で追加中です。少し待ってから、ページを再読み込みしてください。",
    ),
    "dom.not_found": (
        "{domain} is not one of your sending domains (it may have been deleted in another window). Reload the page "
        "and try again.",
        "{domain} は送信ドメインにありません（別の画面で削除された可能性があります）。ページを再読み込みして、もう一度お試しください。",
    ),
    "dom.dns_unavailable": (
        "DNS could not answer for {name} (timeout or server failure), so nothing was checked and {domain} keeps its "
        "status. Try “Check DNS” again in a few minutes; if this persists, ask your DNS provider whether its servers "
        "answer for the domain.",
        "DNS から {name} の応答が得られなかった（タイムアウトまたはサーバーエラー）ため、確認できませんでした。{domain} の状態は"
        "変わっていません。数分後にもう一度 [DNS を確認] を押してください。続く場合は、DNS サービスのサーバーがこのドメインに"
        "応答しているか、DNS サービスに確認してください。",
    ),
    "dom.delete_unconfirmed": (
        "Nothing was deleted: tick “Yes, delete {domain} and its key” to confirm, then press Delete.",
        "削除していません。確認のため「{domain} と鍵を削除します」にチェックを入れてから、削除ボタンを押してください。",
    ),
    "notice.domain_added": (
        "{domain} was added. Publish the DKIM record below with your DNS provider, then press “Check DNS”.",
        "{domain} を追加しました。下の DKIM レコードを DNS 管理画面で追加してから、[DNS を確認] を押してください。",
    ),
    "notice.domain_verified": (
        "{domain} is verified: its DKIM record is published, and your email from it is now DKIM-signed.",
        "{domain} を認証しました。DKIM レコードが確認でき、このドメインのメールに DKIM 署名が付くようになりました。",
    ),
    "notice.domain_checked": (
        "DNS checked for {domain}: the DKIM record is not right yet. Follow the advice under each record, then check "
        "again (DNS changes can take a while to appear).",
        "{domain} の DNS を確認しました。DKIM レコードがまだ正しくありません。各レコードの案内に従って修正し、もう一度確認してください"
        "（DNS の変更が反映されるまで時間がかかることがあります）。",
    ),
    "notice.domain_deleted": (
        "{domain} was deleted; mail from it is no longer DKIM-signed.",
        "{domain} を削除しました。このドメインのメールには DKIM 署名が付かなくなります。",
    ),
    # --- effective sender reasons (services answer in English; see Translator.reason) --------------------------
    "reason.via": (
        "Sent as “{name}” <{addr}> with Reply-To {email}: {domain} has {why} and is not authenticated with "
        "{platform}, so mail from {email} through the platform would fail DMARC. Authenticate the domain (Email "
        "authentication → Sending domains) or use SMTP to send as the address itself.",
        "「{name}」<{addr}> として送信し、返信先を {email} にしています。{domain} には {why} が設定されていて、{platform} で"
        "ドメイン認証されていないため、{email} からそのまま送信すると DMARC に失敗します。アドレスそのものから送信するには、"
        "ドメインを認証する（メール認証 → 送信ドメイン）か、SMTP を使ってください。",
    ),
    "reason.via_uncertain": (
        "Sent as “{name}” <{addr}> with Reply-To {email}: the DMARC policy of {domain} could not be read ({state}) and "
        "the domain is not authenticated with {platform}, so mail from {email} through the platform could fail DMARC. "
        "Authenticate the domain (Email authentication → Sending domains) or use SMTP to send as the address itself.",
        "「{name}」<{addr}> として送信し、返信先を {email} にしています。{domain} の DMARC ポリシーを確認できず（{state}）、"
        "{platform} でドメイン認証もされていないため、{email} からそのまま送信すると DMARC に失敗する可能性があります。アドレス"
        "そのものから送信するには、ドメインを認証する（メール認証 → 送信ドメイン）か、SMTP を使ってください。",
    ),
    "reason.smtp_fallback": (
        "Sent through {platform}: your SMTP server is failing ({category}). Fix it in Custom email settings.",
        "SMTP サーバーでエラーが発生しているため（{category}）、{platform} 経由で送信しています。カスタムメール設定で修正して"
        "ください。",
    ),
    "reason.smtp_failing": (
        "Held: the SMTP settings are failing ({category}). Update the password in Custom email settings and send a "
        "test email again.",
        "SMTP 設定でエラーが発生しているため（{category}）、メールを保留しています。カスタムメール設定でパスワードを更新し、"
        "もう一度テストメールを送信してください。",
    ),
    "reason.smtp_limit": (
        "Deferred: the provider's sending limit is reached; sending resumes by itself when the window reopens.",
        "プロバイダーの送信上限に達したため、送信を延期しています。上限の期間がリセットされると自動的に再開します。",
    ),
    "reason.smtp_busy": (
        "Waiting for a free connection: Letterhead is already sending other mail through this SMTP account, and the "
        "provider allows only a few connections at once. It goes out as soon as that is done; nothing to do.",
        "接続の空きを待っています。この SMTP アカウントでは別のメールを送信中で、プロバイダーが同時に許可する接続数に"
        "限りがあるためです。送信が終わりしだい自動的に送信されます。操作は不要です。",
    ),
    "reason.devinbox": (
        "The development inbox is not running: start `letterhead serve`.",
        "開発用の受信箱が起動していません。`letterhead serve` を起動してください。",
    ),
    # --- notifications -----------------------------------------------------------------------------------------
    "notif.title": ("Notifications", "通知"),
    "notif.intro": (
        "The email sent for each platform event. Switch off the ones you do not want, and edit the wording for each "
        "language.",
        "プラットフォームのイベントごとに送信されるメールです。不要なものはオフにし、言語ごとに文面を編集できます。",
    ),
    "notif.on": ("On", "オン"),
    "notif.off": ("Off", "オフ"),
    "notif.switch_label": ("Send {event}", "{event} を送信する"),
    "notif.customized": ("Customized: {locales}", "カスタマイズ済み: {locales}"),
    "notif.edit": ("Edit template", "テンプレートを編集"),
    "notif.back": ("← Notifications", "← 通知"),
    "notif.editor_title": ("Template: {event}", "テンプレート: {event}"),
    "notif.subject": ("Subject", "件名"),
    "notif.html": ("HTML body", "HTML 本文"),
    "notif.text": ("Text body (optional: made from the HTML when empty)", "テキスト本文（任意。空欄の場合は HTML から作成）"),
    "notif.preview": ("Preview", "プレビュー"),
    "notif.preview_note": ("Rendered with the event's example data.", "イベントのサンプルデータで表示しています。"),
    "notif.save": ("Save", "保存"),
    "notif.revert": ("Revert to default", "既定に戻す"),
    "notif.using_default": ("The default template is in use.", "既定のテンプレートを使用中です。"),
    "notif.using_custom": ("Your customized template is in use.", "カスタマイズしたテンプレートを使用中です。"),
    "notif.template_error": (
        "The template has an error{where}: {message} Correct it and try again; nothing was saved.",
        "テンプレートにエラーがあります{where}: {message} 修正してもう一度お試しください（保存されていません）。",
    ),
    "notif.line": (" on line {line}", "（{line} 行目）"),
    "notif.data": ("Example data of this event (data.… in the template)", "このイベントのサンプルデータ（テンプレートでは data.…）"),
    "notif.disabled_note": (
        "This event is switched off: nothing is sent for it until you switch it on.",
        "このイベントはオフです。オンにするまで、このイベントのメールは送信されません。",
    ),
    "notice.template_saved": (
        "Saved: new notifications use this template.", "保存しました。新しい通知からこのテンプレートが使われます。"),
    "notice.template_reverted": (
        "Reverted: the default template is in use again.", "既定のテンプレートに戻しました。"),
    "notice.event_switched": ("Saved.", "保存しました。"),
    "error.no_event": (
        "There is no event “{event}”. Go back to Notifications and choose one from the list.",
        "イベント「{event}」はありません。通知の一覧に戻り、一覧から選択してください。",
    ),
}

LANG_NAMES = {"ja": "日本語", "en": "English"}

# The effective sender's ``note`` / ``held`` reasons come from the services in English (senders/resolve.py,
# senders/branded.py). Matched on their stable parts; anything else is shown as it is.
_REASONS: tuple[tuple[re.Pattern[str], str], ...] = (
    (
        re.compile(
            r"^Sent as “(?P<name>.*?)” <(?P<addr>[^>]*)> with Reply-To (?P<email>\S+): (?P<domain>\S+) has "
            r"DMARC (?:p=(?P<policy>\w+)|(?P<state>\w+)) and is not authenticated with (?P<platform>.+?), so mail ",
            re.S,
        ),
        "reason.via",
    ),
    (re.compile(r"^Sent through the platform: the tenant's SMTP server is failing \((?P<category>[^)]*)\)"),
     "reason.smtp_fallback"),
    (re.compile(r"SMTP settings are failing \((?P<category>[^)]*)\)"), "reason.smtp_failing"),
    (re.compile(r"sending limit is reached"), "reason.smtp_limit"),
    (re.compile(r"^The development inbox is not running"), "reason.devinbox"),
    (re.compile(r"^Waiting for a free connection"), "reason.smtp_busy"),
)


def negotiate(accept_language: str | None) -> str:
    """The best of ja/en for an Accept-Language header (RFC 9110 §12.5.4), else the default."""
    best: tuple[float, int, str] | None = None
    for index, part in enumerate((accept_language or "").split(",")):
        tag, _, params = part.strip().partition(";")
        lang = tag.strip().lower().split("-")[0]
        if lang not in LANGS:
            continue
        q = 1.0
        for p in params.split(";"):
            name, _, value = p.strip().partition("=")
            if name.strip() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if q <= 0:
            continue
        candidate = (q, -index, lang)
        if best is None or candidate > best:
            best = candidate
    return best[2] if best else DEFAULT_LANG


class Translator:
    def __init__(self, lang: str) -> None:
        self.lang = lang if lang in LANGS else DEFAULT_LANG
        self._index = 1 if self.lang == "ja" else 0

    def __call__(self, key: str, **values: object) -> str:
        text = CATALOGUE[key][self._index]
        return text.format_map(values) if values else text

    def has(self, key: str) -> bool:
        return key in CATALOGUE

    def pick(self, texts: Mapping[str, str] | None) -> str:
        """One language out of a {"en": ..., "ja": ...} dict (remedies, summaries, warnings, preset steps)."""
        if not texts:
            return ""
        return texts.get(self.lang) or texts.get("en") or next(iter(texts.values()), "")

    def reason(self, text: str | None, *, platform: str = "") -> str:
        """A service's English note/hold reason in this language (the known ones); others unchanged."""
        if not text:
            return ""
        for pattern, key in _REASONS:
            match = pattern.search(text)
            if match is None:
                continue
            values = {k: v or "" for k, v in match.groupdict().items()}
            values.setdefault("platform", platform)
            values["platform"] = values["platform"] or platform
            if key == "reason.via":
                if values["policy"]:
                    values["why"] = f"DMARC p={values['policy']}"
                else:
                    key = "reason.via_uncertain"
            return self(key, **values)
        return text

    def wait(self, seconds: int) -> str:
        m, s = divmod(max(1, seconds), 60)
        return self("wait.min_sec", m=m, s=s) if m else self("wait.sec", s=s)
