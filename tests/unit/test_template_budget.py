"""Issue 18 item 4: one memory/loop/time budget per rendered message, so no template payload can take more
than a few MB before it is refused with the template error (422 at the API)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from letterhead.errors import TemplateError
from letterhead.notifications.templates import Rendered, TemplateSource, build_context, compile_source, render_many

BIG = '["x"*10**6]*10000'  # 10,000 references to one 1 MB string: 1 MB of memory, 10 GB as text
PAYLOADS = [
    '{{ (["x\\n"*1000]*100)|map("indent", 1000)|join }}',
    '{{ (["a"*10000]*1000)|map("replace", "a", "aaaaaaaaaa")|join }}',
    '{% set ns = namespace(l=[]) %}{% for i in range(100) %}{% for j in range(1000) %}'
    '{% set ns.l = ns.l + ["x"*1000] %}{% endfor %}{% endfor %}{{ ns.l|map("upper")|join }}',
    '{% set ns = namespace(l=[]) %}{% for i in range(1000) %}{% set ns.l = ns.l + ["x"*100000] %}{% endfor %}'
    '{{ ns.l|map("upper")|join }}',
    '{{ "%s%s%s%s%s%s%s%s%s%s"|format(*["x"*10**6]*10) }}',
    '{{ "{0}{0}{0}{0}{0}{0}{0}{0}{0}{0}".format("x"*10**6) }}',
    '{{ "%s" % ((["x"*10**6]*100),) }}',
    '{{ (["x"*10**6]*100)|string }}',
    '{{ (["x"*10**6]*100) }}',
    '{{ "" ~ (["x"*10**6]*100) }}',
    '{{ ("x"*10**6).split("") }}',
    '{{ ("ab "*300000).split()|length }}',
    '{{ ("日"*10**6)|list|length }}',
    '{{ (1).to_bytes(10**9, "big") }}',
    '{{ ([["x"]*10000]*10000)|sum(start=[])|length }}',
    '{{ dict(a=' + BIG + ').items()|list|string }}',
    '{% set x %}{% for i in range(1000) %}{% for j in range(100) %}' + "y" * 200 + '{% endfor %}{% endfor %}'
    '{% endset %}{{ x|length }}',
    '{% macro m() %}{% for i in range(1000) %}{{ "x"*10000 }}{% endfor %}{% endmacro %}{{ m()|length }}',
    *(
        "{{ (" + BIG + ")|" + f + " }}"
        for f in ("join", "tojson", "pprint", "sort|length", "unique|list|length", "max", "dictsort|length")
    ),
    *(
        "{{ (" + BIG + ')|map("' + f + '")|list|length }}'
        for f in ("upper", "lower", "title", "e", "string", "reverse", "trim", "tojson", "urlize", "wordwrap",
                  "format", "center", "striptags", "urlencode")
    ),
]
LOOPS = [
    "{% for a in range(1000) %}{% for b in range(1000) %}{% endfor %}{% endfor %}",
    "{% for a in range(1000) %}{% for b in range(1000) %}{% for c in range(1000) %}{% endfor %}{% endfor %}"
    "{% endfor %}",
    "{% for i in range(1000) %}{{ range(1000)|map('abs')|list|length }}{% endfor %}",
]

# Run in a fresh interpreter: the peak of tracemalloc during the render (and of RSS) belongs to that render alone.
_MEASURE = textwrap.dedent(
    """
    import json, resource, sys, threading, tracemalloc
    from letterhead.errors import TemplateError
    from letterhead.notifications.templates import TemplateSource, build_context, compile_source
    sources, threads = json.loads(sys.argv[1]), int(sys.argv[2])
    compiled = [compile_source(TemplateSource("s", src, "t")) for src in sources]
    errors = []
    def render(c):
        try:
            c.render(build_context(data={}, tenant={"id": "t"}, locale="en"))
            errors.append(None)
        except TemplateError as exc:
            errors.append(exc.detail)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tracemalloc.start()
    for i in range(0, len(compiled), threads):
        workers = [threading.Thread(target=render, args=(c,)) for c in compiled[i:i + threads]]
        for w in workers: w.start()
        for w in workers: w.join()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    print(json.dumps({"peak": peak, "rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss,
                      "errors": errors}))
    """
)


def _measure(sources: list[str], threads: int = 1) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", _MEASURE, json.dumps(sources), str(threads)],
        capture_output=True, text=True, timeout=600, check=True,
        # An address-space cap: a payload that escaped the budget fails this test instead of the machine.
        preexec_fn=lambda: __import__("resource").setrlimit(__import__("resource").RLIMIT_AS, (3 << 30, 3 << 30)),
    )
    return json.loads(done.stdout)  # type: ignore[no-any-return]


@pytest.mark.parametrize("source", PAYLOADS)
def test_payload_is_refused_within_a_few_megabytes(source: str) -> None:
    result = _measure([source])
    (detail,) = result["errors"]  # type: ignore[misc]
    assert detail is not None and "would build more than 8 MB" in detail
    assert result["peak"] < 20 * 1024 * 1024  # type: ignore[operator]


@pytest.mark.parametrize("source", LOOPS)
def test_loops_are_counted(source: str) -> None:
    ctx = build_context(data={}, tenant={"id": "t"}, locale="en")
    with pytest.raises(TemplateError, match="loops more than 100,000 times"):
        compile_source(TemplateSource("s", source, "t")).render(ctx)


def test_six_payloads_in_parallel_stay_bounded() -> None:
    result = _measure(PAYLOADS[:6] * 2, threads=6)
    assert all(d is not None and "8 MB" in d for d in result["errors"])  # type: ignore[union-attr, attr-defined]
    assert result["peak"] < 60 * 1024 * 1024  # type: ignore[operator]


def test_budget_is_per_message_in_render_many() -> None:
    ctx = build_context(data={"n": 3}, tenant={"id": "t"}, locale="en")
    ok = compile_source(TemplateSource("Hi {{ n }}", "<p>{{ ('x' * 1000)|upper|length }}</p>", "t {{ n }}"))
    bad = compile_source(TemplateSource("s", PAYLOADS[7], "t"))
    results = render_many([(ok, ctx), (bad, ctx), (ok, ctx), (bad, ctx), (ok, ctx)])
    assert [type(r) for r in results] == [Rendered, TemplateError, Rendered, TemplateError, Rendered]
    assert results[0] == Rendered("Hi 3", "<p>1000</p>", "t 3")
    # Many ordinary messages in one call: each has its own budget, so the part never runs out.
    many = render_many([(ok, ctx)] * 3000)
    assert all(isinstance(r, Rendered) for r in many)


def test_ordinary_template_features_still_work() -> None:
    source = (
        "{% set ns = namespace(t=0) %}{% for i in items %}{% set ns.t = ns.t + i.q %}{{ i.name|upper }},{% endfor %}"
        "{{ ns.t }} {{ items|map(attribute='name')|join('/') }} {{ '%s-%s'|format('a', 'b') }} {{ '{}!'.format(1) }}"
        " {{ items|sum(attribute='q') }} {{ [[1], [2]]|sum(start=[]) }} {{ 'a b c'|wordcount }}"
        " {{ items|tojson|length > 0 }} {% set b %}{{ 'x' ~ 1 }}{% endset %}{{ b }} {{ items|sort(attribute='name')|first }}"
    )
    ctx = build_context(data={"items": [{"name": "b", "q": 2}, {"name": "a", "q": 1}]}, tenant={"id": "t"}, locale="en")
    html = compile_source(TemplateSource("s", source, "t")).render(ctx).html
    assert html == "B,A,3 b/a a-b 1! 3 [1, 2] 3 True x1 {&#39;name&#39;: &#39;a&#39;, &#39;q&#39;: 1}"


def test_preview_and_save_answer_the_same_422(ctx: object, app_client: object, acme_key: str) -> None:
    from tests.conftest import auth

    client = app_client  # a fastapi TestClient
    body = {"subject": "s", "html": "<p>{{ (" + BIG + ")|join }}</p>", "text": None}
    url = "/v1/tenants/acme/templates/order.created/en"
    preview = client.post(url + "/preview", json=body, headers=auth(acme_key))  # type: ignore[attr-defined]
    save = client.put(url, json=body, headers=auth(acme_key))  # type: ignore[attr-defined]
    for r in (preview, save):
        assert r.status_code == 422 and r.headers["content-type"].startswith("application/problem+json")
        assert "would build more than 8 MB" in r.json()["detail"] and r.json()["errors"][0]["line"] == 1
    assert client.get(url, headers=auth(acme_key)).json()["customized"] is False  # type: ignore[attr-defined]
