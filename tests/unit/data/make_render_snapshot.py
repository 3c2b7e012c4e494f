"""Writes render_snapshot.json with the current renderer: run it only to record an intended change of output.

.venv/bin/python tests/unit/data/make_render_snapshot.py
"""

import copy
import json
from pathlib import Path

from letterhead import bench
from letterhead.errors import TemplateError
from letterhead.models import Tenant
from letterhead.notifications.events import EVENTS
from letterhead.notifications.service import tenant_view
from letterhead.notifications.templates import TemplateSource, build_context, compile_source, default_source

TENANT = {
    "id": "midori",
    "name": "みどり屋",
    "contact_email": "support@midori.example",
    "brand_color": "#0f766e",
    "timezone": "Asia/Tokyo",
}
TENANT2 = {
    "id": "acme",
    "name": 'ACME <&> "Shop"',
    "brand_color": "#ffeb3b",
    "logo_url": "https://cdn.example.jp/logo.png?a=1&b=2",
    "timezone": "America/New_York",
}
TENANT3 = {"id": "bare", "name": "", "brand_color": None, "logo_url": "javascript:alert(1)", "timezone": None}
BENCH = tenant_view(Tenant(id="t1", name="ACME 株式会社", locale="ja", timezone="Asia/Tokyo", plan="pro"))
PLATFORMS = [None, {"name": "Letterhead"}, {"name": "Market & Co", "url": "https://market.example/"}]


def minimal(event):
    ex = EVENTS[event].example
    return {k: copy.deepcopy(v) for k, v in ex.items() if k in EVENTS[event].schema["required"]}


def evil(event):
    d = copy.deepcopy(EVENTS[event].example)
    for k, v in d.items():
        if (
            isinstance(v, str)
            and not v.startswith("http")
            and not k.endswith(("_at", "_by"))
            and k not in ("estimated_delivery", "period_start", "period_end", "expected_arrival", "ship_by", "currency")
        ):
            d[k] = v + ' <b>O\'Brien & "山田"</b> {{ x }}\n  next  line'
    return d


cases = []
for name in sorted(EVENTS):
    for loc in ("ja", "en"):
        cases.append({"event": name, "locale": loc, "tenant": TENANT, "platform": None, "data": EVENTS[name].example})
        cases.append({"event": name, "locale": loc, "tenant": TENANT2, "platform": PLATFORMS[2], "data": minimal(name)})
        cases.append({"event": name, "locale": loc, "tenant": TENANT3, "platform": PLATFORMS[1], "data": evil(name)})
        cases.append(
            {"event": name, "locale": loc, "tenant": BENCH, "platform": PLATFORMS[1], "data": EVENTS[name].example}
        )
for i in range(6):
    for loc in ("ja", "en"):
        cases.append(
            {
                "event": "order.created",
                "locale": loc,
                "tenant": BENCH,
                "platform": {"name": "Letterhead"},
                "data": bench.order_data(i),
            }
        )
# Multi-currency / decimal amounts
d = copy.deepcopy(EVENTS["order.created"].example)
d["currency"] = "USD"
for it in d["items"]:
    it["price"] = 12.345
d["subtotal"] = 37.03
d["total"] = "40.5"
d["tax"] = 2.5
for loc in ("ja", "en"):
    cases.append({"event": "order.created", "locale": loc, "tenant": TENANT2, "platform": None, "data": d})

CUSTOM = [
    TemplateSource("Hi {{ name }}", "<p>{{ name }}</p>", "Hi {{ name }}"),
    TemplateSource(
        "s",
        "<html><head><title>T</title><style>p { color: red }</style></head><body>"
        "<h1>Hello {{ name }}</h1><p>Your code: <strong>{{ code }}</strong></p>"
        '<span style="display:none">preheader</span>'
        "<ul>{% for i in items %}<li>{{ i }}</li>{% endfor %}</ul>"
        '<p><a href="{{ url }}">Open</a> or <a href="{{ url }}">{{ url }}</a></p></body></html>',
        None,
    ),
    TemplateSource(
        "x",
        "<style>td { padding: 4px }</style><table>{% for r in items %}<tr><td>{{ r }}</td></tr>"
        "{% endfor %}</table>{% if 1 < 2 %}<p>lt</p>{% endif %}",
        None,
    ),
    TemplateSource(
        "  Order\n {{ name }}\r\n ",
        "<p>&#123;&#123; literal }}</p>\n{% for i in items %}\n  <p>{{ loop.index }} {{ i|upper }}</p>\n{% endfor %}\n\n\n<p>end</p>",
        None,
    ),
    TemplateSource(
        "{{ name }}", "<div>{% if name %}<p>{{ name }}{% endif %}</p></div>", None
    ),  # derivation may fall back
    TemplateSource(
        "{{ name ~ '!' }}",
        "<p>{{ '%s-%d'|format(name, 3) }} {{ items|join(', ') }} {{ name|replace('a','b') }} {{ (items|length) * 2 }} {{ '{}x'.format(name) }} {{ name.upper() }}</p>",
        "  text {{ name }}  \n\n",
    ),
    TemplateSource(
        "f",
        "<html><head><title>{% if name %}T</title></head><body><p>{{ name }}</p><table><tr><th>a</th><td>{{ code }}</td></tr></table>{% endif %}</body></html>",
        None,
    ),  # text falls back to html_to_text
    TemplateSource(
        "{{ total|money }} {{ when|datetime }} {{ day|date }}",
        "<p>{{ total|money('EUR') }} {{ when|date }} {{ data.name }} {{ tenant.brand_text_color }} {{ platform.url }} {{ locale }}</p>",
        None,
    ),
]
CDATA = {
    "name": "Ann <x> & 'y'",
    "code": "42",
    "items": ["x", "y", "<z>"],
    "url": "https://example.com/a?b=1&c=2",
    "total": 1234.5,
    "currency": "USD",
    "when": "2026-11-27T05:30:00Z",
    "day": "2026-11-27",
}
for src in CUSTOM:
    for loc in ("ja", "en"):
        cases.append(
            {
                "custom": {"subject": src.subject, "html": src.html, "text": src.text},
                "locale": loc,
                "tenant": TENANT,
                "platform": None,
                "data": CDATA,
            }
        )

