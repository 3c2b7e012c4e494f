"""compose() output is SMTP-canonical, which lets the client skip dot-stuffing (Envelope.canonical)."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from email import message_from_bytes, policy

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


def test_compose_random_inputs_stay_canonical() -> None:
    rng = random.Random(7)
    alphabet = ".\r\n .aあ=?-_:"
    for _ in range(300):
        def pick(n: int) -> str:
            return "".join(rng.choice(alphabet) for _ in range(rng.randrange(n)))

        data = compose(
            from_addr="shop@acme.example", from_name=pick(40) or None, to=["a@example.com"], subject=pick(200),
            html=pick(300) or None, text=pick(300) or None, message_id="<2@acme.example>",
            date=datetime(2026, 11, 28, tzinfo=UTC),
        )
        assert _canonical(data)


def test_base64_parts_match_the_stdlib_line_for_line() -> None:
    import base64

    from letterhead.notifications.compose import _b64_body

    rng = random.Random(3)
    lengths = [*range(0, 400), 9_727, 9_728, 9_729, 57 * 128, 57 * 128 + 1, 57 * 256, 200_000]
    for n in lengths:
        text = "".join(rng.choice("aあ<>\n .") for _ in range(n))
        expected = base64.encodebytes(text.encode()).replace(b"\n", b"\r\n")
        assert _b64_body(text) == expected, n
