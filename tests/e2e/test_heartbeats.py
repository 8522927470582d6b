"""Heartbeats: a task with ``heartbeat_timeout`` that goes silent fails its attempt and is retried; the
last details it reported reach the next attempt; a task that keeps beating runs to its end."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

import pulsarflow as pf
from pulsarflow.testing import TestEnvironment

SEEN: list[object] = []
QUICK = pf.RetryPolicy(max_attempts=3, initial_delay=0.01, jitter=0.0)


@pf.task(heartbeat_timeout=0.3, retry=QUICK)
def upload(parts: int) -> str:
    """Resumes from the part the previous attempt reported; the first attempt hangs after part 2."""
    info = pf.task_info()
    SEEN.append(info.heartbeat_details)
    start = info.heartbeat_details or 0
    for part in range(start, parts):
        pf.heartbeat(part)
        if info.attempt == 1 and part == 2:
            time.sleep(1.0)  # silent: past the heartbeat timeout
            if info.cancelled:
                return "given up"
    return f"uploaded {parts} parts, attempt {info.attempt} from part {start}"


@pf.task(heartbeat_timeout=0.2, retry=pf.RetryPolicy(max_attempts=1))
async def silent_async() -> str:
    import asyncio

    await asyncio.sleep(1.0)
    return "never"


@pf.task(heartbeat_timeout=0.3)
def beating() -> str:
    for _ in range(8):
        pf.heartbeat()
        time.sleep(0.1)  # 0.8 s in all, never 0.3 s silent
    return "done"


@pf.workflow
async def uploads(ctx: pf.WorkflowContext, parts: int) -> str:
    return await ctx.task(upload, parts)


@pf.workflow
async def async_silence(ctx: pf.WorkflowContext) -> str:
    try:
        return await ctx.task(silent_async)
    except pf.TaskFailedError as exc:
        return f"failed: {exc.error.type}"


@pf.workflow
async def keeps_beating(ctx: pf.WorkflowContext) -> str:
    return await ctx.task(beating)


@pytest.fixture
def kit() -> Iterator[TestEnvironment]:
    SEEN.clear()
    env = TestEnvironment(upload, silent_async, beating, uploads, async_silence, keeps_beating)
    yield env
    env.close()


def test_a_silent_attempt_is_retried_and_the_next_one_resumes_from_its_details(kit: TestEnvironment) -> None:
    result = kit.client().start(uploads, 5).result()
    assert result == "uploaded 5 parts, attempt 2 from part 2"
    assert SEEN == [None, 2]  # the first attempt reported part 2 last; the second started from it


def test_a_silent_async_task_fails_with_a_heartbeat_timeout(kit: TestEnvironment) -> None:
    assert kit.client().start(async_silence).result() == "failed: HeartbeatTimeoutError"


def test_a_task_that_keeps_beating_runs_longer_than_its_heartbeat_timeout(kit: TestEnvironment) -> None:
    assert kit.client().start(keeps_beating).result() == "done"


def test_heartbeat_outside_a_task_says_where_it_belongs() -> None:
    with pytest.raises(RuntimeError, match="only available inside a running task"):
        pf.heartbeat("x")


def test_a_heartbeat_timeout_must_be_positive() -> None:
    with pytest.raises(pf.DefinitionError, match="heartbeat_timeout must be a positive duration"):
        pf.task(heartbeat_timeout=0)(lambda: None)
