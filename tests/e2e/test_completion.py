"""Completion from outside: a task hands back a token (``pulsarflow.complete_later``) and a client
completes or fails its step later; a used, damaged or stale token is refused, nothing is lost."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import pulsarflow as pf
from pulsarflow.testing import TestEnvironment

TOKENS: list[str] = []


@pf.task(service="humans")
def ask_a_person(question: str) -> str:
    TOKENS.append(pf.task_info().completion_token)
    pf.complete_later()
    return "never"


@pf.workflow
async def approval(ctx: pf.WorkflowContext, question: str) -> str:
    try:
        answer = await ctx.task(ask_a_person, question)
    except pf.TaskFailedError as exc:
        return f"refused: {exc.error.message}"
    return f"{question} -> {answer}"


@pytest.fixture(params=[None, 0], ids=["cached", "replayed"])
def kit(request: pytest.FixtureRequest) -> Iterator[TestEnvironment]:
    TOKENS.clear()
    env = TestEnvironment(ask_a_person, approval, workflow_cache=request.param)
    yield env
    env.close()


def test_a_client_completes_the_step_later_and_the_workflow_goes_on(kit: TestEnvironment) -> None:
    client = kit.client()
    handle = client.start(approval, "ship it?", id="ap-1")
    kit.run_ready()
    assert client.status("ap-1").status == "RUNNING" and len(TOKENS) == 1
    assert "completed" in client.complete_task(TOKENS[0], "yes")
    assert handle.result() == "ship it? -> yes"


def test_a_client_fails_the_step_and_the_workflow_sees_a_task_failure(kit: TestEnvironment) -> None:
    client = kit.client()
    handle = client.start(approval, "ship it?", id="ap-2")
    kit.run_ready()
    client.fail_task(TOKENS[0], "not today")
    assert handle.result() == "refused: not today"


def test_a_token_is_good_for_one_outcome(kit: TestEnvironment) -> None:
    client = kit.client()
    handle = client.start(approval, "q", id="ap-3")
    kit.run_ready()
    client.complete_task(TOKENS[0], "first")
    with pytest.raises(pf.ControlRefusedError, match="already done|has finished"):
        client.complete_task(TOKENS[0], "second")
    assert handle.result() == "q -> first"


def test_a_damaged_token_or_one_for_no_workflow_is_refused_clearly(kit: TestEnvironment) -> None:
    client = kit.client()
    with pytest.raises(pf.DefinitionError, match="is not a completion token"):
        client.complete_task("hello", 1)
    with pytest.raises(pf.DefinitionError, match="damaged"):
        client.complete_task("pft1.!!!", 1)
    from pulsarflow.completion import CompletionToken

    with pytest.raises(pf.ControlRefusedError, match="no workflow 'ghost'"):
        client.complete_task(CompletionToken("ghost", 0, 0, "ask_a_person").encode(), 1)


def test_a_token_of_another_step_is_refused(kit: TestEnvironment) -> None:
    from pulsarflow.completion import CompletionToken

    client = kit.client()
    handle = client.start(approval, "q", id="ap-4")
    kit.run_ready()
    wrong = CompletionToken("ap-4", 0, 0, "another_task").encode()
    with pytest.raises(pf.ControlRefusedError, match="is not task 'another_task'"):
        client.complete_task(wrong, 1)
    client.complete_task(TOKENS[0], "ok")
    assert handle.result() == "q -> ok"
