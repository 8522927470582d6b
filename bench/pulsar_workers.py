"""Throughput and latency on a real Pulsar standalone, engines in batched worker processes.

    python -m bench.pulsar_workers [--workflows 1000] [--concurrency 64] [--engines 1] [--executors 1]
                                   [--batch 200] [--redis-url redis://127.0.0.1:6379/0]

No Function is deployed: the workflow engine (Redis state) and the 'bench' executor run
as ``pulsarflow worker --engine ...`` subprocesses handling messages in batches (see
pulsarflow/engine_worker.py). One JSON line per case, like bench.pulsar.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.pulsar import run_case
from pulsarflow.pulsar.worker import connect
from pulsarflow.topics import Topics

ROOT = Path(__file__).resolve().parents[1]
BATCH = 200


@contextlib.contextmanager
def workers(service_url: str, redis_url: str, engines: int, executors: int, batch: int) -> Iterator[Any]:
    """Start the worker processes under a fresh app name; yield a warmed-up client; stop them."""
    topics = Topics(app=f"benchw{uuid.uuid4().hex[:6]}")
    base = [sys.executable, "-m", "pulsarflow.cli", "worker", "--service-url", service_url,
            "--modules", "bench.workloads", "--app", topics.app, "--batch", str(batch)]
    processes = [subprocess.Popen(base + ["--engine", "workflow", "--redis-url", redis_url], cwd=ROOT,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for _ in range(engines)]
    processes += [subprocess.Popen(base + ["--engine", "executor"], cwd=ROOT,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for _ in range(executors)]
    try:
        client = connect(service_url, modules=["bench.workloads"], topics=topics)
        run_case(client, "sequential-1", 20, 4)  # warm-up: subscriptions and producers connect
        yield client
        client.close()
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            process.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description="pulsarflow engines in batched worker processes on Pulsar")
    parser.add_argument("--workflows", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--service-url", default="pulsar://127.0.0.1:6650")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--cases", default="sequential-3,sequential-1")
    parser.add_argument("--engines", type=int, default=1, help="workflow engine worker processes")
    parser.add_argument("--executors", type=int, default=1, help="executor worker processes")
    parser.add_argument("--batch", type=int, default=BATCH)
    args = parser.parse_args()
    with workers(args.service_url, args.redis_url, args.engines, args.executors, args.batch) as client:
        for case in args.cases.split(","):
            concurrency = 1 if case == "sequential-1-latency" else args.concurrency
            run_case(client, case.removesuffix("-latency"), args.workflows if concurrency > 1 else 200,
                     concurrency, mode_detail="workers", state="redis", engines=args.engines,
                     executors=args.executors, batch=args.batch)


if __name__ == "__main__":
    main()
