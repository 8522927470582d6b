"""The workflow engine as a pure function: no environment, no mocks."""

from __future__ import annotations

from dataclasses import replace

import pulsarflow as pf
from pulsarflow.converter import JsonConverter
from pulsarflow.engines.outgoing import Decision
from pulsarflow.engines.workflow import WorkflowEngine
from pulsarflow.interpreter.registry import Registry
from pulsarflow.messages import (
    ExecuteTask,
    ReplyTo,
    SendSignal,
    StartWorkflow,
    TaskCompleted,
    TimerFired,
    WorkflowEngineMessage,
    WorkflowState,
)
from pulsarflow.messages.workflow import WorkflowInput
from pulsarflow.topics import Topics

JSON = JsonConverter()


@pf.task
def double(x: int) -> int:
    return 2 * x


@pf.workflow
async def twice(ctx: pf.WorkflowContext, x: int) -> int:
    a = await ctx.task(double, x)
    return await ctx.task(double, a)


@pf.workflow(name="twice")
async def changed(ctx: pf.WorkflowContext, x: int) -> int:
    await ctx.sleep(5)
    return x


@pf.workflow
async def waits(ctx: pf.WorkflowContext) -> str:
    await ctx.sleep(60)
    return str(await ctx.wait_signal("go"))


def engine(*items: object) -> WorkflowEngine:
    return WorkflowEngine(Registry(items or (twice, double, waits)), JSON, Topics())


def envelope(message: WorkflowInput, workflow_id: str = "w1") -> WorkflowEngineMessage:
    return WorkflowEngineMessage("m", workflow_id, 0, message)


def start(eng: WorkflowEngine, name: str = "twice", args: list[object] = [3]) -> Decision[WorkflowState]:  # noqa: B006
    return eng.handle(None, envelope(StartWorkflow(name, JSON.encode(args), reply=ReplyTo("t", "r"))), 1000)


def test_start_dispatches_the_first_task_with_a_deterministic_id() -> None:
    decision = start(engine())
    assert decision.state is not None and decision.state.status == "RUNNING"
    [out] = decision.outgoing
    task = out.message.message
    assert isinstance(task, ExecuteTask) and (task.task_name, task.position, task.attempt) == ("double", 0, 1)
    assert out.key == "w1/0" and out.message.message_id == "w1/0:1"
    assert start(engine()).outgoing == decision.outgoing


def test_each_completion_advances_and_the_last_one_answers_the_client() -> None:
    eng = engine()
    state = start(eng).state
    d1 = eng.handle(state, envelope(TaskCompleted(0, JSON.encode([6]), 1)), 2000)
    assert d1.outgoing[0].message.message.input == JSON.encode([6])
    d2 = eng.handle(d1.state, envelope(TaskCompleted(1, JSON.encode([12]), 1)), 3000)
    assert d2.state is not None and d2.state.status == "COMPLETED"
    assert d2.state.result is not None and JSON.decode(d2.state.result) == [12]
    assert [o.topic for o in d2.outgoing] == ["t"]


def test_every_message_handled_twice_changes_nothing_the_second_time() -> None:
    eng = engine()
    state = start(eng).state
    again = eng.handle(state, envelope(StartWorkflow("twice", JSON.encode([3]))), 1500)
    assert again.unchanged and again.outgoing == []
    completed = envelope(TaskCompleted(0, JSON.encode([6]), 1))
    d1 = eng.handle(state, completed, 2000)
    d2 = eng.handle(d1.state, completed, 2001)
    assert d2.unchanged and d2.outgoing == []


def test_timer_for_a_finished_step_is_ignored() -> None:
    eng = engine()
    state = eng.handle(None, envelope(StartWorkflow("waits", JSON.encode([]))), 0).state
    fired = envelope(TimerFired(0, "SLEEP"))
    d1 = eng.handle(state, fired, 60_000)
    assert d1.state is not None and d1.state.commands[-1].kind == "SIGNAL"
    assert eng.handle(d1.state, fired, 60_001).unchanged


def test_duplicate_signal_id_is_delivered_once() -> None:
    eng = engine()
    state = eng.handle(None, envelope(StartWorkflow("waits", JSON.encode([]))), 0).state
    signal = envelope(SendSignal("s1", "go", JSON.encode(["x"]), reply=ReplyTo("t", "r2")))
    d1 = eng.handle(state, signal, 10)
    d2 = eng.handle(d1.state, signal, 11)
    assert d1.state is not None
    received = [a.signal for a in d1.state.arrivals if a.signal is not None]
    assert [s.signal_id for s in received] == ["s1"] and d2.unchanged
    assert [type(o.message.message).__name__ for o in d2.outgoing] == ["SignalAccepted"]


def test_changed_code_blocks_the_run_with_position_expected_and_found() -> None:
    state = start(engine()).state
    new_code = engine(changed, double)
    decision = new_code.handle(state, envelope(TaskCompleted(0, JSON.encode([6]), 1)), 2000)
    assert decision.state is not None
    assert decision.state.status == "RUNNING" and decision.state.error is None
    blocked = decision.state.blocked
    assert blocked is not None and blocked.position == 0 and blocked.since_ms == 2000
    error = blocked.reason
    assert error.type == "NonDeterminismError"
    assert "'w1'" in error.message and "step 0" in error.message
    assert "task 'double'" in error.message and "timer" in error.message
    assert [a.position for a in decision.state.arrivals] == [0]  # what arrived is kept for the fixed code
    [unblock] = decision.outgoing  # nothing is sent to the client: the run is not over
    assert isinstance(unblock.message.message, TimerFired) and unblock.message.message.purpose == "UNBLOCK"
    assert unblock.deliver_at_ms == 3000
    # the old code deployed again: the backoff timer replays the run, which resumes
    resumed = engine().handle(decision.state, envelope(unblock.message.message), 3000)
    assert resumed.state is not None and resumed.state.blocked is None and len(resumed.state.commands) == 2


def test_unknown_workflow_name_blocks_the_run_with_the_registered_names() -> None:
    decision = start(engine(), name="nope")
    assert decision.state is not None and decision.state.status == "RUNNING" and decision.state.blocked is not None
    reason = decision.state.blocked.reason.message
    assert "unknown workflow 'nope'" in reason and "twice" in reason


def test_engine_does_not_mutate_the_state_it_was_given() -> None:
    eng = engine()
    state = start(eng).state
    assert state is not None
    snapshot = replace(state)
    eng.handle(state, envelope(TaskCompleted(0, JSON.encode([6]), 1)), 2000)
    assert state == snapshot


def test_a_refused_request_stays_refused_when_a_copy_is_redelivered_after_the_run_changed() -> None:
    from pulsarflow.errors import ErrorInfo
    from pulsarflow.messages import ControlAnswer, RetryWorkflow, TaskFailed

    eng = engine()
    state = start(eng).state
    retry = envelope(RetryWorkflow("retry-1", reply=ReplyTo("t", "r9")))
    refused = eng.handle(state, retry, 1500)  # the run is RUNNING: refused
    assert refused.state is not None
    assert not refused.outgoing[0].message.message.accepted and "retry-1" in refused.state.refused_ids
    failed = eng.handle(refused.state, envelope(TaskFailed(0, ErrorInfo("ValueError", "no"))), 2000).state
    assert failed is not None and failed.status == "FAILED"
    again = eng.handle(failed, retry, 60_000)  # the same request, redelivered a minute later
    answer = again.outgoing[0].message.message
    assert isinstance(answer, ControlAnswer) and not answer.accepted and "refused before" in answer.detail
    assert again.unchanged and failed.status == "FAILED"
