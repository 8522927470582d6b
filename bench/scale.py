"""Throughput against partitions and instances on the local two-broker cluster.

    python -m bench.scale [--counts 1,2,4] [--workflows 200] [--concurrency 32] [--case sequential-3]
                          [--admin-url http://127.0.0.1:8181] [--service-url pulsar://...]
                          [--redis-url redis://127.0.0.1:6397/0]

For each count N it deploys the workflow engine and the 'bench' executor with N partitions
and N instances each (``state: redis``: the cluster has no table service), runs the case
with a closed loop, and prints one JSON line: workflows/s, messages/s in total and per
broker (messages published to the app's persistent topics, by the broker owning each
partition), and the ratios to the first count. Start the cluster first
(deploy/pulsar-cluster.sh start) and a redis-server at --redis-url.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import requests

from bench.pulsar import run_case
from pulsarflow.deploy import manifest as mf
from pulsarflow.deploy import tool
from pulsarflow.deploy.admin import PulsarAdmin
from pulsarflow.pulsar.worker import connect


def published_by_broker(admin_url: str, topics: list[str]) -> dict[str, int]:
    """Messages published so far to ``topics`` (each partition counted at the broker owning it)."""
    counts: dict[str, int] = {}
    for topic in topics:
        path = topic.split("://", 1)[1]
        stats = requests.get(f"{admin_url}/admin/v2/persistent/{path}/partitioned-stats",
                             params={"perPartition": "true"}, timeout=60).json()
        parts = stats.get("partitions") or {}
        if not parts:  # a non-partitioned topic
            parts = {topic: requests.get(f"{admin_url}/admin/v2/persistent/{path}/stats", timeout=60).json()}
        for name, part in parts.items():
            owner = requests.get(f"{admin_url}/lookup/v2/topic/persistent/{name.split('://', 1)[1]}",
                                 timeout=60).json()["brokerUrl"].split("://", 1)[1]
            counts[owner] = counts.get(owner, 0) + int(part.get("msgInCounter", 0))
    return counts


@contextlib.contextmanager
def scaled(admin_url: str, service_url: str, redis_url: str, count: int) -> Iterator[tuple[Any, list[str]]]:
    app = f"scale{uuid.uuid4().hex[:6]}"
    manifest = mf.parse({"app": app, "modules": ["bench.workloads"], "bundle_library": False, "state": "redis",
                         "redis_url": redis_url, "functions": [
        {"name": f"{app}-workflow-engine", "engine": "workflow", "partitions": count, "parallelism": count},
        {"name": f"{app}-executor-bench", "engine": "executor", "service": "bench", "partitions": count,
         "parallelism": count}]})
    admin = PulsarAdmin(admin_url)
    tool.apply(admin, manifest, Path(tempfile.mkdtemp()))
    t = manifest.topics
    try:
        client = connect(service_url, modules=["bench.workloads"], topics=t)
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                run_case(client, "sequential-1", 5, 1)  # warm-up: instances start, producers connect
            yield client, [t.workflow_engine, t.executor("bench"), t.events]
        finally:
            client.close()
    finally:
        for spec in manifest.functions:
            admin.delete_function(t.tenant, t.namespace, spec.name)


def measure(args: argparse.Namespace, count: int) -> dict[str, Any]:
    with scaled(args.admin_url, args.service_url, args.redis_url, count) as (client, topics):
        before = published_by_broker(args.admin_url, topics)
        with contextlib.redirect_stdout(io.StringIO()):
            row = run_case(client, args.case, args.workflows, args.concurrency)
        after = published_by_broker(args.admin_url, topics)
    seconds = row["seconds"]
    per_broker = {b: round((after.get(b, 0) - before.get(b, 0)) / seconds, 1) for b in sorted(after)}
    return {"case": args.case, "partitions": count, "instances": count, "workflows": row["workflows"],
            "seconds": seconds, "workflows_per_s": row["workflows_per_s"], "p50_ms": row["p50_ms"],
            "p99_ms": row["p99_ms"], "messages_per_s": round(sum(per_broker.values()), 1),
            "messages_per_s_by_broker": per_broker}


def main() -> None:
    parser = argparse.ArgumentParser(description="throughput against partitions and instances on a cluster")
    parser.add_argument("--counts", default="1,2,4")
    parser.add_argument("--workflows", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--case", default="sequential-3")
    parser.add_argument("--admin-url", default="http://127.0.0.1:8181")
    parser.add_argument("--service-url", default="pulsar://127.0.0.1:6751,127.0.0.1:6752")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6397/0")
    args = parser.parse_args()
    first: dict[str, Any] | None = None
    for count in (int(c) for c in args.counts.split(",")):
        row = measure(args, count)
        first = first or row
        row["workflows_per_s_ratio"] = round(row["workflows_per_s"] / first["workflows_per_s"], 2)
        row["messages_per_s_ratio"] = round(row["messages_per_s"] / first["messages_per_s"], 2)
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
