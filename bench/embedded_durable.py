"""What durability costs the embedded runtime: in memory, Redis state, Redis state and queue, in one run.

    python -m bench.embedded_durable [--redis-url redis://127.0.0.1:6379/0] [--scale 1.0] [--rounds 3]
                                     [--concurrency 64] [--cases sequential-3,sequential-1]

One JSON line per case, setup and round (as bench.embedded; the setups take turns, so a
machine busy with other work slows them alike), then one line per case with the best
throughput of each Redis setup as a ratio of the in-memory one, measured in the same run:

- ``memory``: state and queue in memory (the default without a store);
- ``redis-state``: state in Redis, queue in memory (``transport="memory"``: lost with the process);
- ``redis-durable``: state and queue in Redis (the default with a Redis store: survives a kill).
"""

from __future__ import annotations

import argparse
import json
import uuid
from typing import Any

import pulsarflow as pf
from bench import workloads
from bench.embedded import closed_loop
from bench.report import line

SETUPS = ("memory", "redis-state", "redis-durable")


def environment(setup: str, redis_url: str, prefix: str) -> pf.EmbeddedEnvironment:
    if setup == "memory":
        return pf.EmbeddedEnvironment(*workloads.ALL)
    from pulsarflow.storage.redis import RedisStateStore

    store = RedisStateStore.from_url(redis_url, prefix=prefix)
    return pf.EmbeddedEnvironment(*workloads.ALL, store=store,
                                  transport="memory" if setup == "redis-state" else "redis")


def run(case: str, setup: str, workflows: int, concurrency: int, redis_url: str) -> dict[str, Any]:
    prefix = f"pulsarflow-bench:{uuid.uuid4().hex[:8]}:"
    env = environment(setup, redis_url, prefix)
    try:
        seconds, latencies = closed_loop(env, case, workflows, concurrency)
        return line(case, f"embedded/{setup}", workflows, seconds, latencies, env.transport.sent,
                    tasks_per_workflow=workloads.CASES[case][1], concurrency=concurrency)
    finally:
        env.close()
        if setup != "memory":
            delete_keys(env, prefix)


def delete_keys(env: pf.EmbeddedEnvironment, prefix: str) -> None:
    from pulsarflow.transport.redis import queue_prefix

    client = env.store.client  # type: ignore[attr-defined]
    for pattern in (prefix + "*", queue_prefix(prefix) + "*"):
        for key in client.scan_iter(match=pattern, count=1000):
            client.delete(key)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply the number of workflows")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each setup, taking turns; the best counts")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--cases", default="sequential-3,sequential-1")
    args = parser.parse_args()
    for case in args.cases.split(","):
        count = max(1, int(workloads.CASES[case][2] * args.scale))
        best: dict[str, float] = {}
        for _ in range(args.rounds):
            for setup in SETUPS:
                rate = run(case, setup, count, args.concurrency, args.redis_url)["workflows_per_s"]
                best[setup] = max(best.get(setup, 0.0), rate)
        print(json.dumps({"case": case, "mode": "embedded/ratio", "rounds": args.rounds,
                          "best_workflows_per_s": best,
                          "redis-state_vs_memory": round(best["redis-state"] / best["memory"], 3),
                          "redis-durable_vs_memory": round(best["redis-durable"] / best["memory"], 3),
                          "redis-durable_vs_redis-state": round(best["redis-durable"] / best["redis-state"], 3)}),
              flush=True)

if __name__ == "__main__":
    main()
