"""Why did an SMTP conversation fail, and what should the tenant do about it?

``diagnose`` turns what a server said (a :class:`~letterhead.smtp.reply.Reply`), or a failure that is not a reply
(an :class:`~letterhead.smtp.reply.ErrorKind` value), into a :class:`Diagnosis`: a *category*, whether retrying the
same message can help (*permanent*), the provider recognised, and a *remedy* in English and Japanese that names the
provider and the concrete next step.

How a reply is classified (never by matching whole strings):

1. The text is normalised: session ids, queue ids, timestamps, GUIDs and repeated ``550-5.7.1`` prefixes are
   removed, whitespace (line breaks included) is collapsed, matching is case-insensitive.
2. :data:`RULES` is evaluated in priority order. A rule combines any of: key phrases (regex), the enhanced status
   code (RFC 3463 and the IANA "SMTP Enhanced Status Codes" registry, plus providers' own extensions such as
   Microsoft's 5.7.139), the basic reply code, the stage of the conversation and the provider. Phrase rules come
   first (they are the most specific), then enhanced-code rules, then basic-code rules.
3. When nothing matched, the class of the code decides: 4xx is a transient failure; a 5xx is read by stage
   (RCPT TO => recipient, DATA => message policy, AUTH => credentials, MAIL FROM => sender).

Permanence is a property of the category (a configuration problem stays a problem on retry, even when a server
said 4xx; a quota or a rate limit reopens, even when the server said 5xx — Gmail's "550 5.4.5 Daily user sending
limit exceeded" does), except for the reply-driven categories (recipient, policy, other) where the code decides.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from typing import TYPE_CHECKING

from letterhead.smtp.reply import ErrorKind, Reply

if TYPE_CHECKING:  # pragma: no cover
    from letterhead.smtp.presets import Preset

__all__ = [
    "RULES",
    "Category",
    "Diagnosis",
    "Remedy",
    "Rule",
    "category_remedy",
    "detect_provider",
    "diagnose",
    "error_kind_from_text",
    "gmail_from_warning",
    "provider_display_name",
    "strip_session_ids",
    "suggest_security",
]


class Category(StrEnum):
    AUTH_FAILED = "auth_failed"
    APP_PASSWORD_REQUIRED = "app_password_required"
    AUTH_METHOD_DISABLED = "auth_method_disabled"
    TLS_REQUIRED = "tls_required"
    TLS_MISMATCH = "tls_mismatch"
    SENDER_NOT_ALLOWED = "sender_not_allowed"
    SENDER_UNVERIFIED = "sender_unverified"
    QUOTA_EXCEEDED = "quota_exceeded"
    RATE_LIMITED = "rate_limited"
    TEMPORARY_FAILURE = "temporary_failure"
    RECIPIENT_REJECTED = "recipient_rejected"
    MESSAGE_REJECTED_POLICY = "message_rejected_policy"
    MESSAGE_TOO_LARGE = "message_too_large"
    ACCOUNT_SUSPENDED = "account_suspended"
    CONNECTION_FAILED = "connection_failed"
    OTHER = "other"


@dataclass(frozen=True)
class Remedy:
    """A short text in both UI languages."""

    en: str
    ja: str

    def as_dict(self) -> dict[str, str]:
        return {"en": self.en, "ja": self.ja}


@dataclass(frozen=True)
class Diagnosis:
    category: Category
    #: Retrying the same message later cannot help (quota_exceeded / rate_limited never are).
    permanent: bool
    #: Preset id of the provider recognised, or None.
    provider: str | None
    provider_name: str | None
    remedy: Remedy
    summary: Remedy
    #: A concrete settings change, e.g. ``{"port": 465, "security": "ssl"}``.
    suggested: dict[str, object] | None = None
    #: For quota / rate: when the provider's window likely reopens.
    retry_after_seconds: int | None = None

    def as_dict(self) -> dict[str, object]:
        return {
            "category": str(self.category),
            "permanent": self.permanent,
            "provider": self.provider,
            "provider_name": self.provider_name,
            "remedy": self.remedy.as_dict(),
            "summary": self.summary.as_dict(),
            "suggested": self.suggested,
            "retry_after_seconds": self.retry_after_seconds,
        }


C = Category

# --------------------------------------------------------------------------------------------------------------
# Providers
# --------------------------------------------------------------------------------------------------------------

#: Display names, also used when ``letterhead.smtp.presets`` is not importable (it imports this module).
_PROVIDER_NAMES: dict[str, str] = {
    "gmail": "Gmail",
    "google_workspace": "Google Workspace",
    "microsoft365": "Microsoft 365",
    "outlook_com": "Outlook.com",
    "zoho": "Zoho Mail",
    "yahoo": "Yahoo Mail",
    "icloud": "iCloud Mail",
    "amazon_ses": "Amazon SES",
    "sendgrid": "SendGrid",
    "mailgun": "Mailgun",
    "brevo": "Brevo",
}

#: Spellings seen in logs and data files for the same providers.
_PROVIDER_ALIASES: dict[str, str] = {
    "gmail-mx": "gmail",
    "google": "gmail",
    "googlemail": "gmail",
    "workspace": "google_workspace",
    "gsuite": "google_workspace",
    "g_suite": "google_workspace",
    "office365": "microsoft365",
    "microsoft": "microsoft365",
    "m365": "microsoft365",
    "exchange_online": "microsoft365",
    "outlook.com": "outlook_com",
    "outlook": "outlook_com",
    "hotmail": "outlook_com",
    "ses": "amazon_ses",
    "amazon-ses": "amazon_ses",
    "aws_ses": "amazon_ses",
    "sendinblue": "brevo",
    "yahoo_mail": "yahoo",
    "zoho_mail": "zoho",
    "apple": "icloud",
}

# Fingerprints, most specific first. Hosts: the providers' documented submission hosts and MX names; greetings and
# texts: what their servers say about themselves (Gmail ends every reply with "- gsmtp"; Exchange Online brackets
# its front-end host "[XX0PR01CA0001.namprd01.prod.outlook.com]"; Yahoo's auth codes look like "(#MBR1212)").
_FINGERPRINTS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(p, re.I), pid)
    for p, pid in (
        (r"smtp-relay\.gmail\.com|aspmx\.l\.google|\bg ?suite\b|google workspace", "google_workspace"),
        (r"gsmtp\b|smtp\.gmail\.com|\bgmail\b|googlemail|mx\.google\.com|\bgoogle\.com\b|support\.google", "gmail"),
        (r"smtp-mail\.outlook\.com|outlook\.live\.com|\bhotmail\b|\blive\.com\b|outlook\.com personal", "outlook_com"),
        (
            r"office365|outlook\.office|protection\.outlook\.com|prod\.outlook\.com|microsoft esmtp|storedrv|"
            r"smtpclientauthentication|aka\.ms/|go\.microsoft\.com|\bexchange online\b|\boutlook\.com\b",
            "microsoft365",
        ),
        (r"amazonaws\.com|email-smtp\.|amazon ses|\bses\b|aws account", "amazon_ses"),
        (r"sendgrid|sender identity|twilio", "sendgrid"),
        (r"mailgun|sandbox subdomain", "mailgun"),
        (r"brevo|sendinblue|\bsib\b", "brevo"),
        (r"zoho", "zoho"),
        (r"yahoo|\bymail\b|\(#(?:mbr|auth)\d+\)|\baol\.com\b", "yahoo"),
        (r"icloud|\bme\.com\b|\bmac\.com\b|mail\.me\.com|apple\.com", "icloud"),
    )
)


def _normalize_provider(provider: str | None) -> str | None:
    if not provider:
        return None
    p = provider.strip().lower()
    p = _PROVIDER_ALIASES.get(p, p)
    return p if p in _PROVIDER_NAMES else None


def provider_display_name(provider: str | None) -> str | None:
    pid = _normalize_provider(provider)
    return _PROVIDER_NAMES.get(pid) if pid else None


def detect_provider(
    *, host: str | None = None, greeting: str | None = None, ehlo: Sequence[str] = (), text: str | None = None
) -> str | None:
    """Recognise a provider (preset id) from the host name, the 220 greeting, the EHLO lines or a reply text."""
    for source in (host, greeting, " ".join(ehlo), text):
        if not source:
            continue
        for pattern, pid in _FINGERPRINTS:
            if pattern.search(source):
                return pid
    return None


@lru_cache(maxsize=1)
def _presets() -> Mapping[str, Preset]:
    try:
        from letterhead.smtp.presets import PRESETS
    except ImportError:  # pragma: no cover - presets ship with this module
        return {}
    return PRESETS


# --------------------------------------------------------------------------------------------------------------
# Text normalisation
# --------------------------------------------------------------------------------------------------------------

_SESSION_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(p, re.I), repl)
    for p, repl in (
        # Gmail: "... d2e1a72fcca58-76e7d551493sm9728466b3a.112 - gsmtp" (also old "g4sm20621052ybh.7", "…si1104…")
        (r"\s*\b[a-z0-9]+(?:-[a-z0-9]+)*(?:sm|si)\d+[a-z0-9]*\.\d+\b", ""),
        (r"\s*-\s*gsmtp\b", ""),
        # Microsoft: "[PH7P220CA0132.NAMP220.PROD.OUTLOOK.COM 2024-11-11T21:51:32.927Z 08DD021D9EEB05BC]",
        # "[Hostname=DM5SPR00MB2471.namprd08.prod.outlook.com]"
        (r"\s*\[(?:hostname=)?[^\]]*\.(?:prod\.outlook\.com|prod\.exchangelabs\.com|outlook\.com)\b[^\]]*\]", ""),
        (r"\s*\[hostname=[^\]]*\]", ""),
        # ISO timestamps and RFC 5322-ish dates
        (r"\s*\b\d{4}-\d{2}-\d{2}[t ]\d{2}:\d{2}:\d{2}(?:\.\d+)?z?\b", ""),
        (r"\s*\b(?:mon|tue|wed|thu|fri|sat|sun), \d{1,2} [a-z]{3} \d{4} \d{2}:\d{2}:\d{2} [+-]\d{4}\b", ""),
        # Queue ids: "queued as 4Xyz12AbC", "id=1rAbCd-000Xyz-Ab", "Ok 0100018f…"
        (r"\b(queued as|queue id|message id|id)\s*[=:]?\s*<?[a-z0-9][a-z0-9._@-]{5,}>?", r"\1"),
        # Long opaque hyphenated tokens with digits (SES message ids), then GUIDs and hex session ids
        (r"\s*\b(?=[a-z0-9-]{20,})(?=[a-z0-9-]*\d)(?=[a-z0-9-]*[a-z])[a-z0-9]+(?:-[a-z0-9]+){2,}\b(?=\s|$|[\].,;)])", ""),
        (r"\s*\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", ""),
        (r"\s*\b[0-9a-f]{16,}\b", ""),
        (r"\[\s*\]|\(\s*\)", ""),
    )
)


def strip_session_ids(text: str) -> str:
    """Remove per-session noise (Gmail's trailing id + "gsmtp", Microsoft's [Hostname=…], queue ids, GUIDs,
    timestamps) so that a reply can be displayed, grouped and matched."""
    out = text
    for pattern, repl in _SESSION_PATTERNS:
        out = pattern.sub(repl, out)
    out = re.sub(r"[ \t]+", " ", out)
    out = re.sub(r" *\n *", "\n", out)
    return re.sub(r"\s+([.,;])", r"\1", out).strip()


_ENHANCED_ANY = re.compile(r"(?<![\d.])([245])\.(\d{1,3})\.(\d{1,3})(?![\d.]*\d)")
_CODE_PREFIX = re.compile(r"(?:(?<=\s)|^)[245]\d\d[ -](?=[245]\.\d{1,3}\.\d{1,3}\b)")
_LEADING_CODE = re.compile(r"(?m)^\s*[245]\d\d(?:[ -]|$)")


def _enhanced_codes(text: str, code: int) -> list[str]:
    found = [".".join(m.groups()) for m in _ENHANCED_ANY.finditer(text)]
    klass = str(code)[:1]
    return [e for e in found if e[0] == klass] + [e for e in found if e[0] != klass]


def _normalize(text: str) -> str:
    t = strip_session_ids(text)
    t = _LEADING_CODE.sub(" ", t)
    t = _CODE_PREFIX.sub(" ", t)
    t = _ENHANCED_ANY.sub(" ", t)
    t = re.sub(r"\(#\s*\)", " ", t)
    return re.sub(r"\s+", " ", t).strip().lower()


# --------------------------------------------------------------------------------------------------------------
# Rules
# --------------------------------------------------------------------------------------------------------------


def _p(*alternatives: str) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{a})" for a in alternatives), re.I)


def _e(*patterns: str) -> re.Pattern[str]:
    """Enhanced status codes: ``*`` stands for the class (4 or 5); other parts are regexes."""
    return re.compile("|".join("^" + p.replace("*", "[45]").replace(".", r"\.") + "$" for p in patterns))


_ANY_REPLY_STAGE: frozenset[str] = frozenset()
_SUBMIT = frozenset({"data", "after_data"})
_AUTH = frozenset({"auth"})
_GOOGLE = frozenset({"gmail", "google_workspace"})


@dataclass(frozen=True)
class Rule:
    """One line of the classification table. Every condition given must hold; a rule needs at least one of
    ``phrases``, ``enhanced`` or ``codes``."""

    name: str
    category: Category
    phrases: re.Pattern[str] | None = None
    unless: re.Pattern[str] | None = None
    enhanced: re.Pattern[str] | None = None
    codes: frozenset[int] = frozenset()
    classes: str = ""  # "4", "5" or "" for both
    stages: frozenset[str] = _ANY_REPLY_STAGE
    providers: frozenset[str] = frozenset()
    permanent: bool | None = None  # None: the category's rule (see _permanent)
    remedy: str | None = None  # key of _RULE_REMEDIES
    retry_after: int | None = None

    def matches(self, *, code: int, enhanced: Sequence[str], text: str, stage: str | None, provider: str | None) -> bool:
        if self.classes and str(code)[:1] not in self.classes:
            return False
        if self.codes and code not in self.codes:
            return False
        if self.stages and (stage or "") not in self.stages:
            return False
        if self.providers and provider not in self.providers:
            return False
        if self.enhanced is not None and not any(self.enhanced.match(e) for e in enhanced):
            return False
        if self.phrases is not None and not self.phrases.search(text):
            return False
        return not (self.unless is not None and self.unless.search(text))


_HOUR = 3600
_DAY = 86400

# Priority order. Comments cite where the wording comes from.
RULES: tuple[Rule, ...] = (
    # ---- TLS -----------------------------------------------------------------------------------------------------
    # Microsoft 421 4.7.66 "TLS 1.0 and 1.1 are not supported. Please upgrade/update your client to support TLS 1.2"
    Rule(
        "tls_version",
        C.TLS_MISMATCH,
        phrases=_p(
            r"tls ?1\.[01]\b.{0,30}not supported",
            r"(unsupported|old|obsolete|insecure) (tls|ssl) (version|protocol)",
            r"upgrade.{0,40}tls ?1\.[23]",
        ),
        remedy="tls_version",
    ),
    # RFC 3207 §4 "530 5.7.0 Must issue a STARTTLS command first"; RFC 4954 §6 "538 5.7.11 Encryption required for
    # requested authentication mechanism"; Microsoft "451 5.7.3 STARTTLS is required to send mail".
    Rule(
        "tls_required",
        C.TLS_REQUIRED,
        phrases=_p(
            r"must issue a starttls",
            r"starttls (command )?(is )?(required|first|needed)",
            r"(issue|use|send|requires?) (the )?starttls",
            r"encryption (is )?(required|needed)",
            r"requires? (an? )?(secure|encrypted|tls|ssl) (connection|channel|session)",
            r"(tls|ssl) (is )?required",
            r"(plaintext|plain text|unencrypted|insecure) (auth\w*|login|connection)s? (is |are )?(not allowed|disabled|"
            r"refused|rejected)",
        ),
        remedy="tls_required",
    ),
    # ---- transient, by wording (4xx only) --------------------------------------------------------------------------
    # Gmail "421 4.3.0 Temporary System Problem", "454 4.7.0 Cannot authenticate due to a temporary system problem";
    # Postfix "454 4.7.0 Temporary authentication failure", "454 4.7.0 TLS not available due to local problem",
    # "450 4.2.0 … Greylisted"; Microsoft "451 4.7.500 Server busy"; SES "451 Timeout waiting for data from client".
    Rule(
        "temporary_wording",
        C.TEMPORARY_FAILURE,
        classes="4",
        phrases=_p(
            r"temporary (system |server |local |internal |auth\w* |lookup |dns )?(problem|failure|error)",
            r"temporar(il)?y (unavailable|failed|rejected|not available|deferred due to (a )?(server|system))",
            r"local (problem|error)",
            r"server (is )?busy",
            r"insufficient system (storage|resources)",
            r"gr[ea]y-?list",
            r"not available due to",
            r"timeout waiting",
            r"(system|service|server) (is )?(temporarily )?(unavailable|overloaded|not available)",
            r"try again in a (few )?(minutes?|moment)",
        ),
    ),
    # ---- rate limits that mention authentication (before the auth rules) -----------------------------------------
    # Gmail "454 4.7.0 Too many login attempts, please try again later"; Yahoo "535 5.7.0 (#AUTH005) Too many bad
    # auth attempts". A lockout after repeated failures: it reopens by itself, but the password may still be wrong.
    Rule(
        "too_many_logins",
        C.RATE_LIMITED,
        phrases=_p(
            r"too many (failed |bad |invalid |unsuccessful |wrong )?(login|logon|auth\w*|sign-?in|password)s? "
            r"(attempts|failures|tries|requests|errors)",
            r"too many (failed |bad )?(logins|authentications|auth failures)",
            r"login rate (limit|exceeded)",
        ),
        retry_after=10 * 60,
        remedy="too_many_logins",
    ),
    # Microsoft "535 5.7.139 Authentication unsuccessful, federated STS service was unreachable": the customer's own
    # AD FS is down: a credentials problem that is not the tenant's typing, and that passes.
    Rule(
        "federation_unreachable",
        C.AUTH_FAILED,
        phrases=_p(r"\bsts\b.{0,20}unreachable", r"federat\w+.{0,40}(unreachable|unavailable|timed? ?out)"),
        permanent=False,
        remedy="federation_unreachable",
    ),
    # ---- recipient side, strong wording (before quota/account words like "over quota", "disabled") ----------------
    # Mailgun "554 Sandbox subdomains are for test purposes only. Please add … authorized recipients" (also 421).
    Rule(
        "sandbox_recipient",
        C.RECIPIENT_REJECTED,
        phrases=_p(r"authori[sz]ed recipients", r"sandbox (sub)?domains?", r"free accounts are for test purposes"),
        permanent=True,
        remedy="sandbox_recipient",
    ),
    # Gmail "452 4.2.2 The email account that you tried to reach is over quota"; Exchange "554 5.2.2 mailbox full;
    # STOREDRV.Deliver.Exception:QuotaExceededException"; Postfix/Dovecot "552 5.2.2 Mailbox full".
    Rule(
        "recipient_mailbox_full",
        C.RECIPIENT_REJECTED,
        phrases=_p(
            r"(mailbox|mail box|inbox|tried to reach|recipient|user)\b[^.;]{0,40}\b(full|over ?quota|out of storage|"
            r"exceeded (its|the|their) (storage|quota))",
            r"over ?quota",
            r"mailbox (size |storage )?(limit|quota) (exceeded|reached)",
            r"storedrv\.deliver",
        ),
        remedy="mailbox_full",
    ),
    # Gmail "550 5.1.1 The email account that you tried to reach does not exist", "550 5.2.1 … is disabled";
    # Postfix "Recipient address rejected: User unknown in virtual mailbox table"; Exchange "550 5.1.10
    # RESOLVER.ADR.RecipientNotFound"; qmail "550 sorry, no mailbox here by that name. (#5.1.1)"; Exim
    # "550 Unrouteable address"; SES "554 Message rejected: Address blacklisted" (suppression list).
    Rule(
        "recipient_wording",
        C.RECIPIENT_REJECTED,
        phrases=_p(
            r"tried to reach",
            r"user unknown|unknown user|unknown (recipient|mailbox|address|local[- ]part)",
            r"no such (user|mailbox|recipient|address|account|person)",
            r"recipient address rejected",
            r"recip(ient)?notfound|recipient not found|recipient (does not|doesn'?t) exist",
            r"mailbox (not found|does not exist|doesn'?t exist|disabled|inactive|not available|is disabled)",
            r"invalid (recipient|mailbox|rcpt)",
            r"unroute?able address",
            r"no mailbox here",
            r"(user|address|account|mailbox) (does not|doesn'?t|not) exist|user not found",
            r"(recipient|destination) domain",
            r"not our customer",
            r"address blacklisted|suppression list",
            r"recipient (is )?(rejected|invalid|not allowed|blocked)",
        ),
    ),
    # ---- the message itself: format (before size, "line too long" is not a size problem) ------------------------
    # "552 5.2.0 Message contains bare CR and is violating 822.bis section 2.3"; SES "554 Transaction failed:
    # Duplicate header 'Subject'"; Postfix "500 5.5.0 Line too long".
    Rule(
        "message_format",
        C.MESSAGE_REJECTED_POLICY,
        phrases=_p(
            r"bare (cr|lf|linefeed|carriage)",
            r"822\.?bis|rfc ?(2|5)?822",
            r"line (is )?too long|line length",
            r"duplicate header|missing (required )?header|invalid header|malformed|illegal header",
            r"invalid (message|mime|content)",
        ),
        remedy="message_format",
    ),
    # RFC 1870 / RFC 3463 5.3.4 "Message too big for system", 5.2.3 "Message length exceeds administrative limit";
    # Gmail "552 5.2.3 Your message exceeded Google's message size limits"; SES "552 Message is too long.";
    # qmail "552 sorry, that message size exceeds my databytes limit (#5.3.4)".
    Rule(
        "size_wording",
        C.MESSAGE_TOO_LARGE,
        phrases=_p(
            r"(message|mail|email|data) (is )?(too (large|long|big))",
            r"too (large|big)",
            r"size (limit|exceed|is too|maximum)",
            r"exceed\w* .{0,40}size",
            r"(message|maximum|max) size",
            r"maxsizeerror|databytes|recipsizelimit",
        ),
    ),
    Rule("size_enhanced", C.MESSAGE_TOO_LARGE, enhanced=_e(r"*.3.4", r"*.2.3")),
    # ---- rate limits (before quota: "sender thread limit exceeded" is not a quota) ---------------------------------
    # Microsoft "432 4.3.2 STOREDRV.ClientSubmit; sender thread limit exceeded" (max 3 connections per mailbox);
    # SES "454 Throttling failure: Maximum sending rate exceeded", "421 Too many concurrent SMTP connections";
    # Gmail "421 4.7.28 … temporarily rate limited"; Postfix "452 4.5.3 Error: too many recipients";
    # Yahoo "421 4.7.0 [TSS04] Messages from … temporarily deferred due to unexpected volume or user complaints".
    Rule(
        "rate_wording",
        C.RATE_LIMITED,
        phrases=_p(
            r"thread limit",
            r"concurrent (smtp )?(connections|sessions|threads)",
            r"too many (concurrent |simultaneous |open )?(connections|sessions|messages|emails|mails|recipients|"
            r"requests|commands|transactions|threads)",
            r"rate[- ]limit",
            r"(sending|send|message|recipient|connection) rate",
            r"(temporarily )?deferred due to (unexpected|excessive) volume",
            r"unexpected volume",
            r"sending too (fast|quickly|many)",
            r"slow down",
        ),
        retry_after=60,
    ),
    # ---- quota --------------------------------------------------------------------------------------------------
    # An enhanced 5.2.2 is the *recipient's* mailbox being full (RFC 3463), not our sending quota.
    Rule(
        "recipient_522",
        C.RECIPIENT_REJECTED,
        enhanced=_e(r"*.2.2"),
        unless=_p(r"submission", r"sending (limit|quota)", r"daily", r"credits?"),
        remedy="mailbox_full",
    ),
    # Gmail "550 5.4.5 Daily user sending limit exceeded" / "Daily sending quota exceeded" / "Daily SMTP relay limit
    # exceeded"; Microsoft "554 5.2.0 STOREDRV.Submission.Exception:SubmissionQuotaExceededException", "5.1.90 …
    # reached your daily limit for message recipients"; SES "454 Throttling failure: Daily message quota exceeded";
    # SendGrid "451 Authentication failed: Maximum credits exceeded"; cPanel/Exim "550 Domain … has exceeded the max
    # emails per hour"; Outlook.com "…OutboundSpamException; WASCL UserAction verdict is not None. Actual verdict is
    # RefuseQuota".
    Rule(
        "quota_wording",
        C.QUOTA_EXCEEDED,
        phrases=_p(
            r"(sending|send|relay) (limit|quota)",
            r"(daily|hourly|monthly|24[- ]hour) (user |message |recipient |sending |smtp |email )*(relay )?"
            r"(sending )?(limit|quota)",
            r"(message|recipient|submission|email|mail) ?quota",
            r"submissionquotaexceeded",
            r"credits? (exceeded|limit|exhausted)|out of credits|no (remaining )?credits",
            r"quota (exceeded|reached|exhausted)|exceeded (your |the )?quota",
            r"max(imum)? (number of )?(emails|messages|mails|recipients) (per|an|a) (hour|day)",
            r"exceeded the max(imum)? (emails|messages)",
            r"refusequota",
            r"limit for (message )?recipients",
            r"(per|an|a) (hour|day)\b.{0,20}(exceeded|reached)",
            r"(limit|quota) (has been )?(exceeded|reached)",
        ),
        retry_after=_DAY,
    ),
    # Google: 5.4.5 is its sending-limit code (https://support.google.com/a/answer/3726730).
    Rule("quota_545", C.QUOTA_EXCEEDED, enhanced=_e(r"5.4.5"), retry_after=_DAY),
    # SES "454 Throttling failure: …" without a recognised reason.
    Rule("throttling", C.RATE_LIMITED, phrases=_p(r"throttl"), retry_after=60),
    # ---- policy wording that must beat the auth rules ("This mail is unauthenticated") -----------------------------
    # Gmail "550 5.7.26 This mail is unauthenticated, which poses a security risk … DMARC"; "550 5.7.1 The IP you're
    # using to send mail is not authorized to send email directly to our servers" (a tenant pointed at an MX).
    Rule(
        "direct_to_mx",
        C.MESSAGE_REJECTED_POLICY,
        phrases=_p(r"not authori[sz]ed to send (e-?mail |mail )?directly", r"use the smtp relay at your"),
        remedy="direct_to_mx",
    ),
    Rule(
        "sender_authentication_policy",
        C.MESSAGE_REJECTED_POLICY,
        phrases=_p(
            r"\b(dmarc|spf|dkim)\b",
            r"sender policy framework",
            r"(mail|message|email) (is|was) (not authenticated|unauthenticated)",
            r"authentication (results|checks?) (failed|did not pass)",
        ),
        remedy="sender_authentication_policy",
    ),
    # ---- app passwords ------------------------------------------------------------------------------------------
    # Gmail "534 5.7.9 Application-specific password required … ?p=InvalidSecondFactor"; iCloud/Yahoo/Zoho wordings
    # "Please use an app-specific password".
    Rule(
        "app_password_wording",
        C.APP_PASSWORD_REQUIRED,
        phrases=_p(
            r"app(lication)?[- ]specific password",
            r"\bapp ?passwords?\b",
            r"invalidsecondfactor|second factor",
            r"(2|two)[- ]?(step|factor) (verification|authentication) (is )?(required|enabled|on)",
        ),
        unless=_p(r"invalid (login|username|user name|credentials)|incorrect"),
    ),
    # Gmail "534 5.7.14 <https://accounts.google.com/signin/continue?…> Please log in via your web browser and then
    # try again … ?p=WebLoginRequired". Decision: auth_failed, not account_suspended. The account is not suspended
    # (mail keeps working in the browser); Google refused *this* sign-in as suspicious or because the account
    # password was used instead of an app password. The fix is at the sign-in: confirm the security alert at
    # accounts.google.com and use an app password.
    Rule(
        "gmail_web_login",
        C.AUTH_FAILED,
        phrases=_p(r"log ?in via your web browser", r"webloginrequired", r"accounts\.google\.com/signin/continue"),
        remedy="gmail_web_login",
    ),
    # ---- authentication method disabled --------------------------------------------------------------------------
    # Microsoft "535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant/Mailbox"
    # (https://aka.ms/smtp_auth_disabled), "… basic authentication is disabled", "… the request did not meet the
    # criteria to be authenticated successfully" (Conditional Access), "… user is locked by your organization's
    # security defaults policy"; "504 5.7.4 Unrecognized authentication type"; Postfix "503 5.5.1 Error:
    # authentication not enabled"; RFC 4954 "534 5.7.9 Authentication mechanism is too weak".
    Rule("smtp_auth_disabled", C.AUTH_METHOD_DISABLED, phrases=_p(r"smtpclientauthentication"), remedy=None),
    Rule(
        "basic_auth_disabled",
        C.AUTH_METHOD_DISABLED,
        phrases=_p(r"basic auth(entication)? (is )?(disabled|not (supported|allowed|enabled))", r"legacy auth"),
        remedy="basic_auth_disabled",
    ),
    Rule(
        "sign_in_policy",
        C.AUTH_METHOD_DISABLED,
        phrases=_p(
            r"did not meet the criteria to be authenticated",
            r"security defaults",
            r"conditional access",
            r"(organi[sz]ation|tenant)('s)? (configuration|policy) does not allow",
            r"does not allow this authentication",
        ),
        remedy="sign_in_policy",
    ),
    Rule(
        "auth_mechanism",
        C.AUTH_METHOD_DISABLED,
        phrases=_p(
            r"unrecognized authentication (type|mechanism)",
            r"(authentication|auth) (mechanism|method|type) (is )?(too weak|not supported|unsupported|not available|"
            r"not enabled|disabled)",
            r"(mechanism|method) (is )?too weak",
            r"unsupported (authentication|auth|sasl)",
            r"(smtp )?auth(entication)? (is )?(not (enabled|available|supported|allowed|permitted)|disabled)",
            r"auth(entication)? command (not|is not) (implemented|supported)",
        ),
        unless=_p(r"account (is )?disabled"),
        remedy="auth_mechanism",
    ),
    # ---- the sender --------------------------------------------------------------------------------------------
    # Postfix "553 5.7.1 <from>: Sender address rejected: not owned by user bob" (reject_sender_login_mismatch, at
    # RCPT TO), "Sender address rejected: Domain not found"; Exim "550 Sender verify failed".
    Rule(
        "sender_rejected_wording",
        C.SENDER_NOT_ALLOWED,
        phrases=_p(
            r"sender address rejected",
            r"not owned by (auth(enticated)? )?user",
            r"sender verify failed",
            r"sender (domain |address )?(does not exist|is invalid|unknown|not found)",
        ),
    ),
    # SES "554 Message rejected: Email address is not verified. The following identities failed the check …";
    # SendGrid "550 The from address does not match a verified Sender Identity"; Mailgun "Domain … is not allowed to
    # send: The domain is unverified"; Brevo "… the sender you used … is not valid. Validate your sender";
    # Yahoo "553 From address not verified".
    Rule(
        "sender_unverified",
        C.SENDER_UNVERIFIED,
        phrases=_p(
            r"not (yet )?(verified|validated|confirmed)",
            r"\bunverified\b",
            r"verified sender( identity)?",
            r"identities failed the check",
            r"validate (your|the) (sender|domain|address)",
            r"sender (you used )?.{0,60}is not valid",
            r"verify (your|the) (sender|domain|identity|from address)",
        ),
        unless=_p(r"recipient"),
    ),
    # ---- account blocked ------------------------------------------------------------------------------------------
    # SES "554 Message rejected: Sending paused for this account"; Zoho "550 5.4.6 Unusual sending activity detected
    # … To unblock", "554 5.1.8 Sender Address Blocked"; Microsoft "550 5.7.708 Service unavailable. Access denied,
    # traffic not accepted from this IP", "550 5.1.8 Access denied, bad outbound sender", "5.7.501 Access denied,
    # spam abuse detected", "5.7.705 Access denied, tenant has exceeded threshold"; Outlook.com "… Actual verdict is
    # Suspend / HipNotify"; Brevo "Your SMTP account is not yet activated"; Mailgun "Domain … is disabled".
    Rule(
        "account_wording",
        C.ACCOUNT_SUSPENDED,
        phrases=_p(
            r"\baccount\b[^.;]{0,30}\b(suspended|disabled|locked|blocked|deactivated|banned|terminated|paused|on hold|"
            r"restricted|frozen)",
            r"\b(suspended|disabled|locked|blocked|deactivated|banned|paused|frozen)\b[^.;]{0,20}\baccount\b",
            r"sending (has been |is |was )?(paused|suspended|disabled|blocked|restricted)",
            r"sender (address )?blocked|outgoing (mail |email |emails |messages )?(is |has been )?blocked",
            r"(mail|email) outgoing blocked",
            r"unusual (sending )?activity",
            r"bad outbound sender|banned sender|banned sending",
            r"spam abuse",
            r"exceeded (the )?threshold",
            r"traffic not accepted",
            r"not (yet )?activated",
            r"verdict is (suspend|hipnotify)",
            r"outboundspamexception",
            r"domain (is |has been )?(disabled|suspended|deactivated)",
            r"temporarily (blocked|suspended|locked)",
            r"\bunblock",
            r"(user|mailbox|login) (is |has been )?(suspended|disabled|locked|blocked)",
        ),
        remedy=None,
    ),
    Rule(
        "account_enhanced",
        C.ACCOUNT_SUSPENDED,
        enhanced=_e(r"*.7.7[0-4]\d", r"*.7.50[1-3]", r"*.7.750", r"*.7.6[0-4]\d"),
        unless=_p(r"send ?as|permission"),
        remedy="microsoft_tenant_blocked",
    ),
    # ---- sending as someone else / relay --------------------------------------------------------------------------
    # Microsoft "550 5.7.60 SMTP; Client does not have permissions to send as this sender", "554 5.2.0
    # STOREDRV.Submission.Exception:SendAsDeniedException", "5.2.252 SendAsDenied", "550 5.7.64 TenantAttribution;
    # Relay Access Denied"; Postfix "454 4.7.1 …: Relay access denied"; Exchange "550 5.7.1 Unable to relay"; Zoho
    # "553 Relaying disallowed as @", "553 Sender is not allowed to relay emails"; qmail "553 sorry, that domain
    # isn't in my list of allowed rcpthosts (#5.7.1)"; iCloud "550 5.7.0 From address is not one of your
    # addresses"; Google Workspace "550 5.7.0 Mail relay denied … G Suite SMTP Relay Settings".
    Rule(
        "workspace_relay",
        C.SENDER_NOT_ALLOWED,
        phrases=_p(r"relay (access )?denied.*(g ?suite|google workspace|smtp relay (service|settings))"),
        remedy="workspace_relay",
    ),
    Rule(
        "sender_wording",
        C.SENDER_NOT_ALLOWED,
        phrases=_p(
            r"send ?as ?denied|sendas",
            r"(permissions?|rights?) to send (as|on behalf)",
            r"not (allowed|authori[sz]ed|permitted) to send (as|from|on behalf|mail as|email as|for)",
            r"relay(ing)? (access )?(denied|not permitted|disallowed|prohibited|refused|not allowed)",
            r"(unable|not allowed|cannot|can't|will not|won't|do not|don't) (to )?relay",
            r"relay not permitted|no relaying",
            r"allowed rcpthosts",
            r"tenantattribution",
            r"sender (is |address is )?not (allowed|authori[sz]ed|permitted)",
            r"(from|sender|envelope) address (is not one of|does not match|doesn'?t match|not (owned|allowed))",
            r"not one of your addresses",
            r"(from|sender) (address )?(does not|doesn'?t) (belong|match)",
        ),
    ),
    # Yahoo answers a From that is not the account's own address with "550 Request failed; Mailbox unavailable";
    # any server that rejects MAIL FROM with "mailbox unavailable" means the sender.
    Rule(
        "sender_mailbox_unavailable",
        C.SENDER_NOT_ALLOWED,
        phrases=_p(r"mailbox unavailable|request failed"),
        providers=frozenset({"yahoo"}),
        stages=frozenset({"mail_from", "data", "after_data"}),
    ),
    Rule(
        "sender_mailbox_unavailable_mail_from",
        C.SENDER_NOT_ALLOWED,
        phrases=_p(r"mailbox (unavailable|name not allowed)"),
        stages=frozenset({"mail_from"}),
    ),
    Rule(
        "recipient_mailbox_unavailable", C.RECIPIENT_REJECTED, phrases=_p(r"mailbox unavailable|mailbox name not allowed")
    ),
    # ---- credentials ------------------------------------------------------------------------------------------
    # RFC 4954 "535 5.7.8 Authentication credentials invalid", "530 5.7.0 Authentication required"; Gmail "535 5.7.8
    # Username and Password not accepted … ?p=BadCredentials"; Microsoft "535 5.7.3 Authentication unsuccessful",
    # "530 5.7.57 Client not authenticated to send mail", "501 5.5.124 Invalid XOAUTH2 auth data"; SES "535
    # Authentication Credentials Invalid"; SendGrid "535 Authentication failed: Bad username / password", "451
    # Authentication failed: Could not authenticate"; Mailgun "535 5.7.0 Mailgun is not loving your login or
    # password"; Brevo "502 5.7.0 Please authenticate first"; Exim "535 Incorrect authentication data"; qmail
    # "535 authorization failed (#5.7.0)"; Yahoo "535 5.7.0 (#MBR1212) Incorrect username or password."
    Rule(
        "auth_wording",
        C.AUTH_FAILED,
        phrases=_p(
            r"auth\w* (failed|unsuccessful|failure|rejected|denied|error)",
            r"authentication credentials",
            r"(invalid|incorrect|wrong|bad) (login|credentials|user ?name|password|authentication|auth|user|account|"
            r"api key|token)",
            r"(user ?name|login|user|email) (and|or|/|&) password",
            r"credentials (were |are |is )?(incorrect|invalid|rejected|not accepted|wrong)",
            r"password (is )?(incorrect|invalid|wrong|not accepted|expired)",
            r"not loving your login",
            r"(authentication|auth|login) (is )?required",
            r"(please )?authenticate first|must (first )?authenticate|need to authenticate",
            r"\bnot authenticated\b|unauthenticated (senders?|users?|relay|clients?|sessions?|connections?)",
            r"badcredentials|could not authenticate|unable to authenticate|cannot authenticate",
            r"login (failed|denied|incorrect|rejected)",
            r"xoauth2|oauth ?2?(\.0)? token|(access )?token (is )?(invalid|expired|revoked)|authorization grant",
            r"authorization (failed|denied)",
            r"auth(entication)? data",
        ),
    ),
    # ---- other, by wording ------------------------------------------------------------------------------------
    # SES "535 Account not subscribed to SES"; Gmail "555 5.5.2 Syntax error"; Postfix "504 5.5.2 <localhost>: Helo
    # command rejected: need fully-qualified hostname".
    Rule(
        "not_subscribed",
        C.OTHER,
        phrases=_p(r"not (subscribed|signed up)|no subscription"),
        remedy="not_subscribed",
    ),
    Rule(
        "syntax",
        C.OTHER,
        phrases=_p(
            r"syntax",
            r"helo command rejected|ehlo command rejected|fully[- ]qualified (host|domain)",
            r"bad sequence of commands|command (not recogni[sz]ed|unrecogni[sz]ed)|unrecogni[sz]ed command",
            r"(invalid|bad) (parameter|argument|command)",
        ),
        unless=_p(r"recipient|\brcpt\b"),
        remedy="syntax",
    ),
    # ---- policy / spam / blocklists -----------------------------------------------------------------------------
    # Gmail "550 5.7.1 … likely unsolicited mail", "552 5.7.0 This message was blocked because its content presents a
    # potential security issue"; Spamhaus / Barracuda listings; Yahoo "553 5.7.1 [BL21] …", "554 5.7.9 Message not
    # accepted for policy reasons"; iCloud "554 5.7.1 [CS01] Message rejected due to local policy".
    Rule(
        "policy_wording",
        C.MESSAGE_REJECTED_POLICY,
        phrases=_p(
            r"spam|unsolicited|\bjunk\b",
            r"black ?list|block ?list|blocked using|listed (on|in|at|by)|\b(spamhaus|barracuda|spamcop|sorbs|dnsbl|rbl)\b",
            r"reputation",
            r"polic(y|ies)",
            r"content|virus|malware|infected|phishing|suspicious",
            r"security (risk|issue|threat)",
            r"residential|dynamic (ip|address)|dial-?up|\bpbl\b",
            r"not accepted",
        ),
    ),
    # Bare "rejected / denied / blocked" is a policy refusal when permanent; a 4xx one (Postfix "450 4.7.1 Client
    # host rejected: cannot find your hostname") passes by itself and falls through to temporary_failure.
    Rule(
        "policy_generic_wording",
        C.MESSAGE_REJECTED_POLICY,
        classes="5",
        phrases=_p(
            r"(message|mail|email) (was |has been )?(rejected|refused|blocked|denied)",
            r"access denied|blocked|refused|denied|prohibited|rejected",
        ),
    ),
    # ---- 4.7.0 "try again later" (Gmail's answer to bursts: "421 4.7.0 Try again later, closing connection") ------
    Rule("try_later_470", C.RATE_LIMITED, enhanced=_e(r"4.7.0"), phrases=_p(r"try (again )?later"), retry_after=5 * 60),
    # ---- enhanced codes alone (RFC 3463, IANA registry, provider extensions) ------------------------------------
    Rule("enh_auth_invalid", C.AUTH_FAILED, enhanced=_e(r"*.7.8", r"*.7.57", r"*.7.12", r"*.5.124")),
    Rule("enh_encryption", C.TLS_REQUIRED, enhanced=_e(r"*.7.11", r"*.7.10"), remedy="tls_required"),
    # 534 5.7.9: Gmail uses it for "Application-specific password required"; RFC 4954: "mechanism too weak".
    Rule(
        "enh_579_google",
        C.APP_PASSWORD_REQUIRED,
        enhanced=_e(r"5.7.9"),
        stages=_AUTH,
        providers=_GOOGLE,
    ),
    Rule("enh_579", C.AUTH_METHOD_DISABLED, enhanced=_e(r"5.7.9"), stages=_AUTH, remedy="auth_mechanism"),
    Rule("enh_574", C.AUTH_METHOD_DISABLED, enhanced=_e(r"*.7.4"), stages=_AUTH, remedy="auth_mechanism"),
    # Microsoft 5.7.139 / 5.7.3 at AUTH without a recognised reason: the login was refused.
    Rule("enh_ms_auth", C.AUTH_FAILED, enhanced=_e(r"*.7.139", r"*.7.3", r"*.7.0", r"*.7.1"), stages=_AUTH),
    Rule("enh_send_as", C.SENDER_NOT_ALLOWED, enhanced=_e(r"*.7.60", r"*.2.252", r"*.7.64", r"*.1.7", r"*.1.8")),
    Rule("enh_quota_ms", C.QUOTA_EXCEEDED, enhanced=_e(r"*.1.90"), retry_after=_DAY),
    Rule("enh_recipient", C.RECIPIENT_REJECTED, enhanced=_e(r"*.1.1", r"*.1.2", r"*.1.3", r"*.1.6", r"*.1.10", r"*.2.1")),
    Rule(
        "enh_recipient_rcpt", C.RECIPIENT_REJECTED, enhanced=_e(r"*.1.\d+", r"*.4.\d+"), stages=frozenset({"rcpt_to"})
    ),
    Rule("enh_sender_mail_from", C.SENDER_NOT_ALLOWED, enhanced=_e(r"5.7.\d+", r"5.1.\d+"), stages=frozenset({"mail_from"})),
    Rule("enh_policy", C.MESSAGE_REJECTED_POLICY, enhanced=_e(r"5.7.\d+")),
    Rule("enh_syntax", C.OTHER, enhanced=_e(r"5.5.\d+"), remedy="syntax"),
    # ---- basic codes alone (RFC 5321 §4.2.3, RFC 4954 §6) ----------------------------------------------------------
    Rule("code_535", C.AUTH_FAILED, codes=frozenset({535})),
    Rule("code_534_google", C.APP_PASSWORD_REQUIRED, codes=frozenset({534}), providers=_GOOGLE),
    Rule("code_534", C.AUTH_METHOD_DISABLED, codes=frozenset({534}), remedy="auth_mechanism"),
    Rule("code_530", C.AUTH_FAILED, codes=frozenset({530})),
    Rule("code_538", C.TLS_REQUIRED, codes=frozenset({538}), remedy="tls_required"),
    Rule("code_auth_not_implemented", C.AUTH_METHOD_DISABLED, codes=frozenset({502, 504}), stages=_AUTH, remedy="auth_mechanism"),
    Rule("code_552_message", C.MESSAGE_TOO_LARGE, codes=frozenset({552}), stages=frozenset({"mail_from", "data", "after_data"})),
    Rule("code_syntax", C.OTHER, codes=frozenset({500, 501, 502, 503, 504, 555}), remedy="syntax"),
)


def _fallback_category(code: int, stage: str | None) -> Category:
    if 400 <= code < 500:
        return C.TEMPORARY_FAILURE
    if code >= 500:
        return {
            "rcpt_to": C.RECIPIENT_REJECTED,
            "data": C.MESSAGE_REJECTED_POLICY,
            "after_data": C.MESSAGE_REJECTED_POLICY,
            "auth": C.AUTH_FAILED,
            "mail_from": C.SENDER_NOT_ALLOWED,
        }.get(stage or "", C.OTHER)
    return C.OTHER


#: Categories whose permanence does not depend on the reply code.
_FIXED_PERMANENCE: dict[Category, bool] = {
    C.AUTH_FAILED: True,
    C.APP_PASSWORD_REQUIRED: True,
    C.AUTH_METHOD_DISABLED: True,
    C.TLS_REQUIRED: True,
    C.TLS_MISMATCH: True,
    C.SENDER_NOT_ALLOWED: True,
    C.SENDER_UNVERIFIED: True,
    C.MESSAGE_TOO_LARGE: True,
    C.ACCOUNT_SUSPENDED: True,
    C.QUOTA_EXCEEDED: False,
    C.RATE_LIMITED: False,
    C.TEMPORARY_FAILURE: False,
    C.CONNECTION_FAILED: False,
}


def _permanent(category: Category, code: int, override: bool | None) -> bool:
    if override is not None:
        return override
    if category in _FIXED_PERMANENCE:
        return _FIXED_PERMANENCE[category]
    return code >= 500


# --------------------------------------------------------------------------------------------------------------
# Texts
# --------------------------------------------------------------------------------------------------------------

_GENERIC_NAME = Remedy("your mail provider", "ご利用のメールサービス")

_SUMMARIES: dict[Category, Remedy] = {
    C.AUTH_FAILED: Remedy("{Name} rejected the username or password", "{name} がユーザー名またはパスワードを受け付けませんでした"),
    C.APP_PASSWORD_REQUIRED: Remedy(
        "{Name} requires an app password, not the account password",
        "{name} では、アカウントのパスワードではなくアプリ パスワードが必要です",
    ),
    C.AUTH_METHOD_DISABLED: Remedy(
        "{Name} does not allow this sign-in method for SMTP", "{name} でこの SMTP のログイン方法が許可されていません"
    ),
    C.TLS_REQUIRED: Remedy("{Name} requires an encrypted connection", "{name} は暗号化された接続を必要としています"),
    C.TLS_MISMATCH: Remedy(
        "The port and the encryption setting do not match", "ポートと暗号化の設定が一致していません"
    ),
    C.SENDER_NOT_ALLOWED: Remedy(
        "{Name} does not allow sending from this address", "{name} がこの送信元アドレスからの送信を許可していません"
    ),
    C.SENDER_UNVERIFIED: Remedy(
        "The sender address is not verified with {name}", "送信元アドレスが {name} で確認（認証）されていません"
    ),
    C.QUOTA_EXCEEDED: Remedy("{Name}'s sending limit has been reached", "{name} の送信上限に達しました"),
    C.RATE_LIMITED: Remedy("{Name} asked to slow down", "{name} から送信ペースを落とすよう求められました"),
    C.TEMPORARY_FAILURE: Remedy("{Name} had a temporary problem", "{name} で一時的な問題が発生しました"),
    C.RECIPIENT_REJECTED: Remedy("The recipient address was rejected", "宛先アドレスが拒否されました"),
    C.MESSAGE_REJECTED_POLICY: Remedy(
        "{Name} rejected the message under its policy", "{name} がポリシーによりメッセージを拒否しました"
    ),
    C.MESSAGE_TOO_LARGE: Remedy("The message is too large for {name}", "メッセージが {name} の上限サイズを超えています"),
    C.ACCOUNT_SUSPENDED: Remedy(
        "{Name} has blocked sending from this account", "{name} がこのアカウントからの送信をブロックしています"
    ),
    C.CONNECTION_FAILED: Remedy("Could not connect to the mail server", "メールサーバーに接続できませんでした"),
    C.OTHER: Remedy("The mail server refused the request", "メールサーバーが要求を拒否しました"),
}

_GMAIL_AUTH_NOTE = Remedy(
    'Authentication failed has two possible causes: the credentials are wrong, or the Gmail password was changed '
    "(changing the Google account password revokes its app passwords, so the app password must be renewed).",
    "認証失敗には次の 2 つの原因が考えられます。認証情報が正しくない場合と、Gmail のパスワードを変更した場合です"
    "（Google アカウントのパスワードを変更するとアプリ パスワードは無効になるため、アプリ パスワードを更新する必要があります）。",
)

_CATEGORY_REMEDIES: dict[Category, Remedy] = {
    C.AUTH_FAILED: Remedy(
        "{Name} did not accept the login. Check that the username is the full email address and enter the password "
        "again (copy it without spaces). If the account uses two-step verification, create an app password and use "
        "it instead of the normal password, then send a test email again.",
        "{name} がログインを受け付けませんでした。ユーザー名にメールアドレス全体を入力しているか確認し、パスワードを入力し直して"
        "ください（前後に空白が入らないようにコピーしてください）。アカウントで 2 段階認証を使用している場合は、アプリ パスワードを"
        "作成して通常のパスワードの代わりに使用し、もう一度テストメールを送信してください。",
    ),
    C.APP_PASSWORD_REQUIRED: Remedy(
        "{Name} does not accept the account password for SMTP. Create an app password in the account's security "
        "settings and enter it here as the password.",
        "{name} では SMTP にアカウントのパスワードを使用できません。アカウントのセキュリティ設定でアプリ パスワードを作成し、"
        "パスワード欄に入力してください。",
    ),
    C.AUTH_METHOD_DISABLED: Remedy(
        "{Name} has SMTP sign-in (SMTP AUTH) turned off for this account, or does not offer a login method Letterhead "
        "can use. Ask the mail administrator to enable authenticated SMTP for this mailbox, or use the provider's "
        "SMTP submission host on port 587 with STARTTLS.",
        "{name} でこのアカウントの SMTP 認証（SMTP AUTH）が無効になっているか、利用できるログイン方法が提供されていません。"
        "メール管理者にこのメールボックスの認証済み SMTP を有効にするよう依頼するか、ポート 587（STARTTLS）で"
        "送信用の SMTP サーバーを指定してください。",
    ),
    C.TLS_REQUIRED: Remedy(
        "{Name} only accepts logins over an encrypted connection. Use port 587 with STARTTLS (or port 465 with SSL).",
        "{name} は暗号化された接続でのみログインを受け付けます。ポート 587 で STARTTLS を使用するか、ポート 465 で SSL を"
        "使用してください。",
    ),
    C.TLS_MISMATCH: Remedy(
        "The port and the encryption type do not match. Use port 465 with SSL, or port 587 with STARTTLS (TLS).",
        "ポートと暗号化タイプが一致していません。ポート 465 を使用する場合は SSL を、ポート 587 を使用する場合は STARTTLS（TLS）を"
        "選択してください。",
    ),
    C.SENDER_NOT_ALLOWED: Remedy(
        "{Name} does not let this account send as the From address, or did not treat the connection as logged in. "
        "Make sure a username and password are set, and use the mailbox's own address (or an alias the mail "
        "administrator has allowed) as the From address.",
        "{name} は、このアカウントがこの送信元アドレスで送信することを許可していないか、ログイン済みの接続として扱っていません。"
        "ユーザー名とパスワードが設定されていることを確認し、送信元アドレスにはログインするメールボックス自身のアドレス"
        "（または管理者が許可したエイリアス）を使用してください。",
    ),
    C.SENDER_UNVERIFIED: Remedy(
        "The From address (or its domain) has not been verified with {name}. Verify it in the provider's console, "
        "then send the test email again from exactly that address.",
        "送信元アドレス（またはそのドメイン）が {name} で確認されていません。プロバイダの管理画面で確認を済ませてから、"
        "そのアドレスからもう一度テストメールを送信してください。",
    ),
    C.QUOTA_EXCEEDED: Remedy(
        "{Name}'s sending limit for this account has been reached. Letterhead holds the remaining mail and sends it "
        "when the limit window reopens; lower the daily limit in these settings, or use a transactional email "
        "service for higher volumes.",
        "このアカウントの {name} の送信上限に達しました。残りのメールは保留され、上限がリセットされた後に送信されます。"
        "この設定の 1 日の送信上限を下げるか、大量に送信する場合はトランザクションメール配信サービスをご利用ください。",
    ),
    C.RATE_LIMITED: Remedy(
        "{Name} is receiving mail from this account too fast. Letterhead will retry automatically; if this repeats, "
        "lower the per-minute limit in these settings.",
        "{name} への送信ペースが速すぎます。自動的に再試行されます。繰り返し発生する場合は、この設定の 1 分あたりの送信上限を"
        "下げてください。",
    ),
    C.TEMPORARY_FAILURE: Remedy(
        "{Name} reported a temporary problem. Nothing needs to change: Letterhead retries automatically with "
        "increasing delays.",
        "{name} で一時的な問題が発生しました。設定を変更する必要はありません。間隔を空けて自動的に再試行されます。",
    ),
    C.RECIPIENT_REJECTED: Remedy(
        "The receiving server rejected the recipient address: check it for typos, or ask the recipient for a "
        "working address. Other recipients are not affected.",
        "受信側のサーバーが宛先アドレスを拒否しました。アドレスに誤りがないか確認するか、受信者に有効なアドレスを確認してください。"
        "他の宛先には影響しません。",
    ),
    C.MESSAGE_REJECTED_POLICY: Remedy(
        "The message was refused as spam or under a security policy. Check that the sending domain publishes SPF, "
        "DKIM and DMARC records (Email authentication), that the server's IP is not on a blocklist, and that the "
        "content has no suspicious links or attachments.",
        "メッセージが迷惑メール、またはセキュリティポリシーにより拒否されました。送信ドメインに SPF・DKIM・DMARC レコードが"
        "設定されていること（メール認証）、送信サーバーの IP アドレスがブロックリストに登録されていないこと、本文に不審なリンクや"
        "添付ファイルがないことを確認してください。",
    ),
    C.MESSAGE_TOO_LARGE: Remedy(
        "The message is larger than {name} accepts. Remove or shrink attachments, or share large files as a link.",
        "メッセージが {name} の受け付けるサイズを超えています。添付ファイルを削除または縮小するか、大きなファイルはリンクで"
        "共有してください。",
    ),
    C.ACCOUNT_SUSPENDED: Remedy(
        "{Name} has blocked or suspended sending for this account. Sign in to the provider's website, read its "
        "notice and follow the steps to unblock the account (or contact its support); then send a test email again.",
        "{name} がこのアカウントからの送信をブロックまたは停止しています。プロバイダのウェブサイトにログインして通知を確認し、"
        "ブロック解除の手順に従ってください（またはサポートにお問い合わせください）。その後、もう一度テストメールを送信してください。",
    ),
    C.CONNECTION_FAILED: Remedy(
        "Letterhead could not reach the mail server. Check the host name and port, and that no firewall blocks "
        "outgoing connections to it.",
        "メールサーバーに接続できませんでした。ホスト名とポートを確認し、ファイアウォールが送信方向の接続をブロックしていないか"
        "確認してください。",
    ),
    C.OTHER: Remedy(
        "The mail server refused the request. The reply below says why; if it persists, contact {name}'s support "
        "with this reply.",
        "メールサーバーが要求を拒否しました。理由は下記の応答をご確認ください。解決しない場合は、この応答を添えて {name} の"
        "サポートにお問い合わせください。",
    ),
}

_MS_ADMIN_STEPS = Remedy(
    "In the Microsoft 365 admin center (https://admin.microsoft.com) go to Users > Active users, select the user, "
    "open Mail > Manage email apps, check \"Authenticated SMTP\" and save. If SMTP AUTH is disabled for the whole "
    "organisation, an Exchange admin must also turn it on (Exchange admin center > Settings > Mail flow, or "
    "Set-TransportConfig -SmtpClientAuthenticationDisabled $false). Changes can take up to an hour.",
    "Microsoft 365 管理センター（https://admin.microsoft.com）で [ユーザー] > [アクティブなユーザー] に移動し、ユーザーを選択して"
    "[メール] > [メール アプリの管理] を開き、「認証済み SMTP」にチェックを入れて変更を保存してください。組織全体で SMTP AUTH が"
    "無効になっている場合は、Exchange 管理者が組織の設定でも有効にする必要があります（Exchange 管理センター、または"
    " Set-TransportConfig -SmtpClientAuthenticationDisabled $false）。反映まで最大 1 時間ほどかかることがあります。",
)

_PROVIDER_REMEDIES: dict[tuple[Category, str], Remedy] = {
    # Google: https://support.google.com/accounts/answer/185833 (app passwords), /mail/answer/7126229 (SMTP)
    (C.AUTH_FAILED, "gmail"): Remedy(
        "Gmail did not accept the username or password. " + _GMAIL_AUTH_NOTE.en + " Generate a new app password at "
        "https://myaccount.google.com/apppasswords (2-Step Verification must be on: "
        "https://myaccount.google.com/security), enter it here as the password with the full Gmail address as the "
        "username, and send a test email again.",
        "Gmail がユーザー名またはパスワードを受け付けませんでした。" + _GMAIL_AUTH_NOTE.ja + "https://myaccount.google.com/apppasswords"
        " で新しいアプリ パスワードを生成し（2 段階認証プロセスを有効にしておく必要があります: https://myaccount.google.com/security）、"
        "ユーザー名に Gmail アドレス全体、パスワードに生成したアプリ パスワードを入力して、もう一度テストメールを送信してください。",
    ),
    (C.AUTH_FAILED, "google_workspace"): Remedy(
        "Google Workspace did not accept the username or password. " + _GMAIL_AUTH_NOTE.en + " Generate a new app "
        "password at https://myaccount.google.com/apppasswords (2-Step Verification must be on; if the page is not "
        "available, your Workspace administrator must allow 2-Step Verification and app passwords in the Google "
        "Admin console) and enter it here with the full address as the username.",
        "Google Workspace がユーザー名またはパスワードを受け付けませんでした。" + _GMAIL_AUTH_NOTE.ja
        + "https://myaccount.google.com/apppasswords で新しいアプリ パスワードを生成し（2 段階認証プロセスを有効にしておく必要が"
        "あります。ページを開けない場合は、Workspace の管理者が Google 管理コンソールで 2 段階認証プロセスとアプリ パスワードを"
        "許可する必要があります）、ユーザー名にメールアドレス全体を入力してください。",
    ),
    (C.APP_PASSWORD_REQUIRED, "gmail"): Remedy(
        "2-Step Verification is on for this Google account, so Gmail needs an app password: generate one at "
        "https://myaccount.google.com/apppasswords (copy it before closing the page — it cannot be shown again) and "
        "enter it here instead of the account password.",
        "この Google アカウントでは 2 段階認証プロセスが有効なため、Gmail ではアプリ パスワードが必要です。"
        "https://myaccount.google.com/apppasswords でアプリ パスワードを生成し（ページを閉じると再表示できないため、閉じる前に"
        "必ずコピーしてください）、アカウントのパスワードの代わりに入力してください。",
    ),
    (C.APP_PASSWORD_REQUIRED, "google_workspace"): Remedy(
        "Google Workspace needs an app password: turn on 2-Step Verification (https://myaccount.google.com/security), "
        "generate an app password at https://myaccount.google.com/apppasswords and enter it here. If app passwords "
        "are not offered, your Workspace administrator must allow them.",
        "Google Workspace ではアプリ パスワードが必要です。2 段階認証プロセスを有効にし（https://myaccount.google.com/security）、"
        "https://myaccount.google.com/apppasswords でアプリ パスワードを生成して入力してください。アプリ パスワードが表示されない"
        "場合は、Workspace の管理者が許可する必要があります。",
    ),
    (C.QUOTA_EXCEEDED, "gmail"): Remedy(
        "This Gmail account reached its daily sending limit (about 500 messages a day for personal Gmail, 2,000 for "
        "Google Workspace). Gmail blocks further sending for up to 24 hours; Letterhead holds the remaining mail and "
        "sends it when the limit resets. Lower the daily limit here, or use a transactional email service for more "
        "volume.",
        "この Gmail アカウントは 1 日の送信上限（個人の Gmail は 1 日約 500 通、Google Workspace は 2,000 通）に達しました。"
        "Gmail では最大 24 時間、それ以降の送信がブロックされます。残りのメールは保留され、上限がリセットされた後に送信されます。"
        "この設定の 1 日の送信上限を下げるか、大量に送信する場合はトランザクションメール配信サービスをご利用ください。",
    ),
    (C.QUOTA_EXCEEDED, "google_workspace"): Remedy(
        "This Google Workspace user reached the daily sending limit (2,000 messages a day; 10,000 recipients for the "
        "SMTP relay service). Sending resumes within 24 hours; Letterhead holds the remaining mail until then.",
        "この Google Workspace ユーザーは 1 日の送信上限（1 日 2,000 通、SMTP リレーサービスは 10,000 宛先）に達しました。"
        "24 時間以内に送信が再開されます。それまで残りのメールは保留されます。",
    ),
    # Microsoft: https://learn.microsoft.com/exchange/clients-and-mobile-in-exchange-online/authenticated-client-smtp-submission
    (C.AUTH_METHOD_DISABLED, "microsoft365"): Remedy(
        "Authenticated SMTP (SMTP AUTH) is turned off for this Microsoft 365 mailbox or organisation. "
        + _MS_ADMIN_STEPS.en
        + " If the account uses multi-factor authentication, use an app password.",
        "この Microsoft 365 のメールボックスまたは組織で、認証済み SMTP（SMTP AUTH）が無効になっています。"
        + _MS_ADMIN_STEPS.ja
        + "アカウントで多要素認証（MFA）を使用している場合は、アプリ パスワードを使用してください。",
    ),
    (C.AUTH_METHOD_DISABLED, "outlook_com"): Remedy(
        "Outlook.com (Hotmail, Live) no longer accepts passwords for SMTP: Microsoft turned off basic authentication "
        "for personal accounts in September 2024, app passwords included. Use a Microsoft 365 business mailbox, or "
        "another provider preset.",
        "Outlook.com（Hotmail、Live）では SMTP でパスワードを使用できなくなりました。Microsoft は 2024 年 9 月に個人アカウントの"
        "基本認証を廃止しており、アプリ パスワードも使用できません。Microsoft 365 の法人向けメールボックス、または他のプロバイダを"
        "ご利用ください。",
    ),
    (C.AUTH_FAILED, "microsoft365"): Remedy(
        "Microsoft 365 did not accept the login. Use the full mailbox address as the username and its current "
        "password; if the account uses multi-factor authentication, create an app password (My Sign-Ins > Security "
        "info, https://mysignins.microsoft.com/security-info). Also make sure \"Authenticated SMTP\" is enabled for "
        "the mailbox in the Microsoft 365 admin center (Users > Active users > Mail > Manage email apps).",
        "Microsoft 365 がログインを受け付けませんでした。ユーザー名にメールボックスのアドレス全体、パスワードに現在のパスワードを"
        "入力してください。多要素認証（MFA）を使用している場合は、アプリ パスワードを作成してください（[マイ サインイン] > "
        "[セキュリティ情報]、https://mysignins.microsoft.com/security-info）。また、Microsoft 365 管理センターの [ユーザー] > "
        "[アクティブなユーザー] > [メール] > [メール アプリの管理] で「認証済み SMTP」が有効になっていることを確認してください。",
    ),
    (C.AUTH_FAILED, "outlook_com"): Remedy(
        "Outlook.com did not accept the login. Personal Outlook.com/Hotmail accounts no longer accept passwords for "
        "SMTP (September 2024): use a Microsoft 365 business mailbox or another provider.",
        "Outlook.com がログインを受け付けませんでした。個人の Outlook.com／Hotmail アカウントでは SMTP でパスワードを使用できなく"
        "なりました（2024 年 9 月）。Microsoft 365 の法人向けメールボックス、または他のプロバイダをご利用ください。",
    ),
    (C.SENDER_NOT_ALLOWED, "microsoft365"): Remedy(
        "Microsoft 365 refused to send as this From address: the From address differs from the mailbox you sign in "
        "with. Use the mailbox's own address as From, or have an Exchange admin grant the mailbox \"Send As\" on that "
        "address (Exchange admin center https://admin.exchange.microsoft.com > Recipients > Mailboxes > Delegation) "
        "or add it as an alias.",
        "Microsoft 365 がこの送信元アドレスでの送信を拒否しました。送信元アドレスがログインしているメールボックスと異なります。"
        "送信元にメールボックス自身のアドレスを使用するか、Exchange 管理者に「送信者として送信」（Send As）の権限を付与して"
        "もらうか（Exchange 管理センター https://admin.exchange.microsoft.com > [受信者] > [メールボックス] > [委任]）、"
        "エイリアスとして追加してもらってください。",
    ),
    (C.QUOTA_EXCEEDED, "microsoft365"): Remedy(
        "This Microsoft 365 mailbox reached Exchange Online's limit of 10,000 recipients per rolling 24 hours. "
        "Letterhead holds the remaining mail and retries later; spread sending over time or use a bulk email service.",
        "この Microsoft 365 のメールボックスは Exchange Online の上限（24 時間あたり 10,000 宛先）に達しました。"
        "残りのメールは保留され、後で再試行されます。送信を分散するか、一括配信サービスをご利用ください。",
    ),
    (C.RATE_LIMITED, "microsoft365"): Remedy(
        "Microsoft 365 accepts at most 30 messages a minute and 3 simultaneous connections per mailbox. Letterhead "
        "retries automatically; keep the per-minute limit at 30 or below.",
        "Microsoft 365 では 1 つのメールボックスにつき 1 分あたり 30 通、同時接続は 3 つまでです。自動的に再試行されます。"
        "1 分あたりの送信上限は 30 以下に設定してください。",
    ),
    # Amazon SES: https://docs.aws.amazon.com/ses/latest/dg/smtp-credentials.html
    (C.AUTH_FAILED, "amazon_ses"): Remedy(
        "Amazon SES rejected the SMTP login. Use SES SMTP credentials (SES console https://console.aws.amazon.com/ses "
        "> SMTP settings > Create SMTP credentials) for the same region as the host (email-smtp.<region>.amazonaws.com) "
        "— not IAM access keys or the AWS console password.",
        "Amazon SES が SMTP ログインを拒否しました。SES の SMTP 認証情報（SES コンソール https://console.aws.amazon.com/ses > "
        "[SMTP 設定] > [SMTP 認証情報の作成]）を、ホスト名（email-smtp.<リージョン>.amazonaws.com）と同じリージョンで作成して"
        "使用してください。IAM のアクセスキーや AWS コンソールのパスワードは使用できません。",
    ),
    (C.SENDER_UNVERIFIED, "amazon_ses"): Remedy(
        "The From address or its domain is not a verified identity in Amazon SES for this region: verify it in the "
        "SES console (https://console.aws.amazon.com/ses > Identities). While the account is in the SES sandbox, "
        "every recipient must be verified too — request production access to lift that.",
        "送信元アドレスまたはそのドメインが、このリージョンの Amazon SES で検証済み ID になっていません。SES コンソール"
        "（https://console.aws.amazon.com/ses > [ID]）で検証してください。アカウントが SES サンドボックスにある間は、すべての"
        "宛先も検証が必要です。本番アクセスをリクエストしてください。",
    ),
    (C.QUOTA_EXCEEDED, "amazon_ses"): Remedy(
        "The Amazon SES 24-hour sending quota is used up (200 a day in the sandbox). Letterhead holds the remaining "
        "mail until the rolling window frees up; request a quota increase in the SES console.",
        "Amazon SES の 24 時間あたりの送信クォータを使い切りました（サンドボックスでは 1 日 200 通）。残りのメールは保留され、"
        "枠が空き次第送信されます。SES コンソールで上限の引き上げをリクエストしてください。",
    ),
    (C.RATE_LIMITED, "amazon_ses"): Remedy(
        "Sending faster than the Amazon SES maximum send rate (1 message a second in the sandbox). Letterhead retries "
        "automatically; lower the per-minute limit or request a higher sending rate.",
        "Amazon SES の最大送信レート（サンドボックスでは 1 秒あたり 1 通）を超えています。自動的に再試行されます。1 分あたりの"
        "送信上限を下げるか、送信レートの引き上げをリクエストしてください。",
    ),
    (C.ACCOUNT_SUSPENDED, "amazon_ses"): Remedy(
        "AWS paused sending for this Amazon SES account (usually because of bounce or complaint rates). Read the notice "
        "sent to the AWS account's email address and resolve it in the SES console (Reputation metrics) before "
        "sending again.",
        "AWS がこの Amazon SES アカウントの送信を一時停止しました（通常はバウンス率や苦情率が原因です）。AWS アカウントのメール"
        "アドレスに届いた通知を確認し、SES コンソール（評価指標）で解決してから送信を再開してください。",
    ),
    # SendGrid: https://www.twilio.com/docs/sendgrid/for-developers/sending-email/integrating-with-the-smtp-api
    (C.AUTH_FAILED, "sendgrid"): Remedy(
        "SendGrid rejected the login. The username must be literally \"apikey\" and the password an API key (starting "
        "with \"SG.\") with Mail Send permission (Settings > API Keys). If IP Access Management is on, add this "
        "server's IP address.",
        "SendGrid がログインを拒否しました。ユーザー名には「apikey」という文字列をそのまま入力し、パスワードには Mail Send 権限の"
        "ある API キー（「SG.」で始まるもの、[Settings] > [API Keys]）を入力してください。IP Access Management を有効にしている"
        "場合は、このサーバーの IP アドレスを追加してください。",
    ),
    (C.SENDER_UNVERIFIED, "sendgrid"): Remedy(
        "The From address is not a verified SendGrid Sender Identity: verify the single sender or authenticate the "
        "domain (Settings > Sender Authentication), then send From exactly that address.",
        "送信元アドレスが SendGrid の検証済み Sender Identity ではありません。[Settings] > [Sender Authentication] で送信者を"
        "検証するかドメイン認証を行い、そのアドレスから送信してください。",
    ),
    (C.QUOTA_EXCEEDED, "sendgrid"): Remedy(
        "The SendGrid account has used its plan's email credits. Letterhead holds the mail until the credits renew; "
        "upgrade the plan for more volume.",
        "SendGrid アカウントのプランのメール送信枠（クレジット）を使い切りました。クレジットが更新されるまでメールは保留されます。"
        "より多く送信する場合はプランをアップグレードしてください。",
    ),
    # Mailgun: https://documentation.mailgun.com/docs/mailgun/user-manual/sending-messages/send-smtp
    (C.AUTH_FAILED, "mailgun"): Remedy(
        "Mailgun rejected the login. Use the SMTP credentials of the sending domain (Mailgun > Sending > Domain "
        "settings > SMTP credentials, login like postmaster@mg.example.com), not the account login or API key.",
        "Mailgun がログインを拒否しました。アカウントのログインや API キーではなく、送信ドメインの SMTP 認証情報（Mailgun の"
        "[Sending] > [Domain settings] > [SMTP credentials]、ログインは postmaster@mg.example.com の形式）を使用してください。",
    ),
    (C.SENDER_UNVERIFIED, "mailgun"): Remedy(
        "The sending domain is not verified in Mailgun: publish the DNS records shown under Sending > Domains and "
        "verify them, then send From that domain.",
        "送信ドメインが Mailgun で検証されていません。[Sending] > [Domains] に表示される DNS レコードを登録して検証してから、"
        "そのドメインのアドレスから送信してください。",
    ),
    # Brevo: https://help.brevo.com/hc/en-us/articles/7924908994450
    (C.AUTH_FAILED, "brevo"): Remedy(
        "Brevo rejected the login. Use the SMTP login shown under SMTP & API > SMTP (https://app.brevo.com/settings/keys/smtp) "
        "and an SMTP key as the password — not the account password or a v3 API key.",
        "Brevo がログインを拒否しました。[SMTP & API] > [SMTP]（https://app.brevo.com/settings/keys/smtp）に表示される SMTP"
        " ログインと、パスワードには SMTP キーを使用してください。アカウントのパスワードや v3 API キーは使用できません。",
    ),
    (C.SENDER_UNVERIFIED, "brevo"): Remedy(
        "The From address is not a validated Brevo sender: add and verify it under Senders, Domains & Dedicated IPs, or "
        "authenticate its domain.",
        "送信元アドレスが Brevo で検証済みの送信者ではありません。[Senders, Domains & Dedicated IPs] で追加して確認するか、"
        "ドメインを認証してください。",
    ),
    # Zoho: https://www.zoho.com/mail/help/zoho-smtp.html
    (C.AUTH_FAILED, "zoho"): Remedy(
        "Zoho Mail rejected the login. Use the full Zoho address as the username, an app-specific password if "
        "two-factor authentication is on (https://accounts.zoho.com > Security > App Passwords), and the SMTP host of "
        "your Zoho data center (smtp.zoho.com, smtp.zoho.eu, smtp.zoho.in …).",
        "Zoho Mail がログインを拒否しました。ユーザー名に Zoho のメールアドレス全体を入力し、2 要素認証を有効にしている場合は"
        "アプリケーション固有のパスワード（https://accounts.zoho.com > [セキュリティ] > [アプリパスワード]）を使用してください。"
        "また、ご利用のデータセンターの SMTP サーバー（smtp.zoho.com、smtp.zoho.eu、smtp.zoho.in など）を指定してください。",
    ),
    (C.SENDER_NOT_ALLOWED, "zoho"): Remedy(
        "Zoho Mail only sends From the signed-in account's own address or its aliases: set the From address to the "
        "Zoho mailbox (or add it as an alias in Zoho Mail).",
        "Zoho Mail では、ログインしたアカウント自身のアドレスまたはそのエイリアスからのみ送信できます。送信元アドレスを Zoho の"
        "メールボックスのアドレスにするか、Zoho Mail でエイリアスとして追加してください。",
    ),
    (C.ACCOUNT_SUSPENDED, "zoho"): Remedy(
        "Zoho Mail blocked outgoing mail for this account. Unblock it at https://mail.zoho.com/UnblockMe (or ask the "
        "Zoho Mail admin: Admin console > Troubleshoot > Blocked accounts), then send a test email again.",
        "Zoho Mail がこのアカウントの送信をブロックしました。https://mail.zoho.com/UnblockMe でブロックを解除するか、Zoho Mail の"
        "管理者に依頼してください（管理コンソール > トラブルシューティング > ブロックされたアカウント）。その後、もう一度テスト"
        "メールを送信してください。",
    ),
    # Yahoo: https://help.yahoo.com/kb/SLN15241.html (app passwords)
    (C.AUTH_FAILED, "yahoo"): Remedy(
        "Yahoo Mail rejected the login. Yahoo requires an app password for SMTP: generate one under Account security "
        "(https://login.yahoo.com/account/security > Generate app password) and use it with the full Yahoo address.",
        "Yahoo メールがログインを拒否しました。Yahoo の SMTP にはアプリ パスワードが必要です。アカウントのセキュリティ"
        "（https://login.yahoo.com/account/security > [アプリパスワードを生成]）で作成し、Yahoo のメールアドレス全体と"
        "一緒に使用してください。",
    ),
    (C.APP_PASSWORD_REQUIRED, "yahoo"): Remedy(
        "Yahoo Mail needs an app password for SMTP: generate one at https://login.yahoo.com/account/security and enter "
        "it here instead of the account password.",
        "Yahoo メールの SMTP にはアプリ パスワードが必要です。https://login.yahoo.com/account/security で作成し、アカウントの"
        "パスワードの代わりに入力してください。",
    ),
    (C.SENDER_NOT_ALLOWED, "yahoo"): Remedy(
        "Yahoo Mail only sends From the signed-in Yahoo address: set the From address to that address.",
        "Yahoo メールでは、ログインした Yahoo のアドレスからのみ送信できます。送信元アドレスをそのアドレスにしてください。",
    ),
    # iCloud: https://support.apple.com/102525 (app-specific passwords)
    (C.AUTH_FAILED, "icloud"): Remedy(
        "iCloud Mail rejected the login. iCloud needs an app-specific password: sign in at https://account.apple.com, "
        "open Sign-In and Security > App-Specific Passwords, create one and use it with your iCloud address.",
        "iCloud メールがログインを拒否しました。iCloud では App 用パスワードが必要です。https://account.apple.com にサインインし、"
        "[サインインとセキュリティ] > [App 用パスワード] で作成して、iCloud のメールアドレスと一緒に使用してください。",
    ),
    (C.APP_PASSWORD_REQUIRED, "icloud"): Remedy(
        "iCloud Mail needs an app-specific password: create one at https://account.apple.com (Sign-In and Security > "
        "App-Specific Passwords; two-factor authentication must be on).",
        "iCloud メールでは App 用パスワードが必要です。https://account.apple.com の [サインインとセキュリティ] > [App 用パスワード]"
        " で作成してください（2 ファクタ認証を有効にしておく必要があります）。",
    ),
    (C.SENDER_NOT_ALLOWED, "icloud"): Remedy(
        "iCloud Mail only sends From your iCloud addresses (and custom-domain addresses set up in iCloud+): choose one "
        "of them as the From address.",
        "iCloud メールでは、iCloud のアドレス（および iCloud+ で設定したカスタムドメインのアドレス）からのみ送信できます。"
        "送信元アドレスにはそのいずれかを指定してください。",
    ),
}

# Remedies for one specific cause, by rule (optionally per provider: key (rule, provider)).
_RULE_REMEDIES: dict[str, Remedy] = {
    "tls_version": Remedy(
        "{Name} refuses old TLS versions (1.0/1.1). Letterhead uses TLS 1.2+; if this appears, a proxy or an old "
        "server in between is negotiating TLS — use the provider's own host name and port 587 (STARTTLS) or 465 (SSL).",
        "{name} は古い TLS（1.0／1.1）を受け付けません。途中のプロキシや古いサーバーが TLS を処理している可能性があります。"
        "プロバイダ本来のホスト名と、ポート 587（STARTTLS）または 465（SSL）を使用してください。",
    ),
    "tls_required": Remedy(
        "{Name} requires encryption before logging in or sending. Set the encryption to STARTTLS on port 587 (or SSL "
        "on port 465).",
        "{name} はログインや送信の前に暗号化を必要としています。暗号化タイプをポート 587 の STARTTLS（またはポート 465 の SSL）"
        "に設定してください。",
    ),
    "too_many_logins": Remedy(
        "{Name} received too many logins in a short time and is refusing new ones for a while. Letterhead waits and "
        "retries; if the password was wrong, correct it now so that the next attempt succeeds.",
        "短時間にログインが集中したため、{name} がしばらくログインを受け付けていません。時間をおいて自動的に再試行されます。"
        "パスワードが誤っていた場合は、次回成功するよう今のうちに修正してください。",
    ),
    "federation_unreachable": Remedy(
        "Microsoft could not reach your organisation's own sign-in server (federation / AD FS). This is an outage on "
        "your IT side: Letterhead retries; tell your administrator if it lasts.",
        "Microsoft が組織のサインインサーバー（フェデレーション／AD FS）に接続できませんでした。組織側の障害です。自動的に再試行"
        "されますが、続く場合は管理者に連絡してください。",
    ),
    "sandbox_recipient": Remedy(
        "{Name}'s sandbox/test domain can only send to authorised recipients: add and verify your own sending domain, "
        "or add this recipient as an authorised recipient.",
        "{name} のサンドボックス（テスト用）ドメインは、許可された宛先にしか送信できません。独自の送信ドメインを追加して検証するか、"
        "この宛先を許可された受信者（Authorized Recipients）に追加してください。",
    ),
    "mailbox_full": Remedy(
        "The recipient's mailbox is full. Nothing is wrong with your settings; the recipient must free up space "
        "(temporary full mailboxes are retried).",
        "受信者のメールボックスが容量オーバーです。設定に問題はありません。受信者側で容量を空ける必要があります"
        "（一時的なものであれば再試行されます）。",
    ),
    "message_format": Remedy(
        "The server rejected the message's format (line endings, header or MIME structure). This is not a settings "
        "problem: report it to the platform operator with this reply.",
        "サーバーがメッセージの形式（改行コード、ヘッダー、MIME 構造）を拒否しました。設定の問題ではありません。この応答を添えて"
        "プラットフォームの運営者にお知らせください。",
    ),
    "direct_to_mx": Remedy(
        "This host receives mail; it does not accept mail to send on. Use the provider's SMTP submission server "
        "with a login (for Gmail: smtp.gmail.com, port 465 SSL or 587 STARTTLS).",
        "このホストは受信用のサーバーで、送信を受け付けません。ログインが必要なプロバイダの送信用 SMTP サーバーを指定してください"
        "（Gmail の場合: smtp.gmail.com、ポート 465 の SSL または 587 の STARTTLS）。",
    ),
    "sender_authentication_policy": Remedy(
        "The receiving server rejected the message because the sending domain's authentication (SPF, DKIM, DMARC) "
        "failed. Authenticate the domain under Email authentication (publish the DKIM, SPF and DMARC records) or "
        "send From an address of the mailbox's own domain.",
        "送信ドメインの認証（SPF・DKIM・DMARC）に失敗したため、受信側のサーバーがメッセージを拒否しました。[メール認証] で"
        "ドメインを認証する（DKIM・SPF・DMARC レコードを公開する）か、メールボックス自身のドメインのアドレスから送信してください。",
    ),
    "gmail_web_login": Remedy(
        "Google blocked this sign-in and asks for a browser sign-in. Sign in at https://accounts.google.com, confirm "
        "the security alert (\"Yes, it was me\"), then use an app password: turn on 2-Step Verification "
        "(https://myaccount.google.com/security) and generate one at https://myaccount.google.com/apppasswords — "
        "Google no longer accepts the account password for SMTP.",
        "Google がこのログインをブロックし、ブラウザでのログインを求めています。https://accounts.google.com にログインして"
        "セキュリティ通知を確認（「はい、私です」）したうえで、アプリ パスワードを使用してください。2 段階認証プロセスを有効にし"
        "（https://myaccount.google.com/security）、https://myaccount.google.com/apppasswords で生成します。Google では SMTP に"
        "アカウントのパスワードを使用できません。",
    ),
    "basic_auth_disabled": Remedy(
        "Microsoft has turned off basic (password) authentication for this account. "
        + _MS_ADMIN_STEPS.en
        + " Microsoft is moving to modern authentication (OAuth 2.0); where SMTP is needed it can still be enabled "
        "per user as above.",
        "このアカウントでは Microsoft の基本認証（パスワード認証）が無効になっています。"
        + _MS_ADMIN_STEPS.ja
        + "Microsoft は基本認証を廃止してモダン認証（OAuth 2.0）に移行していますが、SMTP が必要な場合は上記のとおりユーザー単位で"
        "有効にできます。",
    ),
    ("basic_auth_disabled|outlook_com"): _PROVIDER_REMEDIES[(C.AUTH_METHOD_DISABLED, "outlook_com")],
    "sign_in_policy": Remedy(
        "A Microsoft Entra sign-in policy (security defaults, Conditional Access or a legacy-authentication block) "
        "refused this SMTP login. An administrator must exclude this account from the policy or allow authenticated "
        "SMTP for it. " + _MS_ADMIN_STEPS.en,
        "Microsoft Entra のサインインポリシー（セキュリティの既定値、条件付きアクセス、レガシー認証のブロック）がこの SMTP ログイン"
        "を拒否しました。管理者がこのアカウントをポリシーの対象外にするか、認証済み SMTP を許可する必要があります。"
        + _MS_ADMIN_STEPS.ja,
    ),
    "auth_mechanism": Remedy(
        "{Name} does not accept the login method that was offered. Use port 587 with STARTTLS (most servers only offer "
        "AUTH LOGIN/PLAIN after STARTTLS) or port 465 with SSL, and check that SMTP authentication is enabled for "
        "the account.",
        "{name} が提示されたログイン方法を受け付けませんでした。ポート 587 で STARTTLS を使用するか（多くのサーバーは STARTTLS の"
        "後でのみ AUTH LOGIN／PLAIN を提供します）、ポート 465 で SSL を使用し、アカウントで SMTP 認証が有効になっていることを"
        "確認してください。",
    ),
    "microsoft_tenant_blocked": Remedy(
        "{Name} is refusing outbound mail from this account or organisation (common on new or trial Microsoft 365 "
        "tenants, or after spam was detected). The administrator must check the Restricted entities page in the "
        "Microsoft Defender portal (https://security.microsoft.com/restrictedentities) or contact Microsoft support; "
        "Letterhead cannot fix this.",
        "{name} がこのアカウントまたは組織からの送信を拒否しています（Microsoft 365 の新規・試用テナントや、迷惑メールが検出された"
        "後によく発生します）。管理者が Microsoft Defender ポータルの [制限されたエンティティ]（https://security.microsoft.com/"
        "restrictedentities）を確認するか、Microsoft サポートに問い合わせる必要があります。",
    ),
    "workspace_relay": Remedy(
        "This is Google Workspace's SMTP relay (smtp-relay.gmail.com), which only accepts registered IP addresses or "
        "authenticated senders. Use smtp.gmail.com with an app password instead, or have the Workspace admin add this "
        "server's IP address / require SMTP authentication in the Google Admin console (Apps > Google Workspace > "
        "Gmail > Routing > SMTP relay service).",
        "これは Google Workspace の SMTP リレー（smtp-relay.gmail.com）で、登録済みの IP アドレスまたは認証済みの送信者からしか"
        "受け付けません。代わりに smtp.gmail.com とアプリ パスワードを使用するか、Workspace の管理者に Google 管理コンソール"
        "（[アプリ] > [Google Workspace] > [Gmail] > [ルーティング] > [SMTP リレーサービス]）でこのサーバーの IP アドレスを追加するか"
        " SMTP 認証を必須にするよう依頼してください。",
    ),
    "not_subscribed": Remedy(
        "The account behind these credentials is not signed up for {name} (in this region). Enable the service for "
        "the account, or use credentials from the right account and region.",
        "この認証情報のアカウントは（このリージョンで）{name} に登録されていません。アカウントでサービスを有効にするか、正しい"
        "アカウント・リージョンの認証情報を使用してください。",
    ),
    "syntax": Remedy(
        "The server did not understand a command (usually a malformed address, such as a From address with a display "
        "name or non-ASCII characters). Check the From and Reply-To addresses; if they are fine, report this reply to "
        "the platform operator.",
        "サーバーがコマンドを解釈できませんでした（多くの場合、表示名や全角文字を含む送信元アドレスなど、アドレスの形式が原因"
        "です）。送信元アドレスと返信先アドレスを確認し、問題がなければこの応答を添えてプラットフォームの運営者にお知らせください。",
    ),
}


def _names(provider: str | None) -> dict[str, str]:
    display = _PROVIDER_NAMES.get(provider or "")
    if display:
        return {"name": display, "Name": display, "name_ja": display}
    return {"name": _GENERIC_NAME.en, "Name": "Your mail provider", "name_ja": _GENERIC_NAME.ja}


def _fmt(remedy: Remedy, provider: str | None, **extra: object) -> Remedy:
    names = _names(provider)
    en_vars = {"name": names["name"], "Name": names["Name"], **extra}
    ja_vars = {"name": names["name_ja"], "Name": names["name_ja"], **extra}
    en = remedy.en.format_map(_Defaulting(en_vars))
    ja = remedy.ja.format_map(_Defaulting(ja_vars))
    # No space between Japanese words and a following particle ("サーバー は" -> "サーバーは"); spaces around Latin
    # words and inside Google's own names (「アプリ パスワード」) stay.
    ja = _JA_SPACE_BEFORE_PARTICLE.sub("", ja)
    return Remedy(en, ja)


_JA_SPACE_BEFORE_PARTICLE = re.compile(r"(?<=[\u3040-\u30ff\u4e00-\u9fff]) (?=[\u3040-\u309f])")


class _Defaulting(dict[str, object]):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def category_remedy(category: Category | str, provider: str | None) -> Remedy:
    """The remedy for a category, specific to the provider when one is known (used by UI banners too)."""
    cat = Category(category)
    pid = _normalize_provider(provider)
    base = _PROVIDER_REMEDIES.get((cat, pid or "")) or _CATEGORY_REMEDIES[cat]
    return _fmt(base, pid)


def _summary(category: Category, provider: str | None) -> Remedy:
    return _fmt(_SUMMARIES[category], provider)


# --------------------------------------------------------------------------------------------------------------
# Non-reply failures
# --------------------------------------------------------------------------------------------------------------

_ERROR_TEXT_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(p, re.I), kind)
    for p, kind in (
        (r"wrong[_ ]version[_ ]number|unknown protocol|record layer failure|packet length too long|http request",
         ErrorKind.TLS_WRONG_VERSION),
        (r"certificate|hostname mismatch|self[- ]signed|cert_?verify|not valid for", ErrorKind.TLS_CERTIFICATE),
        (r"starttls (extension )?not (supported|offered|available)|does not (support|offer) starttls",
         ErrorKind.STARTTLS_UNSUPPORTED),
        (r"smtp auth extension not supported|no suitable (authentication|auth)|auth(entication)? (mechanism )?not "
         r"(supported|offered|available)", ErrorKind.AUTH_UNSUPPORTED),
        (r"greeting|connection unexpectedly closed: timed out|banner", ErrorKind.GREETING_TIMEOUT),
        (r"name or service not known|nodename nor servname|getaddrinfo|nxdomain|temporary failure in name resolution|"
         r"no address associated|could not resolve|enotfound|eai_again|no such host|dns", ErrorKind.DNS),
        (r"private|loopback|link-local|not allowed to connect|internal address", ErrorKind.PRIVATE_ADDRESS),
        (r"refused|econnrefused|10061", ErrorKind.REFUSED),
        (r"timed? ?out|etimedout|10060", ErrorKind.TIMEOUT),
        (r"reset|unexpectedly closed|broken pipe|eof occurred|econnreset|disconnected|connection (lost|aborted|closed)",
         ErrorKind.DROPPED),
        (r"ssl|tls|handshake", ErrorKind.TLS_HANDSHAKE),
    )
)


def error_kind_from_text(text: str) -> str:
    """Map a client library's error message (smtplib, OpenSSL, nodemailer…) to an ErrorKind value."""
    if text in ErrorKind.ALL:
        return text
    for pattern, kind in _ERROR_TEXT_PATTERNS:
        if pattern.search(text):
            return kind
    return ErrorKind.PROTOCOL


