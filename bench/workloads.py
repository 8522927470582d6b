"""The benchmark workloads, shared by every mode: no-op tasks in sequence, and a fan-out."""

from __future__ import annotations

import pulsarflow as pf


@pf.task(service="bench", retry=pf.RetryPolicy(max_attempts=1))
def noop(i: int) -> int:
    return i


@pf.workflow(name="bench-sequential")
async def sequential(ctx: pf.WorkflowContext, tasks: int) -> int:
    total = 0
    for i in range(tasks):
        total += await ctx.task(noop, i)
    return total


@pf.workflow(name="bench-fanout")
async def fanout(ctx: pf.WorkflowContext, tasks: int) -> int:
    results = await ctx.all(*[ctx.task(noop, i) for i in range(tasks)])
    return sum(results)


ALL = [noop, sequential, fanout]

CASES = {
    # case name: (workflow, tasks per workflow, default number of workflows)
    "sequential-3": (sequential, 3, 1000),
    "fanout-10": (fanout, 10, 200),
    "sequential-1": (sequential, 1, 1000),
}
