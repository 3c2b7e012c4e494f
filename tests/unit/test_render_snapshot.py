"""Rendering stays byte-identical: every default template (both locales, several tenants and payloads) and a few
tenant-written templates, against the output recorded in ``data/render_snapshot.json``.

The fixture was written by ``data/make_render_snapshot.py`` with the renderer as it was before it was optimised
(errors included: message and line); an intended change of output means regenerating it and reviewing the diff.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from letterhead.errors import TemplateError
from letterhead.models import Tenant
from letterhead.notifications.service import notification_job
from letterhead.notifications.templates import TemplateSource, build_context, compile_source, default_source

CASES: list[dict[str, Any]] = json.loads((Path(__file__).parent / "data" / "render_snapshot.json").read_text("utf-8"))


def _id(case: dict[str, Any]) -> str:
    name = case.get("event") or "custom:" + case["custom"]["subject"][:12]
    return f"{name}-{case['locale']}-{case['tenant']['id']}"


def _source(case: dict[str, Any]) -> TemplateSource:
    if "custom" in case:
        return TemplateSource(**case["custom"])
    return default_source(case["event"], case["locale"])


@pytest.mark.parametrize("case", CASES, ids=[_id(c) for c in CASES])
def test_rendering_matches_snapshot(case: dict[str, Any]) -> None:
    context = build_context(data=case["data"], tenant=case["tenant"], locale=case["locale"], platform=case["platform"])
    compiled = compile_source(_source(case))
    for _ in range(2):  # the second render exercises whatever was cached by the first
        if "error" in case["expected"]:
            with pytest.raises(TemplateError) as caught:
                compiled.render(context)
            assert (caught.value.detail, caught.value.line) == (case["expected"]["error"], case["expected"]["line"])
            continue
        rendered = compiled.render(context)
        assert rendered.subject == case["expected"]["subject"]
        assert rendered.text == case["expected"]["text"]
        assert rendered.html == case["expected"]["html"]


BENCH_CASES = [c for c in CASES if c["tenant"]["id"] == "t1"]


@pytest.mark.parametrize("case", BENCH_CASES, ids=[_id(c) for c in BENCH_CASES])
def test_render_notification_matches_snapshot(case: dict[str, Any]) -> None:
    tenant = Tenant(id="t1", name="ACME 株式会社", locale="ja", timezone="Asia/Tokyo", plan="pro")
    for _ in range(2):
        compiled, context = notification_job(
            event=case["event"],
            locale=case["locale"],
            data=case["data"],
            tenant=tenant,
            overrides={},
            platform=case["platform"],
        )
        rendered = compiled.render(context)
        assert (rendered.subject, rendered.html, rendered.text) == (
            case["expected"]["subject"],
            case["expected"]["html"],
            case["expected"]["text"],
        )
