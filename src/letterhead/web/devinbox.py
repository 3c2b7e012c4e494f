"""Pages of the development inbox: /dev/inbox (HTML) and /dev/inbox.json.

They are unauthenticated and show every captured platform email (verification and set-password links
included), so with LETTERHEAD_ENV=production every /dev/* route is 404 whatever else is configured."""

from __future__ import annotations

from html import escape
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from letterhead.devinbox import DevInbox
from letterhead.errors import NotFound


def _not_in_production(request: Request) -> None:
    if request.app.state.ctx.settings.env == "production":
        raise NotFound("Not found.")


router = APIRouter(include_in_schema=False, dependencies=[Depends(_not_in_production)])


def _inbox(request: Request) -> DevInbox:
    inbox: DevInbox | None = getattr(request.app.state, "dev_inbox", None)
    if inbox is None:
        raise NotFound(
            "The development inbox is off: the platform transport is a real SMTP server "
            "(LETTERHEAD_PLATFORM_SMTP_URL)."
        )
    return inbox


@router.get("/dev/inbox.json")
def inbox_json(request: Request) -> dict[str, Any]:
    return {"messages": [m.as_dict() for m in _inbox(request).messages()]}


@router.post("/dev/inbox/clear")
def inbox_clear(request: Request) -> dict[str, Any]:
    _inbox(request).clear()
    return {"ok": True}


_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1"><title>Development inbox</title>
<style>body{{font:15px/1.5 system-ui,sans-serif;margin:0;background:#f6f7f9;color:#1d2330}}
header{{background:#1d2330;color:#fff;padding:12px 24px}}main{{max-width:960px;margin:24px auto;padding:0 16px}}
article{{background:#fff;border:1px solid #dde1e7;border-radius:8px;margin-bottom:16px;padding:16px}}
dl{{display:grid;grid-template-columns:6em 1fr;margin:0 0 8px}}dt{{color:#5b6475}}dd{{margin:0}}
iframe{{width:100%;height:320px;border:1px solid #dde1e7;border-radius:4px}}
pre{{white-space:pre-wrap;background:#f6f7f9;padding:8px;border-radius:4px}}</style></head>
<body><header><strong>Letterhead</strong> · Development inbox · {count} messages</header><main>{items}</main></body></html>"""


@router.get("/dev/inbox", response_class=HTMLResponse)
def inbox_page(request: Request) -> HTMLResponse:
    items = []
    for m in _inbox(request).messages()[:100]:
        d = m.as_dict()
        body = (
            f'<iframe sandbox="" srcdoc="{escape(d["html"])}" title="HTML part"></iframe>'
            if d["html"]
            else f"<pre>{escape(d['text'] or '')}</pre>"
        )
        items.append(
            f'<article id="{escape(d["id"])}"><dl><dt>Subject</dt><dd><strong>{escape(d["subject"])}</strong></dd>'
            f"<dt>From</dt><dd>{escape(d['from'])}</dd><dt>To</dt><dd>{escape(d['to'])}</dd>"
            f"<dt>Date</dt><dd>{escape(d['date'])}</dd></dl>{body}</article>"
        )
    page = _PAGE.format(count=len(items), items="".join(items) or "<p>No mail yet.</p>")
    return HTMLResponse(page)
