"""Throughput and latency on a real Pulsar standalone, engines deployed as functions.

    python -m bench.pulsar [--workflows 200] [--concurrency 32] [--admin-url ...] [--service-url ...]
                           [--state function|redis] [--redis-url redis://127.0.0.1:6379/0]
                           [--engine-parallelism 1] [--executor-parallelism 1] [--batch 1]
                           [--events topic|off]

Deploys the workflow engine and the 'bench' executor under a fresh app name, runs the
cases with a closed loop, prints one JSON line per case, then deletes the functions.
"""

from __future__ import annotations

import argparse
import contextlib
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench import workloads
from bench.report import line
from pulsarflow.deploy import manifest as mf
from pulsarflow.deploy import tool
from pulsarflow.deploy.admin import PulsarAdmin
from pulsarflow.pulsar.worker import connect


def run_case(client, case: str, workflows: int, concurrency: int,  # type: ignore[no-untyped-def]
             **extra: Any) -> dict[str, Any]:
    wf, tasks, _ = workloads.CASES[case]
    started: dict[str, float] = {}
    latencies: list[float] = []
    slots = threading.Semaphore(concurrency)

    def on_answer(answer) -> None:  # type: ignore[no-untyped-def]
        t0 = started.pop(answer.request_id, None)
        if t0 is not None:
            latencies.append((time.perf_counter() - t0) * 1000)
            slots.release()  # the closed loop: an answer lets the next workflow start

    client.add_answer_listener(on_answer)
    before = client.connection.transport.sent
    t0 = time.perf_counter()
    for _ in range(workflows):
        slots.acquire()
        request_id = uuid.uuid4().hex
        started[request_id] = time.perf_counter()
        client.start_with_request_id(wf, tasks, request_id=request_id)
    while len(latencies) < workflows and time.perf_counter() - t0 < 600:
        time.sleep(0.01)
    seconds = time.perf_counter() - t0
    client_messages = client.connection.transport.sent - before
    # The engines are the embedded ones: per workflow, the client's start plus 2 messages per
    # task plus the answer; the workflow engine reads and writes state once per message it handles.
    per_workflow = client_messages / max(1, workflows) + 2 * tasks + 1
    return line(case, "pulsar", len(latencies), seconds, latencies, int(per_workflow * len(latencies)),
                tasks_per_workflow=tasks, concurrency=concurrency, state_round_trips_per_workflow=1 + tasks, **extra)


@contextlib.contextmanager
def deployment(admin_url: str, service_url: str, state: dict[str, Any] | None = None, engines: int = 1,
               executors: int = 1, batch: int = 1, events: str = "topic", namespace: str = "default",
               extra_modules: tuple[str, ...] = (), config: dict[str, Any] | None = None,
               prefix: str = "bench") -> Iterator[tuple[mf.Manifest, Any]]:
    """Deploy the engine and the 'bench' executor under a fresh app name; yield the manifest and a warmed-up client.

    ``state`` holds manifest settings of the state backend, e.g. ``{"state": "redis", "redis_url": ...}``;
    ``engines`` and ``executors`` are the parallelism of the two functions; ``extra_modules`` are
    packaged and imported by the functions only (``bench.state_counter``); ``config`` is added to
    both functions' userConfig.
    """
    app = f"{prefix}{uuid.uuid4().hex[:6]}"
    user = {"events": events, **(config or {})}
    manifest = mf.parse({"app": app, "namespace": namespace, "modules": ["bench.workloads", *extra_modules],
                         "bundle_library": False, **(state or {}), "functions": [
        {"name": f"{app}-workflow-engine", "engine": "workflow", "parallelism": engines, "batch": batch,
         "config": user},
        {"name": f"{app}-executor-bench", "engine": "executor", "service": "bench", "parallelism": executors,
         "batch": batch, "config": user}]})
    admin = PulsarAdmin(admin_url)
    try:
        tool.apply(admin, manifest, Path(tempfile.mkdtemp()))
        client = connect(service_url, modules=["bench.workloads"], topics=manifest.topics)
        run_case(client, "sequential-1", 5, 1)  # warm-up: functions start, producers connect
        yield manifest, client
    finally:
        for spec in manifest.functions:
            admin.delete_function(manifest.topics.tenant, manifest.topics.namespace, spec.name)


@contextlib.contextmanager
def deployed(admin_url: str, service_url: str, state: dict[str, Any] | None = None,
             engines: int = 1, executors: int = 1, batch: int = 1, events: str = "topic") -> Iterator[Any]:
    """``deployment`` in the default namespace, yielding the client only."""
    with deployment(admin_url, service_url, state, engines, executors, batch, events) as (_, client):
        yield client


def main() -> None:
    parser = argparse.ArgumentParser(description="pulsarflow on a real Pulsar standalone")
    parser.add_argument("--workflows", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--admin-url", default="http://127.0.0.1:8080")
    parser.add_argument("--service-url", default="pulsar://127.0.0.1:6650")
    parser.add_argument("--cases", default="sequential-3,sequential-1")
    parser.add_argument("--state", choices=["function", "redis"], default="function")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--engine-parallelism", type=int, default=1, help="instances of the workflow engine")
    parser.add_argument("--executor-parallelism", type=int, default=1, help="instances of the executor")
    parser.add_argument("--batch", type=int, default=1, help="messages a function handles together (1: one by one)")
    parser.add_argument("--events", choices=["topic", "off"], default="topic", help="publish workflow events")
    args = parser.parse_args()
    state = {"state": "redis", "redis_url": args.redis_url} if args.state == "redis" else None
    engines, executors = args.engine_parallelism, args.executor_parallelism
    with deployed(args.admin_url, args.service_url, state, engines, executors, args.batch, args.events) as client:
        for case in args.cases.split(","):
            run_case(client, case, args.workflows, args.concurrency, state=args.state,
                     engine_parallelism=engines, executor_parallelism=executors, batch=args.batch,
                     events=args.events)


if __name__ == "__main__":
    main()
