"""MIME composition straight to bytes.

Building an ``email.message.EmailMessage`` per message costs about a millisecond (DESIGN.md performance notes),
which alone caps a core below 1,000 messages/s. Here a message is a few byte strings joined: headers are
encoded once per distinct value (LRU caches: a notification run has one subject template and one From per
tenant), bodies are UTF-8 in base64 (always 7-bit safe, no line-length trouble for Japanese text).

Headers follow RFC 5322; non-ASCII display names and subjects become RFC 2047 encoded words via the stdlib's
``email.header`` (correct folding and Japanese handling), never hand-rolled.
"""

from __future__ import annotations

import binascii
import itertools
import os
import struct
from collections.abc import Sequence
from datetime import datetime
from email.header import Header
from email.utils import format_datetime
from functools import lru_cache

import pybase64

CRLF = b"\r\n"


def encode_header_text(value: str, header_name: str = "Subject") -> bytes:
    """An unstructured header value (Subject): ASCII as is (folded when long), else RFC 2047 encoded words.

    Every notification has its own subject (it names the order), so no cache helps here, and ``email.header``
    costs ~40 µs for a Japanese subject and ~18 µs for an ASCII one (measured: a tenth of a worker's CPU per
    message). The two common cases are written out below; anything long and ASCII still goes to the stdlib,
    which folds it at spaces. tests/unit/test_compose.py checks the output against the stdlib's decoder.
    """
    if value.isascii():
        if len(value) + len(header_name) + 2 <= _MAX_LINE:
            return value.encode()  # what Header().encode() returns for a line that needs no folding
        return Header(value, "us-ascii", header_name=header_name).encode(linesep="\r\n").encode()
    return _encoded_words(value.encode(), len(header_name) + 2)


#: RFC 5322 §2.1.1's recommended line length; RFC 2047 §2: a line with encoded words at most 76 characters.
_MAX_LINE = 78
_WORD_LINE = 76
_WORD_OVERHEAD = len("=?utf-8?b??=")


