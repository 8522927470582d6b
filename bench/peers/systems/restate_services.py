"""The two workloads as a Restate service: a no-op durable step (``ctx.run``), three in sequence,
ten started at once and joined with ``restate.gather``. Each step has one attempt, as pulsarflow's
no-op task; its result is journaled by the Restate server before the handler goes on."""

from __future__ import annotations

from typing import Any

import restate

SERVICE = "bench"
STEP = restate.RunOptions[int](max_attempts=1)

bench = restate.Service(SERVICE)


async def noop(i: int) -> int:
    return i


@bench.handler("sequential")
async def sequential(ctx: restate.Context, tasks: int) -> int:
    total = 0
    for i in range(tasks):
        total += await ctx.run_typed(f"noop-{i}", noop, STEP, i)
    return total


@bench.handler("fanout")
async def fanout(ctx: restate.Context, tasks: int) -> int:
    steps = [ctx.run_typed(f"noop-{i}", noop, STEP, i) for i in range(tasks)]
    done = await restate.gather(*steps)
    return sum([await step for step in done])


def app() -> Any:
    """The ASGI application Restate's server calls (discovery and invocations, HTTP/2)."""
    return restate.app(services=[bench])
