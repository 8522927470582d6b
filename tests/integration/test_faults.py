"""Faults on a real standalone: killed function instances and redelivered messages.

The engines run as Pulsar Functions under a fresh app name (see ``deployed_app``); the
tasks of ``fault_flows`` journal every execution to a file, and each workflow's result
lists the token of the execution whose outcome it recorded. What is asserted, and why:

- **No workflow is lost**: every started workflow completes with one token per step.
- **No completed step is repeated**: before the kill, the workflow engine's function
  state is read back for every workflow in flight; a step that has an outcome there is
  *recorded*. Afterwards (a) its outcome in the final result is the very token recorded
  before the kill, and (b) no execution of it starts after the read-back. Steps not yet
  recorded may run again: executors are at-least-once, and an engine killed between
  publishing a step and saving its state publishes that step again on redelivery.
- When an *executor* is killed, (b) is relaxed exactly as far as at-least-once
  delivery requires: a recorded step may start again only as the redelivery of an
  execution of the killed process in its last moments (its acknowledgement was still
  in the client's ack buffer), with the same attempt number.
- **A duplicated message has one effect**: the exact bytes of a start, a signal, a task
  completion or a task dispatch are published again onto their topic; the workflow's
  result and the journal show one effect.
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pulsarflow.codec import Codec
from pulsarflow.messages import (
    SendSignal,
    StartWorkflow,
    TaskCompleted,
    TaskExecutorMessage,
    WorkflowEngineMessage,
)
from pulsarflow.pulsar.function_state import FunctionStateStore
from pulsarflow.pulsar.worker import pulsar_client_of
from tests.integration import fault_checks, fault_flows
from tests.integration.conftest import SERVICE_URL, connected, deployed_app, instance_pids, wait_for
from tests.integration.fault_checks import executions

pytestmark = pytest.mark.pulsar
MODULE = "tests.integration.fault_flows"
TIMEOUT = 120
WORKFLOWS, STEPS, STEP_SECONDS = 20, 6, 0.05
# Executions of the killed executor this recent may be redelivered: the client acknowledges
# in groups every 100 ms; the margin covers a task (STEP_SECONDS) and a loaded machine.
ACK_WINDOW_S = 2.0


@pytest.fixture(scope="module")
def app(pulsar_admin, tmp_path_factory):  # type: ignore[no-untyped-def]
    functions = [{"name": "{app}-workflow-engine", "engine": "workflow"},
                 {"name": "{app}-executor-faults", "engine": "executor", "service": fault_flows.SERVICE}]
    with deployed_app(pulsar_admin, tmp_path_factory.mktemp("faults"), [MODULE], functions,
                      prefix="fault") as manifest:
        yield manifest


@pytest.fixture(scope="module")
def client(app):  # type: ignore[no-untyped-def]
    with connected(app.topics, (MODULE,)) as connection:
        yield connection


# -- processes ----------------------------------------------------------------------------


def kill_and_await_restart(function_name: str, instances: int = 1) -> tuple[int, float]:
    """SIGKILL one instance of the function; return its pid and the kill time once the worker restarted it."""
    def all_started() -> list[int] | None:
        pids = instance_pids(function_name)
        return pids if len(pids) == instances else None

    before = wait_for(all_started, 60, f"{instances} instance process(es) of {function_name}")
    pid = before[0]
    killed_at = time.time()
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: len(set(instance_pids(function_name)) - set(before)) == 1, 90,
             f"the functions worker to restart {function_name}")
    assert pid not in instance_pids(function_name)
    return pid, killed_at


def running_status(admin: Any, topics: Any, function_name: str, instances: int) -> dict[str, Any]:
    def all_running() -> dict[str, Any] | None:
        status = admin.function_status(topics.tenant, topics.namespace, function_name)
        return status if status.get("numRunning") == instances else None

    return dict(wait_for(all_running, 60, f"{instances} running instance(s) of {function_name}"))


# -- recorded outcomes --------------------------------------------------------------------


class _AdminStateContext:
    """The admin REST API's view of a function's state, as the Context the store reads through."""

    def __init__(self, admin: Any, app: Any, function_name: str) -> None:
        self.admin, self.topics, self.function_name = admin, app.topics, function_name

    def get_state(self, key: str) -> bytes | None:
        found = self.admin.function_state(self.topics.tenant, self.topics.namespace, self.function_name, key)
        return None if found is None else str(found.get("stringValue") or "").encode()


def recorded_tokens(admin: Any, app: Any, workflow_ids: list[str]) -> dict[str, dict[int, str]]:
    """The recorded outcomes, read from the engine's function state through the admin API."""
    return fault_checks.recorded_tokens(FunctionStateStore(_AdminStateContext(admin, app, app.functions[0].name)),
                                        workflow_ids)


