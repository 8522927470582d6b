"""Transport: moves encoded messages between engines, executors and clients."""

from __future__ import annotations

from typing import Protocol


class Transport(Protocol):
    """Publishes bytes to a topic with a routing key.

    Contract: ``send`` may buffer; ``flush`` returns only once every message sent before it
    is acknowledged by the broker (the runtime saves state only after that). A
    ``deliver_at_ms`` in the future delays delivery until then (a durable timer).
    Messages with the same key on the same topic are delivered in send order.
    """

    def send(self, topic: str, key: str, payload: bytes, deliver_at_ms: int | None = None) -> None: ...

    def flush(self) -> None: ...
