"""Engines as Pulsar Functions handling their messages in batches (``batch:`` in functions.yaml).

The deploy tool turns autoAck off for such a function; it acknowledges each message once
its batch is published and saved. Workflows of every kind run to their results on
function state, and killing the workflow engine's instance while many workflows are in
flight loses none of them (what it had queued or half-handled comes back).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

import pulsarflow as pf
from tests.e2e import flows
from tests.integration.conftest import connected, deployed_app
from tests.integration.test_faults import kill_and_await_restart, running_status

pytestmark = pytest.mark.pulsar
TIMEOUT = 120


@pytest.fixture(scope="module")
def app(pulsar_admin, tmp_path_factory) -> Iterator[Any]:  # type: ignore[no-untyped-def]
    functions = [
        {"name": "{app}-workflow-engine", "engine": "workflow", "batch": 100},
        {"name": "{app}-tag-engine", "engine": "tag", "batch": 100},
        {"name": "{app}-executor-default", "engine": "executor", "service": "default", "batch": 100},
        {"name": "{app}-executor-geometry", "engine": "executor", "service": "geometry", "batch": 100},
    ]
    with deployed_app(pulsar_admin, tmp_path_factory.mktemp("batched"), ["tests.e2e.flows"], functions,
                      prefix="bat") as manifest:
        yield manifest


@pytest.fixture(scope="module")
def client(app):  # type: ignore[no-untyped-def]
    with connected(app.topics) as connection:
        yield connection


def test_the_deploy_turns_auto_ack_off_for_batching_functions(app, pulsar_admin) -> None:  # type: ignore[no-untyped-def]
    t = app.topics
    config = pulsar_admin.function(t.tenant, t.namespace, app.functions[0].name)
    assert config["autoAck"] is False and config["userConfig"]["batch"] == 100


def test_workflows_of_every_kind(client) -> None:  # type: ignore[no-untyped-def]
    handles = [client.start(flows.sequence, 4) for _ in range(30)]
    fan = client.start(flows.fan, 6)
    child = client.start(flows.parent, 1)
    timed = client.start(flows.nap, 2.0)
    waiting = client.start(flows.approval, 60.0, id=f"approval-b-{time.time_ns()}")
    assert [h.result(timeout=TIMEOUT) for h in handles] == [6] * 30
    assert fan.result(timeout=TIMEOUT) == [2 * i for i in range(6)]
    assert child.result(timeout=TIMEOUT) == {"a": 0, "b": 1, "c": 3}
    assert timed.result(timeout=TIMEOUT) >= 2.0
    client.signal(waiting.id, "decision", "yes", timeout=TIMEOUT)
    assert waiting.result(timeout=TIMEOUT) == "got yes"
    doomed = client.start(flows.inbox, "x", tags=[f"b-{time.time_ns()}"])
    time.sleep(1.0)
    client.cancel(doomed.id, "batched cancel", timeout=TIMEOUT)
    with pytest.raises(pf.WorkflowCancelledError, match="batched cancel"):
        doomed.result(timeout=TIMEOUT)


def test_killing_the_batching_engine_loses_no_workflow(app, client) -> None:  # type: ignore[no-untyped-def]
    handles = [client.start(flows.sequence, 6) for _ in range(60)]
    time.sleep(0.5)  # batches are in flight
    kill_and_await_restart(app.functions[0].name)
    assert [h.result(timeout=TIMEOUT) for h in handles] == [15] * 60


def test_two_batching_engine_instances_share_the_keys(pulsar_admin, tmp_path_factory) -> None:  # type: ignore[no-untyped-def]
    functions = [
        {"name": "{app}-workflow-engine", "engine": "workflow", "batch": 100, "parallelism": 2},
        {"name": "{app}-executor-default", "engine": "executor", "service": "default", "batch": 100},
    ]
    with deployed_app(pulsar_admin, tmp_path_factory.mktemp("batched2"), ["tests.e2e.flows"], functions,
                      prefix="bap") as manifest:
        running_status(pulsar_admin, manifest.topics, manifest.functions[0].name, 2)
        with connected(manifest.topics) as client:
            handles = [client.start(flows.sequence, 5) for _ in range(80)]
            assert [h.result(timeout=TIMEOUT) for h in handles] == [10] * 80
