"""Workflows of the rolling-upgrade test: written with what both releases offer (release 0.1.0
and the current one), and imported by both as the top-level module ``upgrade_flows``."""

from __future__ import annotations

import time
from pathlib import Path

import pulsarflow as pf


@pf.task(retry=pf.RetryPolicy(max_attempts=5, initial_delay=8, jitter=0))
def fails_until(marker: str, attempts: int) -> str:
    path = Path(marker)
    seen = int(path.read_text()) + 1 if path.exists() else 1
    path.write_text(str(seen))
    if seen < attempts:
        raise RuntimeError(f"attempt {seen} fails")
    return f"ok after {seen}"


@pf.task
def slow(marker: str, seconds: float) -> str:
    Path(marker).write_text("started")
    time.sleep(seconds)
    return "slow done"


@pf.workflow
async def sleeper(ctx: pf.WorkflowContext, seconds: float) -> str:
    await ctx.sleep(seconds)
    return "slept"


@pf.workflow
async def waiter(ctx: pf.WorkflowContext) -> str:
    value = await ctx.wait_signal("go")
    return f"got {value}"


@pf.workflow
async def mid_task(ctx: pf.WorkflowContext, marker: str, seconds: float) -> str:
    return str(await ctx.task(slow, marker, seconds))


@pf.workflow
async def retrying(ctx: pf.WorkflowContext, marker: str) -> str:
    return str(await ctx.task(fails_until, marker, 2))
