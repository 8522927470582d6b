"""The engines deployed as Pulsar Functions on a real standalone, driven by a Pulsar client."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import time
from pathlib import Path

import pytest

import pulsarflow as pf
from pulsarflow.codec import Codec
from pulsarflow.messages import WorkflowState
from tests.e2e import flows

pytestmark = pytest.mark.pulsar
TIMEOUT = 90


def test_deploy_reports_schemas_and_functions(deployment) -> None:  # type: ignore[no-untyped-def]
    manifest, report, out = deployment
    assert any("workflow-engine: version" in line for line in report)
    assert sum(line.endswith(": created") for line in report) == len(manifest.functions) == 4
    assert {p.name for p in out.glob("*.yaml")} == {f"{s.name}.yaml" for s in manifest.functions}


def test_sequential_tasks(client) -> None:  # type: ignore[no-untyped-def]
    assert client.start(flows.sequence, 4).result(timeout=TIMEOUT) == 6


def test_parallel_tasks_and_async_dataclass_task(client) -> None:  # type: ignore[no-untyped-def]
    assert client.start(flows.fan, 6).result(timeout=TIMEOUT) == [2 * i for i in range(6)]
    assert client.start(flows.points, flows.Point(1, 1)).result(timeout=TIMEOUT) == flows.Point(6, 1)


def test_child_workflows(client) -> None:  # type: ignore[no-untyped-def]
    assert client.start(flows.parent, 1).result(timeout=TIMEOUT) == {"a": 0, "b": 1, "c": 3}


def test_a_timer_really_waits(client) -> None:  # type: ignore[no-untyped-def]
    started = time.monotonic()
    slept = client.start(flows.nap, 3.0).result(timeout=TIMEOUT)
    assert slept >= 3.0 and time.monotonic() - started >= 2.9


def test_signal(client) -> None:  # type: ignore[no-untyped-def]
    handle = client.start(flows.approval, 60.0, id=f"approval-{time.time_ns()}")
    time.sleep(1.0)
    client.signal(handle.id, "decision", "yes", timeout=TIMEOUT)
    assert handle.result(timeout=TIMEOUT) == "got yes"


def test_retry_after_failures(client) -> None:  # type: ignore[no-untyped-def]
    key = f"k{time.time_ns()}"
    assert client.start(flows.retrying, key, 2).result(timeout=TIMEOUT) == f"{key} ok after 3"


def test_failure_carries_the_cause_chain(client) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(pf.WorkflowFailedError) as info:
        client.start(flows.non_retryable, "nr").result(timeout=TIMEOUT)
    assert [e.type for e in info.value.error.chain()][:2] == ["TaskFailedError", "KeyError"]


def test_function_state_holds_the_workflow_state(client, deployment, pulsar_admin) -> None:  # type: ignore[no-untyped-def]
    manifest, _, _ = deployment
    workflow_id = f"stateful-{time.time_ns()}"
    assert client.start(flows.sequence, 2, id=workflow_id).result(timeout=TIMEOUT) == 1
    t = manifest.topics

    def saved() -> tuple[int, WorkflowState] | None:  # the answer goes out before the state is saved
        stored = pulsar_admin.function_state(t.tenant, t.namespace, manifest.functions[0].name, workflow_id)
        version, _, encoded = (stored or {}).get("stringValue", "").partition(":")
        return (int(version), Codec().decode(WorkflowState, base64.b64decode(encoded))) if encoded else None

    deadline = time.monotonic() + 10
    while (found := saved()) is None or found[0] < 3:
        assert time.monotonic() < deadline, f"state of {workflow_id} not saved: {found}"
        time.sleep(0.05)
    version, state = found
    assert (state.workflow_id, state.status, len(state.commands)) == (workflow_id, "COMPLETED", 2)
    assert version == 3  # start, then one write per completed task


def test_incompatible_schema_update_is_refused(deployment, pulsar_admin, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from pulsarflow import schemas
    from pulsarflow.deploy import tool
    from pulsarflow.errors import SchemaError

    manifest, _, _ = deployment
    root = tmp_path / "schemas"
    root.mkdir()
    for path in schemas.schema_dir().glob("*.avsc"):
        (root / path.name).write_text(path.read_text())
    changed = json.loads((root / "TaskCompleted.avsc").read_text())
    changed["fields"].append({"name": "priority", "type": "int", "doc": "no default"})
    (root / "TaskCompleted.avsc").write_text(json.dumps(changed))
    with pytest.raises(SchemaError, match=r"TaskCompleted\.priority: required by the reader"):
        tool.upload_schemas(pulsar_admin, manifest, Codec(root))


def test_pulsar_admin_lists_functions_and_schemas(deployment) -> None:  # type: ignore[no-untyped-def]
    manifest, _, _ = deployment
    home = os.environ.get("PULSAR_DIST")
    if not home:
        pytest.skip("PULSAR_DIST (the unpacked distribution) is not set")
    admin = [f"{home}/bin/pulsar-admin", "--admin-url", "http://127.0.0.1:8080"]
    listed = subprocess.run(admin + ["functions", "list", "--tenant", "public", "--namespace", "default"],
                            capture_output=True, text=True, check=True, timeout=120).stdout.split()
    assert {s.name for s in manifest.functions} <= set(listed)
    schema = subprocess.run(admin + ["schemas", "get", manifest.topics.workflow_engine],
                            capture_output=True, text=True, check=True, timeout=120).stdout
    assert "WorkflowEngineMessage" in schema and "AVRO" in schema
