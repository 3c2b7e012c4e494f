"""The email log's chart: sent / deferred / failed per day for the last 14 days, as a small inline SVG.

Days are the tenant's calendar days (its time zone). One query counts them: each row falls in the bucket of the
latest day boundary it is after (a CASE over the 14 boundaries computed here), which works the same on SQLite and
PostgreSQL and uses the (tenant_id, ...) log index instead of per-dialect date functions.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from html import escape
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from markupsafe import Markup
from sqlalchemy import case, func, select

from letterhead.context import Context
from letterhead.models import Message, MessageStatus, utcnow
from letterhead.web.i18n import Translator

SERIES = (MessageStatus.SENT.value, MessageStatus.DEFERRED.value, MessageStatus.FAILED.value)


@dataclass(frozen=True)
class Day:
    day: date
    counts: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def daily_counts(ctx: Context, *, tenant_id: str, tz: str | None, days: int = 14,
                 now: datetime | None = None) -> list[Day]:
    tzinfo = zone(tz)
    today = (now or utcnow()).astimezone(tzinfo).date()
    first = today - timedelta(days=days - 1)
    starts = [datetime.combine(first + timedelta(days=i), time(0), tzinfo).astimezone(UTC) for i in range(days)]
    bucket = case(*((Message.created_at >= starts[i], i) for i in reversed(range(days))), else_=-1)
    q = (
        select(bucket.label("b"), Message.status, func.count())
        .where(Message.tenant_id == tenant_id, Message.created_at >= starts[0], Message.status.in_(SERIES))
        .group_by(bucket, Message.status)
    )
    out = [Day(first + timedelta(days=i), dict.fromkeys(SERIES, 0)) for i in range(days)]
    with ctx.db.session() as s:
        for b, status, n in s.execute(q):
            if 0 <= int(b) < days:
                out[int(b)].counts[status] = int(n)
    return out


def svg(days: list[Day], t: Translator) -> Markup:
    """Stacked bars (sent at the bottom, then deferred, then failed), a legend and day labels."""
    width, height = 640, 180
    left, right, top, bottom = 34, 8, 26, 24
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = max((d.total for d in days), default=0)
    scale_max = _nice(peak)
    slot = plot_w / max(1, len(days))
    bar_w = max(4.0, slot * 0.62)
    parts: list[str] = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-labelledby="chart-title" '
        f'xmlns="http://www.w3.org/2000/svg" preserveAspectRatio="xMidYMid meet">',
        f'<title id="chart-title">{escape(t("logs.chart_aria"))}</title>',
    ]
    # Grid lines and the scale.
    for frac in (0.0, 0.5, 1.0):
        y = top + plot_h * (1 - frac)
        parts.append(f'<line class="grid" x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}"/>')
        parts.append(f'<text class="axis" x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{round(scale_max * frac)}</text>')
    for i, d in enumerate(days):
        x = left + slot * i + (slot - bar_w) / 2
        y = top + plot_h
        tip = ", ".join(f"{t('status.' + s)} {d.counts[s]}" for s in SERIES)
        parts.append(f'<g class="day"><title>{escape(d.day.isoformat())}: {escape(tip)}</title>')
        for series in SERIES:
            n = d.counts[series]
            if not n:
                continue
            h = plot_h * n / scale_max
            y -= h
            parts.append(
                f'<rect class="bar {series}" x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{h:.1f}" rx="1.5"/>'
            )
        parts.append("</g>")
        if i % 2 == (len(days) - 1) % 2:  # every other day, always the last (today)
            parts.append(
                f'<text class="axis" x="{x + bar_w / 2:.1f}" y="{height - 6}" text-anchor="middle">'
                f"{d.day.month}/{d.day.day}</text>"
            )
    # Legend.
    lx = left
    for series in SERIES:
        label = escape(t("status." + series))
        total = sum(d.counts[series] for d in days)
        parts.append(f'<rect class="bar {series}" x="{lx}" y="6" width="10" height="10" rx="2"/>')
        parts.append(f'<text class="legend" x="{lx + 14}" y="15">{label} {total}</text>')
        lx += 20 + 9 * (len(label) + len(str(total))) + (12 if t.lang == "ja" else 0) * len(label) // 2
    parts.append("</svg>")
    return Markup("".join(parts))


def _nice(peak: int) -> int:
    """A round upper bound for the scale (at least 4, so that small counts still show as short bars)."""
    if peak <= 4:
        return 4
    for step in (5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 2500, 5000, 10000):
        if peak <= step * 4:
            return int(-(-peak // step) * step)
    magnitude = int(10 ** (len(str(peak)) - 1))
    return -(-peak // magnitude) * magnitude
