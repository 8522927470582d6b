"""OpenTelemetry: one trace from client.start through the workflow engine's decisions, each task
attempt (retries included) and a child workflow; interceptors wrap task attempts and decisions."""

from __future__ import annotations

from collections.abc import Iterator

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
else:  # pragma: no cover - another module of the run set one up first
    trace.get_tracer_provider().add_span_processor(SimpleSpanProcessor(EXPORTER))  # type: ignore[attr-defined]
FLAKY: list[int] = []


@pf.task(retry=pf.RetryPolicy(max_attempts=3, initial_delay=0.01, jitter=0.0))
def wobbly(n: int) -> int:
    FLAKY.append(n)
    if len(FLAKY) == 1:
        raise ValueError("first attempt fails")
    return n * 2


@pf.workflow
async def inner(ctx: pf.WorkflowContext, n: int) -> int:
    return await ctx.task(wobbly, n)


@pf.workflow
async def outer(ctx: pf.WorkflowContext, n: int) -> int:
    return await ctx.child(inner, n) + 1


@pytest.fixture
def kit() -> Iterator[TestEnvironment]:
    EXPORTER.clear()
    FLAKY.clear()
    tracing.clear_interceptors()
    env = TestEnvironment(wobbly, inner, outer)
    yield env
    env.close()
    tracing.clear_interceptors()


def test_one_trace_from_the_start_through_decisions_attempts_and_children(kit: TestEnvironment) -> None:
    assert kit.client().start(outer, 4).result() == 9
    spans = EXPORTER.get_finished_spans()
    names = [s.name for s in spans]
    assert "pulsarflow.start outer" in names
    assert names.count("pulsarflow.task wobbly") == 2  # the failed attempt and its retry
    assert any(n == "pulsarflow.workflow StartWorkflow" for n in names)
    assert {s.context.trace_id for s in spans} == {spans[0].context.trace_id}, "everything in one trace"
    start = next(s for s in spans if s.name == "pulsarflow.start outer")
    assert all(s.parent is not None and s.parent.span_id == start.context.span_id
               for s in spans if s is not start), "every span is a child of the client's start"
    failed = [s for s in spans if s.name == "pulsarflow.task wobbly" and not s.status.is_ok]
    assert len(failed) == 1 and failed[0].attributes is not None and failed[0].attributes["attempt"] == 1


def test_interceptors_wrap_each_task_attempt_and_each_decision(kit: TestEnvironment) -> None:
    seen: list[str] = []

    def around_task(info: object, call):  # type: ignore[no-untyped-def]
        seen.append(f"task {info.task_name} #{info.attempt}")  # type: ignore[attr-defined]
        return call()

    def around_decision(workflow_id: str, message: str, call):  # type: ignore[no-untyped-def]
        seen.append(f"decision {message}")
        return call()

    tracing.add_task_interceptor(around_task)
    tracing.add_decision_interceptor(around_decision)
    assert kit.client().start(inner, 5).result() == 10
    assert seen[0] == "decision StartWorkflow"
    assert [s for s in seen if s.startswith("task")] == ["task wobbly #1", "task wobbly #2"]
    assert "decision TaskCompleted" in seen and "decision RetryTask" in seen
