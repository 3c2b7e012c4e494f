"""Address and header-value validation (SPEC §4: bad input gets a clear error and changes nothing)."""

from __future__ import annotations

import pytest

from letterhead.addresses import check_header_text, domain_has_mail_host, normalize_email, parse_address_list
from letterhead.dns import Resolver
from letterhead.errors import InvalidInput
from tests.support.dnsserver import LocalDnsServer, Zone
from tests.support.dnsserver import dns_server as dns_server  # the fixture, by name

ZONE: Zone = {
    "mx.example": [("MX", "10 in.mx.example.")],
    "aonly.example": [("A", "93.184.215.14")],
    "privatea.example": [("A", "10.0.0.1")],  # only a non-global address: email-validator refuses it
    "nothing.example": [("TXT", "v=spf1 -all")],
    "nullmx.example": [("MX", "0 .")],
    "broken.example": "SERVFAIL",
    "xn--bcher-kva.example": [("MX", "10 mail.xn--bcher-kva.example.")],
}


@pytest.fixture
def resolver(dns_server: LocalDnsServer) -> Resolver:
    dns_server.set_zone(ZONE)
    return dns_server.resolver(timeout=2.0)


def _error(exc: pytest.ExceptionInfo[InvalidInput]) -> tuple[str, str]:
    [error] = exc.value.errors
    return error["field"], error["message"]


# -- normalize_email -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("alice@example.com", "alice@example.com"),
        ("  alice@example.com  ", "alice@example.com"),
        ("Alice.Smith+orders@EXAMPLE.Com", "Alice.Smith+orders@example.com"),  # local part keeps its case
        ("o'brien@sub.example.co.uk", "o'brien@sub.example.co.uk"),
        ("info@bücher.example", "info@xn--bcher-kva.example"),  # IDN domain -> punycode
        ("info@BÜCHER.example", "info@xn--bcher-kva.example"),
        ("info@xn--bcher-kva.example", "info@xn--bcher-kva.example"),
    ],
)
def test_valid_addresses(value: str, expected: str) -> None:
    assert normalize_email(value) == expected


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("", "Enter an email address"),
        ("   ", "Enter an email address"),
        ("alice", "not a valid email address"),
        ("alice@", "not a valid email address"),
        ("@example.com", "not a valid email address"),
        ("alice@@example.com", "not a valid email address"),
        ("alice@example", "not a valid email address"),
        ("ali ce@example.com", "not a valid email address"),
        ("alice@exa_mple.com", "not a valid email address"),
        ("alice.@example.com", "not a valid email address"),
        ('"alice"@example.com', "not a valid email address"),
        ("alice@[192.0.2.1]", "not a valid email address"),
        ("alice@localhost", "not a valid email address"),
        ("a" * 65 + "@example.com", "not a valid email address"),
        ("Alice <alice@example.com>", "bare address"),
        ("<alice@example.com>", "bare address"),
    ],
)
def test_invalid_addresses(value: str, words: str) -> None:
    with pytest.raises(InvalidInput) as exc:
        normalize_email(value, field="from_email")
    field, message = _error(exc)
    assert field == "from_email"
    assert words in message


@pytest.mark.parametrize(
    "value", ["alice@example.com\r\nBcc: victim@example.org", "alice@example.com\n", "ali\x00ce@example.com"]
)
def test_control_characters_in_address(value: str) -> None:
    with pytest.raises(InvalidInput) as exc:
        normalize_email(value)
    assert "control characters" in _error(exc)[1] or "not a valid" in _error(exc)[1]


@pytest.mark.parametrize("value", ["josé@example.com", "用户@example.com", "пример@пример.example"])
def test_internationalised_local_part_refused(value: str) -> None:
    with pytest.raises(InvalidInput) as exc:
        normalize_email(value, field="to")
    field, message = _error(exc)
    assert field == "to"
    assert "non-ASCII" in message and "SMTPUTF8" in message


def test_invalid_input_shape() -> None:
    with pytest.raises(InvalidInput) as exc:
        normalize_email("nope")
    assert exc.value.status == 422
    assert exc.value.errors[0].keys() == {"field", "message"}
    assert exc.value.detail


# -- deliverability against the local DNS server
# --------------------------------------------------------------


