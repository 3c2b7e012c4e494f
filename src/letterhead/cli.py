"""The ``letterhead`` command line."""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from letterhead import shutdown
from letterhead.errors import LetterheadError
from letterhead.settings import require_platform_transport

if TYPE_CHECKING:
    from letterhead.context import Context

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Letterhead: tenant-branded notification email.")
db_app = typer.Typer(no_args_is_help=True, help="Database schema.")
tenant_app = typer.Typer(no_args_is_help=True, help="Tenants.")
apikey_app = typer.Typer(no_args_is_help=True, help="API keys.")
keys_app = typer.Typer(no_args_is_help=True, help="Secret and encryption keys.")
smtp_app = typer.Typer(no_args_is_help=True, help="Tenant SMTP servers.")
app.add_typer(db_app, name="db")
app.add_typer(tenant_app, name="tenant")
app.add_typer(apikey_app, name="apikey")
app.add_typer(keys_app, name="keys")
app.add_typer(smtp_app, name="smtp")
user_app = typer.Typer(no_args_is_help=True, help="People who sign in to the web UI.")
app.add_typer(user_app, name="user")

out = Console()
err = Console(stderr=True)


def _ctx() -> Context:
    from letterhead.context import Context

    return Context.create()


def _fail(exc: LetterheadError, code: int = 1) -> typer.Exit:
    err.print(f"[red]error:[/red] {exc.detail}")
    errors = getattr(exc, "errors", None)
    for e in errors or []:
        err.print(f"  - {e.get('field')}: {e.get('message')}")
    return typer.Exit(code)


def _logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # aiosmtpd (the development inbox) logs every connection at INFO: keep the console readable.
    logging.getLogger("mail.log").setLevel(logging.WARNING)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on (default 127.0.0.1)")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default 8025)")] = None,
    no_worker: Annotated[bool, typer.Option("--no-worker", help="API and UI only; run workers separately")] = False,
) -> None:
    """API + web UI + delivery worker (+ the development inbox when no platform SMTP is set), one process."""
    shutdown.catch_early()
    from letterhead.server import run as run_loop
    from letterhead.server import serve as run

    _logging()
    try:
        ctx = _ctx()
        require_platform_transport(ctx.settings)
    except LetterheadError as exc:
        raise _fail(exc) from None
    h, p = host or ctx.settings.host, port or ctx.settings.port
    out.print(f"Letterhead on [bold]http://{h}:{p}[/bold]  (database: {ctx.db.engine.url.render_as_string()})")
    run_loop(run(ctx, host=h, port=p, with_worker=not no_worker))


@app.command()
def worker() -> None:
    """A delivery worker (run as many as you like against PostgreSQL)."""
    shutdown.catch_early()
    from letterhead.server import run, run_worker

    _logging()
    try:
        ctx = _ctx()
        require_platform_transport(ctx.settings)
    except LetterheadError as exc:
        raise _fail(exc) from None
    run(run_worker(ctx))


@db_app.command("upgrade")
def db_upgrade(revision: str = "head") -> None:
    """Apply schema migrations."""
    from letterhead import migrate

    ctx = _ctx()
    migrate.upgrade(ctx.db.engine, revision)
    out.print(f"database at {revision}: {ctx.db.engine.url.render_as_string()}")


@tenant_app.command("create")
def tenant_create(
    tenant_id: Annotated[str, typer.Argument(help="Slug, e.g. acme")],
    name: Annotated[str, typer.Option(help="Display name, e.g. 'ACME 株式会社'")],
    plan: Annotated[str, typer.Option(help="free, pro or enterprise")] = "free",
    locale: Annotated[str, typer.Option(help="ja or en")] = "ja",
    contact_email: Annotated[str | None, typer.Option(help="Reply-To for default-sender mail")] = None,
) -> None:
    """Create a tenant."""
    from letterhead import migrate
    from letterhead.tenants import create_tenant

    ctx = _ctx()
    migrate.upgrade(ctx.db.engine)
    try:
        t = create_tenant(ctx, tenant_id=tenant_id, name=name, plan=plan, locale=locale, contact_email=contact_email)
    except LetterheadError as exc:
        raise _fail(exc) from None
    out.print(f"created tenant [bold]{t.id}[/bold] ({t.name}, plan {t.plan}, locale {t.locale})")


