"""Which queue an ``EmbeddedEnvironment`` runs on (its ``transport=`` option).

- ``None`` (the default): durable in Redis when the workflow state is in Redis (a
  ``RedisStateStore``), next to it on the same connection; in memory otherwise.
- ``"memory"``: in memory, whatever the store (the queue is lost with the process).
- ``"redis"``: durable, next to the Redis state store; refused without one.
- a ``QueueTransport`` object (such as ``RedisTransport.from_url(...)``): used as it is.

With Redis state the tag engine's buckets (tags, custom ids) default to Redis too
(``tag_store_for``), so a second process knows the tags of the workflows it takes over.
A queue in memory over Redis state is allowed but logged: what it holds when the process
stops is lost, and the workflows waiting on it stay RUNNING.
"""

from __future__ import annotations

import logging
from typing import Any, Literal, Union

from pulsarflow.clock import Clock
from pulsarflow.errors import DefinitionError
from pulsarflow.storage import StateStore
from pulsarflow.storage.memory import InMemoryStateStore
from pulsarflow.topics import Topics
from pulsarflow.transport.memory import InMemoryTransport
from pulsarflow.transport.queue import QueueTransport

log = logging.getLogger("pulsarflow.embedded")

TransportOption = Union[Literal["memory", "redis"], QueueTransport, None]


def queue_for(option: TransportOption, store: StateStore, clock: Clock, topics: Topics,
              duplicate: bool = False) -> QueueTransport:
    """The queue ``option`` names, for an environment with ``store`` as its workflow state."""
    from pulsarflow.storage.redis import RedisStateStore

    if option is None:
        option = "redis" if isinstance(store, RedisStateStore) else "memory"
    if option == "memory":
        if isinstance(store, RedisStateStore):
            log.warning("the workflow state is in Redis but the queue in memory (transport='memory'): timers, "
                        "tasks and messages still queued when this process stops are lost, and the workflows "
                        "waiting on them stay RUNNING; leave transport unset to keep the queue in Redis too")
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


def tag_store_for(tag_store: StateStore | None, store: StateStore) -> StateStore:
    """The tag engine's store: the one given; else in Redis beside a Redis ``store``; else in memory."""
    from pulsarflow.storage.redis import RedisStateStore

    if tag_store is not None:
        return tag_store
    if isinstance(store, RedisStateStore):
        from pulsarflow.transport.redis import sibling_prefix

        return RedisStateStore(store.client, sibling_prefix(store.prefix, "tag"), where=store.where)
    return InMemoryStateStore()


def _is_queue(value: Any) -> bool:
    return all(callable(getattr(value, name, None)) for name in ("send", "flush", "poll", "ack", "requeue"))