_IMPLICIT_TLS_PORTS = frozenset({465, 2465})
_PLAIN_PORTS = frozenset({25, 587, 2525, 2587, 26})


def suggest_security(port: int | None, security: str | None) -> dict[str, object] | None:
    """The settings change for an obvious port/security mismatch, or None when the pair is plausible."""
    if port in _IMPLICIT_TLS_PORTS and security not in (None, "ssl"):
        return {"port": port, "security": "ssl"}
    if port in _PLAIN_PORTS and security == "ssl":
        return {"port": port, "security": "starttls", "alternative": {"port": 465, "security": "ssl"}}
    return None


_ERROR_REMEDIES: dict[str, Remedy] = {
    "dns": Remedy(
        "The host name {host} could not be found. Check its spelling{preset_hint_en}.",
        "ホスト名 {host} が見つかりませんでした。綴りを確認してください{preset_hint_ja}。",
    ),
    "private": Remedy(
        "{host} points to a private or local network address, which Letterhead does not connect to. Use the "
        "provider's public SMTP host; only the platform operator can allow private hosts (for an internal relay).",
        "{host} はプライベートまたはローカルネットワークのアドレスを指しているため、接続できません。プロバイダの公開 SMTP サーバーを"
        "指定してください。社内リレーなどのプライベートなホストは、プラットフォームの運営者のみが許可できます。",
    ),
    "refused": Remedy(
        "{host} refused the connection on {port_en}: nothing accepts SMTP there. Check the port (587 with STARTTLS "
        "or 465 with SSL for most providers) and that no firewall blocks it.",
        "{host} の{port_ja} への接続が拒否されました。このポートでは SMTP を受け付けていません。ポート（多くのプロバイダでは"
        " 587 の STARTTLS または 465 の SSL）を確認し、ファイアウォールでブロックされていないか確認してください。",
    ),
    "timeout": Remedy(
        "No answer from {host} on {port_en}. Check the host and port; a firewall may be dropping the connection. "
        "Letterhead retries later.",
        "{host} の{port_ja} から応答がありません。ホスト名とポートを確認してください。ファイアウォールが接続を遮断している"
        "可能性があります。後で自動的に再試行されます。",
    ),
    "timeout_25": Remedy(
        "No answer from {host} on port 25. Many hosting and cloud providers block outgoing port 25: use port 587 with "
        "STARTTLS (or 465 with SSL) instead.",
        "{host} のポート 25 から応答がありません。多くのホスティング事業者やクラウドでは送信方向のポート 25 がブロックされています。"
        "代わりにポート 587（STARTTLS）または 465（SSL）を使用してください。",
    ),
    "dropped": Remedy(
        "{host} closed the connection unexpectedly. This is usually temporary and Letterhead retries; if it repeats, "
        "check that the port and encryption match (465 = SSL, 587 = STARTTLS).",
        "{host} が接続を予期せず切断しました。通常は一時的なもので、自動的に再試行されます。繰り返す場合は、ポートと暗号化の設定が"
        "一致しているか（465 は SSL、587 は STARTTLS）確認してください。",
    ),
    "implicit_tls": Remedy(
        "{Port_en} expects SSL/TLS from the first byte, so the server never sent its greeting. Set the encryption to "
        "SSL for {port_en}, or use port 587 with STARTTLS.",
        "{port_ja} は接続直後から SSL/TLS で通信するため、サーバーからの応答（グリーティング）がありませんでした。{port_ja}"
        " では暗号化タイプを SSL にするか、ポート 587 で STARTTLS を使用してください。",
    ),
    "greeting": Remedy(
        "The server never sent its SMTP greeting. Usually this is an SSL port (465) used without SSL: set the "
        "encryption to SSL for port 465, or use port 587 with STARTTLS. A firewall or proxy can also cause it.",
        "サーバーから SMTP の応答（グリーティング）がありませんでした。多くの場合、SSL 用のポート（465）を SSL なしで使用している"
        "ことが原因です。ポート 465 では暗号化タイプを SSL にするか、ポート 587 で STARTTLS を使用してください。ファイアウォールや"
        "プロキシが原因の場合もあります。",
    ),
    "wrong_version": Remedy(
        "SSL was used on {port_en}, but the server there starts in plain text. Use STARTTLS on {port_en} (587 is the "
        "usual choice), or SSL on port 465.",
        "{port_ja} で SSL を使用しましたが、このポートのサーバーは平文で通信を開始します。{port_ja}（通常は 587）では"
        " STARTTLS を使用するか、ポート 465 で SSL を使用してください。",
    ),
    "handshake": Remedy(
        "The TLS handshake with {host} failed. Check that the port and encryption match (465 = SSL, 587 = STARTTLS); "
        "if they do, the server may only support outdated TLS versions.",
        "{host} との TLS ハンドシェイクに失敗しました。ポートと暗号化の設定が一致しているか（465 は SSL、587 は STARTTLS）確認して"
        "ください。一致している場合は、サーバーが古い TLS にしか対応していない可能性があります。",
    ),
    "certificate": Remedy(
        "The server's certificate does not match the host name {host} or is not trusted. Use the provider's own SMTP "
        "host name{preset_host_en} rather than an alias of your domain or an IP address.",
        "サーバーの証明書がホスト名 {host} と一致しないか、信頼されていません。独自ドメインの別名や IP アドレスではなく、プロバイダ"
        "本来の SMTP ホスト名{preset_host_ja}を指定してください。",
    ),
    "starttls_unsupported": Remedy(
        "{host} does not offer STARTTLS on {port_en}. Use port 465 with SSL; only for an internal relay on port 25 "
        "that offers no encryption, set the encryption to none.",
        "{host} は{port_ja} で STARTTLS を提供していません。ポート 465 で SSL を使用してください。暗号化に対応していない"
        "社内リレー（ポート 25）の場合のみ、暗号化タイプを「なし」にしてください。",
    ),
    "auth_needs_tls": Remedy(
        "The server only offers login after encryption starts. Set the encryption to STARTTLS on port 587 (or SSL on "
        "port 465).",
        "このサーバーは暗号化を開始した後でのみログインを提供します。暗号化タイプをポート 587 の STARTTLS（またはポート 465 の SSL）"
        "に設定してください。",
    ),
    "auth_unsupported": Remedy(
        "{host} offers no login method on {port_en}. If this is a relay that accepts mail without a login, remove "
        "the username and password; otherwise use the provider's submission port (587 with STARTTLS) where SMTP "
        "authentication is available.",
        "{host} は{port_ja} でログイン方法を提供していません。ログインなしで送信できるリレーの場合はユーザー名とパスワードを"
        "削除してください。それ以外の場合は、SMTP 認証が利用できる送信用ポート（587、STARTTLS）を使用してください。",
    ),
    "protocol": Remedy(
        "{host} answered on {port_en} with something that is not SMTP (for example an IMAP or web server). Use the "
        "SMTP port: 587 with STARTTLS or 465 with SSL.",
        "{host} の{port_ja} は SMTP 以外（IMAP やウェブサーバーなど）の応答を返しました。SMTP のポート（587 の STARTTLS または"
        " 465 の SSL）を指定してください。",
    ),
}

