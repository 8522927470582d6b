"""The cost of one step by history length, embedded: milliseconds and state bytes written per step.

    python -m bench.history [--lengths 10,100,1000,10000] [--repeat 2] [--stores memory,redis]
                            [--layouts chunked,whole] [--replay-up-to 1000]
                            [--redis-url redis://127.0.0.1:6379/8]

A workflow runs N tasks one after the other (each a step: the task is dispatched, its result
comes back, the code goes on). One JSON line per (store, layout, cache, length): milliseconds
per step (fastest of ``--repeat`` runs), state bytes written per step (what the store was
given: values and history chunks, summed over the run) and state writes per step; then one
line per (store, layout, cache) with each length's ratios against the 100-step run (or the
shortest). Layouts: ``chunked`` (the history in sealed chunks beside a small head, the
default) and ``whole`` (the state rewritten whole on every step, as releases up to 0.3.0 did;
a store that keeps no parts). Caches: ``live`` (the workflow cache, the default) and
``replay`` (``workflow_cache=0``, run only up to ``--replay-up-to`` steps: its cost grows
with the square of the length). Ratios compare runs of the same process, so they hold
across machines. ``bench.history_pulsar`` measures the same on a Pulsar standalone.
"""

from __future__ import annotations

import argparse
import json
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pulsarflow as pf
from pulsarflow.storage import Parts, PartWrite
from pulsarflow.storage.memory import InMemoryStateStore


@pf.task(service="bench")  # the service of bench.pulsar's executor, so bench.history_pulsar can deploy it
def step(n: int) -> int:
    return n + 1


@pf.workflow(name="bench-history")
async def steps(ctx: pf.WorkflowContext, count: int) -> int:
    n = 0
    for _ in range(count):
        n = await ctx.task(step, n)
    return n


class Counting:
    """Counts the bytes and writes every state write hands the store (put and put_many go through these)."""

    written = writes = 0

    def put_parts(self, key: str, value: bytes, expected_version: int, parts: Parts, finished: bool = False) -> int:
        self.written += len(value) + parts.nbytes
        self.writes += 1
        return super().put_parts(key, value, expected_version, parts, finished)  # type: ignore[misc, no-any-return]

    def put_parts_many(self, writes: list[PartWrite]) -> list[str]:
        self.written += sum(len(value) + parts.nbytes for _, value, _, _, parts in writes)
        self.writes += len(writes)
        return super().put_parts_many(writes)  # type: ignore[misc, no-any-return]


class CountingMemory(Counting, InMemoryStateStore):
    pass


class WholeMemory(CountingMemory):
    """A store that keeps no parts: the handler writes the whole state every time (the 0.3.0 layout)."""

    def __getattribute__(self, name: str) -> Any:
        if name == "put_parts":
            raise AttributeError(name)  # no parts: the handler writes whole states through put / put_many
        return super().__getattribute__(name)

    def put(self, key: str, value: bytes, expected_version: int, finished: bool = False) -> int:
        return CountingMemory.put_parts(self, key, value, expected_version, Parts(), finished)

    def put_many(self, writes: list[tuple[str, bytes, int, bool]]) -> list[str]:
        return CountingMemory.put_parts_many(self, [(k, v, e, f, Parts()) for k, v, e, f in writes])


@contextmanager
def store_for(kind: str, layout: str, redis_url: str) -> Iterator[Any]:
    if kind == "memory":
        yield CountingMemory() if layout == "chunked" else WholeMemory()
        return
    from pulsarflow.storage.redis import RedisStateStore

    base: type = RedisStateStore
    if layout == "whole":
        raise SystemExit("--layouts whole is measured on memory only")

    class CountingRedis(Counting, base):
        pass

    prefix = f"bench-history-{uuid.uuid4().hex[:8]}:"
    store = CountingRedis(RedisStateStore.from_url(redis_url).client, prefix=prefix)
    try:
        yield store
    finally:
        _clean(store.client, prefix)
        store.close()


def _clean(client: Any, prefix: str) -> None:
    for pattern in (f"{prefix}*", f"pulsarflow-queue:{prefix}*", f"pulsarflow-tag:{prefix}*"):
        keys = list(client.scan_iter(match=pattern, count=1000))
        for start in range(0, len(keys), 500):
            client.delete(*keys[start:start + 500])


def measure(length: int, kind: str, layout: str, cache: int | None, repeat: int, redis_url: str) -> dict[str, Any]:
    best, written, writes = float("inf"), 0, 0
    for _ in range(repeat):
        with store_for(kind, layout, redis_url) as store:
            env = pf.EmbeddedEnvironment(steps, step, store=store, workflow_cache=cache)
            try:
                started = time.perf_counter()
                assert env.client().start(steps, length).result(timeout=3600) == length
                best = min(best, time.perf_counter() - started)
            finally:
                env.close()
            written, writes = store.written, store.writes
    return {"bench": "history", "store": kind, "layout": layout, "cache": "live" if cache is None else "replay",
            "steps": length, "ms_per_step": round(best * 1000 / length, 4),
            "state_bytes_per_step": round(written / length), "state_writes_per_step": round(writes / length, 2)}


def ratios(lines: list[dict[str, Any]]) -> dict[str, Any]:
    """Each length's cost per step and bytes per step against the 100-step run (or the shortest)."""
    base = next((item for item in lines if item["steps"] == 100), lines[0])
    out = {k: base[k] for k in ("bench", "store", "layout", "cache")}
    out["against_steps"] = base["steps"]
    for item in lines:
        n = item["steps"]
        out[f"step_cost_ratio_{n}"] = round(item["ms_per_step"] / base["ms_per_step"], 2)
        out[f"bytes_per_step_ratio_{n}"] = round(item["state_bytes_per_step"] / base["state_bytes_per_step"], 2)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", default="10,100,1000,10000", help="history lengths, comma-separated")
    parser.add_argument("--repeat", type=int, default=2, help="runs per length; the fastest counts")
    parser.add_argument("--stores", default="memory", help="memory and/or redis, comma-separated")
    parser.add_argument("--layouts", default="chunked,whole", help="chunked and/or whole (whole: memory only)")
    parser.add_argument("--caches", default="live,replay", help="live and/or replay")
    parser.add_argument("--replay-up-to", type=int, default=1000, help="longest history replayed on every message")
    parser.add_argument("--whole-up-to", type=int, default=1000, help="longest history of the whole layout")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/8")
    args = parser.parse_args(argv)
    lengths = [int(n) for n in args.lengths.split(",")]
    for kind in args.stores.split(","):
        for layout in args.layouts.split(","):
            if kind != "memory" and layout == "whole":
                continue
            for cache_name in args.caches.split(","):
                cache = None if cache_name == "live" else 0
                bound = min(args.replay_up_to if cache == 0 else 10**9,
                            args.whole_up_to if layout == "whole" else 10**9)
                lines = [measure(n, kind, layout, cache, args.repeat, args.redis_url) for n in lengths if n <= bound]
                for item in lines:
                    print(json.dumps(item), flush=True)
                if len(lines) > 1:
                    print(json.dumps(ratios(lines)), flush=True)


if __name__ == "__main__":
    main()
