"""µs per rendered notification (subject + HTML + text), as the delivery worker renders it.

    .venv/bin/python benchmarks/render_speed.py [--all] [--loops 1000] [--repeats 9]

Renders parts of 100 with ``notification_job`` + ``templates.render_many`` as the worker does (default templates,
compiled-template cache warm) for ``order.created`` with per-recipient data (``bench.order_data``, 100 different
payloads) in ``ja`` and ``en``; with ``--all``, also every event with its example payload. Prints the fastest and
the median of ``--repeats`` timed runs: on a shared machine other work only ever adds time, so compare the minimum
of A/B runs taken close together.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Mapping
from typing import Any

from letterhead import bench
from letterhead.models import Tenant
from letterhead.notifications.events import EVENTS
from letterhead.notifications.service import notification_job
from letterhead.notifications.templates import render_many

TENANT = Tenant(id="t1", name="ACME 株式会社", locale="ja", timezone="Asia/Tokyo", plan="pro")
PLATFORM = {"name": "Letterhead"}


#: Messages rendered together, as the worker renders a part of a batch (``Worker._prepare_part``).
PART = 100


def measure(event: str, locale: str, payloads: list[Mapping[str, Any]], loops: int, repeats: int) -> list[float]:
    def render(first: int) -> None:
        render_many([
            notification_job(
                event=event,
                locale=locale,
                data=payloads[i % len(payloads)],
                tenant=TENANT,
                overrides={},
                platform=PLATFORM,
            )
            for i in range(first, first + PART)
        ])

    for i in range(0, 200, PART):  # compile, fill the caches
        render(i)
    runs = []
    for _ in range(repeats):
        started = time.perf_counter()
        for i in range(0, loops, PART):
            render(i)
        runs.append((time.perf_counter() - started) / (loops // PART * PART) * 1e6)
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--all", action="store_true", help="every event with its example payload too")
    parser.add_argument("--loops", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=9)
    args = parser.parse_args()

    cases: list[tuple[str, str, list[Mapping[str, Any]]]] = [
        (f"order.created ({locale}, bench.order_data)", locale, [bench.order_data(i) for i in range(100)])
        for locale in ("ja", "en")
    ]
    if args.all:
        cases += [
            (f"{name} ({locale})", locale, [event.example]) for name, event in EVENTS.items() for locale in ("ja", "en")
        ]
    for label, locale, payloads in cases:
        event = label.split(" ")[0]
        runs = measure(event, locale, payloads, args.loops, args.repeats)
        print(f"{label:45} min {min(runs):6.1f} µs   median {statistics.median(runs):6.1f} µs")


if __name__ == "__main__":
    main()
