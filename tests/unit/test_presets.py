"""SMTP provider presets: every preset the spec names, with sane, JSON-ready fields."""

from __future__ import annotations

import json
import re

import pytest

from letterhead.errors import InvalidInput
from letterhead.smtp.diagnose import Remedy, detect_provider, provider_display_name
from letterhead.smtp.presets import PRESETS, PortOption, Preset, get_preset

SPEC_IDS = [
    "gmail", "google_workspace", "microsoft365", "outlook_com", "zoho", "yahoo", "icloud",
    "amazon_ses", "sendgrid", "mailgun", "brevo", "custom",
]


def test_all_twelve_presets_in_spec_order() -> None:
    assert list(PRESETS) == SPEC_IDS


@pytest.mark.parametrize("preset_id", SPEC_IDS)
def test_preset_fields_are_sane(preset_id: str) -> None:
    p = get_preset(preset_id)
    assert isinstance(p, Preset) and p.id == preset_id and p.name
    assert p.options and all(isinstance(o, PortOption) for o in p.options)
    for o in p.options:
        assert 1 <= o.port <= 65535
        assert o.security in ("ssl", "starttls", "none")
        # The help article's rule: SSL with 465, TLS (STARTTLS) with 587.
        if o.port in (465, 2465):
            assert o.security == "ssl"
        if o.port in (587, 2587, 2525, 25):
            assert o.security == "starttls"
    assert len({(o.port, o.security) for o in p.options}) == len(p.options)
    if preset_id == "custom":
        assert p.host is None
    else:
        assert p.host and re.fullmatch(r"[a-z0-9.-]+\.[a-z]{2,}", p.host)
        # The diagnosis recognises the preset's own host, and names it the same way.
        assert detect_provider(host=p.host) in (preset_id, "gmail" if preset_id == "google_workspace" else None)
        assert provider_display_name(preset_id) == p.name
        assert p.docs_url and p.docs_url.startswith("https://")
    assert isinstance(p.username_hint, Remedy) and p.username_hint.en and p.username_hint.ja
    for limit in (p.daily_limit, p.per_minute_limit):
        assert limit is None or (isinstance(limit, int) and limit > 0)
    assert 1 <= p.max_connections <= 20
    assert set(p.steps) == {"en", "ja"}
    assert p.steps["en"] and len(p.steps["en"]) == len(p.steps["ja"])
    assert all(s.strip() for s in p.steps["en"] + p.steps["ja"])
    assert all(re.search(r"[ぁ-んァ-ン]", s) for s in p.steps["ja"])


@pytest.mark.parametrize("preset_id", SPEC_IDS)
def test_as_dict_is_json_serialisable(preset_id: str) -> None:
    data = get_preset(preset_id).as_dict()
    round_trip = json.loads(json.dumps(data, ensure_ascii=False))
    assert round_trip == data
    assert data["id"] == preset_id
    assert data["port"] == data["options"][0]["port"]  # type: ignore[index]
    assert set(data) >= {"id", "name", "host", "options", "username_hint", "daily_limit", "per_minute_limit",
                         "max_connections", "steps", "docs_url"}


def test_known_provider_facts() -> None:
    gmail = PRESETS["gmail"]
    assert gmail.host == "smtp.gmail.com"
    assert [(o.port, o.security) for o in gmail.options] == [(465, "ssl"), (587, "starttls")]
    assert gmail.daily_limit == 500
    assert PRESETS["google_workspace"].daily_limit == 2000
    ms = PRESETS["microsoft365"]
    assert (ms.host, ms.options[0]) == ("smtp.office365.com", PortOption(587, "starttls"))
    assert (ms.daily_limit, ms.per_minute_limit, ms.max_connections) == (10000, 30, 3)
    assert PRESETS["outlook_com"].host == "smtp-mail.outlook.com" and PRESETS["outlook_com"].daily_limit == 300
    assert PRESETS["zoho"].host == "smtp.zoho.com"
    assert {o.port for o in PRESETS["zoho"].options} == {465, 587}
    assert PRESETS["yahoo"].host == "smtp.mail.yahoo.com"
    assert PRESETS["icloud"].host == "smtp.mail.me.com" and PRESETS["icloud"].daily_limit == 1000
    ses = PRESETS["amazon_ses"]
    assert ses.host == "email-smtp.us-east-1.amazonaws.com" and ses.host_hint is not None
    assert {o.port for o in ses.options} >= {587, 465, 2587}
    assert PRESETS["sendgrid"].host == "smtp.sendgrid.net" and "apikey" in PRESETS["sendgrid"].username_hint.en
    assert PRESETS["mailgun"].host == "smtp.mailgun.org"
    assert PRESETS["brevo"].host == "smtp-relay.brevo.com" and PRESETS["brevo"].options[0].port == 587


def test_gmail_steps_follow_the_help_article() -> None:
    en = " ".join(PRESETS["gmail"].steps["en"])
    ja = " ".join(PRESETS["gmail"].steps["ja"])
    for part in ("myaccount.google.com/security", "myaccount.google.com/apppasswords", "smtp.gmail.com", "465", "587"):
        assert part in en and part in ja
    assert "2 段階認証プロセス" in ja and "アプリ パスワード" in ja
    assert "[保存] ボタン" in ja and "1 日の送信上限" in ja


def test_microsoft365_has_the_four_steps_of_the_help_article() -> None:
    en = PRESETS["microsoft365"].steps["en"]
    ja = PRESETS["microsoft365"].steps["ja"]
    assert "Authenticated SMTP" in en[0] and "admin.microsoft.com" in en[0]
    assert "Modern authentication" in en[1]
    assert "App passwords" in en[2]
    assert "admin.exchange.microsoft.com" in en[3] and "Mail flow > Rules" in en[3]
    assert "認証済み SMTP" in ja[0] and "Microsoft 365 管理センター" in ja[0]
    assert "モダン認証" in ja[1]
    assert "アプリ パスワード" in ja[2]
    assert "[メールフロー] > [ルール]" in ja[3]


def test_unknown_preset_is_invalid_input() -> None:
    with pytest.raises(InvalidInput) as exc:
        get_preset("hotmale")
    assert exc.value.errors and exc.value.errors[0]["field"] == "preset"
