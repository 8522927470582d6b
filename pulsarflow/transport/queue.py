"""The port of the embedded runtime's queue: a transport that also hands messages out.

Two implementations: ``InMemoryTransport`` (memory.py; lost with the process) and
``RedisTransport`` (redis.py; survives it). Both pass the same checks
(``transport/contract.py``).
"""

from __future__ import annotations

from typing import Protocol

from pulsarflow.transport import Transport


class Delivered(Protocol):
    """A message handed out by ``poll``."""

    @property
    def topic(self) -> str: ...

    @property
    def key(self) -> str: ...

    @property
    def payload(self) -> bytes: ...


class QueueTransport(Transport, Protocol):
    """The embedded loop's queue. On top of ``Transport``'s contract:

    - ``poll`` hands out the next message that is due (None: none now). Messages with
      the same key on the same topic come out in send order; a delayed message comes out
      once the queue's clock reaches its time, in order of time (send order at equal times).
    - Every message handed out is settled once handled: ``ack`` (done, never handed out
      again) or ``requeue`` (handed out again at ``deliver_at_ms``). A durable queue hands
      out again, to the next process, whatever its process took and never settled.
    - ``next_due_ms`` is when to poll next when ``poll`` returned None (None: nothing will
      come unless someone sends); ``pending`` counts every message not yet acknowledged.
    - ``close`` settles what it can and lets another process take the queue over.
    """

    sent: int  # messages sent through this object (a benchmark's count)
    duplicate: bool  # every message is delivered twice (handlers proved idempotent)

    def poll(self) -> Delivered | None: ...

    def ack(self, delivery: Delivered) -> None: ...

    def requeue(self, delivery: Delivered, deliver_at_ms: int) -> None: ...

    def next_due_ms(self) -> int | None: ...

    def pending(self) -> int: ...

    def close(self) -> None: ...
