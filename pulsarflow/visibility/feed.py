"""Feeding a visibility store from the events.

- In one process (embedded): :func:`follow` applies what an InMemoryEventStore already
  holds, then every new batch as it is emitted.
- On Pulsar: :class:`PulsarEventFeed` consumes the events topic with its own durable
  subscription and acknowledges an event only once it is applied (a crash re-applies,
  which the idempotent stores absorb). :meth:`PulsarEventFeed.replay` rebuilds a store by
  reading the topic from its first retained message, without touching the subscription:
  keep the events by giving the topic (or namespace) an infinite retention.
"""

from __future__ import annotations

import logging

from pulsarflow.events.memory import InMemoryEventStore
from pulsarflow.visibility import VisibilityStore

log = logging.getLogger("pulsarflow.visibility")


def follow(events: InMemoryEventStore, store: VisibilityStore) -> None:
    """Keep ``store`` up to date with ``events`` from now on (after catching up)."""
    store.apply(events.read())
    events.subscribe(store.apply)
