"""Workflows started by schedules in the tests (embedded and on Pulsar)."""

from __future__ import annotations

import pulsarflow as pf
from pulsarflow.schedules import scheduler

STAMPS: list[str] = []


@pf.task
def stamp(label: str, at: str) -> str:
    STAMPS.append(f"{label}@{at}")
    return f"{label}@{at}"


@pf.workflow
async def tick(ctx: pf.WorkflowContext, label: str) -> str:
    """Records when it ran; returns ``label@<start time>``."""
    return await ctx.task(stamp, label, ctx.now().isoformat())


@pf.workflow
async def slow_tick(ctx: pf.WorkflowContext, label: str, seconds: float) -> str:
    """Runs for ``seconds`` (longer than the schedule's period in the overlap tests)."""
    started = ctx.now().isoformat()
    await ctx.sleep(seconds)
    return await ctx.task(stamp, label, started)


@pf.workflow
async def failing_tick(ctx: pf.WorkflowContext, label: str) -> str:
    raise pf.ApplicationError(f"{label} always fails")


ALL = [stamp, tick, slow_tick, failing_tick, scheduler]
