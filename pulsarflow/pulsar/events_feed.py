"""The visibility feed on Pulsar: the events topic read under its own durable subscription.

An event is acknowledged only once it is applied (a crash re-applies, which the idempotent
stores absorb). :meth:`PulsarEventFeed.replay` rebuilds a store by reading the topic from its
first retained message, without touching the subscription: keep the events by giving the
topic (or namespace) an infinite retention.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from pulsarflow.codec import Codec
from pulsarflow.errors import BackendError, DecodeError
from pulsarflow.messages.events import WorkflowEvent
from pulsarflow.visibility import VisibilityStore

log = logging.getLogger("pulsarflow.visibility")


class PulsarEventFeed:
    def __init__(self, client: Any, topic: str, store: VisibilityStore, subscription: str,
                 codec: Codec | None = None) -> None:
        self.client = client
        self.topic = topic
        self.store = store
        self.subscription = subscription
        self.codec = codec or Codec()
        self._consumer: Any = None
        self.applied = 0
        self.undecodable = 0

    def drain(self, idle_ms: int = 300, max_seconds: float = 30.0) -> int:
        """Apply events until none arrives for ``idle_ms``; returns how many were new."""
        consumer = self._subscribe()
        import pulsar

        new, deadline = 0, time.monotonic() + max_seconds
        while time.monotonic() < deadline:
            try:
                message = consumer.receive(timeout_millis=idle_ms)
            except pulsar.Timeout:
                break
            new += self._apply(message.data())
            consumer.acknowledge(message)
        return new

    def run(self, stop: threading.Event) -> None:
        """Apply events as they come until ``stop`` is set (a dashboard's background feed)."""
        while not stop.is_set():
            try:
                self.drain(idle_ms=200, max_seconds=1.0)
            except BackendError:
                log.exception("the visibility store refused events; retrying")
                stop.wait(1.0)

    def replay(self, max_seconds: float = 300.0) -> int:
        """Apply every retained event of the topic, from the first (rebuilds a store)."""
        import pulsar

        reader = self.client.create_reader(self.topic, pulsar.MessageId.earliest)
        new, deadline = 0, time.monotonic() + max_seconds
        try:
            while reader.has_message_available() and time.monotonic() < deadline:
                new += self._apply(reader.read_next(timeout_millis=5_000).data())
        finally:
            reader.close()
        return new

    def close(self) -> None:
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None

    def _subscribe(self) -> Any:
        if self._consumer is None:
            import pulsar

            self._consumer = self.client.subscribe(
                self.topic, self.subscription, consumer_type=pulsar.ConsumerType.Failover,
                initial_position=pulsar.InitialPosition.Earliest)
        return self._consumer

    def _apply(self, payload: bytes) -> int:
        try:
            event = self.codec.decode(WorkflowEvent, payload)
        except DecodeError as exc:
            self.undecodable += 1
            log.error("skipping an undecodable event on %s: %s", self.topic, exc)
            return 0
        new = self.store.apply([event])
        self.applied += new
        return new
