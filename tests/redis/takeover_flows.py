"""Workflows of the takeover test, each caught by the kill of its first process in another state.

The process to be killed has ``FIRST_PROCESS`` in its environment: there ``blocking`` blocks
until the kill and ``flaky`` fails; in the process that takes over both succeed.
"""

from __future__ import annotations

import os
import threading

import pulsarflow as pf

FIRST_PROCESS = "PULSARFLOW_TEST_FIRST_PROCESS"
BLOCKED = "task blocked"  # what the first process prints once its task blocks
NO_RETRY = pf.RetryPolicy(max_attempts=1)


@pf.task(service="takeover", retry=NO_RETRY)
def blocking(n: int) -> int:
    if os.environ.get(FIRST_PROCESS):
        print(BLOCKED, flush=True)
        threading.Event().wait()  # until the process is killed
    return n * 2


@pf.task(service="takeover", retry=NO_RETRY)
def add_one(n: int) -> int:
    return n + 1


@pf.task(service="takeover", retry=pf.RetryPolicy(max_attempts=5, initial_delay=600, max_delay=600, jitter=0))
def flaky(n: int) -> int:
    if os.environ.get(FIRST_PROCESS):
        raise RuntimeError("this attempt fails in the first process")
    return n * 10


@pf.workflow(name="takeover-sleeping")
async def sleeping(ctx: pf.WorkflowContext, seconds: float) -> str:
    await ctx.sleep(seconds)
    return "woke up"


@pf.workflow(name="takeover-mid-task")
async def mid_task(ctx: pf.WorkflowContext, n: int) -> list[int]:
    # Two tasks dispatched at once: the first blocks the killed process, the second is still queued.
    return await ctx.all(ctx.task(blocking, n), ctx.task(add_one, n))


@pf.workflow(name="takeover-retrying")
async def retrying(ctx: pf.WorkflowContext, n: int) -> int:
    return await ctx.task(flaky, n)


@pf.workflow(name="takeover-signalled")
async def signalled(ctx: pf.WorkflowContext) -> str:
    return await ctx.wait_signal("go")


ALL = (blocking, add_one, flaky, sleeping, mid_task, retrying, signalled)
