"""The closed loop the peers are driven with: ``concurrency`` clients, each starting a
workflow and awaiting its result, until ``workflows`` have finished (as bench.embedded does)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from bench.peers.harness import expected_result, parse_case
from bench.report import line

Execute = Callable[[str, int], Awaitable[Any]]  # (workload shape, tasks) -> the workflow's result


async def closed_loop(execute: Execute, case: str, workflows: int, concurrency: int) -> tuple[float, list[float]]:
    """Seconds for all workflows, and each one's start-to-result latency in ms; checks every result."""
    kind, tasks = parse_case(case)
    expected = expected_result(tasks)
    latencies: list[float] = []
    pending = iter(range(workflows))

    async def client() -> None:
        for _ in pending:
            t0 = time.perf_counter()
            result = await execute(kind, tasks)
            latencies.append((time.perf_counter() - t0) * 1000)
            if result != expected:
                raise RuntimeError(f"{case}: a workflow returned {result!r}, expected {expected!r}")

    t0 = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(min(concurrency, workflows))))
    return time.perf_counter() - t0, latencies


async def run_cases(execute: Execute, mode: str, cases: list[tuple[str, int]], concurrency: int,
                    **extra: Any) -> list[dict[str, Any]]:
    """A short warm-up (imports, connections, first workflow), then each case: one figures row each."""
    await closed_loop(execute, "sequential-1", 5, 1)
    rows = []
    for case, workflows in cases:
        seconds, latencies = await closed_loop(execute, case, workflows, concurrency)
        rows.append(line(case, mode, workflows, seconds, latencies, None,
                         tasks_per_workflow=parse_case(case)[1], concurrency=concurrency, **extra))
    return rows
