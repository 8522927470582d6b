"""Hung tasks cannot starve an executor: a timed-out attempt gives its thread up and is told to stop."""

from __future__ import annotations

import threading
import time

import pytest

import pulsarflow as pf
from pulsarflow.clock import SystemClock
from pulsarflow.converter import JsonConverter
from pulsarflow.interpreter.registry import Registry
from pulsarflow.messages import ExecuteTask, TaskCompleted, TaskExecutorMessage, TaskFailed, WorkflowEngineMessage
from pulsarflow.messages.common import RetrySpec
from pulsarflow.messages.workflow import WorkflowInput
from pulsarflow.runtime.attempts import AttemptThreads, TooManyHungAttemptsError
from pulsarflow.runtime.executor import TaskExecutor
from pulsarflow.topics import Topics

RELEASE = threading.Event()  # set at the end of a test: every hung task returns
STOPPED: list[str] = []  # hung tasks that saw task_info().cancelled and returned


@pf.task(timeout=0.05)
def hangs(name: str) -> str:
    while not RELEASE.is_set():
        if pf.task_info().cancelled:
            STOPPED.append(name)
            return "stopped"
        time.sleep(0.01)
    return "released"


@pf.task(timeout=0.05)
def ignores_cancellation(name: str) -> str:
    RELEASE.wait(30)
    return "released"


@pf.task(timeout=2.0)
def quick(n: int) -> int:
    return n * 2


CONVERTER = JsonConverter()


def attempt(executor: TaskExecutor, task: str, arg: object, position: int) -> WorkflowInput:
    """Run one attempt of ``task`` and return what it reported (a TaskCompleted or TaskFailed)."""
    defn = executor.registry.task(task)
    execute = ExecuteTask(f"wf-{position}", position, "default", task, CONVERTER.encode([arg]), attempt=1,
                          first_attempt_at_ms=0, retry=RetrySpec(max_attempts=1),
                          attempt_timeout_ms=defn.timeout_ms)
    decision = executor.handle(None, TaskExecutorMessage(f"m-{position}", execute.task_id, 0, execute), 0)
    [out] = decision.outgoing
    assert isinstance(out.message, WorkflowEngineMessage)
    return out.message.message


def test_fifty_hung_tasks_then_a_hundred_quick_ones_all_succeed() -> None:
    RELEASE.clear()
    STOPPED.clear()
    executor = TaskExecutor(Registry([hangs, ignores_cancellation, quick]), CONVERTER, Topics(), SystemClock())
    try:
        hung = [attempt(executor, "ignores_cancellation" if i % 2 else "hangs", f"h{i}", i) for i in range(50)]
        assert all(isinstance(o, TaskFailed) and "AttemptTimeoutError" in o.error.type for o in hung)
        started = time.monotonic()
        results = [attempt(executor, "quick", i, 100 + i) for i in range(100)]
        elapsed = time.monotonic() - started
        assert all(isinstance(r, TaskCompleted) for r in results), [r for r in results if isinstance(r, TaskFailed)]
        completed = [r for r in results if isinstance(r, TaskCompleted)]  # all of them (asserted above)
        assert [CONVERTER.decode(r.result)[0] for r in completed] == [2 * i for i in range(100)]
        assert elapsed < 10
        deadline = time.monotonic() + 5
        while len(STOPPED) < 25 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert sorted(STOPPED) == sorted(f"h{i}" for i in range(0, 50, 2))  # each saw cancelled and returned
    finally:
        RELEASE.set()
        executor.close()


def test_a_timed_out_attempt_frees_its_slot_and_the_hung_ones_are_bounded() -> None:
    release = threading.Event()
    threads = AttemptThreads(max_hung=3)
    for _ in range(3):
        with pytest.raises(TimeoutError):
            threads.run(release.wait, 30, timeout=0.01)
    assert threads.hung == 3
    with pytest.raises(TooManyHungAttemptsError, match="3 earlier attempts ran past their timeout.*task_info"):
        threads.run(int, "1", timeout=1)
    release.set()
    deadline = time.monotonic() + 5
    while threads.hung and time.monotonic() < deadline:
        time.sleep(0.01)
    assert threads.run(int, "7", timeout=1) == 7
    started = threads.started
    assert [threads.run(int, str(i), timeout=1) for i in range(20)] == list(range(20))
    assert threads.started == started  # finished threads are reused
    threads.close()
