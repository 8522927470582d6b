"""Where an engine Function's and an executor Function's time goes under load, and what a workflow costs.

    python -m bench.profile_pulsar [--workflows 1000] [--concurrency 64] [--batch 100] [--seconds 10]
                                   [--namespace perf] [--events topic|off] [--out DIR]

Deploys the workflow engine and the 'bench' executor as Functions in their own namespace
(``public/perf`` by default, created if missing), with ``bench.state_counter`` among their
modules (it counts each instance's state calls into Redis DB 10), runs a closed loop of
``sequential-3`` workflows while py-spy samples both instances (on-CPU, and with
``--idle`` for the batch thread's wall clock), and prints JSON lines:

- ``load``: throughput and latency of the measured run;
- ``per_workflow``: messages and bytes published per topic (the broker's ``msgInCounter``
  and ``bytesInCounter`` before and after), bytes delivered, state reads and writes and
  their characters per function (the counter's totals before and after);
- ``profile``: per instance, self time grouped by pulsarflow module, Pulsar client,
  fastavro, function-state client, runtime, other, and the top frames; ``wall``: the share
  of the batch thread's samples inside each step of a batch.

Every count is taken over the measured run only (after the warm-up, once the counters
stopped moving); the functions are deleted afterwards. Bounded: at most ``--workflows``
workflows and 600 s.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import redis
import requests

from bench import spy, state_counter
from bench.pulsar import deployment, run_case
from tests.integration.conftest import instance_pids

# Steps of a batch in the batch thread (function name, file part), for the wall-clock shares.
WALL_MARKS = {
    "take (waiting for messages)": ("take", "pulsar/function.py"),
    "decode and admit": ("_admit", "runtime/batch.py"),
    "state read (get_many)": ("_read", "runtime/batch.py"),
    "engine and sends (decide)": ("_decide", "runtime/batch.py"),
    "encode messages": ("encode", "pulsarflow/codec.py"),
    "transport send": ("send", "pulsar/transport.py"),
    "flush (broker acks)": ("flush", "pulsar/transport.py"),
    "state write (put_many)": ("_write", "runtime/batch.py"),
    "acks": ("ack", "pulsar/function.py"),
}


def ensure_namespace(admin_url: str, tenant: str, namespace: str) -> None:
    response = requests.put(f"{admin_url}/admin/v2/namespaces/{tenant}/{namespace}", timeout=30)
    if response.status_code not in (200, 204, 409):
        raise SystemExit(f"cannot create namespace {tenant}/{namespace}: {response.status_code} {response.text}")


def topic_counters(admin_url: str, tenant: str, namespace: str, app: str) -> dict[str, dict[str, int]]:
    """Per topic of the app: messages and bytes in (published) and out (delivered), broker entries added.

    The client's reply topic is non-persistent (named ``client-<id>``): it has no entries.
    """
    session = requests.Session()
    found = {}
    for domain in ("persistent", "non-persistent"):
        base = f"{admin_url}/admin/v2/{domain}/{tenant}/{namespace}"
        for name in session.get(base, timeout=30).json():
            short = name.rsplit("/", 1)[-1]
            if not short.startswith(app + "-"):
                continue
            stats = session.get(f"{base}/{short}/stats", timeout=30)
            if stats.status_code != 200:
                continue
            s = stats.json()
            counters = {k: int(s.get(k, 0)) for k in
                        ("msgInCounter", "bytesInCounter", "msgOutCounter", "bytesOutCounter")}
            if domain == "persistent":
                internal = session.get(f"{base}/{short}/internalStats", timeout=30)
                counters["entries"] = int(internal.json().get("entriesAddedCounter", 0)) if internal.ok else 0
            label = short.removeprefix(app + "-")
            found["client" if label.startswith("client-") else label] = counters
    return found


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process so far (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def parent_pid(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def snapshot(admin_url: str, manifest: Any, store: Any, pids: dict[str, int]) -> dict[str, Any]:
    """Topic counters, the instances' state counters, and CPU seconds of the instances, the broker and this process."""
    t = manifest.topics
    processes = {**pids, "broker (its JVM runs the functions worker)": parent_pid(next(iter(pids.values()))),
                 "bench client": os.getpid()}
    return {"topics": topic_counters(admin_url, t.tenant, t.namespace, t.app),
            "state": {role: state_counter.read(store, pid) for role, pid in pids.items()},
            "cpu": {role: cpu_seconds(pid) for role, pid in processes.items()}}


def settled(admin_url: str, manifest: Any, store: Any, pids: dict[str, int], limit_s: float = 20) -> dict[str, Any]:
    """A snapshot once two taken a second apart agree (markers and acks are written after the answers)."""
    last = snapshot(admin_url, manifest, store, pids)
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        time.sleep(1.0)
        now = snapshot(admin_url, manifest, store, pids)
        if (now["topics"], now["state"]) == (last["topics"], last["state"]):
            return now
        last = now
    return last


