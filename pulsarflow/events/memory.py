"""An event store in memory: the embedded mode's event storage, and the tests'."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

from pulsarflow.messages.events import WorkflowEvent

Listener = Callable[[Sequence[WorkflowEvent]], object]


class InMemoryEventStore:
    """Keeps every emitted event in order; ``history`` drops duplicates by ``event_id``.

    ``subscribe`` registers a listener called with each emitted batch (a visibility store
    fed in the same process); listeners added late can catch up with ``read``.
    """

    def __init__(self) -> None:
        self._log: list[WorkflowEvent] = []
        self._by_workflow: dict[str, list[WorkflowEvent]] = {}
        self._ids: set[str] = set()
        self._listeners: list[Listener] = []
        self._lock = threading.Lock()

    def emit(self, events: Sequence[WorkflowEvent]) -> None:
        with self._lock:
            self._log.extend(events)
            for event in events:
                if event.event_id not in self._ids:
                    self._ids.add(event.event_id)
                    self._by_workflow.setdefault(event.workflow_id, []).append(event)
        for listener in self._listeners:
            listener(events)

    def history(self, workflow_id: str) -> list[WorkflowEvent]:
        with self._lock:
            return list(self._by_workflow.get(workflow_id, ()))

    def read(self, offset: int = 0, limit: int | None = None) -> list[WorkflowEvent]:
        if offset < 0:
            raise ValueError(f"offset must be 0 or more, got {offset}")
        with self._lock:
            end = None if limit is None else offset + limit
            return self._log[offset:end]

    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def __len__(self) -> int:
        return len(self._log)
