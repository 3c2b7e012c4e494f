"""The merchant web UI: server-rendered pages in Japanese and English, working without JavaScript.

Pages: sign-in, set-password, tenant picker (platform admins), email settings (the three modes), custom email
settings (SMTP: test → proof → save), email authentication (branded sender), email logs with a chart and a detail
view, notifications. Each page is a thin layer over the services the API uses; every failure is shown with its
cause and the next step in the UI's language.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from pathlib import Path
from typing import Annotated, Any, TypeVar
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData

from letterhead import maillog, sessions, users
from letterhead.clientaddr import ClientAddress, parse_networks
from letterhead.context import Context
from letterhead.dns import DnsUnavailable
from letterhead.errors import (
    ConfigurationError,
    Conflict,
    InvalidInput,
    LetterheadError,
    NotFound,
    PlanRequired,
    RateLimited,
    StorageFull,
    Unavailable,
)
from letterhead.models import MessageKind, MessageStatus, SenderMode, SmtpStatus, Tenant, User
from letterhead.notifications import service as notification_service
from letterhead.notifications.events import EVENTS, Event, get_event
from letterhead.plans import Feature
from letterhead.senders import branded as branded_service
from letterhead.senders import domains as domain_service
from letterhead.senders import settings as sender_settings
from letterhead.senders import smtp as smtp_service
from letterhead.smtp.presets import PRESETS
from letterhead.smtp.probe import STEPS
from letterhead.web import charts
from letterhead.web.auth import (
    SESSION_MAX_AGE,
    WebSession,
    client_ip,
    csrf_ok,
    csrf_token,
    read_session,
    signin_failed,
    signin_retry_after,
    signin_succeeded,
    wait_minutes,
    write_session,
)
from letterhead.web.i18n import LANG_COOKIE, LANG_NAMES, LANGS, Translator, negotiate

R = TypeVar("R", bound=Response)
HERE = Path(__file__).parent
TEMPLATES_DIR = HERE / "templates"
STATIC_DIR = HERE / "static"

_env = Environment(
    loader=FileSystemLoader(TEMPLATES_DIR),
    autoescape=True,
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)

router = APIRouter(include_in_schema=False)

# Inline styles are allowed for the notification preview (e-mail HTML has inlined CSS); scripts only from here.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: https:; "
    "frame-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'; object-src 'none'"
)
SEALED_MAX_AGE = smtp_service.PROOF_MAX_AGE
#: The notifications page is shown in the navigation once its service exists.
NOTIFICATIONS_PAGE = True


def _static_version() -> str:
    digest = hashlib.sha256()
    for name in ("app.css", "app.js"):
        path = STATIC_DIR / name
        if path.exists():
            digest.update(path.read_bytes())
    return digest.hexdigest()[:10]


_STATIC_VERSION = _static_version()


class PageError(Exception):
    """Render the error page (HTML, or JSON for fetch requests) with a catalogue message."""

    def __init__(self, status: int, key: str, *, title: str = "error.title", **values: object) -> None:
        super().__init__(key)
        self.status, self.key, self.title, self.values = status, key, title, values


class Redirect(Exception):
    def __init__(self, location: str) -> None:
        super().__init__(location)
        self.location = location


def pick_lang(request: Request) -> str:
    cookie = request.cookies.get(LANG_COOKIE)
    if cookie in LANGS:
        return cookie
    return negotiate(request.headers.get("accept-language"))


def wants_json(request: Request) -> bool:
    return "application/json" in request.headers.get("accept", "")


def safe_next(value: object) -> str | None:
    """A local path to return to after sign-in (never another site: no scheme, no //host, no backslash)."""
    if not isinstance(value, str) or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return None
    if any(c in value for c in "\r\n\0") or len(value) > 500:
        return None
    return value


@dataclass
class Web:
    """Everything a page needs about the request: context, language, session, user, tenant."""

    request: Request
    ctx: Context
    t: Translator
    session: WebSession
    fresh: bool
    user: User | None
    tenant: Tenant | None = None
    form_data: FormData | None = field(default=None)

    @property
    def lang(self) -> str:
        return self.t.lang

    @property
    def csrf(self) -> str:
        return csrf_token(self.ctx, self.session)

    @property
    def tn(self) -> Tenant:
        assert self.tenant is not None
        return self.tenant

    @property
    def can_edit(self) -> bool:
        return self.user is not None and users.can_edit(self.user)

    @property
    def is_platform_admin(self) -> bool:
        return self.user is not None and users.is_platform_admin(self.user)

    @property
    def has_notifications(self) -> bool:
        return NOTIFICATIONS_PAGE

    @property
    def platform(self) -> str:
        return self.ctx.settings.platform_name

    def url(self, path: str = "", **query: object) -> str:
        """A tenant URL, e.g. ``web.url("/logs", status="failed")`` → ``/t/acme/logs?status=failed``."""
        base = f"/t/{quote(self.tn.id)}{path}"
        q = {k: v for k, v in query.items() if v not in (None, "")}
        return base + ("?" + urlencode(q) if q else "")

    def lang_url(self, lang: str) -> str:
        here = self.request.url.path + (f"?{self.request.url.query}" if self.request.url.query else "")
        return f"/lang/{lang}?" + urlencode({"next": here})

    def local_time(self, value: datetime | None, *, seconds: bool = False) -> str:
        if value is None:
            return self.t("common.none")
        tz = charts.zone(self.tenant.timezone if self.tenant else None)
        return value.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")

    def render(self, name: str, *, status: int = 200, **values: Any) -> HTMLResponse:
        html = _env.get_template(name).render(
            web=self, t=self.t, lang=self.lang, static_version=_STATIC_VERSION, lang_names=LANG_NAMES, **values
        )
        return self.finish(HTMLResponse(html, status_code=status))

    def redirect(self, location: str) -> RedirectResponse:
        return self.finish(RedirectResponse(location, status_code=303))

    def finish(self, response: R) -> R:
        if self.fresh:
            write_session(self.ctx, self.request, response, self.session)
        response.headers["Cache-Control"] = "no-store"
        response.headers["Content-Security-Policy"] = CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "same-origin"
        response.headers["X-Frame-Options"] = "DENY"
        return response

    async def form(self) -> FormData:
        """The posted form, after checking its CSRF token against this session."""
        if self.form_data is None:
            self.form_data = await self.request.form()
        if not csrf_ok(self.ctx, self.session, self.form_data.get("csrf")):
            raise PageError(403, "error.csrf", title="error.csrf_title")
        return self.form_data

    def require_editor(self) -> None:
        if not self.can_edit:
            raise PageError(403, "error.viewer", title="error.forbidden_title")


def get_web(request: Request) -> Web:
    ctx: Context = request.app.state.ctx
    t = Translator(pick_lang(request))
    session = read_session(ctx, request)
    user: User | None = None
    if session is not None and session.user_id:
        # Logout, a new password, a disabled or deleted user end the session on the server (sessions.py).
        user = sessions.signed_in_user(ctx, nonce=session.nonce, user_id=session.user_id)
        if user is None:
            session = None
    fresh = session is None
    return Web(request, ctx, t, session or WebSession.anonymous(), fresh, user)


WebDep = Annotated[Web, Depends(get_web)]


def signed_in(web: WebDep) -> Web:
    if web.user is None:
        path = web.request.url.path + (f"?{web.request.url.query}" if web.request.url.query else "")
        raise Redirect("/login?" + urlencode({"next": path}))
    return web


UserDep = Annotated[Web, Depends(signed_in)]


def tenant_web(tenant_id: str, web: UserDep) -> Web:
    """The tenant in the path, if this user may open it; another tenant's pages are 404, as if absent."""
    user = web.user
    assert user is not None
    if not users.is_platform_admin(user) and user.tenant_id != tenant_id:
        raise PageError(404, "error.no_tenant", title="error.not_found_title", tenant=tenant_id)
    with web.ctx.db.session() as s:
        tenant = s.get(Tenant, tenant_id)
    if tenant is None:
        raise PageError(404, "error.no_tenant", title="error.not_found_title", tenant=tenant_id)
    web.tenant = tenant
    return web


TenantDep = Annotated[Web, Depends(tenant_web)]


def _home(user: User) -> str:
    if users.is_platform_admin(user):
        return "/tenants"
    return f"/t/{quote(user.tenant_id or '')}/settings/email"


def _notice(web: Web) -> str | None:
    key = web.request.query_params.get("notice", "")
    if not key or not web.t.has(f"notice.{key}"):
        return None
    mode = web.request.query_params.get("mode", "")
    domain = web.request.query_params.get("domain", "")[:253]
    return web.t(f"notice.{key}", mode=web.t(f"mode.{mode}") if mode in set(SenderMode) else mode, domain=domain)


def plan_note(web: Web, feature: Feature) -> str:
    required = web.ctx.plans.cheapest_with(feature)
    name = web.t(f"feature.{feature.value}")
    if required is None:
        return web.t("plan.none", feature=name, platform=web.platform)
    return web.t("plan.upgrade", feature=name, required=required, current=web.tn.plan, platform=web.platform)


def field_errors(t: Translator, exc: InvalidInput) -> dict[str, str]:
    out: dict[str, str] = {}
    for e in exc.errors:
        name = str(e.get("field") or "other")
        key = f"field.{name}"
        coded = f"{key}.{e['code']}" if e.get("code") else ""
        if coded and t.has(coded):  # a refusal with its own words (e.g. a private SMTP host): fill in its fields
            values = {k: str(v) for k, v in e.items()}
            reason = f"hostkind.{e.get('reason')}"
            values["kind"] = t(reason) if t.has(reason) else ""
            out[name] = t(coded, **values)
            continue
        out[name] = t(key) if t.has(key) else t("field.other", message=str(e.get("message") or exc.detail))
    if not out:
        out["other"] = t("field.other", message=exc.detail)
    return out


# --- exception handlers ---------------------------------------------------------------------------------------


async def _page_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, PageError)
    web = get_web(request)
    message = web.t(exc.key, **exc.values)
    if wants_json(request):
        return web.finish(JSONResponse({"ok": False, "error": message}, status_code=exc.status))
    return web.render("error.html", status=exc.status, title=web.t(exc.title), message=message)


