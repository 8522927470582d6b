"""Embedded-mode throughput and latency.

    python -m bench.embedded [--concurrency 64] [--scale 1.0] [--profile]

Keeps ``concurrency`` workflows in flight (a closed loop) and measures, per workflow,
the time from ``start`` to the arrival of its result at the client. ``--profile``
prints the top functions by cumulative time (cProfile) after the figures.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import time
from typing import Any

import pulsarflow as pf
from bench import workloads
from bench.report import line


def run_case(case: str, workflows: int, concurrency: int) -> dict[str, Any]:
    tasks = workloads.CASES[case][1]
    env = pf.EmbeddedEnvironment(*workloads.ALL)
    seconds, latencies = closed_loop(env, case, workflows, concurrency)
    return line(case, "embedded", workflows, seconds, latencies, env.transport.sent,
                tasks_per_workflow=tasks, concurrency=concurrency)


def closed_loop(env: pf.EmbeddedEnvironment, case: str, workflows: int,
                concurrency: int) -> tuple[float, list[float]]:
    """Run ``workflows`` of ``case`` with ``concurrency`` in flight; the seconds taken and each latency in ms."""
    wf, tasks, _ = workloads.CASES[case]
    client = env.client()
    started: dict[str, float] = {}
    latencies: list[float] = []
    client.add_answer_listener(lambda answer: latencies.append(
        (time.perf_counter() - started.pop(answer.request_id)) * 1000))
    launched = 0
    t0 = time.perf_counter()
    while len(latencies) < workflows:
        while launched < workflows and launched - len(latencies) < concurrency:
            handle = client.start(wf, tasks)
            started[handle.request_id or ""] = time.perf_counter()
            launched += 1
        if not env.step():
            raise RuntimeError("benchmark stalled: no message ready while workflows are in flight")
    return time.perf_counter() - t0, latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--scale", type=float, default=1.0, help="multiply the number of workflows")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--cases", default="sequential-3,fanout-10")
    args = parser.parse_args()
    profiler = cProfile.Profile() if args.profile else None
    for case in args.cases.split(","):
        count = max(1, int(workloads.CASES[case][2] * args.scale))
        if profiler:
            profiler.enable()
        run_case(case, count, args.concurrency)
        if profiler:
            profiler.disable()
    if profiler:
        pstats.Stats(profiler).sort_stats("tottime").print_stats(25)


if __name__ == "__main__":
    main()
