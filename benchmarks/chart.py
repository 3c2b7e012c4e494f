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
    medians = {name: {int(c): y for c, y in by_c.items()} for name, by_c in data["medians"].items()}
    for name, by_c in medians.items():
        xs = sorted(by_c)
        color, marker = styles.get(name, (None, "x"))
        ax.plot(xs, [by_c[x] for x in xs], marker=marker, color=color, label=name, linewidth=2)
        for x in xs:
            # Labels of series close together would overlap: at each x the highest series writes above its
            # point, the lowest below it, any other below and right of it (above and left at the first x,
            # where the lowest series' line runs below and right).
            ys = sorted(other[x] for other in medians.values() if x in other)
            y = by_c[x]
            if y in (ys[0], ys[-1]):
                offset, ha = ((0, 7) if y == ys[-1] else (0, -13)), "center"
            else:
                offset, ha = ((-6, 5), "right") if x == xs[0] else ((6, -13), "left")
            ax.annotate(f"{y:,.0f}", (x, y), textcoords="offset points", xytext=offset, ha=ha, fontsize=8,
                        color=color)
    ax.set_xscale("log", base=2)
    ax.set_xlim(0.6, 52)  # room for the labels at both ends
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