async def _unavailable_page(request: Request, exc: Unavailable) -> Response:
    """The database is down: the page is built without it (no session or user lookup), for nobody in particular."""
    ctx: Context = request.app.state.ctx
    web = Web(request, ctx, Translator(pick_lang(request)), WebSession.anonymous(), False, None)
    message = web.t("error.storage_full" if isinstance(exc, StorageFull) else "error.unavailable")
    if wants_json(request):
        response: Response = web.finish(JSONResponse({"ok": False, "error": message}, status_code=exc.status))
    else:
        response = web.render("error.html", status=exc.status, title=web.t("error.unavailable_title"), message=message)
    response.headers["Retry-After"] = str(exc.retry_after)
    return response


async def _redirect(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Redirect)
    return RedirectResponse(exc.location, status_code=303)


def install(app: FastAPI) -> None:
    """Mount the UI on ``app`` (called by ``letterhead.api.app.create_app``)."""
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.add_exception_handler(PageError, _page_error)
    app.add_exception_handler(Redirect, _redirect)
    app.state.unavailable_page = _unavailable_page  # used by letterhead.api.problems.database_error
    # Outermost (added last): every route, the API's included, sees the client address trusted proxies name.
    ctx: Context = app.state.ctx
    app.add_middleware(ClientAddress, networks=parse_networks(ctx.settings.trusted_proxies))


# --- sign-in ----------------------------------------------------------------------------------------------------


