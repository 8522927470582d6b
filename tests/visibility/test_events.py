"""Events derived by the runtime: what each kind of workflow records, ids, duplicates, sinks, metrics."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import pulsarflow as pf
from pulsarflow.clock import SystemClock, VirtualClock
from pulsarflow.codec import Codec
from pulsarflow.engines.outgoing import Decision
from pulsarflow.events.derive import derive
from pulsarflow.events.memory import InMemoryEventStore
from pulsarflow.events.metrics import Metrics
from pulsarflow.events.recorder import recorder_for
from pulsarflow.events.topic import TopicEventSink
from pulsarflow.messages import WorkflowEngineMessage, WorkflowState
from pulsarflow.messages import events as ev
from pulsarflow.messages.events import WorkflowEvent
from pulsarflow.testing import TestEnvironment
from pulsarflow.transport.memory import InMemoryTransport
from tests.e2e import flows

CODEC = Codec()


@pytest.fixture(params=[False, True], ids=["once", "twice"])
def env(request: pytest.FixtureRequest) -> Iterator[TestEnvironment]:
    flows.CALLS.clear()
    flows.FLAKY.clear()
    environment = TestEnvironment(*flows.ALL, duplicate_messages=request.param, events=InMemoryEventStore())
    yield environment
    environment.close()


def history(env: TestEnvironment, workflow_id: str) -> list[WorkflowEvent]:
    assert isinstance(env.events, InMemoryEventStore)
    return env.events.history(workflow_id)


def types(env: TestEnvironment, workflow_id: str) -> list[str]:
    return [e.type for e in history(env, workflow_id)]


def test_a_retried_task_records_each_attempt_with_its_error() -> None:
    flows.FLAKY.clear()  # runs once: a duplicated attempt would change how often the task fails
    env = TestEnvironment(*flows.ALL, events=InMemoryEventStore())
    assert env.client().start(flows.retrying, "k", 2, id="r1").result() == "k ok after 3"
    assert types(env, "r1") == [
        ev.WORKFLOW_STARTED, ev.TASK_DISPATCHED,
        ev.TASK_STARTED, ev.TASK_RETRIED, ev.TASK_STARTED, ev.TASK_RETRIED, ev.TASK_STARTED,
        ev.TASK_COMPLETED, ev.WORKFLOW_COMPLETED,
    ]
    events = history(env, "r1")
    retries = [e for e in events if e.type == ev.TASK_RETRIED]
    assert [r.attempt for r in retries] == [1, 2]
    assert all(r.error is not None and r.error.type == "ConnectionError" for r in retries)
    assert "attempt 1 of k failed" in retries[0].error.message  # type: ignore[union-attr]
    assert "Traceback" in retries[0].error.traceback  # type: ignore[union-attr]
    assert retries[0].due_at_ms == retries[0].at_ms + 1000  # the backoff of the policy (no jitter)
    started = [e for e in events if e.type == ev.TASK_STARTED]
    assert [s.attempt for s in started] == [1, 2, 3] and all(s.name == "flaky" for s in started)
    completed = events[-2]
    assert (completed.position, completed.attempt, completed.related_id) == (0, 3, "r1/0")
    assert CODEC.decode(WorkflowEvent, CODEC.encode(completed)) == completed
    last = events[-1]
    assert (last.status, last.workflow_name, last.data) == ("COMPLETED", "retrying", b'["k ok after 3"]')


def test_failures_carry_the_error_chain(env: TestEnvironment) -> None:
    with pytest.raises(pf.WorkflowFailedError):
        env.client().start(flows.child_fails, "x", id="cf").result()
    parent = history(env, "cf")
    assert [e.type for e in parent] == [ev.WORKFLOW_STARTED, ev.CHILD_STARTED, ev.CHILD_FAILED, ev.WORKFLOW_FAILED]
    assert parent[1].related_id == "cf/0" and parent[1].name == "non_retryable"
    assert parent[-1].error is not None and parent[-1].error.chain()[-1].type == "KeyError"
    child = history(env, "cf/0")
    assert child[0].related_id == "cf"  # the parent
    assert child[-1].type == ev.WORKFLOW_FAILED and child[-1].status == "FAILED"


def test_timers_signals_and_side_effects(env: TestEnvironment) -> None:
    client = env.client()
    handle = client.start(flows.approval, 100, id="a1")
    env.run_ready()
    client.signal("a1", "decision", "yes")
    assert handle.result() == "got yes"
    assert types(env, "a1") == [ev.WORKFLOW_STARTED, ev.SIGNAL_AWAITED, ev.SIGNAL_RECEIVED, ev.WORKFLOW_COMPLETED]
    received = history(env, "a1")[2]
    # a signal belongs to the workflow, not to a step: the wait that takes it is decided by the code
    assert (received.name, received.position, received.data) == ("decision", None, b'["yes"]')
    client.start(flows.determinism, id="d1").result()
    assert types(env, "d1") == [ev.WORKFLOW_STARTED, ev.SIDE_EFFECT_RECORDED, ev.TIMER_SET, ev.TIMER_FIRED,
                                ev.WORKFLOW_COMPLETED]
    timer = history(env, "d1")[2]
    assert timer.due_at_ms == timer.at_ms + 1000


def test_a_signal_timeout_and_a_workflow_timeout(env: TestEnvironment) -> None:
    client = env.client()
    assert client.start(flows.approval, 5, id="a2").result() == "timed out"
    assert ev.SIGNAL_TIMED_OUT in types(env, "a2")
    with pytest.raises(pf.WorkflowFailedError):
        client.start(flows.too_long, id="t1").result()
    assert types(env, "t1")[-2:] == [ev.WORKFLOW_TIMED_OUT, ev.WORKFLOW_FAILED]


def test_cancel_and_retry_are_recorded(env: TestEnvironment, tmp_path: Path) -> None:
    client = env.client()
    handle = client.start(flows.holds_strictly, "s", id="s1")
    env.run_ready()
    client.cancel("s1", "bye")
    with pytest.raises(pf.WorkflowCancelledError):
        handle.result()
    assert types(env, "s1")[-1] == ev.WORKFLOW_CANCELLED
    assert [e.name for e in history(env, "s1") if e.type == ev.CANCEL_REQUESTED] == ["bye"]
    flag = tmp_path / "fixed"
    with pytest.raises(pf.WorkflowFailedError):
        client.start(flows.resumable, str(flag), id="r2").result()
    flag.write_text("x")
    client.retry("r2")
    client.get_handle("r2").result()
    after_failure = types(env, "r2")[types(env, "r2").index(ev.WORKFLOW_FAILED):]
    assert after_failure[:2] == [ev.WORKFLOW_FAILED, ev.RETRY_REQUESTED]
    assert ev.WORKFLOW_RESTARTED in after_failure and after_failure[-1] == ev.WORKFLOW_COMPLETED


def test_duplicated_delivery_records_each_event_once() -> None:
    def run(duplicate: bool) -> tuple[list[tuple[str, int | None]], int, int]:
        store = InMemoryEventStore()
        env = TestEnvironment(*flows.ALL, duplicate_messages=duplicate, events=store)
        env.client().start(flows.parent, 1, id="p").result()
        kept = [e for w in ("p", "p/0", "p/1", "p/2") for e in store.history(w)]
        assert len({e.event_id for e in kept}) == len(kept)
        return [(e.type, e.position) for e in kept], len(kept), len(store.read())

    once, kept_once, emitted_once = run(False)
    twice, kept_twice, emitted_twice = run(True)
    assert once == twice and kept_once == kept_twice == emitted_once > 10
    assert emitted_twice > kept_twice  # duplicates were emitted (at-least-once) and dropped by id


def test_an_unknown_message_type_still_yields_an_event() -> None:
    @dataclass(frozen=True)
    class TagAdded:
        name: str
        position: int = 3

    state = WorkflowState("w", "order", b"[]", "RUNNING", 0)
    envelope = WorkflowEngineMessage("m-1", "w", 0, TagAdded("vip"))  # type: ignore[arg-type]
    events = derive(envelope, state, Decision(state), 5, 5)
    assert [(e.type, e.name, e.position, e.event_id) for e in events] == [("TagAdded", "vip", 3, "m-1/TagAdded/3")]

    @dataclass(frozen=True)
    class AuditEngineMessage:
        message_id: str
        message: TagAdded
        workflow_id: str = "w9"

    other = derive(AuditEngineMessage("m-2", TagAdded("x")), None, Decision(None), 7, 7)
    assert [(e.type, e.workflow_id, e.source) for e in other] == [("TagAdded", "w9", "AuditEngineMessage")]


def test_the_tag_index_is_bookkeeping_not_workflow_events() -> None:
    from pulsarflow.pulsar.function import build_handler

    config = {"engine": "tag", "modules": "", "app": "vis"}
    assert build_handler(config, object(), None).observer is None  # no events, no metrics asked


def test_no_sink_and_no_metrics_means_no_observer() -> None:
    assert recorder_for(SystemClock(), None, None) is None
    env = pf.EmbeddedEnvironment(*flows.ALL)  # off by default (docs/visibility.md)
    assert env.events is None and env._workflows.observer is None and env._tasks.observer is None


def test_the_topic_sink_publishes_encoded_events_keyed_by_workflow() -> None:
    clock = VirtualClock()
    transport = InMemoryTransport(clock)
    sink = TopicEventSink(transport, CODEC, "persistent://public/default/app-events")
    event = WorkflowEvent("e1", ev.TIMER_SET, "w1", 10, position=2, due_at_ms=99)
    sink.emit([event])
    delivery = transport.poll()
    assert delivery is not None
    assert (delivery.topic, delivery.key) == ("persistent://public/default/app-events", "w1")
    assert CODEC.decode(WorkflowEvent, delivery.payload) == event


def test_metrics_count_per_engine_task_and_workflow() -> None:
    samples: list[tuple[str, float]] = []
    metrics = Metrics(reporter=lambda name, value: samples.append((name, value)))
    env = TestEnvironment(*flows.ALL, metrics=metrics)
    env.client().start(flows.retrying, "m", 1, id="m1").result()
    env.client().start(flows.sequence, 3, id="s1").result()
    assert metrics.counter("pulsarflow_task_attempts_total", task="flaky") == 2
    assert metrics.counter("pulsarflow_task_retries_total", task="flaky") == 1
    assert metrics.counter("pulsarflow_tasks_total", task="add", outcome="completed") == 3
    assert metrics.counter("pulsarflow_workflows_total", workflow="sequence", status="COMPLETED") == 1
    assert metrics.counter("pulsarflow_messages_handled_total", engine="executor", type="ExecuteTask") == 5
    text = metrics.render()
    assert "# TYPE pulsarflow_task_attempt_seconds histogram" in text
    assert 'pulsarflow_task_attempt_seconds_count{task="add"} 3' in text
    assert 'pulsarflow_task_attempt_seconds_bucket{task="add",le="+Inf"} 3' in text
    assert 'pulsarflow_messages_handled_total{engine="workflow",type="StartWorkflow"} 2' in text
    assert ("task_ms_add", 0.0) in samples and any(name.startswith("handle_ms_workflow_") for name, _ in samples)


def test_metric_labels_are_escaped() -> None:
    metrics = Metrics()
    metrics._inc("pulsarflow_events_total", (("type", 'we"ird\\\n'),))
    assert 'pulsarflow_events_total{type="we\\"ird\\\\\\n"} 1' in metrics.render()


def test_the_test_environment_keeps_events_by_default() -> None:
    env = TestEnvironment(*flows.ALL)
    env.client().start(flows.sequence, 2, id="q").result()
    assert [e.type for e in env.events_of("q")] == [
        ev.WORKFLOW_STARTED, ev.TASK_DISPATCHED, ev.TASK_STARTED, ev.TASK_COMPLETED,
        ev.TASK_DISPATCHED, ev.TASK_STARTED, ev.TASK_COMPLETED, ev.WORKFLOW_COMPLETED]
    plain = TestEnvironment(*flows.ALL, events=TopicEventSink(env.transport, CODEC, "t"))
    with pytest.raises(pf.DefinitionError, match="in-memory event store"):
        plain.events_of("q")
