"""Tracing attacked: malformed traceparents in messages, no OpenTelemetry at all, the API without an
SDK, and interceptors that raise, skip the call, call it twice or return something else; none of it
may fail or change a workflow."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import pulsarflow as pf
from pulsarflow import tracing
from pulsarflow.testing import TestEnvironment

EXPORTER = InMemorySpanExporter()
if not isinstance(trace.get_tracer_provider(), TracerProvider):
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(EXPORTER))
    trace.set_tracer_provider(provider)
else:  # another module of the run set one up first
    trace.get_tracer_provider().add_span_processor(SimpleSpanProcessor(EXPORTER))  # type: ignore[attr-defined]
ATTEMPTS: list[int] = []


@pf.task(retry=pf.RetryPolicy(max_attempts=3, initial_delay=0.01, jitter=0.0))
def double(n: int) -> int:
    ATTEMPTS.append(pf.task_info().attempt)
    return n * 2


@pf.workflow
async def traced(ctx: pf.WorkflowContext, n: int) -> int:
    first = await ctx.task(double, n)
    await ctx.sleep(5)
    return await ctx.task(double, first) + int(await ctx.wait_signal("plus"))


@pytest.fixture
def kit() -> Iterator[TestEnvironment]:
    EXPORTER.clear()
    ATTEMPTS.clear()
    tracing.clear_interceptors()
    env = TestEnvironment(double, traced)
    yield env
    env.close()
    tracing.clear_interceptors()


def run(kit: TestEnvironment, workflow_id: str) -> int:
    client = kit.client()
    handle = client.start(traced, 3, id=workflow_id)
    client.signal(workflow_id, "plus", 1)
    return int(handle.result(timeout=30))


MALFORMED = ["garbage", "00-" + "0" * 32 + "-" + "0" * 16 + "-01", "ff-" + "a" * 32 + "-" + "b" * 16 + "-01",
             "00-" + "g" * 32 + "-" + "b" * 16 + "-01", "00-abc", "-" * 10_000, "00-\0-\udc00"[:5], " "]


@pytest.mark.parametrize("traceparent", MALFORMED, ids=range(len(MALFORMED)))
def test_a_malformed_traceparent_in_the_start_does_not_fail_the_workflow(kit: TestEnvironment, traceparent: str,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tracing, "current_traceparent", lambda: traceparent)
    assert run(kit, "mal") == 13
    state = kit.state("mal")
    assert state is not None and state.trace == traceparent  # carried as given, and harmless
    assert any(s.name == "pulsarflow.workflow StartWorkflow" for s in EXPORTER.get_finished_spans())


def test_without_opentelemetry_nothing_is_traced_and_nothing_fails(kit: TestEnvironment,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tracing, "_trace", None)
    assert tracing.current_traceparent() is None
    assert run(kit, "no-otel") == 13
    assert EXPORTER.get_finished_spans() == ()
    state = kit.state("no-otel")
    assert state is not None and state.trace is None


def test_with_the_api_and_no_sdk_workflows_run_untraced() -> None:
    script = textwrap.dedent("""
        import pulsarflow as pf
        from pulsarflow import tracing
        from pulsarflow.testing import TestEnvironment

        @pf.task
        def one() -> int:
            return 1

        @pf.workflow
        async def flow(ctx: pf.WorkflowContext) -> int:
            return await ctx.task(one) + 1

        env = TestEnvironment(one, flow)
        print(env.client().start(flow, id="w").result(timeout=30), tracing.current_traceparent(), env.state("w").trace)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["2", "None", "None"]


Interceptor = Callable[[str, str, Callable[[], Any]], Any]


def raises_before(workflow_id: str, message: str, call: Callable[[], Any]) -> Any:
    raise RuntimeError("metrics backend down")


def raises_after(workflow_id: str, message: str, call: Callable[[], Any]) -> Any:
    call()
    raise RuntimeError("metrics backend down, after the decision")


def never_calls(workflow_id: str, message: str, call: Callable[[], Any]) -> Any:
    return None


def calls_twice(workflow_id: str, message: str, call: Callable[[], Any]) -> Any:
    call()
    return call()


def returns_other(workflow_id: str, message: str, call: Callable[[], Any]) -> Any:
    call()
    return "not a decision"


@pytest.mark.parametrize("bad", [raises_before, raises_after, never_calls, calls_twice, returns_other],
                         ids=lambda f: f.__name__)
def test_a_misbehaving_decision_interceptor_changes_nothing(kit: TestEnvironment, bad: Interceptor,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    decided: list[str] = []

    def counting(workflow_id: str, message: str, call: Callable[[], Any]) -> Any:
        decided.append(message)
        return call()

    tracing.add_decision_interceptor(counting)
    tracing.add_decision_interceptor(bad)  # inner to the counting one
    tracing.add_decision_interceptor(counting)
    with caplog.at_level(logging.WARNING, logger="pulsarflow.tracing"):
        assert run(kit, f"bad-{bad.__name__}") == 13
    assert ATTEMPTS == [1, 1]  # each task ran once: no decision was made twice or lost
    # once for each counting interceptor, outer and inner (the inner one twice when the bad one calls on twice)
    assert decided.count("StartWorkflow") == (3 if bad is calls_twice else 2)
    if bad is not calls_twice:
        assert "decision interceptor" in caplog.text


def test_a_task_interceptor_that_raises_fails_that_attempt_which_is_retried(kit: TestEnvironment) -> None:
    calls: list[int] = []

    def flaky(info: Any, call: Callable[[], Any]) -> Any:
        calls.append(info.attempt)
        if info.attempt == 1:
            raise RuntimeError("the interceptor failed")
        return call()

    tracing.add_task_interceptor(flaky)
    assert run(kit, "task-interceptor") == 13
    assert calls == [1, 2, 1, 2] and ATTEMPTS == [2, 2]
