"""Custom sending domains with DKIM (SPEC §1 "Sending domain").

A tenant adds a domain; Letterhead generates an RSA-2048 key pair for it (the private key encrypted at rest with
the vault, never returned), and lists the DNS records to publish:

- **DKIM** TXT at ``<selector>._domainkey.<domain>``: ``v=DKIM1; k=rsa; p=<base64 DER SubjectPublicKeyInfo>``.
  This is the one that makes the domain *verified*: once it holds our public key, mail from the domain that goes
  through the platform transport is DKIM-signed with ``d=<domain>``, and a DKIM signature aligned with the From
  domain is enough for DMARC to pass (RFC 7489 §4.2), whatever the domain's policy.
- **SPF** TXT at ``<domain>``: ``v=spf1 include:<spf_include> ~all``. Advisory: a domain must have at most one SPF
  record (RFC 7208 §3.2, two make every check a permerror), so when one exists we propose the merged record.
- **DMARC** TXT at ``_dmarc.<domain>``: ``v=DMARC1; p=none`` recommended when the domain (or its organisational
  domain) has none. Advisory.

``check`` looks the records up through the one DNS seam (:class:`letterhead.dns.Resolver`), uncached: a person
who has just published a record and presses "Check" must see it. "DNS could not answer" (timeout, SERVFAIL) is
a 503 and changes nothing; it is never mistaken for "missing", which would unverify a working domain.

The same domain may be added by several tenants: each gets its own key and selector and proves control by DNS
separately; nothing is shared between them. Selectors are the configured prefix plus the UTC date
(``lh20261127``), with ``-2``, ``-3``… when that name is taken for the domain, so two keys never compete for
one DNS name.

Signing (:func:`sign`) implements RFC 6376 relaxed/relaxed rsa-sha256 here and signs with ``cryptography``
(OpenSSL), with the loaded key cached per process: ~0.6 ms per ~4 KB message, most of it the RSA-2048
operation. dkimpy's ``dkim.sign`` does the RSA operation in pure Python and parses the PEM on every call
(~10-12 ms per message), which would cap a worker near 90 signed messages per second per core. The tests verify
our signatures with dkimpy's independent ``dkim.verify``.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import re
import time
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

import idna
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from letterhead.context import Context
from letterhead.dns import DnsUnavailable, Resolver
from letterhead.errors import ConfigurationError, Conflict, InvalidInput, NotFound
from letterhead.models import DomainStatus, SendingDomain, Tenant, utcnow
from letterhead.plans import Feature
from letterhead.senders.default import platform_address
from letterhead.senders.dmarc import DmarcChecker, DmarcPolicy, organizational_domain

__all__ = [
    "DkimKey",
    "RecordStatus",
    "add_domain",
    "authenticating_domain",
    "check_domain",
    "delete_domain",
    "dkim_key_for",
    "get_domain",
    "list_domains",
    "normalize_domain",
    "resolver",
    "sign",
    "spf_include",
]

KEY_BITS = 2048
#: The header fields we sign (RFC 6376 §5.4.1's recommendations that notification mail carries). A listed
#: field that is absent (often Reply-To) is signed as absent, so it cannot be added in transit.
SIGNED_HEADERS = (
    b"from",
    b"to",
    b"subject",
    b"date",
    b"message-id",
    b"reply-to",
    b"mime-version",
    b"content-type",
)


class RecordStatus(StrEnum):
    """Per-record status (stored in ``SendingDomain.checks``). Stored values are pinned by tests."""

    PENDING = "pending"  # not checked yet
    VERIFIED = "verified"  # found as it should be
    MISSING = "missing"  # nothing there
    MISMATCH = "mismatch"  # something there, but not what it should be (see the advice)


@dataclass(frozen=True)
class DkimKey:
    """What the worker needs to DKIM-sign a message: ``d=``, ``s=`` and the private key (PKCS#8 PEM)."""

    domain: str
    selector: str
    private_key: bytes = field(repr=False)  # never in logs or reprs


# --- domains ---------------------------------------------------------------------------------------------------

_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")


def _bad(message: str, detail: str | None = None) -> InvalidInput:
    return InvalidInput(detail or message, errors=[{"field": "domain", "message": message}])


def _platform_domain(ctx: Context) -> str:
    addr, _ = platform_address(ctx.settings)
    return addr.rpartition("@")[2].strip().rstrip(".").lower()


def normalize_domain(raw: str) -> str:
    """Lower-case ASCII form of a domain name (IDNs to punycode, IDNA 2008 with UTS #46 mapping).

    Raises :class:`InvalidInput` with a sentence a tenant can act on.
    """
    text = (raw or "").strip()
    if not text:
        raise _bad("required", "Enter the domain you send from, e.g. example.com.")
    if "@" in text:
        raise _bad(
            "an address, not a domain",
            f"Enter only the domain, the part after the @ (e.g. {text.rpartition('@')[2] or 'example.com'}).",
        )
    if "://" in text or "/" in text:
        raise _bad("a URL, not a domain", "Enter only the domain name, e.g. example.com, without http:// or /.")
    if text.endswith("."):
        raise _bad("trailing dot", f"Enter the domain without the trailing dot: {text.rstrip('.')}.")
    if any(c.isspace() for c in text):
        raise _bad("contains spaces", "A domain name cannot contain spaces.")
    if not text.isascii():
        try:
            text = idna.encode(text, uts46=True).decode("ascii")
        except idna.IDNAError as exc:
            raise _bad("not a valid internationalised domain", f"This is not a valid domain name: {exc}.") from None
    text = text.lower()
    if len(text) > 253:
        raise _bad("longer than 253 characters", "A domain name is at most 253 characters long.")
    labels = text.split(".")
    if len(labels) < 2:
        raise _bad("needs at least two labels", "Enter a full domain such as example.com (with a dot).")
    for label in labels:
        if not _LABEL.match(label):
            raise _bad(
                "invalid label",
                f"'{label}' is not a valid part of a domain name: use letters, digits and hyphens (not at either "
                "end), 1-63 characters between dots.",
            )
    if labels[-1].isdigit():
        raise _bad("an IP address, not a domain", "Enter a domain name, not an IP address.")
    return text


def _validate_new(ctx: Context, raw: str) -> str:
    domain = normalize_domain(raw)
    if organizational_domain(domain) is None:
        raise _bad(
            "a public suffix",
            f"{domain} is a public suffix (like com or co.jp), not a domain you can own. Enter your own domain.",
        )
    platform = _platform_domain(ctx)
    platform_org = organizational_domain(platform) or platform
    if domain in (platform, platform_org) or domain.endswith("." + platform):
        raise _bad(
            "the platform's own domain",
            f"{domain} is {ctx.settings.platform_name}'s own sending domain; add a domain of your own.",
        )
    return domain


def _lookup_name(raw: str) -> str | None:
    """The stored form of a domain in a URL, or None when it cannot be one (then: 404)."""
    try:
        return normalize_domain(raw)
    except InvalidInput:
        return None


def spf_include(ctx: Context) -> str:
    """What tenants add to their SPF record: ``LETTERHEAD_SPF_INCLUDE``, else ``_spf.<platform From domain>``."""
    return ctx.settings.spf_include or f"_spf.{_platform_domain(ctx)}"


def _selector_base(ctx: Context, now: datetime) -> str:
    prefix = ctx.settings.dkim_selector_prefix.strip().lower()
    if not re.fullmatch(r"[a-z0-9](?:[a-z0-9-]{0,40})", prefix):
        raise ConfigurationError(
            "LETTERHEAD_DKIM_SELECTOR_PREFIX must be 1-41 lower-case letters, digits or hyphens (e.g. 'lh').",
            setting="LETTERHEAD_DKIM_SELECTOR_PREFIX",
        )
    return f"{prefix}{now:%Y%m%d}"


def _new_key() -> tuple[str, str]:
    """(PKCS#8 PEM of a new RSA-2048 private key, base64 of its DER SubjectPublicKeyInfo)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode("ascii")
    spki = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return pem, base64.b64encode(spki).decode("ascii")


def add_domain(ctx: Context, *, tenant: Tenant, domain: str) -> dict[str, Any]:
    """Add a sending domain: a new key pair and selector; the records to publish (all ``pending``)."""
    ctx.plans.require_feature(tenant.plan, Feature.DOMAINS)
    name = _validate_new(ctx, domain)
    pem, public = _new_key()  # before the transaction: it takes ~100 ms
    enc = ctx.vault.encrypt(pem)
    # Two tenants adding the same domain on the same day race for a selector; the unique (domain, selector)
    # constraint decides, and the loser takes the next free selector.
    for _ in range(5):
        now = utcnow()
        base = _selector_base(ctx, now)
        try:
            with ctx.db.session() as s:
                if _row(s, tenant.id, name) is not None:
                    raise Conflict(
                        f"{name} is already one of your sending domains. Check its DNS records instead, or delete it "
                        "first to start over with a new key.",
                        domain=name,
                    )
                taken = set(s.scalars(select(SendingDomain.selector).where(SendingDomain.domain == name)))
                selector, n = base, 1
                while selector in taken:
                    n += 1
                    selector = f"{base}-{n}"
                row = SendingDomain(
                    tenant_id=tenant.id,
                    domain=name,
                    selector=selector,
                    private_key_enc=enc,
                    public_key=public,
                    status=DomainStatus.PENDING.value,
                    created_at=now,
                )
                s.add(row)
                s.flush()
                return _public(ctx, row)
        except IntegrityError:
            continue
    raise Conflict(f"{name} is being added by another request right now; try again.", domain=name)


def _row(session: Session, tenant_id: str, domain: str) -> SendingDomain | None:
    return session.scalar(
        select(SendingDomain).where(SendingDomain.tenant_id == tenant_id).where(SendingDomain.domain == domain)
    )


def _get(session: Session, tenant_id: str, domain: str) -> SendingDomain:
    name = _lookup_name(domain)
    row = _row(session, tenant_id, name) if name is not None else None
    if row is None:
        raise NotFound(f"No sending domain '{domain}'. Add it first (POST …/domains).", domain=domain)
    return row


def list_domains(ctx: Context, *, tenant: Tenant) -> list[dict[str, Any]]:
    ctx.plans.require_feature(tenant.plan, Feature.DOMAINS)
    with ctx.db.session() as s:
        rows = s.scalars(
            select(SendingDomain).where(SendingDomain.tenant_id == tenant.id).order_by(SendingDomain.domain)
        )
        return [_public(ctx, row) for row in rows]


def get_domain(ctx: Context, *, tenant: Tenant, domain: str) -> dict[str, Any]:
    ctx.plans.require_feature(tenant.plan, Feature.DOMAINS)
    with ctx.db.session() as s:
        return _public(ctx, _get(s, tenant.id, domain))


def delete_domain(ctx: Context, *, tenant: Tenant, domain: str) -> None:
    """Forget the domain and its key. Mail from it is no longer DKIM-signed (branded mail to a domain with an
    enforcing DMARC policy goes "via Platform" again)."""
    ctx.plans.require_feature(tenant.plan, Feature.DOMAINS)
    with ctx.db.session() as s:
        s.delete(_get(s, tenant.id, domain))


# --- records ---------------------------------------------------------------------------------------------------


def _dkim_host(row: SendingDomain) -> str:
    return f"{row.selector}._domainkey.{row.domain}"


def _dkim_value(public_key: str) -> str:
    return f"v=DKIM1; k=rsa; p={public_key}"


def _spf_value(ctx: Context) -> str:
    return f"v=spf1 include:{spf_include(ctx)} ~all"


DMARC_RECOMMENDED = "v=DMARC1; p=none"


def _relative(host: str, domain: str) -> str:
    """The host as most DNS panels want it: relative to the zone (``@`` for the domain itself)."""
    return "@" if host == domain else host.removesuffix("." + domain)


def _public(ctx: Context, row: SendingDomain) -> dict[str, Any]:
    """The API shape of a domain. Never the private key."""
    checks = row.checks or {}
    wanted = {
        "dkim": (_dkim_host(row), _dkim_value(row.public_key), True),
        "spf": (row.domain, _spf_value(ctx), False),
        "dmarc": (f"_dmarc.{row.domain}", DMARC_RECOMMENDED, False),
    }
    records = []
    for purpose, (host, value, required) in wanted.items():
        done = checks.get(purpose) or {}
        records.append(
            {
                "purpose": purpose,
                "type": "TXT",
                "host": host,
                "name": _relative(host, row.domain),
                # What the record at ``host`` should hold (for SPF: the merged record when one exists).
                "value": done.get("value") or value,
                "status": done.get("status", RecordStatus.PENDING.value),
                "found": done.get("found"),
                "required": required,
                "advice": done.get("advice") or _pending_advice(ctx, purpose, host, row.domain),
            }
        )
    try:
        unicode_name = idna.decode(row.domain)
    except idna.IDNAError:
        unicode_name = row.domain
    return {
        "domain": row.domain,
        "unicode": unicode_name if unicode_name != row.domain else None,
        "status": row.status,
        "selector": row.selector,
        "created_at": row.created_at.isoformat(),
        "checked_at": row.checked_at.isoformat() if row.checked_at else None,
        "verified_at": row.verified_at.isoformat() if row.verified_at else None,
        "dkim_signing": row.status == DomainStatus.VERIFIED.value,
        "records": records,
    }


def _pending_advice(ctx: Context, purpose: str, host: str, domain: str) -> dict[str, str]:
    if purpose == "dkim":
        return {
            "en": f"Publish this TXT record at {host} with your DNS provider, then press Check. DNS changes can "
            "take from a few minutes to a few hours to appear.",
            "ja": f"DNS 管理画面で {host} にこの TXT レコードを追加し、「確認」を押してください。DNS の変更が反映される"
            "まで数分から数時間かかることがあります。",
        }
    if purpose == "spf":
        return {
            "en": f"If {domain} already has a TXT record starting with v=spf1, do not add a second one: add "
            f"include:{spf_include(ctx)} to the existing record (two SPF records make SPF fail).",
            "ja": f"{domain} に v=spf1 で始まる TXT レコードが既にある場合は、2 つ目を追加せず、既存のレコードに "
            f"include:{spf_include(ctx)} を追記してください（SPF レコードが 2 つあると SPF は失敗します）。",
        }
    return {
        "en": f"If {host} has no DMARC record yet, publish this one (monitoring only: p=none changes no delivery).",
        "ja": f"{host} に DMARC レコードがまだない場合は、これを追加してください（p=none は監視のみで、配信には影響しません）。",
    }


# --- checking --------------------------------------------------------------------------------------------------


def resolver(ctx: Context) -> Resolver:
    """The process's resolver for domain checks, kept on the context (rebuilt when ``dns_nameservers``
    changes), like the DMARC checker of senders/branded.py. It caches nothing: checks must see fresh DNS."""
    setting = ctx.settings.dns_nameservers
    cached: tuple[str | None, Resolver] | None = getattr(ctx, "_domains_resolver", None)
    if cached is not None and cached[0] == setting:
        return cached[1]
    made = Resolver.from_setting(setting)
    ctx._domains_resolver = (setting, made)  # type: ignore[attr-defined]
    return made


def _tags(record: str) -> dict[str, str]:
    """Tag=value list (RFC 6376 §3.2): names and values trimmed, the first occurrence wins."""
    out: dict[str, str] = {}
    for part in record.split(";"):
        name, sep, value = part.partition("=")
        if sep:
            out.setdefault(name.strip(), value.strip())
    return out


def _b64(text: str) -> bytes | None:
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        return None


def _check_dkim(res: Resolver, row: SendingDomain) -> dict[str, Any]:
    host = _dkim_host(row)
    expected = _dkim_value(row.public_key)
    records = list(res.txt_lookup(host).records)
    ours = base64.b64decode(row.public_key)
    if not records:
        # A DNS panel that appends the zone to every name turns "lh…._domainkey.example.com" into
        # "lh…._domainkey.example.com.example.com": look there too, so the advice can say what happened.
        doubled = f"{host}.{row.domain}"
        if res.txt_lookup(doubled).records:
            return _result(
                RecordStatus.MISSING,
                [],
                en=f"The record was published at {doubled}: your DNS provider adds the domain by itself. Enter only "
                f"{_relative(host, row.domain)} as the host (name) of the record.",
                ja=f"レコードが {doubled} に追加されています。DNS 管理画面がドメイン名を自動で付け加えるため、ホスト名には "
                f"{_relative(host, row.domain)} だけを入力してください。",
            )
        return _result(
            RecordStatus.MISSING,
            [],
            en=f"No TXT record at {host} yet. Publish it with the value shown, then check again (DNS changes can take "
            "a while to appear).",
            ja=f"{host} に TXT レコードがまだありません。表示された値で追加してから、もう一度確認してください（反映まで時間が"
            "かかることがあります）。",
        )
    problems: list[tuple[str, str]] = []
    for text in records:
        stripped = text.strip()
        if stripped.startswith('"') or stripped.endswith('"'):
            problems.append(
                (
                    "The record contains quotation marks: enter the value without the surrounding \" characters.",
                    "レコードに引用符（\"）が含まれています。前後の \" を付けずに値を入力してください。",
                )
            )
            continue
        tags = _tags(stripped)
        version = stripped.split(";", 1)[0].partition("=")
        if version[1] and version[0].strip() == "v" and version[2].strip() != "DKIM1":
            problems.append(("The record does not start with v=DKIM1.", "レコードが v=DKIM1 で始まっていません。"))
            continue
        if tags.get("k", "rsa").lower() != "rsa":
            problems.append(("The record says k=" + tags["k"] + "; it must be k=rsa.", "k= の値は rsa にしてください。"))
            continue
        p = "".join(tags.get("p", "").split())
        if "p" not in tags:
            problems.append(("The record has no p= (public key).", "レコードに p=（公開鍵）がありません。"))
            continue
        if not p:
            problems.append(
                ("The record's key is empty (p=): that means the key is revoked.", "p= が空です（鍵の失効を意味します）。")
            )
            continue
        found = _b64(p)
        if found == ours:
            continue
        if row.public_key.startswith(p):
            problems.append(
                (
                    f"The key is cut off after {len(p)} characters. Some DNS providers limit a TXT value to 255 "
                    "characters: paste the whole value (or split it into several strings as your provider explains).",
                    f"公開鍵が {len(p)} 文字で途切れています。TXT の値を 255 文字までに制限する DNS サービスがあります。値全体を"
                    "貼り付けるか、サービスの説明に従って複数の文字列に分けて入力してください。",
                )
            )
            continue
        problems.append(
            (
                "The record holds a different public key (from an earlier setup or another service?).",
                "レコードの公開鍵が異なります（以前の設定や別のサービスのものかもしれません）。",
            )
        )
    if not problems:
        return _result(
            RecordStatus.VERIFIED,
            records,
            en="DKIM is set up: mail from this domain is signed by the platform.",
            ja="DKIM の設定が完了しました。このドメインのメールはプラットフォームで署名されます。",
        )
    several = len(records) > 1
    en = " ".join(dict.fromkeys(p[0] for p in problems))
    ja = "".join(dict.fromkeys(p[1] for p in problems))
    if several:
        en += f" There are {len(records)} TXT records at {host}; keep only one."
        ja += f"{host} に TXT レコードが {len(records)} 件あります。1 件だけにしてください。"
    return _result(
        RecordStatus.MISMATCH,
        records,
        en=f"{en} Replace the value of the TXT record at {host} with exactly: {expected}",
        ja=f"{ja}{host} の TXT レコードの値を次の値に置き換えてください: {expected}",
    )


def _is_spf(record: str) -> bool:
    # RFC 7208 §4.5: "v=spf1" followed by a space or the end, case-insensitively.
    low = record.strip().lower()
    return low == "v=spf1" or low.startswith("v=spf1 ")


_ALL = re.compile(r"^[+\-~?]?all$", re.IGNORECASE)


def _merged_spf(record: str, include: str) -> str:
    """``record`` with ``include:<include>`` added before its ``all`` (or ``redirect=``), else at the end."""
    terms = record.split()
    for i, term in enumerate(terms):
        if i and (_ALL.match(term) or term.lower().startswith("redirect=")):
            return " ".join([*terms[:i], f"include:{include}", *terms[i:]])
    return " ".join([*terms, f"include:{include}"])


def _check_spf(ctx: Context, res: Resolver, row: SendingDomain) -> dict[str, Any]:
    include = spf_include(ctx)
    spf = [r for r in res.txt_lookup(row.domain).records if _is_spf(r)]
    if not spf:
        return _result(
            RecordStatus.MISSING,
            [],
            en=f"{row.domain} has no SPF record. Publish the value shown as a TXT record at {row.domain}.",
            ja=f"{row.domain} に SPF レコードがありません。表示された値を {row.domain} の TXT レコードとして追加してください。",
        )
    if len(spf) > 1:
        terms: list[str] = []
        for r in spf:
            for t in r.split()[1:]:
                if not _ALL.match(t) and t.lower() != f"include:{include}".lower() and t not in terms:
                    terms.append(t)
        merged = " ".join(["v=spf1", *terms, f"include:{include}", "~all"])
        return _result(
            RecordStatus.MISMATCH,
            spf,
            value=merged,
            en=f"{row.domain} has {len(spf)} SPF records; there must be only one (with two, SPF fails for every "
            f"message). Replace them with one record, for example: {merged}",
            ja=f"{row.domain} に SPF レコードが {len(spf)} 件あります。1 件でなければなりません（2 件以上あると SPF は常に"
            f"失敗します）。次のように 1 件にまとめてください: {merged}",
        )
    record = spf[0]
    terms = [t.lower() for t in record.split()]
    if f"include:{include}".lower() in terms or f"+include:{include}".lower() in terms or (
        f"redirect={include}".lower() in terms
    ):
        return _result(
            RecordStatus.VERIFIED,
            spf,
            value=record,
            en="SPF authorises the platform's servers.",
            ja="SPF にプラットフォームの送信サーバーが含まれています。",
        )
    merged = _merged_spf(record, include)
    return _result(
        RecordStatus.MISMATCH,
        spf,
        value=merged,
        en=f"{row.domain} has an SPF record without include:{include}. Do not add a second SPF record: change the "
        f"existing one to: {merged}",
        ja=f"{row.domain} の SPF レコードに include:{include} がありません。SPF レコードを 2 つにせず、既存のレコードを次の"
        f"ように変更してください: {merged}",
    )


def _check_dmarc(res: Resolver, row: SendingDomain) -> dict[str, Any]:
    # A fresh checker per check (ttl_cap 0): the branded route's checker caches, a check must not.
    result = DmarcChecker(res, ttl_cap=0).check(row.domain)
    if result.policy is DmarcPolicy.UNAVAILABLE:
        raise DnsUnavailable(result.detail or "DNS unavailable", name=f"_dmarc.{row.domain}", rdtype="TXT")
    host = f"_dmarc.{row.domain}"
    if result.policy is DmarcPolicy.MISSING:
        return _result(
            RecordStatus.MISSING,
            [],
            en=f"No DMARC record applies to {row.domain}. Publishing the recommended one at {host} is a good start "
            "(p=none only asks for reports); DKIM signing works without it.",
            ja=f"{row.domain} に適用される DMARC レコードがありません。まず推奨の値を {host} に追加するとよいでしょう（p=none "
            "はレポートのみで配信に影響しません）。DKIM 署名はこのレコードがなくても機能します。",
        )
    found = (result.raw or "").split("\n")
    if result.policy is DmarcPolicy.INVALID:
        return _result(
            RecordStatus.MISMATCH,
            found,
            en=f"The DMARC record of {result.record_domain} is not valid: {result.detail} Fix it (for example: "
            f"{DMARC_RECOMMENDED}).",
            ja=f"{result.record_domain} の DMARC レコードが正しくありません（{result.detail}）。修正してください（例: "
            f"{DMARC_RECOMMENDED}）。",
        )
    raw = result.raw or ""
    strict = _tags(raw).get("adkim", "r").lower() == "s"
    where = (
        ("", "")
        if result.record_domain == row.domain
        else (
            f" (inherited from _dmarc.{result.record_domain})",
            f"（_dmarc.{result.record_domain} のレコードが適用されます）",
        )
    )
    return _result(
        RecordStatus.VERIFIED,
        found,
        value=raw,
        strict_dkim_alignment=strict,
        policy=result.policy.value,
        en=f"DMARC policy p={result.policy.value}{where[0]}. Mail DKIM-signed for {row.domain} passes it."
        + (
            " adkim=s: only addresses exactly @" + row.domain + " align, not its subdomains."
            if strict
            else ""
        ),
        ja=f"DMARC ポリシーは p={result.policy.value} です{where[1]}。{row.domain} の DKIM 署名付きメールは DMARC に合格します。"
        + (f"adkim=s のため、サブドメインではなく @{row.domain} のアドレスのみが一致します。" if strict else ""),
    )


def _result(status: RecordStatus, found: list[str], *, en: str, ja: str, **extra: Any) -> dict[str, Any]:
    return {"status": status.value, "found": found, "advice": {"en": en, "ja": ja}, **extra}


def check_domain(ctx: Context, *, tenant: Tenant, domain: str) -> dict[str, Any]:
    """Look the records up now and store each one's status. The domain is ``verified`` when its DKIM record
    holds our public key. DNS trouble raises :class:`DnsUnavailable` (503) and changes nothing."""
    ctx.plans.require_feature(tenant.plan, Feature.DOMAINS)
    with ctx.db.session() as s:
        probe = _get(s, tenant.id, domain)  # detached afterwards, still readable (expire_on_commit=False)
    # DNS outside the transaction (lookups may take seconds; SQLite holds a write lock per transaction).
    res = resolver(ctx)
    checks = {
        "dkim": _check_dkim(res, probe),
        "spf": _check_spf(ctx, res, probe),
        "dmarc": _check_dmarc(res, probe),
    }
    now = utcnow()
    with ctx.db.session() as s:
        row = s.get(SendingDomain, probe.id)
        if row is None or row.public_key != probe.public_key:
            raise NotFound(f"No sending domain '{domain}' (it was deleted while being checked).", domain=domain)
        verified = checks["dkim"]["status"] == RecordStatus.VERIFIED
        if verified and row.status != DomainStatus.VERIFIED.value:
            row.verified_at = now
        row.status = (DomainStatus.VERIFIED if verified else DomainStatus.PENDING).value
        row.checks = checks
        row.checked_at = now
        s.flush()
        return _public(ctx, row)


# --- sending ---------------------------------------------------------------------------------------------------


def _ascii(domain: str) -> str | None:
    text = domain.strip().rstrip(".").lower()
    if not text:
        return None
    if not text.isascii():
        try:
            text = idna.encode(text, uts46=True).decode("ascii")
        except idna.IDNAError:
            return None
    return text


def authenticating_domain(session: Session, tenant_id: str, from_domain: str) -> SendingDomain | None:
    """The tenant's verified sending domain that can DKIM-sign mail From ``from_domain``: the domain itself, or
    its organisational domain (relaxed DKIM alignment, RFC 7489 §3.1.1), unless that domain's DMARC record
    asks for strict alignment (``adkim=s``), under which a parent's signature does not align."""
    name = _ascii(from_domain)
    if name is None:
        return None
    org = organizational_domain(name)
    candidates = [name] + ([org] if org and org != name else [])
    rows = {
        row.domain: row
        for row in session.scalars(
            select(SendingDomain)
            .where(SendingDomain.tenant_id == tenant_id)
            .where(SendingDomain.status == DomainStatus.VERIFIED.value)
            .where(SendingDomain.domain.in_(candidates))
        )
    }
    if name in rows:
        return rows[name]
    if org in rows:
        parent = rows[org]
        if not ((parent.checks or {}).get("dmarc") or {}).get("strict_dkim_alignment"):
            return parent
    return None


