"""Version 4: every run is past the old path; the patch is deprecated and the old branch gone."""

import pulsarflow as pf
from tests.e2e.flows import add


@pf.workflow(name="shipping")
async def shipping(ctx: pf.WorkflowContext) -> str:
    await ctx.task(add, 1, 1)
    ctx.deprecate_patch("double-check")
    await ctx.task(add, 10, 10)
    await ctx.wait_signal("go")
    await ctx.task(add, 2, 2)
    return "new path"
