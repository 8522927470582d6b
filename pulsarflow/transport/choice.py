"""Which queue an ``EmbeddedEnvironment`` runs on (its ``transport=`` option).

- ``None`` (the default): durable in Redis when the workflow state is in Redis (a
  ``RedisStateStore``), next to it on the same connection; in memory otherwise.
- ``"memory"``: in memory, whatever the store (the queue is lost with the process).
- ``"redis"``: durable, next to the Redis state store; refused without one.
- a ``QueueTransport`` object (such as ``RedisTransport.from_url(...)``): used as it is.
"""

from __future__ import annotations

from typing import Any, Literal, Union

from pulsarflow.clock import Clock
from pulsarflow.errors import DefinitionError
from pulsarflow.storage import StateStore
from pulsarflow.topics import Topics
from pulsarflow.transport.memory import InMemoryTransport
from pulsarflow.transport.queue import QueueTransport

TransportOption = Union[Literal["memory", "redis"], QueueTransport, None]


def queue_for(option: TransportOption, store: StateStore, clock: Clock, topics: Topics,
              duplicate: bool = False) -> QueueTransport:
    """The queue ``option`` names, for an environment with ``store`` as its workflow state."""
    from pulsarflow.storage.redis import RedisStateStore

    if option is None:
        option = "redis" if isinstance(store, RedisStateStore) else "memory"
    if option == "memory":
        return InMemoryTransport(clock, duplicate=duplicate)
    if option == "redis":
        if not isinstance(store, RedisStateStore):
            raise DefinitionError(
                "transport='redis' keeps the queue next to the workflow state in Redis, but the state store is a "
                f"{type(store).__name__}: pass store=RedisStateStore.from_url(...), or pass "
                "transport=RedisTransport.from_url(url, prefix, clock) to keep the queue in Redis on its own")
        from pulsarflow.transport.redis import RedisTransport

        return RedisTransport.for_store(store, clock, local_prefix=topics.client(""), duplicate=duplicate)
    if isinstance(option, str) or not _is_queue(option):
        raise DefinitionError(f"transport must be 'memory', 'redis' or a queue transport (RedisTransport, "
                              f"InMemoryTransport), got {option!r}")
    return option


def _is_queue(value: Any) -> bool:
    return all(callable(getattr(value, name, None)) for name in ("send", "flush", "poll", "ack", "requeue"))
