"""``pulsarflow worker`` as a plain process: the workflow engine is a Pulsar Function, the
tasks run in worker subprocesses consuming the executor topic.

The journal of ``fault_flows.record`` names the process that ran each step, which shows
the worker (and no function) ran them; a SIGTERM lets the task in hand finish and be
acknowledged, so a second worker picks up only the steps after it.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration import fault_flows
from tests.integration.conftest import SERVICE_URL, connected, deployed_app, instance_pids, wait_for

pytestmark = pytest.mark.pulsar
MODULE = "tests.integration.fault_flows"
ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 90


@pytest.fixture(scope="module")
def app(pulsar_admin, tmp_path_factory):  # type: ignore[no-untyped-def]
    functions = [{"name": "{app}-workflow-engine", "engine": "workflow"}]
    with deployed_app(pulsar_admin, tmp_path_factory.mktemp("worker"), [MODULE], functions,
                      prefix="wrk") as manifest:
        yield manifest


@pytest.fixture(scope="module")
def client(app):  # type: ignore[no-untyped-def]
    with connected(app.topics, (MODULE,)) as connection:
        yield connection


class Worker:
    """A ``pulsarflow worker`` subprocess with its output in a file."""

    def __init__(self, app: Any, log: Path) -> None:
        self.log = log
        command = [sys.executable, "-m", "pulsarflow.cli", "worker", "--service-url", SERVICE_URL,
                   "--modules", MODULE, "--tenant", app.topics.tenant, "--namespace", app.topics.namespace,
                   "--app", app.topics.app]
        with log.open("wb") as out:
            self.process = subprocess.Popen(command, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_serving(self) -> None:
        deadline = time.monotonic() + 60
        while "worker serving" not in self.output():
            assert self.process.poll() is None, f"the worker exited early:\n{self.output()}"
            assert time.monotonic() < deadline, f"the worker did not start:\n{self.output()}"
            time.sleep(0.1)

    def stop(self, timeout: float = 30) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


@pytest.fixture
def workers(app, tmp_path: Path) -> Iterator[list[Worker]]:  # type: ignore[no-untyped-def]
    started: list[Worker] = []

    def start() -> Worker:
        worker = Worker(app, tmp_path / f"worker-{len(started)}.log")
        started.append(worker)
        worker.wait_serving()
        return worker

    yield start  # type: ignore[misc]
    for worker in started:
        worker.kill()


def journal(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_a_worker_process_runs_the_tasks_and_stops_cleanly(client, workers, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    worker = workers()
    path = tmp_path / "journal.jsonl"
    handles = [client.start(fault_flows.chain, str(path), 3, 0.0, id=f"w-{i}-{uuid.uuid4().hex}") for i in range(10)]
    results = {h.id: h.result(timeout=TIMEOUT) for h in handles}
    entries = journal(path)
    assert {e["pid"] for e in entries} == {worker.process.pid}
    assert sorted((e["workflow"], e["position"], e["token"]) for e in entries) == sorted(
        (w, p, t) for w, tokens in results.items() for p, t in enumerate(tokens))
    assert worker.stop() == 0, worker.output()
    assert "worker stopped" in worker.output()


def test_sigterm_finishes_the_task_in_hand_and_a_new_worker_takes_over(client, workers, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    first = workers()
    path = tmp_path / "journal.jsonl"
    handle = client.start(fault_flows.chain, str(path), 4, 1.0, id=f"handover-{uuid.uuid4().hex}")
    deadline = time.monotonic() + TIMEOUT
    while not journal(path) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert first.stop() == 0, first.output()  # stops while the first step sleeps
    second = workers()
    tokens = handle.result(timeout=TIMEOUT)
    entries = journal(path)
    assert [e["position"] for e in entries] == [0, 1, 2, 3], "a step ran twice or not at all"
    assert [e["token"] for e in entries] == tokens
    assert entries[0]["pid"] == first.process.pid
    assert {e["pid"] for e in entries[1:]} == {second.process.pid}
    assert second.stop() == 0, second.output()


def test_a_worker_shares_the_tasks_with_an_executor_function(pulsar_admin, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """One subscription: each step runs once, by the worker or by the function, never by both.

    Deleting the executor function leaves the subscription to the worker (the broker
    refuses to delete a subscription with a connected consumer), which then runs the rest
    once the function's instance has stopped (deletion stops it asynchronously).
    """
    from pulsarflow.pulsar.worker import connect

    functions = [{"name": "{app}-workflow-engine", "engine": "workflow"},
                 {"name": "{app}-executor-faults", "engine": "executor", "service": fault_flows.SERVICE}]
    path = tmp_path / "journal.jsonl"
    with deployed_app(pulsar_admin, tmp_path / "deploy", [MODULE], functions, prefix="wrk") as manifest:
        worker = Worker(manifest, tmp_path / "worker.log")
        connected = connect(SERVICE_URL, modules=[MODULE], topics=manifest.topics)
        try:
            worker.wait_serving()
            shared = run_chains(connected, path, "shared", 10)
            t = manifest.topics
            executor = manifest.functions[1].name
            assert pulsar_admin.delete_function(t.tenant, t.namespace, executor)
            wait_for(lambda: not instance_pids(executor), 60, f"the instance of {executor} to stop")
            alone = run_chains(connected, path, "alone", 3)
            assert worker.stop() == 0, worker.output()
        finally:
            worker.kill()
            connected.close()
    entries = journal(path)
    assert sorted((e["workflow"], e["position"]) for e in entries) == sorted(
        (w, p) for w, tokens in {**shared, **alone}.items() for p in range(len(tokens)))
    assert worker.process.pid in {e["pid"] for e in entries if e["workflow"] in shared}
    assert {e["pid"] for e in entries if e["workflow"] in alone} == {worker.process.pid}


def run_chains(client: Any, path: Path, label: str, count: int) -> dict[str, list[str]]:
    handles = [client.start(fault_flows.chain, str(path), 3, 0.05, id=f"{label}-{i}-{uuid.uuid4().hex}")
               for i in range(count)]
    return {h.id: h.result(timeout=TIMEOUT) for h in handles}
