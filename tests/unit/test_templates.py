from __future__ import annotations

import html
import re
import time
from typing import Any

import pytest

from letterhead.errors import NotFound, TemplateError
from letterhead.notifications.events import EVENTS
from letterhead.notifications.templates import (
    Rendered,
    TemplateSource,
    build_context,
    check_source,
    compile_source,
    default_source,
    format_date,
    format_datetime,
    format_money,
    render_many,
)

TENANT = {
    "id": "midori",
    "name": "みどり屋",
    "contact_email": "support@midori.example",
    "brand_color": "#0f766e",
    "timezone": "Asia/Tokyo",
}

# The field each event's subject must show, and whose value (the recipient) the HTML must greet.
KEY_FIELD = {
    "order.created": ("order_number", "customer_name"),
    "order.shipped": ("order_number", "customer_name"),
    "order.delivered": ("order_number", "customer_name"),
    "order.cancelled": ("order_number", "customer_name"),
    "refund.issued": ("order_number", "customer_name"),
    "vendor.approved": ("vendor_name", "contact_name"),
    "vendor.order_received": ("order_number", "vendor_name"),
    "payout.sent": ("payout_id", "vendor_name"),
    "password.reset": (None, "user_name"),
    "account.invited": ("invited_by", "invitee_name"),
}


def _ctx(data: dict[str, Any], locale: str = "en", **tenant: Any) -> dict[str, Any]:
    return build_context(data=data, tenant={**TENANT, **tenant}, locale=locale)


def _render(
    html: str, data: dict[str, Any] | None = None, *, subject: str = "s", text: str | None = "t"
) -> Rendered:
    return compile_source(TemplateSource(subject=subject, html=html, text=text)).render(_ctx(data or {}))


def _refused(html: str, data: dict[str, Any] | None = None) -> TemplateError:
    with pytest.raises(TemplateError) as caught:
        _render(html, data)
    return caught.value


def test_every_event_has_defaults_in_both_locales() -> None:
    assert set(KEY_FIELD) == set(EVENTS)


@pytest.mark.parametrize("locale", ["ja", "en"])
@pytest.mark.parametrize("name", sorted(EVENTS))
def test_default_templates_render(name: str, locale: str) -> None:
    event = EVENTS[name]
    subject_field, person_field = KEY_FIELD[name]
    data = dict(event.example)
    data[person_field] = "<b>O'Brien & 山田</b>"
    rendered = check_source(default_source(name, locale), sample_context=_ctx(data, locale))

    expected = data[subject_field] if subject_field else TENANT["name"]
    assert expected in rendered.subject
    assert "\n" not in rendered.subject and rendered.subject == rendered.subject.strip()

    assert html.escape(
        data[person_field]
    ) in rendered.html or "&lt;b&gt;O&#39;Brien &amp; 山田&lt;/b&gt;" in (rendered.html)
    assert "<b>O'Brien" not in rendered.html
    assert f'<html lang="{locale}">' in rendered.html
    assert "<style" not in rendered.html.split("</head>")[1]  # CSS is inlined; only @media rules stay in head
    assert 'style="' in rendered.html

    assert rendered.text.strip()
    assert data[person_field] in rendered.text  # raw in the text part
    assert not re.search(r"<(?:p|a|td|table|span|h1|br|div)\b", rendered.text)
    assert "{{" not in rendered.text and "{%" not in rendered.text
    assert TENANT["name"] in rendered.text


def test_default_text_part_keeps_links_and_lines() -> None:
    event = EVENTS["order.created"]
    rendered = compile_source(default_source("order.created", "ja")).render(_ctx(event.example, "ja"))
    assert f"ご注文内容を確認する ({event.example['order_url']})" in rendered.text
    assert "有田焼 マグカップ(藍)  2  ¥3,960" in rendered.text
    assert "合計(税込)  ¥6,180" in rendered.text
    assert "注文番号: A-20261127-0042" in rendered.text
    assert "\n\n\n" not in rendered.text
    assert "support@midori.example" in rendered.text and "mailto:" not in rendered.text


