"""The public verification page of branded senders: ``GET /verify/{token}`` and ``POST /verify/{token}``.

- The GET only shows the address and a "Verify email" button: mail security scanners fetch every link in an
  email, so a GET that verified would verify addresses nobody looked at.
- The POST is CSRF-safe without JavaScript: the form carries a field signed (``ctx.signer``) for this very
  verification and bound to a random nonce that the GET also put in a ``SameSite=Strict`` cookie. A form posted
  from another site has neither a valid field nor the cookie; a forged field fails the signature.
- The token is in the URL, so pages are ``Referrer-Policy: no-referrer`` (it never leaks to another site),
  ``Cache-Control: no-store`` and ``noindex``, and cannot be framed.
- Japanese or English: ``?lang=``, then Accept-Language, then the tenant's locale.
"""

from __future__ import annotations

import secrets
from functools import cache
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from letterhead.context import Context
from letterhead.senders import branded

router = APIRouter(include_in_schema=False)

COOKIE = "lh_verify"
FORM_PURPOSE = "verify-form"
FORM_MAX_AGE = 25 * 3600  # a page may stay open for the token's whole 24 h
LOCALES = ("ja", "en")

TEXT: dict[str, dict[str, str]] = {
    "en": {
        "lang_name": "English",
        "confirm_title": "Verify your sender address",
        "confirm_lead": "{tenant} wants to send its email from this address:",
        "confirm_button": "Verify email",
        "confirm_note": "Did not expect this? Just close this page: nothing changes unless you press the button.",
        "verified_title": "Email verified",
        "verified_lead": "{email} is verified. From now on, {tenant}'s email is sent from this address.",
        "verified_smtp": "{tenant} sends through its own SMTP server right now, so that server's settings stay in "
        "use; the verified address is used when you switch back to the platform's sending.",
        "verified_plan": "The current plan does not include branded sending, so mail keeps the platform's "
        "address until the plan is upgraded.",
        "expired_title": "This link has expired",
        "expired_lead": "Verification links work for 24 hours; the link for {email} expired on {when}.",
        "superseded_title": "This link is no longer valid",
        "superseded_lead": "A newer verification email was sent (or another address was entered) after this one, "
        "so this link no longer works. Use the link in the newest email.",
        "used_title": "This link has already been used",
        "used_lead": "{email} was verified with this link on {when}. Each link works once.",
        "unknown_title": "This link is not valid",
        "unknown_lead": "We do not know this verification link. Check that the whole link was copied from the "
        "email; links also stop working once used or when a newer email is sent.",
        "forbidden_title": "The request could not be confirmed",
        "forbidden_lead": "The form was not sent from this page (or the page is too old). Open the link in the "
        "email again and press “Verify email”. Cookies must be enabled for this page. Nothing was changed.",
        "resend": "Need a new link? In {platform}, go to Settings → Email settings → Email authentication and click "
        "“Resend verification email”.",
        "switch": "日本語",
    },
    "ja": {
        "lang_name": "日本語",
        "confirm_title": "送信者メールアドレスの確認",
        "confirm_lead": "{tenant} が次のアドレスをメールの送信者として使用しようとしています。",
        "confirm_button": "メールを確認",
        "confirm_note": "お心当たりがない場合は、このページを閉じてください。ボタンを押さない限り、何も変更されません。",
        "verified_title": "メールアドレスを確認しました",
        "verified_lead": "{email} の確認が完了しました。今後、{tenant} のメールはこのアドレスから送信されます。",
        "verified_smtp": "{tenant} は現在、独自の SMTP サーバーで送信しているため、その設定がそのまま使われます。"
        "プラットフォームからの送信に戻すと、確認済みのこのアドレスが使われます。",
        "verified_plan": "現在のプランにはブランド送信が含まれていないため、プランをアップグレードするまでは"
        "プラットフォームのアドレスから送信されます。",
        "expired_title": "このリンクは有効期限が切れています",
        "expired_lead": "確認リンクの有効期限は 24 時間です。{email} の確認リンクは {when} に期限切れになりました。",
        "superseded_title": "このリンクは無効になりました",
        "superseded_lead": "このメールのあとに新しい確認メールが送信された（または別のアドレスが入力された）ため、"
        "このリンクは使えなくなりました。最新の確認メールのリンクをご利用ください。",
        "used_title": "このリンクはすでに使用されています",
        "used_lead": "{email} はこのリンクで {when} に確認済みです。リンクは 1 回だけ使用できます。",
        "unknown_title": "このリンクは無効です",
        "unknown_lead": "この確認リンクは見つかりません。メールのリンクを途中で切れずにコピーしたかご確認ください。"
        "リンクは使用済みの場合や、新しい確認メールが送信された場合にも無効になります。",
        "forbidden_title": "確認できませんでした",
        "forbidden_lead": "フォームがこのページから送信されていないか、ページが古くなっています。メールのリンクを"
        "もう一度開き、「メールを確認」を押してください。このページでは Cookie を有効にしてください。"
        "設定は変更されていません。",
        "resend": "新しいリンクが必要な場合は、{platform} の［設定］→［メール設定］→「メール認証」で"
        "「確認メールを再送信」をクリックしてください。",
        "switch": "English",
    },
}

_STATUS = {"valid": 200, "verified": 200, "expired": 410, "superseded": 410, "used": 410, "unknown": 404,
           "forbidden": 403}


@cache
def _env() -> Environment:
    return Environment(
        loader=FileSystemLoader(Path(__file__).parent / "templates"),
        autoescape=select_autoescape(enabled_extensions=("html",), default=True),
    )


