"""A run longer than a head holds, on Pulsar function state: its chunks are read back by the
engine (the run completes) and by the live replay gate through the admin REST API."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from pulsarflow.codec import Codec
from pulsarflow.deploy.live import AdminStateContext
from pulsarflow.deploy.running import ListedIndex, collect
from pulsarflow.messages import WorkflowState
from pulsarflow.pulsar.function_state import FunctionStateStore
from pulsarflow.runtime.history import CHUNK_ENTRIES
from tests.integration.conftest import ADMIN_URL, connected, deployed_app, wait_for

pytestmark = pytest.mark.pulsar
STEPS = 2 * CHUNK_ENTRIES + 5
SOURCE = f'''
import pulsarflow as pf


@pf.workflow(name="long_wait")
async def long_wait(ctx: pf.WorkflowContext) -> int:
    total = 0
    for i in range({STEPS}):
        total += await ctx.side_effect(lambda: 1)
    await ctx.wait_signal("go")
    return total
'''


def test_a_long_run_keeps_its_chunks_in_function_state_and_the_gate_reads_them(
        pulsar_admin: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    module = f"longrun_{time.time_ns()}"
    (tmp_path / f"{module}.py").write_text(SOURCE, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    functions = [{"name": "{app}-workflow-engine", "engine": "workflow", "config": {"events": "off"}}]
    with deployed_app(pulsar_admin, tmp_path / "out", [module], functions, prefix="hc") as manifest, \
            connected(manifest.topics, modules=()) as client:
        t = manifest.topics
        store = FunctionStateStore(AdminStateContext(ADMIN_URL, t.tenant, t.namespace, manifest.functions[0].name))
        workflow_id = f"long-{time.time_ns()}"
        handle = client.start("long_wait", id=workflow_id)

        def waiting() -> bool:
            stored = store.get(workflow_id)
            head = Codec().decode(WorkflowState, stored.value) if stored is not None else None
            return head is not None and head.history_commands >= STEPS + 1

        wait_for(waiting, 120, f"{workflow_id} waiting for its signal after {STEPS} steps")
        runs = collect(ListedIndex((workflow_id,)), store)  # type: ignore[arg-type]
        assert runs.unreadable == [], runs.unreadable
        [state] = runs.states
        assert len(state.commands) == STEPS + 1 and [c.kind for c in state.commands][-1] == "SIGNAL"
        client.signal(workflow_id, "go")
        assert handle.result(timeout=120) == STEPS
