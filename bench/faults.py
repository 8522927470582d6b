"""Faults on a real standalone: kill -9 mid-run, poison messages under load; what was lost, what ran twice.

    python -m bench.faults [--cases broker,engine,executor,redis,poison] [--workflows 300] [--steps 3]
                           [--step-seconds 0.02] [--batch 100] [--outcomes on|off|on,off]
                           [--admin-url ...] [--service-url ...]
                           [--standalone-script deploy/pulsar-standalone.sh]
                           [--redis-port 6392] [--redis-down-s 2] [--poison-each 3]

Deploys the workflow engine and the 'faults' executor (the journaling tasks of
``tests/integration/fault_flows.py``) under a fresh app name per case, starts the
workflows, and once about half of their steps have run kills with SIGKILL:

- ``broker``: the whole standalone (the process group in its pid file), then starts it
  again with the standalone script on the same data; run it only against a private
  standalone (set the script's PULSAR_HOME_DIR and ports in the environment);
- ``engine``: the workflow engine's function instance (the functions worker restarts it);
- ``executor``: the executor's function instance;
- ``redis``: the app runs with ``state: redis`` on a redis-server this benchmark starts
  (``--redis-port``, append-only file in a directory of its own), killed and started
  again on the same data after ``--redis-down-s``.

``poison`` kills nothing: it runs the load once as it is, then once more with
``--poison-each`` messages of each kind mixed in (1 KB of undecodable bytes, a
10,000-character workflow id, 5,230,000 bytes of garbage, whose letter cannot hold it
whole, and a reply topic the app does not own), and reports how many were dead-lettered
after how many attempts, and the load's time in both runs.

``--outcomes off`` deploys the executor without outcome markers (``runtime/outcomes.py``),
to compare. One JSON line per case and setting: workflows lost (no result within the
deadline), task executions in all and beyond one per step (``duplicate_executions``), the
steps whose execution had returned before the kill and ``rerun_after_kill`` of them that
ran again, the seconds from the kill (and from the restart) until the first answer and
until every workflow had answered. Workflows silent for 20 s are asked for their result
again (an answer sent while the client was disconnected is lost, the workflow is not).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import tempfile
import time
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any

from bench.fault_load import Load, RedisServer, deployed, journal_entries
from pulsarflow.runtime import deadletters
from tests.integration.conftest import instance_pids

KILL_CASES = ("broker", "engine", "executor", "redis")
OVERSIZED = 5_230_000  # garbage close to the broker's 5,242,880: its dead letter cannot hold it whole


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


def step_figures(journal: Path, killed_at: float, step_seconds: float) -> dict[str, Any]:
    """Executions per step from the journal, and the steps done before the kill that ran again."""
    entries = journal_entries(journal)
    by_step: dict[tuple[str, int], list[dict[str, Any]]] = defaultdict(list)
    for entry in entries:
        by_step[(entry["workflow"], entry["position"])].append(entry)
    done_before = {step for step, runs in by_step.items() if min(e["at"] for e in runs) + step_seconds < killed_at}
    rerun = {step for step in done_before if any(e["at"] >= killed_at for e in by_step[step])}
    return {"task_executions": len(entries), "duplicate_executions": len(entries) - len(by_step),
            "steps_done_before_kill": len(done_before), "rerun_after_kill": len(rerun),
            "rerun_fraction": round(len(rerun) / len(done_before), 4) if done_before else None}


def run_kill_case(case: str, args: argparse.Namespace, work: Path, outcomes: str) -> dict[str, Any]:
    redis = RedisServer(args.redis_port, work / "redis") if case == "redis" else None
    try:
        redis_url = redis.start() if redis is not None else None
        with deployed(args, work, redis_url=redis_url, outcomes=outcomes) as (manifest, client):
            engine, executor = (spec.name for spec in manifest.functions)
            journal = work / f"{manifest.topics.app}.jsonl"
            load = Load(client)
            load.start(case, args.workflows, journal, args.steps, args.step_seconds)
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
            elif redis is not None:
                killed_at = redis.kill()
                time.sleep(args.redis_down_s)
                redis.start()
            else:
                raise ValueError(f"unknown case {case!r}")
            restarted_at = time.time()
            load.wait(args.deadline, restarted_at)
            row = {"case": case, "mode": "pulsar", "outcomes": outcomes, "workflows": args.workflows,
                   "steps": args.steps, "batch": args.batch, "workflows_lost": load.lost(),
                   **step_figures(journal, killed_at, args.step_seconds),
                   "answers_resume_s": load.first_answer_after(killed_at),
                   "answers_resume_after_restart_s": load.first_answer_after(restarted_at),
                   "down_s": round(restarted_at - killed_at, 2),
                   "all_done_s": load.all_done_after(killed_at)}
            if case == "broker":
                row["mark_delete_rate_limit"] = mark_delete_rate_limit()
            print(json.dumps(row), flush=True)
            return row
    finally:
        if redis is not None:
            redis.stop()


def poisons(topics: Any, journal: Path, count_each: int) -> list[tuple[str, bytes]]:
    """``count_each`` messages of each kind of poison, interleaved."""
    from pulsarflow.codec import Codec
    from pulsarflow.converter import JsonConverter
    from pulsarflow.interpreter.definitions import workflow_definition
    from pulsarflow.messages import ReplyTo, StartWorkflow, WorkflowEngineMessage
    from tests.integration import fault_flows

    codec, converter = Codec(), JsonConverter()
    name = workflow_definition(fault_flows.chain).name
    reply = ReplyTo(topics.client("bench-poison"), "r")
    stolen = ReplyTo(f"persistent://public/default/stolen-{uuid.uuid4().hex[:8]}", "r")
    args = converter.encode([str(journal), 1, 0.0])

    def start(workflow_id: str, to: ReplyTo = reply, data: bytes = args) -> bytes:
        return codec.encode(WorkflowEngineMessage(f"poison-{workflow_id[:40]}", workflow_id, 0,
                                                  StartWorkflow(name, data, reply=to)))

    out = []
    for i in range(count_each):
        out += [("undecodable", b"not a pulsarflow message " + os.urandom(1000)),
                ("long-id", start("w" * 10_000 + str(i))),
                ("oversized", b"\x02" + os.urandom(OVERSIZED - 1)),
                ("foreign-reply", start(f"poison-foreign-{i}", to=stolen))]
    return out


def run_poison_case(args: argparse.Namespace, work: Path, outcomes: str) -> dict[str, Any]:
    import hashlib

    import pulsar

    from pulsarflow.pulsar.deadletters import PulsarDeadLetters

    with deployed(args, work, outcomes=outcomes) as (manifest, client):
        topics = manifest.topics
        journal = work / f"{topics.app}.jsonl"
        baseline = Load(client)
        began = time.time()
        baseline.start("plain", args.workflows, journal, args.steps, args.step_seconds)
        baseline.wait(args.deadline, began)
        poison = poisons(topics, journal, args.poison_each)
        raw = pulsar.Client(args.service_url)
        try:
            producer = raw.create_producer(topics.workflow_engine, batching_enabled=False, **_schema_option())
            loaded = Load(client)
            every = max(1, args.workflows // max(1, len(poison)))
            began_poisoned, sent = time.time(), 0
            for i in range(args.workflows):
                loaded.start(f"poisoned-{i}", 1, journal, args.steps, args.step_seconds)
                if i % every == 0 and sent < len(poison):
                    producer.send(poison[sent][1], partition_key=f"poison-{sent}")
                    sent += 1
            for _, payload in poison[sent:]:
                producer.send(payload, partition_key="poison-rest")
            loaded.wait(args.deadline, began_poisoned)
            kinds = {hashlib.sha256(payload).hexdigest(): kind for kind, payload in poison}
            letters: list[Any] = []
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                reader = PulsarDeadLetters(raw, topics.dead_letters)
                letters = [letter for _, letter in reader.letters() if letter.sha256 in kinds]
                reader.close()
                if len(letters) >= len(poison):
                    break
                time.sleep(1)
        finally:
            raw.close()
        sent_by_kind: dict[str, int] = defaultdict(int)
        for kind, _ in poison:
            sent_by_kind[kind] += 1
        lettered: dict[str, int] = defaultdict(int)
        how: dict[str, set[str]] = defaultdict(set)
        for letter in letters:
            lettered[kinds[letter.sha256]] += 1
            how[kinds[letter.sha256]].add(f"{letter.kind} after {letter.attempts}"
                                          + (", truncated" if letter.truncated else ""))
        row = {"case": "poison", "mode": "pulsar", "outcomes": outcomes, "workflows": args.workflows,
               "steps": args.steps, "batch": args.batch, "poisons_sent": dict(sent_by_kind),
               "dead_lettered": dict(lettered),
               "max_attempts": max((letter.attempts for letter in letters), default=None),
               "letters": {kind: sorted(found) for kind, found in how.items()},
               "refused_at_once": all(letter.kind in (deadletters.UNDECODABLE, deadletters.REFUSED)
                                      for letter in letters),
               "workflows_lost": baseline.lost() + loaded.lost(),
               "baseline_all_done_s": baseline.all_done_after(began),
               "with_poison_all_done_s": loaded.all_done_after(began_poisoned)}
        print(json.dumps(row), flush=True)
        return row


def _schema_option() -> dict[str, Any]:
    """The topic's schema for the poison producer, where the transport attaches one (a namespace
    may refuse producers without it): poison then comes as from a broken producer."""
    try:
        from pulsarflow.codec import Codec
        from pulsarflow.pulsar.transport import WireSchema  # type: ignore[attr-defined]
    except ImportError:
        return {}
    return {"schema": WireSchema(Codec().wire_schema("WorkflowEngineMessage"))}


def main() -> None:
    parser = argparse.ArgumentParser(description="kill -9 and poison faults on a real Pulsar standalone")
    parser.add_argument("--cases", default="engine,executor,broker")
    parser.add_argument("--workflows", type=int, default=300)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--step-seconds", type=float, default=0.02)
    parser.add_argument("--batch", type=int, default=100, help="messages a function handles together")
    parser.add_argument("--outcomes", default="on", help="outcome markers in the executor: on, off, or on,off")
    parser.add_argument("--deadline", type=float, default=240, help="seconds after the kill to wait for results")
    parser.add_argument("--admin-url", default="http://127.0.0.1:8080")
    parser.add_argument("--service-url", default="pulsar://127.0.0.1:6650")
    parser.add_argument("--standalone-script",
                        default=str(Path(__file__).parent.parent / "deploy/pulsar-standalone.sh"))
    parser.add_argument("--redis-port", type=int, default=6392, help="the redis-server this benchmark starts")
    parser.add_argument("--redis-down-s", type=float, default=2.0, help="seconds Redis stays down")
    parser.add_argument("--poison-each", type=int, default=3, help="poison messages of each kind")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="pf-faults-"))
    for case in args.cases.split(","):
        for outcomes in args.outcomes.split(","):
            if case == "poison":
                run_poison_case(args, work, outcomes)
            elif case in KILL_CASES:
                run_kill_case(case, args, work, outcomes)
            else:
                raise SystemExit(f"unknown case {case!r}: one of {', '.join((*KILL_CASES, 'poison'))}")


if __name__ == "__main__":
    main()
