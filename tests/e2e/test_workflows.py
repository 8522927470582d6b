"""End to end on the test environment; every test also runs with each message delivered twice, and batched."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

import pulsarflow as pf
from pulsarflow.testing import TestEnvironment
from tests.e2e import flows
from tests.e2e.flows import Point


def run(env: TestEnvironment, wf: Callable[..., Any] | str, *args: Any, **options: Any) -> Any:
    return env.client().start(wf, *args, **options).result()


def test_sequential_tasks_use_each_result(env: TestEnvironment) -> None:
    assert run(env, flows.sequence, 5) == 0 + 1 + 2 + 3 + 4


def test_fan_out_and_fan_in(env: TestEnvironment) -> None:
    assert run(env, flows.fan, 10) == [2 * i for i in range(10)]


def test_any_returns_the_first_to_finish(env: TestEnvironment) -> None:
    assert run(env, flows.race) == "fast"


def test_dataclasses_round_trip_through_async_tasks(env: TestEnvironment) -> None:
    assert run(env, flows.points, Point(1, 2)) == Point(6, 2)


def test_child_workflows(env: TestEnvironment) -> None:
    assert run(env, flows.parent, 3) == {"a": 3, "b": 6, "c": 10}


def test_durable_sleep_of_days_passes_on_the_virtual_clock(env: TestEnvironment) -> None:
    before = env.clock.now_ms()
    assert run(env, flows.sleeper, 3) == "3 days then 3600 s"
    assert env.clock.now_ms() - before == (3 * 86400 + 3600) * 1000


def test_signal_is_delivered_with_its_data(env: TestEnvironment) -> None:
    client = env.client()
    handle = client.start(flows.approval, 3600.0, id="approve-1")
    env.run_ready()
    client.signal("approve-1", "decision", {"ok": True})
    assert handle.result() == "got {'ok': True}"


def test_signal_sent_before_the_wait_is_buffered(env: TestEnvironment) -> None:
    client = env.client()
    handle = client.start(flows.two_signals, id="early")
    client.signal("early", "item", "a")
    client.signal("early", "item", "b")
    assert handle.result() == ["a", "b"]


def test_signal_timeout_raises_inside_the_workflow(env: TestEnvironment) -> None:
    assert run(env, flows.approval, 86400.0) == "timed out"


def test_deterministic_helpers_and_side_effect_run_once(env: TestEnvironment) -> None:
    first = run(env, flows.determinism, id="det-1")
    effect, u1, u2, _, _ = first
    assert effect == "effect-0" and u1 != u2
    if env.workflow_engine.live.size == 0:
        assert flows.CALLS.count("side-effect-replayed") >= 2  # the code was replayed...
    else:  # ...or kept live between messages: the code after the effect ran once
        assert flows.CALLS.count("side-effect-replayed") == 1 and env.workflow_engine.live.hits >= 1
    calls_before = len(flows.CALLS)
    again = run(env, flows.determinism, id="det-2")
    # the effect ran once, when first reached (nothing was appended before it), and every later
    # replay (each appends "side-effect-replayed") returned the recorded value instead
    assert again[0] == f"effect-{calls_before}"
    assert flows.CALLS[calls_before:].count("side-effect-replayed") >= (2 if env.workflow_engine.live.size == 0 else 1)
    assert again[1] != u1  # ids differ per workflow, but are stable within one


def test_random_and_uuid_are_stable_across_replays(env: TestEnvironment) -> None:
    result = run(env, flows.determinism, id="stable")
    state = env.state("stable")
    assert state is not None and state.status == "COMPLETED"
    again = pf.EmbeddedEnvironment(*flows.ALL, clock=env.clock)
    replayed = again.client().start(flows.determinism, id="stable").result(timeout=5)
    assert replayed[1:4] == result[1:4]


def test_retries_with_backoff_then_succeeds(env: TestEnvironment) -> None:
    before = env.clock.now_ms()
    assert run(env, flows.retrying, "r1", 2) == "r1 ok after 3"
    if not env.transport.duplicate:  # a duplicated attempt runs the task twice (at-least-once)
        assert env.clock.now_ms() - before == 3000  # two backoff delays: 1 s then 2 s (jitter 0)


def test_retries_exhausted_fail_the_workflow_with_the_cause_chain(env: TestEnvironment) -> None:
    handle = env.client().start(flows.retrying, "r2", 10_000)
    with pytest.raises(pf.WorkflowFailedError) as info:
        handle.result()
    chain = info.value.error.chain()
    assert chain[0].type == "TaskFailedError"
    assert chain[1].type == "ConnectionError" and chain[1].task_name == "flaky" and chain[1].attempts == 4
    assert chain[1].message.startswith("attempt ") and chain[1].message.endswith(" of r2 failed")
    assert "raise ConnectionError" in info.value.remote_traceback
    assert flows.FLAKY["r2"] == (4 if not env.transport.duplicate else flows.FLAKY["r2"])
    assert flows.FLAKY["r2"] >= 4


def test_non_retryable_error_fails_at_once(env: TestEnvironment) -> None:
    with pytest.raises(pf.WorkflowFailedError, match="KeyError"):
        run(env, flows.non_retryable, "nr")
    assert flows.FLAKY["nr"] == (2 if env.transport.duplicate else 1)


def test_workflow_can_catch_a_task_failure(env: TestEnvironment) -> None:
    assert run(env, flows.catches, "c1") == "caught KeyError from picky after 1"


def test_child_failure_reaches_the_parent(env: TestEnvironment) -> None:
    with pytest.raises(pf.WorkflowFailedError) as info:
        run(env, flows.child_fails, "cf")
    types = [e.type for e in info.value.error.chain()]
    assert types[:2] == ["ChildWorkflowFailedError", "TaskFailedError"] and "KeyError" in types


def test_per_attempt_timeout_counts_as_a_failed_attempt(env: TestEnvironment) -> None:
    with pytest.raises(pf.WorkflowFailedError) as info:
        run(env, flows.timing_out, 0.5)
    assert info.value.error.chain()[1].type == "AttemptTimeoutError"
    assert info.value.error.chain()[1].attempts == 2


def test_overall_task_timeout(env: TestEnvironment) -> None:
    assert run(env, flows.overall_timeout).startswith("gave up: task 'flaky' did not finish")


def test_workflow_timeout(env: TestEnvironment) -> None:
    with pytest.raises(pf.WorkflowFailedError, match="WorkflowTimeoutError"):
        run(env, flows.too_long)


def test_starting_twice_with_an_id_returns_the_same_run(env: TestEnvironment) -> None:
    client = env.client()
    first = client.start(flows.sequence, 3, id="once-only")
    second = client.start(flows.sequence, 3, id="once-only")
    assert first.result() == second.result() == 3
    assert flows.CALLS.count("add 0 0") == (2 if env.transport.duplicate else 1)
    assert client.status("once-only").status == "COMPLETED"
    assert client.start(flows.sequence, 3, id="once-only").result() == 3


def test_status_of_a_running_workflow(env: TestEnvironment) -> None:
    client = env.client()
    client.start(flows.approval, 100.0, id="waiting")
    env.run_ready()
    status = client.status("waiting")
    assert (status.workflow_name, status.status, status.steps) == ("approval", "RUNNING", 1)


def test_result_of_an_existing_workflow_by_id(env: TestEnvironment) -> None:
    client = env.client()
    client.start(flows.sequence, 4, id="lookup")
    assert client.get_handle("lookup").result() == 6


def test_wall_clock_in_workflow_blocks_it_even_if_caught(env: TestEnvironment) -> None:
    with pytest.raises(pf.WorkflowBlockedError, match="SandboxViolationError.*time.time.*ctx.now"):
        run(env, flows.uses_wall_clock)


def test_awaiting_asyncio_in_a_workflow_blocks_it_clearly(env: TestEnvironment) -> None:
    with pytest.raises(pf.WorkflowBlockedError, match="asyncio.*put asyncio code in a task"):
        run(env, flows.uses_asyncio)
