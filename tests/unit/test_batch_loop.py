"""The loop of batching deployments (Functions with ``batch: N``, workers): a message that met an
outage is held and tried again within seconds, never dead-lettered; the rest is acknowledged."""

from __future__ import annotations

from typing import Any

import pytest

from pulsarflow.runtime.batch import BatchHandler
from pulsarflow.runtime.loop import BatchLoop
from pulsarflow.runtime.policy import Redeliveries
from tests.unit.test_failure_policy import TOPICS, FlakyStore, Pipeline, start


class ListInbox:
    def __init__(self, messages: list[tuple[str, bytes]]) -> None:
        self.waiting = list(messages)
        self.acked: list[tuple[str, bytes]] = []
        self.given_back: list[tuple[str, bytes]] = []

    def take(self, room: int, wait_s: float) -> list[tuple[str, bytes]]:
        taken, self.waiting = self.waiting[:room], self.waiting[room:]
        return taken

    @staticmethod
    def content(message: tuple[str, bytes]) -> tuple[str, bytes]:
        return message

    def ack(self, message: tuple[str, bytes]) -> None:
        self.acked.append(message)

    def give_back(self, message: tuple[str, bytes]) -> None:
        self.given_back.append(message)


def loop_over(store: FlakyStore, messages: list[tuple[str, bytes]], max_attempts: int = 20
              ) -> tuple[BatchLoop[Any], ListInbox, list[float], Pipeline]:
    now = [0.0]
    pipeline = Pipeline(store)
    inbox = ListInbox(messages)
    held: Redeliveries[Any] = Redeliveries(max_attempts=max_attempts, clock=lambda: now[0])

    def sleep(seconds: float) -> None:
        now[0] += seconds

    loop: BatchLoop[Any] = BatchLoop(BatchHandler(pipeline.handler), inbox, size=10, redeliveries=held, sleep=sleep)
    return loop, inbox, now, pipeline


def test_a_message_that_met_an_outage_is_retried_within_seconds_and_the_others_are_acked() -> None:
    store = FlakyStore()
    store.down = {"wf-2"}
    messages = [(TOPICS.workflow_engine, start(f"wf-{i}", 1)) for i in range(4)]
    loop, inbox, now, pipeline = loop_over(store, messages)
    loop.once()
    assert inbox.acked == [messages[0], messages[1], messages[3]] and len(loop.held) == 1
    loop.once()  # not due yet: nothing handled again
    assert len(inbox.acked) == 3
    store.down = set()
    now[0] += 0.2
    loop.once()
    assert inbox.acked[-1] == messages[2] and len(loop.held) == 0
    assert pipeline.state("wf-2") is not None and pipeline.letters() == [] and inbox.given_back == []


def test_after_its_held_attempts_a_message_goes_back_to_the_broker_not_to_the_dead_letters() -> None:
    store = FlakyStore()
    store.all_down = True
    messages = [(TOPICS.workflow_engine, start("wf-1", 1))]
    loop, inbox, now, pipeline = loop_over(store, messages, max_attempts=3)
    for _ in range(10):
        loop.once()
        now[0] += 5
    assert inbox.given_back == messages and inbox.acked == [] and pipeline.letters() == []


def test_while_the_loop_holds_a_full_batch_it_takes_nothing_new() -> None:
    store = FlakyStore()
    store.all_down = True
    messages = [(TOPICS.workflow_engine, start(f"wf-{i}", 1)) for i in range(25)]
    loop, inbox, now, _ = loop_over(store, messages)
    loop.once()
    assert len(loop.held) == 10 and len(inbox.waiting) == 15
    loop.once()  # full: it waits for a held message to be due instead of taking more
    assert len(inbox.waiting) == 15 and now[0] == pytest.approx(0.2)


class FakeProducer:
    def __init__(self, sent: list[bytes]) -> None:
        self.sent = sent

    def send_async(self, payload: bytes, callback: Any, **options: Any) -> None:
        import pulsar

        self.sent.append(payload)
        callback(pulsar.Result.Ok, None)

    def close(self) -> None:
        pass


class FakeClient:
    """A Pulsar client whose producers succeed at once."""

    def __init__(self) -> None:
        self.sent: list[bytes] = []

    def create_producer(self, topic: str, **options: Any) -> FakeProducer:
        return FakeProducer(self.sent)

    def subscribe(self, topic: str, name: str, **options: Any) -> FakeProducer:
        return FakeProducer(self.sent)


class FakeContext:
    """What EngineFunction reads from the Functions runtime's Context."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.topic = TOPICS.workflow_engine
        self.acked: list[Any] = []
        self.client = FakeClient()

    def get_user_config_map(self) -> dict[str, Any]:
        return self.config

    def record_metric(self, name: str, value: float) -> None:
        pass

    def get_pulsar_client(self) -> FakeClient:
        return self.client

    def get_current_message_topic_name(self) -> str:
        return self.topic

    def get_message_id(self) -> str:
        return self.message_id

    message_id = "id-1"

    def ack(self, message_id: Any, topic: str) -> None:
        self.acked.append(message_id)


def test_a_function_of_one_message_at_a_time_retries_an_outage_in_place(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("pulsar")
    from pulsarflow.pulsar import function as functions

    store = FlakyStore()
    store.all_down = True
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        if len(slept) == 2:
            store.all_down = False  # the store is back after two retries

    monkeypatch.setattr("pulsarflow.runtime.policy.time.sleep", sleep)
    monkeypatch.setattr(functions, "state_store_for", lambda config, context: store)
    function = functions.EngineFunction()
    context = FakeContext({"engine": "workflow", "modules": "tests.e2e.flows", "app": TOPICS.app})
    function.process(start("wf-1", 1), context)
    assert slept == [0.2, 0.4] and store.get("wf-1") is not None


def test_a_batching_function_acknowledges_what_is_done_and_retries_the_rest_itself(
        monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("pulsar")
    import time

    from pulsarflow.pulsar import function as functions

    store = FlakyStore()
    store.down = {"wf-2"}
    monkeypatch.setattr(functions, "state_store_for", lambda config, context: store)
    function = functions.EngineFunction()
    context = FakeContext({"engine": "workflow", "modules": "tests.e2e.flows", "app": TOPICS.app, "batch": 10})
    for i in range(4):
        context.message_id = f"id-{i}"
        function.process(start(f"wf-{i}", 1), context)
    deadline = time.monotonic() + 10
    while len(context.acked) < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert sorted(context.acked) == ["id-0", "id-1", "id-3"]
    store.down = set()
    while len(context.acked) < 4 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert context.acked[-1] == "id-2"  # its retry came within a second, not after the runtime's 60 s
