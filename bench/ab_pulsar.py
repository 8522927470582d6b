"""A/B of a Pulsar-path switch in one run: two apps deployed side by side, their loads alternated.

    python -m bench.ab_pulsar --b '{"perf_batched_records": ""}' [--a '{}'] [--rounds 3]
                              [--workflows 300] [--concurrency 64] [--batch 100] [--namespace perf]

Both apps get ``bench.perf_toggles`` and ``bench.state_counter`` among their modules; ``--a``
and ``--b`` are userConfig keys of their functions (see bench/perf_toggles.py). Rounds run
A then B then A..., each a closed loop of ``sequential-3``; one JSON line per round (with
the messages, bytes and state writes per workflow it cost), then a summary with the
B/A ratio of the median throughput. Both apps share the machine all along, so a ratio
is what to read on a busy machine, not the absolute rates.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
from typing import Any

import redis

from bench import state_counter
from bench.profile_pulsar import ensure_namespace, instance_pids, per_workflow, settled
from bench.pulsar import deployment, run_case

MODULES = ("bench.perf_toggles", "bench.state_counter")


def main() -> None:
    parser = argparse.ArgumentParser(description="A/B of a switch of the Pulsar path, in one run")
    parser.add_argument("--a", default="{}", help="userConfig of app A (JSON)")
    parser.add_argument("--b", required=True, help="userConfig of app B (JSON)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workflows", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--case", default="sequential-3")
    parser.add_argument("--namespace", default="perf")
    parser.add_argument("--admin-url", default="http://127.0.0.1:8080")
    parser.add_argument("--service-url", default="pulsar://127.0.0.1:6650")
    args = parser.parse_args()
    configs = {"A": json.loads(args.a), "B": json.loads(args.b)}
    ensure_namespace(args.admin_url, "public", args.namespace)
    store = redis.Redis.from_url(state_counter.REDIS_URL)
    rates: dict[str, list[float]] = {"A": [], "B": []}
    with contextlib.ExitStack() as stack:
        apps: dict[str, Any] = {}
        for name, config in configs.items():
            manifest, client = stack.enter_context(deployment(
                args.admin_url, args.service_url, batch=args.batch, namespace=args.namespace,
                extra_modules=MODULES, config=config, prefix=f"ab{name.lower()}"))
            pids = {"workflow-engine": instance_pids(manifest.functions[0].name)[0],
                    "executor": instance_pids(manifest.functions[1].name)[0]}
            apps[name] = (manifest, client, pids)
        for round_ in range(args.rounds):
            for name in ("A", "B") if round_ % 2 == 0 else ("B", "A"):
                manifest, client, pids = apps[name]
                before = settled(args.admin_url, manifest, store, pids)
                row = run_case(client, args.case, args.workflows, args.concurrency, variant=name,
                               config=configs[name], round=round_)
                after = settled(args.admin_url, manifest, store, pids)
                cost = per_workflow(before, after, row["workflows"])
                print(json.dumps({"variant": name, "round": round_, **{k: cost[k] for k in (
                    "messages", "entries", "bytes_published", "state_writes", "state_write_chars")},
                    "topics": cost["topics"]}), flush=True)
                rates[name].append(row["workflows_per_s"])
    a, b = statistics.median(rates["A"]), statistics.median(rates["B"])
    print(json.dumps({"summary": True, "a": configs["A"], "b": configs["B"], "a_wf_s": rates["A"],
                      "b_wf_s": rates["B"], "median_b_over_a": round(b / a, 3) if a else None}), flush=True)


if __name__ == "__main__":
    main()