async def _begin_session(web: Web, user_id: str) -> None:
    """A new signed-in session (a new nonce: no fixation), stored on the server so that it can be ended."""
    if web.user is not None:  # signing in over a live session replaces it
        await run_in_threadpool(sessions.end, web.ctx, nonce=web.session.nonce)
    web.session = WebSession.for_user(user_id)
    web.fresh = True
    await run_in_threadpool(sessions.begin, web.ctx, nonce=web.session.nonce, user_id=user_id,
                            max_age=SESSION_MAX_AGE)


@router.get("/")
def home(web: WebDep) -> Response:
    if web.user is None:
        return web.redirect("/login")
    return web.redirect(_home(web.user))


@router.get("/lang/{lang}")
def switch_lang(lang: str, web: WebDep, next: str = "/") -> Response:
    response = web.redirect(safe_next(next) or "/")
    if lang in LANGS:
        response.set_cookie(LANG_COOKIE, lang, max_age=365 * 24 * 3600, samesite="lax", path="/")
    return response


@router.get("/login")
def login_page(web: WebDep, next: str | None = None) -> Response:
    if web.user is not None:
        return web.redirect(safe_next(next) or _home(web.user))
    notice = web.t("login.signed_out") if web.request.query_params.get("out") else None
    return web.render("login.html", next=safe_next(next) or "", email="", error=None, notice=notice)


@router.post("/login")
async def login(web: WebDep) -> Response:
    form = await web.form()
    email = str(form.get("email") or "").strip()[:254]
    password = str(form.get("password") or "")
    nxt = safe_next(form.get("next")) or ""
    ip = client_ip(web.request)
    wait = await run_in_threadpool(signin_retry_after, web.ctx, email=email, address=ip)
    if wait is not None:  # checked before the password, so that the right one is refused too while locked
        response = web.render("login.html", status=429, next=nxt, email=email,
                              error=web.t("login.rate_limited", minutes=wait_minutes(wait)), notice=None)
        response.headers["Retry-After"] = str(wait)
        return response
    user = await run_in_threadpool(users.authenticate, web.ctx, email=email, password=password)
    if user is None:
        await run_in_threadpool(signin_failed, web.ctx, email=email, address=ip)
        return web.render("login.html", status=401, next=nxt, email=email, error=web.t("login.failed"), notice=None)
    await run_in_threadpool(signin_succeeded, web.ctx, email=email)
    await _begin_session(web, user.id)
    return web.redirect(nxt or _home(user))


@router.post("/logout")
async def logout(web: WebDep) -> Response:
    await web.form()
    if web.user is not None:
        await run_in_threadpool(sessions.end, web.ctx, nonce=web.session.nonce)
    web.session = WebSession.anonymous()
    web.fresh = True
    return web.redirect("/login?out=1")


@router.get("/set-password/{token}")
def set_password_page(token: str, web: WebDep) -> Response:
    user = users.user_for_setup_token(web.ctx, token)
    if user is None:
        return web.render("error.html", status=404, title=web.t("setpw.title"), message=web.t("setpw.invalid"))
    return web.render("set_password.html", email=user.email, error=None)


@router.post("/set-password/{token}")
async def set_password(token: str, web: WebDep) -> Response:
    form = await web.form()
    user = users.user_for_setup_token(web.ctx, token)
    if user is None:
        return web.render("error.html", status=404, title=web.t("setpw.title"), message=web.t("setpw.invalid"))
    password, again = str(form.get("password") or ""), str(form.get("password2") or "")
    if password != again:
        return web.render("set_password.html", status=422, email=user.email, error=web.t("setpw.mismatch"))
    try:
        updated = await run_in_threadpool(users.set_password, web.ctx, token=token, password=password)
    except InvalidInput:
        return web.render("set_password.html", status=422, email=user.email, error=web.t("setpw.rules"))
    except NotFound:
        return web.render("error.html", status=404, title=web.t("setpw.title"), message=web.t("setpw.invalid"))
    await _begin_session(web, updated.id)
    return web.redirect(_home(updated))


@router.get("/tenants")
def tenants_page(web: UserDep) -> Response:
    if not web.is_platform_admin:
        raise PageError(403, "error.platform_only", title="error.forbidden_title")
    from letterhead.tenants import list_tenants

    return web.render("tenants.html", tenants=list_tenants(web.ctx))


@router.get("/t/{tenant_id}")
def tenant_home(web: TenantDep) -> Response:
    return web.redirect(web.url("/settings/email"))


# --- email settings ---------------------------------------------------------------------------------------------


@router.get("/t/{tenant_id}/settings/email")
def email_settings(web: TenantDep) -> Response:
    info = sender_settings.describe(web.ctx, tenant=web.tn)
    return web.render("email_settings.html", info=info, notice=_notice(web), error=None,
                      upgrade={f: plan_note(web, f) for f in (Feature.BRANDED, Feature.SMTP)})


@router.post("/t/{tenant_id}/settings/email/mode")
async def email_settings_mode(web: TenantDep) -> Response:
    form = await web.form()
    web.require_editor()
    mode = str(form.get("mode") or "")
    try:
        await run_in_threadpool(sender_settings.set_mode, web.ctx, tenant=web.tn, mode=mode)
    except PlanRequired:
        feature = Feature.SMTP if mode == "smtp" else Feature.BRANDED
        error = plan_note(web, feature)
    except Conflict:
        error = web.t("es.need_smtp" if mode == "smtp" else "es.need_branded")
    except InvalidInput:
        error = web.t("field.other", message="mode")
    else:
        return web.redirect(web.url("/settings/email", notice="mode_changed", mode=mode))
    info = sender_settings.describe(web.ctx, tenant=web.tn)
    return web.render("email_settings.html", status=409, info=info, notice=None, error=error,
                      upgrade={f: plan_note(web, f) for f in (Feature.BRANDED, Feature.SMTP)})


# --- custom SMTP ------------------------------------------------------------------------------------------------

