"""Validation of addresses and header values received by the API, the web forms and the CLI.

Bad input gets a clear error and changes nothing (SPEC §4): every function here raises
:class:`letterhead.errors.InvalidInput` whose ``errors`` name the field and say, in words, what to fix.

Decisions:
- **ASCII addresses only.** An internationalised local part (``josé@example.com``) needs SMTPUTF8 (RFC 6531)
  on every hop, and neither tenants' own relays nor the platform transport can be assumed to offer it;
  refusing it up front beats a message that fails later. An internationalised *domain* is fine: it is
  converted to its punycode A-label form (``bücher.example`` -> ``xn--bcher-kva.example``), which every relay
  understands.
- **Bare addresses only.** ``"Name <a@example.com>"`` is refused with a message saying so; names travel in
  their own fields (``from_name``), where :func:`check_header_text` checks them. This keeps one unambiguous
  parse and no header-injection route through a display name.
- The local part keeps its case (RFC 5321 §2.4: only the receiving host may treat it case-insensitively); the
  domain is lower-cased.
- Header text (names, subjects) must not contain control characters: CR/LF would let a caller append headers
  (header injection), NUL and the rest corrupt the message. Unicode line/paragraph separators are refused too.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

import idna
from email_validator import EmailNotValidError, EmailUndeliverableError, validate_email
from email_validator.rfc_constants import CASE_INSENSITIVE_MAILBOX_NAMES, DOT_ATOM_TEXT

from letterhead.dns import Resolver
from letterhead.errors import InvalidInput

__all__ = ["check_header_text", "domain_has_mail_host", "normalize_email", "parse_address_list"]


def _invalid(field: str, message: str, detail: str | None = None) -> InvalidInput:
    return InvalidInput(detail or message, errors=[{"field": field, "message": message}])


def _describe(ch: str) -> str:
    names = {
        "\r": "a carriage return (CR)",
        "\n": "a line feed (LF)",
        "\x00": "a NUL character",
        "\t": "a tab",
    }
    return names.get(ch, f"the control character U+{ord(ch):04X}")


_ASCII_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _bad_char(value: str) -> str | None:
    if value.isascii():  # the same answer, without a category lookup per character
        m = _ASCII_CONTROL.search(value)
        return m.group() if m else None
    for ch in value:
        if unicodedata.category(ch) in ("Cc", "Zl", "Zp"):
            return ch
    return None


# --- the fast path ------------------------------------------------------------------------------------------
# email-validator costs ~60 µs an address, most of it on the domain; a batch of 1,000 notifications would spend
# ~60 ms there. Most addresses are plain ASCII ``local@domain``: for those the local part is checked with
# email-validator's own dot-atom rule (strict: at most 64 characters), and the domain is validated once by
# email-validator itself (through a probe address) and its result cached. The answer is exactly what
# email-validator gives: anything else (quoting, special mailbox names it lower-cases, several @, long addresses,
# a domain it refuses) takes the full path, which also writes every error message.

_LOCAL_MAX = 64
_EMAIL_MAX = 254  # octets, as email-validator counts: the address as given, normalised, and in ASCII form
_CASE_INSENSITIVE = frozenset(CASE_INSENSITIVE_MAILBOX_NAMES)
_DOMAINS: dict[str, tuple[str, int] | None] = {}  # domain as given → (ASCII form lower-cased, longest form's length)
_DOMAINS_MAX = 10_000


def _domain_result(domain: str) -> tuple[str, int] | None:
    hit = _DOMAINS.get(domain, False)
    if hit is not False:
        return hit  # type: ignore[return-value]
    try:
        r = validate_email("a@" + domain, allow_smtputf8=False, allow_display_name=False, allow_quoted_local=False,
                           allow_domain_literal=False, strict=True, check_deliverability=False)
    except EmailNotValidError:
        result = None  # the full path says why
    else:
        ascii_domain = r.ascii_domain
        result = (ascii_domain.lower(), max(len(domain), len(ascii_domain), len(r.domain.encode())))
    if len(_DOMAINS) >= _DOMAINS_MAX:
        _DOMAINS.clear()
    _DOMAINS[domain] = result
    return result


def _fast_normalize(text: str) -> str | None:
    """``text`` normalised exactly as email-validator (strict, no SMTPUTF8) would, or None: use the full path."""
    if not text.isascii() or text.count("@") != 1:
        return None
    local, _, domain = text.partition("@")
    if len(local) > _LOCAL_MAX or not DOT_ATOM_TEXT.match(local) or local.lower() in _CASE_INSENSITIVE:
        return None
    found = _domain_result(domain)
    if found is None or len(local) + 1 + found[1] > _EMAIL_MAX:
        return None
    return f"{local}@{found[0]}"


def normalize_email(
    value: str,
    *,
    field: str = "email",
    check_deliverability: bool = False,
    resolver: Resolver | None = None,
) -> str:
    """Validate one bare address and return it normalised: ASCII, IDN domain as punycode, domain lower-cased.

    With ``check_deliverability`` the domain must exist and accept mail (MX, else A/AAAA; a null MX refuses);
    that needs ``resolver`` (the DNS seam; the system resolver is never used behind the caller's back). A DNS
    timeout or SERVFAIL does not refuse the address: we could not tell, so the address is let through.
    """
    if not check_deliverability and type(value) is str:
        # The usual address, before any of the checks below: when the fast path takes ``value`` as given, it has
        # nothing those checks refuse or strip (no control characters or spaces: the dot-atom local part and a
        # domain email-validator accepted cannot hold any; no angle brackets; ASCII), so the full path would
        # reach the same call with the same text.
        fast = _fast_normalize(value)
        if fast is not None:
            return fast
    if not isinstance(value, str):
        raise _invalid(field, "Enter an email address as text.")
    # Control characters are looked for before stripping: a trailing CR/LF is refused, not silently dropped.
    bad = _bad_char(value)
    text = value.strip()
    if not text:
        raise _invalid(field, "Enter an email address.")
    if bad is not None:
        raise _invalid(
            field,
            f"The email address contains {_describe(bad)}; line breaks and control characters "
            "are not allowed.",
        )
    if "<" in text or ">" in text:
        raise _invalid(
            field,
            "Give the bare address only, such as name@example.com, without a display name or angle brackets.",
        )
    local, at, _domain = text.rpartition("@")
    if at and not local.isascii():
        raise _invalid(
            field,
            "Addresses with non-ASCII characters before the @ (internationalised addresses) "
            "are not supported, because not every mail server accepts them (SMTPUTF8). "
            "Use an address with only ASCII letters, digits and punctuation before the @.",
        )
    if check_deliverability and resolver is None:
        raise ValueError("check_deliverability=True needs the resolver (letterhead.dns.Resolver) to use")
    if not check_deliverability:
        fast = _fast_normalize(text)
        if fast is not None:
            return fast
    try:
        result = validate_email(
            text,
            allow_smtputf8=False,
            allow_display_name=False,
            allow_quoted_local=False,
            allow_domain_literal=False,
            strict=True,  # also enforces RFC 5321's 64-octet limit on the local part
            check_deliverability=check_deliverability,
            dns_resolver=resolver.dnspython if (check_deliverability and resolver is not None) else None,
        )
    except EmailUndeliverableError as exc:
        raise _invalid(field, f"{exc} Check the part after the @ for typing mistakes.") from None
    except EmailNotValidError as exc:
        raise _invalid(field, f"This is not a valid email address: {exc}") from None
    local_part, _, domain = (result.ascii_email or result.normalized).rpartition("@")
    return f"{local_part}@{domain.lower()}"


def domain_has_mail_host(domain: str, resolver: Resolver) -> bool | None:
    """Whether ``domain`` has an MX (not a null MX) or an A/AAAA record; ``None`` when DNS could not tell.

    For warnings ("example.con has no mail server"), not for refusing input.
    """
    name = domain.strip().rstrip(".").lower()
    if not name:
        return False
    if not name.isascii():
        try:
            name = idna.encode(name, uts46=True).decode("ascii")
        except idna.IDNAError:
            return False
    return resolver.has_mail_host(name)


def check_header_text(value: str, *, field: str, max_len: int = 200) -> str:
    """Validate text that goes into a header (display name, subject) and return it stripped.

    Control characters (CR, LF, NUL, tab, ...) and Unicode line/paragraph separators are refused: CR/LF in a
    header value is how a caller would inject headers of its own. An empty value is returned as is (whether
    the field is required is the caller's decision).
    """
    if not isinstance(value, str):
        raise _invalid(field, "Enter text.")
    bad = _bad_char(value)  # before stripping: a trailing CR/LF is refused, not silently dropped
    text = value.strip()
    if bad is not None:
        raise _invalid(
            field, f"Contains {_describe(bad)}; line breaks and control characters are not allowed here."
        )
    if len(text) > max_len:
        raise _invalid(field, f"Too long: {len(text)} characters, at most {max_len} allowed.")
    return text


def parse_address_list(
    values: Sequence[str],
    *,
    field: str = "to",
    max_count: int = 50,
    check_deliverability: bool = False,
    resolver: Resolver | None = None,
) -> list[str]:
    """Validate a list of bare recipient addresses; return them normalised, duplicates removed, order kept.

    Every bad entry is reported (field ``to[2]`` etc.) in one :class:`InvalidInput`, so a caller fixes all at
    once. A single string is taken as a one-address list (``"a@x.com, b@y.com"`` is then refused with a hint).
    """
    items: list[str] = [values] if isinstance(values, str) else list(values)
    if not items:
        raise _invalid(field, "Give at least one recipient address.")
    if len(items) > max_count:
        raise _invalid(field, f"Too many recipients: {len(items)}, at most {max_count} allowed.")
    out: list[str] = []
    seen: set[str] = set()
    errors: list[dict[str, str]] = []
    for i, item in enumerate(items):
        item_field = f"{field}[{i}]"
        if isinstance(item, str) and ("," in item or ";" in item) and "<" not in item:
            errors.append(
                {
                    "field": item_field,
                    "message": "Give one bare address per entry, such as "
                    "name@example.com; separate several recipients as separate list entries.",
                }
            )
            continue
        try:
            address = normalize_email(
                item, field=item_field, check_deliverability=check_deliverability, resolver=resolver
            )
        except InvalidInput as exc:
            errors.extend(exc.errors)
            continue
        if address not in seen:
            seen.add(address)
            out.append(address)
    if errors:
        noun = "address is" if len(errors) == 1 else "addresses are"
        raise InvalidInput(f"{len(errors)} recipient {noun} not valid.", errors=errors)
    return out
