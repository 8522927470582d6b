"""The replay gate on a real standalone: ``pulsarflow deploy apply`` with workflows in flight.

A workflow waits for a signal; ``deploy apply`` (the CLI, in its own process, as a user
runs it) of code that diverges at that step is refused with the divergence printed and
leaves the function as it was; with ``--force`` it goes through; a compatible change (a
patch marker) goes through and the run completes under it. Which code is deployed is told
by a marker in the function's userConfig.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from pulsarflow.codec import Codec
from pulsarflow.deploy.live import AdminStateContext
from pulsarflow.messages import WorkflowState
from pulsarflow.pulsar.function_state import FunctionStateStore
from tests.integration.conftest import ADMIN_URL, SERVICE_URL, connected, deployed_app, wait_for

pytestmark = pytest.mark.pulsar
TIMEOUT = 150
ROOT = Path(__file__).resolve().parents[2]

WAITS = '''
import pulsarflow as pf


@pf.workflow(name="gated")
async def gated(ctx: pf.WorkflowContext) -> str:
{before}    await ctx.wait_signal("go")
    return "{result}"
'''
V1 = WAITS.format(before="", result="v1")
DIVERGING = WAITS.format(before="    await ctx.sleep(0.01)\n", result="diverged")
COMPATIBLE = WAITS.format(before='    if ctx.patched("nap"):\n        await ctx.sleep(0.01)\n', result="v2")


def write_app(folder: Path, module: str, source: str, app: str, mark: str) -> Path:
    (folder / f"{module}.py").write_text(source, encoding="utf-8")
    manifest = folder / "functions.yaml"
    manifest.write_text(f"app: {app}\nmodules: [{module}]\nbundle_library: false\nfunctions:\n"
                        f"  - {{name: {app}-workflow-engine, engine: workflow, config: {{mark: {mark}}}}}\n",
                        encoding="utf-8")
    return manifest


def deploy(folder: Path, *options: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "pulsarflow.cli", "deploy", "apply", "--manifest", str(folder / "functions.yaml"),
               "--out", str(folder / "out"), "--admin-url", ADMIN_URL, "--service-url", SERVICE_URL, *options]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, timeout=600)


def mark(admin: Any, manifest: Any) -> str:
    t = manifest.topics
    return str(admin.function(t.tenant, t.namespace, manifest.functions[0].name)["userConfig"]["mark"])


def restarted(admin: Any, manifest: Any) -> bool:
    """The function's instance is a new process (an update restarts it): it has received nothing yet."""
    t = manifest.topics
    status = admin.function_status(t.tenant, t.namespace, manifest.functions[0].name)
    instances = status.get("instances") or []
    return status.get("numRunning") == 1 and all(i["status"].get("numReceived") == 0 for i in instances)


def waiting(admin: Any, manifest: Any, workflow_id: str) -> bool:
    context = AdminStateContext(ADMIN_URL, manifest.topics.tenant, manifest.topics.namespace,
                                manifest.functions[0].name)
    stored = FunctionStateStore(context).get(workflow_id)
    state = Codec().decode(WorkflowState, stored.value) if stored is not None else None
    return state is not None and [c.kind for c in state.commands] == ["SIGNAL"]


def test_deploy_apply_refuses_code_that_breaks_a_waiting_workflow(pulsar_admin, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    module = f"gated_{uuid.uuid4().hex[:6]}"
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / f"{module}.py").write_text(V1, encoding="utf-8")
    functions = [{"name": "{app}-workflow-engine", "engine": "workflow", "config": {"mark": "v1"}}]
    with deployed_app(pulsar_admin, tmp_path / "first", [module], functions, prefix="gate") as manifest, \
            connected(manifest.topics, modules=()) as client:
        app = manifest.topics.app
        ids = [f"gate-{n}-{time.time_ns()}" for n in range(2)] + [f"gate/{time.time_ns()} x"]
        handles = {wid: client.start("gated", id=wid) for wid in ids}
        for wid in ids:
            wait_for(partial(waiting, pulsar_admin, manifest, wid), 60, f"{wid} waiting for its signal")

        write_app(tmp_path, module, DIVERGING, app, "diverging")
        refused = deploy(tmp_path)
        assert refused.returncode == 1, refused.stdout + refused.stderr
        for wid in ids:
            assert f"DIVERGES gated {wid}: step 0: history has signal 'go', code now issues timer" in refused.stdout
        assert "3 running workflow(s) replayed with the new code (all;" in refused.stdout, refused.stdout
        assert "nothing deployed" in refused.stderr and "--force" in refused.stderr
        assert mark(pulsar_admin, manifest) == "v1"
        client.signal(ids[0], "go")
        assert handles[ids[0]].result(timeout=TIMEOUT) == "v1"  # the old code still runs it

        forced = deploy(tmp_path, "--force")
        assert forced.returncode == 0, forced.stdout + forced.stderr
        assert f"DIVERGES gated {ids[1]}" in forced.stdout and "deploying anyway (--force)" in forced.stdout
        assert f"DIVERGES gated {ids[0]}" not in forced.stdout  # it completed: nothing to replay
        assert "2 running workflow(s) replayed" in forced.stdout
        assert mark(pulsar_admin, manifest) == "diverging"

        write_app(tmp_path, module, COMPATIBLE, app, "compatible")
        passed = deploy(tmp_path, "--replay-sample", "5")
        assert passed.returncode == 0, passed.stdout + passed.stderr
        assert "2 running workflow(s) replayed with the new code (a sample of 5 asked;" in passed.stdout
        assert "0 diverging, 0 unreadable" in passed.stdout and "DIVERGES" not in passed.stdout
        assert mark(pulsar_admin, manifest) == "compatible"
        wait_for(lambda: restarted(pulsar_admin, manifest), 90, "the instance running the compatible code")
        client.signal(ids[1], "go")
        assert handles[ids[1]].result(timeout=TIMEOUT) == "v2"