SMTP_TEXT_FIELDS = ("preset", "host", "port", "security", "username", "from_email", "from_name", "reply_to",
                    "daily_limit", "per_minute_limit")


def _seal(web: Web, password: str) -> str:
    return web.ctx.vault.encrypt(json.dumps({"t": web.tn.id, "p": password, "e": time.time() + SEALED_MAX_AGE}))


def _unseal(web: Web, sealed: str) -> str | None:
    try:
        payload = json.loads(web.ctx.vault.decrypt(sealed))
    except (ConfigurationError, ValueError):
        return None
    if not isinstance(payload, dict) or payload.get("t") != web.tn.id or float(payload.get("e", 0)) < time.time():
        return None
    password = payload.get("p")
    return password if isinstance(password, str) else None


def _form_values(form: FormData) -> dict[str, Any]:
    values: dict[str, Any] = {name: str(form.get(name) or "").strip() for name in SMTP_TEXT_FIELDS}
    values["to"] = str(form.get("to") or "").strip()
    values["verify_tls"] = form.get("verify_tls") == "1"
    values["fallback_to_default"] = form.get("fallback_to_default") == "1"
    values["activate"] = form.get("activate") == "1"
    return values


def _int_field(values: Mapping[str, Any], name: str, *, required: bool) -> int | None:
    raw = str(values.get(name) or "").strip()
    if not raw:
        if required:
            raise InvalidInput(f"{name} is required", errors=[{"field": name, "message": "required"}])
        return None
    try:
        return int(raw)
    except ValueError:
        raise InvalidInput(f"{name} must be a number", errors=[{"field": name, "message": "a number"}]) from None


def _settings_from(values: Mapping[str, Any], password: str | None) -> smtp_service.SmtpSettings:
    errors: list[dict[str, Any]] = []
    numbers: dict[str, int | None] = {}
    for name, required in (("port", True), ("daily_limit", False), ("per_minute_limit", False)):
        try:
            numbers[name] = _int_field(values, name, required=required)
        except InvalidInput as exc:
            errors += exc.errors
            numbers[name] = None
    if errors:
        raise InvalidInput("invalid numbers", errors=errors)
    preset = values.get("preset") or "custom"
    return smtp_service.SmtpSettings(
        host=values["host"],
        port=numbers["port"] or 0,
        security=values["security"],
        username=values["username"] or None,
        password=password or None,
        from_email=values["from_email"],
        from_name=values["from_name"] or None,
        preset=preset if preset in PRESETS else "custom",
        reply_to=values["reply_to"] or None,
        verify_tls=bool(values["verify_tls"]),
        daily_limit=numbers["daily_limit"],
        per_minute_limit=numbers["per_minute_limit"],
        fallback_to_default=bool(values["fallback_to_default"]),
    )


def _stored_smtp(web: Web) -> dict[str, Any] | None:
    try:
        return smtp_service.public(web.ctx, tenant=web.tn)
    except NotFound:
        return None


def _initial_values(web: Web, stored: dict[str, Any] | None) -> dict[str, Any]:
    requested = web.request.query_params.get("preset")
    values: dict[str, Any]
    if stored and not requested:
        values = {name: "" if stored.get(name) is None else str(stored[name]) for name in SMTP_TEXT_FIELDS}
        values["verify_tls"] = bool(stored["verify_tls"])
        values["fallback_to_default"] = bool(stored["fallback_to_default"])
        quota = stored.get("quota") or {}
        values["daily_limit"] = str(quota.get("daily_limit") or "")
        values["per_minute_limit"] = str(quota.get("per_minute_limit") or "")
    else:
        preset = PRESETS.get(requested or "") or PRESETS["gmail"]
        rec = preset.recommended
        values = dict.fromkeys(SMTP_TEXT_FIELDS, "")
        values.update(
            preset=preset.id,
            host=preset.host or "",
            port=str(rec.port) if rec else "",
            security=rec.security if rec else "starttls",
            verify_tls=True,
            fallback_to_default=False,
        )
        if stored:  # a preset was applied over saved settings: keep the identity fields
            for name in ("username", "from_email", "from_name", "reply_to"):
                values[name] = "" if stored.get(name) is None else str(stored[name])
    values["to"] = web.user.email if web.user and web.user.tenant_id else ""
    values["activate"] = web.tn.mode != SenderMode.SMTP.value
    return values


def _preset_views(t: Translator) -> list[dict[str, Any]]:
    out = []
    for p in PRESETS.values():
        rec = p.recommended
        out.append({
            "id": p.id,
            "name": t("smtp.preset.custom") if p.id == "custom" else p.name,
            "host": p.host or "",
            "port": rec.port if rec else "",
            "security": rec.security if rec else "",
            "steps": p.steps.get(t.lang) or p.steps.get("en") or [],
            "docs_url": p.docs_url,
            "username_hint": t.pick(p.username_hint.as_dict()),
            "daily_limit": p.daily_limit,
            "per_minute_limit": p.per_minute_limit,
        })
    return out


def _smtp_page(web: Web, *, status: int = 200, values: dict[str, Any] | None = None, result: dict[str, Any] | None
               = None, proof: str | None = None, sealed: str | None = None, errors: dict[str, str] | None = None,
               error: str | None = None) -> Response:
    if not web.ctx.plans.has(web.tn.plan, Feature.SMTP):
        return web.render("smtp.html", status=403 if status == 200 else status, gated=plan_note(web, Feature.SMTP),
                          stored=None, values={}, presets=[], result=None, proof=None, sealed=None, errors={},
                          error=None, notice=None, failing=None, paused=None, presets_json="{}")
    stored = _stored_smtp(web)
    values = values if values is not None else _initial_values(web, stored)
    presets = _preset_views(web.t)
    failing = None
    paused = None
    if stored:
        last = stored.get("last_error") or {}
        if stored["status"] == SmtpStatus.FAILING.value:
            failing = {"remedy": web.t.pick(last.get("remedy")), "category": last.get("category"),
                       "fallback": bool(stored["fallback_to_default"])}
        if stored["quota"].get("paused_until"):
            until = datetime.fromisoformat(stored["quota"]["paused_until"].replace("Z", "+00:00"))
            paused = {"until": web.local_time(until), "remedy": web.t.pick(last.get("remedy"))}
    presets_json = json.dumps({p["id"]: {k: p[k] for k in ("host", "port", "security")} for p in presets})
    presets_json = presets_json.replace("<", "\\u003c")  # safe inside <script>
    return web.render(
        "smtp.html", status=status, gated=None, stored=stored, values=values, presets=presets, result=result,
        proof=proof, sealed=sealed, errors=errors or {}, error=error, notice=_notice(web), failing=failing,
        paused=paused, presets_json=presets_json,
    )


