"""compose() output is SMTP-canonical, which lets the client skip dot-stuffing (Envelope.canonical)."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from email import message_from_bytes, policy
from typing import Any

import pytest

from letterhead.notifications.compose import compose
from letterhead.smtp.client import _stuff

NASTY = [
    "",
    ".",
    "..leading dots\n.and a line with a dot\r\n.",
    "Subject with\r\nBcc: injected@example.com",
    "ご注文ありがとうございます。\n.発送しました",
    ". " * 400,  # long ASCII: folded by email.header
    "あ" * 300 + ".",  # long non-ASCII: several encoded words
    "line\rwith bare CR",
]


def _canonical(data: bytes) -> bool:
    crlf = data.count(b"\r\n")
    return (
        data.count(b"\n") == crlf
        and data.count(b"\r") == crlf
        and not data.startswith(b".")
        and b"\r\n." not in data
        and data.endswith(b"\r\n")
    )


@pytest.mark.parametrize("nasty", NASTY)
def test_compose_is_canonical_whatever_the_input(nasty: str) -> None:
    data = compose(
        from_addr="shop@acme.example",
        from_name=nasty or None,
        to=["a@example.com", "b@example.com"],
        subject=nasty,
        html=nasty or None,
        text=nasty,
        message_id="<1@acme.example>",
        date=datetime(2026, 11, 28, tzinfo=UTC),
        reply_to="reply@acme.example",
        extra_headers=[("X-Note", nasty)],
    )
    assert _canonical(data), data[:400]
    # The client's transparency pass would change nothing: skipping it is safe.
    assert _stuff(data) == data + b".\r\n"
    msg = message_from_bytes(data, policy=policy.default)
    # No header was injected by a line break in a value.
    assert msg["Bcc"] is None
    assert msg["To"] == "a@example.com, b@example.com"


def random_message(rng: random.Random, alphabet: str, domain: str = "acme.example", **extra: Any) -> bytes:
    """compose() of random display name, subject and bodies drawn from ``alphabet`` (``extra``: more arguments)."""

    def pick(n: int) -> str:
        return "".join(rng.choice(alphabet) for _ in range(rng.randrange(n)))

    return compose(
        from_addr=f"shop@{domain}", from_name=pick(40) or None, to=["a@example.com"], subject=pick(200),
        html=pick(300) or None, text=pick(300) or None, message_id=f"<{rng.randrange(10**9)}@{domain}>",
        date=datetime(2026, 11, 28, tzinfo=UTC), **extra,
    )


def test_compose_random_inputs_stay_canonical() -> None:
    rng = random.Random(7)
    for _ in range(300):
        assert _canonical(random_message(rng, ".\r\n .aあ=?-_:"))


def test_base64_parts_match_the_stdlib_line_for_line() -> None:
    import base64

    from letterhead.notifications.compose import _b64_body

    rng = random.Random(3)
    lengths = [*range(0, 400), 9_727, 9_728, 9_729, 57 * 128, 57 * 128 + 1, 57 * 256, 200_000]
    for n in lengths:
        text = "".join(rng.choice("aあ<>\n .") for _ in range(n))
        expected = base64.encodebytes(text.encode()).replace(b"\n", b"\r\n")
        assert _b64_body(text) == expected, n


def test_subjects_decode_to_what_was_given_and_respect_rfc_2047_limits() -> None:
    """The hand-written encoder (email.header is ~40 µs a subject) against the stdlib's own decoder."""
    import base64
    import re
    from email.header import Header, decode_header, make_header

    from letterhead.notifications.compose import encode_header_text

    rng = random.Random(11)
    alphabet = "aZ09 .,:;=?_-()<>\"'\tあ漢字ｶﾅ🎉é€—"
    samples = ["ご注文ありがとうございます（注文番号 ORD-2026-000123）", "Thank you for your order", "", "🎉" * 40]
    samples += ["".join(rng.choice(alphabet) for _ in range(rng.randrange(1, 160))) for _ in range(2000)]
    for value in samples:
        value = " ".join(value.split())  # compose() hands over one line
        encoded = encode_header_text(value)
        line = b"Subject: " + encoded
        assert b"\n" not in encoded.replace(b"\r\n ", b""), encoded  # folded only with CRLF + space
        parsed = message_from_bytes(line + b"\r\n\r\n", policy=policy.default)
        assert parsed["Subject"] == value, (value, encoded)
        assert str(make_header(decode_header(encoded.decode()))) == value
        if not value.isascii():
            for text_line in line.split(b"\r\n"):
                assert len(text_line) <= 76, text_line
            for word in re.findall(rb"=\?utf-8\?b\?([^?]*)\?=", encoded):
                assert len(word) + 12 <= 75
                base64.b64decode(word).decode("utf-8")  # whole characters in every word
        elif len(value) <= 69:
            # Short ASCII subjects are exactly what the stdlib writes.
            assert encoded.decode() == Header(value, "us-ascii", header_name="Subject").encode(linesep="\r\n")
