"""The client's reply splitter: replies cut anywhere by the network come out whole and in order."""

from __future__ import annotations

import asyncio
import random

from letterhead.smtp.client import _SmtpProtocol

STREAM = (
    b"250-smtp.example.com at your service\r\n250-PIPELINING\r\n250 SIZE 35882577\r\n"
    b"250 2.1.0 Ok\r\n550-5.1.1 The email account that you tried to reach does not exist.\r\n"
    b"550 5.1.1 https://support.google.com/mail/?p=NoSuchUser\r\n354 go ahead\r\n"
    b"250 2.0.0 Ok: queued as \xe3\x81\x82 \r\n"
)


def _replies(pieces: list[bytes]) -> list[tuple[int, list[str]]]:
    proto = _SmtpProtocol(asyncio.new_event_loop())
    for piece in pieces:
        proto.data_received(piece)
    assert proto.exc is None
    return [(r.code, r.lines) for r in proto.replies]


def test_replies_survive_any_split() -> None:
    whole = _replies([STREAM])
    assert [code for code, _ in whole] == [250, 250, 550, 354, 250]
    assert whole[2][1][1].startswith("550 5.1.1 https://")
    assert whole[4][1] == ["250 2.0.0 Ok: queued as あ "]
    rng = random.Random(5)
    for _ in range(300):
        cuts = sorted(rng.sample(range(1, len(STREAM)), rng.randrange(1, 12)))
        pieces = [STREAM[a:b] for a, b in zip([0, *cuts], [*cuts, len(STREAM)], strict=True)]
        assert _replies(pieces) == whole


def test_garbage_is_a_protocol_error() -> None:
    proto = _SmtpProtocol(asyncio.new_event_loop())
    proto.data_received(b"250 ok\r\nHTTP/1.1 400 Bad Request\r\n")
    assert proto.exc is not None and "not an SMTP reply" in proto.exc.detail
    proto = _SmtpProtocol(asyncio.new_event_loop())
    proto.data_received(b"2" * 20_000)  # no line end within the limit (16 KiB)
    assert proto.exc is not None and "too long" in proto.exc.detail
