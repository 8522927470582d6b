"""Events published to an events topic, through the handler's own transport.

The handler sends the events with its outgoing messages and flushes them together,
so an event is acknowledged by the broker before the state that follows it is saved.
Events are keyed by workflow id: one workflow's events keep their order per producer.
"""

from __future__ import annotations

from collections.abc import Sequence

from pulsarflow.codec import Codec
from pulsarflow.messages.events import WorkflowEvent
from pulsarflow.transport import Transport


class TopicEventSink:
    def __init__(self, transport: Transport, codec: Codec, topic: str) -> None:
        self.transport = transport
        self.codec = codec
        self.topic = topic

    def emit(self, events: Sequence[WorkflowEvent]) -> None:
        for event in events:
            self.transport.send(self.topic, event.workflow_id, self.codec.encode(event))
