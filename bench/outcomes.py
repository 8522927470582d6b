"""What outcome markers cost an executor: tasks per second with and without them.

    python -m bench.outcomes [--tasks 2000] [--batch 100] [--task-ms 0] [--stores none,memory,function,redis]
                             [--state-url bk://127.0.0.1:4181] [--redis-url redis://127.0.0.1:6392/0]
                             [--check-after-ms 1000] [--dispatched-ms-ago 60000]

Runs the executor through the shared runtime (``BatchHandler`` over ``MessageHandler``,
batches of ``--batch``) on ExecuteTask messages of a task that takes ``--task-ms``, over an
in-memory transport, so only the executor's own work is timed: with no markers, markers
in memory, in a Pulsar function state table (the table service of a running standalone,
reached as the Functions runtime reaches it; a table of its own) and in Redis. Messages
are dispatched a minute before by default, so every one is looked up in the store (the
worst case: a backlog, or a restart); ``--dispatched-ms-ago 0`` times fresh messages, which
are looked up only in the executor's memory. One JSON line per store, with the
ratio of its time to the time without markers; the markers' writes run on their thread and
are waited for before the clock stops.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pulsarflow as pf
from pulsarflow.clock import SystemClock
from pulsarflow.codec import Codec
from pulsarflow.converter import JsonConverter
from pulsarflow.interpreter.registry import Registry
from pulsarflow.messages import ExecuteTask, TaskExecutorMessage
from pulsarflow.messages.common import RetrySpec
from pulsarflow.runtime.batch import BatchHandler
from pulsarflow.runtime.executor import TaskExecutor
from pulsarflow.runtime.handler import MessageHandler
from pulsarflow.runtime.outcomes import (
    FunctionStateOutcomeStore,
    MemoryOutcomeStore,
    Outcomes,
    OutcomeStore,
    RedisOutcomeStore,
    WatchedTransport,
)
from pulsarflow.topics import Topics
from pulsarflow.transport.memory import InMemoryTransport

TASK_SECONDS = [0.0]


@pf.task
def work(n: int) -> int:
    if TASK_SECONDS[0]:
        time.sleep(TASK_SECONDS[0])
    return n + 1


def function_state(url: str) -> Any:
    """A state context on the table service, as the Functions runtime makes one (its python-instance)."""
    found = sorted(Path.home().glob(".cache/pulsarflow/pulsar/apache-pulsar-*"))
    dist = os.environ.get("PULSAR_DIST") or str(found[0])
    sys.path.insert(0, str(Path(dist) / "instances/python-instance"))
    from state_context import create_state_context  # type: ignore[import-not-found]

    context = create_state_context(url, "public_default", f"pfbench_outcomes_{uuid.uuid4().hex[:6]}")

    class Context:
        def get_state(self, key: str) -> Any:
            return context.get_value(key)

        def put_state(self, key: str, value: str) -> None:
            context.put(key, value)

    return Context()


def store_for(name: str, args: argparse.Namespace) -> OutcomeStore | None:
    if name == "none":
        return None
    if name == "memory":
        return MemoryOutcomeStore()
    if name == "function":
        return FunctionStateOutcomeStore(function_state(args.state_url))
    if name == "redis":
        import redis

        return RedisOutcomeStore(redis.Redis.from_url(args.redis_url), f"pfbench:{uuid.uuid4().hex[:6]}:outcome:")
    raise SystemExit(f"unknown store {name!r}")


def run(name: str, args: argparse.Namespace, codec: Codec) -> float:
    clock, topics, converter = SystemClock(), Topics(), JsonConverter()
    store = store_for(name, args)
    outcomes = Outcomes(store, codec, check_after_ms=args.check_after_ms) if store is not None else None
    memory = InMemoryTransport(clock)
    transport: Any = WatchedTransport(memory, outcomes) if outcomes is not None else memory
    executor = TaskExecutor(Registry([work]), converter, topics, clock, outcomes)
    batch = BatchHandler(MessageHandler(executor, codec, transport, clock, None, topics.dead_letters))
    run_id = uuid.uuid4().hex[:8]
    messages = []
    for i in range(args.tasks):
        task = ExecuteTask(f"bench-{run_id}-{i}", 0, "default", "work", converter.encode([i]), attempt=1,
                           first_attempt_at_ms=clock.now_ms() - args.dispatched_ms_ago, retry=RetrySpec(max_attempts=1))
        messages.append((topics.executor("default"), codec.encode(TaskExecutorMessage(f"m{i}", task.task_id, 0, task))))
    began = time.perf_counter()
    for start in range(0, len(messages), args.batch):
        batch.handle_batch(messages[start:start + args.batch])
        while memory.poll() is not None:
            pass
    if outcomes is not None:
        outcomes.drain(60)
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description="the cost of outcome markers in an executor")
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--task-ms", type=float, default=0.0)
    parser.add_argument("--stores", default="none,memory,function,redis")
    parser.add_argument("--state-url", default="bk://127.0.0.1:4181")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6392/0")
    parser.add_argument("--check-after-ms", type=int, default=1000, help="as outcome_check_after_ms")
    parser.add_argument("--dispatched-ms-ago", type=int, default=60_000,
                        help="how old the messages are: 0 = fresh (no store read), the default = a backlog")
    args = parser.parse_args()
    TASK_SECONDS[0] = args.task_ms / 1000
    codec = Codec()
    stores = args.stores.split(",")
    run("none", args, codec)  # warm-up: codec caches, imports
    base = run("none", args, codec)
    for name in stores:
        seconds = base if name == "none" else run(name, args, codec)
        print(json.dumps({"bench": "outcomes", "store": name, "tasks": args.tasks, "batch": args.batch,
                          "task_ms": args.task_ms, "check_after_ms": args.check_after_ms,
                          "dispatched_ms_ago": args.dispatched_ms_ago,
                          "seconds": round(seconds, 3), "tasks_per_s": round(args.tasks / seconds, 1),
                          "per_task_ms": round(seconds * 1000 / args.tasks, 3),
                          "ratio_to_none": round(seconds / base, 3)}), flush=True)


if __name__ == "__main__":
    main()
