"""Faults on a real standalone: kill -9 mid-run, then count what was lost and what ran twice.

    python -m bench.faults [--cases broker,engine,executor] [--workflows 300] [--steps 3]
                           [--step-seconds 0.02] [--batch 100] [--admin-url ...] [--service-url ...]
                           [--standalone-script deploy/pulsar-standalone.sh]

Deploys the workflow engine and the 'faults' executor (the journaling tasks of
``tests/integration/fault_flows.py``) under a fresh app name per case, starts the
workflows, and once about half of their steps have run kills with SIGKILL:

- ``broker``: the whole standalone (the process group in its pid file), then starts it
  again with the standalone script on the same data; run it only against a private
  standalone (set the script's PULSAR_HOME_DIR and ports in the environment);
- ``engine``: the workflow engine's function instance (the functions worker restarts it);
- ``executor``: the executor's function instance.

One JSON line per case: workflows lost (no result within the deadline), task executions
in all and beyond one per step (``duplicate_executions``), the steps whose execution had
returned before the kill and ``rerun_after_kill`` of them that ran again, the seconds
from the kill until the first answer after it and until every workflow had answered.
Results are collected from the client's answers, and workflows still silent at the end
are asked for their result (an answer sent while the client was disconnected is lost,
the workflow is not).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any

from pulsarflow.deploy import manifest as mf
from pulsarflow.deploy import tool
from pulsarflow.deploy.admin import PulsarAdmin
from pulsarflow.messages import GetWorkflowResult
from pulsarflow.worker import connect
from tests.integration import fault_flows
from tests.integration.conftest import instance_pids

MODULE = "tests.integration.fault_flows"


def journal_entries(journal: Path) -> list[dict[str, Any]]:
    if not journal.exists():
        return []
    return [json.loads(line) for line in journal.read_bytes().decode().splitlines() if line]


def standalone_home() -> Path:
    """The standalone script's PULSAR_HOME_DIR (its pid file and generated config are below it)."""
    return Path(os.environ.get("PULSAR_HOME_DIR", str(Path.home() / ".cache/pulsarflow/pulsar")))


