"""Workflows for the semantics tests on real Pulsar: what tasks did is written to files, since
tasks run in the executor Functions' own processes. The same flows run embedded too."""

from __future__ import annotations

from pathlib import Path

import pulsarflow as pf


def _note(path: str, line: str) -> None:
    with open(path, "a", encoding="utf-8") as out:
        out.write(line + "\n")


@pf.task(retry=pf.RetryPolicy(max_attempts=3, initial_delay=6, jitter=0))
def fails_first(marker: str) -> str:
    attempt = pf.task_info().attempt
    _note(marker, f"attempt {attempt}")
    if attempt == 1:
        raise RuntimeError("the first attempt fails")
    return "retried"


@pf.task
def flag_is_set(flag: str) -> bool:
    return Path(flag).exists()


@pf.workflow
async def heartbeats(ctx: pf.WorkflowContext, wanted: int, beat: float) -> list[str]:
    got: list[str] = []
    while len(got) < wanted:
        race = ctx.any(ctx.sleep(beat), ctx.wait_signal("msg"))
        value = await race
        if race.index == 1:
            got.append(value)
    return got


@pf.workflow
async def outlives_its_retry(ctx: pf.WorkflowContext, marker: str) -> str:
    return str(await ctx.any(ctx.task(fails_first, marker), ctx.sleep(1)))


@pf.workflow
async def buggy_until_flag(ctx: pf.WorkflowContext, flag: str) -> str:
    """A workflow whose code has a bug until a file exists (standing in for a fixed deploy)."""
    ready = await ctx.task(flag_is_set, flag)
    if not ready and not Path(flag).exists():
        raise KeyError("a bug in the workflow code")
    return "fixed"


ALL = [fails_first, flag_is_set, heartbeats, outlives_its_retry, buggy_until_flag]
