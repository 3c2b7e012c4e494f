"""Diagnosis of SMTP failures: the shared sample of real replies, a held-out set written independently of the
sample (other providers, MTAs and wordings), non-reply failures, mismatch suggestions, provider detection,
session-id stripping, remedies and Gmail's From rewriting."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

from letterhead.smtp.diagnose import (
    RULES,
    Category,
    Diagnosis,
    Remedy,
    category_remedy,
    detect_provider,
    diagnose,
    error_kind_from_text,
    gmail_from_warning,
    strip_session_ids,
    suggest_security,
)
from letterhead.smtp.presets import PRESETS
from letterhead.smtp.reply import ErrorKind, Reply

# --------------------------------------------------------------------------------------------------------------
# The shared sample: /work/shared/smtp-replies.json
# --------------------------------------------------------------------------------------------------------------


def _shared_file() -> Path | None:
    # The shared folder beside the repository is the source; tests/data holds a copy for clones without it.
    candidates = [
        Path(__file__).resolve().parents[3] / "shared" / "smtp-replies.json",
        Path(__file__).resolve().parents[1] / "data" / "smtp-replies.json",
    ]
    if os.environ.get("LETTERHEAD_SHARED_DIR"):
        candidates.insert(0, Path(os.environ["LETTERHEAD_SHARED_DIR"]) / "smtp-replies.json")
    return next((p for p in candidates if p.is_file()), None)


_SHARED = _shared_file()
_SAMPLE: list[dict[str, Any]] = json.loads(_SHARED.read_text(encoding="utf-8")) if _SHARED else []
_SKIP_SAMPLE = pytest.mark.skipif(
    _SHARED is None, reason="shared/smtp-replies.json not found (set LETTERHEAD_SHARED_DIR to its folder)"
)

# The sample names some providers its own way.
_PROVIDER_IDS = {"gmail-mx": "gmail", "amazon-ses": "amazon_ses", "outlook.com": "outlook_com", "generic": None}


def _reply_from_sample(entry: dict[str, Any]) -> Reply | None:
    """The sample keeps the text as logged: sometimes with "550-5.4.5" prefixes on each line. Parse it the way the
    SMTP client does (code and separator stripped per line)."""
    if not entry["code"]:
        return None
    lines = [re.sub(r"^\s*\d{3}[ -]", "", line) for line in entry["text"].split("\n")]
    return Reply.from_lines(entry["code"], lines)


def _sample_params() -> list[Any]:
    if not _SAMPLE:
        return [pytest.param(None, id="sample-missing")]
    return [pytest.param(e, id=f"{i:02d}-{e['provider']}-{e['code']}-{e['category']}") for i, e in enumerate(_SAMPLE)]


def _run_sample(entry: dict[str, Any], *, provider: str | None, raw: bool = False) -> Diagnosis:
    reply = _reply_from_sample(entry)
    if raw and reply is not None:
        # As a caller might build it: the logged text, codes and all.
        reply = Reply(code=entry["code"], text=entry["text"], enhanced=entry["enhanced"])
    return diagnose(reply=reply, stage=entry["stage"], error=None if reply else entry["text"], provider=provider)


@_SKIP_SAMPLE
@pytest.mark.parametrize("entry", _sample_params())
def test_sample_reply_with_provider(entry: dict[str, Any]) -> None:
    d = _run_sample(entry, provider=_PROVIDER_IDS.get(entry["provider"], entry["provider"]))
    assert (d.category, d.permanent) == (entry["category"], entry["permanent"]), entry["text"]


@_SKIP_SAMPLE
@pytest.mark.parametrize("entry", _sample_params())
def test_sample_reply_without_provider(entry: dict[str, Any]) -> None:
    """The category must not depend on being told the provider."""
    d = _run_sample(entry, provider=None)
    assert (d.category, d.permanent) == (entry["category"], entry["permanent"]), entry["text"]


@_SKIP_SAMPLE
@pytest.mark.parametrize("entry", _sample_params())
def test_sample_reply_raw_text(entry: dict[str, Any]) -> None:
    d = _run_sample(entry, provider=None, raw=True)
    assert (d.category, d.permanent) == (entry["category"], entry["permanent"]), entry["text"]


@_SKIP_SAMPLE
def test_sample_covers_every_category_it_names() -> None:
    assert {e["category"] for e in _SAMPLE} <= {c.value for c in Category}


# --------------------------------------------------------------------------------------------------------------
# Held-out set: real-world replies NOT in the sample (provider hint, stage, code, text, category, permanent).
# Written from providers' documented replies and common MTAs (Postfix, Exim, qmail, Exchange on-premises).
# --------------------------------------------------------------------------------------------------------------

HELD_OUT: list[tuple[str | None, str, int, str, str, bool]] = [
    ('gmail', 'auth', 535, '5.7.8 Username and Password not accepted. For more information, go to\n5.7.8  https://support.google.com/mail/?p=BadCredentials a640c23a62f3a-a9a6f0f1c2dsm123456766b.9 - gsmtp', 'auth_failed', True),
    ('gmail', 'auth', 534, '5.7.14 <https://accounts.google.com/signin/continue?sarp=1&scc=1&plt=AKgnsbu> Please log in via your web browser and\n5.7.14 then try again.\n5.7.14  Learn more at\n5.7.14  https://support.google.com/mail/answer/78754 x12sm4403212wrn.55 - gsmtp', 'auth_failed', True),
    (None, 'rcpt_to', 550, "5.1.1 The email account that you tried to reach does not exist. Please try\n5.1.1 double-checking the recipient's email address for typos or\n5.1.1 unnecessary spaces. https://support.google.com/mail/?p=NoSuchUser 41be03b00d2f7-7db6a3fa2cesi1234567a12.321 - gsmtp", 'recipient_rejected', True),
    (None, 'rcpt_to', 550, '5.2.1 The email account that you tried to reach is disabled. https://support.google.com/mail/?p=DisabledUser q7si1231425qkb.44 - gsmtp', 'recipient_rejected', True),
    (None, 'rcpt_to', 452, '4.2.2 The email account that you tried to reach is over quota. Please direct\n4.2.2 the recipient to\n4.2.2  https://support.google.com/mail/?p=OverQuotaTemp b3si123.12 - gsmtp', 'recipient_rejected', False),
    ('gmail', 'after_data', 550, '5.4.5 Daily sending quota exceeded. pw9sm377827lbb.2 - gsmtp', 'quota_exceeded', False),
    ('google_workspace', 'after_data', 550, '5.4.5 Daily SMTP relay limit exceeded for user. For more information on SMTP\n5.4.5 relay sending limits please visit\n5.4.5  https://support.google.com/a/answer/166852 u1sm12.3 - gsmtp', 'quota_exceeded', False),
    (None, 'connect', 421, '4.7.0 Try again later, closing connection. (EHLO) x4-20020a05600c21c400b003b47b913901sm1834371wmj.1 - gsmtp', 'rate_limited', False),
    (None, 'after_data', 550, '5.7.26 This mail is unauthenticated, which poses a security risk to the\n5.7.26 sender and Gmail users, and has been blocked. The sender must\n5.7.26 authenticate with at least one of SPF or DKIM. https://support.google.com/mail/answer/81126#authentication 6a1803df08f44-6cb3c8fa7c3si12345.2 - gsmtp', 'message_rejected_policy', True),
    (None, 'after_data', 552, '5.7.0 This message was blocked because its content presents a potential\n5.7.0 security issue. Please visit\n5.7.0  https://support.google.com/mail/?p=BlockedMessage to review our\n5.7.0 message content and attachment content guidelines. k14si1.3 - gsmtp', 'message_rejected_policy', True),
    ('gmail', 'auth', 454, '4.7.0 Cannot authenticate due to a temporary system problem. Try again later. r12sm1212.2 - gsmtp', 'temporary_failure', False),
    ('gmail', 'mail_from', 530, '5.7.0 Authentication Required. Learn more at\n5.7.0  https://support.google.com/mail/?p=WantAuthError c1sm3.4 - gsmtp', 'auth_failed', True),
    (None, 'after_data', 421, '4.7.28 [203.0.113.7      15] Our system has detected an unusual rate of\n4.7.28 unsolicited mail originating from your IP address. To protect our\n4.7.28 users from spam, mail sent from your IP address has been temporarily\n4.7.28 rate limited. https://support.google.com/mail/?p=UnsolicitedRateLimitError s9si1.3 - gsmtp', 'rate_limited', False),
    ('microsoft365', 'auth', 535, '5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant. Visit https://aka.ms/smtp_auth_disabled for more information. [SA0PR11CA0123.namprd11.prod.outlook.com 2025-02-03T10:11:12.345Z 08DD43A1B2C3D4E5]', 'auth_method_disabled', True),
    ('microsoft365', 'auth', 535, "5.7.139 Authentication unsuccessful, user is locked by your organization's security defaults policy. Contact your administrator. [LO4P123CA0456.GBRP123.PROD.OUTLOOK.COM 2024-06-01T08:00:00.000Z 08DC81F0A1B2C3D4]", 'auth_method_disabled', True),
    ('microsoft365', 'after_data', 554, '5.2.252 SendAsDenied; alerts@contoso.com not allowed to send as shop@fabrikam.com; STOREDRV.Submission.Exception:SendAsDeniedException.MapiExceptionSendAsDenied; Failed to process message due to a permanent exception with message [BeginDiagnosticData]Cannot submit message. 0.35250:0A00A388, 1.36674:0A000000 [EndDiagnosticData] [Hostname=BN8PR12MB1234.namprd12.prod.outlook.com]', 'sender_not_allowed', True),
    ('microsoft365', 'after_data', 550, '5.1.8 Access denied, bad outbound sender. AS(42004) [AM6PR08MB1234.eurprd08.prod.outlook.com]', 'account_suspended', True),
    ('microsoft365', 'after_data', 550, '5.7.501 Service unavailable. Spam abuse detected from IP range. For more information please go to http://go.microsoft.com/fwlink/?LinkId=526655. AS(1430) [DB5EUR03FT012.eop-EUR03.prod.protection.outlook.com]', 'account_suspended', True),
    ('microsoft365', 'after_data', 554, '5.2.0 STOREDRV.Submission.Exception:OutboundSpamException; WASCL UserAction verdict is not None. Actual verdict is Suspend, OutboundSpamLastActionTime: 2024-01-01T00:00:00Z.', 'account_suspended', True),
    ('microsoft365', 'mail_from', 530, '5.7.57 Client not authenticated to send anonymous mail during MAIL FROM [MN2PR01CA0012.prod.exchangelabs.com]', 'auth_failed', True),
    ('microsoft365', 'tls', 421, '4.7.66 TLS 1.0 and 1.1 are not supported. Please upgrade/update your client to support TLS 1.2. Visit https://aka.ms/smtp_auth_tls. [AM0PR10CA0012.EURPRD10.PROD.OUTLOOK.COM]', 'tls_mismatch', True),
    (None, 'mail_from', 451, '5.7.3 STARTTLS is required to send mail [DM6PR11MB3456.namprd11.prod.outlook.com]', 'tls_required', True),
    (None, 'rcpt_to', 550, '5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient nobody@contoso.com not found by SMTP address lookup', 'recipient_rejected', True),
    (None, 'rcpt_to', 550, '5.7.1 Unable to relay', 'sender_not_allowed', True),
    (None, 'mail_from', 530, '5.7.1 Client was not authenticated', 'auth_failed', True),
    (None, 'after_data', 451, '4.7.500 Server busy. Please try again later from [203.0.113.5]. (S77719) [BN1NAM02FT010.eop-nam02.prod.protection.outlook.com]', 'temporary_failure', False),
    ('outlook_com', 'after_data', 554, '5.2.0 STOREDRV.Submission.Exception:OutboundSpamException; WASCL UserAction verdict is not None. Actual verdict is RefuseQuota, OutboundSpamLastActionTime: 2024-02-02T00:00:00Z.', 'quota_exceeded', False),
    ('microsoft365', 'after_data', 550, "5.1.90 Your message can't be sent because you've reached your daily limit for message recipients. [PAXPR04MB1234.eurprd04.prod.outlook.com]", 'quota_exceeded', False),
    ('amazon_ses', 'after_data', 554, 'Message rejected: Email address is not verified. The following identities failed the check in region EU-WEST-1: shop@example.jp', 'sender_unverified', True),
    ('amazon_ses', 'after_data', 554, 'Message rejected: Address blacklisted.', 'recipient_rejected', True),
    ('amazon_ses', 'auth', 530, 'Authentication required', 'auth_failed', True),
    ('amazon_ses', 'after_data', 454, 'Temporary service failure', 'temporary_failure', False),
    ('amazon_ses', 'after_data', 554, 'Access denied: Sending suspended for this account. For more information, please check the inbox of the email address associated with your AWS account.', 'account_suspended', True),
    ('sendgrid', 'auth', 535, 'Authentication failed: The provided authorization grant is invalid, expired, or revoked', 'auth_failed', True),
    ('sendgrid', 'mail_from', 550, 'Unauthenticated senders not allowed', 'auth_failed', True),
    ('sendgrid', 'auth', 451, 'Authentication failed: Account disabled', 'account_suspended', True),
    ('mailgun', 'rcpt_to', 421, 'Domain sandbox0123456789abcdef.mailgun.org is not allowed to send: Free accounts are for test purposes only. Please upgrade or add the address to authorized recipients in Account Settings.', 'recipient_rejected', True),
    ('mailgun', 'after_data', 550, '5.7.1 Domain mg.example.com is not allowed to send: The domain is unverified and requires DNS configuration. Log in to your control panel to view required DNS records.', 'sender_unverified', True),
    ('mailgun', 'rcpt_to', 550, '5.7.1 Relaying denied', 'sender_not_allowed', True),
    ('brevo', 'mail_from', 550, '5.5.0 Your SMTP account is not yet activated. Please contact us at contact@sendinblue.com to request activation', 'account_suspended', True),
    ('brevo', 'after_data', 550, '5.7.1 Sending has been rejected because the sender you used shop@example.jp is not valid. Validate your sender or authenticate your domain', 'sender_unverified', True),
    ('zoho', 'after_data', 553, 'Sender is not allowed to relay emails', 'sender_not_allowed', True),
    ('zoho', 'after_data', 554, '5.1.8 Email Outgoing Blocked.', 'account_suspended', True),
    ('zoho', 'rcpt_to', 550, '5.1.1 User does not exist - <nobody@zoho.com>', 'recipient_rejected', True),
    ('yahoo', 'auth', 535, '5.7.0 (#AUTH005) Too many bad auth attempts.', 'rate_limited', False),
    ('yahoo', 'after_data', 550, 'Request failed; Mailbox unavailable', 'sender_not_allowed', True),
    (None, 'after_data', 554, '5.7.9 Message not accepted for policy reasons.  See https://help.yahoo.com/kb/postmaster/SLN7253.html', 'message_rejected_policy', True),
    (None, 'connect', 421, '4.7.0 [TSS04] Messages from 203.0.113.9 temporarily deferred due to unexpected volume or user complaints - 4.16.55.1; see https://postmaster.yahooinc.com/error-codes', 'rate_limited', False),
    (None, 'connect', 553, "5.7.1 [BL21] Connections will not be accepted from 203.0.113.9, because the ip is in Spamhaus's list; see https://postmaster.yahooinc.com/error-codes", 'message_rejected_policy', True),
    ('icloud', 'auth', 535, '5.7.8 Error: authentication failed: bad user name or password', 'auth_failed', True),
    ('icloud', 'after_data', 550, '5.7.0 From address is not one of your addresses', 'sender_not_allowed', True),
    (None, 'after_data', 554, '5.7.1 [CS01] Message rejected due to local policy. Please visit https://support.apple.com/en-us/HT204137', 'message_rejected_policy', True),
    (None, 'auth', 535, '5.7.8 Error: authentication failed: authentication failure', 'auth_failed', True),
    (None, 'auth', 535, '5.7.8 Error: authentication failed: UGFzc3dvcmQ6', 'auth_failed', True),
    (None, 'rcpt_to', 554, '5.7.1 <someone@example.org>: Relay access denied', 'sender_not_allowed', True),
    (None, 'rcpt_to', 553, '5.7.1 <shop@example.jp>: Sender address rejected: not owned by user alerts@example.net', 'sender_not_allowed', True),
    (None, 'rcpt_to', 550, '5.1.1 <nobody@example.org>: Recipient address rejected: User unknown in virtual mailbox table', 'recipient_rejected', True),
    (None, 'rcpt_to', 450, '4.2.0 <a@example.org>: Recipient address rejected: Greylisted, see http://postgrey.schweikert.ch/help/example.org.html', 'temporary_failure', False),
    (None, 'after_data', 552, '5.3.4 Message size exceeds fixed limit', 'message_too_large', True),
    (None, 'auth', 503, '5.5.1 Error: authentication not enabled', 'auth_method_disabled', True),
    (None, 'auth', 538, '5.7.11 Encryption required for requested authentication mechanism', 'tls_required', True),
    (None, 'auth', 454, '4.7.0 Temporary authentication failure: Connection refused', 'temporary_failure', False),
    (None, 'rcpt_to', 452, '4.5.3 Error: too many recipients', 'rate_limited', False),
    (None, 'rcpt_to', 550, '5.7.1 Service unavailable; Client host [203.0.113.4] blocked using zen.spamhaus.org; https://www.spamhaus.org/query/ip/203.0.113.4', 'message_rejected_policy', True),
    (None, 'auth', 535, 'Incorrect authentication data', 'auth_failed', True),
    (None, 'rcpt_to', 550, 'relay not permitted', 'sender_not_allowed', True),
    (None, 'after_data', 550, 'Domain example.jp has exceeded the max emails per hour (100/100 (100%)) allowed.  Message discarded.', 'quota_exceeded', False),
    (None, 'rcpt_to', 550, 'Unrouteable address', 'recipient_rejected', True),
    (None, 'data', 451, 'Temporary local problem - please try later', 'temporary_failure', False),
    (None, 'after_data', 552, 'Message size exceeds maximum permitted', 'message_too_large', True),
    (None, 'rcpt_to', 553, "sorry, that domain isn't in my list of allowed rcpthosts (#5.7.1)", 'sender_not_allowed', True),
    (None, 'rcpt_to', 550, 'sorry, no mailbox here by that name. (#5.1.1)', 'recipient_rejected', True),
    (None, 'after_data', 552, 'sorry, that message size exceeds my databytes limit (#5.3.4)', 'message_too_large', True),
    (None, 'auth', 535, 'authorization failed (#5.7.0)', 'auth_failed', True),
    (None, 'auth', 535, '', 'auth_failed', True),
    (None, 'rcpt_to', 550, 'Requested action not taken', 'recipient_rejected', True),
    (None, 'after_data', 451, 'Requested action aborted: error in processing', 'temporary_failure', False),
    (None, 'auth', 534, '5.7.9 Authentication mechanism is too weak', 'auth_method_disabled', True),
    ('gmail', 'auth', 535, '5.7.8 Username and Password not accepted. Learn more at\n5.7.8  https://support.google.com/mail/?p=BadCredentials 5b1f17b1804b1-43a1234sm987.4 - gsmtp', 'auth_failed', True),
    ('gmail', 'auth', 534, '5.7.9 Please log in with your web browser and then try again. Learn more at\n5.7.9  https://support.google.com/mail/?p=WebLoginRequired y1sm2.3 - gsmtp', 'auth_failed', True),
    (None, 'rcpt_to', 550, '5.1.1 <bob@example.com>... User unknown', 'recipient_rejected', True),
    (None, 'rcpt_to', 550, 'Mailbox does not exist', 'recipient_rejected', True),
    (None, 'rcpt_to', 551, 'User not local; please try <bob@other.example>', 'recipient_rejected', True),
    (None, 'after_data', 552, '5.2.2 <bob@example.com>: user is over quota', 'recipient_rejected', True),
    (None, 'rcpt_to', 452, '4.2.2 Mailbox full', 'recipient_rejected', False),
    (None, 'auth', 535, '5.7.3 Authentication unsuccessful', 'auth_failed', True),
    (None, 'auth', 535, 'Error: authentication failed', 'auth_failed', True),
    (None, 'auth', 535, '5.7.0 Invalid username or password', 'auth_failed', True),
    (None, 'auth', 535, '5.7.1 Username and Password not accepted', 'auth_failed', True),
    (None, 'auth', 454, '4.7.0 Too many login attempts. Please try again later.', 'rate_limited', False),
    (None, 'mail_from', 530, '5.7.0 Must issue a STARTTLS command first.', 'tls_required', True),
    (None, 'auth', 530, '5.7.0 Please issue STARTTLS command first', 'tls_required', True),
    (None, 'mail_from', 550, '5.7.60 SMTP; Client does not have permissions to send as this sender', 'sender_not_allowed', True),
    (None, 'mail_from', 553, '5.7.1 Sender address rejected: not logged in', 'sender_not_allowed', True),
    (None, 'after_data', 550, '5.7.1 Message rejected as spam by Content Filtering.', 'message_rejected_policy', True),
    (None, 'after_data', 554, '5.7.1 Your message was rejected due to a virus found in attachment', 'message_rejected_policy', True),
    (None, 'after_data', 550, 'Message rejected: high spam score', 'message_rejected_policy', True),
    (None, 'connect', 554, '5.7.1 Your IP 203.0.113.2 is listed on b.barracudacentral.org', 'message_rejected_policy', True),
    (None, 'after_data', 552, '5.3.4 Message too big for system', 'message_too_large', True),
    (None, 'mail_from', 552, '5.3.4 Message size exceeds fixed maximum message size', 'message_too_large', True),
    (None, 'after_data', 550, '5.4.5 Daily user sending quota exceeded.', 'quota_exceeded', False),
    (None, 'after_data', 451, '4.7.1 You have exceeded your hourly sending limit', 'quota_exceeded', False),
    (None, 'after_data', 421, '4.7.0 Rate limit exceeded, please slow down', 'rate_limited', False),
    (None, 'connect', 421, 'Too many connections from your IP', 'rate_limited', False),
    (None, 'after_data', 550, '5.7.1 Your account has been suspended for sending spam', 'account_suspended', True),
    (None, 'auth', 535, '5.7.8 Authentication failed: Account locked', 'account_suspended', True),
    (None, 'after_data', 550, 'Your account has been temporarily blocked for security reasons', 'account_suspended', True),
    (None, 'after_data', 554, 'Message rejected: Email address is not verified.', 'sender_unverified', True),
    (None, 'after_data', 421, '4.3.2 Service not available, closing transmission channel', 'temporary_failure', False),
    (None, 'data', 451, '4.3.0 Error: queue file write error', 'temporary_failure', False),
    (None, 'rcpt_to', 450, '4.7.1 Client host rejected: cannot find your hostname', 'temporary_failure', False),
    (None, 'after_data', 550, '5.7.1 Delivery not authorized, message refused', 'message_rejected_policy', True),
    (None, 'auth', 535, '5.7.139 Authentication unsuccessful, basic authentication is disabled.', 'auth_method_disabled', True),
    (None, 'auth', 535, '5.7.139 Authentication unsuccessful, the user credentials were incorrect.', 'auth_failed', True),
    (None, 'mail_from', 501, '5.1.7 Bad sender address syntax', 'other', True),
    (None, 'rcpt_to', 501, '5.1.3 Bad recipient address syntax', 'recipient_rejected', True),
    (None, 'auth', 504, '5.5.4 Unrecognized authentication type', 'auth_method_disabled', True),
    (None, 'ehlo', 501, '5.5.2 Syntax: HELO hostname', 'other', True),
    ('sendgrid', 'after_data', 550, 'The from address does not match a verified Sender Identity.', 'sender_unverified', True),
    (None, 'auth', 535, '5.7.8 Application-specific password required', 'app_password_required', True),
    (None, 'auth', 535, '5.7.8 Please use an app-specific password for this account', 'app_password_required', True),
    (None, 'after_data', 550, 'Sending paused for this account.', 'account_suspended', True),
    (None, "auth", 535, "5.7.8 Authentication credentials invalid", "auth_failed", True),
    (None, "rcpt_to", 550, "5.1.1 <x@y.jp>: Recipient address rejected: undeliverable address: host mx.y.jp said: 550 no such user", "recipient_rejected", True),
    (None, "after_data", 554, "5.7.1 Message rejected: spam detected (score 12.3)", "message_rejected_policy", True),
    (None, "mail_from", 550, "5.7.1 Sender domain not allowed", "sender_not_allowed", True),
    (None, "after_data", 421, "4.4.2 Connection dropped due to timeout", "temporary_failure", False),
    (None, "after_data", 550, "5.7.1 Rejected: You have exceeded your daily sending limit", "quota_exceeded", False),
    (None, "after_data", 550, "5.7.1 Message rejected: this sender is not authorized to send from domain example.com", "sender_not_allowed", True),
    (None, "connect", 421, "4.7.0 Too many concurrent SMTP connections from this IP address; please try again later.", "rate_limited", False),
    (None, "auth", 535, "5.7.3 Authentication unsuccessful, the user account is disabled.", "account_suspended", True),
    (None, "rcpt_to", 550, "5.4.1 Recipient address rejected: Access denied. AS(201806281)", "recipient_rejected", True),
    (None, "after_data", 552, "5.2.2 Quota exceeded (mailbox for user is full)", "recipient_rejected", True),
    (None, "mail_from", 553, "5.7.1 Sender address <shop@example.jp> is not allowed for authenticated user alerts@example.net", "sender_not_allowed", True),
    (None, "after_data", 550, "5.7.350 Remote server returned message detected as spam -> 554 5.7.1 Service unavailable", "message_rejected_policy", True),
]

# Cases that can only be read with the provider known (Yahoo's "Mailbox unavailable" means the From address).
_NEEDS_PROVIDER = {"Request failed; Mailbox unavailable"}


@pytest.mark.parametrize(
    ("provider", "stage", "code", "text", "category", "permanent"),
    [pytest.param(*row, id=f"{i:03d}-{row[0] or 'any'}-{row[2]}-{row[4]}") for i, row in enumerate(HELD_OUT)],
)
def test_held_out(provider: str | None, stage: str, code: int, text: str, category: str, permanent: bool) -> None:
    reply = Reply.from_lines(code, text.split("\n"))
    d = diagnose(reply=reply, stage=stage, provider=provider)
    assert (d.category, d.permanent) == (category, permanent)
    if text not in _NEEDS_PROVIDER:
        d2 = diagnose(reply=reply, stage=stage)
        assert (d2.category, d2.permanent) == (category, permanent), "without the provider hint"
    assert d.remedy.en and d.remedy.ja and d.summary.en and d.summary.ja


def test_held_out_is_large_and_not_in_the_sample() -> None:
    assert len(HELD_OUT) >= 40
    sample_texts = {re.sub(r"\W+", "", e["text"]).lower() for e in _SAMPLE}
    for row in HELD_OUT:
        assert re.sub(r"\W+", "", row[3]).lower() not in sample_texts, row[3]


def test_robust_to_line_breaks_extra_spaces_and_case() -> None:
    variants = [
        "Daily user sending limit exceeded.",
        "DAILY   USER SENDING\nLIMIT    EXCEEDED",
        "550-5.4.5 Daily user sending\n550-5.4.5 limit exceeded. For more information",
    ]
    for text in variants:
        d = diagnose(reply=Reply(550, text, None), stage="after_data")
        assert d.category == Category.QUOTA_EXCEEDED and not d.permanent, text


def test_code_without_enhanced_code_and_without_text() -> None:
    assert diagnose(reply=Reply(535, ""), stage="auth").category == Category.AUTH_FAILED
    assert diagnose(reply=Reply(535, "", None), stage=None).category == Category.AUTH_FAILED
    assert diagnose(reply=Reply(552, "", None), stage="data").category == Category.MESSAGE_TOO_LARGE
    assert diagnose(reply=Reply(538, "", None), stage="auth").category == Category.TLS_REQUIRED


@pytest.mark.parametrize(
    ("code", "stage", "category", "permanent"),
    [
        (421, "connect", Category.TEMPORARY_FAILURE, False),
        (450, "rcpt_to", Category.TEMPORARY_FAILURE, False),
        (451, "data", Category.TEMPORARY_FAILURE, False),
        (550, "rcpt_to", Category.RECIPIENT_REJECTED, True),
        (554, "after_data", Category.MESSAGE_REJECTED_POLICY, True),
        (554, "data", Category.MESSAGE_REJECTED_POLICY, True),
        (554, "auth", Category.AUTH_FAILED, True),
        (550, "mail_from", Category.SENDER_NOT_ALLOWED, True),
        (554, "ehlo", Category.OTHER, True),
        (554, None, Category.OTHER, True),
    ],
)
def test_fallback_by_code_class(code: int, stage: str | None, category: Category, permanent: bool) -> None:
    d = diagnose(reply=Reply(code, "Requested action not taken: zzz"), stage=stage)
    assert (d.category, d.permanent) == (category, permanent)


def test_quota_and_rate_are_never_permanent_and_say_when_to_retry() -> None:
    gmail = diagnose(reply=Reply(550, "Daily user sending limit exceeded.", "5.4.5"), stage="after_data", provider="gmail")
    assert gmail.category == Category.QUOTA_EXCEEDED and not gmail.permanent
    assert gmail.retry_after_seconds == 24 * 3600
    hourly = diagnose(reply=Reply(550, "Domain x has exceeded the max emails per hour (100/100)"), stage="after_data")
    assert hourly.retry_after_seconds == 3600
    rate = diagnose(reply=Reply(454, "Throttling failure: Maximum sending rate exceeded."), stage="after_data")
    assert rate.category == Category.RATE_LIMITED and not rate.permanent and rate.retry_after_seconds == 60
    assert diagnose(reply=Reply(535, "bad"), stage="auth").retry_after_seconds is None


def test_rule_table_is_well_formed() -> None:
    names = [r.name for r in RULES]
    assert len(names) == len(set(names))
    for rule in RULES:
        assert rule.phrases is not None or rule.enhanced is not None or rule.codes, rule.name


# --------------------------------------------------------------------------------------------------------------
# Failures without a reply
# --------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "kwargs", "category", "permanent"),
    [
        (ErrorKind.DNS, {"host": "smtp.gmial.com", "port": 587}, Category.CONNECTION_FAILED, False),
        (ErrorKind.REFUSED, {"host": "mail.example.com", "port": 2525}, Category.CONNECTION_FAILED, False),
        (ErrorKind.TIMEOUT, {"host": "mail.example.com", "port": 587}, Category.CONNECTION_FAILED, False),
        (ErrorKind.DROPPED, {"host": "mail.example.com", "port": 587, "security": "starttls"}, Category.CONNECTION_FAILED, False),
        (ErrorKind.PRIVATE_ADDRESS, {"host": "10.0.0.5", "port": 25}, Category.CONNECTION_FAILED, True),
        (ErrorKind.TLS_WRONG_VERSION, {"port": 587, "security": "ssl"}, Category.TLS_MISMATCH, True),
        (ErrorKind.GREETING_TIMEOUT, {"port": 465, "security": "starttls"}, Category.TLS_MISMATCH, True),
        (ErrorKind.GREETING_TIMEOUT, {"port": 465, "security": "none"}, Category.TLS_MISMATCH, True),
        (ErrorKind.GREETING_TIMEOUT, {"tls_hint": "implicit_tls_port"}, Category.TLS_MISMATCH, True),
        (ErrorKind.GREETING_TIMEOUT, {"port": 587, "security": "starttls"}, Category.CONNECTION_FAILED, False),
        (ErrorKind.GREETING_TIMEOUT, {"port": 465, "security": "ssl"}, Category.CONNECTION_FAILED, False),
        (ErrorKind.TLS_CERTIFICATE, {"host": "mail.myshop.jp", "provider": "gmail"}, Category.TLS_MISMATCH, True),
        (ErrorKind.TLS_HANDSHAKE, {"port": 465, "security": "ssl"}, Category.TLS_MISMATCH, True),
        (ErrorKind.STARTTLS_UNSUPPORTED, {"port": 25, "security": "starttls"}, Category.TLS_MISMATCH, True),
        (ErrorKind.AUTH_UNSUPPORTED, {"port": 587, "security": "none", "ehlo": ["SIZE 1000", "STARTTLS"]}, Category.TLS_REQUIRED, True),
        (ErrorKind.AUTH_UNSUPPORTED, {"port": 25, "security": "starttls"}, Category.AUTH_METHOD_DISABLED, True),
        (ErrorKind.PROTOCOL, {"host": "imap.example.com", "port": 993, "security": "ssl"}, Category.CONNECTION_FAILED, True),
    ],
)
def test_connection_level(error: str, kwargs: dict[str, Any], category: Category, permanent: bool) -> None:
    stage = {"dns_failed": "resolve", "tls_wrong_version": "tls", "tls_certificate": "tls", "tls_handshake_failed": "tls"}.get(
        error, "connect"
    )
    d = diagnose(reply=None, stage=stage, error=error, **kwargs)
    assert (d.category, d.permanent) == (category, permanent)
    assert d.remedy.en and d.remedy.ja and d.summary.en and d.summary.ja
    assert "{" not in d.remedy.en + d.remedy.ja


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("[SSL: WRONG_VERSION_NUMBER] wrong version number (_ssl.c:1000)", ErrorKind.TLS_WRONG_VERSION),
        ("[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: Hostname mismatch", ErrorKind.TLS_CERTIFICATE),
        ("Connection unexpectedly closed: timed out", ErrorKind.GREETING_TIMEOUT),
        ("Greeting never received", ErrorKind.GREETING_TIMEOUT),
        ("[Errno -2] Name or service not known", ErrorKind.DNS),
        ("getaddrinfo ENOTFOUND smtp.example.com", ErrorKind.DNS),
        ("[Errno 111] Connection refused", ErrorKind.REFUSED),
        ("connect ETIMEDOUT 203.0.113.1:587", ErrorKind.TIMEOUT),
        ("[Errno 104] Connection reset by peer", ErrorKind.DROPPED),
        ("STARTTLS extension not supported by server.", ErrorKind.STARTTLS_UNSUPPORTED),
        ("SMTP AUTH extension not supported by server.", ErrorKind.AUTH_UNSUPPORTED),
        ("[SSL: SSLV3_ALERT_HANDSHAKE_FAILURE] sslv3 alert handshake failure", ErrorKind.TLS_HANDSHAKE),
        (ErrorKind.PRIVATE_ADDRESS, ErrorKind.PRIVATE_ADDRESS),
        ("something odd", ErrorKind.PROTOCOL),
    ],
)
def test_error_kind_from_client_messages(text: str, kind: str) -> None:
    assert error_kind_from_text(text) == kind


def test_every_error_kind_is_diagnosed() -> None:
    for kind in ErrorKind.ALL:
        d = diagnose(reply=None, stage="connect", error=kind, host="smtp.example.com", port=587, security="starttls")
        assert d.category in (Category.CONNECTION_FAILED, Category.TLS_MISMATCH, Category.TLS_REQUIRED,
                              Category.AUTH_METHOD_DISABLED), kind
        assert d.remedy.en and d.remedy.ja


# --------------------------------------------------------------------------------------------------------------
# Port / security mismatches
# --------------------------------------------------------------------------------------------------------------


def test_ssl_on_587_suggests_starttls() -> None:
    d = diagnose(reply=None, stage="tls", error=ErrorKind.TLS_WRONG_VERSION, host="smtp.gmail.com", port=587, security="ssl")
    assert d.category == Category.TLS_MISMATCH and d.permanent
    assert d.suggested is not None
    assert (d.suggested["port"], d.suggested["security"]) == (587, "starttls")
    assert d.suggested["alternative"] == {"port": 465, "security": "ssl"}
    assert "587" in d.remedy.en and "STARTTLS" in d.remedy.ja


@pytest.mark.parametrize("security", ["starttls", "none"])
def test_465_without_ssl_suggests_ssl(security: str) -> None:
    d = diagnose(reply=None, stage="connect", error=ErrorKind.GREETING_TIMEOUT, host="smtp.gmail.com", port=465, security=security)
    assert d.category == Category.TLS_MISMATCH
    assert d.suggested == {"port": 465, "security": "ssl"}
    assert "465" in d.remedy.en and "SSL" in d.remedy.ja


def test_plain_text_on_465_dropped_is_a_mismatch() -> None:
    d = diagnose(reply=None, stage="connect", error=ErrorKind.DROPPED, port=465, security="none")
    assert d.category == Category.TLS_MISMATCH and d.suggested == {"port": 465, "security": "ssl"}


def test_no_tls_on_587_gets_tls_required_with_starttls() -> None:
    d = diagnose(reply=Reply(530, "Must issue a STARTTLS command first.", "5.7.0"), stage="mail_from",
                 host="smtp.gmail.com", port=587, security="none")
    assert d.category == Category.TLS_REQUIRED and d.permanent
    assert d.suggested == {"port": 587, "security": "starttls"}
    assert d.provider == "gmail"


def test_starttls_unsupported_on_25_suggests_none_or_465() -> None:
    d = diagnose(reply=None, stage="tls", error=ErrorKind.STARTTLS_UNSUPPORTED, host="relay.internal.example", port=25,
                 security="starttls")
    assert d.suggested == {"port": 25, "security": "none", "alternative": {"port": 465, "security": "ssl"}}
    d2 = diagnose(reply=None, stage="tls", error=ErrorKind.STARTTLS_UNSUPPORTED, port=587, security="starttls")
    assert d2.suggested == {"port": 465, "security": "ssl"}


def test_certificate_mismatch_suggests_the_providers_host() -> None:
    d = diagnose(reply=None, stage="tls", error=ErrorKind.TLS_CERTIFICATE, provider="microsoft365", host="mail.contoso.com", port=587)
    assert d.suggested == {"host": "smtp.office365.com"}
    assert "smtp.office365.com" in d.remedy.en and "smtp.office365.com" in d.remedy.ja


def test_port_25_timeout_suggests_587() -> None:
    d = diagnose(reply=None, stage="connect", error=ErrorKind.TIMEOUT, host="smtp.example.com", port=25, security="starttls")
    assert d.category == Category.CONNECTION_FAILED and not d.permanent
    assert d.suggested == {"port": 587, "security": "starttls"}


def test_dns_typo_suggests_preset_host() -> None:
    d = diagnose(reply=None, stage="resolve", error=ErrorKind.DNS, provider="gmail", host="smtp.gmial.com", port=465)
    assert d.suggested == {"host": "smtp.gmail.com"}
    assert "smtp.gmial.com" in d.remedy.en and "smtp.gmail.com" in d.remedy.ja


@pytest.mark.parametrize(
    ("port", "security", "expected"),
    [
        (465, "starttls", {"port": 465, "security": "ssl"}),
        (465, "none", {"port": 465, "security": "ssl"}),
        (587, "ssl", {"port": 587, "security": "starttls", "alternative": {"port": 465, "security": "ssl"}}),
        (25, "ssl", {"port": 25, "security": "starttls", "alternative": {"port": 465, "security": "ssl"}}),
        (465, "ssl", None),
        (587, "starttls", None),
        (25, "none", None),
    ],
)
def test_suggest_security(port: int, security: str, expected: dict[str, object] | None) -> None:
    assert suggest_security(port, security) == expected


# --------------------------------------------------------------------------------------------------------------
# Provider detection
# --------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"host": "smtp.gmail.com"}, "gmail"),
        ({"greeting": "smtp.gmail.com ESMTP a640c23a62f3a-a9a6sm1.2 - gsmtp"}, "gmail"),
        ({"text": "Daily user sending limit exceeded. d2e1a72fcca58-76e7d551493sm9728466b3a.112 - gsmtp"}, "gmail"),
        ({"host": "mx.google.com"}, "gmail"),
        ({"host": "smtp-relay.gmail.com"}, "google_workspace"),
        ({"host": "smtp.office365.com"}, "microsoft365"),
        ({"host": "outlook.office365.com"}, "microsoft365"),
        ({"host": "contoso-com.mail.protection.outlook.com"}, "microsoft365"),
        ({"greeting": "mail.contoso.local Microsoft ESMTP MAIL Service ready at Mon, 1 Jan 2024"}, "microsoft365"),
        ({"text": "5.7.3 Authentication unsuccessful [SN4PR0601CA0002.namprd06.prod.outlook.com]"}, "microsoft365"),
        ({"host": "smtp-mail.outlook.com"}, "outlook_com"),
        ({"host": "email-smtp.eu-west-1.amazonaws.com"}, "amazon_ses"),
        ({"text": "535 Account not subscribed to SES"}, "amazon_ses"),
        ({"host": "smtp.sendgrid.net"}, "sendgrid"),
        ({"ehlo": ["smtp.sendgrid.net", "8BITMIME", "AUTH PLAIN LOGIN"]}, "sendgrid"),
        ({"host": "smtp.eu.mailgun.org"}, "mailgun"),
        ({"host": "smtp-relay.sendinblue.com"}, "brevo"),
        ({"host": "smtp-relay.brevo.com"}, "brevo"),
        ({"host": "smtppro.zoho.eu"}, "zoho"),
        ({"host": "smtp.mail.yahoo.com"}, "yahoo"),
        ({"text": "5.7.0 (#MBR1212) Incorrect username or password."}, "yahoo"),
        ({"host": "smtp.mail.me.com"}, "icloud"),
        ({"host": "mail.example.com", "greeting": "mail.example.com ESMTP Postfix (Debian/GNU)"}, None),
        ({}, None),
    ],
)
def test_detect_provider(kwargs: dict[str, Any], expected: str | None) -> None:
    assert detect_provider(**kwargs) == expected


def test_preset_argument_wins_and_aliases_are_understood() -> None:
    r = Reply(535, "Authentication failed", "5.7.8")
    assert diagnose(reply=r, stage="auth", provider="zoho").provider == "zoho"
    assert diagnose(reply=r, stage="auth", provider="amazon-ses").provider == "amazon_ses"
    assert diagnose(reply=r, stage="auth", provider="custom", host="smtp.gmail.com").provider == "gmail"
    d = diagnose(reply=r, stage="auth", provider="custom", host="mail.example.com")
    assert d.provider is None and d.provider_name is None


# --------------------------------------------------------------------------------------------------------------
# Session ids
# --------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "Daily user sending limit exceeded. For more information on Gmail sending limits go to "
            "https://support.google.com/a/answer/166852 d2e1a72fcca58-76e7d551493sm9728466b3a.112 - gsmtp",
            "Daily user sending limit exceeded. For more information on Gmail sending limits go to "
            "https://support.google.com/a/answer/166852",
        ),
        ("Must issue a STARTTLS command first. g4sm20621052ybh.7", "Must issue a STARTTLS command first."),
        (
            "Authentication unsuccessful, basic authentication is disabled. "
            "[PH7P220CA0132.NAMP220.PROD.OUTLOOK.COM 2024-11-11T21:51:32.927Z 08DD021D9EEB05BC]",
            "Authentication unsuccessful, basic authentication is disabled.",
        ),
        (
            "STOREDRV.ClientSubmit; sender thread limit exceeded [Hostname=DM5SPR00MB2471.namprd08.prod.outlook.com]",
            "STOREDRV.ClientSubmit; sender thread limit exceeded",
        ),
        ("Ok: queued as 4XyZ1b2C3dz9", "Ok: queued as"),
        ("Ok 0100018f2c3d4e5f-1a2b3c4d-5e6f-7a8b-9c0d-1e2f3a4b5c6d-000000", "Ok"),
        ("Rejected, id=3c2d0f9a-2b1c-4d5e-8f90-123456789abc", "Rejected, id"),
        ("Message accepted 2024-03-20T10:27:56.998Z", "Message accepted"),
    ],
)
def test_strip_session_ids(text: str, expected: str) -> None:
    assert strip_session_ids(text) == expected


def test_strip_session_ids_keeps_meaningful_parts() -> None:
    text = "5.7.1 [203.0.113.7] The IP you're using to send mail is not authorized (#MBR1212) AS(7230) https://support.google.com/mail/?p=NotAuthorizedError"
    assert strip_session_ids(text) == text


# --------------------------------------------------------------------------------------------------------------
# Remedies
# --------------------------------------------------------------------------------------------------------------

_PROVIDERS = [pid for pid in PRESETS if pid != "custom"]


@pytest.mark.parametrize("category", list(Category))
@pytest.mark.parametrize("provider", [*_PROVIDERS, None])
def test_category_remedy_in_both_languages_naming_the_provider(category: Category, provider: str | None) -> None:
    r = category_remedy(category, provider)
    assert isinstance(r, Remedy)
    assert len(r.en) > 40 and len(r.ja) > 20
    assert "{" not in r.en + r.ja
    assert re.search(r"[ぁ-んァ-ン]", r.ja), "Japanese text"
    assert r.ja.rstrip().endswith(("。", "）", ")")), r.ja
    reply_driven = {Category.RECIPIENT_REJECTED, Category.MESSAGE_REJECTED_POLICY, Category.CONNECTION_FAILED,
                    Category.TLS_MISMATCH}
    if category not in reply_driven:
        name = PRESETS[provider].name if provider else None
        if name:
            short = name.split()[0]  # "Zoho Mail" may be said "Zoho"
            assert short in r.en and short in r.ja, (category, provider)
        else:
            assert "your mail provider" in r.en.lower() or "server" in r.en.lower()


def test_generic_wording_without_provider() -> None:
    d = diagnose(reply=Reply(535, "5.7.8 Error: authentication failed"), stage="auth", host="mail.example.com")
    assert d.provider is None
    assert "Your mail provider" in d.summary.en and "ご利用のメールサービス" in d.summary.ja
    assert "ご利用のメールサービス が" not in d.summary.ja


def test_gmail_auth_failure_carries_the_help_article_note() -> None:
    d = diagnose(reply=Reply(535, "Username and Password not accepted. Learn more at https://support.google.com/mail/?p=BadCredentials", "5.7.8"),
                 stage="auth", host="smtp.gmail.com")
    assert d.category == Category.AUTH_FAILED and d.provider == "gmail" and d.provider_name == "Gmail"
    assert "password was changed" in d.remedy.en and "myaccount.google.com/apppasswords" in d.remedy.en
    assert "2-Step Verification" in d.remedy.en
    assert "パスワードを変更した" in d.remedy.ja and "アプリ パスワード" in d.remedy.ja and "2 段階認証プロセス" in d.remedy.ja
    assert d.summary.en == "Gmail rejected the username or password"
    assert d.summary.ja.startswith("Gmail が")


def test_gmail_app_password_and_web_login() -> None:
    d = diagnose(reply=Reply(534, "Application-specific password required. https://support.google.com/mail/?p=InvalidSecondFactor x1sm2.3 - gsmtp", "5.7.9"), stage="auth")
    assert d.category == Category.APP_PASSWORD_REQUIRED and d.provider == "gmail"
    assert "myaccount.google.com/apppasswords" in d.remedy.en and "アプリ パスワード" in d.remedy.ja
    w = diagnose(reply=Reply(534, "<https://accounts.google.com/signin/continue?x> Please log in via your web browser and then try again.", "5.7.14"), stage="auth", provider="gmail")
    assert w.category == Category.AUTH_FAILED and w.permanent
    assert "accounts.google.com" in w.remedy.en and "accounts.google.com" in w.remedy.ja


def test_microsoft_smtp_auth_disabled_gives_admin_center_steps() -> None:
    d = diagnose(reply=Reply(535, "Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant. Visit https://aka.ms/smtp_auth_disabled", "5.7.139"),
                 stage="auth", host="smtp.office365.com")
    assert d.category == Category.AUTH_METHOD_DISABLED and d.provider == "microsoft365"
    assert d.provider_name == "Microsoft 365"
    for part in ("admin.microsoft.com", "Active users", "Manage email apps", "Authenticated SMTP"):
        assert part in d.remedy.en
    for part in ("Microsoft 365 管理センター", "認証済み SMTP", "メール アプリの管理"):
        assert part in d.remedy.ja


def test_microsoft_send_as_remedy() -> None:
    d = diagnose(reply=Reply(550, "SMTP; Client does not have permissions to send as this sender", "5.7.60"), stage="after_data",
                 provider="microsoft365")
    assert d.category == Category.SENDER_NOT_ALLOWED
    assert "Send As" in d.remedy.en and "Exchange" in d.remedy.ja


@pytest.mark.parametrize(
    ("provider", "reply", "stage", "needle"),
    [
        ("amazon_ses", Reply(535, "Authentication Credentials Invalid"), "auth", "console.aws.amazon.com/ses"),
        ("amazon_ses", Reply(554, "Message rejected: Email address is not verified."), "after_data", "console.aws.amazon.com/ses"),
        ("sendgrid", Reply(535, "Authentication failed: Bad username / password"), "auth", "apikey"),
        ("mailgun", Reply(535, "Mailgun is not loving your login or password", "5.7.0"), "auth", "SMTP credentials"),
        ("brevo", Reply(535, "Authentication failed", "5.7.8"), "auth", "SMTP key"),
        ("zoho", Reply(550, "Unusual sending activity detected. To unblock click here", "5.4.6"), "after_data", "UnblockMe"),
        ("yahoo", Reply(535, "(#MBR1212) Incorrect username or password.", "5.7.0"), "auth", "app password"),
        ("icloud", Reply(535, "Authentication failed", "5.7.8"), "auth", "account.apple.com"),
    ],
)
def test_provider_specific_remedies(provider: str, reply: Reply, stage: str, needle: str) -> None:
    d = diagnose(reply=reply, stage=stage, provider=provider)
    assert needle in d.remedy.en
    assert d.provider_name and d.provider_name.split()[0] in d.remedy.en and d.provider_name.split()[0] in d.remedy.ja


def test_diagnosis_is_json_ready() -> None:
    d = diagnose(reply=Reply(550, "Daily user sending limit exceeded.", "5.4.5"), stage="after_data", provider="gmail")
    data = json.loads(json.dumps(d.as_dict()))
    assert data["category"] == "quota_exceeded" and data["remedy"]["ja"] and data["retry_after_seconds"] == 86400


def test_category_values() -> None:
    assert [c.value for c in Category] == [
        "auth_failed", "app_password_required", "auth_method_disabled", "tls_required", "tls_mismatch",
        "sender_not_allowed", "sender_unverified", "quota_exceeded", "rate_limited", "temporary_failure",
        "recipient_rejected", "message_rejected_policy", "message_too_large", "account_suspended",
        "connection_failed", "other",
    ]
    assert Category.AUTH_FAILED == "auth_failed"


# --------------------------------------------------------------------------------------------------------------
# Gmail rewrites From
# --------------------------------------------------------------------------------------------------------------


def test_gmail_from_warning() -> None:
    w = gmail_from_warning(provider="gmail", username="shop.owner@gmail.com", from_email="info@myshop.jp")
    assert w is not None
    assert "info@myshop.jp" in w.en and "Send mail as" in w.en
    assert "info@myshop.jp" in w.ja and "アカウントとインポート" in w.ja
    assert gmail_from_warning(provider="google_workspace", username="a@corp.example", from_email="sales@corp.example")
    # Same address (case-insensitive), or another provider: no warning.
    assert gmail_from_warning(provider="gmail", username="Shop.Owner@gmail.com", from_email="shop.owner@GMAIL.com") is None
    assert gmail_from_warning(provider="gmail", username="shopowner@gmail.com", from_email="shop.owner+news@gmail.com") is None
    assert gmail_from_warning(provider="microsoft365", username="a@x.com", from_email="b@x.com") is None
    assert gmail_from_warning(provider="gmail", username=None, from_email="b@x.com") is None
    assert gmail_from_warning(provider="gmail", username="a@gmail.com", from_email=None) is None