_CONNECTION_SUMMARIES: dict[str, Remedy] = {
    "dns": Remedy("The server name could not be found", "サーバー名が見つかりませんでした"),
    "private": Remedy("The server is on a private network", "サーバーがプライベートネットワーク上にあります"),
    "refused": Remedy("The server refused the connection", "サーバーが接続を拒否しました"),
    "timeout": Remedy("The server did not answer in time", "サーバーが時間内に応答しませんでした"),
    "timeout_25": Remedy("Port 25 did not answer", "ポート 25 から応答がありませんでした"),
    "dropped": Remedy("The server closed the connection", "サーバーが接続を切断しました"),
    "protocol": Remedy("The server does not speak SMTP on this port", "このポートのサーバーは SMTP ではありません"),
}


def _preset_host(provider: str | None) -> str | None:
    preset = _presets().get(provider or "")
    return preset.host if preset else None


def _diagnose_error(
    error: str,
    *,
    stage: str | None,
    provider: str | None,
    host: str | None,
    port: int | None,
    security: str | None,
    tls_hint: str | None,
    ehlo: Sequence[str],
) -> Diagnosis:
    kind = error_kind_from_text(error)
    name = _PROVIDER_NAMES.get(provider or "")
    hostv = host or "the server"
    port_vars = {
        "port_en": f"port {port}" if port else "this port",
        "Port_en": f"Port {port}" if port else "This port",
        "port_ja": f"ポート {port}" if port else "このポート",
    }
    ja_host = host or "サーバー"

    def make(
        category: Category,
        key: str,
        *,
        permanent: bool | None = None,
        suggested: dict[str, object] | None = None,
        summary_key: str | None = None,
        **extra: object,
    ) -> Diagnosis:
        tmpl = _ERROR_REMEDIES[key]
        en = _fmt(Remedy(tmpl.en, ""), provider, host=hostv, **port_vars, **extra).en
        ja = _fmt(Remedy("", tmpl.ja), provider, host=ja_host, **port_vars, **extra).ja
        if en.startswith("the server"):
            en = "T" + en[1:]
        skey = summary_key or key
        summary = _CONNECTION_SUMMARIES.get(skey) or _summary(category, provider)
        return Diagnosis(
            category=category,
            permanent=_FIXED_PERMANENCE.get(category, True) if permanent is None else permanent,
            provider=provider,
            provider_name=name,
            remedy=Remedy(en, ja),
            summary=_fmt(summary, provider),
            suggested=suggested,
        )

    on_implicit_tls = (port in _IMPLICIT_TLS_PORTS or tls_hint == "implicit_tls_port") and security != "ssl"
    ssl_suggestion: dict[str, object] = {"port": port if port in _IMPLICIT_TLS_PORTS else 465, "security": "ssl"}

    if kind == ErrorKind.DNS:
        ph = _preset_host(provider)
        hint_en = f" (for {name}: {ph})" if ph and name and ph != host else ""
        hint_ja = f"（{name} の場合: {ph}）" if ph and name and ph != host else ""
        sugg: dict[str, object] | None = {"host": ph} if ph and ph != host else None
        return make(
            C.CONNECTION_FAILED, "dns", suggested=sugg, preset_hint_en=hint_en, preset_hint_ja=hint_ja
        )
    if kind == ErrorKind.PRIVATE_ADDRESS:
        return make(C.CONNECTION_FAILED, "private", permanent=True)
    if kind == ErrorKind.REFUSED:
        return make(C.CONNECTION_FAILED, "refused", suggested=_preset_option(provider, port))
    if kind in (ErrorKind.GREETING_TIMEOUT, ErrorKind.TIMEOUT, ErrorKind.DROPPED, ErrorKind.PROTOCOL):
        early = stage in (None, "", "connect", "greeting", "ehlo", "tls")
        if on_implicit_tls and (early or kind == ErrorKind.GREETING_TIMEOUT):
            return make(C.TLS_MISMATCH, "implicit_tls", suggested=ssl_suggestion)
        if kind == ErrorKind.GREETING_TIMEOUT:
            if security == "ssl" or (port is not None and port not in _IMPLICIT_TLS_PORTS):
                return make(C.CONNECTION_FAILED, "timeout", summary_key="timeout")
            # Port unknown: the usual cause is an implicit-TLS port used without SSL.
            return make(C.TLS_MISMATCH, "greeting", suggested={"port": 465, "security": "ssl"})
        if kind == ErrorKind.TIMEOUT:
            if port == 25 and stage in (None, "", "connect"):
                return make(
                    C.CONNECTION_FAILED, "timeout_25", suggested={"port": 587, "security": "starttls"}
                )
            return make(C.CONNECTION_FAILED, "timeout")
        if kind == ErrorKind.DROPPED:
            if stage == "tls" and security == "ssl" and port in _PLAIN_PORTS:
                return make(C.TLS_MISMATCH, "wrong_version", suggested=suggest_security(port, security))
            return make(C.CONNECTION_FAILED, "dropped")
        # protocol error: a non-SMTP service on that port is a configuration problem
        return make(C.CONNECTION_FAILED, "protocol", permanent=True, suggested=_preset_option(provider, port))
    if kind == ErrorKind.TLS_WRONG_VERSION:
        if port in _IMPLICIT_TLS_PORTS:
            sugg = {"port": 587, "security": "starttls"}
        else:
            sugg = {"port": port or 587, "security": "starttls", "alternative": {"port": 465, "security": "ssl"}}
        return make(C.TLS_MISMATCH, "wrong_version", suggested=sugg)
    if kind == ErrorKind.TLS_CERTIFICATE:
        ph = _preset_host(provider)
        use = ph if ph and ph != host else None
        return make(
            C.TLS_MISMATCH,
            "certificate",
            suggested={"host": use} if use else None,
            preset_host_en=f" ({use})" if use else "",
            preset_host_ja=f"（{use}）" if use else "",
        )
    if kind == ErrorKind.TLS_HANDSHAKE:
        return make(C.TLS_MISMATCH, "handshake", suggested=suggest_security(port, security))
    if kind == ErrorKind.STARTTLS_UNSUPPORTED:
        if port == 25:
            sugg = {"port": 25, "security": "none", "alternative": {"port": 465, "security": "ssl"}}
        else:
            sugg = {"port": 465, "security": "ssl"}
        return make(C.TLS_MISMATCH, "starttls_unsupported", suggested=sugg)
    if kind == ErrorKind.AUTH_UNSUPPORTED:
        offers_starttls = any(line.strip().upper().startswith("STARTTLS") for line in ehlo)
        if security in (None, "none") and (offers_starttls or port in (587, None)):
            return make(C.TLS_REQUIRED, "auth_needs_tls", suggested={"port": port or 587, "security": "starttls"})
        return make(C.AUTH_METHOD_DISABLED, "auth_unsupported")
    return make(C.CONNECTION_FAILED, "dropped")  # pragma: no cover - every ErrorKind is handled above


