"""Pulsar transport: producers per topic, sends acknowledged before ``flush`` returns.

Used by the engines inside Pulsar Functions (with the function's own client) and by
clients and workers (with a client of their own). Producers of the engines' and the
executors' topics are created without batching so that each message keeps its own key
(Key_Shared consumers route by key) and its own acknowledgement. Records named in
``BATCHED_RECORDS`` (the workflow events, read in order by a Failover consumer and by
readers, never by key) go through a batching producer instead: the events a flush
carries leave as a few broker entries instead of one each, and ``flush`` sends the open
batches at once instead of waiting for the batching delay. Delays use Pulsar delayed
delivery (``deliver_at``). Import needs ``pulsarflow[pulsar]``.

Each producer attaches the Avro schema of what it sends (``Codec.wire_schema``: the
record behind the writer identity that leads the payload, as the registry stores it), so
the broker stamps the registered schema version on every message, any Avro reader of the
topic reads its fields, and ``schemaValidationEnforced`` can be on. Only bytes without a
writer identity (replies to clients of release 0.1.0) go without a schema.

Failures are told apart for the failure policy (runtime/policy.py): a topic that cannot
exist or may not be written (``TopicRefusedError``) and a message the broker finds too big
(``LimitExceededError``) are the message's fault; anything else is an outage
(``BackendError``).
"""

from __future__ import annotations

import threading
from typing import Any

from pulsarflow.codec import HEADER_SIZE, Codec
from pulsarflow.errors import BackendError, LimitExceededError, PulsarflowError, TopicRefusedError

try:
    import _pulsar
    import pulsar
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise ImportError("the Pulsar transport needs the pulsar client: pip install 'pulsarflow[pulsar]'") from exc

# Refusals that name the topic, not the broker's health: the same message would meet them again.
TOPIC_REFUSALS = tuple(getattr(pulsar.exceptions, name) for name in (
    "InvalidTopicName", "TopicNotFound", "NotAllowedError", "AuthorizationError", "TopicTerminated"))

# Records sent through a batching producer (their readers neither route by key nor ack one by one).
BATCHED_RECORDS = frozenset({"WorkflowEvent"})
BATCH_MAX_MESSAGES = 1000
BATCH_MAX_DELAY_MS = 50  # a cap only: ``flush`` sends the open batches at once
# Messages built with the native client directly: the wrapper's send_async type-checks ten
# arguments and runs the schema's encode (the identity here) for every message.
FAST_SEND = True


class WireSchema(pulsar.schema.Schema):
    """An Avro schema for the registry over bytes the codec already wrote (sent as they are)."""

    def __init__(self, definition: dict[str, Any]) -> None:
        super().__init__(bytes, _pulsar.SchemaType.AVRO, definition, "AVRO")

    def encode(self, obj: bytes) -> bytes:
        return obj

    def decode(self, data: bytes) -> bytes:
        return data


def schema_for(codec: Codec, payload: bytes) -> Any:
    """The producer schema for a payload: the wire schema of its writer, or none (bytes) without an identity."""
    definition = codec.wire_schema_of(payload)
    return WireSchema(definition) if definition is not None else pulsar.schema.BytesSchema()


