"""The cost of one step by history length on a Pulsar standalone, engines deployed as Functions.

    python -m bench.history_pulsar [--lengths 10,100,1000,10000] [--state function|redis]
                                   [--redis-url redis://127.0.0.1:6379/0] [--batch 100]
                                   [--admin-url http://127.0.0.1:8080] [--service-url pulsar://127.0.0.1:6650]

The workflow of ``bench.history`` (N tasks one after the other) run once per length on the
engines as shipped (``batch`` as in functions.yaml, the workflow cache on), deployed under
a fresh app name and deleted after. One JSON line per length: milliseconds per step (start
to result over N); with ``--state redis`` also the bytes the engines sent Redis per step
(``total_net_input_bytes`` of ``INFO stats``: state writes and reads with their keys and
script arguments; Redis should serve nothing else meanwhile). Then one line of each
length's ratios against the 100-step run (or the shortest). A step on Pulsar is two trips
through the broker (the task to the executor, its result back), so a 10,000-step run takes
minutes.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from bench.history import ratios, steps
from bench.pulsar import deployment


def redis_input_bytes(url: str) -> int:
    import redis

    return int(redis.Redis.from_url(url).info("stats")["total_net_input_bytes"])


def measure(client: Any, length: int, state: str, redis_url: str) -> dict[str, Any]:
    before = redis_input_bytes(redis_url) if state == "redis" else 0
    started = time.perf_counter()
    result = client.start(steps, length).result(timeout=3600)
    seconds = time.perf_counter() - started
    if result != length:
        raise RuntimeError(f"the {length}-step workflow returned {result!r}")
    line: dict[str, Any] = {"bench": "history", "store": f"pulsar-{state}", "layout": "chunked", "cache": "live",
                            "steps": length, "ms_per_step": round(seconds * 1000 / length, 4)}
    if state == "redis":
        line["state_bytes_per_step"] = round((redis_input_bytes(redis_url) - before) / length)
    return line


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", default="10,100,1000,10000", help="history lengths, comma-separated")
    parser.add_argument("--state", choices=["function", "redis"], default="function")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--batch", type=int, default=100, help="messages a Function handles together (as shipped)")
    parser.add_argument("--admin-url", default="http://127.0.0.1:8080")
    parser.add_argument("--service-url", default="pulsar://127.0.0.1:6650")
    args = parser.parse_args(argv)
    state = {"state": "redis", "redis_url": args.redis_url} if args.state == "redis" else None
    lines = []
    with deployment(args.admin_url, args.service_url, state, batch=args.batch, extra_modules=("bench.history",),
                    prefix="hist") as (_, client):
        client.registry.register(steps)
        for length in [int(n) for n in args.lengths.split(",")]:
            lines.append(measure(client, length, args.state, args.redis_url))
            print(json.dumps(lines[-1]), flush=True)
    if len(lines) > 1:
        base = next((item for item in lines if item["steps"] == 100), lines[0])
        out = ratios([dict(item, state_bytes_per_step=item.get("state_bytes_per_step", 1)) for item in lines])
        if "state_bytes_per_step" not in base:
            out = {k: v for k, v in out.items() if not k.startswith("bytes_per_step")}
        print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
