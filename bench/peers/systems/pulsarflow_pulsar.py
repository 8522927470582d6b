"""pulsarflow on the local Pulsar standalone, measured by bench.pulsar: engines deployed as functions
with the workflow state in Pulsar function state or in Redis, or engines in batched worker processes
(bench.pulsar_workers) with the state in Redis."""

from __future__ import annotations

from importlib import metadata
from typing import Any

import pulsarflow
from bench.peers.harness import Settings

BATCH = 100  # as in the shipped functions.yaml


def unavailable(settings: Settings, variant: str = "function") -> str | None:
    try:
        import requests

        answer = requests.get(f"{settings.admin_url}/admin/v2/clusters", timeout=3)
    except ImportError:
        return "the project's Pulsar extra is not installed: pip install -e '.[pulsar]'"
    except requests.RequestException as exc:
        return (f"no Pulsar admin at {settings.admin_url} ({type(exc).__name__}); "
                "start a standalone with 'bash deploy/pulsar-standalone.sh start'")
    if answer.status_code != 200:
        return f"Pulsar admin at {settings.admin_url} answered {answer.status_code} to GET /admin/v2/clusters"
    return _redis_unavailable(settings.redis_url) if variant in ("redis", "workers") else None


def _redis_unavailable(url: str) -> str | None:
    try:
        import redis
    except ImportError:
        return "the project's Redis extra is not installed: pip install -e '.[redis]'"
    try:
        redis.Redis.from_url(url, socket_connect_timeout=3).ping()
    except redis.RedisError as exc:
        return f"no Redis at {url} ({type(exc).__name__}); start one with 'bash deploy/redis.sh start'"
    return None


def versions(settings: Settings, variant: str = "function") -> dict[str, str]:
    import requests

    broker = requests.get(f"{settings.admin_url}/admin/v2/brokers/version", timeout=5)
    found = {"pulsarflow": pulsarflow.__version__, "pulsar-client": metadata.version("pulsar-client"),
             "pulsar": broker.text.strip().strip('"') if broker.ok else f"unknown (HTTP {broker.status_code})"}
    if variant in ("redis", "workers"):
        import redis

        found["redis-server"] = str(redis.Redis.from_url(settings.redis_url).info("server")["redis_version"])
    return found


def run(cases: list[tuple[str, int]], concurrency: int, settings: Settings,
        variant: str = "function") -> list[dict[str, Any]]:
    from bench import pulsar

    if variant == "workers":
        from bench import pulsar_workers

        with pulsar_workers.workers(settings.service_url, settings.redis_url, 1, 1, pulsar_workers.BATCH) as client:
            return [pulsar.run_case(client, case, workflows, concurrency, state="redis", engines="workers")
                    for case, workflows in cases]
    state = {"state": "redis", "redis_url": settings.redis_url} if variant == "redis" else None
    with pulsar.deployed(settings.admin_url, settings.service_url, state, batch=BATCH) as client:
        return [pulsar.run_case(client, case, workflows, concurrency, state=variant, batch=BATCH)
                for case, workflows in cases]