def _result_view(web: Web, result: dict[str, Any], to: str) -> dict[str, Any]:
    t = web.t
    suggested = result.get("suggested") or None
    suggestion = None
    if suggested and suggested.get("port") and suggested.get("security"):
        suggestion = t("result.suggested", port=suggested["port"],
                       security=t(f"smtp.security.{suggested['security']}"))
    reply = result.get("reply") or None
    return {
        "ok": bool(result.get("ok")),
        "to": to,
        "steps": [
            {"label": t(f"step.{s['name']}") if s["name"] in STEPS else s["name"], "ok": s["ok"], "ms": s["ms"],
             "detail": s.get("detail") or ""}
            for s in result.get("steps", [])
        ],
        "category": result.get("category"),
        "summary": t.pick(result.get("summary")),
        "remedy": t.pick(result.get("remedy")),
        "suggestion": suggestion,
        "reply": f"{reply.get('code') or ''} {reply.get('text') or ''}".strip() if reply else None,
        "warnings": [t.pick(w) for w in result.get("warnings", [])],
        "message_id": result.get("message_id"),
    }


@router.get("/t/{tenant_id}/settings/email/smtp")
def smtp_page(web: TenantDep) -> Response:
    return _smtp_page(web)


@router.post("/t/{tenant_id}/settings/email/smtp/test")
async def smtp_test(web: TenantDep) -> Response:
    form = await web.form()
    web.require_editor()
    values = _form_values(form)
    typed = str(form.get("password") or "")
    password = typed or _unseal(web, str(form.get("password_sealed") or "")) or None
    json_wanted = wants_json(web.request)
    try:
        settings = _settings_from(values, password)
        result = await run_in_threadpool(smtp_service.run_test, web.ctx, tenant=web.tn, settings=settings,
                                         to=values["to"])
    except PlanRequired:
        return _smtp_page(web, status=403)
    except RateLimited as exc:
        message = web.t("smtp.test_rate_limited", limit=smtp_service.TEST_LIMIT.limit, wait=web.t.wait(exc.retry_after))
        headers = {"Retry-After": str(exc.retry_after)}
        if json_wanted:
            html = _env.get_template("_smtp_errors.html").render(t=web.t, message=message, errors={})
            return web.finish(JSONResponse({"ok": False, "proof": None, "html": html, "fields": {}},
                                           status_code=429, headers=headers))
        page = _smtp_page(web, status=429, values=values, error=message,
                          sealed=str(form.get("password_sealed") or "") or None)
        page.headers.update(headers)
        return page
    except InvalidInput as exc:
        errors = field_errors(web.t, exc)
        if json_wanted:
            html = _env.get_template("_smtp_errors.html").render(t=web.t, message=web.t("smtp.invalid"),
                                                                  errors=errors)
            return web.finish(JSONResponse({"ok": False, "proof": None, "html": html, "fields": errors},
                                           status_code=422))
        return _smtp_page(web, status=422, values=values, errors=errors, error=web.t("smtp.invalid"),
                          sealed=str(form.get("password_sealed") or "") or None)
    view = _result_view(web, result, values["to"])
    if json_wanted:
        html = _env.get_template("_smtp_result.html").render(t=web.t, web=web, r=view)
        return web.finish(JSONResponse({"ok": view["ok"], "proof": result.get("proof"), "html": html,
                                        "fields": {}}))
    sealed = _seal(web, typed) if typed and result.get("ok") else (str(form.get("password_sealed") or "") or None)
    return _smtp_page(web, values=values, result=view, proof=result.get("proof"), sealed=sealed)


@router.post("/t/{tenant_id}/settings/email/smtp/save")
async def smtp_save(web: TenantDep) -> Response:
    form = await web.form()
    web.require_editor()
    values = _form_values(form)
    sealed = str(form.get("password_sealed") or "") or None
    password = str(form.get("password") or "") or (_unseal(web, sealed) if sealed else None)
    try:
        settings = _settings_from(values, password)
        await run_in_threadpool(smtp_service.save, web.ctx, tenant=web.tn, settings=settings,
                                proof=str(form.get("proof") or "") or None)
        if values["activate"]:
            await run_in_threadpool(sender_settings.set_mode, web.ctx, tenant=web.tn, mode=SenderMode.SMTP.value)
    except PlanRequired:
        return _smtp_page(web, status=403)
    except InvalidInput as exc:
        return _smtp_page(web, status=422, values=values, errors=field_errors(web.t, exc),
                          error=web.t("smtp.invalid"), sealed=sealed)
    except Conflict:
        return _smtp_page(web, status=409, values=values, error=web.t("smtp.save_refused"), sealed=sealed)
    notice = "smtp_saved_active" if values["activate"] else "smtp_saved"
    return web.redirect(web.url("/settings/email/smtp", notice=notice))


@router.post("/t/{tenant_id}/settings/email/smtp/remove")
async def smtp_remove(web: TenantDep) -> Response:
    await web.form()
    web.require_editor()
    with contextlib.suppress(NotFound):
        await run_in_threadpool(smtp_service.remove, web.ctx, tenant=web.tn)
    return web.redirect(web.url("/settings/email", notice="smtp_removed"))