def test_japanese_defaults_read_naturally() -> None:
    created = compile_source(default_source("order.created", "ja")).render(
        _ctx(EVENTS["order.created"].example, "ja")
    )
    assert "ご注文ありがとうございます" in created.subject
    assert "山田 花子 様" in created.html
    shipped = compile_source(default_source("order.shipped", "ja")).render(
        _ctx(EVENTS["order.shipped"].example, "ja")
    )
    assert "発送しました" in shipped.subject
    assert "2026年11月30日" in shipped.html  # estimated delivery, localized


def test_default_layout_header_and_footer() -> None:
    event = EVENTS["order.delivered"]
    with_logo = compile_source(default_source(event.name, "en")).render(
        _ctx(event.example, "en", logo_url="https://cdn.example.jp/logo.png")
    )
    assert 'src="https://cdn.example.jp/logo.png"' in with_logo.html and 'alt="みどり屋"' in with_logo.html
    assert "This email was sent by みどり屋 via Letterhead." in with_logo.text
    assert 'role="presentation"' in with_logo.html and "max-width: 600px" in with_logo.html
    assert "@media" in with_logo.html  # responsive rules survive inlining


def test_unknown_default() -> None:
    with pytest.raises(NotFound):
        default_source("order.exploded", "ja")
    with pytest.raises(NotFound):
        default_source("order.created", "fr")


def test_autoescape_html_not_text_or_subject() -> None:
    data = {"name": "<script>alert(1)</script>"}
    rendered = _render("<p>{{ name }}</p>", data, subject="Hi {{ name }}", text="Hi {{ name }}")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in rendered.html and "<script>" not in rendered.html
    assert rendered.text == "Hi <script>alert(1)</script>"
    assert rendered.subject == "Hi <script>alert(1)</script>"
    derived = _render("<p>{{ name }}</p>", data, text=None)
    assert derived.text == "<script>alert(1)</script>"


@pytest.mark.parametrize(
    "source",
    [
        "{{ ''.__class__ }}",
        "{{ ''.__class__.__mro__ }}",
        "{{ cycler.__init__.__globals__ }}",
        '{{ "{0.__class__}".format(1) }}',
        "{{ ''|attr('__class__') }}",
        "{{ (1).__class__.__subclasses__() }}",
        "{{ self.__init__ }}",
        "{{ items.append(3) }}",
        "{{ lipsum(10) }}",
    ],
)
def test_sandbox_refuses_python_internals(source: str) -> None:
    error = _refused(source, {"items": [1, 2]})
    assert error.line == 1


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        ("{% for i in range(10**9) %}{% endfor %}", "range"),
        ("{{ 'a' * 100000000 }}", "limit"),
        ("{{ [0] * 10**8 }}", "limit"),
        ("{{ '{:>999999999}'.format(1) }}", "width"),
        ("{{ '%999999999d' % 1 }}", "width"),
        ("{{ 'a'|center(10**9) }}", "width"),
        ("{{ 'a'.ljust(10**9) }}", "width"),
        ("{{ ('x' * 1000000)|replace('', 'yy') }}", "longer"),
        ("{{ 2 ** (10**9) }}", "large"),
        (
            "{% set ns = namespace(s='ab') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
            "longer",
        ),
    ],
)
def test_resource_limits(source: str, reason: str) -> None:
    assert reason in _refused(source).detail


def test_render_time_is_capped() -> None:
    # Under the loop limit (90,000 iterations), but each one multiplies two 28,000-bit integers.
    source = "{% set n = 7 ** 10000 %}{% for i in range(1000) %}{% for j in range(90) %}{% set x = n * n %}" + (
        "{% endfor %}{% endfor %}"
    )
    started = time.monotonic()
    error = _refused(source)
    assert "longer than 200 ms" in error.detail
    assert time.monotonic() - started < 10  # stopped, not run to completion


def test_render_deadline_counts_cpu_time_not_waiting() -> None:
    # On a busy host a render thread can wait longer than the limit without computing: that is not a slow template.
    def slow_items() -> Any:
        for i in range(2):
            time.sleep(0.15)
            yield i

    rendered = _render("<p>{% for i in items %}{{ i }}{% endfor %}</p>", {"items": slow_items()})
    assert rendered.html == "<p>01</p>"