def per_workflow(before: dict[str, Any], after: dict[str, Any], workflows: int) -> dict[str, Any]:
    n = max(1, workflows)
    topics = {}
    for topic, counters in after["topics"].items():
        old = before["topics"].get(topic, {})
        delta = {k: v - old.get(k, 0) for k, v in counters.items()}
        if delta["msgInCounter"] or delta["msgOutCounter"]:
            topics[topic] = {"messages": round(delta["msgInCounter"] / n, 2),
                             "entries": round(delta.get("entries", 0) / n, 2),
                             "bytes": round(delta["bytesInCounter"] / n, 1),
                             "delivered": round(delta["msgOutCounter"] / n, 2),
                             "bytes_delivered": round(delta["bytesOutCounter"] / n, 1)}
    state = {role: {k: round((v - before["state"][role][k]) / n, 2) for k, v in counts.items()}
             for role, counts in after["state"].items()}
    cpu = {role: round((v - before["cpu"][role]) / n * 1000, 2) for role, v in after["cpu"].items()}
    return {"workflows": workflows, "topics": topics, "cpu_ms": cpu,
            "messages": round(sum(t["messages"] for t in topics.values()), 2),
            "entries": round(sum(t["entries"] for t in topics.values()), 2),
            "bytes_published": round(sum(t["bytes"] for t in topics.values()), 1),
            "bytes_delivered": round(sum(t["bytes_delivered"] for t in topics.values()), 1),
            "state": state,
            "state_writes": round(sum(s["puts"] for s in state.values()), 2),
            "state_write_chars": round(sum(s["put_chars"] for s in state.values()), 1)}


def profile(pids: dict[str, int], seconds: float, out: Path) -> dict[str, subprocess.Popen[bytes]]:
    """Start py-spy on every instance, on-CPU and with idle threads; the runs to wait for, by name."""
    runs = {}
    for role, pid in pids.items():
        runs[f"{role}.cpu"] = spy.record(pid, seconds, out / f"{role}.cpu.txt")
        runs[f"{role}.wall"] = spy.record(pid, seconds, out / f"{role}.wall.txt", idle=True)
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description="profile the engine and executor Functions under load")
    parser.add_argument("--workflows", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=10.0, help="py-spy sampling time")
    parser.add_argument("--delay", type=float, default=1.0, help="load time before sampling starts")
    parser.add_argument("--namespace", default="perf")
    parser.add_argument("--events", choices=["topic", "off"], default="topic")
    parser.add_argument("--case", default="sequential-3")
    parser.add_argument("--admin-url", default="http://127.0.0.1:8080")
    parser.add_argument("--service-url", default="pulsar://127.0.0.1:6650")
    parser.add_argument("--out", type=Path, default=None, help="where the raw py-spy files go (default: a temp dir)")
    parser.add_argument("--no-profile", action="store_true", help="count only, without py-spy")
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="pulsarflow-profile-"))
    out.mkdir(parents=True, exist_ok=True)
    ensure_namespace(args.admin_url, "public", args.namespace)
    store = redis.Redis.from_url(state_counter.REDIS_URL)
    deploy = deployment(args.admin_url, args.service_url, batch=args.batch, events=args.events,
                        namespace=args.namespace, extra_modules=("bench.state_counter",), prefix="perf")
    with deploy as (manifest, client):
        engine, executor = (f.name for f in manifest.functions)
        pids = {"workflow-engine": instance_pids(engine)[0], "executor": instance_pids(executor)[0]}
        before = settled(args.admin_url, manifest, store, pids)
        runs: dict[str, Any] = {}
        if not args.no_profile:
            def start() -> None:
                time.sleep(args.delay)
                runs.update(profile(pids, args.seconds, out))
            threading.Thread(target=start, daemon=True).start()
        load = run_case(client, args.case, args.workflows, args.concurrency, batch=args.batch, events=args.events,
                        measured="load")
        after = settled(args.admin_url, manifest, store, pids)
        print(json.dumps({"per_workflow": per_workflow(before, after, load["workflows"]), "case": args.case,
                          "batch": args.batch, "events": args.events}), flush=True)
        for name, run in sorted(runs.items()):
            _, err = run.communicate(timeout=args.seconds + 60)
            path = out / f"{name}.txt"
            if not path.exists():
                print(json.dumps({"profile": name, "error": err.decode(errors="replace")[-500:]}), flush=True)
                continue
            if name.endswith(".cpu"):
                print(json.dumps({"profile": name, **spy.summarize(path)}), flush=True)
            else:
                print(json.dumps({"profile": name, "wall_pct": spy.inclusive(path, WALL_MARKS, "pulsarflow-batcher"),
                                  "threads": spy.summarize(path)["by_thread_pct"]}), flush=True)
        print(json.dumps({"raw_profiles": str(out)}), flush=True)


if __name__ == "__main__":
    main()
