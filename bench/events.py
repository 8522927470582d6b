"""The cost of event emission on embedded workflow throughput.

    python -m bench.events [--scale 1.0] [--repeats 3] [--cases sequential-3,fanout-10]

Runs the same closed loop as ``bench.embedded`` (64 workflows in flight) once per
emission mode, modes interleaved and repeated so that machine noise hits them alike,
and prints one JSON line per case and mode (the median run by throughput) with the
cost relative to ``off``:

    off         no sink, no metrics: the handler has no observer at all
    memory      events derived and kept in an InMemoryEventStore (the embedded mode)
    visibility  the same, with an InMemoryVisibilityStore fed from it (what a dashboard reads)
    topic       events Avro-encoded and published to an events topic (the Pulsar path's work)
    metrics     no events kept, only the Prometheus counters and latencies
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Callable
from typing import Any

import pulsarflow as pf
from bench import workloads
from bench.embedded import closed_loop
from bench.report import line
from pulsarflow.events.memory import InMemoryEventStore
from pulsarflow.events.metrics import Metrics
from pulsarflow.events.recorder import EventRecorder
from pulsarflow.events.topic import TopicEventSink
from pulsarflow.visibility.memory import InMemoryVisibilityStore

MODES = ("off", "memory", "visibility", "topic", "metrics")


def environment(mode: str) -> tuple[pf.EmbeddedEnvironment, Callable[[], int]]:
    """An environment emitting events as ``mode`` says, and a count of the events it kept."""
    if mode == "off":
        return pf.EmbeddedEnvironment(*workloads.ALL), lambda: 0
    if mode == "metrics":
        metrics = Metrics()
        env = pf.EmbeddedEnvironment(*workloads.ALL, metrics=metrics)
        return env, lambda: int(sum(v for (n, _), v in metrics._counters.items() if n == "pulsarflow_events_total"))
    if mode == "topic":
        env = pf.EmbeddedEnvironment(*workloads.ALL)
        topic = env.topics.prefix + "-events"
        env._workflows.observer = env._tasks.observer = EventRecorder(
            env.clock, TopicEventSink(env.transport, env.codec, topic))
        published: list[int] = [0]

        def consume(payload: bytes) -> None:
            published[0] += 1

        env._listeners[topic] = consume  # consumed and dropped, as a visibility feed would after applying
        return env, lambda: published[0]
    store = InMemoryEventStore()
    if mode == "visibility":
        visibility = InMemoryVisibilityStore()
        store.subscribe(visibility.apply)
    return pf.EmbeddedEnvironment(*workloads.ALL, events=store), lambda: len(store)


def run_once(case: str, mode: str, workflows: int, concurrency: int) -> dict[str, Any]:
    env, kept = environment(mode)
    seconds, latencies = closed_loop(env, case, workflows, concurrency)
    env.close()
    return {"seconds": seconds, "latencies": latencies, "events": kept()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--scale", type=float, default=1.0, help="multiply the number of workflows")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cases", default="sequential-3,fanout-10")
    parser.add_argument("--modes", default=",".join(MODES))
    args = parser.parse_args()
    modes = args.modes.split(",")
    for case in args.cases.split(","):
        count = max(1, int(workloads.CASES[case][2] * args.scale))
        runs: dict[str, list[dict[str, Any]]] = {m: [] for m in modes}
        for _ in range(args.repeats):
            for mode in modes:
                runs[mode].append(run_once(case, mode, count, args.concurrency))
        baseline = statistics.median(r["seconds"] for r in runs.get("off", runs[modes[0]]))
        for mode in modes:
            median = sorted(runs[mode], key=lambda r: r["seconds"])[len(runs[mode]) // 2]
            events = median["events"]
            line(case, f"embedded-events-{mode}", count, median["seconds"], median["latencies"], None,
                 events_per_workflow=round(events / count, 2),
                 cost_vs_off_pct=round((median["seconds"] / baseline - 1) * 100, 1),
                 repeats=args.repeats, concurrency=args.concurrency)


if __name__ == "__main__":
    main()
