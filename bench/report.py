"""Figures every benchmark prints: one JSON line per case."""

from __future__ import annotations

import json
import statistics
from typing import Any


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def line(case: str, mode: str, workflows: int, seconds: float, latencies_ms: list[float],
         messages: int | None, **extra: Any) -> dict[str, Any]:
    """Print and return the figures of one case; ``messages`` is None where it cannot be counted."""
    row = {
        "case": case,
        "mode": mode,
        "workflows": workflows,
        "seconds": round(seconds, 3),
        "workflows_per_s": round(workflows / seconds, 1) if seconds else None,
        "p50_ms": round(percentile(latencies_ms, 50), 2),
        "p99_ms": round(percentile(latencies_ms, 99), 2),
        "mean_ms": round(statistics.fmean(latencies_ms), 2) if latencies_ms else None,
        "messages_per_workflow": round(messages / workflows, 2) if workflows and messages is not None else None,
    }
    row.update(extra)
    print(json.dumps(row), flush=True)
    return row
