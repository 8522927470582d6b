"""The comparison as a picture: throughput and latency per system, one column per case.

    python -m bench.peers.plot SUMMARY_JSON OUT_PNG       (needs matplotlib: bench/peers/requirements.txt)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from bench.peers.harness import PROJECT, SYSTEMS


def plot(report: dict[str, Any], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cases = list(report["cases"])
    fig, axes = plt.subplots(2, len(cases), figsize=(7 * len(cases), 7), squeeze=False)
    for col, case in enumerate(cases):
        rows = [r for r in report["summary"] if r["case"] == case]
        names = [r["system"] for r in rows]
        colors = ["tab:blue" if SYSTEMS[n].runtime == PROJECT else "tab:gray" for n in names]
        top, bottom = axes[0][col], axes[1][col]
        top.bar(names, [r["workflows_per_s"] for r in rows], color=colors, yerr=_spread(rows), capsize=4)
        top.set_xticks(range(len(rows)), [f"{_name(r)}\n{r['workflows_per_s']:.0f}/s" for r in rows])
        top.set_yscale("log")
        top.set_title(f"{case}: {rows[0]['workflows'] if rows else 0} workflows")
        top.set_ylabel("workflows/s (median, min-max; log)")
        bottom.bar(names, [r["p50_ms"] for r in rows], color=colors, label="p50")
        bottom.scatter(names, [r["p99_ms"] for r in rows], color="black", marker="_", s=400, label="p99", zorder=3)
        bottom.set_xticks(range(len(rows)), [f"{_name(r)}\np50 {r['p50_ms']:.0f} ms" for r in rows])
        bottom.set_yscale("log")
        bottom.set_ylabel("start-to-result latency, ms (log)")
        bottom.legend()
        for ax in (top, bottom):
            ax.tick_params(axis="x", labelsize=8)
            ax.grid(axis="y", alpha=0.3)
    machine = report["machine"]
    fig.suptitle(f"{machine['cores']} cores, concurrency {report['concurrency']}, {report['rounds']} rounds; "
                 f"load {machine['load_1m_at_start']} at start, {machine['load_1m_at_end']} at end")
    fig.tight_layout()
    fig.savefig(out, dpi=90)


def _name(row: dict[str, Any]) -> str:
    return str(row["system"]).replace("-", "\n", 1)  # two short lines fit under a bar


def _spread(rows: list[dict[str, Any]]) -> list[list[float]]:
    return [[r["workflows_per_s"] - r["workflows_per_s_min"] for r in rows],
            [r["workflows_per_s_max"] - r["workflows_per_s"] for r in rows]]


def main() -> None:
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    plot(json.loads(Path(sys.argv[1]).read_text()), Path(sys.argv[2]))


if __name__ == "__main__":
    main()
