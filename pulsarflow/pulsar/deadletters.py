"""The dead-letter topic on Pulsar: kept until an operator has dealt with it, read and replayed.

Pulsar deletes messages that no subscription holds (without a retention policy), so the
runtime makes sure the durable subscription ``DEAD_LETTER_SUBSCRIPTION`` exists before it
dead-letters anything (``retain``). ``pulsarflow deadletters`` reads through it: ``list``
and ``show`` leave the letters where they are; ``replay`` re-publishes a letter's message
to its topic and then acknowledges the letter, which leaves the list.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from pulsarflow.codec import Codec
from pulsarflow.errors import BackendError, DecodeError
from pulsarflow.messages import DeadLetter
from pulsarflow.pulsar.transport import schema_for

log = logging.getLogger("pulsarflow.deadletters")

DEAD_LETTER_SUBSCRIPTION = "pulsarflow-deadletters"
READ_TIMEOUT_MS = 2_000  # the end of the topic: nothing more arrived for this long

try:
    import pulsar
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise ImportError("dead letters on Pulsar need the pulsar client: pip install 'pulsarflow[pulsar]'") from exc


def retain(client: Any, topic: str) -> None:
    """Create the durable subscription that keeps the dead letters of ``topic`` (best effort)."""
    try:
        client.subscribe(topic, DEAD_LETTER_SUBSCRIPTION, consumer_type=pulsar.ConsumerType.Exclusive,
                         initial_position=pulsar.InitialPosition.Earliest, receiver_queue_size=1).close()
    except Exception as exc:  # an operator's reader holds it: then it exists already
        log.info("dead-letter subscription on %s not created now (%s); it is created on the next start", topic, exc)


def letter_id(message_id: Any) -> str:
    """A short, typeable id of a letter: ``<ledger>:<entry>``."""
    return f"{message_id.ledger_id()}:{message_id.entry_id()}"


class PulsarDeadLetters:
    """The dead letters of one topic, through the operators' subscription (exclusive while open)."""

    def __init__(self, client: Any, topic: str, codec: Codec | None = None, owns_client: bool = False) -> None:
        self.client = client
        self.topic = topic
        self.codec = codec or Codec()
        self.owns_client = owns_client  # close() closes the client too
        try:
            self.consumer = client.subscribe(
                topic, DEAD_LETTER_SUBSCRIPTION, consumer_type=pulsar.ConsumerType.Exclusive,
                initial_position=pulsar.InitialPosition.Earliest)
        except Exception as exc:
            raise BackendError(f"cannot read the dead letters of {topic}: {exc} (is another `pulsarflow "
                               "deadletters` running? it holds the subscription exclusively)") from exc
        self._messages: dict[str, Any] = {}

    def letters(self) -> Iterator[tuple[str, DeadLetter]]:
        """Every letter not yet dealt with, oldest first (read once; they stay on the topic)."""
        while True:
            try:
                message = self.consumer.receive(timeout_millis=READ_TIMEOUT_MS)
            except pulsar.Timeout:
                return
            ident = letter_id(message.message_id())
            self._messages[ident] = message
            yield ident, self._letter(message)

    def _letter(self, message: Any) -> DeadLetter:
        """The letter, or one saying why it cannot be read (so that one bad letter hides no other)."""
        data = bytes(message.data())
        try:
            letter: DeadLetter = self.codec.decode(DeadLetter, data)
            return letter
        except DecodeError as exc:
            return DeadLetter(topic="(unknown)", reason=f"this letter itself cannot be read: {exc}", payload=data,
                              size=len(data), at_ms=message.publish_timestamp(), kind="unreadable-letter")

    def publish(self, topic: str, key: str, payload: bytes) -> None:
        producer = self.client.create_producer(topic, schema=schema_for(self.codec, payload), batching_enabled=False)
        try:
            producer.send(payload, partition_key=key or None)
        except Exception as exc:
            raise BackendError(f"cannot re-publish to {topic}: {exc}") from exc
        finally:
            producer.close()

    def settle(self, ident: str) -> None:
        """The letter is dealt with: acknowledge it (it leaves the list)."""
        self.consumer.acknowledge(self._messages.pop(ident))

    def close(self) -> None:
        self.consumer.close()  # unacknowledged letters stay for the next reader
        if self.owns_client:
            self.client.close()
