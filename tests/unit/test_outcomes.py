"""Outcome markers: a redelivered attempt publishes its recorded outcome again instead of running."""

from __future__ import annotations

from typing import Any

import pytest

import pulsarflow as pf
from pulsarflow.clock import VirtualClock
from pulsarflow.codec import Codec
from pulsarflow.converter import JsonConverter
from pulsarflow.errors import BackendError
from pulsarflow.interpreter.registry import Registry
from pulsarflow.messages import ExecuteTask, TaskCompleted, TaskExecutorMessage, WorkflowEngineMessage
from pulsarflow.messages.common import RetrySpec
from pulsarflow.runtime.batch import BatchHandler
from pulsarflow.runtime.executor import TaskExecutor
from pulsarflow.runtime.handler import MessageHandler
from pulsarflow.runtime.outcomes import (
    FunctionStateOutcomeStore,
    Marker,
    MemoryOutcomeStore,
    Outcomes,
    RedisOutcomeStore,
    WatchedTransport,
)
from pulsarflow.topics import Topics
from pulsarflow.transport.memory import InMemoryTransport

RUNS: list[str] = []
TOPICS = Topics()
CODEC = Codec()
CONVERTER = JsonConverter()


@pf.task
def counted(name: str) -> str:
    RUNS.append(name)
    return f"done {name}"


@pf.task
def fails(name: str) -> str:
    RUNS.append(name)
    raise ValueError("no")


SEEN: list[bool] = []  # whether the marker of wf-a/0 was stored when ``peeks`` ran
PEEKED: list[MemoryOutcomeStore] = []


@pf.task
def peeks(name: str) -> str:
    SEEN.append("wf-a/0" in PEEKED[0].markers)
    return name


@pytest.fixture(autouse=True)
def _fresh_runs() -> None:
    RUNS.clear()


class Executor:
    """One executor process: its handler, its transport, and what it published."""

    def __init__(self, store: Any, clock: VirtualClock, check_after_ms: int = 1000, fail_flush: bool = False,
                 eager_ms: float = 20, always: bool = False, started_ms: int | None = None):
        self.outcomes = Outcomes(store, CODEC, check_after_ms=check_after_ms, background=False,
                                 started_ms=clock.now_ms() if started_ms is None else started_ms, always=always)
        self.memory = InMemoryTransport(clock)
        if fail_flush:
            def refuse() -> None:
                raise BackendError("broker down")
            self.memory.flush = refuse  # type: ignore[method-assign]
        self.transport = WatchedTransport(self.memory, self.outcomes, eager_ms)
        executor = TaskExecutor(Registry([counted, fails, peeks]), CONVERTER, TOPICS, clock, self.outcomes)
        self.handler = MessageHandler(executor, CODEC, self.transport, clock, None, TOPICS.dead_letters)

    def published(self) -> list[bytes]:
        out = []
        while (delivery := self.memory.poll()) is not None:
            out.append(delivery.payload)
        return out


def execute(name: str, position: int = 0, attempt: int = 1, at_ms: int = 0, task: str = "counted",
            generation: int = 0) -> bytes:
    message = ExecuteTask(f"wf-{name}", position, "default", task, CONVERTER.encode([name]), attempt=attempt,
                          first_attempt_at_ms=at_ms, retry=RetrySpec(max_attempts=3), generation=generation)
    return CODEC.encode(TaskExecutorMessage(f"m-{name}-{position}-{attempt}", message.task_id, at_ms, message))


def outcome(payload: bytes) -> Any:
    return CODEC.decode(WorkflowEngineMessage, payload).message


def test_a_redelivered_attempt_is_not_run_again_and_its_outcome_is_published_again() -> None:
    clock, store = VirtualClock(), MemoryOutcomeStore()
    executor = Executor(store, clock)
    message = execute("a", at_ms=clock.now_ms())
    executor.handler.handle(TOPICS.executor("default"), message)
    first = executor.published()
    executor.handler.handle(TOPICS.executor("default"), message)  # the same process, from its memory
    assert RUNS == ["a"]
    assert executor.published() == first
    assert isinstance(outcome(first[0]), TaskCompleted)


def test_another_executor_reads_the_marker_of_an_old_message_from_the_store() -> None:
    clock, store = VirtualClock(), MemoryOutcomeStore()
    message = execute("a", at_ms=clock.now_ms())
    first = Executor(store, clock)
    first.handler.handle(TOPICS.executor("default"), message)
    published = first.published()
    clock.advance(5_000)  # redelivered after a broker restart: older than check_after_ms
    second = Executor(store, clock)
    second.handler.handle(TOPICS.executor("default"), message)
    assert RUNS == ["a"]
    assert second.published() == published


