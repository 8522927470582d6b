"""The two workloads in Temporal's Python SDK: a no-op activity, three in sequence, ten fanned out.

Kept apart from the runner so the workflow sandbox re-imports nothing but temporalio.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.common import RetryPolicy

TASK_QUEUE = "bench"


@activity.defn(name="noop")
async def noop(i: int) -> int:
    return i


def _noop(i: int) -> Awaitable[int]:
    # One attempt, as pulsarflow's no-op task; a timeout is mandatory for an activity.
    return workflow.execute_activity(noop, i, start_to_close_timeout=timedelta(seconds=60),
                                     retry_policy=RetryPolicy(maximum_attempts=1))


@workflow.defn(name="bench-sequential")
class Sequential:
    @workflow.run
    async def run(self, tasks: int) -> int:
        total = 0
        for i in range(tasks):
            total += await _noop(i)
        return total


@workflow.defn(name="bench-fanout")
class Fanout:
    @workflow.run
    async def run(self, tasks: int) -> int:
        results = await asyncio.gather(*[_noop(i) for i in range(tasks)])
        return sum(results)