def test_render_many_renders_what_render_renders() -> None:
    # Every default template in both locales, a tenant text part, a text derived at render time (HTML that the
    # compile-time derivation cannot follow) and a failing message among them, in one call.
    jobs = [
        (compile_source(default_source(name, locale)), _ctx(event.example, locale))
        for name, event in EVENTS.items()
        for locale in ("ja", "en")
    ]
    jobs.append((compile_source(TemplateSource("Hi {{ n }}", "<p>{{ n }}</p>", "Text {{ n }}")), _ctx({"n": 1})))
    jobs.append((compile_source(TemplateSource("s", "<p>{% if n %}<b>{% endif %}x</b></p>")), _ctx({"n": 1})))
    broken = compile_source(TemplateSource("s", "<p>\n{{ missing }}</p>"))
    jobs.insert(3, (broken, _ctx({})))
    results = render_many(jobs)
    assert len(results) == len(jobs)
    for (compiled, context), result in zip(jobs, results, strict=True):
        if compiled is broken:
            assert isinstance(result, TemplateError) and result.line == 2 and "missing" in result.detail
        else:
            assert result == compiled.render(context)
    assert results[-2] == Rendered("Hi 1", "<p>1</p>", "Text 1")


def test_render_many_limit_is_per_message(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each message has 200 ms of CPU for its subject, HTML and text together, as with ``render``: time spent
    on the other messages between its parts does not count (a fake clock the template advances)."""
    from letterhead.notifications import budget, templates

    clock = [0.0]
    for module in (budget, templates):
        monkeypatch.setattr(module, "thread_time", lambda: clock[0], raising=False)
        monkeypatch.setattr(module, "perf_counter", lambda: clock[0], raising=False)

    def spend(seconds: float) -> str:
        clock[0] += seconds
        return ""

    compiled = compile_source(TemplateSource("{{ spend(cost) }}S", "<p>{{ spend(cost) }}H</p>", "T"))
    slow, quick = _ctx({"cost": 0.12, "spend": spend}), _ctx({"cost": 0.09, "spend": spend})
    with pytest.raises(TemplateError, match="longer than 200 ms"):
        compiled.render(slow)  # 0.24 s over subject and HTML
    assert compiled.render(quick).html == "<p>H</p>"  # 0.18 s
    results = render_many([(compiled, quick), (compiled, slow), (compiled, quick)])
    outcomes = [r.html if isinstance(r, Rendered) else r.errors[0]["field"] for r in results]
    assert outcomes == ["<p>H</p>", "html", "<p>H</p>"]
    assert isinstance(results[1], TemplateError) and "longer than 200 ms" in results[1].detail


def test_recursion_is_refused() -> None:
    # Whichever guard trips first (the recursion limit, or the render deadline on a loaded machine) refuses it.
    detail = _refused("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}").detail
    assert "recursion" in detail or "longer than" in detail


def test_rendered_size_is_capped() -> None:
    source = "{% set s = 'x' * 1000000 %}{% for i in range(10) %}{{ s }}{% endfor %}"
    assert "larger than" in _refused(source).detail


@pytest.mark.parametrize(
    "source", ["{% include 'base.html' %}", "{% extends 'x' %}", "{% import 'm' as m %}"]
)
def test_include_import_extends_refused(source: str) -> None:
    with pytest.raises(TemplateError) as caught:
        compile_source(TemplateSource(subject="s", html="<p>\n" + source + "\n</p>"))
    assert caught.value.line == 2


def test_source_size_limit() -> None:
    with pytest.raises(TemplateError) as caught:
        compile_source(TemplateSource(subject="s", html="x" * (256 * 1024 + 1)))
    assert caught.value.errors[0]["field"] == "html"


def test_strict_undefined_reports_the_line() -> None:
    source = "<html>\n<body>\n<p>{{ customer_name }}</p>\n<p>{{ missing_field }}</p>\n</body>\n</html>"
    with pytest.raises(TemplateError) as caught:
        _render(source, {"customer_name": "山田"})
    assert caught.value.line == 4
    assert "line 4" in caught.value.detail and "missing_field" in caught.value.detail
    assert caught.value.errors[0] == {"field": "html", "line": 4, "message": caught.value.detail}


def test_strict_undefined_line_after_inlined_style_block() -> None:
    # The <style> block is removed at compile time; line numbers must still match the tenant's source.
    source = (
        "<html><head><style>\np { color: red }\n.a { margin: 0 }\n</style></head>\n<body>\n<p>{{ nope }}</p>"
    )
    with pytest.raises(TemplateError) as caught:
        _render(source)
    assert caught.value.line == 6


def test_undefined_in_subject_and_text_fields() -> None:
    with pytest.raises(TemplateError) as caught:
        _render("<p>x</p>", subject="Order {{ order_numbr }}")
    assert caught.value.errors[0]["field"] == "subject" and caught.value.line == 1
    with pytest.raises(TemplateError) as caught:
        _render("<p>x</p>", text="a\nb\n{{ nope.deeper }}")
    assert caught.value.errors[0]["field"] == "text" and caught.value.line == 3


def test_undefined_inside_a_loop_reports_its_line() -> None:
    source = "<table>\n{% for item in items %}\n<tr>\n<td>{{ item.nmae }}</td>\n</tr>\n{% endfor %}\n</table>"
    with pytest.raises(TemplateError) as caught:
        _render(source, {"items": [{"name": "a"}]})
    assert caught.value.line == 4


def test_syntax_error_line_and_field() -> None:
    with pytest.raises(TemplateError) as caught:
        compile_source(TemplateSource(subject="ok", html="<p>a</p>\n<p>b</p>\n{% if x %}\n<p>{{ x }</p>"))
    assert caught.value.errors[0]["field"] == "html"
    assert caught.value.line is not None and caught.value.line >= 4
    with pytest.raises(TemplateError) as caught:
        compile_source(TemplateSource(subject="{% for %}", html="<p></p>"))
    assert caught.value.errors[0]["field"] == "subject" and caught.value.line == 1
    with pytest.raises(TemplateError) as caught:
        compile_source(TemplateSource(subject="s", html="<p></p>", text="a\n{{ x|nosuchfilter }}"))
    assert caught.value.errors[0]["field"] == "text" and caught.value.line == 2


def test_css_is_inlined_at_compile_time() -> None:
    source = (
        "<html><head><style>p.lead { color: #123456; font-weight: bold }"
        " a { color: {{ tenant.brand_color }} }</style></head>"
        '<body><p class="lead" style="margin: 0">Hi {{ name }}</p><a href="{{ url }}">go</a></body></html>'
    )
    rendered = _render(source, {"name": "Ann", "url": "https://example.com/x?a=1&b=2"})
    assert re.search(r'<p class="lead" style="[^"]*color: #123456;[^"]*font-weight: bold', rendered.html)
    assert "margin: 0" in rendered.html  # existing inline style kept
    assert 'style="color: #0f766e' in rendered.html  # Jinja inside CSS survived
    assert "<style" not in rendered.html
    assert 'href="https://example.com/x?a=1&amp;b=2"' in rendered.html


def test_inlining_keeps_jinja_inside_tables_intact() -> None:
    # An HTML5 parser would move {% for %} out of the <table> ("foster parenting"); the source must not change.
    source = (
        "<style>td { padding: 4px }</style><table>{% for r in rows %}<tr><td>{{ r }}</td></tr>"
        "{% endfor %}</table>{% if 1 < 2 %}<p>lt</p>{% endif %}"
    )
    rendered = _render(source, {"rows": ["a", "b"]})
    assert rendered.html.count('<td style="padding: 4px;">') == 2
    assert '<tr><td style="padding: 4px;">a</td></tr><tr>' in rendered.html
    assert "<p>lt</p>" in rendered.html


def test_derived_text_part() -> None:
    source = (
        "<html><head><title>T</title><style>p { color: red }</style></head><body>"
        "<h1>Hello {{ name }}</h1><p>Your code: <strong>{{ code }}</strong></p>"
        '<span style="display:none">preheader</span>'
        "<ul>{% for i in items %}<li>{{ i }}</li>{% endfor %}</ul>"
        '<p><a href="{{ url }}">Open</a> or <a href="{{ url }}">{{ url }}</a></p></body></html>'
    )
    data = {"name": "Ann", "code": "42", "items": ["x", "y"], "url": "https://example.com/a"}
    text = _render(source, data, text=None).text
    assert text == (
        "Hello Ann\n\nYour code: 42\n\n- x\n- y\n\nOpen (https://example.com/a) or https://example.com/a"
    )


def test_subject_newlines_are_removed() -> None:
    rendered = _render(
        "<p></p>", {"evil": "x\r\nBcc: victim@example.com"}, subject="  Order\n {{ evil }}\r\n "
    )
    assert rendered.subject == "Order x Bcc: victim@example.com"
    assert "\r" not in rendered.subject and "\n" not in rendered.subject


def test_compile_cache_returns_the_same_object() -> None:
    first = compile_source(TemplateSource(subject="a {{ x }}", html="<p>{{ x }}</p>"))
    again = compile_source(TemplateSource(subject="a {{ x }}", html="<p>{{ x }}</p>"))
    other = compile_source(TemplateSource(subject="b {{ x }}", html="<p>{{ x }}</p>"))
    assert first is again and first is not other


def test_context_exposes_data_tenant_and_locale() -> None:
    ctx = build_context(
        data={"order_number": "A-1", "tenant": "spoofed"},
        tenant={"id": "t1", "name": "Shop", "brand_color": "javascript:x", "logo_url": "javascript:alert(1)"},
        locale="ja",
        platform={"name": "Marketplace"},
    )
    rendered = compile_source(
        TemplateSource(
            subject="{{ order_number }} {{ data.order_number }} {{ tenant.name }} {{ locale }} {{ platform.name }}",
            html="<p>{{ tenant.brand_color }} {{ tenant.logo_url }}</p>",
        )
    ).render(ctx)
    assert rendered.subject == "A-1 A-1 Shop ja Marketplace"
    assert "javascript" not in rendered.html


def test_brand_text_color_keeps_contrast() -> None:
    light = build_context(data={}, tenant={"name": "x", "brand_color": "#ffeb3b"}, locale="en")
    dark = build_context(data={}, tenant={"name": "x", "brand_color": "#1e3a8a"}, locale="en")
    assert light["tenant"]["brand_text_color"] == "#111827"
    assert dark["tenant"]["brand_text_color"] == "#ffffff"
    assert light["tenant"]["brand_link_color"] != "#ffeb3b"


def test_money_date_datetime_helpers() -> None:
    assert format_money(1980, "JPY", "ja") == "¥1,980"
    assert format_money(12.5, "USD", "en") == "$12.50"
    assert format_money(1234567.005, "EUR", "en") == "€1,234,567.01"
    assert format_money(10, "CHF", "en") == "CHF 10.00"
    assert format_date("2026-11-27", "ja") == "2026年11月27日"
    assert format_date("2026-11-27", "en") == "Nov 27, 2026"
    assert format_datetime("2026-11-27T05:30:00Z", "ja", "Asia/Tokyo") == "2026年11月27日 14:30 JST"
    assert format_datetime("2026-11-27T05:30:00Z", "en", "Asia/Tokyo") == "Nov 27, 2026, 2:30 PM JST"
    rendered = _render(
        "<p>{{ total|money }} {{ 5|money('USD') }} {{ day|date }}</p>",
        {"total": 6180, "currency": "JPY", "day": "2026-11-27"},
    )
    assert "¥6,180 $5.00 Nov 27, 2026" in rendered.html


def test_render_speed_of_default_templates() -> None:
    """Prints µs per render (run with -s); no timed assertion (timing belongs in benchmarks)."""
    results = []
    for name, event in EVENTS.items():
        for locale in ("ja", "en"):
            compiled = compile_source(default_source(name, locale))
            ctx = _ctx(event.example, locale)
            compiled.render(ctx)
            loops = 200
            started = time.perf_counter()
            for _ in range(loops):
                compile_source(default_source(name, locale)).render(ctx)
            results.append(((time.perf_counter() - started) / loops * 1e6, name, locale))
    for micros, name, locale in results:
        print(f"{name:24} {locale}  {micros:7.1f} µs/render")
    print(f"mean {sum(r[0] for r in results) / len(results):.1f} µs/render")