# --- email logs -------------------------------------------------------------------------------------------------

LOG_FILTERS = ("status", "to", "event", "kind", "since", "until")


def _parse_day(value: str, tz: str | None, t: Translator, errors: list[str]) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        errors.append(t("logs.bad_date", value=value[:40]))
        return None


@router.get("/t/{tenant_id}/logs")
def logs_page(web: TenantDep) -> Response:
    q = web.request.query_params
    raw = {name: (q.get(name) or "").strip()[:254] for name in LOG_FILTERS}
    errors: list[str] = []
    tzinfo = charts.zone(web.tn.timezone)
    since_day = _parse_day(raw["since"], web.tn.timezone, web.t, errors)
    until_day = _parse_day(raw["until"], web.tn.timezone, web.t, errors)
    since = datetime.combine(since_day, dtime(0), tzinfo).astimezone(UTC) if since_day else None
    # The end date is inclusive: up to the start of the next day.
    until = datetime.combine(until_day + timedelta(days=1), dtime(0), tzinfo).astimezone(UTC) if until_day else None
    if since_day and until_day and since_day > until_day:
        errors.append(web.t("logs.bad_range"))
    flt = maillog.LogFilter(
        status=raw["status"] if raw["status"] in set(MessageStatus) else None,
        to=raw["to"] or None,
        kind=raw["kind"] if raw["kind"] in set(MessageKind) else None,
        event=raw["event"] or None,
        since=since,
        until=until,
    )
    cursor = q.get("cursor") or None
    messages: list[Any] = []
    next_cursor = None
    if not errors:
        try:
            page = maillog.list_messages(web.ctx, tenant_id=web.tn.id, flt=flt, cursor=cursor, limit=50)
            messages, next_cursor = page.messages, page.next_cursor
        except InvalidInput as exc:
            errors.append(web.t("logs.bad_filter", detail=", ".join(str(e.get("field")) for e in exc.errors)))
    days = charts.daily_counts(web.ctx, tenant_id=web.tn.id, tz=web.tn.timezone)
    events = _known_events()
    return web.render(
        "logs.html", messages=messages, filters=raw, errors=errors, chart=charts.svg(days, web.t),
        next_url=web.url("/logs", cursor=next_cursor, **raw) if next_cursor else None,
        newest_url=web.url("/logs", **raw) if cursor else None, events=events,
        statuses=list(MessageStatus), kinds=list(MessageKind), filtered=any(raw.values()),
    )


def _known_events() -> list[str]:
    return sorted(EVENTS)


@router.get("/t/{tenant_id}/logs/{message_id}")
def log_detail(message_id: str, web: TenantDep) -> Response:
    try:
        msg = maillog.get_message(web.ctx, tenant_id=web.tn.id, message_id=message_id)
    except NotFound:
        raise PageError(404, "error.no_message", title="error.not_found_title", id=message_id[:40]) from None
    return web.render("log_detail.html", m=msg, remedy=web.t.pick(msg.remedy))



# --- email authentication (branded sender) ---------------------------------------------------------------------


def _auth_page(web: Web, *, status: int = 200, notice: str | None = None, error: str | None = None,
               errors: dict[str, str] | None = None, values: dict[str, str] | None = None,
               warnings: list[str] | None = None, domain_value: str = "", domain_error: str | None = None
               ) -> Response:
    if not web.ctx.plans.has(web.tn.plan, Feature.BRANDED):
        return web.render("authentication.html", status=403 if status == 200 else status,
                          gated=plan_note(web, Feature.BRANDED), info=None, b=None, notice=None, error=None,
                          errors={}, values={}, warnings=[], times={}, dom=None)
    info = sender_settings.describe(web.ctx, tenant=web.tn)
    b = info.get("branded") or {}
    tz = web.tn.timezone

    def when(iso_value: str | None) -> str:
        if not iso_value:
            return ""
        return branded_service.format_time(datetime.fromisoformat(iso_value.replace("Z", "+00:00")), tz, web.lang)

    pending = b.get("pending") or None
    times = {
        "verified_at": when(b.get("verified_at")),
        "sent_at": when(pending["sent_at"]) if pending else "",
        "expires_at": when(pending["expires_at"]) if pending else "",
        "resend_at": when(b.get("resend_available_at")),
    }
    return web.render(
        "authentication.html", status=status, gated=None, info=info, b=b, notice=notice or _notice(web),
        error=error, errors=errors or {}, values=values or {"email": "", "name": ""},
        warnings=(warnings or []) + ([web.t.pick(b["warning"])] if b.get("warning") else []), times=times,
        dom=_domains_view(web, when, value=domain_value, error=domain_error),
    )


def _domains_view(web: Web, when: Any, *, value: str, error: str | None) -> dict[str, Any]:
    """The "Sending domains" section: the upgrade note on plans without custom domains, else each domain with
    its records (advice in the UI's language) and the add form's value and error."""
    if not web.ctx.plans.has(web.tn.plan, Feature.DOMAINS):
        return {"gated": plan_note(web, Feature.DOMAINS), "domains": [], "value": "", "error": None}
    items = []
    for d in domain_service.list_domains(web.ctx, tenant=web.tn):
        records = [dict(r, advice=web.t.pick(r.get("advice"))) for r in d["records"]]
        items.append(dict(d, records=records, added=when(d["created_at"]), checked=when(d["checked_at"]),
                          verified=when(d["verified_at"]), anchor=_domain_anchor(d["domain"])))
    return {"gated": None, "domains": items, "value": value, "error": error}


def _domain_anchor(domain: str) -> str:
    return "domain-" + domain.replace(".", "-")


