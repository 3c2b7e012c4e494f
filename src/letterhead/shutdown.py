"""A stop asked for while a process is still starting: SIGTERM from a supervisor, or Ctrl-C.

Until the event loop installs its own handlers (``server._install_signals``), SIGTERM's default action kills the
process on the spot: exit status -15, possibly in the middle of a migration, and a supervisor (or a test) that
stops a worker a moment after starting it sees a crash. ``catch_early`` notes the request instead; the loop's
handlers then see it and the process stops cleanly (exit 0) as soon as it is up.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType

_requested = threading.Event()


def catch_early() -> None:
    """Called first by ``letterhead worker`` and ``letterhead serve``, before their slow imports and set-up."""
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _note)


def _note(signum: int, frame: FrameType | None) -> None:
    _requested.set()


def requested() -> bool:
    """Whether a stop arrived before the event loop's handlers were installed."""
    return _requested.is_set()