def _word_bytes(room: int) -> int:
    """How many bytes of UTF-8 fit, base64-encoded, in an encoded word within ``room`` characters."""
    return max((room - _WORD_OVERHEAD) // 4 * 3, 6)  # 6: a 4-byte character always fits


def _encoded_words(raw: bytes, first_indent: int) -> bytes:
    """``raw`` (UTF-8) as "B" encoded words (RFC 2047 §4.1), each holding whole characters (§5) and at most 75
    characters long, folded one word per line. The first line also holds the header name (``first_indent``);
    the others start with the folding space."""
    words = []
    n = len(raw)
    start, limit = 0, _word_bytes(_WORD_LINE - first_indent)
    while start < n:
        end = start + limit
        if end >= n:
            end = n
        else:
            while raw[end] & 0xC0 == 0x80:  # never cut inside a character: back to its first byte
                end -= 1
        words.append(b"=?utf-8?b?" + pybase64.b64encode(raw[start:end]) + b"?=")
        start, limit = end, _word_bytes(_WORD_LINE - 1)
    return b"\r\n ".join(words)


_SPECIALS = set('()<>[]:;@\\,."')


@lru_cache(maxsize=4096)
def encode_address(addr: str, name: str | None = None) -> bytes:
    """``Display Name <addr>``: the name quoted when it has specials, RFC 2047 encoded when not ASCII."""
    if not name:
        return addr.encode()
    if name.isascii():
        if any(c in _SPECIALS for c in name):
            escaped = name.replace("\\", "\\\\").replace('"', '\\"')
            return f'"{escaped}" <{addr}>'.encode()
        return f"{name} <{addr}>".encode()
    # header_name "From" keeps the first line short enough to fold correctly after "From: ".
    encoded = Header(name, "utf-8", header_name="From").encode(linesep="\r\n")
    return f"{encoded} <{addr}>".encode()


# RFC 2045 §6.8: base64 lines of at most 76 characters. The lines are cut by struct: one C call turns a block
# of 128 × 76 bytes into 128 line objects. Measured for 18 KB of base64: ~12 µs, against ~23 µs for a regex
# findall and ~28 µs slicing in a list comprehension (wrapping was ~10% of a worker's CPU before).
_LINE = 76
_BLOCK_ROWS = 128
_BLOCK = struct.Struct(f"{_LINE}s" * _BLOCK_ROWS)


@lru_cache(maxsize=_BLOCK_ROWS)
def _rows(n: int) -> struct.Struct:
    return struct.Struct(f"{_LINE}s" * n)


def _wrap(enc: bytes) -> bytes:
    """``enc`` cut into 76-character CRLF-terminated lines."""
    n = len(enc)
    cut = n // (_LINE * _BLOCK_ROWS) * (_LINE * _BLOCK_ROWS)
    parts: list[bytes] = list(itertools.chain.from_iterable(_BLOCK.iter_unpack(memoryview(enc)[:cut])))
    rest = (n - cut) // _LINE
    if rest:
        parts.extend(_rows(rest).unpack_from(enc, cut))
    end = cut + rest * _LINE
    if end < n:
        parts.append(enc[end:])
    parts.append(b"")
    return CRLF.join(parts)


def _b64_body(text: str) -> bytes:
    # One SIMD call (pybase64) encodes the whole body: 1 µs for 14 KB against 27 µs for binascii.b2a_base64 on
    # this machine; then the lines are cut (``_wrap``).
    return _wrap(pybase64.b64encode(text.encode())) if text else b""


@lru_cache(maxsize=64)
def _date_value(date: datetime) -> bytes:
    # The Date header has whole seconds: a worker composes hundreds of messages per second with the same one,
    # and email.utils.format_datetime costs ~3 µs (2% of a worker's CPU, measured).
    return format_datetime(date).encode()


def _one_line(value: str) -> str:
    """Header input as one line: a CR or LF here would inject headers (and break SMTP transparency)."""
    return " ".join(value.split()) if ("\r" in value or "\n" in value) else value


# "=_" cannot occur in base64 (or quoted-printable) content (RFC 2045 §5.1 suggests exactly this), and every part
# here is base64, so a boundary only has to differ from other boundaries: a per-process random prefix and a
# counter do, without a getrandom() system call per message (measured: ~6% of a worker's CPU under load).
_BOUNDARY_PREFIX = b"=_lh_" + binascii.hexlify(os.urandom(8)) + b"_"
_boundary_seq = itertools.count()


def _boundary() -> bytes:
    return _BOUNDARY_PREFIX + b"%x" % next(_boundary_seq)


def new_message_id(local: str, domain: str) -> str:
    return f"<{local}@{domain}>"


def compose(
    *,
    from_addr: str,
    from_name: str | None,
    to: Sequence[str],
    subject: str,
    html: str | None,
    text: str | None,
    message_id: str,
    date: datetime,
    reply_to: str | None = None,
    extra_headers: Sequence[tuple[str, str]] = (),
) -> bytes:
    """The complete message as bytes, *SMTP-canonical*: CRLF line endings only and no line starting with "."
    (headers are single lines or folded with leading whitespace, every body part is base64), so the SMTP client
    can send it without the dot-stuffing scans (``Envelope.canonical``; tests/unit/test_compose.py checks it)."""
    if from_name:
        from_name = _one_line(from_name)
    head = [
        b"From: " + encode_address(_one_line(from_addr), from_name),
        b"To: " + b", ".join(_one_line(a).encode() for a in to),
        b"Subject: " + encode_header_text(_one_line(subject)),
        b"Date: " + _date_value(date.replace(microsecond=0)),
        b"Message-ID: " + _one_line(message_id).encode(),
        b"MIME-Version: 1.0",
    ]
    if reply_to:
        head.append(b"Reply-To: " + _one_line(reply_to).encode())
    for name, value in extra_headers:
        head.append(_one_line(name).encode() + b": " + _one_line(value).encode())
    part_headers = b"Content-Type: text/%s; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    if html and text:
        boundary = _boundary()
        head.append(b'Content-Type: multipart/alternative; boundary="' + boundary + b'"')
        body = b"".join(
            [
                b"--" + boundary + CRLF,
                part_headers % b"plain",
                _b64_body(text),
                b"--" + boundary + CRLF,
                part_headers % b"html",
                _b64_body(html),
                b"--" + boundary + b"--" + CRLF,
            ]
        )
    else:
        kind = b"html" if html else b"plain"
        head.append(b"Content-Type: text/" + kind + b"; charset=utf-8")
        head.append(b"Content-Transfer-Encoding: base64")
        body = _b64_body(html or text or "")
    return CRLF.join(head) + CRLF + CRLF + body
