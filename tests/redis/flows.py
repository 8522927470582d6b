"""Workflows of the Redis tests."""

from __future__ import annotations

import pulsarflow as pf


@pf.workflow(name="collector")
async def collector(ctx: pf.WorkflowContext, n: int) -> list[int]:
    return [await ctx.wait_signal("add") for _ in range(n)]
