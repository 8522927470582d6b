"""Tasks for tests/integration/test_tasks_pulsar.py, packaged as the deployed app's module."""

from __future__ import annotations

import os
import time

import pulsarflow as pf

SERVICE = "longtasks"


@pf.task(service=SERVICE, heartbeat_timeout=1.0, retry=pf.RetryPolicy(max_attempts=3, initial_delay=0.2))
def upload(parts: int) -> str:
    """Attempt 1 reports progress, then goes silent past its heartbeat timeout; attempt 2 resumes."""
    info = pf.task_info()
    if info.attempt == 1:
        pf.heartbeat({"done": parts // 2})
        time.sleep(4)  # silent: the attempt fails on its heartbeat timeout and is retried
        return "attempt 1 should not have finished"
    return f"attempt {info.attempt} resumed from {info.heartbeat_details}"


@pf.task(service=SERVICE)
def ask(folder: str, question: str) -> str:
    """Hands its completion token out (a file in a folder the test reads) and completes later."""
    path = os.path.join(folder, f"token-{os.getpid()}-{time.time_ns()}")
    with open(path + ".part", "w", encoding="utf-8") as out:
        out.write(pf.task_info().completion_token)
    os.replace(path + ".part", path)  # whole or not at all, for the reader
    pf.complete_later()
    return "never"


@pf.workflow(name="resumable")
async def resumable(ctx: pf.WorkflowContext, parts: int) -> str:
    return await ctx.task(upload, parts)


@pf.workflow(name="asking")
async def asking(ctx: pf.WorkflowContext, folder: str, question: str) -> str:
    try:
        return f"{question} -> {await ctx.task(ask, folder, question)}"
    except pf.TaskFailedError as exc:
        return f"refused: {exc.error.message}"
