"""State operation latency per backend: get and put p50/p99 and operations per second.

    python -m bench.state [--ops 2000] [--value-bytes 2048] [--redis-url redis://127.0.0.1:6379/0]
                          [--admin-url http://127.0.0.1:8080] [--service-url pulsar://127.0.0.1:6650]

Prints one JSON line per backend and operation. Backends: memory; Redis when one answers
at --redis-url; Pulsar function state when a standalone answers at --admin-url. Function
state is only reachable from inside a function, so this very file is deployed as a Pulsar
Function (``StateBenchFunction``) that times the operations over its own state and
publishes the raw latencies; a backend that is not there prints a line saying why.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
import uuid
from pathlib import Path
from typing import Any

from pulsarflow.storage import StateStore

try:
    from pulsar import Function
except ImportError:  # pragma: no cover - without the pulsar extra
    Function = object

KEYS = 50


def time_ops(store: StateStore, ops: int, value_bytes: int, namespace: str) -> dict[str, list[float]]:
    """Latencies in ms of ``ops`` versioned puts and ``ops`` gets, spread over a few keys."""
    value = bytes(range(256)) * (value_bytes // 256) + b"x" * (value_bytes % 256)
    versions = [0] * KEYS
    latencies: dict[str, list[float]] = {"put": [], "get": []}
    for i in range(ops):
        key = f"{namespace}{i % KEYS}"
        t0 = time.perf_counter()
        versions[i % KEYS] = store.put(key, value, versions[i % KEYS])
        t1 = time.perf_counter()
        store.get(key)
        t2 = time.perf_counter()
        latencies["put"].append((t1 - t0) * 1000)
        latencies["get"].append((t2 - t1) * 1000)
    for k in range(KEYS):
        store.delete(f"{namespace}{k}")
    return latencies


def report(backend: str, latencies: dict[str, list[float]], value_bytes: int, **extra: Any) -> None:
    from bench.report import percentile

    for op, values in latencies.items():
        row = {"case": "state", "backend": backend, "op": op, "value_bytes": value_bytes, "ops": len(values),
               "ops_per_s": round(len(values) / (sum(values) / 1000), 1) if values else None,
               "p50_ms": round(percentile(values, 50), 3), "p99_ms": round(percentile(values, 99), 3), **extra}
        print(json.dumps(row), flush=True)


def skipped(backend: str, reason: str) -> None:
    print(json.dumps({"case": "state", "backend": backend, "skipped": reason}), flush=True)


class StateBenchFunction(Function):
    """Runs ``time_ops`` over the function's own state; the message is ``{"ops": n, "value_bytes": n}``."""

    def process(self, input: bytes, context: Any) -> None:
        from pulsarflow.pulsar.function_state import FunctionStateStore

        request = json.loads(bytes(input))
        latencies = time_ops(FunctionStateStore(context), request["ops"], request["value_bytes"],
                             f"bench/{uuid.uuid4().hex[:6]}/")
        context.publish(context.get_user_config_value("report_topic"), json.dumps(latencies).encode())


def bench_memory(args: argparse.Namespace) -> None:
    from pulsarflow.storage.memory import InMemoryStateStore

    report("memory", time_ops(InMemoryStateStore(), args.ops, args.value_bytes, "bench/"), args.value_bytes)


def bench_redis(args: argparse.Namespace) -> None:
    from pulsarflow.errors import BackendError, DefinitionError
    from pulsarflow.storage.redis import RedisStateStore

    try:
        store = RedisStateStore.from_url(args.redis_url, prefix=f"pulsarflow-bench:{uuid.uuid4().hex[:6]}:")
        store.get("probe")
    except (BackendError, DefinitionError) as exc:
        return skipped("redis", f"no Redis at {args.redis_url} ({str(exc)[:120]}); start one: deploy/redis.sh start")
    report("redis", time_ops(store, args.ops, args.value_bytes, "bench/"), args.value_bytes, url=args.redis_url)


def bench_function_state(args: argparse.Namespace) -> None:
    try:
        import pulsar

        from pulsarflow.deploy.admin import PulsarAdmin
        from pulsarflow.errors import BackendError
    except ImportError as exc:
        return skipped("function", f"needs the pulsar extra ({exc})")
    admin = PulsarAdmin(args.admin_url)
    try:
        admin.function("public", "default", "absent-probe")
    except BackendError:
        return skipped("function", f"no Pulsar admin at {args.admin_url}; start one: deploy/pulsar-standalone.sh start")
    name = f"state-bench-{uuid.uuid4().hex[:6]}"
    source, out = (f"persistent://public/default/{name}-{s}" for s in ("in", "out"))
    config = {"tenant": "public", "namespace": "default", "name": name, "runtime": "PYTHON",
              "className": "state.StateBenchFunction", "py": "state.py", "parallelism": 1,
              "customSerdeInputs": {source: "pulsarflow.pulsar.function.RawBytesSerDe"},
              "subscriptionPosition": "Earliest", "autoAck": True, "userConfig": {"report_topic": out}}
    quiet = logging.getLogger("bench.state.pulsar")
    quiet.setLevel(logging.WARNING)
    client = pulsar.Client(args.service_url, logger=quiet)
    try:
        consumer = client.subscribe(out, "bench", initial_position=pulsar.InitialPosition.Earliest)
        admin.create_or_update(config, Path(__file__))
        request = {"ops": args.ops, "value_bytes": args.value_bytes}
        client.create_producer(source).send(json.dumps(request).encode())
        latencies = json.loads(consumer.receive(timeout_millis=600_000).data())
    finally:
        admin.delete_function("public", "default", name)
        client.close()
    report("function", latencies, args.value_bytes, measured="inside a Pulsar Function (gRPC to the table service)")


def main() -> None:
    parser = argparse.ArgumentParser(description="state operation latency per backend")
    parser.add_argument("--ops", type=int, default=2000)
    parser.add_argument("--value-bytes", type=int, default=2048)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--admin-url", default="http://127.0.0.1:8080")
    parser.add_argument("--service-url", default="pulsar://127.0.0.1:6650")
    parser.add_argument("--backends", default="memory,redis,function")
    args = parser.parse_args()
    runners = {"memory": bench_memory, "redis": bench_redis, "function": bench_function_state}
    for backend in args.backends.split(","):
        runners[backend](args)


if __name__ == "__main__":
    main()
