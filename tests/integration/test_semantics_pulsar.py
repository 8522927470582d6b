"""The semantics that touch messages, on a real standalone with the engines as Pulsar Functions:
signals never lost to an abandoned wait, no retry after its workflow closed, a blocked run that
resumes by itself once fixed code is there."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pulsarflow.messages import client as status
from tests.e2e import pulsar_semantics_flows as flows
from tests.integration.conftest import connected, deployed_app, wait_for

pytestmark = pytest.mark.pulsar
TIMEOUT = 90
MODULES = ["tests.e2e.pulsar_semantics_flows"]
FUNCTIONS = [
    {"name": "{app}-workflow-engine", "engine": "workflow"},
    {"name": "{app}-tag-engine", "engine": "tag"},
    {"name": "{app}-executor-default", "engine": "executor", "service": "default"},
]


@pytest.fixture(scope="module")
def client(pulsar_admin: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    folder = tmp_path_factory.mktemp("sem")
    with deployed_app(pulsar_admin, folder, MODULES, FUNCTIONS, prefix="sem") as manifest, \
            connected(manifest.topics, tuple(MODULES)) as shared:
        yield shared


def test_signals_reach_a_heartbeat_loop_after_its_timer_won(client: Any) -> None:
    workflow_id = f"hb-{time.time_ns()}"
    handle = client.start(flows.heartbeats, 3, 1.0, id=workflow_id)
    time.sleep(4.5)  # the heartbeat wins a few times: each leaves an abandoned wait for "msg"
    for i in range(3):
        client.signal(workflow_id, "msg", f"m{i}", timeout=TIMEOUT)
        time.sleep(1.5)
    assert handle.result(timeout=TIMEOUT) == ["m0", "m1", "m2"]


def test_a_retry_does_not_run_after_its_workflow_completed(client: Any, tmp_path: Path) -> None:
    marker = tmp_path / "attempts"
    handle = client.start(flows.outlives_its_retry, str(marker), id=f"outlives-{time.time_ns()}")
    assert handle.result(timeout=TIMEOUT) == "None"  # the sleep won; the task's retry is due 6 s later
    wait_for(marker.exists, 30, "the first attempt")
    time.sleep(10)
    assert marker.read_text().splitlines() == ["attempt 1"]


def test_a_blocked_run_resumes_by_itself_once_fixed(client: Any, tmp_path: Path) -> None:
    flag = tmp_path / "fixed"
    workflow_id = f"buggy-{time.time_ns()}"
    handle = client.start(flows.buggy_until_flag, str(flag), id=workflow_id)
    blocked = wait_for(lambda: client.status(workflow_id, timeout=TIMEOUT).blocked, 60, "the run to block")
    assert blocked.reason.type == "KeyError" and client.status(workflow_id).status == status.RUNNING
    flag.write_text("the fix is deployed")
    assert handle.result(timeout=TIMEOUT) == "fixed"
    assert client.status(workflow_id).blocked is None
