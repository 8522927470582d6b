"""Completion from outside attacked: forged, truncated and stale tokens, a token used twice, completion
racing the task's timeout and a retry, after a cancel, for a finished workflow, a result of the wrong
shape; each is refused with a reason (or is a no-op), nothing is lost, nothing runs after close."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pulsarflow as pf
from pulsarflow.completion import PREFIX, CompletionToken
from pulsarflow.testing import TestEnvironment

TOKENS: list[str] = []
RUNS: list[str] = []


@dataclass
class Verdict:
    approved: bool
    by: str


@pf.task(service="humans", overall_timeout=60)
def ask(question: str) -> Verdict:
    TOKENS.append(pf.task_info().completion_token)
    pf.complete_later()
    raise AssertionError("never reached")


@pf.task(service="humans", retry=pf.RetryPolicy(max_attempts=3, initial_delay=5, jitter=0.0))
def flaky_ask(question: str) -> str:
    info = pf.task_info()
    TOKENS.append(info.completion_token)
    RUNS.append(f"attempt {info.attempt}")
    if info.attempt == 1:
        raise ValueError("the mail server was down")  # a retry is due in 5 s
    pf.complete_later()
    return "never"


@pf.task
def after_close(note: str) -> str:
    RUNS.append(note)
    return note


@pf.workflow
async def review(ctx: pf.WorkflowContext, question: str) -> str:
    try:
        verdict = await ctx.task(ask, question)
    except pf.TaskTimeoutError:
        return "nobody answered"
    except pf.WorkflowCancelledError:
        await ctx.task(after_close, "cleanup")
        raise
    return f"{question}: {'yes' if verdict.approved else 'no'} by {verdict.by}"


@pf.workflow
async def retried(ctx: pf.WorkflowContext) -> str:
    return await ctx.task(flaky_ask, "q")


@pytest.fixture(params=[None, 0], ids=["cached", "replayed"])
def kit(request: pytest.FixtureRequest) -> Iterator[TestEnvironment]:
    TOKENS.clear()
    RUNS.clear()
    env = TestEnvironment(ask, flaky_ask, after_close, review, retried, workflow_cache=request.param)
    yield env
    env.close()


def started(kit: TestEnvironment, workflow_id: str) -> pf.WorkflowHandle:
    handle = kit.client().start(review, "ship?", id=workflow_id)
    kit.run_until_idle()
    assert len(TOKENS) == 1
    return handle


def test_a_result_of_the_wrong_shape_is_refused_and_the_step_still_waits(kit: TestEnvironment) -> None:
    handle = started(kit, "c-shape")
    client = kit.client()
    with pytest.raises(pf.ControlRefusedError, match="cannot be read as what it returns"):
        client.complete_task(TOKENS[0], {"approved": True, "by": "ann", "extra": 1})  # no field 'extra'
    assert client.status("c-shape").blocked is None
    client.complete_task(TOKENS[0], {"approved": True, "by": "ann"})
    assert handle.result() == "ship?: yes by ann"


def test_a_result_that_does_not_decode_at_all_is_refused(kit: TestEnvironment) -> None:
    from pulsarflow.payloads import AesGcmCodec, CodecChain
    from pulsarflow.sdk.client import Client

    handle = started(kit, "c-codec")
    client = kit.client()
    sealed = Client(client.connection, client.codec, client.topics,
                    converter=CodecChain([AesGcmCodec({"other": b"k" * 32}, "other")]))
    with pytest.raises(pf.ControlRefusedError, match="cannot be read as what it returns .SerializationError"):
        sealed.complete_task(TOKENS[0], {"approved": False, "by": "bo"})
    client.complete_task(TOKENS[0], {"approved": False, "by": "bo"})
    assert handle.result() == "ship?: no by bo"


def test_completion_after_the_overall_timeout_is_refused(kit: TestEnvironment) -> None:
    handle = started(kit, "c-late")
    kit.advance(61)  # the task's overall timeout fires first
    assert handle.result() == "nobody answered"
    with pytest.raises(pf.ControlRefusedError, match="has finished|already done"):
        kit.client().complete_task(TOKENS[0], {"approved": True, "by": "late"})


def test_completion_just_before_the_timeout_wins_and_the_timer_changes_nothing(kit: TestEnvironment) -> None:
    handle = started(kit, "c-race")
    kit.advance(59)
    kit.client().complete_task(TOKENS[0], {"approved": True, "by": "just in time"})
    kit.advance(5)  # the timer fires now, for a step that is done
    assert handle.result() == "ship?: yes by just in time"


def test_completion_after_a_cancel_is_refused_and_the_cleanup_is_not_disturbed(kit: TestEnvironment) -> None:
    handle = started(kit, "c-cancel")
    client = kit.client()
    client.cancel("c-cancel")
    with pytest.raises(pf.ControlRefusedError, match="already done|has finished"):
        client.complete_task(TOKENS[0], {"approved": True, "by": "too late"})
    with pytest.raises(pf.WorkflowCancelledError):
        handle.result()
    assert RUNS == ["cleanup"]
    with pytest.raises(pf.ControlRefusedError, match=r"has finished \(CANCELLED\)"):
        client.complete_task(TOKENS[0], {"approved": True, "by": "later still"})


def test_completion_racing_a_retry_takes_one_outcome(kit: TestEnvironment) -> None:
    client = kit.client()
    handle = client.start(retried, id="c-retry")
    kit.run_until_idle()  # attempt 1 failed after handing out its token; attempt 2 is due in 5 s
    assert RUNS == ["attempt 1"]
    client.complete_task(TOKENS[0], "answered while the retry waited")
    kit.advance(10)  # the retry is dropped: the step no longer waits
    assert handle.result() == "answered while the retry waited"
    assert RUNS == ["attempt 1"]


def test_a_token_for_the_wrong_run_or_step_is_refused_and_nothing_is_lost(kit: TestEnvironment) -> None:
    handle = started(kit, "c-forged")
    client = kit.client()
    real = CompletionToken.decode(TOKENS[0])
    forged = [
        (CompletionToken(real.workflow_id, real.position, real.generation + 1, real.task_name), "is of run 1"),
        (CompletionToken(real.workflow_id, real.position, -3, real.task_name), "is of run -3"),
        (CompletionToken(real.workflow_id, 10**9, real.generation, real.task_name), "is not task 'ask'"),
        (CompletionToken(real.workflow_id, real.position, real.generation, "after_close"), "is not task"),
        (CompletionToken("c-forged-nope", real.position, real.generation, real.task_name), "no workflow"),
    ]
    for token, why in forged:
        with pytest.raises(pf.ControlRefusedError, match=why):
            client.complete_task(token.encode(), {"approved": True, "by": "forger"})
    client.complete_task(TOKENS[0], {"approved": True, "by": "the right person"})
    assert handle.result() == "ship?: yes by the right person"


def body(fields: object) -> str:
    return PREFIX + base64.urlsafe_b64encode(json.dumps(fields).encode()).decode().rstrip("=")


DAMAGED = [body(["w", 0, 0]), body(["w", 0, 0, "t", "extra"]), body(["w", True, 0, "t"]), body(["w", -1, 0, "t"]),
           body([1, 0, 0, "t"]), body({"workflow_id": "w"}), body(["w", 0.5, 0, "t"]), body(["w", 0, 0, None]),
           PREFIX + "@@@@", PREFIX, PREFIX + "e30"]


@pytest.mark.parametrize("token", DAMAGED)
def test_a_damaged_token_is_refused_before_anything_is_sent(kit: TestEnvironment, token: str) -> None:
    with pytest.raises(pf.DefinitionError, match="damaged|not a completion token"):
        kit.client().complete_task(token, 1)
    with pytest.raises(pf.DefinitionError, match="damaged|not a completion token"):
        kit.client().fail_task(token, "no")


@pytest.mark.parametrize("token", [None, 5, b"pft1.xyz", "", "pft2.abc", "x" * 100_000])
def test_something_that_is_no_token_is_refused(kit: TestEnvironment, token: object) -> None:
    with pytest.raises(pf.DefinitionError, match="is not a completion token"):
        kit.client().complete_task(token, 1)  # type: ignore[arg-type]


def test_a_token_with_an_id_no_client_may_send_is_refused_with_the_limit(kit: TestEnvironment) -> None:
    from pulsarflow.errors import LimitExceededError

    for workflow_id, why in (("x" * 5000, "at most 1,000"), ("a\0b", "NUL")):
        with pytest.raises(LimitExceededError, match=why):
            kit.client().complete_task(CompletionToken(workflow_id, 0, 0, "ask").encode(), 1)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=120))
def test_any_string_decodes_as_a_token_or_raises_a_definition_error(text: str) -> None:
    for token in (text, PREFIX + text):
        try:
            found = CompletionToken.decode(token)
        except pf.DefinitionError:
            continue
        assert found.encode() == token or CompletionToken.decode(found.encode()) == found
        assert isinstance(found.position, int) and found.position >= 0
