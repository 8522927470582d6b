"""The EventSink contract (pulsarflow.events.contract) over the topic sink on Pulsar: events published
through the Pulsar transport, read back from the topic by a consumer, decoded with the codec."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from pulsarflow.codec import Codec
from pulsarflow.events.contract import CHECKS, SinkSubject
from pulsarflow.messages.events import WorkflowEvent
from tests.integration.conftest import SERVICE_URL

pytestmark = pytest.mark.pulsar


@pytest.mark.parametrize("check", sorted(CHECKS))
def test_event_sink_contract_on_pulsar(pulsar_admin: Any, check: str) -> None:
    import pulsar

    from pulsarflow.events.topic import TopicEventSink
    from pulsarflow.pulsar.transport import PulsarTransport

    client, codec = pulsar.Client(SERVICE_URL, operation_timeout_seconds=15), Codec()
    topic = f"persistent://public/default/events-contract-{uuid.uuid4().hex[:8]}"
    consumer = client.subscribe(topic, "contract")
    transport = PulsarTransport(client, codec)
    kept: list[WorkflowEvent] = []

    def read_back(count: int) -> list[WorkflowEvent]:
        while len(kept) < count:
            try:
                message = consumer.receive(timeout_millis=15_000)
            except pulsar.Timeout:
                break
            consumer.acknowledge(message)
            kept.append(codec.decode(WorkflowEvent, message.data()))
        return kept

    try:
        CHECKS[check](SinkSubject(TopicEventSink(transport, codec, topic), transport.flush, read_back))
    finally:
        transport.close()
        client.close()
