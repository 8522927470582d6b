"""Version 1 of the ``shipping`` workflow, as deployed first."""

import pulsarflow as pf
from tests.e2e.flows import add


@pf.workflow(name="shipping")
async def shipping(ctx: pf.WorkflowContext) -> str:
    await ctx.task(add, 1, 1)
    await ctx.wait_signal("go")
    await ctx.task(add, 2, 2)
    return "old path"
