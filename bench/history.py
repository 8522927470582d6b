"""The cost of one step by history length, embedded: live workflows (the workflow cache) against
replaying the history on every message.

    python -m bench.history [--lengths 10,100,1000] [--repeat 3]

A workflow runs N tasks one after the other (each a step: the task is dispatched, its
result comes back, the code goes on). One JSON line per (cache, length): milliseconds per
step and state bytes written per step (what the state store was given, summed over the run),
then one line per cache mode with the ratio of a step's cost at the longest history to the
shortest. Ratios compare runs of the same process, so they hold across machines.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import pulsarflow as pf
from pulsarflow.storage.memory import InMemoryStateStore


@pf.task(service="history")
def step(n: int) -> int:
    return n + 1


@pf.workflow(name="bench-history")
async def steps(ctx: pf.WorkflowContext, count: int) -> int:
    n = 0
    for _ in range(count):
        n = await ctx.task(step, n)
    return n


class CountingStore(InMemoryStateStore):
    """Counts the bytes every write hands the store."""

    written = 0

    def put(self, key: str, value: bytes, expected_version: int, finished: bool = False) -> int:
        self.written += len(value)
        return super().put(key, value, expected_version, finished=finished)


def measure(length: int, cache: int | None, repeat: int) -> dict[str, Any]:
    best, written = float("inf"), 0
    for _ in range(repeat):
        store = CountingStore()
        env = pf.EmbeddedEnvironment(steps, step, store=store, workflow_cache=cache)
        started = time.perf_counter()
        assert env.client().start(steps, length).result(timeout=600) == length
        best = min(best, time.perf_counter() - started)
        written = store.written
        env.close()
    return {"bench": "history", "cache": "live" if cache is None else "replay", "steps": length,
            "ms_per_step": round(best * 1000 / length, 4), "state_bytes_per_step": round(written / length)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", default="10,100,1000", help="history lengths, comma-separated")
    parser.add_argument("--repeat", type=int, default=3, help="runs per length; the fastest counts")
    args = parser.parse_args(argv)
    lengths = [int(n) for n in args.lengths.split(",")]
    for cache in (None, 0):
        lines = [measure(n, cache, args.repeat) for n in lengths]
        for item in lines:
            print(json.dumps(item), flush=True)
        first, last = lines[0], lines[-1]
        ratio = {"bench": "history", "cache": first["cache"], "ratio": f"{last['steps']}_vs_{first['steps']}",
                 "step_cost_ratio": round(last["ms_per_step"] / first["ms_per_step"], 2),
                 "bytes_per_step_ratio": round(last["state_bytes_per_step"] / first["state_bytes_per_step"], 2)}
        print(json.dumps(ratio), flush=True)


if __name__ == "__main__":
    main()
