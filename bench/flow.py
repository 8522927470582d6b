"""Flow control under load: does the limit hold, and what does it cost?

    python -m bench.flow [--tasks 200] [--task-ms 20] [--threads 8] [--concurrent 3] [--rate 50]
                         [--leases memory|redis] [--redis-url redis://127.0.0.1:6379/7]

One workflow fans out ``--tasks`` tasks of ``--task-ms`` each onto ``--threads`` executor
threads (the embedded runtime), three times in the same run: without a limit, with
``max_concurrent``, with ``max_starts_per_second``. Each task notes when it started and
how many ran at once. One JSON line per case: the most attempts seen at once against the
limit, the start rate seen (mean over the run, and the most starts within any second)
against the rate limit, tasks per second, and each case's throughput as a ratio of the
unlimited one. Bounded: ``--tasks`` tasks per case, each case given up after ``--timeout`` s.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
import uuid
from bisect import bisect_left
from typing import Any

import pulsarflow as pf
from pulsarflow.runtime.flow import FlowLimit
from pulsarflow.topics import Topics


class Seen:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.now = self.most = 0
        self.starts: list[float] = []
        self.task_s = 0.02

    def run(self) -> None:
        with self.lock:
            self.now += 1
            self.most = max(self.most, self.now)
            self.starts.append(time.monotonic())
        time.sleep(self.task_s)
        with self.lock:
            self.now -= 1


SEEN = Seen()


@pf.task(service="bench-flow")
def work(i: int) -> int:
    SEEN.run()
    return i


@pf.workflow(name="bench-flow-fanout")
async def fanout(ctx: pf.WorkflowContext, n: int) -> int:
    return len(await ctx.all(*[ctx.task(work, i) for i in range(n)]))


def most_in_a_second(starts: list[float]) -> int:
    ordered = sorted(starts)
    return max((bisect_left(ordered, t + 1.0) - i for i, t in enumerate(ordered)), default=0)


def run_case(name: str, limit: FlowLimit | None, args: argparse.Namespace) -> dict[str, Any]:
    global SEEN
    SEEN = Seen()
    SEEN.task_s = args.task_ms / 1000
    leases = None
    if args.leases == "redis" and limit is not None:
        from pulsarflow.storage.flow_redis import RedisFlowLeases

        leases = RedisFlowLeases.from_url(args.redis_url, Topics(app=f"bench-flow-{uuid.uuid4().hex[:8]}"))
    env = pf.EmbeddedEnvironment(fanout, work, executor_threads=args.threads, flow_leases=leases,
                                 flow={"bench-flow": limit} if limit is not None else None)
    started = time.perf_counter()
    try:
        done = env.client().start(fanout, args.tasks).result(timeout=args.timeout)
    finally:
        env.close()
    seconds = time.perf_counter() - started
    starts = sorted(SEEN.starts)
    span = starts[-1] - starts[0] if len(starts) > 1 else 0.0
    return {"case": name, "leases": args.leases if limit is not None else None, "tasks": done,
            "threads": args.threads, "task_ms": args.task_ms, "seconds": round(seconds, 3),
            "tasks_per_s": round(done / seconds, 1),
            "max_concurrent_limit": limit.max_concurrent if limit else None, "max_concurrent_seen": SEEN.most,
            "rate_limit": limit.max_starts_per_second if limit else None,
            "start_rate_seen": round((len(starts) - 1) / span, 1) if span else None,
            "most_starts_in_1s": most_in_a_second(starts)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--task-ms", type=int, default=20)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--concurrent", type=int, default=3)
    parser.add_argument("--rate", type=int, default=50)
    parser.add_argument("--leases", choices=["memory", "redis"], default="memory")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/7")
    parser.add_argument("--timeout", type=float, default=120)
    args = parser.parse_args(argv)
    cases = [("no limit", None), ("max_concurrent", FlowLimit(max_concurrent=args.concurrent, retry_ms=20)),
             ("max_starts_per_second", FlowLimit(max_starts_per_second=args.rate, retry_ms=20))]
    free: dict[str, Any] = {}
    for name, limit in cases:
        row = run_case(name, limit, args)
        free = free or row
        row["throughput_vs_no_limit"] = round(row["tasks_per_s"] / free["tasks_per_s"], 3)
        if limit is not None:  # the best a limit allows, as a share of the unlimited run
            ideal = min(1.0, limit.max_concurrent / free["max_concurrent_seen"]) if limit.max_concurrent else \
                min(1.0, (limit.max_starts_per_second or 0) / free["tasks_per_s"])
            row["ideal_vs_no_limit"] = round(ideal, 3)
            row["throughput_vs_ideal"] = round(row["throughput_vs_no_limit"] / ideal, 3)
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