def _branded_error(web: Web, exc: LetterheadError) -> tuple[str, dict[str, str]]:
    if isinstance(exc, RateLimited):
        return web.t("auth.rate_limited", wait=web.t.wait(exc.retry_after)), {}
    if isinstance(exc, InvalidInput):
        if "does not exist" in exc.detail:
            domain = exc.detail.split("The domain ", 1)[-1].split(" does not exist", 1)[0]
            return web.t("auth.invalid"), {"email": web.t("auth.no_domain", domain=domain)}
        return web.t("auth.invalid"), field_errors(web.t, exc)
    if isinstance(exc, Conflict):
        return web.t("auth.no_pending"), {}
    return web.t("error.server"), {}


@router.get("/t/{tenant_id}/settings/email/authentication")
def authentication_page(web: TenantDep) -> Response:
    return _auth_page(web)


@router.post("/t/{tenant_id}/settings/email/authentication/send")
async def authentication_send(web: TenantDep) -> Response:
    form = await web.form()
    web.require_editor()
    values = {"email": str(form.get("email") or "").strip(), "name": str(form.get("name") or "").strip()}
    try:
        out = await run_in_threadpool(branded_service.request_verification, web.ctx, tenant=web.tn,
                                      email=values["email"], name=values["name"] or None)
    except PlanRequired:
        return _auth_page(web, status=403)
    except (InvalidInput, RateLimited, Conflict) as exc:
        error, errors = _branded_error(web, exc)
        return _auth_page(web, status=429 if isinstance(exc, RateLimited) else 422, error=error, errors=errors,
                          values=values)
    key = "sender_name_updated" if out.get("status") == "verified" else "verification_sent"
    warnings = [web.t.pick(w) for w in out.get("warnings") or []]
    if warnings:
        return _auth_page(web, notice=web.t(f"notice.{key}"), warnings=warnings)
    return web.redirect(web.url("/settings/email/authentication", notice=key))


@router.post("/t/{tenant_id}/settings/email/authentication/resend")
async def authentication_resend(web: TenantDep) -> Response:
    await web.form()
    web.require_editor()
    try:
        await run_in_threadpool(branded_service.resend_verification, web.ctx, tenant=web.tn)
    except PlanRequired:
        return _auth_page(web, status=403)
    except (RateLimited, Conflict) as exc:
        error, _ = _branded_error(web, exc)
        return _auth_page(web, status=429 if isinstance(exc, RateLimited) else 409, error=error)
    return web.redirect(web.url("/settings/email/authentication", notice="verification_resent"))


# --- sending domains (DKIM) -------------------------------------------------------------------------------------

AUTH_PATH = "/settings/email/authentication"
_DOMAIN_ERRORS = {  # the service's stable InvalidInput messages (senders/domains.py) → catalogue keys
    "required": "dom.err.required",
    "an address, not a domain": "dom.err.address",
    "a URL, not a domain": "dom.err.url",
    "trailing dot": "dom.err.trailing_dot",
    "contains spaces": "dom.err.spaces",
    "not a valid internationalised domain": "dom.err.idn",
    "longer than 253 characters": "dom.err.too_long",
    "needs at least two labels": "dom.err.two_labels",
    "invalid label": "dom.err.label",
    "an IP address, not a domain": "dom.err.ip",
    "a public suffix": "dom.err.public_suffix",
    "the platform's own domain": "dom.err.platform",
}


def _domain_field_error(web: Web, exc: InvalidInput, typed: str) -> str:
    message = str((exc.errors[0] if exc.errors else {}).get("message") or "")
    key = _DOMAIN_ERRORS.get(message)
    if key is None:
        return web.t("field.other", message=exc.detail)
    text = typed.strip()
    try:
        shown = domain_service.normalize_domain(text)
    except InvalidInput:
        shown = text.rstrip(".")
    if key == "dom.err.address":
        shown = text.rpartition("@")[2] or "example.com"
    label = exc.detail.split("'")[1] if exc.detail.count("'") >= 2 else text
    return web.t(key, domain=shown, label=label, platform=web.platform)


def _domain_redirect(web: Web, notice: str, domain: str, *, anchor: bool = True) -> Response:
    url = web.url(AUTH_PATH, notice=notice, domain=domain)
    return web.redirect(url + ("#" + _domain_anchor(domain) if anchor else "#domains"))


@router.post("/t/{tenant_id}/settings/email/authentication/domains")
async def domain_add(web: TenantDep) -> Response:
    form = await web.form()
    web.require_editor()
    typed = str(form.get("domain") or "")[:1000]
    try:
        out = await run_in_threadpool(domain_service.add_domain, web.ctx, tenant=web.tn, domain=typed)
    except PlanRequired:
        return _auth_page(web, status=403)
    except InvalidInput as exc:
        return _auth_page(web, status=422, error=web.t("dom.invalid"), domain_value=typed,
                          domain_error=_domain_field_error(web, exc, typed))
    except Conflict as exc:
        domain = str(exc.extra.get("domain") or typed.strip())
        key = "dom.exists" if "already" in exc.detail else "dom.busy"
        message = web.t(key, domain=domain)
        return _auth_page(web, status=409, error=message, domain_value=typed, domain_error=message)
    except ConfigurationError as exc:
        return _auth_page(web, status=500, error=web.t("error.config", detail=exc.detail), domain_value=typed)
    return _domain_redirect(web, "domain_added", out["domain"])


@router.post("/t/{tenant_id}/settings/email/authentication/domains/{domain}/check")
async def domain_check(domain: str, web: TenantDep) -> Response:
    await web.form()
    web.require_editor()
    try:
        out = await run_in_threadpool(domain_service.check_domain, web.ctx, tenant=web.tn, domain=domain)
    except PlanRequired:
        return _auth_page(web, status=403)
    except NotFound:
        return _auth_page(web, status=404, error=web.t("dom.not_found", domain=domain[:253]))
    except DnsUnavailable as exc:
        name = str(exc.extra.get("name") or domain)
        return _auth_page(web, status=503, error=web.t("dom.dns_unavailable", name=name, domain=domain[:253]))
    notice = "domain_verified" if out["status"] == "verified" else "domain_checked"
    return _domain_redirect(web, notice, out["domain"])


