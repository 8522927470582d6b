"""Heartbeats attacked: details too large for a message, details the converter refuses, a heartbeat
from an attempt that already timed out, a heartbeat from workflow code. No assertion depends on timing:
attempts that must go silent wait on events that later attempts set."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

import pulsarflow as pf
from pulsarflow.engines.task import MAX_HEARTBEAT_DETAILS_BYTES
from pulsarflow.testing import TestEnvironment

QUICK = pf.RetryPolicy(max_attempts=3, initial_delay=0.01, jitter=0.0)
SEEN: list[object] = []
LATE = {"resume": threading.Event(), "beaten": threading.Event()}


@pf.task(heartbeat_timeout=60, retry=QUICK)
def huge_details() -> str:
    info = pf.task_info()
    SEEN.append(info.heartbeat_details if info.attempt == 1 else len(info.heartbeat_details or ""))
    if info.attempt == 1:
        pf.heartbeat("x" * (6 * 1024 * 1024))  # larger than a broker message
        raise ValueError("first attempt fails after reporting huge details")
    return f"attempt {info.attempt}"


@pf.task(heartbeat_timeout=60, retry=QUICK)
def small_enough() -> str:
    info = pf.task_info()
    if info.attempt == 1:
        pf.heartbeat("y" * (MAX_HEARTBEAT_DETAILS_BYTES // 2))
        raise ValueError("first attempt fails")
    return f"attempt {info.attempt} resumed from {len(info.heartbeat_details)} characters"


@pf.task(heartbeat_timeout=60, retry=QUICK)
def odd_details() -> str:
    info = pf.task_info()
    if info.attempt == 1:
        pf.heartbeat({"progress": 3})
        try:
            pf.heartbeat(object())  # details the converter cannot encode
        except pf.SerializationError:
            SEEN.append("refused at the call")
        raise ValueError("first attempt fails")
    return f"attempt {info.attempt} details {info.heartbeat_details!r}"


@pf.task(heartbeat_timeout=0.2, retry=QUICK)
def goes_silent() -> str:
    """Attempt 1 reports 'early', then goes silent until attempt 2 runs, then reports 'late'."""
    info = pf.task_info()
    SEEN.append((info.attempt, info.heartbeat_details))
    if info.attempt == 1:
        pf.heartbeat("early")
        LATE["resume"].wait(30)  # silent: past the heartbeat timeout; attempt 2 lets it go on
        pf.heartbeat("late")  # this attempt timed out: nobody takes these details
        LATE["beaten"].set()
        return "attempt 1 (ignored)"
    if info.attempt == 2:
        LATE["resume"].set()
        LATE["beaten"].wait(30)
        raise ValueError("attempt 2 fails after the late heartbeat")
    return f"attempt {info.attempt} from {info.heartbeat_details!r}"


@pf.workflow
async def run_task(ctx: pf.WorkflowContext, name: str) -> str:
    task = {"huge": huge_details, "small": small_enough, "odd": odd_details, "silent": goes_silent}[name]
    return await ctx.task(task)


@pf.workflow
async def beats_in_a_workflow(ctx: pf.WorkflowContext) -> str:
    pf.heartbeat("from workflow code")
    return "never"


@pytest.fixture
def kit() -> Iterator[TestEnvironment]:
    SEEN.clear()
    for event in LATE.values():
        event.clear()
    env = TestEnvironment(huge_details, small_enough, odd_details, goes_silent, run_task, beats_in_a_workflow)
    yield env
    env.close()


def test_details_too_large_for_a_message_are_dropped_and_the_retry_still_runs(kit: TestEnvironment) -> None:
    assert kit.client().start(run_task, "huge").result(timeout=60) == "attempt 2"
    assert SEEN == [None, 0]  # the second attempt ran, without the details


def test_details_under_the_bound_reach_the_next_attempt(kit: TestEnvironment) -> None:
    result = kit.client().start(run_task, "small").result(timeout=60)
    assert result == f"attempt 2 resumed from {MAX_HEARTBEAT_DETAILS_BYTES // 2} characters"


def test_details_the_converter_refuses_are_refused_at_the_call(kit: TestEnvironment) -> None:
    assert kit.client().start(run_task, "odd").result(timeout=60) == "attempt 2 details {'progress': 3}"
    assert SEEN == ["refused at the call"]


def test_a_heartbeat_after_the_attempt_timed_out_reaches_no_attempt(kit: TestEnvironment) -> None:
    assert kit.client().start(run_task, "silent").result(timeout=60) == "attempt 3 from 'early'"
    assert SEEN == [(1, None), (2, "early"), (3, "early")]


def test_a_heartbeat_in_workflow_code_blocks_the_run_and_says_where_it_belongs(kit: TestEnvironment) -> None:
    with pytest.raises(pf.WorkflowBlockedError, match="only available inside a running task"):
        kit.client().start(beats_in_a_workflow).result(timeout=60)
