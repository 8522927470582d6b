"""Schedules: cost per fire (embedded, virtual clock) and fire lag (on a real Pulsar standalone).

    python -m bench.schedules [--schedules 200] [--fires 60]       # embedded
    python -m bench.schedules --pulsar [--schedules 5] [--seconds 30]

Embedded: ``schedules`` schedules of a one-task workflow, every minute on the virtual
clock, for ``fires`` fires each: messages and CPU milliseconds per fire, and the longest
scheduler history. Pulsar: schedules every 2 s, deployed as functions; the lag of each
fire, from its planned time to the scheduler processing its timer (``fire_lag``) and to
the run's own start (``start_lag``), from the times the scheduler and the runs recorded.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pulsarflow as pf
from bench.report import percentile
from pulsarflow.schedules import Schedules, scheduler

PERIOD_S = 2


@pf.task(service="bench")
def note(label: str) -> str:
    return label


@pf.workflow(name="bench-scheduled")
async def scheduled(ctx: pf.WorkflowContext, label: str) -> str:
    """A one-task run that returns its own start time."""
    await ctx.task(note, label)
    return ctx.now().isoformat()


def emit(row: dict[str, Any]) -> None:
    print(json.dumps(row), flush=True)


def run_embedded(schedules: int, fires: int) -> None:
    from pulsarflow.testing import TestEnvironment

    env = TestEnvironment(note, scheduled, scheduler, events=False)
    control = Schedules(env.client())
    for i in range(schedules):
        control.create(f"s{i}", scheduled, f"s{i}", every=60)
    env.run_ready()
    sent, cpu = env.transport.sent, time.process_time()
    for _ in range(fires):
        env.advance(60)
    cpu_ms = (time.process_time() - cpu) * 1000
    longest = max(len(env.state(f"schedule:s{i}").commands) for i in range(schedules))  # type: ignore[union-attr]
    total = schedules * fires
    emit({"case": "schedules-every-60s", "mode": "embedded", "schedules": schedules, "fires": total,
          "messages_per_fire": round((env.transport.sent - sent) / total, 2),
          "cpu_ms_per_fire": round(cpu_ms / total, 3), "longest_scheduler_history": longest})


@contextlib.contextmanager
def deployed(admin_url: str, service_url: str) -> Iterator[Any]:
    from pulsarflow.deploy import manifest as mf
    from pulsarflow.deploy import tool
    from pulsarflow.deploy.admin import PulsarAdmin
    from pulsarflow.pulsar.worker import connect

    app = f"bsched{uuid.uuid4().hex[:6]}"
    manifest = mf.parse({"app": app, "modules": ["bench.schedules"], "bundle_library": False, "functions": [
        {"name": f"{app}-workflow-engine", "engine": "workflow"},
        {"name": f"{app}-executor-bench", "engine": "executor", "service": "bench"}]})
    admin = PulsarAdmin(admin_url)
    tool.apply(admin, manifest, Path(tempfile.mkdtemp()))
    try:
        yield connect(service_url, modules=["bench.schedules"], topics=manifest.topics)
    finally:
        for spec in manifest.functions:
            admin.delete_function(manifest.topics.tenant, manifest.topics.namespace, spec.name)


def run_pulsar(admin_url: str, service_url: str, schedules: int, seconds: float) -> None:
    with deployed(admin_url, service_url) as client:
        client.start(scheduled, "warm-up").result(timeout=120)  # functions started, producers connected
        control = Schedules(client, timeout=60)
        names = [f"b{uuid.uuid4().hex[:6]}-{i}" for i in range(schedules)]
        for name in names:
            control.create(name, scheduled, name, every=PERIOD_S)
        time.sleep(seconds)
        fire_lags, start_lags, fires = [], [], 0
        for name in names:
            state = control.describe(name).state
            control.delete(name)
            fires += state.fired
            for run in state.recent:
                if run.status == "COMPLETED" and run.started_at is not None:
                    began = dt.datetime.fromisoformat(client.get_handle(run.workflow_id).result(timeout=60))
                    fire_lags.append((run.started_at - run.fire_at).total_seconds() * 1000)
                    start_lags.append((began - run.fire_at).total_seconds() * 1000)
        emit({"case": f"schedules-every-{PERIOD_S}s", "mode": "pulsar", "schedules": schedules, "fires": fires,
              "fire_lag_p50_ms": round(percentile(fire_lags, 50), 1),
              "fire_lag_p99_ms": round(percentile(fire_lags, 99), 1),
              "start_lag_p50_ms": round(percentile(start_lags, 50), 1),
              "start_lag_p99_ms": round(percentile(start_lags, 99), 1), "runs_measured": len(fire_lags)})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pulsar", action="store_true", help="measure on a real standalone instead")
    parser.add_argument("--schedules", type=int, default=None)
    parser.add_argument("--fires", type=int, default=60, help="fires per schedule (embedded)")
    parser.add_argument("--seconds", type=float, default=30.0, help="how long the schedules run (pulsar)")
    parser.add_argument("--admin-url", default="http://127.0.0.1:8080")
    parser.add_argument("--service-url", default="pulsar://127.0.0.1:6650")
    args = parser.parse_args()
    if args.pulsar:
        run_pulsar(args.admin_url, args.service_url, args.schedules or 5, args.seconds)
    else:
        run_embedded(args.schedules or 200, args.fires)


if __name__ == "__main__":
    main()
