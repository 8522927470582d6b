"""Where the lifecycle features meet: cancel, retry, continue-as-new, updates, tags and batches together."""

from __future__ import annotations

import logging

import pytest

import pulsarflow as pf
from pulsarflow.engines import tag as tag_engine
from pulsarflow.messages import AddTag, CancelWorkflow, RemoveTag, TagEngineMessage, TagOperation, TagState
from pulsarflow.messages import client as status
from pulsarflow.messages import tags as actions
from pulsarflow.testing import TestEnvironment
from pulsarflow.topics import Topics
from tests.e2e import edge_flows as ef


def test_retry_after_a_cancel_resumes_at_the_failed_cleanup_not_at_the_cancelled_step(env: TestEnvironment) -> None:
    ef.SWITCH["always-on"] = True
    client = env.client()
    handle = client.start(ef.cleanup_fails, id="c-1")
    env.run_ready()
    client.cancel("c-1")
    with pytest.raises(pf.WorkflowFailedError, match="cleanup is off"):
        handle.result()
    ef.SWITCH["cleanup"] = True
    assert "resumes at step 2" in client.retry("c-1")
    with pytest.raises(pf.WorkflowCancelledError):
        client.get_handle("c-1").result()
    assert client.status("c-1").status == status.CANCELLED


def test_retry_refuses_a_workflow_its_own_code_failed(env: TestEnvironment) -> None:
    ef.SWITCH["always-on"] = True
    client = env.client()
    with pytest.raises(pf.WorkflowFailedError, match="own error after compensating"):
        client.start(ef.compensates_then_raises, id="own-1").result()
    with pytest.raises(pf.ControlRefusedError, match="raised by its own code"):
        client.retry("own-1")


def test_cancel_reaches_the_child_of_a_later_run(env: TestEnvironment) -> None:
    client = env.client()
    handle = client.start(ef.child_waits, 2, id="p-1")
    env.run_ready()
    client.cancel("p-1")
    with pytest.raises(pf.WorkflowFailedError):
        handle.result()
    assert client.status("p-1/r1/0").status == status.CANCELLED


def test_a_task_cancelled_in_one_run_still_runs_in_the_next(env: TestEnvironment) -> None:
    client = env.client()
    handle = client.start(ef.cancel_then_new_run, 0, id="n-1")
    env.run_ready()
    ef.SWITCH["late"] = True
    client.cancel("n-1")
    env.advance(6)
    assert handle.result() == "run 1: late on"


def test_an_update_id_is_applied_once_across_runs(env: TestEnvironment) -> None:
    client = env.client()
    handle = client.start(ef.counter, 0, 2, id="u-1")
    env.run_ready()
    assert client.update("u-1", "add", 5, update_id="u-a") == 5
    client.signal("u-1", "next")
    with pytest.raises(pf.UpdateFailedError, match="already applied, in an earlier run"):
        client.update("u-1", "add", 5, update_id="u-a")
    client.signal("u-1", "next")
    assert handle.result() == 5


def test_retry_keeps_the_signals_already_accepted(env: TestEnvironment) -> None:
    client = env.client()
    handle = client.start(ef.approve_after_task, id="a-1")
    env.run_ready()
    client.signal("a-1", "approve", "yes")
    with pytest.raises(pf.WorkflowFailedError, match="flaky is off"):
        handle.result()
    ef.SWITCH["flaky"] = True
    client.retry("a-1")
    assert client.get_handle("a-1").result() == "flaky on yes"


def test_continuing_as_new_many_times_in_one_message(env: TestEnvironment) -> None:
    client = env.client()
    assert client.start(ef.spins, 0, 600, id="s-1").result() == 600
    with pytest.raises(pf.WorkflowFailedError, match="continued as new 1000 times without waiting"):
        client.start(ef.spins, 0, 10**9, id="s-2").result()


def test_a_parent_failed_by_its_child_resumes_once_the_child_is_retried(env: TestEnvironment) -> None:
    client = env.client()
    with pytest.raises(pf.WorkflowFailedError, match="child-switch is off"):
        client.start(ef.parent_of_switch, id="pc-1").result()
    ef.SWITCH["child-switch"] = True
    client.retry("pc-1/0")
    assert client.get_handle("pc-1/0").result() == "child-switch on"
    client.retry("pc-1")
    assert client.get_handle("pc-1").result() == "child-switch on"