@apikey_app.command("create")
def apikey_create(
    tenant: Annotated[str | None, typer.Option(help="Tenant the key is for")] = None,
    platform: Annotated[bool, typer.Option("--platform", help="A platform-scoped key (all tenants)")] = False,
    name: Annotated[str | None, typer.Option(help="A label for the key")] = None,
) -> None:
    """Create an API key; the key is printed once, alone on the last line."""
    from letterhead import migrate
    from letterhead.tenants import create_api_key

    if bool(tenant) == platform:
        err.print("error: give either --tenant T or --platform")
        raise typer.Exit(2)
    ctx = _ctx()
    migrate.upgrade(ctx.db.engine)
    try:
        created = create_api_key(ctx, tenant_id=tenant, name=name)
    except LetterheadError as exc:
        raise _fail(exc) from None
    scope = "platform" if platform else f"tenant {tenant}"
    err.print(f"API key {created.id} ({scope}). Store it now: it is not shown again.")
    print(created.key)


@apikey_app.command("list")
def apikey_list(
    tenant: Annotated[str | None, typer.Option(help="Only this tenant's keys")] = None,
    platform: Annotated[bool, typer.Option("--platform", help="Only platform keys")] = False,
) -> None:
    """List API keys (id, name, prefix, scope, created, last used, revoked); never a secret."""
    from datetime import datetime

    from rich.table import Table

    from letterhead import migrate
    from letterhead.tenants import get_tenant, list_api_keys

    if tenant and platform:
        err.print("error: give --tenant T or --platform, not both")
        raise typer.Exit(2)
    ctx = _ctx()
    migrate.upgrade(ctx.db.engine)
    if tenant:
        try:
            with ctx.db.session() as s:
                get_tenant(s, tenant)
        except LetterheadError as exc:
            raise _fail(exc) from None
    keys = list_api_keys(ctx, tenant_id=tenant, platform=platform)
    if not keys:
        out.print("no API keys")
        return
    table = Table("id", "name", "prefix", "scope", "tenant", "created", "last used", "revoked")

    def when(value: datetime | None) -> str:
        return value.strftime("%Y-%m-%d %H:%M UTC") if value else "-"

    for k in keys:
        table.add_row(k.id, k.name or "", f"lh_{k.prefix}_…", k.scope, k.tenant_id or "-", when(k.created_at),
                      when(k.last_used_at), when(k.revoked_at))
    out.print(table)


@apikey_app.command("revoke")
def apikey_revoke(key_id: Annotated[str, typer.Argument(help="The key's id (key_…), from 'letterhead apikey list'")]) -> None:
    """Revoke an API key: every API process refuses it within a second."""
    from letterhead import migrate
    from letterhead.tenants import revoke_api_key

    ctx = _ctx()
    migrate.upgrade(ctx.db.engine)
    try:
        k = revoke_api_key(ctx, key_id=key_id)
    except LetterheadError as exc:
        raise _fail(exc) from None
    scope = "platform" if k.tenant_id is None else f"tenant {k.tenant_id}"
    label = f" '{k.name}'" if k.name else ""
    out.print(f"revoked API key {k.id}{label} (lh_{k.prefix}_…, {scope}); it stops working within a second")


def _suspend(tenant_id: str, suspended: bool) -> None:
    from letterhead import migrate
    from letterhead.tenants import set_suspended

    ctx = _ctx()
    migrate.upgrade(ctx.db.engine)
    try:
        t = set_suspended(ctx, tenant_id=tenant_id, suspended=suspended)
    except LetterheadError as exc:
        raise _fail(exc) from None
    if suspended:
        out.print(f"suspended tenant [bold]{t.id}[/bold]: its API calls answer 403 and its mail is held until "
                  f"'letterhead tenant resume {t.id}'")
    else:
        out.print(f"resumed tenant [bold]{t.id}[/bold]: its API works again and its held mail goes out now")


@tenant_app.command("suspend")
def tenant_suspend(tenant_id: Annotated[str, typer.Argument(help="The tenant's slug")]) -> None:
    """Suspend a tenant: API 403 (problem+json), web UI read-only with a banner, mail held (not lost)."""
    _suspend(tenant_id, True)


@tenant_app.command("resume")
def tenant_resume(tenant_id: Annotated[str, typer.Argument(help="The tenant's slug")]) -> None:
    """Resume a suspended tenant: the API works again and its held mail is sent."""
    _suspend(tenant_id, False)


