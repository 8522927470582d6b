"""In-memory transport: one FIFO of ready messages and a heap of delayed ones (gone with the process)."""

from __future__ import annotations

import heapq
import itertools
from collections import deque
from typing import NamedTuple

from pulsarflow.clock import Clock
from pulsarflow.transport.queue import Delivered


class Delivery(NamedTuple):
    topic: str
    key: str
    payload: bytes


class InMemoryTransport:
    """Keeps messages as bytes (they went through the codec) until the embedded loop polls them."""

    def __init__(self, clock: Clock, duplicate: bool = False) -> None:
        self.clock = clock
        self.duplicate = duplicate  # deliver every message twice, to prove handlers idempotent
        self._ready: deque[Delivery] = deque()
        self._delayed: list[tuple[int, int, Delivery]] = []
        self._seq = itertools.count()
        self.sent = 0

    def send(self, topic: str, key: str, payload: bytes, deliver_at_ms: int | None = None) -> None:
        self.sent += 1
        delivery = Delivery(topic, key, bytes(payload))
        for _ in range(2 if self.duplicate else 1):
            if deliver_at_ms is not None and deliver_at_ms > self.clock.now_ms():
                heapq.heappush(self._delayed, (deliver_at_ms, next(self._seq), delivery))
            else:
                self._ready.append(delivery)

    def flush(self) -> None:
        """Nothing to wait for: a send is complete when it returns."""

    def poll(self) -> Delivery | None:
        now = self.clock.now_ms()
        while self._delayed and self._delayed[0][0] <= now:
            self._ready.append(heapq.heappop(self._delayed)[2])
        return self._ready.popleft() if self._ready else None

    def ack(self, delivery: Delivered) -> None:
        """Nothing to do: a message polled has left the queue already."""

    def requeue(self, delivery: Delivered, deliver_at_ms: int) -> None:
        self.send(delivery.topic, delivery.key, delivery.payload, deliver_at_ms)

    def next_due_ms(self) -> int | None:
        return self._delayed[0][0] if self._delayed else None

    def pending(self) -> int:
        return len(self._ready) + len(self._delayed)

    def close(self) -> None:
        """Nothing to release: what is still queued is dropped with this object."""
