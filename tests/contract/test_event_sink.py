"""The EventSink contract (pulsarflow.events.contract) over the in-memory store and the topic sink
on the in-memory queue (over Pulsar: tests/integration/test_event_sink_pulsar.py)."""

from __future__ import annotations

import uuid

import pytest

from pulsarflow.clock import VirtualClock
from pulsarflow.codec import Codec
from pulsarflow.events.contract import CHECKS, SinkSubject
from pulsarflow.events.memory import InMemoryEventStore
from pulsarflow.events.topic import TopicEventSink
from pulsarflow.messages.events import WorkflowEvent
from pulsarflow.transport.memory import InMemoryTransport

TOPIC = "persistent://public/default/contract-events"


def memory_store() -> SinkSubject:
    store = InMemoryEventStore()
    return SinkSubject(store, lambda: None, lambda _n: store.read(), prefix=uuid.uuid4().hex[:6])


def topic_on_memory_queue() -> SinkSubject:
    queue, codec = InMemoryTransport(VirtualClock()), Codec()
    sink = TopicEventSink(queue, codec, TOPIC)
    kept: list[WorkflowEvent] = []

    def read_back(_count: int) -> list[WorkflowEvent]:
        while (delivery := queue.poll()) is not None:
            queue.ack(delivery)
            assert delivery.topic == TOPIC and delivery.key
            event = codec.decode(WorkflowEvent, delivery.payload)
            assert delivery.key == event.workflow_id, "events are keyed by workflow id"
            kept.append(event)
        return kept

    return SinkSubject(sink, queue.flush, read_back, prefix=uuid.uuid4().hex[:6])


@pytest.mark.parametrize("make", [memory_store, topic_on_memory_queue], ids=["memory-store", "topic-on-queue"])
@pytest.mark.parametrize("check", sorted(CHECKS))
def test_event_sink_contract(make, check: str) -> None:  # type: ignore[no-untyped-def]
    CHECKS[check](make())