def run_and_kill(client: Any, admin: Any, app: Any, journal: Path, victim: str, instances: int = 1
                 ) -> dict[str, Any]:
    """Start the workflows, kill ``victim`` mid-run, wait for every result; return what was observed."""
    handles = [client.start(fault_flows.chain, str(journal), STEPS, STEP_SECONDS, id=f"{victim}-{i}-{uuid.uuid4().hex}")
               for i in range(WORKFLOWS)]
    wait_for(lambda: journal.exists() and len(journal.read_bytes().splitlines()) >= WORKFLOWS * 2, TIMEOUT,
             "the workflows to make progress")
    recorded = recorded_tokens(admin, app, [h.id for h in handles])
    offset = journal.stat().st_size
    pid, killed_at = kill_and_await_restart(victim, instances)
    results = {h.id: h.result(timeout=TIMEOUT) for h in handles}
    return {"recorded": recorded, "offset": offset, "pid": pid, "killed_at": killed_at, "results": results}


def check_no_loss_and_stable_outcomes(observed: dict[str, Any], journal: Path) -> None:
    fault_checks.check_no_loss_and_stable_outcomes(observed["recorded"], observed["results"], journal, STEPS,
                                                   "the kill")


# -- killed instances ---------------------------------------------------------------------


def test_killing_the_workflow_engine_loses_nothing_and_repeats_no_recorded_step(  # type: ignore[no-untyped-def]
        client, pulsar_admin, app, tmp_path: Path) -> None:
    journal = tmp_path / "journal.jsonl"
    observed = run_and_kill(client, pulsar_admin, app, journal, app.functions[0].name)
    check_no_loss_and_stable_outcomes(observed, journal)
    after = executions(journal, observed["offset"])
    repeated = sorted((w, p) for (w, p) in after if p in observed["recorded"][w])
    assert repeated == [], f"recorded steps ran again after the engine was killed: {repeated}"


def test_killing_an_executor_loses_nothing_and_redelivers_only_unacknowledged_steps(  # type: ignore[no-untyped-def]
        client, pulsar_admin, app, tmp_path: Path) -> None:
    journal = tmp_path / "journal.jsonl"
    observed = run_and_kill(client, pulsar_admin, app, journal, app.functions[1].name)
    check_no_loss_and_stable_outcomes(observed, journal)
    before = executions(journal)
    for (workflow_id, position), entries in executions(journal, observed["offset"]).items():
        if position not in observed["recorded"][workflow_id]:
            continue
        first = before[(workflow_id, position)][0]
        assert first["pid"] == observed["pid"] and first["at"] >= observed["killed_at"] - ACK_WINDOW_S, (
            f"{workflow_id} step {position} was recorded, then ran again though its execution was "
            f"acknowledged: {before[(workflow_id, position)]}")
        assert {e["attempt"] for e in entries} == {first["attempt"]}


def test_killing_one_of_two_engine_instances_loses_nothing_and_repeats_no_recorded_step(  # type: ignore[no-untyped-def]
        pulsar_admin, tmp_path: Path) -> None:
    """Key_Shared hands the dead instance's workflows to the other one, then back after the restart."""
    from pulsarflow.pulsar.worker import connect

    functions: list[dict[str, Any]] = [{"name": "{app}-workflow-engine", "engine": "workflow", "parallelism": 2},
                 {"name": "{app}-executor-faults", "engine": "executor", "service": fault_flows.SERVICE}]
    with deployed_app(pulsar_admin, tmp_path / "deploy", [MODULE], functions, prefix="fault") as manifest:
        t, engine = manifest.topics, manifest.functions[0].name
        status = running_status(pulsar_admin, t, engine, 2)
        # Deployed at one instance, then updated to two: no instance lost the state-table race.
        assert [i["status"]["numRestarts"] for i in status["instances"]] == [0, 0]
        connected = connect(SERVICE_URL, modules=[MODULE], topics=t)
        try:
            journal = tmp_path / "journal.jsonl"
            observed = run_and_kill(connected, pulsar_admin, manifest, journal, engine, instances=2)
        finally:
            connected.close()
    check_no_loss_and_stable_outcomes(observed, journal)
    after = executions(journal, observed["offset"])
    repeated = sorted((w, p) for (w, p) in after if p in observed["recorded"][w])
    assert repeated == [], f"recorded steps ran again after an engine instance was killed: {repeated}"


# -- redelivered messages -----------------------------------------------------------------


def published(pulsar_client: Any, topic: str, match: Callable[[bytes], bool]) -> tuple[bytes, str]:
    """The bytes and key of the first message on ``topic`` that ``match``es (read from the start)."""
    import pulsar

    reader = pulsar_client.create_reader(topic, pulsar.MessageId.earliest)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                message = reader.read_next(timeout_millis=500)
            except pulsar.Timeout:
                continue
            if match(message.data()):
                return bytes(message.data()), str(message.partition_key())
    finally:
        reader.close()
    raise AssertionError(f"no matching message on {topic}")