class PulsarTransport:
    def __init__(self, client: Any, codec: Codec | None = None, send_timeout_ms: int = 30_000,
                 batched_records: frozenset[str] | None = None) -> None:
        self.client = client
        self.codec = codec or Codec()
        self.send_timeout_ms = send_timeout_ms
        self.batched_records = BATCHED_RECORDS if batched_records is None else batched_records
        self._producers: dict[tuple[str, bytes], Any] = {}  # by topic and writer identity
        self._batched_producers: set[Any] = set()
        self.fast_send = FAST_SEND
        self._native: dict[Any, Any] = {}  # producer -> the native producer under it (pulsar.Producer only)
        self._batching: dict[Any, str] = {}  # batching producers sent to since the last flush, their topics
        self._lock = threading.Condition()
        self._pending = 0
        self._errors: list[str] = []
        self.sent = 0

    def send(self, topic: str, key: str, payload: bytes, deliver_at_ms: int | None = None) -> None:
        producer = self._producer(topic, payload)
        with self._lock:
            self._pending += 1
        try:
            native = self._native.get(producer) if self.fast_send else None
            if native is not None:
                builder = _pulsar.MessageBuilder().content(payload).partition_key(key)
                if deliver_at_ms is not None:
                    builder.deliver_at(deliver_at_ms)
                native.send_async(builder.build(), self._on_sent)
            elif deliver_at_ms is not None:
                producer.send_async(payload, self._on_sent, partition_key=key, deliver_at=deliver_at_ms)
            else:
                producer.send_async(payload, self._on_sent, partition_key=key)
        except Exception as exc:
            self._done(None)
            raise _translate(exc, f"cannot publish {len(payload):,} bytes to {topic}") from exc
        self.sent += 1

    def flush(self) -> None:
        """Wait until the broker acknowledged every message sent so far."""
        self._send_batches()
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
        self._native.clear()
        self._batched_producers.clear()
        self._batching.clear()

    def _send_batches(self) -> None:
        """Hand the open batches to the broker now (their acks then arrive as for any message)."""
        batching, self._batching = self._batching, {}
        for producer, topic in batching.items():
            flush = getattr(producer, "flush", None)  # a stand-in producer may not batch at all
            try:
                if flush is not None:
                    flush()
            except Exception as exc:
                raise _translate(exc, f"cannot publish a batch to {topic}") from exc

    def _producer(self, topic: str, payload: bytes) -> Any:
        writer = bytes(payload[:HEADER_SIZE])
        producer = self._producers.get((topic, writer))
        if producer is None:
            batched = self.codec.record_name_of(payload) in self.batched_records
            options: dict[str, Any] = {"batching_enabled": batched}
            if batched:
                options.update(batching_max_messages=BATCH_MAX_MESSAGES,
                               batching_max_publish_delay_ms=BATCH_MAX_DELAY_MS)
            try:
                producer = self.client.create_producer(
                    topic, schema=schema_for(self.codec, payload), block_if_queue_full=True,
                    send_timeout_millis=self.send_timeout_ms, **options)
            except Exception as exc:
                raise _translate(exc, f"cannot create a producer for {topic}") from exc
            self._producers[(topic, writer)] = producer
            if type(producer) is pulsar.Producer and hasattr(producer, "_producer"):
                self._native[producer] = producer._producer
            if batched:
                self._batched_producers.add(producer)
        if producer in self._batched_producers:
            self._batching[producer] = topic
        return producer

    def _on_sent(self, result: Any, _message_id: Any) -> None:
        self._done(None if result == pulsar.Result.Ok else str(result))

    def _done(self, error: str | None) -> None:
        with self._lock:
            self._pending -= 1
            if error:
                self._errors.append(error)
            if self._pending == 0:  # ``flush`` waits for nothing else: no wake-up per acknowledgement
                self._lock.notify_all()


def _translate(exc: Exception, what: str) -> PulsarflowError:
    """The pulsarflow error for a failure of the client: the topic's or the message's fault, or an outage."""
    if isinstance(exc, TOPIC_REFUSALS):
        return TopicRefusedError(f"{what}: {type(exc).__name__}: {exc} (the topic cannot exist or may not be "
                                 "written with these credentials)")
    if isinstance(exc, pulsar.exceptions.IncompatibleSchema):  # kept and retried: a deploy of the schemas fixes it
        return BackendError(f"{what}: the schema registry refuses the writer's schema ({exc}); upload this "
                            "release's schemas with `pulsarflow deploy schemas` (or `deploy apply`)")
    if isinstance(exc, pulsar.exceptions.MessageTooBig):
        return LimitExceededError(f"{what}: the broker's maxMessageSize is smaller than the message")
    return BackendError(f"{what}: {exc}")
