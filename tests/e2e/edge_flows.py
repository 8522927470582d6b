"""Workflows for the edge cases of cancel, retry, continue-as-new, updates and custom ids."""

from __future__ import annotations

import pulsarflow as pf

SWITCH: dict[str, bool] = {}


@pf.task(retry=pf.RetryPolicy(max_attempts=1))
def switch(name: str) -> str:
    if not SWITCH.get(name):
        raise RuntimeError(f"{name} is off")
    return f"{name} on"


@pf.workflow
async def cleanup_fails(ctx: pf.WorkflowContext) -> str:
    try:
        await ctx.all(ctx.task(switch, "always-on"), ctx.wait_signal("go"))
    except pf.WorkflowCancelledError:
        await ctx.task(switch, "cleanup")
        raise
    return "done"


@pf.workflow
async def compensates_then_raises(ctx: pf.WorkflowContext) -> str:
    try:
        await ctx.task(switch, "charge")
    except pf.TaskFailedError:
        await ctx.task(switch, "always-on")
        raise pf.ApplicationError("own error after compensating") from None
    return "charged"


@pf.workflow
async def child_waits(ctx: pf.WorkflowContext, rounds: int) -> str:
    if rounds > 1:
        ctx.continue_as_new(rounds - 1)
    return await ctx.child(waits_forever)


@pf.workflow
async def waits_forever(ctx: pf.WorkflowContext) -> str:
    return await ctx.wait_signal("never")


@pf.task(retry=pf.RetryPolicy(max_attempts=20, initial_delay=5.0, backoff_coefficient=1.0, jitter=0.0))
def eventually(name: str) -> str:
    if not SWITCH.get(name):
        raise ConnectionError(f"{name} is not there yet")
    return f"{name} on"


@pf.workflow
async def cancel_then_new_run(ctx: pf.WorkflowContext, run: int) -> str:
    """A cancelled run starts over; its task has the same position, in a new run."""
    try:
        return f"run {run}: {await ctx.task(eventually, 'late')}"
    except pf.WorkflowCancelledError:
        ctx.continue_as_new(run + 1)
        raise


@pf.workflow
async def counter(ctx: pf.WorkflowContext, total: int, runs: int) -> int:
    state = {"total": total}

    def add(n: int) -> int:
        state["total"] += n
        return state["total"]

    ctx.on_update("add", add)
    await ctx.wait_signal("next")
    if runs > 1:
        ctx.continue_as_new(state["total"], runs - 1)
    return state["total"]


@pf.workflow
async def approve_after_task(ctx: pf.WorkflowContext) -> str:
    pending = ctx.task(switch, "flaky")
    approval = await ctx.wait_signal("approve")
    return f"{await pending} {approval}"


@pf.workflow
async def spins(ctx: pf.WorkflowContext, n: int, limit: int) -> int:
    if n < limit:
        ctx.continue_as_new(n + 1, limit)
    return n


@pf.workflow
async def parent_of_switch(ctx: pf.WorkflowContext) -> str:
    return await ctx.child(uses_switch)


@pf.workflow
async def uses_switch(ctx: pf.WorkflowContext) -> str:
    return await ctx.task(switch, "child-switch")


@pf.workflow
async def custom(ctx: pf.WorkflowContext, n: int) -> int:
    await ctx.task(switch, "custom")
    await ctx.wait_signal("finish")
    return n


@pf.workflow
async def quick(ctx: pf.WorkflowContext, n: int) -> int:
    return n


@pf.workflow
async def sandbox_update(ctx: pf.WorkflowContext) -> str:
    import time

    ctx.on_update("clock", lambda: time.time())
    return await ctx.wait_signal("done")


ALL = [switch, eventually, cancel_then_new_run, cleanup_fails, compensates_then_raises, child_waits,
       waits_forever, counter, approve_after_task, spins, parent_of_switch, uses_switch, custom, quick,
       sandbox_update]
