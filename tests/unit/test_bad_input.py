"""Bad input gets a clear error at the call site."""

from __future__ import annotations

import threading

import pytest

import pulsarflow as pf
from pulsarflow.testing import TestEnvironment


def plain(x: int) -> int:
    return x


@pf.task
def ok(x: int) -> int:
    return x


@pf.workflow
async def calls_plain(ctx: pf.WorkflowContext) -> int:
    return await ctx.task(plain, 1)


@pf.workflow
async def wf(ctx: pf.WorkflowContext, x: object) -> object:
    return await ctx.task(ok, x)


@pf.workflow
async def waits(ctx: pf.WorkflowContext) -> object:
    return await ctx.wait_signal("never")


def test_undecorated_function_used_as_a_task() -> None:
    env = TestEnvironment(calls_plain)
    with pytest.raises(pf.WorkflowBlockedError, match="'plain' is not a task: decorate it with @pulsarflow.task"):
        env.client().start(calls_plain).result()


def test_registering_or_starting_something_undecorated() -> None:
    with pytest.raises(pf.DefinitionError, match="decorate it with @pulsarflow.task or @pulsarflow.workflow"):
        TestEnvironment(plain)
    with pytest.raises(pf.DefinitionError, match="is a task, not a workflow"):
        TestEnvironment(ok).client().start(ok, 1)


def test_sync_workflow_is_refused_at_declaration() -> None:
    with pytest.raises(pf.DefinitionError, match="async def"):
        pf.workflow(lambda ctx: None)


def test_unknown_workflow_name_at_the_client() -> None:
    with pytest.raises(pf.DefinitionError, match="unknown workflow 'missing'.*registered workflows: \\['wf'\\]"):
        TestEnvironment(wf, ok).client().start("missing")


def test_unknown_task_fails_the_workflow_with_the_registered_names() -> None:
    env = TestEnvironment(wf)  # task 'ok' not registered with any worker
    with pytest.raises(pf.WorkflowFailedError, match="unknown task 'ok'"):
        env.client().start(wf, 1).result()


def test_arguments_that_cannot_be_serialized() -> None:
    env = TestEnvironment(wf, ok)
    expected = "arguments of workflow 'wf' cannot be serialized.*type lock is not serializable"
    with pytest.raises(pf.SerializationError, match=expected):
        env.client().start(wf, threading.Lock())


def test_signal_to_an_unknown_workflow() -> None:
    env = TestEnvironment(wf, ok)
    with pytest.raises(pf.WorkflowNotFoundError, match="no running workflow 'ghost'"):
        env.client().signal("ghost", "go", 1)


def test_result_of_an_id_that_does_not_exist() -> None:
    env = TestEnvironment(wf, ok)
    with pytest.raises(pf.WorkflowNotFoundError, match="no workflow 'ghost'"):
        env.client().get_handle("ghost").result()


def test_waiting_for_a_workflow_that_can_never_finish_times_out_clearly() -> None:
    env = TestEnvironment(waits)
    with pytest.raises(pf.ResultTimeoutError, match="waiting on something"):
        env.client().start(waits).result(timeout=5)


def test_bad_retry_policy() -> None:
    with pytest.raises(pf.DefinitionError, match="max_attempts must be at least 1"):
        pf.RetryPolicy(max_attempts=0)
