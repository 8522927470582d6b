"""One failure policy for single messages and batches: the message's own fault is dead-lettered
after its bounded attempts, an outage is retried and never dead-lettered, and inside a batch
one failing message holds back no other."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from pulsarflow.clock import VirtualClock
from pulsarflow.codec import Codec
from pulsarflow.converter import JsonConverter
from pulsarflow.engines.outgoing import Decision
from pulsarflow.engines.workflow import WorkflowEngine
from pulsarflow.errors import BackendError, PartialBatchError
from pulsarflow.interpreter.registry import Registry
from pulsarflow.messages import DeadLetter, ReplyTo, StartWorkflow, WorkflowEngineMessage, WorkflowState
from pulsarflow.runtime import deadletters, policy
from pulsarflow.runtime.batch import BatchHandler
from pulsarflow.runtime.handler import MessageHandler
from pulsarflow.storage import Versioned
from pulsarflow.storage.memory import InMemoryStateStore
from pulsarflow.topics import Topics
from pulsarflow.transport.memory import InMemoryTransport
from tests.e2e import flows

TOPICS, CODEC, CONVERTER = Topics(app="policy"), Codec(), JsonConverter()


def start(workflow_id: str, *args: Any) -> bytes:
    reply = ReplyTo(TOPICS.client("tests"), f"r-{workflow_id}")
    message = StartWorkflow("sequence", CONVERTER.encode(args), reply=reply)
    return CODEC.encode(WorkflowEngineMessage(uuid.uuid4().hex, workflow_id, 0, message))


class FlakyStore(InMemoryStateStore):
    """Fails reads of the keys in ``down`` (or of every key while ``all_down``), like an unreachable store."""

    def __init__(self) -> None:
        super().__init__()
        self.down: set[str] = set()
        self.all_down = False
        self.reads = 0

    def get(self, key: str) -> Versioned | None:
        self.reads += 1
        if self.all_down or key in self.down:
            raise BackendError(f"store unreachable for {key!r}")
        return super().get(key)

    def get_many(self, keys: list[str]) -> dict[str, Versioned]:
        if self.all_down or self.down & set(keys):
            raise BackendError("store unreachable")
        found = {key: InMemoryStateStore.get(self, key) for key in keys}
        return {key: value for key, value in found.items() if value is not None}


class Pipeline:
    """The workflow engine behind a MessageHandler, over in-memory backends."""

    def __init__(self, store: InMemoryStateStore | None = None) -> None:
        self.clock = VirtualClock()
        self.transport = InMemoryTransport(self.clock)
        self.store = store if store is not None else InMemoryStateStore()
        self.engine = WorkflowEngine(Registry(flows.ALL), CONVERTER, TOPICS)
        self.handler = MessageHandler(self.engine, CODEC, self.transport, self.clock, self.store, TOPICS.dead_letters)

    def letters(self) -> list[DeadLetter]:
        out = []
        while (delivery := self.transport.poll()) is not None:
            if delivery.topic == TOPICS.dead_letters:
                out.append(CODEC.decode(DeadLetter, delivery.payload))
        return out

    def state(self, workflow_id: str) -> WorkflowState | None:
        stored = self.store.get(workflow_id)
        return None if stored is None else CODEC.decode(WorkflowState, stored.value)


def crash_on(pipeline: Pipeline, workflow_id: str) -> list[int]:
    """Make the engine fail on messages for ``workflow_id``; returns the list counting the attempts."""
    calls: list[int] = []
    original = pipeline.engine.handle

    def handle(state: WorkflowState | None, envelope: WorkflowEngineMessage, now_ms: int) -> Decision[WorkflowState]:
        if envelope.workflow_id == workflow_id:
            calls.append(1)
            raise KeyError("a bug")
        return original(state, envelope, now_ms)

    pipeline.engine.handle = handle  # type: ignore[method-assign]
    return calls


def test_classification() -> None:
    from pulsarflow.errors import DecodeError, LimitExceededError, StateConflictError, TopicRefusedError

    assert policy.classify(BackendError("down")) == policy.OUTAGE
    assert policy.classify(StateConflictError("raced")) == policy.OUTAGE
    assert policy.classify(DecodeError("X", 3, "bad")) == deadletters.UNDECODABLE
    assert policy.classify(LimitExceededError("long")) == deadletters.REFUSED
    assert policy.classify(TopicRefusedError("elsewhere")) == deadletters.REFUSED
    assert policy.classify(KeyError("bug")) == deadletters.CRASH


def test_an_engine_crash_is_tried_a_bounded_number_of_times_then_dead_lettered() -> None:
    p = Pipeline()
    calls = crash_on(p, "poison")
    p.handler.handle(TOPICS.workflow_engine, start("poison", 1))
    [letter] = p.letters()
    assert len(calls) == policy.MAX_CRASH_ATTEMPTS
    assert (letter.kind, letter.attempts, letter.key) == (deadletters.CRASH, policy.MAX_CRASH_ATTEMPTS, "poison")
    assert "crashed on this message: KeyError: 'a bug'" in letter.reason and "deadletters replay" in letter.reason


def test_an_outage_is_raised_for_a_later_delivery_and_never_dead_lettered() -> None:
    store = FlakyStore()
    store.all_down = True
    p = Pipeline(store)
    for _ in range(10):
        with pytest.raises(BackendError):
            p.handler.handle(TOPICS.workflow_engine, start("wf-1", 1))
    assert p.letters() == []
    store.all_down = False
    p.handler.handle(TOPICS.workflow_engine, start("wf-1", 1))
    assert p.state("wf-1") is not None and p.letters() == []


def test_in_a_batch_a_crashing_message_is_handled_alone_and_the_rest_goes_on() -> None:
    p = Pipeline()
    calls = crash_on(p, "poison")
    batch = [(TOPICS.workflow_engine, start(f"wf-{i}", 1)) for i in range(5)]
    batch.insert(2, (TOPICS.workflow_engine, start("poison", 1)))
    BatchHandler(p.handler).handle_batch(batch)
    assert all(p.state(f"wf-{i}") is not None for i in range(5))
    [letter] = p.letters()
    assert letter.key == "poison" and letter.attempts == policy.MAX_CRASH_ATTEMPTS
    assert len(calls) == 1 + policy.MAX_CRASH_ATTEMPTS  # once in the batch, then its attempts alone


def test_in_a_batch_an_unreadable_key_waits_and_the_other_keys_are_done() -> None:
    store = FlakyStore()
    store.down = {"wf-3"}
    p = Pipeline(store)
    batch = [(TOPICS.workflow_engine, start(f"wf-{i}", 1)) for i in range(6)]
    with pytest.raises(PartialBatchError) as caught:
        BatchHandler(p.handler).handle_batch(batch)
    assert caught.value.pending == [3]
    store.down = set()
    assert [p.state(f"wf-{i}") is not None for i in range(6)] == [True, True, True, False, True, True]
    assert p.letters() == []


def test_in_a_batch_a_store_that_is_down_costs_two_reads_not_one_per_key() -> None:
    store = FlakyStore()
    store.all_down = True
    p = Pipeline(store)
    with pytest.raises(PartialBatchError) as caught:
        BatchHandler(p.handler).handle_batch([(TOPICS.workflow_engine, start(f"wf-{i}", 1)) for i in range(50)])
    assert caught.value.pending == list(range(50)) and store.reads == 2


def test_in_a_batch_a_failed_flush_sends_every_decided_message_back() -> None:
    p = Pipeline()

    def broken_flush() -> None:
        raise BackendError("the broker did not acknowledge in time")

    p.transport.flush = broken_flush  # type: ignore[method-assign]
    undecodable = (TOPICS.workflow_engine, b"\x01")
    with pytest.raises(PartialBatchError) as caught:
        BatchHandler(p.handler).handle_batch([(TOPICS.workflow_engine, start("a", 1)), undecodable,
                                              (TOPICS.workflow_engine, start("b", 1))])
    assert caught.value.pending == [0, 1, 2]  # the dead letter could not be flushed either
    assert p.state("a") is None and p.state("b") is None


def test_backoff_grows_to_a_few_seconds() -> None:
    backoff = policy.Backoff()
    assert [backoff.delay(n) for n in (1, 2, 3, 4, 5, 6, 20)] == [0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0]


def test_call_with_backoff_retries_an_outage_then_gives_up() -> None:
    slept: list[float] = []
    now = [0.0]

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    outcomes: list[Any] = [BackendError("down"), BackendError("down"), "done"]

    def attempt() -> str:
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return str(outcome)

    assert policy.call_with_backoff(attempt, sleep=sleep, clock=lambda: now[0]) == "done"
    assert slept == [0.2, 0.4]

    def always_down() -> None:
        raise BackendError("down")

    with pytest.raises(BackendError):
        policy.call_with_backoff(always_down, give_up_after_s=10, sleep=sleep, clock=lambda: now[0])
    assert sum(slept) <= 10 + 0.6


def test_redeliveries_are_due_after_their_delay_and_bounded() -> None:
    now = [0.0]
    held: policy.Redeliveries[str] = policy.Redeliveries(max_attempts=3, clock=lambda: now[0])
    assert held.hold("m", 1) and held.due() == [] and held.wait_s() == pytest.approx(0.2)
    now[0] = 0.2
    assert held.due() == [("m", 1)] and len(held) == 0
    assert held.hold("m", 2) and not held.hold("m", 3)


def test_a_dead_letter_that_cannot_be_published_keeps_its_message_as_for_an_outage() -> None:
    from pulsarflow.errors import TopicRefusedError

    p = Pipeline()
    original = p.transport.send

    def refuse_dead_letters(topic: str, key: str, payload: bytes, deliver_at_ms: int | None = None) -> None:
        if topic == TOPICS.dead_letters:
            raise TopicRefusedError(f"cannot create a producer for {topic}: AuthorizationError")
        original(topic, key, payload, deliver_at_ms)

    p.transport.send = refuse_dead_letters  # type: ignore[method-assign]
    with pytest.raises(BackendError, match="cannot publish a dead letter to .*the message is kept"):
        p.handler.handle(TOPICS.workflow_engine, b"\x01")