@keys_app.command("generate")
def keys_generate() -> None:
    """Print a fresh LETTERHEAD_SECRET_KEY and LETTERHEAD_ENCRYPTION_KEYS for production."""
    from letterhead.settings import generate_keys

    k = generate_keys()  # the encryption key alone is what a rotation prepends to LETTERHEAD_ENCRYPTION_KEYS
    print(f"LETTERHEAD_SECRET_KEY={k['secret_key']}")
    print(f"LETTERHEAD_ENCRYPTION_KEYS={k['encryption_key']}")


@keys_app.command("rotate")
def keys_rotate(
    new_key: Annotated[
        bool, typer.Option("--new-key", help="Development (keys in keys.json): prepend a fresh key first.")
    ] = False,
    drop_old: Annotated[
        bool,
        typer.Option("--drop-old", help="Development: afterwards keep only the newest key in keys.json."),
    ] = False,
) -> None:
    """Re-encrypt every stored secret under the first of LETTERHEAD_ENCRYPTION_KEYS (after prepending a new key
    and restarting every process); afterwards the old key can be removed."""
    from letterhead.context import Context
    from letterhead.keyrotation import rotate
    from letterhead.settings import (
        Settings,
        ensure_keys,
        generate_keys,
        keys_file,
        load_settings,
        read_keys_file,
        write_keys_file,
    )

    raw = Settings()
    in_file = raw.encryption_keys is None and raw.env != "production"
    if (new_key or drop_old) and not in_file:
        err.print(
            "[red]error:[/red] --new-key and --drop-old change the development keys.json, but the keys come from "
            "LETTERHEAD_ENCRYPTION_KEYS. Prepend a new key there instead (letterhead keys generate prints one), "
            "restart every process, run letterhead keys rotate, then remove the old key and restart again."
        )
        raise typer.Exit(2)
    if new_key:
        ensure_keys(raw)
        path = keys_file(raw)
        stored = read_keys_file(path)
        stored["encryption_key"] = f"{generate_keys()['encryption_key']},{stored['encryption_key']}"
        write_keys_file(path, stored)
        out.print(f"prepended a new encryption key to {path}")
    try:
        ctx = Context.create(load_settings())
        report = rotate(ctx)
    except LetterheadError as exc:
        raise _fail(exc) from None
    out.print("re-encrypted under the newest key: " + ", ".join(f"{k}: {n}" for k, n in report.rotated.items()))
    unreadable = {k: n for k, n in report.unreadable.items() if n}
    if unreadable:
        err.print(
            "[red]error:[/red] no configured key decrypts "
            + ", ".join(f"{k}: {n}" for k, n in unreadable.items())
            + ". Was an old key removed before rotating? Put it back (after the newest) and run this again."
        )
        raise typer.Exit(1)
    if not report.old_keys_removable:
        err.print(
            "[yellow]not yet:[/yellow] still under an older key: "
            + ", ".join(f"{k}: {n}" for k, n in report.not_newest.items() if n)
            + ". A process still runs with the old key list: restart every serve and worker with the new list, "
            "then run letterhead keys rotate again. Keep the old key until then."
        )
        raise typer.Exit(1)
    if drop_old:
        path = keys_file(raw)
        stored = read_keys_file(path)
        stored["encryption_key"] = ctx.settings.fernet_keys()[0]
        write_keys_file(path, stored)
        out.print(f"{path} now holds only the newest key: restart letterhead serve and any worker.")
    elif len(ctx.settings.fernet_keys()) > 1:
        where = "keys.json (letterhead keys rotate --drop-old)" if in_file else "LETTERHEAD_ENCRYPTION_KEYS"
        out.print(f"every stored secret is under the newest key: remove the older keys from {where}, then restart "
                  "every process.")
    ctx.close()