def test_deliverability_mx(resolver: Resolver) -> None:
    assert normalize_email("a@mx.example", check_deliverability=True, resolver=resolver) == "a@mx.example"


def test_deliverability_a_only(resolver: Resolver) -> None:
    assert (
        normalize_email("a@aonly.example", check_deliverability=True, resolver=resolver) == "a@aonly.example"
    )


def test_deliverability_idn(resolver: Resolver) -> None:
    result = normalize_email("a@bücher.example", check_deliverability=True, resolver=resolver)
    assert result == "a@xn--bcher-kva.example"


@pytest.mark.parametrize(
    ("domain", "words"),
    [
        ("nowhere.example", "does not exist"),
        ("nothing.example", "does not"),
        ("nullmx.example", "does not accept email"),
        ("privatea.example", "does not accept email"),
    ],
)
def test_deliverability_refused(resolver: Resolver, domain: str, words: str) -> None:
    with pytest.raises(InvalidInput) as exc:
        normalize_email(f"a@{domain}", field="to", check_deliverability=True, resolver=resolver)
    field, message = _error(exc)
    assert field == "to"
    assert words in message


def test_deliverability_unknown_when_dns_fails(resolver: Resolver) -> None:
    # SERVFAIL: we cannot tell, so the address is not refused.
    assert (
        normalize_email("a@broken.example", check_deliverability=True, resolver=resolver)
        == "a@broken.example"
    )


def test_deliverability_needs_a_resolver() -> None:
    with pytest.raises(ValueError, match="resolver"):
        normalize_email("a@example.com", check_deliverability=True)


def test_domain_has_mail_host(resolver: Resolver) -> None:
    assert domain_has_mail_host("mx.example", resolver) is True
    assert domain_has_mail_host("AONLY.example.", resolver) is True
    assert domain_has_mail_host("bücher.example", resolver) is True
    assert domain_has_mail_host("nothing.example", resolver) is False
    assert domain_has_mail_host("nullmx.example", resolver) is False
    assert domain_has_mail_host("nowhere.example", resolver) is False
    assert domain_has_mail_host("broken.example", resolver) is None


# -- header text
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "Acme\r\nBcc: victim@example.org",
        "Acme\nBcc: victim@example.org",
        "Acme\rX",
        "Your order\x00",
        "Tab\there",
        "Esc\x1b[31m",
        "Del\x7f",
        "NEL\x85",
        "Line\u2028separator",
    ],
)
def test_header_injection_refused(value: str) -> None:
    with pytest.raises(InvalidInput) as exc:
        check_header_text(value, field="subject")
    field, message = _error(exc)
    assert field == "subject"
    assert "not allowed" in message


def test_header_injection_in_name_names_the_field() -> None:
    with pytest.raises(InvalidInput) as exc:
        check_header_text("Acme Shop\r\nReply-To: attacker@example.org", field="from_name")
    field, message = _error(exc)
    assert field == "from_name"
    assert "carriage return" in message


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("  Acme Shop  ", "Acme Shop"),
        ("株式会社アクメ", "株式会社アクメ"),
        ('Acme "Best" Shop, Ltd.', 'Acme "Best" Shop, Ltd.'),
        ("", ""),
        ("Ünïcödé 😀", "Ünïcödé 😀"),
    ],
)
def test_header_text_accepted(value: str, expected: str) -> None:
    assert check_header_text(value, field="from_name") == expected


def test_header_text_length() -> None:
    assert check_header_text("x" * 200, field="subject") == "x" * 200
    with pytest.raises(InvalidInput) as exc:
        check_header_text("x" * 201, field="subject")
    assert "at most 200" in _error(exc)[1]
    assert check_header_text("x" * 998, field="subject", max_len=998)


# -- address lists
# --------------------------------------------------------------------------------------------


def test_address_list_normalises_and_dedupes() -> None:
    result = parse_address_list(["a@Example.com", " b@example.com", "a@example.COM", "c@bücher.example"])
    assert result == ["a@example.com", "b@example.com", "c@xn--bcher-kva.example"]