def _ctx(request: Request) -> Context:
    ctx: Context = request.app.state.ctx
    return ctx


def pick_locale(request: Request, lang: str | None, fallback: str | None) -> str:
    """``?lang=`` (or the form's ``lang``), then Accept-Language (by q-value), then the tenant's locale, then ja."""
    if lang in LOCALES:
        return str(lang)
    best: tuple[float, str] | None = None
    for i, part in enumerate(request.headers.get("accept-language", "").split(",")):
        tag, _, params = part.strip().partition(";")
        primary = tag.strip().lower().split("-")[0]
        if primary not in LOCALES:
            continue
        q = 1.0
        params = params.strip()
        if params.startswith("q="):
            try:
                q = float(params[2:])
            except ValueError:
                q = 0.0
        if q > 0 and (best is None or q > best[0]):
            best = (q - i * 1e-6, primary)  # equal q: the earlier one wins
    if best is not None:
        return best[1]
    # The default locale of tenants (models.Tenant.locale) when nothing else tells.
    return fallback if fallback is not None and fallback in LOCALES else "ja"


def _render(
    request: Request,
    ctx: Context,
    state: branded.TokenState,
    locale: str,
    *,
    form_field: str | None = None,
    tenant_tz: str | None = None,
) -> HTMLResponse:
    t = TEXT[locale]
    kind = "confirm" if state.state == "valid" else state.state
    when_dt = state.expires_at if kind == "expired" else state.used_at
    values = {
        "tenant": state.tenant_name or "",
        "email": state.email or "",
        "platform": ctx.settings.platform_name,
        "when": branded.format_time(when_dt, tenant_tz, locale) if when_dt else "",
    }
    notes: list[str] = []
    if kind == "verified":
        if state.mode == "smtp":
            notes.append(t["verified_smtp"].format(**values))
        elif state.mode != "branded":
            notes.append(t["verified_plan"].format(**values))
    other = "en" if locale == "ja" else "ja"
    html = (
        _env()
        .get_template("verify.html")
        .render(
            lang=locale,
            kind=kind,
            title=t[f"{kind}_title"],
            lead=t[f"{kind}_lead"].format(**values),
            email=state.email,
            notes=notes,
            warning=(state.warning or {}).get(locale) if kind == "verified" else None,
            button=t["confirm_button"],
            confirm_note=t["confirm_note"],
            resend=t["resend"].format(**values) if kind not in ("confirm", "verified") else None,
            form_field=form_field,
            platform=ctx.settings.platform_name,
            switch_label=t["switch"],
            switch_href=f"?lang={other}",
        )
    )
    response = HTMLResponse(html, status_code=_STATUS.get(state.state, 200))
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Robots-Tag"] = "noindex, nofollow"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    )
    return response


def _tenant_tz(ctx: Context, tenant_id: str | None) -> str | None:
    if tenant_id is None:
        return None
    from letterhead.models import Tenant

    with ctx.db.session() as s:
        tenant = s.get(Tenant, tenant_id)
        return tenant.timezone if tenant else None


@router.get("/verify/{token}", response_class=HTMLResponse)
def verify_page(request: Request, token: str, lang: str | None = None) -> HTMLResponse:
    """Shows the address and the "Verify email" button. Changes nothing."""
    ctx = _ctx(request)
    state = branded.lookup_token(ctx, token)
    locale = pick_locale(request, lang, state.tenant_locale)
    if state.state != "valid":
        return _render(request, ctx, state, locale, tenant_tz=_tenant_tz(ctx, state.tenant_id))
    nonce = request.cookies.get(COOKIE) or ""
    if not (16 <= len(nonce) <= 64 and nonce.replace("-", "").replace("_", "").isalnum()):
        nonce = secrets.token_urlsafe(24)
    field = ctx.signer.sign(FORM_PURPOSE, {"v": state.verification_id, "n": nonce})
    response = _render(request, ctx, state, locale, form_field=field)
    response.set_cookie(
        COOKIE,
        nonce,
        max_age=FORM_MAX_AGE,
        path="/verify",
        httponly=True,
        samesite="strict",
        secure=ctx.settings.public_url.startswith("https://"),
    )
    return response


@router.post("/verify/{token}", response_class=HTMLResponse)
def verify_submit(
    request: Request,
    token: str,
    csrf: Annotated[str | None, Form()] = None,
    lang: Annotated[str | None, Form()] = None,
) -> HTMLResponse:
    """Verifies the address (the "Verify email" button)."""
    ctx = _ctx(request)
    state = branded.lookup_token(ctx, token)
    locale = pick_locale(request, lang or request.query_params.get("lang"), state.tenant_locale)
    tz = _tenant_tz(ctx, state.tenant_id)
    if state.state != "valid":
        return _render(request, ctx, state, locale, tenant_tz=tz)
    payload: Any = ctx.signer.unsign(FORM_PURPOSE, csrf, max_age=FORM_MAX_AGE) if csrf else None
    nonce = request.cookies.get(COOKIE)
    if (
        not isinstance(payload, dict)
        or payload.get("v") != state.verification_id
        or not nonce
        or not secrets.compare_digest(str(payload.get("n", "")), nonce)
        or request.headers.get("sec-fetch-site") == "cross-site"
    ):
        return _render(request, ctx, branded.TokenState("forbidden", email=state.email), locale, tenant_tz=tz)
    result = branded.confirm(ctx, token, verification_id=str(payload["v"]))
    return _render(request, ctx, result, locale, tenant_tz=tz)
