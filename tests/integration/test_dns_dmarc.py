"""The DNS seam and the DMARC checker against a real (local, dnslib) DNS server on 127.0.0.1."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from letterhead.dns import DnsUnavailable, Resolver
from letterhead.errors import ConfigurationError, LetterheadError
from letterhead.senders.dmarc import DmarcChecker, DmarcPolicy, DmarcResult, organizational_domain
from tests.support.dnsserver import LocalDnsServer, Zone, unused_port
from tests.support.dnsserver import dns_server as dns_server  # the fixture, by name

ZONE: Zone = {
    "_dmarc.reject.example": [("TXT", "v=DMARC1; p=reject; rua=mailto:dmarc@reject.example")],
    "_dmarc.quarantine.example": [("TXT", "v=DMARC1; p=quarantine; pct=50")],
    "_dmarc.none.example": [("TXT", "v=DMARC1; p=none")],
    "missing.example": [("A", "93.184.215.14")],
    "_dmarc.malformed.example": [("TXT", "v=DMARC1; p=block")],
    "_dmarc.nopolicy.example": [("TXT", "v=DMARC1; rua=mailto:dmarc@nopolicy.example")],
    "_dmarc.badsp.example": [("TXT", "v=DMARC1; p=none; sp=always")],
    # The organisational domain says p=none for itself and sp=reject for its subdomains.
    "_dmarc.parent.example": [("TXT", "v=DMARC1; p=none; sp=reject")],
    # A subdomain with its own record is governed by it, not by the parent's sp=.
    "_dmarc.own.parent.example": [("TXT", "v=DMARC1; p=quarantine")],
    "_dmarc.orgonly.example": [("TXT", "v=DMARC1; p=quarantine")],
    # Public suffix with two labels: the organisational domain of news.brand.co.uk is brand.co.uk.
    "_dmarc.brand.co.uk": [("TXT", "v=DMARC1; p=none; sp=quarantine")],
    "_dmarc.split.example": [("TXT", ["v=DMARC1; p=", "reject; ", "pct=100"])],
    "_dmarc.twice.example": [("TXT", "v=DMARC1; p=none"), ("TXT", "v=DMARC1; p=reject")],
    "_dmarc.twice-sub.example": [("TXT", "v=DMARC1; p=reject")],  # must not be consulted for twice.example
    "_dmarc.mixed.example": [("TXT", "google-site-verification=abc"), ("TXT", "v=DMARC1; p=reject")],
    "_dmarc.notdmarc.example": [("TXT", "v=spf1 -all")],
    "_dmarc.zero-q.example": [("TXT", "v=DMARC1; p=quarantine; pct=0")],
    "_dmarc.zero-r.example": [("TXT", "v=DMARC1; p=reject; pct=0")],
    "_dmarc.badpct.example": [("TXT", "v=DMARC1; p=quarantine; pct=lots")],
    "_dmarc.case.example": [("TXT", "v = dmarc1 ; P=Reject ; SP=None")],
    "_dmarc.servfail.example": "SERVFAIL",
    "_dmarc.long.example": [
        ("TXT", "v=DMARC1; p=reject; rua=" + ",".join(f"mailto:r{i}@long.example" for i in range(40)))
    ],
    "_dmarc.ttl.example": [("TXT", "v=DMARC1; p=reject", 60)],
    "_dmarc.bigttl.example": [("TXT", "v=DMARC1; p=reject", 86400)],
    "_dmarc.orgttl.example": [("TXT", "v=DMARC1; p=reject", 120)],
    "mail.example": [("MX", "10 mx.mail.example."), ("A", "93.184.215.14")],
    "nullmx.example": [("MX", "0 .")],
    "aonly.example": [("A", "93.184.215.14"), ("AAAA", "2606:2800:21f:cb07:6820:80da:af6b:8b2c")],
    "txtonly.example": [("TXT", "hello")],
    "alias.example": [("CNAME", "aonly.example.")],
    "drop.example": "DROP",
}


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def server(dns_server: LocalDnsServer) -> LocalDnsServer:
    dns_server.set_zone(ZONE)
    return dns_server


@pytest.fixture
def resolver(server: LocalDnsServer) -> Resolver:
    return server.resolver(timeout=2.0)


@pytest.fixture
def checker(resolver: Resolver) -> DmarcChecker:
    return DmarcChecker(resolver, clock=FakeClock())


# -- policies ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("domain", "policy", "blocks"),
    [
        ("reject.example", DmarcPolicy.REJECT, True),
        ("quarantine.example", DmarcPolicy.QUARANTINE, True),
        ("none.example", DmarcPolicy.NONE, False),
        ("missing.example", DmarcPolicy.MISSING, False),
        ("nonexistent.example", DmarcPolicy.MISSING, False),
        ("notdmarc.example", DmarcPolicy.MISSING, False),
        ("malformed.example", DmarcPolicy.INVALID, False),
        ("nopolicy.example", DmarcPolicy.INVALID, False),
        ("badsp.example", DmarcPolicy.INVALID, False),
        ("split.example", DmarcPolicy.REJECT, True),
        ("mixed.example", DmarcPolicy.REJECT, True),
        ("zero-q.example", DmarcPolicy.QUARANTINE, False),  # pct=0: nothing sampled, the rest gets "none"
        ("zero-r.example", DmarcPolicy.REJECT, True),  # pct=0: the rest still gets "quarantine"
        ("badpct.example", DmarcPolicy.QUARANTINE, True),  # bad pct ignored -> 100
        ("case.example", DmarcPolicy.REJECT, True),
        (
            "long.example",
            DmarcPolicy.REJECT,
            True,
        ),  # answer > 512 bytes: truncated over UDP, retried over TCP
    ],
)
def test_policies(checker: DmarcChecker, domain: str, policy: DmarcPolicy, blocks: bool) -> None:
    result = checker.check(domain)
    assert result.domain == domain
    assert result.policy is policy
    assert result.blocks_unauthenticated is blocks


def test_reject_result_fields(checker: DmarcChecker) -> None:
    result = checker.check("Reject.Example.")
    assert result == DmarcResult(
        domain="reject.example",
        record_domain="reject.example",
        policy=DmarcPolicy.REJECT,
        subdomain_policy=None,
        raw="v=DMARC1; p=reject; rua=mailto:dmarc@reject.example",
        pct=100,
    )
    assert result.should_send_via_platform


def test_quarantine_pct(checker: DmarcChecker) -> None:
    assert checker.check("quarantine.example").pct == 50


def test_missing_has_no_record(checker: DmarcChecker, server: LocalDnsServer) -> None:
    result = checker.check("missing.example")
    assert (result.record_domain, result.raw) == (None, None)
    assert not result.should_send_via_platform
    # missing.example is its own organisational domain: one query, no fallback.
    assert server.count(qtype="TXT") == 1


def test_malformed_is_invalid_and_conservatively_rewritten(checker: DmarcChecker) -> None:
    result = checker.check("malformed.example")
    assert result.raw == "v=DMARC1; p=block"
    assert result.detail is not None and "p=" in result.detail
    assert not result.blocks_unauthenticated
    assert result.is_uncertain and result.should_send_via_platform


def test_multi_string_txt_is_joined(checker: DmarcChecker) -> None:
    assert checker.check("split.example").raw == "v=DMARC1; p=reject; pct=100"


def test_two_dmarc_records_are_invalid_without_fallback(
    checker: DmarcChecker, server: LocalDnsServer
) -> None:
    result = checker.check("twice.example")
    assert result.policy is DmarcPolicy.INVALID
    assert result.record_domain == "twice.example"
    assert result.raw is not None and sorted(result.raw.split("\n")) == [
        "v=DMARC1; p=none",
        "v=DMARC1; p=reject",
    ]
    assert result.should_send_via_platform
    assert server.count(qtype="TXT") == 1


def test_subdomain_inherits_sp_from_org_domain(checker: DmarcChecker, server: LocalDnsServer) -> None:
    result = checker.check("mail.parent.example")
    assert result.policy is DmarcPolicy.REJECT
    assert result.record_domain == "parent.example"
    assert result.subdomain_policy == "reject"
    assert result.blocks_unauthenticated
    assert server.count("_dmarc.mail.parent.example", "TXT") == 1
    assert server.count("_dmarc.parent.example", "TXT") == 1
    # The org domain itself uses p=.
    assert checker.check("parent.example").policy is DmarcPolicy.NONE


def test_subdomain_without_sp_uses_p(checker: DmarcChecker) -> None:
    result = checker.check("a.b.orgonly.example")
    assert (result.policy, result.record_domain, result.subdomain_policy) == (
        DmarcPolicy.QUARANTINE,
        "orgonly.example",
        None,
    )


def test_subdomain_own_record_wins(checker: DmarcChecker) -> None:
    result = checker.check("own.parent.example")
    assert (result.policy, result.record_domain) == (DmarcPolicy.QUARANTINE, "own.parent.example")


def test_org_domain_under_multi_label_public_suffix(checker: DmarcChecker) -> None:
    assert organizational_domain("news.brand.co.uk") == "brand.co.uk"
    result = checker.check("news.brand.co.uk")
    assert (result.policy, result.record_domain) == (DmarcPolicy.QUARANTINE, "brand.co.uk")


def test_public_suffix_itself_has_no_org_fallback(checker: DmarcChecker, server: LocalDnsServer) -> None:
    assert organizational_domain("co.uk") is None
    assert checker.check("co.uk").policy is DmarcPolicy.MISSING
    assert server.count(qtype="TXT") == 1


def test_idn_domain_is_queried_as_punycode(checker: DmarcChecker, server: LocalDnsServer) -> None:
    server.add("_dmarc.xn--bcher-kva.example", ("TXT", "v=DMARC1; p=reject"))
    result = checker.check("bücher.example")
    assert (result.domain, result.policy) == ("xn--bcher-kva.example", DmarcPolicy.REJECT)


def test_servfail_is_unavailable(checker: DmarcChecker) -> None:
    result = checker.check("servfail.example")
    assert result.policy is DmarcPolicy.UNAVAILABLE
    assert result.detail is not None
    assert result.should_send_via_platform


def test_unreachable_server_is_unavailable() -> None:
    resolver = Resolver([("127.0.0.1", unused_port())], timeout=0.3)
    result = DmarcChecker(resolver).check("reject.example")
    assert result.policy is DmarcPolicy.UNAVAILABLE
    assert result.should_send_via_platform


def test_silent_server_times_out(resolver: Resolver, server: LocalDnsServer) -> None:
    quick = server.resolver(timeout=0.3)
    with pytest.raises(DnsUnavailable) as info:
        quick.txt("drop.example")
    assert isinstance(info.value, LetterheadError)
    assert info.value.name == "drop.example"


def test_policy_values_are_pinned() -> None:
    assert [p.value for p in DmarcPolicy] == [
        "none",
        "quarantine",
        "reject",
        "missing",
        "invalid",
        "unavailable",
    ]


# -- cache ---------------------------------------------------------------------------------------------------


def _checker(server: LocalDnsServer, **kwargs: int) -> tuple[DmarcChecker, FakeClock]:
    clock = FakeClock()
    return DmarcChecker(server.resolver(), clock=clock, **kwargs), clock


def test_cache_honours_record_ttl(server: LocalDnsServer) -> None:
    checker, clock = _checker(server)
    assert checker.check("ttl.example").policy is DmarcPolicy.REJECT
    assert server.count("_dmarc.ttl.example") == 1
    clock.now += 59
    assert checker.check("ttl.example").policy is DmarcPolicy.REJECT
    assert server.count("_dmarc.ttl.example") == 1  # still cached: no query
    server.set("_dmarc.ttl.example", [("TXT", "v=DMARC1; p=none", 60)])
    clock.now += 2  # past the 60 s TTL
    assert checker.check("ttl.example").policy is DmarcPolicy.NONE
    assert server.count("_dmarc.ttl.example") == 2


def test_cache_caps_ttl(server: LocalDnsServer) -> None:
    checker, clock = _checker(server, ttl_cap=600)
    checker.check("bigttl.example")
    clock.now += 599
    checker.check("bigttl.example")
    assert server.count("_dmarc.bigttl.example") == 1
    clock.now += 2
    checker.check("bigttl.example")
    assert server.count("_dmarc.bigttl.example") == 2


def test_cache_keeps_negative_answers_for_soa_minimum(server: LocalDnsServer) -> None:
    server.negative_ttl = 120
    checker, clock = _checker(server)
    assert checker.check("missing.example").policy is DmarcPolicy.MISSING
    clock.now += 119
    assert checker.check("missing.example").policy is DmarcPolicy.MISSING
    assert server.count() == 1
    server.add("_dmarc.missing.example", ("TXT", "v=DMARC1; p=quarantine"))
    clock.now += 2
    assert checker.check("missing.example").policy is DmarcPolicy.QUARANTINE
    assert server.count() == 2


def test_cache_of_fallback_uses_lowest_ttl(server: LocalDnsServer) -> None:
    server.negative_ttl = 3000
    checker, clock = _checker(server)
    assert checker.check("www.orgttl.example").record_domain == "orgttl.example"
    assert server.count() == 2
    clock.now += 119
    checker.check("www.orgttl.example")
    assert server.count() == 2
    clock.now += 2  # the org record's 120 s TTL has passed
    checker.check("www.orgttl.example")
    assert server.count() == 4


def test_unavailable_is_cached_briefly(server: LocalDnsServer) -> None:
    checker, clock = _checker(server, unavailable_ttl=30)
    assert checker.check("servfail.example").policy is DmarcPolicy.UNAVAILABLE
    n = server.count()
    checker.check("servfail.example")
    assert server.count() == n
    server.set("_dmarc.servfail.example", [("TXT", "v=DMARC1; p=reject")])
    clock.now += 31
    assert checker.check("servfail.example").policy is DmarcPolicy.REJECT


# -- the resolver seam
# ----------------------------------------------------------------------------------------


def test_txt_answers(resolver: Resolver) -> None:
    answer = resolver.txt("_dmarc.ttl.example")
    assert answer is not None and answer.records == ("v=DMARC1; p=reject",) and answer.ttl == 60
    assert resolver.txt("txtonly.example") is not None
    assert resolver.txt("aonly.example") is None  # NOERROR, no TXT
    assert resolver.txt("nowhere.example") is None  # NXDOMAIN
    with pytest.raises(DnsUnavailable):
        resolver.txt("_dmarc.servfail.example")


def test_has_mail_host(resolver: Resolver) -> None:
    assert resolver.has_mail_host("mail.example") is True
    assert resolver.has_mail_host("aonly.example") is True
    assert resolver.has_mail_host("alias.example") is True
    assert resolver.has_mail_host("nullmx.example") is False
    assert resolver.has_mail_host("txtonly.example") is False
    assert resolver.has_mail_host("nowhere.example") is False
    assert resolver.has_mail_host("_dmarc.servfail.example") is None


def test_addresses(resolver: Resolver) -> None:
    assert resolver.addresses("aonly.example") == ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"]
    assert resolver.addresses("alias.example") == ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"]
    assert resolver.addresses("txtonly.example") == []
    assert resolver.addresses("nowhere.example") == []


# -- LETTERHEAD_DNS_NAMESERVERS ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("127.0.0.1:5353", (("127.0.0.1", 5353),)),
        ("1.2.3.4", (("1.2.3.4", 53),)),
        ("[::1]:53", (("::1", 53),)),
        ("[2001:db8::1]", (("2001:db8::1", 53),)),
        ("::1", (("::1", 53),)),
        (" 127.0.0.1:5353 , [::1]:5354 ", (("127.0.0.1", 5353), ("::1", 5354))),
    ],
)
def test_from_setting(value: str, expected: tuple[tuple[str, int], ...]) -> None:
    assert Resolver.from_setting(value).nameservers == expected


@pytest.mark.parametrize(
    "value",
    [
        "localhost:53",
        "127.0.0.1:abc",
        "127.0.0.1:0",
        "127.0.0.1:70000",
        "[::1",
        "[::1]x",
        "[::1]:",
        "1.2.3.4,",
        "999.1.1.1",
        "127.0.0.1:53:53",
        "dns.example.com",
    ],
)
def test_from_setting_rejects_bad_values(value: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        Resolver.from_setting(value)
    assert "LETTERHEAD_DNS_NAMESERVERS" in info.value.detail


@pytest.mark.parametrize("value", [None, "", "  "])
def test_from_setting_empty_means_system_resolver(value: str | None) -> None:
    try:
        resolver = Resolver.from_setting(value)
    except ConfigurationError:  # a machine without /etc/resolv.conf: still a clear configuration error
        return
    assert resolver.nameservers is None  # constructing it makes no query


def test_from_setting_talks_to_the_server(server: LocalDnsServer) -> None:
    resolver = Resolver.from_setting(server.setting, timeout=2.0)
    answer = resolver.txt("_dmarc.reject.example")
    assert answer is not None and answer.records[0].startswith("v=DMARC1")


@pytest.fixture
def ipv6_server() -> Iterator[LocalDnsServer]:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 on this machine")
    try:
        server = LocalDnsServer(ZONE, host="::1").start()
    except OSError as exc:
        pytest.skip(f"cannot bind [::1]: {exc}")
    yield server
    server.stop()


def test_ipv6_nameserver(ipv6_server: LocalDnsServer) -> None:
    assert ipv6_server.setting.startswith("[::1]:")
    checker = DmarcChecker(Resolver.from_setting(ipv6_server.setting, timeout=2.0))
    assert checker.check("reject.example").policy is DmarcPolicy.REJECT