def test_address_list_reports_every_bad_entry() -> None:
    with pytest.raises(InvalidInput) as exc:
        parse_address_list(
            ["ok@example.com", "Bob <bob@example.com>", "nope", "josé@example.com"], field="to"
        )
    errors = exc.value.errors
    assert [e["field"] for e in errors] == ["to[1]", "to[2]", "to[3]"]
    assert "bare address" in errors[0]["message"]
    assert "3 recipient addresses" in exc.value.detail


def test_address_list_comma_separated_string_gets_a_hint() -> None:
    with pytest.raises(InvalidInput) as exc:
        parse_address_list(["a@example.com, b@example.com"])
    assert "one bare address per entry" in exc.value.errors[0]["message"]


def test_address_list_single_string() -> None:
    assert parse_address_list("a@example.com") == ["a@example.com"]


def test_address_list_bounds() -> None:
    with pytest.raises(InvalidInput) as exc:
        parse_address_list([], field="to")
    assert _error(exc) == ("to", "Give at least one recipient address.")
    assert len(parse_address_list([f"u{i}@example.com" for i in range(50)])) == 50
    with pytest.raises(InvalidInput) as exc:
        parse_address_list([f"u{i}@example.com" for i in range(51)])
    assert "at most 50" in _error(exc)[1]
    with pytest.raises(InvalidInput):
        parse_address_list(["a@example.com", "b@example.com"], max_count=1)


def test_address_list_with_deliverability(resolver: Resolver) -> None:
    assert parse_address_list(["a@mx.example"], check_deliverability=True, resolver=resolver) == [
        "a@mx.example"
    ]
    with pytest.raises(InvalidInput) as exc:
        parse_address_list(
            ["a@mx.example", "b@nowhere.example"], check_deliverability=True, resolver=resolver
        )
    assert exc.value.errors[0]["field"] == "to[1]"


def test_fast_path_gives_exactly_what_email_validator_gives() -> None:
    """The cached fast path (plain ASCII addresses) against the full path, on valid and invalid addresses."""
    import random

    from letterhead import addresses

    locals_ = ["a", "Hanako.Yamada", "x+tag", "o'neil", "a..b", ".a", "a.", "Postmaster", "ABUSE", "a" * 64, "a" * 65,
               "a_b-c", "#!$%&*/=?^`{|}~", "a b", "\"q\"", "ü", ""]
    domains = ["example.com", "EXAMPLE.Com", "sub.example.co.jp", "localhost", "example", "ex_ample.com",
               "-a.example.com", "a-.example.com", "xn--bcher-kva.example", "xn--zz.example", "bücher.example",
               "a" * 63 + ".com", "a" * 64 + ".com", ("a" * 60 + ".") * 4 + "com", "example.invalid", "1.2.3.4",
               "[127.0.0.1]", "example.com.", "exa..mple.com", "example.123", ""]
    cases = [f"{lo}@{d}" for lo in locals_ for d in domains] + ["a@b@example.com", "plain", "@example.com"]
    # What the checks before the fast path refuse or strip: the fast path must not take these as given.
    cases += [" a@example.com", "a@example.com ", "a@example.com\r\n", "\ta@example.com", "a@example.com\x00",
              "<a@example.com>", "Name <a@example.com>", "a@example.com>", "a@exa mple.com", "a@example.com\x7f",
              "a\u2028@example.com", "a@example.com\u2029"]
    random.seed(7)
    cases += ["".join(random.choice("aB3.-_+@x") for _ in range(random.randint(1, 12))) + "@example.com"
              for _ in range(300)]

    def slow(value: str) -> str | BaseException:
        saved = addresses._fast_normalize
        addresses._fast_normalize = lambda text: None  # type: ignore[assignment]
        try:
            return normalize_email(value)
        except InvalidInput as exc:
            return exc
        finally:
            addresses._fast_normalize = saved

    for value in cases:
        expected = slow(value)
        fast = addresses._fast_normalize(value)
        if isinstance(expected, BaseException):
            assert fast is None, value
            with pytest.raises(InvalidInput) as caught:
                normalize_email(value)
            assert caught.value.errors == expected.errors, value
        else:
            assert fast in (None, expected), value
            assert normalize_email(value) == expected
    assert addresses._fast_normalize("Hanako.Yamada@EXAMPLE.Com") == "Hanako.Yamada@example.com"
