"""Tasks and workflows for the Pulsar fault tests, packaged as the deployed app's module.

Every task execution appends one JSON line to a journal file (O_APPEND, one ``write``
per line, so lines from several processes never interleave) before it returns a fresh
token. The journal says how often each step really ran; the workflow's result says
which execution's outcome the workflow recorded.
"""

from __future__ import annotations

import json
import os
import time
import uuid

import pulsarflow as pf

SERVICE = "faults"


def journal_entry(path: str, **fields: object) -> None:
    line = (json.dumps(fields, sort_keys=True) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


@pf.task(service=SERVICE)
def record(journal: str, seconds: float) -> str:
    """One step: journal this execution, take ``seconds``, return a token unique to this execution."""
    info = pf.task_info()
    token = uuid.uuid4().hex
    journal_entry(journal, workflow=info.workflow_id, position=int(info.task_id.rsplit("/", 1)[1]),
                  attempt=info.attempt, token=token, pid=os.getpid(), at=time.time())
    time.sleep(seconds)
    return token


@pf.workflow
async def chain(ctx: pf.WorkflowContext, journal: str, steps: int, seconds: float) -> list[str]:
    """``steps`` sequential tasks; the result lists the recorded token of each step."""
    return [await ctx.task(record, journal, seconds) for _ in range(steps)]


@pf.workflow
async def collect(ctx: pf.WorkflowContext, count: int) -> list[str]:
    """The data of the first ``count`` 'item' signals, in arrival order."""
    return [await ctx.wait_signal("item") for _ in range(count)]


@pf.task(service=SERVICE)
def library_location() -> str:
    """Where the executor running this task imported pulsarflow from."""
    return str(pf.__file__)


@pf.workflow
async def locations(ctx: pf.WorkflowContext) -> list[str]:
    """Where the workflow engine and the executor imported pulsarflow from."""
    return [str(pf.__file__), await ctx.task(library_location)]