@router.post("/t/{tenant_id}/settings/email/authentication/domains/{domain}/delete")
async def domain_delete(domain: str, web: TenantDep) -> Response:
    form = await web.form()
    web.require_editor()
    if form.get("confirm") != "1":
        return _auth_page(web, status=422, error=web.t("dom.delete_unconfirmed", domain=domain[:253]))
    try:
        await run_in_threadpool(domain_service.delete_domain, web.ctx, tenant=web.tn, domain=domain)
    except PlanRequired:
        return _auth_page(web, status=403)
    except NotFound:
        return _auth_page(web, status=404, error=web.t("dom.not_found", domain=domain[:253]))
    return _domain_redirect(web, "domain_deleted", domain[:253], anchor=False)


# --- notifications ----------------------------------------------------------------------------------------------


def _event_or_404(event: str) -> Event:
    try:
        return get_event(event)
    except (NotFound, InvalidInput):
        raise PageError(404, "error.no_event", title="error.not_found_title", event=event[:64]) from None


def _locale_param(web: Web, value: object) -> str:
    return value if isinstance(value, str) and value in LANGS else web.lang


def _template_error(web: Web, exc: InvalidInput) -> str:
    line = exc.errors[0].get("line") if exc.errors else None
    where = web.t("notif.line", line=line) if line else ""
    return web.t("notif.template_error", where=where, message=exc.detail)


@router.get("/t/{tenant_id}/notifications")
def notifications_page(web: TenantDep) -> Response:
    events = notification_service.list_events(web.ctx, tenant=web.tn, locale=web.lang)
    return web.render("notifications.html", events=events, notice=_notice(web), error=None)


@router.post("/t/{tenant_id}/notifications/{event}/enabled")
async def notification_switch(event: str, web: TenantDep) -> Response:
    form = await web.form()
    web.require_editor()
    _event_or_404(event)
    enabled = form.get("enabled") == "1"
    await run_in_threadpool(notification_service.set_enabled, web.ctx, tenant=web.tn, event=event, enabled=enabled)
    return web.redirect(web.url("/notifications", notice="event_switched") + f"#ev-{quote(event)}")


def _editor(web: Web, event: str, locale: str, *, status: int = 200, source: dict[str, Any] | None = None,
            error: str | None = None, notice: str | None = None) -> Response:
    ev = _event_or_404(event)
    stored = notification_service.get_template(web.ctx, tenant=web.tn, event=event, locale=locale)
    source = source or {"subject": stored["subject"], "html": stored["html"], "text": stored["text"] or ""}
    preview: dict[str, Any] | None = None
    if error is None:
        try:
            preview = notification_service.preview(web.ctx, tenant=web.tn, event=event, locale=locale,
                                                   subject=source["subject"], html=source["html"],
                                                   text=source["text"] or None)
        except InvalidInput as exc:
            error = _template_error(web, exc)
    enabled = next((e["enabled"] for e in notification_service.list_events(web.ctx, tenant=web.tn)
                    if e["name"] == event), True)
    return web.render(
        "notification_editor.html", status=status, event=ev, locale=locale, source=source, preview=preview,
        customized=stored["customized"], enabled=enabled, error=error, notice=notice or _notice(web),
        example=json.dumps(ev.example, ensure_ascii=False, indent=2),
        description=ev.description_ja if web.lang == "ja" else ev.description,
    )


@router.get("/t/{tenant_id}/notifications/{event}")
def notification_editor(event: str, web: TenantDep, locale: str | None = None) -> Response:
    return _editor(web, event, _locale_param(web, locale or web.tn.locale))


def _source_from(form: FormData) -> dict[str, Any]:
    return {name: str(form.get(name) or "") for name in ("subject", "html", "text")}


@router.post("/t/{tenant_id}/notifications/{event}/preview")
async def notification_preview(event: str, web: TenantDep) -> Response:
    form = await web.form()
    _event_or_404(event)
    locale = _locale_param(web, form.get("locale"))
    source = _source_from(form)
    if not wants_json(web.request):
        return _editor(web, event, locale, source=source)
    try:
        out = await run_in_threadpool(notification_service.preview, web.ctx, tenant=web.tn, event=event,
                                      locale=locale, subject=source["subject"], html=source["html"],
                                      text=source["text"] or None)
    except InvalidInput as exc:
        return web.finish(JSONResponse({"ok": False, "error": _template_error(web, exc)}, status_code=422))
    return web.finish(JSONResponse({"ok": True, "subject": out["subject"], "html": out["html"]}))


@router.post("/t/{tenant_id}/notifications/{event}/save")
async def notification_save(event: str, web: TenantDep) -> Response:
    form = await web.form()
    web.require_editor()
    _event_or_404(event)
    locale = _locale_param(web, form.get("locale"))
    source = _source_from(form)
    try:
        await run_in_threadpool(notification_service.save_template, web.ctx, tenant=web.tn, event=event,
                                locale=locale, subject=source["subject"], html=source["html"],
                                text=source["text"] or None)
    except InvalidInput as exc:
        return _editor(web, event, locale, status=422, source=source, error=_template_error(web, exc))
    return web.redirect(web.url(f"/notifications/{quote(event)}", locale=locale, notice="template_saved"))


@router.post("/t/{tenant_id}/notifications/{event}/revert")
async def notification_revert(event: str, web: TenantDep) -> Response:
    form = await web.form()
    web.require_editor()
    _event_or_404(event)
    locale = _locale_param(web, form.get("locale"))
    await run_in_threadpool(notification_service.revert_template, web.ctx, tenant=web.tn, event=event,
                            locale=locale)
    return web.redirect(web.url(f"/notifications/{quote(event)}", locale=locale, notice="template_reverted"))