def dkim_key_for(ctx: Context, session: Session, tenant_id: str, from_domain: str) -> DkimKey | None:
    """The key to sign mail From ``from_domain`` with, or None when the tenant has no verified domain for it."""
    row = authenticating_domain(session, tenant_id, from_domain)
    if row is None:
        return None
    return DkimKey(
        domain=row.domain, selector=row.selector, private_key=ctx.vault.decrypt(row.private_key_enc).encode()
    )


@functools.lru_cache(maxsize=1024)
def _load_key(pem: bytes) -> rsa.RSAPrivateKey:
    # Cached: once per key and process, not once per message. The RSA consistency check is skipped (it costs
    # ~60 ms per key): we generated the key, and it comes out of the vault, whose Fernet tokens are
    # authenticated, so it cannot have been altered at rest.
    key = serialization.load_pem_private_key(pem, password=None, unsafe_skip_rsa_key_validation=True)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ConfigurationError("A stored DKIM key is not an RSA key.")
    return key


_WSP = re.compile(rb"[ \t]+")
_LONE_LF = re.compile(rb"(?<!\r)\n")


def _canon_header(name: bytes, value: bytes) -> bytes:
    """RFC 6376 §3.4.2 relaxed: lower-case name, unfold, runs of WSP to one SP, no WSP around the value."""
    if b"\r" in value:
        value = value.replace(b"\r\n", b"")
    # The substring tests are C-speed; most values (single spaces, no tabs) never need the regex (~1 µs a call).
    if b"\t" in value or b"  " in value:
        value = _WSP.sub(b" ", value)
    return name.rstrip(b" \t").lower() + b":" + value.strip(b" ") + b"\r\n"