def _preset_option(provider: str | None, port: int | None) -> dict[str, object] | None:
    preset = _presets().get(provider or "")
    if not preset or not preset.options:
        return None
    if any(o.port == port for o in preset.options):
        return None
    first = preset.options[0]
    return {"port": first.port, "security": first.security}


# --------------------------------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------------------------------


def diagnose(
    *,
    reply: Reply | None,
    stage: str | None,
    error: str | None = None,
    provider: str | None = None,
    host: str | None = None,
    greeting: str | None = None,
    ehlo: Sequence[str] = (),
    port: int | None = None,
    security: str | None = None,
    tls_hint: str | None = None,
) -> Diagnosis:
    """Classify one failure. ``reply`` is the server's reply when there was one; otherwise ``error`` is an
    :class:`ErrorKind` value (free text from a client library is accepted and mapped)."""
    stage = (stage or "").strip().lower() or None
    if stage == "greeting":
        stage = "connect"
    pid = _normalize_provider(provider)
    if pid is None:
        pid = detect_provider(host=host, greeting=greeting, ehlo=ehlo, text=reply.text if reply else error)
    security = security.lower() if security else None

    if reply is None or reply.code < 200:
        text = error or (reply.text if reply else "") or ErrorKind.PROTOCOL
        return _diagnose_error(
            text, stage=stage, provider=pid, host=host, port=port, security=security, tls_hint=tls_hint, ehlo=ehlo
        )

    raw = reply.text or ""
    enhanced = ([reply.enhanced] if reply.enhanced else []) + _enhanced_codes(raw, reply.code)
    text = _normalize(raw)
    code = reply.code

    rule = next(
        (r for r in RULES if r.matches(code=code, enhanced=enhanced, text=text, stage=stage, provider=pid)), None
    )
    category = rule.category if rule else _fallback_category(code, stage)
    permanent = _permanent(category, code, rule.permanent if rule else None)

    remedy_tmpl: Remedy | None = None
    if rule and rule.remedy:
        remedy_tmpl = _RULE_REMEDIES.get(f"{rule.remedy}|{pid}") or _RULE_REMEDIES.get(rule.remedy)
    remedy = _fmt(remedy_tmpl, pid) if remedy_tmpl else category_remedy(category, pid)

    suggested: dict[str, object] | None = None
    if category == C.TLS_REQUIRED:
        suggested = {"port": port if port in _PLAIN_PORTS and port != 25 else 587, "security": "starttls"}
    elif category == C.TLS_MISMATCH:
        suggested = suggest_security(port, security)
    elif (rule is not None and rule.name == "workspace_relay") or (rule is not None and rule.name == "direct_to_mx" and pid in _GOOGLE):
        suggested = {"host": "smtp.gmail.com", "port": 587, "security": "starttls"}

    retry_after: int | None = None
    if category in (C.QUOTA_EXCEEDED, C.RATE_LIMITED):
        retry_after = _retry_after(category, rule, text, pid)

    return Diagnosis(
        category=category,
        permanent=permanent,
        provider=pid,
        provider_name=_PROVIDER_NAMES.get(pid or ""),
        remedy=remedy,
        summary=_summary(category, pid),
        suggested=suggested,
        retry_after_seconds=retry_after,
    )


