"""Version 2: a new step, guarded by a patch marker, so running instances keep the old path."""

import pulsarflow as pf
from tests.e2e.flows import add


@pf.workflow(name="shipping")
async def shipping(ctx: pf.WorkflowContext) -> str:
    await ctx.task(add, 1, 1)
    checked = ctx.patched("double-check")
    if checked:
        await ctx.task(add, 10, 10)
    await ctx.wait_signal("go")
    await ctx.task(add, 2, 2)
    return "new path" if checked else "old path"
