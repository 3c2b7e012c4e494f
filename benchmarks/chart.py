"""docs/performance.png: msgs/s vs SMTP connections for Letterhead's transport and the peers.

    .venv/bin/pip install matplotlib   # for this script only; not a project dependency
    .venv/bin/python benchmarks/peers/run_peers.py --json benchmarks/results/peers.json
    .venv/bin/python benchmarks/chart.py benchmarks/results/peers.json docs/performance.png
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def main() -> None:
    src, dest = Path(sys.argv[1]), Path(sys.argv[2])
    data = json.loads(src.read_text())
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=120)
    styles = {"letterhead": ("#2563eb", "o"), "nodemailer pool": ("#16a34a", "s"),
              "postfix smtp-source": ("#6b7280", "^")}
    # Labels of series that end up close together would overlap: each series writes its own on its own side.
    offsets = [(-20, -14), (0, -13), (0, 7)]
    for n, (name, by_c) in enumerate(data["medians"].items()):
        xs = sorted(int(c) for c in by_c)
        ys = [by_c[str(c)] if str(c) in by_c else by_c[c] for c in xs]
        color, marker = styles.get(name, (None, "x"))
        ax.plot(xs, ys, marker=marker, color=color, label=name, linewidth=2)
        for x, y in zip(xs, ys, strict=True):
            ax.annotate(f"{y:,.0f}", (x, y), textcoords="offset points", xytext=offsets[n % 3], ha="center", fontsize=8,
                        color=color)
    ax.set_xscale("log", base=2)
    ax.set_xticks([int(c) for c in next(iter(data["medians"].values()))])
    ax.get_xaxis().set_major_formatter(matplotlib.ticker.ScalarFormatter())
    ax.set_xlabel("SMTP connections")
    ax.set_ylabel("messages per second")
    ax.set_ylim(0, max(max(by_c.values()) for by_c in data["medians"].values()) * 1.12)
    ax.grid(True, alpha=0.3)
    ax.set_title(f"~4 KB ready messages to Postfix smtp-sink, loopback, {data['cores']} cores "
                 f"(median of {len(next(iter(next(iter(data['runs'].values())).values())))} runs)", fontsize=9)
    ax.legend()
    fig.tight_layout()
    fig.savefig(dest)
    print(f"wrote {dest}")


if __name__ == "__main__":
    main()