def _retry_after(category: Category, rule: Rule | None, text: str, provider: str | None) -> int:
    if category == C.QUOTA_EXCEEDED:
        if re.search(r"\b(per|an|a) hour|hourly", text):
            return _HOUR
        if re.search(r"per (minute|second)|per-minute", text):
            return 60
        # Gmail: "you can't send new messages for up to 24 hours"; Exchange Online and SES: rolling 24 hours.
        return _DAY
    if rule and rule.retry_after:
        return rule.retry_after
    return 60


# --------------------------------------------------------------------------------------------------------------
# Gmail From rewriting
# --------------------------------------------------------------------------------------------------------------


def gmail_from_warning(*, provider: str | None, username: str | None, from_email: str | None) -> Remedy | None:
    """Gmail and Google Workspace replace the From address with the signed-in account unless it is a verified
    "Send mail as" address (https://support.google.com/mail/answer/22370). Warn when From differs from the login."""
    pid = _normalize_provider(provider)
    if pid not in _GOOGLE or not username or not from_email:
        return None
    login = username.strip().lower()
    sender = from_email.strip().lower()
    if "@" not in login and pid == "gmail":
        login += "@gmail.com"
    if login == sender or (pid == "gmail" and _gmail_canonical(login) == _gmail_canonical(sender)):
        return None
    name = _PROVIDER_NAMES[pid]
    return Remedy(
        f"{name} sends as {username.strip()} unless {from_email.strip()} is added as a verified \"Send mail as\" "
        "address: in Gmail open Settings > Accounts and Import > Send mail as > Add another email address and confirm "
        "it. Otherwise recipients will see the login address as the sender.",
        f"{name} では、{from_email.strip()} が確認済みの「送信元アドレス」として追加されていない限り、{username.strip()} として"
        "送信されます。Gmail の [設定] > [アカウントとインポート] > [名前] で「他のメール アドレスを追加」を選択し、確認を完了して"
        "ください。追加しない場合、受信者にはログインに使用したアドレスが送信者として表示されます。",
    )


def _gmail_canonical(address: str) -> str:
    local, _, domain = address.partition("@")
    if domain in ("gmail.com", "googlemail.com"):
        return local.split("+", 1)[0].replace(".", "") + "@gmail.com"
    return address