# Templates that exercise the sandbox's code paths: attribute and key access on dicts, lists and strings,
# 'is defined', escaping of non-strings, Markup, macros, blocks, loops, filters, size checks, undefined names.
EDGE = [
    '{% set d = {"a": nope} %}<p>{{ d.a is defined }} {{ d.b is defined }} {{ data.x is defined }}'
    " {{ data.items is defined }} {{ [1].x is defined }}</p>",
    "<p>{{ z.q is defined }}</p>",
    "<p>{{ z is defined }} {{ x is defined }} {{ data.keys is defined }} {{ data.__class__ is defined }}</p>",
    "<p>{{ ns.a is defined }}</p>{% set ns = namespace(a=1) %}{{ ns.a is defined }} {{ ns.b is defined }}",
    '<p>{% for i in items %}{{ i.a is defined }}{{ i.a|default("-") }}{{ loop.index is defined }}{% endfor %}</p>',
    "<p>{{ x.real }} {{ s.upper() }} {{ s.__len__ }}</p>",
    '<p>{{ items[0].a }} {{ data["x"] }} {{ d2.items is defined }} {{ d2["items"] }}</p>',
    "{% autoescape false %}<p>{{ s }}</p>{% endautoescape %}<p>{{ s }}</p>{{ s|safe }} {{ s|e }} {{ s ~ s }}"
    ' {{ 3 * s }} {{ 2.5 * 2 }} {{ True * 3 }} {{ 1.0 }} {{ none }} {{ [1, "<"] }} {{ {"a": "<"} }}',
    "{% macro m(a) %}<b>{{ a }}</b>{% endmacro %}{{ m(s) }}{% call m(s) %}x{% endcall %}",
    '{% set currency = "USD" %}{{ 5|money }} {{ 5.0|money }} {{ "5"|money }} {{ True|money }} {{ 5|money("EUR") }}',
    '{{ 5|money }} {{ 2**70|money }} {{ (2**70)|float|money }} {{ 0.005|money("USD") }} {{ -0.0|money("USD") }}',
    '{% set locale = "ja" %}{{ d8|date }} {{ d8|datetime }} {{ dt|datetime }}',
    "{{ dt|datetime }} {{ dt|date }} {{ d8|date }}",
    '{{ items|map(attribute="a")|join(",") }} {{ items|selectattr("a")|list }} {{ items|sort(attribute="a")|first }}',
    "{% for k, v in d2.items() %}{{ k }}={{ v }};{% endfor %}",
    '{% for i in range(3) %}{{ loop.index }}{{ loop.cycle("a","b") }}{% if loop.last %}!{% endif %}{% endfor %}',
    "{% block b %}<i>{{ s }}</i>{% endblock %}{{ self.b() }}",
    "{% set x = 5 %}{% for i in items %}{{ x }}{% set x = 6 %}{{ x }}{% endfor %}{{ x }}",
    "{% filter upper %}{{ s }} abc{% endfilter %}",
    "{% with a = s %}{{ a }}{% endwith %}",
    "{{ items.0.a }} {{ items[5] is defined }} {{ data.nope }}",
    "{{ s.nope }}",
    "<p>\n{% for i in items %}\n{{ i.nope }}\n{% endfor %}</p>",
    '{{ "%s"|format(s) }} {{ "{}".format(1) }}',
    '{{ (items|first).a * 2 }} {{ [1,2] * 2 }} {{ "ab" * 2 }}',
    "{{ s * 1000000000 }}",
    "{{ x * (2 ** 70) * (2 ** 70) }}",
    "{{ x is defined and x }}{{ tenant.name is defined }}{{ tenant.nope is defined }}{{ platform.url is defined }}",
    "<p>{{ ''.__class__ }}</p>",
    "{{ items.append(3) }}",
    "{% for i in range(10**9) %}{% endfor %}",
]
EDATA = {
    "s": "<a&'\">",
    "x": 3,
    "items": [{"a": 1}, {"a": "<2>", "b": None}],
    "d2": {"items": 5},
    "d8": "2026-11-27",
    "dt": "2026-11-27T05:30:00Z",
    "currency": "JPY",
}
for html in EDGE:
    for text in (None, "{{ s }} " + html.replace("<p>", "").replace("</p>", "")):
        cases.append(
            {
                "custom": {"subject": "S {{ s }}", "html": html, "text": text},
                "locale": "en",
                "tenant": {"id": "t", "name": "N<", "timezone": "Asia/Tokyo"},
                "platform": None,
                "data": EDATA,
            }
        )

for c in cases:
    src = TemplateSource(**c["custom"]) if "custom" in c else default_source(c["event"], c["locale"])
    ctx = build_context(data=c["data"], tenant=c["tenant"], locale=c["locale"], platform=c["platform"])
    try:
        r = compile_source(src).render(ctx)
        c["expected"] = {"subject": r.subject, "html": r.html, "text": r.text}
    except TemplateError as e:
        c["expected"] = {"error": e.detail, "line": e.line}
with open(Path(__file__).parent / "render_snapshot.json", "w", encoding="utf-8") as f:
    json.dump(cases, f, ensure_ascii=False, indent=1)
print(len(cases), sum("error" in c["expected"] for c in cases))