def publish_again(client: Any, topic: str, key: str, data: bytes, times: int) -> None:
    transport = client.connection.transport
    for _ in range(times):
        transport.send(topic, key, data)
    transport.flush()


def engine_message(workflow_id: str, kind: type, where: Callable[[Any], bool] = lambda m: True
                   ) -> Callable[[bytes], bool]:
    codec = Codec()

    def match(data: bytes) -> bool:
        envelope = codec.decode(WorkflowEngineMessage, data)
        return envelope.workflow_id == workflow_id and isinstance(envelope.message, kind) and where(envelope.message)

    return match


def test_a_duplicated_start_runs_the_workflow_once(client, app, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    journal = tmp_path / "journal.jsonl"
    handle = client.start(fault_flows.chain, str(journal), 3, 0.3, id=f"dup-start-{uuid.uuid4().hex}")
    topic = app.topics.workflow_engine
    data, key = published(pulsar_client_of(client), topic, engine_message(handle.id, StartWorkflow))
    publish_again(client, topic, key, data, 2)
    tokens = handle.result(timeout=TIMEOUT)
    ran = executions(journal)
    assert {p: [e["token"] for e in ran[(handle.id, p)]] for p in range(3)} == {p: [t] for p, t in enumerate(tokens)}


def test_a_duplicated_signal_has_one_effect(client, app) -> None:  # type: ignore[no-untyped-def]
    handle = client.start(fault_flows.collect, 2, id=f"dup-signal-{uuid.uuid4().hex}")
    client.signal(handle.id, "item", "a", timeout=TIMEOUT)
    topic = app.topics.workflow_engine
    data, key = published(pulsar_client_of(client), topic, engine_message(handle.id, SendSignal))
    publish_again(client, topic, key, data, 2)
    client.signal(handle.id, "item", "b", timeout=TIMEOUT)
    assert handle.result(timeout=TIMEOUT) == ["a", "b"]


def test_a_duplicated_task_completion_has_one_effect(client, app, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    journal = tmp_path / "journal.jsonl"
    handle = client.start(fault_flows.chain, str(journal), 2, 1.0, id=f"dup-done-{uuid.uuid4().hex}")
    wait_for(lambda: (handle.id, 1) in executions(journal), TIMEOUT,
             "the second step to start")
    topic = app.topics.workflow_engine
    done = engine_message(handle.id, TaskCompleted, lambda m: m.position == 0)
    data, key = published(pulsar_client_of(client), topic, done)
    publish_again(client, topic, key, data, 2)
    tokens = handle.result(timeout=TIMEOUT)
    ran = executions(journal)
    assert [[e["token"] for e in ran[(handle.id, p)]] for p in range(2)] == [[t] for t in tokens]


def executor_backlog(app: Any) -> int:
    """Messages of the executor's subscription not yet acknowledged (delivered or not)."""
    import requests

    from tests.integration.conftest import ADMIN_URL

    topic = app.topics.executor(fault_flows.SERVICE).replace("://", "/")
    stats = requests.get(f"{ADMIN_URL}/admin/v2/{topic}/stats", timeout=10).json()
    subscription = stats["subscriptions"][f"{app.topics.app}-executor"]
    return int(subscription["msgBacklog"]) + int(subscription.get("unackedMessages", 0))


def test_a_duplicated_task_dispatch_runs_once_and_records_one_outcome(client, app, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    journal = tmp_path / "journal.jsonl"
    handle = client.start(fault_flows.chain, str(journal), 2, 1.0, id=f"dup-task-{uuid.uuid4().hex}")
    topic = app.topics.executor(fault_flows.SERVICE)
    codec = Codec()

    def first_step(data: bytes) -> bool:
        envelope = codec.decode(TaskExecutorMessage, data)
        return envelope.message.workflow_id == handle.id and envelope.message.position == 0

    data, key = published(pulsar_client_of(client), topic, first_step)
    publish_again(client, topic, key, data, 1)
    tokens = handle.result(timeout=TIMEOUT)
    wait_for(lambda: executor_backlog(app) == 0, 30, "the executor to have handled the duplicated dispatch")
    ran = executions(journal)
    # The executor remembers the attempt it completed (an outcome marker): the duplicate
    # publishes the recorded outcome again instead of running the task; the workflow keeps
    # one outcome of step 0 and dispatches step 1 once.
    assert [e["token"] for e in ran[(handle.id, 0)]] == [tokens[0]]
    assert [e["token"] for e in ran[(handle.id, 1)]] == [tokens[1]]
