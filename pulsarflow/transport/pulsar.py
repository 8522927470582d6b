"""Pulsar transport: producers per topic, sends acknowledged before ``flush`` returns.

Used by the engines inside Pulsar Functions (with the function's own client) and by
clients and workers (with a client of their own). Producers are created without
batching so that each message keeps its own key (Key_Shared consumers route by key).
Delays use Pulsar delayed delivery (``deliver_at``). Import needs ``pulsarflow[pulsar]``.

Failures are told apart for the failure policy (runtime/policy.py): a topic that cannot
exist or may not be written (``TopicRefusedError``) and a message the broker finds too big
(``LimitExceededError``) are the message's fault; anything else is an outage
(``BackendError``).
"""

from __future__ import annotations

import threading
from typing import Any

from pulsarflow.errors import BackendError, LimitExceededError, PulsarflowError, TopicRefusedError

try:
    import pulsar
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise ImportError("the Pulsar transport needs the pulsar client: pip install 'pulsarflow[pulsar]'") from exc

# Refusals that name the topic, not the broker's health: the same message would meet them again.
TOPIC_REFUSALS = tuple(getattr(pulsar.exceptions, name) for name in (
    "InvalidTopicName", "TopicNotFound", "NotAllowedError", "AuthorizationError", "TopicTerminated"))


class PulsarTransport:
    def __init__(self, client: Any, send_timeout_ms: int = 30_000) -> None:
        self.client = client
        self.send_timeout_ms = send_timeout_ms
        self._producers: dict[str, Any] = {}
        self._lock = threading.Condition()
        self._pending = 0
        self._errors: list[str] = []
        self.sent = 0

    def send(self, topic: str, key: str, payload: bytes, deliver_at_ms: int | None = None) -> None:
        producer = self._producer(topic)
        options: dict[str, Any] = {"partition_key": key}
        if deliver_at_ms is not None:
            options["deliver_at"] = deliver_at_ms
        with self._lock:
            self._pending += 1
        try:
            producer.send_async(payload, self._on_sent, **options)
        except Exception as exc:
            self._done(None)
            raise _translate(exc, f"cannot publish {len(payload):,} bytes to {topic}") from exc
        self.sent += 1

    def flush(self) -> None:
        """Wait until the broker acknowledged every message sent so far."""
        with self._lock:
            if not self._lock.wait_for(lambda: self._pending == 0, timeout=self.send_timeout_ms / 1000):
                raise BackendError(f"{self._pending} message(s) not acknowledged by Pulsar in time")
            errors, self._errors = self._errors, []
        if errors and all(e == str(pulsar.Result.MessageTooBig) for e in errors):
            raise LimitExceededError(f"Pulsar refused {len(errors)} message(s) as too big (MessageTooBig): the "
                                     "broker's maxMessageSize is smaller than pulsarflow's max_message_bytes")
        if errors:
            raise BackendError(f"Pulsar refused {len(errors)} message(s): {errors[0]}")

    def close(self) -> None:
        for producer in self._producers.values():
            producer.close()
        self._producers.clear()

    def _producer(self, topic: str) -> Any:
        producer = self._producers.get(topic)
        if producer is None:
            try:
                producer = self.client.create_producer(
                    topic, batching_enabled=False, block_if_queue_full=True,
                    send_timeout_millis=self.send_timeout_ms)
            except Exception as exc:
                raise _translate(exc, f"cannot create a producer for {topic}") from exc
            self._producers[topic] = producer
        return producer

    def _on_sent(self, result: Any, _message_id: Any) -> None:
        self._done(None if result == pulsar.Result.Ok else str(result))

    def _done(self, error: str | None) -> None:
        with self._lock:
            self._pending -= 1
            if error:
                self._errors.append(error)
            self._lock.notify_all()


def _translate(exc: Exception, what: str) -> PulsarflowError:
    """The pulsarflow error for a failure of the client: the topic's or the message's fault, or an outage."""
    if isinstance(exc, TOPIC_REFUSALS):
        return TopicRefusedError(f"{what}: {type(exc).__name__}: {exc} (the topic cannot exist or may not be "
                                 "written with these credentials)")
    if isinstance(exc, pulsar.exceptions.MessageTooBig):
        return LimitExceededError(f"{what}: the broker's maxMessageSize is smaller than the message")
    return BackendError(f"{what}: {exc}")
