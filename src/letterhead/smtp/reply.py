"""SMTP replies as data: the one shape every part of Letterhead uses to talk about what a server said."""

from __future__ import annotations

import re
from dataclasses import dataclass

# RFC 3463 enhanced status code: class.subject.detail, e.g. 5.7.8
_ENHANCED = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")


@dataclass(frozen=True, slots=True)
class Reply:
    """One (possibly multi-line) SMTP reply. ``text`` joins the lines with a space, without the codes."""

    code: int
    text: str
    enhanced: str | None = None

    @property
    def transient(self) -> bool:
        return 400 <= self.code < 500

    @property
    def permanent(self) -> bool:
        return self.code >= 500

    @classmethod
    def from_lines(cls, code: int, lines: list[str]) -> Reply:
        """Build a reply from the text of its lines (code and separator already stripped)."""
        text = lines[0].strip() if len(lines) == 1 else " ".join(line.strip() for line in lines).strip()
        enhanced = None
        # The regex only when the text can start with an enhanced code of the reply's class (every reply of a
        # delivery goes through here).
        m = _ENHANCED.match(text) if text[:1] == str(code)[:1] and text[1:2] == "." else None
        if m and m.group(1) == str(code)[0]:
            enhanced = m.group(0)
            text = text[m.end() :].strip()
            # Multi-line replies repeat the enhanced code on every line (Gmail does): drop the repeats.
            text = text.replace(" " + enhanced + " ", " ")
        return cls(code=code, text=text, enhanced=enhanced)

    def as_dict(self) -> dict[str, object]:
        return {"code": self.code, "enhanced": self.enhanced, "text": self.text}


class ErrorKind:
    """Failures that are not an SMTP reply: the shared vocabulary of the client, the probe and the diagnosis.

    Plain string constants (stored on attempts, so their values are pinned by a test).
    """

    DNS = "dns_failed"  # the host name does not resolve
    PRIVATE_ADDRESS = "private_address"  # resolves to loopback/private/link-local and that is not allowed
    REFUSED = "connection_refused"
    TIMEOUT = "timeout"  # a step took longer than its timeout (after the greeting)
    GREETING_TIMEOUT = "greeting_timeout"  # connected, but no 220 greeting came (often: an implicit-TLS port)
    DROPPED = "connection_dropped"  # the server closed the connection / reset
    TLS_WRONG_VERSION = "tls_wrong_version"  # we spoke TLS, the server answered in plain text (587/25 with ssl)
    TLS_HANDSHAKE = "tls_handshake_failed"  # any other handshake failure
    TLS_CERTIFICATE = "tls_certificate"  # certificate did not verify (untrusted CA, wrong host name, expired)
    STARTTLS_UNSUPPORTED = "starttls_unsupported"  # security=starttls but the server does not offer STARTTLS
    AUTH_UNSUPPORTED = "auth_unsupported"  # credentials given but no AUTH mechanism we can use is offered
    PROTOCOL = "protocol_error"  # the server said something that is not SMTP

    ALL = (
        DNS,
        PRIVATE_ADDRESS,
        REFUSED,
        TIMEOUT,
        GREETING_TIMEOUT,
        DROPPED,
        TLS_WRONG_VERSION,
        TLS_HANDSHAKE,
        TLS_CERTIFICATE,
        STARTTLS_UNSUPPORTED,
        AUTH_UNSUPPORTED,
        PROTOCOL,
    )
