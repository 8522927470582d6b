"""Event storage: every event kept, for history, search and dashboards.

Events (:class:`pulsarflow.messages.events.WorkflowEvent`) are derived by the shared
runtime from what a handler already has (the incoming message and the engine's
decision), so the engines stay pure and unaware of them. Ports:

- :class:`EventSink` receives the events of one handled message.
- :class:`EventStore` is a sink that can also be read back (history, replay).
- :class:`Observer` is the one hook of ``MessageHandler``: called after the outgoing
  messages are sent and before they are flushed (see ``pulsarflow.runtime.handler``).

Implementations: :class:`~pulsarflow.events.topic.TopicEventSink` (an events topic,
through the handler's own transport) and
:class:`~pulsarflow.events.memory.InMemoryEventStore` (embedded mode and tests).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from pulsarflow.engines.outgoing import Decision
from pulsarflow.messages.events import WorkflowEvent


class EventSink(Protocol):
    """Keeps events.

    Contract: ``emit`` may buffer, but everything emitted before the transport's next
    ``flush`` is durable once that flush returns (the handler flushes before it saves
    state, so an event is never lost for a message that was acknowledged). Delivery is
    at-least-once: the same event (same ``event_id``) may be emitted again after a
    redelivery, and readers drop the duplicates.
    """

    def emit(self, events: Sequence[WorkflowEvent]) -> None: ...


class EventStore(EventSink, Protocol):
    """A sink that can be read back, in the order events were emitted."""

    def history(self, workflow_id: str) -> list[WorkflowEvent]:
        """The events of one workflow, oldest first, duplicates dropped; [] when unknown."""
        ...

    def read(self, offset: int = 0, limit: int | None = None) -> list[WorkflowEvent]:
        """Every event from position ``offset`` on (a replay, to rebuild a visibility store)."""
        ...


class Observer(Protocol):
    """Watches one handled message: its envelope, the state before, and the engine's decision."""

    def observe(self, envelope: Any, before: Any, decision: Decision[Any], now_ms: int) -> None: ...


__all__ = ["EventSink", "EventStore", "Observer", "WorkflowEvent"]