def test_a_retried_workflow_does_not_take_back_its_custom_id(env: TestEnvironment) -> None:
    client = env.client()
    first = client.start(ef.custom, 1, custom_id="T-1")
    with pytest.raises(pf.WorkflowFailedError):
        first.result()
    ef.SWITCH["custom"] = True
    second = client.start(ef.custom, 2, custom_id="T-1")
    assert second.id != first.id
    client.retry(first.id)
    env.run_ready()
    assert client.start(ef.custom, 3, custom_id="T-1").id == second.id


def test_a_repeated_start_does_not_tie_a_custom_id_to_an_ended_run(env: TestEnvironment) -> None:
    from pulsarflow.messages import StartByCustomId

    sent = []
    original = env.transport.send

    def spy(topic: str, key: str, payload: bytes, deliver_at_ms: int | None = None) -> None:
        if topic == env.topics.tag_engine:
            sent.append((topic, key, payload))
        original(topic, key, payload, deliver_at_ms)

    env.transport.send = spy  # type: ignore[method-assign]
    client = env.client()
    first = client.start(ef.quick, 1, custom_id="K")
    assert first.result() == 1
    start = next(m for m in sent if isinstance(env.codec.decode(TagEngineMessage, m[2]).message, StartByCustomId))
    original(*start)  # the broker delivers it again, after the run has ended
    env.run_ready()
    second = client.start(ef.quick, 2, custom_id="K")
    assert second.id != first.id and second.result() == 2


def test_a_sandbox_violation_in_an_update_refuses_the_update_not_the_workflow(env: TestEnvironment) -> None:
    client = env.client()
    handle = client.start(ef.sandbox_update, id="sb-1")
    env.run_ready()
    with pytest.raises(pf.UpdateFailedError, match="SandboxViolationError"):
        handle.update("clock")
    client.signal("sb-1", "done", "still fine")
    assert handle.result() == "still fine"


def test_a_poisonous_message_is_set_aside_and_its_batch_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    from pulsarflow.messages import StartWorkflow, WorkflowEngineMessage

    env = TestEnvironment(*ef.ALL, batch_size=20, fail_fast=False)
    client = env.client()
    broken = WorkflowEngineMessage("m", "poison", 0, StartWorkflow("quick", b"[1]", tags=("t",)))
    original = env._workflows.engine.handle

    def crash_on_poison(state, envelope, now):  # type: ignore[no-untyped-def]
        if envelope.workflow_id == "poison":
            raise RuntimeError("an engine bug")
        return original(state, envelope, now)

    env._workflows.engine.handle = crash_on_poison  # type: ignore[method-assign]
    env.transport.send(env.topics.workflow_engine, "poison", env.codec.encode(broken))
    handle = client.start(ef.quick, 7, id="innocent")
    with caplog.at_level(logging.CRITICAL):
        assert handle.result() == 7
    [letter] = env.dead_letters
    assert "crashed on this message: RuntimeError: an engine bug" in letter.reason


def test_tag_pages_follow_a_cursor_so_leaving_workflows_shift_no_one() -> None:
    engine = tag_engine.TagEngine(Topics())
    key, state = "team#00", None
    for i in range(400):
        state = engine.handle(state, TagEngineMessage(f"a{i}", key, 0, AddTag(f"wf{i:03d}")), 0).state
    first = engine.handle(state, TagEngineMessage("op", key, 0, TagOperation("op", actions.CANCEL)), 0)
    cancelled = [o.key for o in first.outgoing if isinstance(o.message.message, CancelWorkflow)]
    [following] = [o.message.message for o in first.outgoing if isinstance(o.message.message, TagOperation)]
    for workflow_id in cancelled:  # they end before the next page is handled
        state = engine.handle(state, TagEngineMessage("r", key, 0, RemoveTag(workflow_id)), 0).state
    second = engine.handle(state, TagEngineMessage("op2", key, 0, following), 0)
    cancelled += [o.key for o in second.outgoing if isinstance(o.message.message, CancelWorkflow)]
    assert sorted(cancelled) == [f"wf{i:03d}" for i in range(400)]
    assert isinstance(state, TagState) and len(state.ended) == tag_engine.REMEMBERED_ENDS
    late = engine.handle(state, TagEngineMessage("late", key, 0, AddTag(cancelled[-1])), 0)
    assert late.unchanged  # a late AddTag of a workflow that left does not bring it back