def test_a_fresh_message_is_not_looked_up_in_the_store_unless_asked_to() -> None:
    clock, store = VirtualClock(), MemoryOutcomeStore()
    message = execute("a", at_ms=clock.now_ms())
    Executor(store, clock).handler.handle(TOPICS.executor("default"), message)
    Executor(store, clock).handler.handle(TOPICS.executor("default"), message)  # 0 ms old: not looked up
    Executor(store, clock, check_after_ms=0, always=True).handler.handle(TOPICS.executor("default"), message)
    assert RUNS == ["a", "a"]


def test_a_message_dispatched_while_the_process_ran_is_looked_up_in_its_memory_only() -> None:
    clock, store = VirtualClock(), MemoryOutcomeStore()
    started = clock.now_ms()
    clock.advance(2_000)
    message = execute("a", at_ms=clock.now_ms())  # dispatched after both processes below started
    Executor(store, clock).handler.handle(TOPICS.executor("default"), message)
    clock.advance(10_000)

    running = Executor(store, clock, started_ms=started)  # running since before the message: not its own
    running.handler.handle(TOPICS.executor("default"), message)  # so it is not looked up, and runs again
    Executor(store, clock, started_ms=started, always=True).handler.handle(TOPICS.executor("default"), message)
    assert RUNS == ["a", "a"]


def test_no_marker_when_the_flush_failed() -> None:
    clock, store = VirtualClock(), MemoryOutcomeStore()
    message = execute("a", at_ms=clock.now_ms())
    with pytest.raises(BackendError):
        Executor(store, clock, fail_flush=True).handler.handle(TOPICS.executor("default"), message)
    assert store.markers == {}
    clock.advance(5_000)
    Executor(store, clock).handler.handle(TOPICS.executor("default"), message)
    assert RUNS == ["a", "a"]


def test_no_marker_for_an_outcome_that_was_never_sent() -> None:
    store = MemoryOutcomeStore()
    outcomes = Outcomes(store, CODEC, background=False)
    task = CODEC.decode(TaskExecutorMessage, execute("a")).message
    completed = TaskCompleted(0, CONVERTER.encode(["x"]), 1, 0)
    from pulsarflow.engines import messages_out

    outcomes.completed(task, [messages_out.to_workflow(TOPICS, task.workflow_id, completed, 0)])
    outcomes.flushed()  # a flush of something else: this outcome's bytes were not among the sends
    assert store.markers == {}
    assert outcomes.recorded(task, 10_000) is None


def test_a_failed_attempt_is_recorded_too_and_an_earlier_attempt_after_a_later_one_is_dropped() -> None:
    clock, store = VirtualClock(), MemoryOutcomeStore()
    executor = Executor(store, clock)
    executor.handler.handle(TOPICS.executor("default"), execute("f", task="fails", attempt=1))
    retry = executor.published()
    executor.handler.handle(TOPICS.executor("default"), execute("f", task="fails", attempt=1))
    assert executor.published() == retry  # the same RetryTask again, not a second run
    executor.handler.handle(TOPICS.executor("default"), execute("f", task="fails", attempt=2))
    executor.published()
    executor.handler.handle(TOPICS.executor("default"), execute("f", task="fails", attempt=1))
    assert executor.published() == []  # attempt 2 ran, so attempt 1's outcome was recorded long ago
    assert RUNS == ["f", "f"]


def test_a_new_generation_of_the_step_runs() -> None:
    clock, store = VirtualClock(), MemoryOutcomeStore()
    executor = Executor(store, clock)
    executor.handler.handle(TOPICS.executor("default"), execute("g"))
    executor.handler.handle(TOPICS.executor("default"), execute("g", generation=1))
    assert RUNS == ["g", "g"]


def test_a_batch_with_redeliveries_runs_each_attempt_once() -> None:
    clock, store = VirtualClock(), MemoryOutcomeStore()
    executor = Executor(store, clock)
    batch = BatchHandler(executor.handler)
    topic = TOPICS.executor("default")
    batch.handle_batch([(topic, execute("a")), (topic, execute("b"))])
    first = executor.published()
    batch.handle_batch([(topic, execute("b")), (topic, execute("c")), (topic, execute("a"))])
    again = executor.published()
    assert sorted(RUNS) == ["a", "b", "c"]
    assert set(first) <= set(again)  # a's and b's outcomes published again, as they were
    assert len(again) == 3


