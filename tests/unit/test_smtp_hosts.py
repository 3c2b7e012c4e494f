"""Which SMTP hosts a tenant may use: every way of writing a non-public address is refused with a reason,
public IPv4 and IPv6 literals are accepted (validation only: nothing here connects)."""

from __future__ import annotations

from pathlib import Path

import pytest

from letterhead.errors import InvalidInput
from letterhead.senders import smtp as smtp_service
from letterhead.smtp import hosts
from tests.conftest import make_settings

REFUSED = [
    ("127.0.0.1", "loopback", "127.0.0.1 is the loopback address."),
    ("127.1", "loopback", "127.1 is the loopback address 127.0.0.1 written short."),
    ("2130706433", "loopback", "2130706433 is the loopback address 127.0.0.1 written as a single number."),
    ("0177.0.0.1", "loopback", "0177.0.0.1 is the loopback address 127.0.0.1 written in octal."),
    ("0x7f.0.0.1", "loopback", "0x7f.0.0.1 is the loopback address 127.0.0.1 written in hexadecimal."),
    ("0.0.0.0", "unspecified", "0.0.0.0 is the unspecified address."),
    ("0", "unspecified", "written as a single number"),
    ("10.1.2.3", "private", "a private network address"),
    ("192.168.1.1", "private", "a private network address"),
    ("100.64.0.1", "shared", "carrier-grade NAT"),
    ("169.254.169.254", "metadata", "cloud metadata"),
    ("169.254.1.1", "link_local", "link-local"),
    ("224.0.0.1", "multicast", "multicast"),
    ("240.0.0.1", "reserved", "not publicly routable"),
    ("::1", "loopback", "::1 is the loopback address."),
    ("[::1]", "loopback", "[::1] is the loopback address."),
    ("::", "unspecified", "unspecified"),
    ("fe80::1", "link_local", "link-local"),
    ("fec0::1", "site_local", "site-local"),
    ("fd00::1", "unique_local", "unique local"),
    ("fc00::1", "unique_local", "unique local"),
    ("::ffff:127.0.0.1", "loopback", "::ffff:127.0.0.1 is an IPv4-mapped address of 127.0.0.1, the loopback"),
    ("::ffff:10.0.0.1", "private", "IPv4-mapped address of 10.0.0.1, a private network address"),
    ("2002:7f00:1::", "loopback", "2002:7f00:1:: is a 6to4 address embedding 127.0.0.1, the loopback address."),
    ("2002:a9fe:a9fe::1", "metadata", "6to4 address embedding 169.254.169.254"),
    ("64:ff9b::7f00:1", "loopback", "a NAT64 address embedding 127.0.0.1"),
    ("64:ff9b::a00:1", "private", "a NAT64 address embedding 10.0.0.1"),
    ("ff02::1", "multicast", "multicast"),
    ("localhost", "loopback", "localhost resolves to"),
]


@pytest.mark.parametrize(("host", "code", "words"), REFUSED)
def test_non_public_hosts_are_refused_with_a_reason(host: str, code: str, words: str) -> None:
    refusal = hosts.host_refusal(host)
    assert refusal is not None, host
    assert refusal.code == code
    assert words in refusal.detail


@pytest.mark.parametrize("host", ["8.8.8.8", "2001:4860:4860::8888", "[2001:4860:4860::8888]", "::ffff:8.8.8.8",
                                  "2002:808:808::1", "64:ff9b::808:808", "134744072"])
def test_public_literals_are_accepted(host: str) -> None:
    assert hosts.host_refusal(host, resolve=False) is None


def settings(**over: object) -> smtp_service.SmtpSettings:
    values: dict[str, object] = {"host": "smtp.example.com", "port": 587, "security": "starttls", "username": None,
                                 "password": None, "from_email": "shop@example.jp", "from_name": None}
    values.update(over)
    return smtp_service.SmtpSettings(**values)  # type: ignore[arg-type]


def test_validation_accepts_public_ipv6_and_normalises_literals(tmp_path: Path) -> None:
    app = make_settings(tmp_path, allow_private_smtp_hosts=False, smtp_allowed_ports="25,465,587,2525")
    for given in ("2001:4860:4860::8888", "[2001:4860:4860::8888]", "2001:4860:4860:0:0:0:0:8888"):
        assert smtp_service.validate(settings(host=given), app=app).host == "2001:4860:4860::8888"
    assert smtp_service.validate(settings(host="134744072"), app=app).host == "8.8.8.8"


def test_validation_refuses_private_hosts_and_other_ports(tmp_path: Path) -> None:
    app = make_settings(tmp_path, allow_private_smtp_hosts=False, smtp_allowed_ports="25,465,587,2525")
    with pytest.raises(InvalidInput) as caught:
        smtp_service.validate(settings(host="127.1"), app=app)
    assert caught.value.detail.startswith("127.1 is the loopback address 127.0.0.1 written short.")
    assert caught.value.errors[0]["field"] == "host" and caught.value.errors[0]["reason"] == "loopback"
    with pytest.raises(InvalidInput) as caught:
        smtp_service.validate(settings(host="2001:4860:4860::8888", port=22), app=app)
    assert caught.value.errors == [{"field": "port", "code": "port_not_allowed", "allowed": "25, 465, 587, 2525", "port": 22,
                                    "message": caught.value.errors[0]["message"]}]
    assert "Port 22 is not one Letterhead connects to" in caught.value.detail
    allowed = make_settings(tmp_path, allow_private_smtp_hosts=True, smtp_allowed_ports="2525")
    assert smtp_service.validate(settings(host="127.1", port=2525), app=allowed).host == "127.0.0.1"


def test_allowed_ports_setting_is_parsed(tmp_path: Path) -> None:
    assert make_settings(tmp_path, smtp_allowed_ports="25, 587").allowed_smtp_ports == frozenset({25, 587})
    assert make_settings(tmp_path, smtp_allowed_ports="*").allowed_smtp_ports is None
    with pytest.raises(ValueError, match="not a port"):
        make_settings(tmp_path, smtp_allowed_ports="25,smtp")