def kill_broker() -> float:
    """SIGKILL the standalone's process group (its pid file); return the kill time."""
    pid = int((standalone_home() / "run/standalone.pid").read_text().strip())
    killed_at = time.time()
    os.killpg(pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # gone before the script is asked to start it again
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    return killed_at


def mark_delete_rate_limit() -> str | None:
    """The standalone's managedLedgerDefaultMarkDeleteRateLimit, when the script wrote its config."""
    conf = standalone_home() / "run/standalone.conf"
    if not conf.exists():
        return None
    for line in conf.read_text().splitlines():
        if line.startswith("managedLedgerDefaultMarkDeleteRateLimit="):
            return line.split("=", 1)[1].strip()
    return None


def kill_instance(function_name: str) -> float:
    pids = instance_pids(function_name)
    if not pids:
        raise RuntimeError(f"no instance process of {function_name}")
    killed_at = time.time()
    os.kill(pids[0], signal.SIGKILL)
    return killed_at


def run_case(case: str, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    admin = PulsarAdmin(args.admin_url)
    app = f"faults{uuid.uuid4().hex[:6]}"
    manifest = mf.parse({"app": app, "modules": [MODULE], "bundle_library": False, "functions": [
        {"name": f"{app}-workflow-engine", "engine": "workflow", "batch": args.batch},
        {"name": f"{app}-executor-faults", "engine": "executor", "service": fault_flows.SERVICE,
         "batch": args.batch}]})
    tool.apply(admin, manifest, work / app)
    engine, executor = (spec.name for spec in manifest.functions)
    journal = work / f"{app}.jsonl"
    client = connect(args.service_url, modules=[MODULE], topics=manifest.topics)
    answered: dict[str, float] = {}
    lock = threading.Lock()

    def on_answer(answer: Any) -> None:
        with lock:
            answered.setdefault(answer.request_id, time.time())

    client.add_answer_listener(on_answer)
    try:
        # Warm-up: the functions run and the producers are connected before the load starts.
        client.start(fault_flows.chain, str(work / "warmup.jsonl"), 1, 0.0).result(timeout=120)
        handles = [client.start(fault_flows.chain, str(journal), args.steps, args.step_seconds,
                                id=f"{case}-{i}-{uuid.uuid4().hex[:8]}") for i in range(args.workflows)]
        requests = {h.request_id: h for h in handles}
        total_steps = args.workflows * args.steps
        deadline = time.monotonic() + 300
        while len(journal_entries(journal)) < total_steps // 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        if case == "broker":
            killed_at = kill_broker()
            subprocess.run([args.standalone_script, "start"], check=True)
        elif case == "engine":
            killed_at = kill_instance(engine)
        elif case == "executor":
            killed_at = kill_instance(executor)
        else:
            raise ValueError(f"unknown case {case!r}")
        restarted_at = time.time()
        deadline = time.monotonic() + args.deadline
        # Quiet for 20 s: ask every workflow still silent for its result (answers sent while the
        # client was away from the broker are lost with the non-persistent reply topic).
        while time.monotonic() < deadline:
            with lock:
                silent = [h for r, h in requests.items() if r not in answered]
                last = max(answered.values(), default=killed_at)
            if not silent:
                break
            if time.time() - max(last, restarted_at) > 20:
                for request_id in [r for r, h in requests.items() if h in silent]:
                    handle = requests.pop(request_id)
                    reply = client._reply_to()
                    client._send(handle.id, GetWorkflowResult(reply))
                    requests[reply.request_id] = handle
                restarted_at = time.time()
            time.sleep(0.2)
        with lock:
            after = sorted(t for t in answered.values() if t >= killed_at)
            lost = sum(1 for r in requests if r not in answered)
            done_at = max(answered.values(), default=float("nan"))
        entries = journal_entries(journal)
        by_step: dict[tuple[str, int], list[dict[str, Any]]] = defaultdict(list)
        for entry in entries:
            by_step[(entry["workflow"], entry["position"])].append(entry)
        done_before = {step for step, runs in by_step.items()
                       if min(e["at"] for e in runs) + args.step_seconds < killed_at}
        rerun = {step for step in done_before if any(e["at"] >= killed_at for e in by_step[step])}
        row = {"case": case, "mode": "pulsar", "workflows": args.workflows, "steps": args.steps,
               "batch": args.batch, "workflows_lost": lost, "task_executions": len(entries),
               "duplicate_executions": len(entries) - len(by_step),
               "steps_done_before_kill": len(done_before), "rerun_after_kill": len(rerun),
               "rerun_fraction": round(len(rerun) / len(done_before), 4) if done_before else None,
               "answers_resume_s": round(after[0] - killed_at, 2) if after else None,
               "all_done_s": round(done_at - killed_at, 2) if lost == 0 else None,
               "mark_delete_rate_limit": mark_delete_rate_limit()}
        print(json.dumps(row), flush=True)
        return row
    finally:
        client.connection.close()  # type: ignore[attr-defined]  # the Pulsar connection has one
        for spec in manifest.functions:
            try:
                admin.delete_function(manifest.topics.tenant, manifest.topics.namespace, spec.name)
            except Exception as error:  # a failed clean-up must not hide the figures
                print(f"# could not delete {spec.name}: {error}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description="kill -9 faults on a real Pulsar standalone")
    parser.add_argument("--cases", default="engine,executor,broker")
    parser.add_argument("--workflows", type=int, default=300)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--step-seconds", type=float, default=0.02)
    parser.add_argument("--batch", type=int, default=100, help="messages a function handles together")
    parser.add_argument("--deadline", type=float, default=240, help="seconds after the kill to wait for results")
    parser.add_argument("--admin-url", default="http://127.0.0.1:8080")
    parser.add_argument("--service-url", default="pulsar://127.0.0.1:6650")
    parser.add_argument("--standalone-script",
                        default=str(Path(__file__).parent.parent / "deploy/pulsar-standalone.sh"))
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="pf-faults-"))
    for case in args.cases.split(","):
        run_case(case, args, work)


if __name__ == "__main__":
    main()