@app.command()
def send(
    tenant: Annotated[str, typer.Option(help="Tenant id")],
    to: Annotated[list[str], typer.Option(help="Recipient (repeatable)")],
    subject: Annotated[str, typer.Option()],
    text: Annotated[str | None, typer.Option(help="Plain-text body")] = None,
    html: Annotated[str | None, typer.Option(help="HTML body")] = None,
    wait: Annotated[float, typer.Option(help="Seconds to wait for the outcome (0: do not wait)")] = 30.0,
) -> None:
    """Queue one email from the tenant's effective sender and wait for its outcome."""
    from letterhead import migrate
    from letterhead.emails import accept_email
    from letterhead.maillog import get_message

    ctx = _ctx()
    migrate.upgrade(ctx.db.engine)
    try:
        accepted = accept_email(ctx, tenant_id=tenant, to=to, subject=subject, html=html, text=text)
    except LetterheadError as exc:
        raise _fail(exc, 2) from None
    out.print(f"queued {accepted.id}")
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        msg = get_message(ctx, tenant_id=tenant, message_id=accepted.id)
        if msg.status in ("sent", "failed", "deferred"):
            colour = {"sent": "green", "failed": "red"}.get(msg.status, "yellow")
            out.print(f"[{colour}]{msg.status}[/{colour}] {msg.last_code or ''} {msg.last_text or ''}".rstrip())
            if msg.remedy:
                out.print(f"remedy: {msg.remedy.get('en')}")
            raise typer.Exit(0 if msg.status == "sent" else 1)
        time.sleep(0.2)
    if wait:
        out.print("still queued: is a worker running? Start `letterhead serve` or `letterhead worker`.")