def _canon_body(body: bytes) -> bytes:
    """RFC 6376 §3.4.4 relaxed: runs of WSP to one SP, none at line ends, no empty lines at the end; a
    non-empty body ends with CRLF (an empty one stays empty)."""
    # The substring tests are C-speed; composed bodies (base64 parts) rarely need the regex at all.
    if b"\t" in body or b"  " in body:
        body = _WSP.sub(b" ", body)
    if b" \r\n" in body:
        body = body.replace(b" \r\n", b"\r\n")
    body = body.rstrip(b"\r\n ")
    return body + b"\r\n" if body else b""


def _fields(head: bytes) -> list[tuple[bytes, bytes]]:
    out: list[tuple[bytes, bytes]] = []
    for line in head.split(b"\r\n"):
        if line[:1] in (b" ", b"\t") and out:
            name, value = out[-1]
            out[-1] = (name, value + b"\r\n" + line)
        elif b":" in line:
            name, _, value = line.partition(b":")
            out.append((name, value))
    return out


def _fold_b64(sig: bytes, width: int = 72) -> bytes:
    return b"\r\n ".join(sig[i : i + width] for i in range(0, len(sig), width))


def sign(message: bytes, key: DkimKey, *, composed: bool = False) -> bytes:
    """The ``DKIM-Signature: …\\r\\n`` header to prepend to ``message`` (relaxed/relaxed, rsa-sha256).

    ``message`` is the complete message with CRLF line endings (bare LFs are read as CRLF, as SMTP will send
    them), not dot-stuffed. ``composed``: ``message`` is ``notifications.compose`` output, so it has no bare LFs
    and its body (base64 lines and part headers with single spaces) is already in relaxed canonical form; that
    saves five scans of the message (~15 µs for 17 KB; tests/unit/test_dkim_sign.py checks the claim).
    """
    if not composed and message.count(b"\n") != message.count(b"\r\n"):  # two C-speed scans; the regex only when needed
        message = _LONE_LF.sub(b"\r\n", message)
    if message.startswith(b"\r\n"):
        head, body = b"", message[2:]
    else:
        head, sep, body = message.partition(b"\r\n\r\n")
        if not sep:
            head, body = message.removesuffix(b"\r\n"), b""
    body_hash = base64.b64encode(hashlib.sha256(body if composed else _canon_body(body)).digest())
    # RFC 6376 §5.4.2: for each name in h=, the last unused instance, bottom up; an absent one adds nothing.
    fields = _fields(head)
    names = [f[0].strip().lower() for f in fields]  # once, not once per signed name
    used: set[int] = set()
    signed = bytearray()
    for name in SIGNED_HEADERS:
        for i in range(len(fields) - 1, -1, -1):
            if names[i] == name and i not in used:
                used.add(i)
                signed += _canon_header(*fields[i])
                break
    domain, selector = key.domain.encode("ascii"), key.selector.encode("ascii")
    # The signature header as it will be sent, with an empty b=; it is hashed last, without its CRLF (§3.7).
    value = (
        b" v=1; a=rsa-sha256; c=relaxed/relaxed; d=" + domain + b"; s=" + selector + b";\r\n"
        b" t=" + str(int(time.time())).encode() + b"; h=" + b":".join(SIGNED_HEADERS) + b";\r\n"
        b" bh=" + body_hash + b";\r\n"
        b" b="
    )
    signed += _canon_header(b"DKIM-Signature", value)[:-2]
    signature = _load_key(key.private_key).sign(bytes(signed), padding.PKCS1v15(), hashes.SHA256())
    return b"DKIM-Signature:" + value + _fold_b64(base64.b64encode(signature)) + b"\r\n"
