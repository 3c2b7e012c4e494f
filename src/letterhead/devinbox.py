"""The embedded development inbox: an SMTP server on loopback that keeps every message it receives.

With no ``LETTERHEAD_PLATFORM_SMTP_URL`` the platform transport delivers here, so a newcomer can run every flow
(verification links included) on one machine. Mail is shown at ``/dev/inbox`` and ``/dev/inbox.json``. It is a
real SMTP server (aiosmtpd), so the whole delivery path (compose, SMTP client, attempts) runs as in production.
The port is written to ``<data dir>/devinbox.port`` so that a separate ``letterhead worker`` finds it.
"""

from __future__ import annotations

import email
import email.policy
import threading
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from letterhead.models import new_id


@dataclass(frozen=True)
class InboxMessage:
    id: str
    mail_from: str
    rcpt_to: tuple[str, ...]
    raw: bytes
    received_at: datetime

    def as_dict(self) -> dict[str, Any]:
        msg = email.message_from_bytes(self.raw, policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        text = msg.get_body(("plain",))
        html = msg.get_body(("html",))
        return {
            "id": self.id,
            "from": str(msg.get("From", self.mail_from)),
            "to": str(msg.get("To", ", ".join(self.rcpt_to))),
            "subject": str(msg.get("Subject", "")),
            "date": str(msg.get("Date", self.received_at.isoformat())),
            "reply_to": str(msg["Reply-To"]) if msg["Reply-To"] else None,
            "envelope": {"from": self.mail_from, "to": list(self.rcpt_to)},
            "text": text.get_content() if isinstance(text, EmailMessage) else None,
            "html": html.get_content() if isinstance(html, EmailMessage) else None,
            "raw": self.raw.decode("utf-8", errors="replace"),
        }


class DevInbox:
    """Keeps the newest ``capacity`` messages in memory."""

    def __init__(self, capacity: int = 1000) -> None:
        self._messages: deque[InboxMessage] = deque(maxlen=capacity)
        self._lock = threading.Lock()
        self._controller: Controller | None = None
        self.port: int | None = None

    # aiosmtpd handler hook
    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        item = InboxMessage(
            id=new_id("dev_"),
            mail_from=str(envelope.mail_from),
            rcpt_to=tuple(str(r) for r in envelope.rcpt_tos),
            raw=raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"),
            received_at=datetime.now(UTC),
        )
        with self._lock:
            self._messages.append(item)
        return "250 2.0.0 Ok: queued in the development inbox"

    def messages(self) -> list[InboxMessage]:
        """Newest first."""
        with self._lock:
            return list(reversed(self._messages))

    def get(self, message_id: str) -> InboxMessage | None:
        return next((m for m in self.messages() if m.id == message_id), None)

    def clear(self) -> None:
        with self._lock:
            self._messages.clear()

    def start(self, *, port: int = 0, port_file: Path | None = None) -> int:
        controller = Controller(
            self, hostname="127.0.0.1", port=port or _free_port(), data_size_limit=50 * 1024 * 1024
        )
        controller.start()
        self._controller = controller
        self.port = int(controller.port)
        if port_file is not None:
            port_file.parent.mkdir(parents=True, exist_ok=True)
            port_file.write_text(str(self.port))
        return self.port

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