@pytest.mark.parametrize(("eager_ms", "seen"), [(0, [True]), (60_000, [False])])
def test_an_outcome_gets_its_marker_before_its_batch_ends(eager_ms: float, seen: list[bool]) -> None:
    clock, store = VirtualClock(), MemoryOutcomeStore()
    PEEKED[:] = [store]
    SEEN.clear()
    executor = Executor(store, clock, eager_ms=eager_ms)
    topic = TOPICS.executor("default")
    BatchHandler(executor.handler).handle_batch([(topic, execute("a")), (topic, execute("b", task="peeks"))])
    assert seen == SEEN
    assert set(store.markers) == {"wf-a/0", "wf-b/0"}  # both once the batch is done


class FakeState:
    """A function's state context: str values under str keys."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}

    def get_state(self, key: str) -> bytes | None:
        value = self.values.get(key)
        return value.encode() if value is not None else None

    def put_state(self, key: str, value: str) -> None:
        assert isinstance(value, str)
        self.values[key] = value


def test_function_state_keeps_a_fixed_number_of_slots_and_never_misreads_a_collision() -> None:
    clock, context = VirtualClock(), FakeState()
    store = FunctionStateOutcomeStore(context, slots=1)
    executor = Executor(store, clock)
    executor.handler.handle(TOPICS.executor("default"), execute("a"))
    executor.handler.handle(TOPICS.executor("default"), execute("b"))  # the same slot: a's marker is gone
    assert len(context.values) == 1
    clock.advance(5_000)
    later = Executor(store, clock)
    later.handler.handle(TOPICS.executor("default"), execute("b"))  # its marker is there: not run
    later.handler.handle(TOPICS.executor("default"), execute("a"))  # the slot names b: a runs again
    assert RUNS == ["a", "b", "a"]


class FakeRedis:
    def __init__(self) -> None:
        self.values: dict[str, bytes] = {}
        self.expiries: dict[str, int] = {}

    def get(self, key: str) -> bytes | None:
        return self.values.get(key)

    def pipeline(self, transaction: bool = True) -> FakeRedis:
        return self

    def set(self, key: str, value: bytes, px: int) -> None:
        self.values[key], self.expiries[key] = value, px

    def execute(self) -> None:
        pass


def test_redis_markers_expire() -> None:
    clock, client = VirtualClock(), FakeRedis()
    executor = Executor(RedisOutcomeStore(client, "p:outcome:", ttl_ms=60_000), clock)
    executor.handler.handle(TOPICS.executor("default"), execute("a"))
    assert client.expiries == {"p:outcome:wf-a/0": 60_000}


class DownStore:
    calls = 0

    def get(self, task_id: str) -> bytes | None:
        self.calls += 1
        raise ConnectionError("refused")

    def put_many(self, markers: list[tuple[str, bytes]]) -> None:
        self.calls += 1
        raise ConnectionError("refused")


def test_a_store_outage_never_holds_tasks_back() -> None:
    clock, store = VirtualClock(), DownStore()
    executor = Executor(store, clock, check_after_ms=0)
    for name in "abc":
        executor.handler.handle(TOPICS.executor("default"), execute(name))
    assert RUNS == ["a", "b", "c"]
    assert store.calls == 1  # after the first failure the store is left alone for a while


def test_a_marker_of_another_layout_is_ignored() -> None:
    marker = Marker("wf-a/0", 1, 0, (("t", "k", b"xyz", None),))
    assert Marker.decode(marker.encode()) == marker
    assert Marker.decode(marker.encode().replace(b'"layout": 1', b'"layout": 9')) is None
    assert Marker.decode(b"garbage") is None


def test_the_store_follows_the_executors_config() -> None:
    from pulsarflow.storage.outcomes import outcome_store_from_config

    assert outcome_store_from_config({"outcomes": "off"}, FakeState()) is None
    assert isinstance(outcome_store_from_config({}, FakeState()), FunctionStateOutcomeStore)
    redis_store = outcome_store_from_config({"outcomes": "redis", "redis_url": "redis://127.0.0.1:1/0", "app": "shop"},
                                            FakeState())
    assert isinstance(redis_store, RedisOutcomeStore)
    assert redis_store.prefix == "pulsarflow:public/default/shop:outcome:"
