"""The two workloads as DBOS workflows: a no-op step, three in sequence, ten fanned out."""

from __future__ import annotations

import asyncio
from typing import Any

from dbos import DBOS


@DBOS.step()
async def noop(i: int) -> int:
    return i


@DBOS.workflow(name="bench-sequential")
async def sequential(tasks: int) -> int:
    total = 0
    for i in range(tasks):
        total += await noop(i)
    return total


@DBOS.workflow(name="bench-fanout")
async def fanout(tasks: int) -> int:
    steps = [asyncio.create_task(noop(i)) for i in range(tasks)]
    return sum(await asyncio.gather(*steps))


WORKFLOWS = {"sequential": sequential, "fanout": fanout}


async def execute(kind: str, tasks: int) -> Any:
    handle = await DBOS.start_workflow_async(WORKFLOWS[kind], tasks)
    return await handle.get_result()
