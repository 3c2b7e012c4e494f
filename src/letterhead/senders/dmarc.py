"""DMARC policy discovery (RFC 7489 §6.6.3) for the From domain of branded senders (SPEC §2.2 step 7).

Why it matters: in ``branded`` mode the platform's transport sends mail whose From is the tenant's address.
Unless the tenant's domain is authenticated with Letterhead (DKIM-signed by us), that mail cannot align SPF or
DKIM with the From domain, so it fails DMARC; if the domain publishes ``p=quarantine`` or ``p=reject`` the
receivers junk or bounce it. Then Letterhead must send as "Tenant via Platform" from the platform address with
Reply-To the tenant.

Discovery, as the RFC says:
1. Query ``_dmarc.<From domain>``; keep only the TXT records whose first tag is ``v=DMARC1``.
2. None kept: query ``_dmarc.<Organizational Domain>`` (the public suffix plus one label, RFC 7489 §3.2, from
   the Public Suffix List bundled *offline* with the ``publicsuffixlist`` package: no lookups at run time).
3. A record found at the organisational domain applies to the subdomain through ``sp=`` when present, else
   ``p=``.

Decisions where the RFC leaves a choice or where caution differs from the letter of the RFC:
- **Several DMARC records** at one name: RFC 7489 §6.6.3 step 4 says discovery terminates and DMARC is not
  applied, so a strict receiver would not enforce anything. We report ``INVALID`` (not ``MISSING``): the
  domain owner did publish a policy, just a broken one, and lenient receivers may well pick one of the
  records. We do not fall back to the organisational domain in that case (the RFC only falls back when the set
  is empty).
- **Malformed record** (no ``p=``, unknown ``p``/``sp`` value) is ``INVALID``. The RFC (step 5) says receivers
  then apply no policy (or ``p=none`` when a valid ``rua`` is present). We still treat it as *possibly
  enforcing* in :attr:`DmarcResult.should_send_via_platform`: the "via Platform" form always delivers, whereas
  guessing wrong the other way loses mail. Unknown tags are ignored (RFC 7489 §6.3); a bad ``pct`` is ignored
  and 100 is used (the stricter reading).
- **pct**: with ``pct<100`` a receiver applies the *next lower* policy to the messages not sampled (§6.6.4):
  reject becomes quarantine, quarantine becomes none. So ``p=reject`` blocks at any ``pct`` (even 0 means
  "quarantine all"), while ``p=quarantine; pct=0`` does not block.
- **DNS unavailable** (timeout, SERVFAIL): ``UNAVAILABLE``, cached only briefly; callers should treat it as
  blocking (:attr:`DmarcResult.should_send_via_platform` does).

Caching: results are cached per queried domain for the lowest TTL of the answers they depend on (negative
answers use the RFC 2308 SOA minimum), capped at ``ttl_cap``; the clock is injectable for tests.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from functools import cache

import idna
from publicsuffixlist import PublicSuffixList

from letterhead.dns import DnsUnavailable, Resolver

__all__ = [
    "DmarcChecker",
    "DmarcPolicy",
    "DmarcResult",
    "ParsedDmarcRecord",
    "organizational_domain",
    "parse_dmarc_record",
]


class DmarcPolicy(StrEnum):
    """Stored values are pinned by tests; never rename a value."""

    NONE = "none"
    QUARANTINE = "quarantine"
    REJECT = "reject"
    MISSING = "missing"  # no DMARC record at the domain nor at its organisational domain
    INVALID = "invalid"  # a record exists but is malformed, or there are several
    UNAVAILABLE = "unavailable"  # DNS could not answer


_POLICY_VALUES = {
    "none": DmarcPolicy.NONE,
    "quarantine": DmarcPolicy.QUARANTINE,
    "reject": DmarcPolicy.REJECT,
}


@dataclass(frozen=True)
class DmarcResult:
    domain: str  # the domain asked about (the From domain), lower case ASCII
    record_domain: str | None  # where the record was found (the domain or its organisational domain)
    policy: DmarcPolicy  # the policy that applies to ``domain`` (sp= already taken into account)
    subdomain_policy: str | None  # the record's sp= value, if any
    raw: str | None  # the record text (several records joined by newlines when INVALID for that reason)
    pct: int  # 0-100, default 100
    detail: str | None = None  # why INVALID or UNAVAILABLE, in words for the tenant

    @property
    def blocks_unauthenticated(self) -> bool:
        """Sending this From through the platform (not DKIM-aligned) would be junked or rejected by receivers
        applying this policy: ``reject`` at any pct (unsampled mail is quarantined, RFC 7489 §6.6.4), or
        ``quarantine`` with pct > 0."""
        if self.policy is DmarcPolicy.REJECT:
            return True
        return self.policy is DmarcPolicy.QUARANTINE and self.pct > 0

    @property
    def is_uncertain(self) -> bool:
        """We could not read a usable policy (malformed/duplicate record, or DNS unavailable)."""
        return self.policy in (DmarcPolicy.INVALID, DmarcPolicy.UNAVAILABLE)

    @property
    def should_send_via_platform(self) -> bool:
        """The conservative decision for an unauthenticated domain: rewrite to "Tenant via Platform" when the
        policy blocks or when we cannot tell (the rewrite always delivers; a wrong guess the other way loses
        mail).
        """
        return self.blocks_unauthenticated or self.is_uncertain


@dataclass(frozen=True)
class ParsedDmarcRecord:
    policy: DmarcPolicy  # NONE/QUARANTINE/REJECT, or INVALID
    subdomain_policy: DmarcPolicy | None
    sp_raw: str | None
    pct: int
    detail: str | None


def _is_dmarc_record(text: str) -> bool:
    # RFC 7489 §6.4: the v tag must come first with the value "DMARC1" (whitespace allowed around "=").
    # Records that fail this are "not DMARC" and discarded (§6.6.3). The ABNF spells "DMARC1"
    # case-sensitively, but we accept any case: some receivers do, and reading a policy where there may be
    # none errs on the safe side.
    first = text.split(";", 1)[0]
    name, sep, value = first.partition("=")
    return bool(sep) and name.strip().lower() == "v" and value.strip().upper() == "DMARC1"


def parse_dmarc_record(text: str) -> ParsedDmarcRecord:
    """Parse a record already known to start with ``v=DMARC1``."""
    tags: dict[str, str] = {}
    for part in text.split(";"):
        if not part.strip():
            continue
        name, sep, value = part.partition("=")
        if not sep:
            continue  # not a tag; ignored like an unknown tag
        key = name.strip().lower()
        tags.setdefault(key, value.strip())  # the first occurrence wins
    p_raw = tags.get("p")
    sp_raw = tags.get("sp")
    sp_value = sp_raw.lower() if sp_raw is not None else None
    pct = 100
    pct_raw = tags.get("pct")
    if pct_raw is not None and pct_raw.isdigit() and 0 <= int(pct_raw) <= 100:
        pct = int(pct_raw)
    if p_raw is None:
        return ParsedDmarcRecord(DmarcPolicy.INVALID, None, sp_value, pct, "The DMARC record has no p= tag.")
    policy = _POLICY_VALUES.get(p_raw.lower())
    if policy is None:
        return ParsedDmarcRecord(
            DmarcPolicy.INVALID,
            None,
            sp_value,
            pct,
            f"The DMARC record's p= value {p_raw!r} is not none, quarantine or reject.",
        )
    subdomain_policy: DmarcPolicy | None = None
    if sp_value is not None:
        subdomain_policy = _POLICY_VALUES.get(sp_value)
        if subdomain_policy is None:
            return ParsedDmarcRecord(
                DmarcPolicy.INVALID,
                None,
                sp_value,
                pct,
                f"The DMARC record's sp= value {sp_raw!r} is not none, quarantine or reject.",
            )
    return ParsedDmarcRecord(policy, subdomain_policy, sp_value, pct, None)


@cache
def _psl() -> PublicSuffixList:
    # Loaded lazily once per process (parsing the bundled list takes ~100 ms); the list ships inside the
    # package.
    return PublicSuffixList()


def organizational_domain(domain: str) -> str | None:
    """Public suffix + one label (RFC 7489 §3.2), or ``None`` when ``domain`` is itself a public suffix."""
    result: str | None = _psl().privatesuffix(domain)
    return result


def _normalize_domain(domain: str) -> str:
    text = domain.strip().rstrip(".").lower()
    if not text:
        raise ValueError("empty domain")
    if not text.isascii():
        # IDNA 2008 with UTS #46 mapping, as email-validator does, so "bücher.example" ->
        # "xn--bcher-kva.example".
        text = idna.encode(text, uts46=True).decode("ascii")
    return text


@dataclass
class _Entry:
    result: DmarcResult
    expires: float


class DmarcChecker:
    """Looks up and caches DMARC policies. Thread-safe; share one per process (built from settings)."""

    def __init__(
        self,
        resolver: Resolver,
        *,
        ttl_cap: int = 3600,
        clock: Callable[[], float] = time.monotonic,
        unavailable_ttl: int = 30,
        max_entries: int = 10_000,
    ) -> None:
        self.resolver = resolver
        self.ttl_cap = ttl_cap
        self.unavailable_ttl = unavailable_ttl
        self.max_entries = max_entries
        self._clock = clock
        self._cache: dict[str, _Entry] = {}
        self._lock = threading.Lock()

    def clear(self) -> None:
        with self._lock:
            self._cache.clear()

    def check(self, domain: str) -> DmarcResult:
        """The DMARC policy that applies to mail with a From in ``domain``."""
        name = _normalize_domain(domain)
        now = self._clock()
        with self._lock:
            entry = self._cache.get(name)
            if entry is not None and entry.expires > now:
                return entry.result
        result, ttl = self._discover(name)
        ttl = max(0, min(ttl, self.ttl_cap))
        with self._lock:
            if len(self._cache) >= self.max_entries:
                self._evict(now)
            self._cache[name] = _Entry(result, self._clock() + ttl)
        return result

    def _evict(self, now: float) -> None:
        for key in [k for k, e in self._cache.items() if e.expires <= now]:
            del self._cache[key]
        while len(self._cache) >= self.max_entries:
            del self._cache[next(iter(self._cache))]  # oldest insertion first

    def _discover(self, domain: str) -> tuple[DmarcResult, int]:
        try:
            return self._discover_or_raise(domain)
        except DnsUnavailable as exc:
            result = DmarcResult(
                domain=domain,
                record_domain=None,
                policy=DmarcPolicy.UNAVAILABLE,
                subdomain_policy=None,
                raw=None,
                pct=100,
                detail=f"The DMARC policy of {domain} could not be looked up: {exc.detail}",
            )
            return result, self.unavailable_ttl

    def _discover_or_raise(self, domain: str) -> tuple[DmarcResult, int]:
        answer = self.resolver.txt_lookup(f"_dmarc.{domain}")
        records = [r for r in answer.records if _is_dmarc_record(r)]
        ttl = answer.ttl
        record_domain = domain
        if not records:
            org = organizational_domain(domain)
            if org is None or org == domain:
                return self._missing(domain), ttl
            org_answer = self.resolver.txt_lookup(f"_dmarc.{org}")
            records = [r for r in org_answer.records if _is_dmarc_record(r)]
            # The result depends on both answers: the domain's absence and the organisational record.
            ttl = min(ttl, org_answer.ttl)
            record_domain = org
            if not records:
                return self._missing(domain), ttl
        if len(records) > 1:
            result = DmarcResult(
                domain=domain,
                record_domain=record_domain,
                policy=DmarcPolicy.INVALID,
                subdomain_policy=None,
                raw="\n".join(records),
                pct=100,
                detail=f"_dmarc.{record_domain} has {len(records)} DMARC records; there must be exactly one "
                "(RFC 7489 §6.6.3).",
            )
            return result, ttl
        raw = records[0]
        parsed = parse_dmarc_record(raw)
        policy = parsed.policy
        if (
            policy is not DmarcPolicy.INVALID
            and record_domain != domain
            and parsed.subdomain_policy is not None
        ):
            policy = parsed.subdomain_policy  # §6.6.3 step 3: sp= governs subdomains of the org domain
        result = DmarcResult(
            domain=domain,
            record_domain=record_domain,
            policy=policy,
            subdomain_policy=parsed.sp_raw,
            raw=raw,
            pct=parsed.pct,
            detail=parsed.detail,
        )
        return result, ttl

    @staticmethod
    def _missing(domain: str) -> DmarcResult:
        return DmarcResult(
            domain=domain,
            record_domain=None,
            policy=DmarcPolicy.MISSING,
            subdomain_policy=None,
            raw=None,
            pct=100,
        )