@app.command()
def bench(
    command: typer.Context,
    messages: Annotated[int, typer.Option(help="Messages to send")] = 20_000,
    tenants: Annotated[int, typer.Option(help="Tenants to spread them over")] = 10,
    sink_port: Annotated[int | None, typer.Option(help="Send to an already running sink on 127.0.0.1")] = None,
    sink: Annotated[str, typer.Option(help="auto (smtp-sink when installed), smtp-sink or builtin")] = "auto",
    transport_only: Annotated[
        bool, typer.Option("--transport-only", help="Only the SMTP client: pre-composed ~4 KB messages")
    ] = False,
    connections: Annotated[int, typer.Option(help="SMTP connections (--transport-only)")] = 8,
    no_pipelining: Annotated[bool, typer.Option("--no-pipelining", help="Lock-step SMTP (--transport-only)")] = False,
    postgres: Annotated[
        str | None, typer.Option(help="Run on this PostgreSQL URL, or 'auto' for a throwaway cluster")
    ] = None,
    workers: Annotated[int, typer.Option(help="`letterhead worker` processes")] = 1,
    offered_rate: Annotated[
        float | None, typer.Option(help="Accept at this many msgs/s; report enqueue→sent latency")
    ] = None,
    queued: Annotated[
        int | None, typer.Option(help="Memory: queue this many first, then sample one worker's RSS")
    ] = None,
    duration: Annotated[float, typer.Option(help="Seconds the worker runs in --queued mode")] = 30.0,
    dkim: Annotated[bool, typer.Option("--dkim", help="Every tenant sends as a verified domain: DKIM-sign each message")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object")] = False,
    api: Annotated[
        bool, typer.Option("--api", help="The HTTP API under wrk: single and batch POST …/notifications")
    ] = False,
    api_mode: Annotated[str, typer.Option(help="--api: single, batch or both")] = "both",
    api_workers: Annotated[int, typer.Option(help="--api: server processes (LETTERHEAD_API_WORKERS)")] = 1,
    batch_connections: Annotated[
        int | None, typer.Option(help="--api: wrk connections for the batch endpoint (default 4 per API process)")
    ] = None,
    threads: Annotated[int, typer.Option(help="--api: wrk threads")] = 1,
    warmup: Annotated[float, typer.Option(help="--api: seconds of warm-up before each measurement")] = 2.0,
    delivery: Annotated[
        str, typer.Option(help="--api: none (serve --no-worker) or sink (in-process worker to a local sink)")
    ] = "none",
) -> None:
    """Measure the real pipeline (notifications accepted → rendered → sent → recorded) against a local sink.

    With --api: a real `letterhead serve` under wrk (--duration seconds per endpoint, default 10; --connections
    wrk connections for the single POST, default 32)."""
    if api:
        # --connections and --duration keep their defaults for the other modes; --api has its own when not given.
        given = {n for n in ("connections", "duration")
                 if getattr(command.get_parameter_source(n), "name", "DEFAULT") != "DEFAULT"}
        _bench_api(
            as_json=as_json, api_mode=api_mode, api_workers=api_workers,
            batch_connections=batch_connections, threads=threads, warmup=warmup, delivery=delivery,
            duration=duration if "duration" in given else 10.0,
            connections=connections if "connections" in given else None,
        )
        return
    from letterhead.bench import run_bench

    result = run_bench(
        messages=messages,
        tenants=tenants,
        sink_port=sink_port,
        sink=sink,
        transport_only=transport_only,
        connections=connections,
        pipelining=not no_pipelining,
        postgres=postgres,
        workers=workers,
        offered_rate=offered_rate,
        queued=queued,
        duration=duration,
        dkim=dkim,
        progress=None if as_json else err,
    )
    if as_json:
        print(json.dumps(result, ensure_ascii=False))
    else:
        for k, v in result.items():
            out.print(f"{k:>24}: {v}", highlight=False)
    if not result.get("ok"):
        raise typer.Exit(1)


def _bench_api(*, as_json: bool, api_mode: str, api_workers: int, connections: int | None,
               batch_connections: int | None, threads: int, warmup: float, delivery: str, duration: float) -> None:
    from letterhead.benchapi import WrkMissing, run_bench_api

    modes = ("single", "batch") if api_mode == "both" else (api_mode,)
    try:
        result = run_bench_api(
            modes=modes,
            duration=duration,
            warmup=warmup,
            connections=connections,
            batch_connections=batch_connections,
            threads=threads,
            api_workers=api_workers,
            delivery=delivery,
            progress=None if as_json else err,
        )
    except WrkMissing as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    except ValueError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    if as_json:
        print(json.dumps(result, ensure_ascii=False))
    else:
        for k, v in result.items():
            out.print(f"{k:>24}: {v}", highlight=False)
    if not result.get("ok"):
        raise typer.Exit(1)


@smtp_app.command("test")
def smtp_test(
    host: Annotated[str | None, typer.Option(help="SMTP server, e.g. smtp.gmail.com (default: the preset's)")] = None,
    port: Annotated[int | None, typer.Option(help="465 (ssl) or 587 (starttls); default: the preset's")] = None,
    security: Annotated[str | None, typer.Option(help="ssl, starttls or none")] = None,
    username: Annotated[str | None, typer.Option(help="Login (usually the full address)")] = None,
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Read the password from stdin")] = False,
    from_: Annotated[str | None, typer.Option("--from", help="From address")] = None,
    from_name: Annotated[str | None, typer.Option(help="From display name")] = None,
    to: Annotated[str | None, typer.Option(help="Where the test email goes")] = None,
    preset: Annotated[str, typer.Option(help="gmail, microsoft365, ... or custom")] = "custom",
    locale: Annotated[str, typer.Option(help="Language of the test email and remedy (ja/en)")] = "en",
    as_json: Annotated[bool, typer.Option("--json", help="Print the API's result object")] = False,
) -> None:
    """The step-by-step SMTP check (resolve → connect → TLS → EHLO → AUTH → MAIL → RCPT → DATA), sending a real
    test email. Exit 0 when it passed, 1 when it failed, 2 on bad arguments."""
    from letterhead.errors import InvalidInput
    from letterhead.models import new_id
    from letterhead.senders import smtp as smtp_service
    from letterhead.settings import Settings
    from letterhead.smtp.presets import get_preset

    try:
        p = get_preset(preset)
    except InvalidInput as exc:
        raise _fail(exc, 2) from None
    option = p.options[0] if p.options else None
    host = host or p.host
    port = port or (option.port if option else None)
    security = security or (option.security if option else None)
    missing = [n for n, v in (("--host", host), ("--port", port), ("--security", security), ("--from", from_),
                              ("--to", to)) if not v]
    if missing:
        err.print(f"error: missing {', '.join(missing)}")
        raise typer.Exit(2)
    password = sys.stdin.readline().rstrip("\r\n") if password_stdin else None
    app_settings = Settings()
    try:
        settings = smtp_service.validate(
            smtp_service.SmtpSettings(
                host=host or "", port=int(port or 0), security=security or "", username=username,
                password=password, from_email=from_ or "", from_name=from_name, preset=preset,
            ),
            app=app_settings,
        )
        from letterhead.addresses import normalize_email

        rcpt = normalize_email(to or "", field="to")
    except LetterheadError as exc:
        raise _fail(exc, 2) from None
    checked = smtp_service.check(app_settings, settings, to=rcpt, locale=locale,
                                 local_id=new_id("test_").removeprefix("test_"))
    result = checked.as_dict()
    if as_json:
        print(json.dumps(result, ensure_ascii=False))
    else:
        for step in result["steps"]:
            mark = "[green]✓[/green]" if step["ok"] else "[red]✗[/red]"
            out.print(f"{mark} {step['name']:<9} {step['ms']:>7.1f} ms  {step['detail']}", highlight=False)
        if result["ok"]:
            out.print("[green]The test email was accepted.[/green]")
        else:
            lang = "ja" if locale == "ja" else "en"
            out.print(f"[red]{result['category']}[/red]: {(result['summary'] or {}).get(lang, '')}")
            out.print(f"next step: {(result['remedy'] or {}).get(lang, '')}")
            if result.get("suggested"):
                out.print(f"suggested: {result['suggested']}")
        for w in result["warnings"]:
            out.print(f"[yellow]warning:[/yellow] {w['ja' if locale == 'ja' else 'en']}")
    raise typer.Exit(0 if result["ok"] else 1)


@user_app.command("create")
def user_create(
    email: Annotated[str, typer.Option(help="The person's email address (their sign-in name)")],
    tenant: Annotated[str | None, typer.Option(help="Tenant the user belongs to")] = None,
    role: Annotated[str, typer.Option(help="owner, admin or viewer (viewers can look, not change)")] = "admin",
    platform_admin: Annotated[
        bool, typer.Option("--platform-admin", help="A platform admin (may open every tenant)")
    ] = False,
) -> None:
    """Create a web UI user; prints a one-time link (72 h) to set the password, alone on the last line."""
    from letterhead import migrate
    from letterhead.users import create_user

    if bool(tenant) == platform_admin:
        err.print("error: give either --tenant T or --platform-admin")
        raise typer.Exit(2)
    ctx = _ctx()
    migrate.upgrade(ctx.db.engine)
    try:
        created = create_user(ctx, email=email, tenant_id=tenant, role=role, platform_admin=platform_admin)
    except LetterheadError as exc:
        raise _fail(exc) from None
    where = "platform admin" if created.tenant_id is None else f"{created.role} of tenant {created.tenant_id}"
    err.print(f"user {created.email} ({where}). Send them this one-time link to set a password (valid 72 h):")
    print(created.link)


@user_app.command("reset")
def user_reset(
    email: Annotated[str, typer.Option(help="The user's email address")],
    tenant: Annotated[str | None, typer.Option(help="Tenant of the user (omit for a platform admin)")] = None,
) -> None:
    """Print a new one-time set-password link for an existing user (the previous link stops working)."""
    from letterhead import migrate
    from letterhead.users import reset_link

    ctx = _ctx()
    migrate.upgrade(ctx.db.engine)
    try:
        link = reset_link(ctx, email=email, tenant_id=tenant)
    except LetterheadError as exc:
        raise _fail(exc) from None
    err.print(f"new set-password link for {email} (valid 72 h; the old one no longer works):")
    print(link)


def _set_disabled(email: str, tenant: str | None, *, disabled: bool) -> None:
    from letterhead import migrate
    from letterhead.users import find_user, set_disabled

    ctx = _ctx()
    migrate.upgrade(ctx.db.engine)
    try:
        user = find_user(ctx, email=email, tenant_id=tenant)
        _, ended = set_disabled(ctx, user_id=user.id, disabled=disabled)
    except LetterheadError as exc:
        raise _fail(exc) from None
    where = f"tenant {user.tenant_id}" if user.tenant_id else "platform admin"
    if disabled:
        out.print(f"disabled {user.email} ({where}): {ended} signed-in session(s) ended; sign-in refused "
                  "until `letterhead user enable`.", highlight=False)
    else:
        out.print(f"enabled {user.email} ({where}): they can sign in again.", highlight=False)


@user_app.command("disable")
def user_disable(
    email: Annotated[str, typer.Argument(help="The user's email address")],
    tenant: Annotated[str | None, typer.Option(help="Tenant of the user (needed when the email is in several)")] = None,
) -> None:
    """End every session of a user at once and refuse their sign-ins (undo with `letterhead user enable`)."""
    _set_disabled(email, tenant, disabled=True)


@user_app.command("enable")
def user_enable(
    email: Annotated[str, typer.Argument(help="The user's email address")],
    tenant: Annotated[str | None, typer.Option(help="Tenant of the user (needed when the email is in several)")] = None,
) -> None:
    """Let a disabled user sign in again (their old sessions stay ended)."""
    _set_disabled(email, tenant, disabled=False)


def main() -> None:  # pragma: no cover
    try:
        app()
    except LetterheadError as exc:
        err.print(f"[red]error:[/red] {exc.detail}")
        sys.exit(1)
